"""Plan compilation: the per-head plans of one call -> a ``CallTable``, everything the call runs.

A table serves every head of a call in one kernel launch, whatever mix of patterns and densities
they have: one ``BlockLayout`` whose LUT holds each head's rows (static masks built once here;
per-call selections written in place by ``estimate.py``), dense heads as dense rows, and idle heads
for what runs elsewhere (FP8 heads get one more launch, skipped heads are zeroed, pyramid heads run
their level passes). Its sizes are fixed at build time: a top-k row keeps a known number of blocks,
so the counts, the work schedule and the reported density are known before any call and nothing on
the call path reads the device. What a pattern does comes from its registry entry (``selection``).

Tables without per-call selections depend only on (plans, geometry, text lengths, device) and are
shared by the layers that have the same plans; tables with them belong to their layer (they carry
the last estimate). Densities a plan cannot honour on a geometry, above or below the one asked by
more than ``MISS_TOLERANCE``, are said once and counted per call.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import torch

from ..kernels import BlockLayout
from ..patterns import PATTERNS, VideoGeometry, block_mask, build_layout, fit_density, mask_density
from ..patterns.oracle import top_k_density
from ..patterns.registry import estimate_share
from ..plans import Plan

log = logging.getLogger("videoaccel")
MISS_TOLERANCE = 0.1  # achieved density off the asked one by more than this share of it (and 0.01): a miss, said once
CPU_BREAK_EVEN = 0.5  # measured (kernels/torch_attention.py, 2-core CPU): sparse heads above it are slower than dense


@dataclass
class Selection:
    """Heads whose blocks one per-call estimate chooses (one pattern and parameter set)."""
    pattern: str
    heads: torch.Tensor  # int32, the call's head numbers, on the device
    params: dict  # what the estimate takes (density and every removed)
    every: int  # steps an estimate serves (0: every call)
    keep: torch.Tensor | None = None  # top-k: blocks per row for each head (int32)
    kmax: int = 0  # top-k: the largest keep
    last: int | None = None  # step of the last estimate
    density: torch.Tensor | None = None  # mask selections: per head, the last estimate's density (on the device,
    # written in place: a CUDA graph of a call between estimates reads it where the estimating call wrote it)


@dataclass(eq=False)
class CallTable:
    plans: tuple[Plan, ...]
    labels: tuple[str, ...]  # per head, for the report
    density: tuple[float, ...]  # per head, achieved (nan: decided per call, see Runner)
    geometry: VideoGeometry | None
    layout: BlockLayout | None = None  # None: every head dense (one cuDNN call)
    selections: list[Selection] = field(default_factory=list)
    fp8: list[int] = field(default_factory=list)  # heads of the FP8 launch (idle in ``layout``)
    fp8_layout: BlockLayout | None = None
    pyramid: list[int] = field(default_factory=list)  # heads of the pyramid passes (idle in ``layout``)
    fp8_index: torch.Tensor | None = None  # the two lists above on the device (made once: no copy on the call path)
    pyramid_index: torch.Tensor | None = None
    compensate: torch.Tensor | None = None  # int64 heads whose skipped blocks are compensated
    skip: torch.Tensor | None = None  # int64 heads whose output is zero
    fallbacks: tuple[str, ...] = ()  # counted per call (e.g. FP8 asked on a CPU)
    misses: tuple[str, ...] = ()
    kept: torch.Tensor | None = None  # compensation's kept blocks of the compensated heads (rebuilt after estimates)

    @property
    def dynamic(self) -> bool:
        return bool(self.selections) or bool(self.pyramid)

    @cached_property
    def known_density(self) -> tuple[float, ...]:
        """Per head, the density known before the call (0 where the call decides it: added on the device)."""
        return tuple(0.0 if math.isnan(d) else d for d in self.density)

    @cached_property
    def mean_density(self) -> float:
        return sum(self.known_density) / len(self.known_density)

    @property
    def has_fp8(self) -> bool:
        return bool(self.fp8)


class PlanCompiler:
    def __init__(self, block: int):
        self.block = block
        self._tables: dict[tuple, CallTable] = {}
        self._masks: dict[tuple, tuple[torch.Tensor, str | None]] = {}
        self._warned: set[str] = set()

    def reset(self) -> None:
        """A new generation: per-call selections estimate afresh."""
        for t in self._tables.values():
            for s in t.selections:
                s.last = None

    def estimate_state(self, state: dict | None = None) -> dict:
        """Every selection's last estimate step (to restore later), or restore a state given (selections made
        since then have not estimated before it)."""
        sels = [s for t in self._tables.values() for s in t.selections]
        if state is not None:
            for sel in sels:
                sel.last = state.get(id(sel))
        return {id(s): s.last for s in sels}

    def table(self, layer: int, plans: tuple[Plan, ...], geometry: VideoGeometry | None, text_lengths: tuple[int, ...] | None,
              device: torch.device) -> CallTable:
        key = (plans, geometry, text_lengths, str(device))
        table = self._tables.get(key)
        if table is None:
            table = self._tables.get((layer, *key))
        if table is None:
            table = self._compile(plans, geometry, text_lengths, device)
            self._tables[(layer, *key) if table.dynamic else key] = table
        return table

    # ---- building ------------------------------------------------------------------------------
    def _compile(self, plans, geometry, text_lengths, device) -> CallTable:
        labels = tuple(p.label for p in plans)
        fallbacks, misses = [], []
        cuda = device.type == "cuda"
        if any(p.precision == "fp8" for p in plans) and not fp8_runs_on(device):
            fallbacks.append("fp8 attention needs a CUDA GPU: ran bf16")
            plans = tuple(replace(p, precision="bf16") for p in plans)
        if all(p.pattern == "dense" and p.precision == "bf16" for p in plans) or geometry is None:
            return CallTable(plans, labels, (1.0,) * len(plans), None, fallbacks=tuple(fallbacks))
        g, nb = geometry, geometry.num_blocks
        rows: list[torch.Tensor | None] = []  # per LUT head: its bool block mask (None: chosen per call)
        density, dense, idle, fp8, pyramid, skip = [], [], [], [], [], []
        groups: dict[tuple, list[int]] = {}
        caps = [1]
        for h, p in enumerate(plans):
            spec = PATTERNS[p.pattern]
            rows.append(None)
            if p.precision == "fp8" and spec.selection != "levels":  # pyramid heads quantise in their own passes
                fp8.append(h)
            if p.pattern == "dense":
                dense.append(h)
                density.append(1.0)
            elif p.pattern == "skip":
                idle.append(h)
                skip.append(h)
                density.append(0.0)
            elif spec.selection == "static":
                rows[h], miss = self._static_mask(p, g)
                misses += [miss] if miss else []
                density.append(mask_density(rows[h], g))
                caps.append(int(rows[h].sum(-1).max()))
            elif spec.selection == "levels":
                idle.append(h)
                pyramid.append(h)
                density.append(math.nan)
            else:
                kw = dict(p.params)
                asked = kw.pop("density", None) if spec.selection == "top_k" else None  # a mask estimate takes its own
                every = int(kw.pop("every", spec.every))
                groups.setdefault((p.pattern, tuple(sorted(kw.items())), every), []).append(h)
                if spec.selection == "top_k":
                    keep = min(nb, max(1, round(asked * nb)))
                    caps.append(keep)
                    got = top_k_density(g, asked)
                    misses += [m for m in [self._miss(p, asked, got, g)] if m]
                    density.append(got + estimate_share(p.pattern, p.kwargs, g.block))
                else:  # a per-call mask: any number of blocks a row
                    caps.append(nb)
                    density.append(math.nan)
        layout = self._layout(plans, rows, g, text_lengths, device, max(caps), dense, [h for h in idle if h not in fp8])
        selections = [self._selection(pattern, dict(params), every, heads, plans, g, device)
                      for (pattern, params, every), heads in groups.items()]
        table = CallTable(plans, labels, tuple(density), g, replace(layout, idle_heads=tuple(sorted(set(layout.idle_heads) | set(fp8)))),
                          selections, fp8, layout.restricted(fp8) if fp8 else None, pyramid, _index(fp8, device),
                          _index(pyramid, device),
                          _index([h for h, p in enumerate(plans) if p.compensate and h not in skip + dense + pyramid], device),
                          _index(skip, device),
                          fallbacks=tuple(dict.fromkeys(fallbacks)), misses=tuple(dict.fromkeys(misses)))
        if not cuda:
            sparse = [d for d, p in zip(density, plans) if PATTERNS[p.pattern].selection == "static"]
            if sparse and sum(sparse) / len(sparse) > CPU_BREAK_EVEN:
                table.fallbacks += (f"sparse heads above density {CPU_BREAK_EVEN} are not faster than dense on a CPU: "
                                    "ran sparse (speed figures are GPU figures)",)
        return table

    def _layout(self, plans, rows, g: VideoGeometry, text_lengths, device, cap: int, dense: list[int], idle: list[int]) -> BlockLayout:
        """One layout over every head: static rows from their masks, per-call rows as valid placeholders
        (ascending, the count they will keep) until their first estimate overwrites them."""
        nb = g.num_blocks
        masks = torch.zeros(len(plans), nb, nb, dtype=torch.bool)
        for h, m in enumerate(rows):
            if m is not None:
                masks[h] = m
            elif plans[h].pattern not in ("dense", "skip"):
                masks[h, :, : (cap if PATTERNS[plans[h].pattern].selection != "top_k" else
                               min(nb, max(1, round(plans[h].kwargs["density"] * nb))))] = True
        lay = build_layout(g, masks, list(text_lengths or ()) or None, device)
        if lay.lut.shape[-1] < cap:  # per-call rows may keep more blocks than any placeholder: room for them
            lut = torch.zeros(*lay.lut.shape[:2], cap, dtype=torch.int32, device=device)
            lut[..., : lay.lut.shape[-1]] = lay.lut
            lay = replace(lay, lut=lut, validated=True)
        return replace(lay, dense_heads=tuple(dense), idle_heads=tuple(idle))

    def _selection(self, pattern: str, params: dict, every: int, heads: list[int], plans, g, device) -> Selection:
        sel = Selection(pattern, torch.tensor(heads, dtype=torch.int32, device=device), params, every)
        if PATTERNS[pattern].selection == "top_k":
            keep = [min(g.num_blocks, max(1, round(plans[h].kwargs["density"] * g.num_blocks))) for h in heads]
            sel.keep, sel.kmax = torch.tensor(keep, dtype=torch.int32, device=device), max(keep)
        elif PATTERNS[pattern].selection == "mask":
            sel.density = torch.zeros(len(heads), device=device)
        return sel

    # ---- densities -----------------------------------------------------------------------------
    def _miss(self, plan: Plan, asked: float, got: float, g: VideoGeometry) -> str | None:
        """A miss (said once, counted per call by the router) when ``got`` is off ``asked`` by more than the tolerance."""
        if abs(got - asked) <= max(MISS_TOLERANCE * asked, 0.01):
            return None
        how = "cannot reach" if got > asked else "runs below"
        miss = (f"{plan.pattern} {how} density {asked:g} on {g.frames}x{g.height}x{g.width} tokens, block {g.block}: "
                f"runs {got:.3f}")
        if miss not in self._warned:
            self._warned.add(miss)
            log.warning("videoaccel: %s (counted in videoaccel.report())", miss)
        return miss

    def _static_mask(self, plan: Plan, g: VideoGeometry) -> tuple[torch.Tensor, str | None]:
        """Block mask of a static plan; a ``density`` parameter is fitted on this geometry."""
        key = (plan.pattern, plan.params, g)
        if key not in self._masks:
            kw = plan.kwargs
            miss = None
            if "density" in kw:
                asked = kw.pop("density")
                mask = fit_density(plan.pattern, g, asked, **kw)[1]
                miss = self._miss(plan, asked, mask_density(mask, g), g)
            else:
                mask = block_mask(plan.pattern, g, **kw)
            self._masks[key] = (mask, miss)
        return self._masks[key]


def fp8_runs_on(device: torch.device) -> bool:
    """FP8 attention needs the Triton kernels on a CUDA GPU."""
    return device.type == "cuda"


def _index(heads: list[int], device: torch.device) -> torch.Tensor | None:
    return torch.tensor(heads, dtype=torch.long, device=device) if heads else None
