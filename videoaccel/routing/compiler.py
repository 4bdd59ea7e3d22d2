"""Plan compilation: per-head plans of one call -> head groups with their kernel layouts.

A ``Route`` is what the router runs for one (plans, geometry, text lengths, device): head groups
by executor (dense, sparse, pyramid, skip) with their layouts and achieved densities. Static
routes are built once, all in one cache (``prebuild`` does it for every layer and timestep bucket
before the first step); groups with draft, oracle or pyramid heads are resolved per call from q/k,
with draft masks reused for ``every`` steps (oracle masks, benchmarks only, are recomputed every call).
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, replace

import torch

from ..kernels import BlockLayout
from ..patterns import (VideoGeometry, block_mask, build_layout, draft_masks, estimate_levels, fit_density, mask_density, oracle_masks,
                        sampled_masks)
from ..patterns.oracle import top_k_density
from ..patterns.pyramid import THRESHOLDS
from ..patterns.sampled import EVERY as SAMPLED_EVERY, estimate_share
from ..plans import Plan

log = logging.getLogger("videoaccel")
_INPUT_MASKS = {"draft": draft_masks, "oracle": oracle_masks, "sampled": sampled_masks}  # patterns whose masks depend on q/k
_EVERY = {"draft": 1, "sampled": SAMPLED_EVERY}  # default steps a dynamic mask serves
MISS_TOLERANCE = 1.1  # achieved / asked density above this is a miss worth a warning
CPU_BREAK_EVEN = 0.5  # measured (kernels/torch_attention.py, 2-core CPU): sparse heads above it are slower than dense


@dataclass(frozen=True)
class Group:
    kind: str  # executor name
    heads: tuple[int, ...]
    index: torch.Tensor | None  # the heads on the device; None when the group is every head
    plans: tuple[Plan, ...]
    fp8: bool = False
    compensate: bool = False
    layout: BlockLayout | None = None  # sparse
    levels: torch.Tensor | None = None  # pyramid: int8 [heads, NB, NB], -1 = skipped
    density: tuple[float, ...] = ()
    dynamic: bool = False  # draft / pyramid heads: resolved per call


@dataclass(frozen=True)
class Route:
    groups: tuple[Group, ...]
    labels: tuple[str, ...]  # per head, for the report
    fallbacks: tuple[str, ...] = ()  # counted per call (e.g. FP8 asked on a CPU)
    density_misses: tuple[str, ...] = ()


def _kind(p: Plan) -> str:
    if p.pattern in ("dense", "skip"):
        return p.pattern
    return "pyramid" if p.pattern == "pyramid" or p.compensate else "sparse"


class PlanCompiler:
    def __init__(self, block: int):
        self.block = block
        self._routes: dict[tuple, Route] = {}
        self._masks: dict[tuple, tuple[torch.Tensor, str | None]] = {}
        self._drafts: dict[tuple, tuple[int, torch.Tensor]] = {}
        self._warned: set[str] = set()

    def reset(self) -> None:
        """A new pipeline call: draft masks are recomputed."""
        self._drafts.clear()

    def route(self, plans: tuple[Plan, ...], geometry: VideoGeometry | None, text_lengths: tuple[int, ...] | None,
              device: torch.device) -> Route:
        key = (plans, geometry, text_lengths, str(device))
        if key not in self._routes:
            self._routes[key] = self._compile(plans, geometry, text_lengths, device)
        return self._routes[key]

    def _compile(self, plans, geometry, text_lengths, device) -> Route:
        by_kind: dict[tuple, list[int]] = defaultdict(list)
        for h, p in enumerate(plans):
            by_kind[(_kind(p), p.precision == "fp8", p.compensate)].append(h)
        groups, fallbacks, misses = [], [], []
        for (kind, fp8, comp), heads in by_kind.items():
            if fp8 and device.type != "cuda":
                fallbacks.append("fp8 attention needs a CUDA GPU: ran bf16")
                fp8 = False
            index = None if len(heads) == len(plans) else torch.tensor(heads, device=device)
            sub = tuple(plans[h] for h in heads)
            g = Group(kind, tuple(heads), index, sub, fp8, comp)
            if kind == "dense":
                g = replace(g, density=(1.0,) * len(heads))
            elif kind == "skip":
                g = replace(g, density=(0.0,) * len(heads))
            elif any(p.pattern in ("pyramid", *_INPUT_MASKS) for p in sub):
                g = replace(g, dynamic=True)
                misses += [m for m in (self._miss(p, geometry) for p in sub) if m]
            else:
                masks = []
                for p in sub:
                    m, miss = self._static_mask(p, geometry)
                    masks.append(m)
                    misses += [miss] if miss else []
                masks = torch.stack(masks)
                g = replace(g, density=tuple(mask_density(m, geometry) for m in masks))
                if kind == "sparse":
                    g = replace(g, layout=build_layout(geometry, masks, list(text_lengths or ()) or None, device))
                else:
                    g = replace(g, levels=torch.where(masks, 0, -1).to(torch.int8).to(device))
                if device.type != "cuda" and sum(g.density) / len(heads) > CPU_BREAK_EVEN:
                    fallbacks.append(f"sparse heads above density {CPU_BREAK_EVEN} are not faster than dense on a CPU: "
                                     "ran sparse (speed figures are GPU figures)")
            groups.append(g)
        return Route(tuple(groups), tuple(p.label for p in plans), tuple(dict.fromkeys(fallbacks)), tuple(dict.fromkeys(misses)))

    def _miss(self, plan: Plan, geometry: VideoGeometry) -> str | None:
        """The density miss of one plan of a dynamic group: a static plan's from its fitted mask, a top-k
        one's (sampled, oracle) from the blocks a row keeps; none for draft / pyramid (no density asked)."""
        if plan.pattern in _INPUT_MASKS or plan.pattern == "pyramid":
            asked = plan.kwargs.get("density")
            return None if asked is None else self._warn_miss(plan, asked, top_k_density(geometry, asked), geometry)
        return self._static_mask(plan, geometry)[1]

    def _warn_miss(self, plan: Plan, asked: float, got: float, geometry: VideoGeometry) -> str | None:
        """A miss (said once, counted per call by the router) when ``got`` exceeds ``asked`` beyond MISS_TOLERANCE."""
        if got <= asked * MISS_TOLERANCE:
            return None
        miss = (f"{plan.pattern} cannot reach density {asked:g} on {geometry.frames}x{geometry.height}x"
                f"{geometry.width} tokens, block {geometry.block}: runs {got:.3f}")
        if miss not in self._warned:
            self._warned.add(miss)
            log.warning("videoaccel: %s (counted in videoaccel.report())", miss)
        return miss

    def _static_mask(self, plan: Plan, geometry: VideoGeometry) -> tuple[torch.Tensor, str | None]:
        """Block mask of a static plan; a ``density`` parameter is fitted on this geometry (a miss
        when the pattern cannot get that sparse here: warned once)."""
        key = (plan.pattern, plan.params, geometry)
        if key not in self._masks:
            kw = plan.kwargs
            miss = None
            if "density" in kw:
                asked = kw.pop("density")
                mask = fit_density(plan.pattern, geometry, asked, **kw)[1]
                miss = self._warn_miss(plan, asked, mask_density(mask, geometry), geometry)
            else:
                mask = block_mask(plan.pattern, geometry, **kw)
            self._masks[key] = (mask, miss)
        return self._masks[key]

    def resolve(self, g: Group, layer: int, step: int, q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry,
                text_lengths: tuple[int, ...] | None) -> Group:
        """A dynamic group with this call's layout (sparse) or levels (pyramid) and densities."""
        sq, sk = (t if g.index is None else t.index_select(2, g.index) for t in (q, k))
        levels = torch.empty(len(g.heads), geometry.num_blocks, geometry.num_blocks, dtype=torch.int8, device=q.device)
        pyr = [i for i, p in enumerate(g.plans) if p.pattern == "pyramid"]
        by_thresholds: dict[tuple, list[int]] = defaultdict(list)
        for i in pyr:
            by_thresholds[tuple(g.plans[i].kwargs.get("thresholds", THRESHOLDS))].append(i)
        top = int(math.log2(geometry.block // 16))  # pooled blocks keep >= 16 keys
        for thresholds, heads in by_thresholds.items():
            sel = torch.tensor(heads, device=q.device)
            levels[heads] = estimate_levels(sq.index_select(2, sel), sk.index_select(2, sel), geometry, thresholds).clamp(max=top)
        rest = [i for i in range(len(g.heads)) if i not in pyr]
        if rest:
            masks = self._binary_masks(g, rest, layer, step, sq, sk, geometry)
            levels[rest] = torch.where(masks, 0, -1).to(torch.int8)
        density = tuple(mask_density(lv >= 0, geometry) + estimate_share(p.pattern, p.kwargs, geometry.block) for lv, p in zip(levels.cpu(), g.plans))
        if g.kind == "sparse":
            return replace(g, layout=build_layout(geometry, levels >= 0, list(text_lengths or ()) or None, q.device), density=density)
        return replace(g, levels=levels, density=density)

    def _binary_masks(self, g: Group, idx: list[int], layer: int, step: int, sq, sk, geometry) -> torch.Tensor:
        """bool [len(idx), NB, NB]: static masks from the cache, draft (and oracle) masks from these
        heads' q/k (recomputed every ``every`` steps, default each step; the oracle every call)."""
        dev = sq.device
        out: dict[int, torch.Tensor] = {}
        drafts: dict[tuple, list[int]] = defaultdict(list)
        for i in idx:
            p = g.plans[i]
            if p.pattern in _INPUT_MASKS:
                drafts[(p.pattern, p.params)].append(i)
            else:
                out[i] = self._static_mask(p, geometry)[0].to(dev)
        for (pattern, params), heads in drafts.items():
            kw = dict(params)
            every = int(kw.pop("every", _EVERY.get(pattern, 0)))  # the oracle: every call (CFG passes differ)
            key = (layer, tuple(g.heads[i] for i in heads), pattern, params)  # real head numbers: groups differ per call
            cached = self._drafts.get(key)
            if cached is None or step - cached[0] >= every or cached[1].shape[-1] != geometry.num_blocks:
                sel = torch.tensor(heads, device=dev)
                cached = (step, _INPUT_MASKS[pattern](sq.index_select(2, sel), sk.index_select(2, sel), geometry, **kw))
                self._drafts[key] = cached
            for j, i in enumerate(heads):
                out[i] = cached[1][j]
        return torch.stack([out[i] for i in idx])
