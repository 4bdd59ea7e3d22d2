"""The router: sends each self-attention call's heads to the kernel their plan asks for.

Per call it looks up the per-head plans for (layer, step, timestep), groups the heads: dense ->
cuDNN SDPA, static or draft-guided sparse -> one block-sparse kernel launch for all of them
(bf16, and another for FP8 heads), pyramid or compensated -> the pyramid path, skip -> zeros.
Anything the kernels cannot take falls back to dense explicitly: logged once per reason and
counted in ``report()``.
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import torch

from ..kernels import block_scores, dense_attention, sparse_attention
from ..kernels.reference import layout_attention, pyramid_reference
from ..patterns import VideoGeometry, block_mask, build_layout, draft_masks, fit_density, mask_density, pyramid_levels
from ..patterns.pyramid import pyramid_attention
from ..plans import Plan, Profile
from .models import ModelSpec

log = logging.getLogger("videoaccel")


@dataclass
class LayerStats:
    calls: int = 0
    steps: list[int] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)  # per head, last call
    density_sum: float = 0.0
    fp8_calls: int = 0
    fallbacks: Counter = field(default_factory=Counter)
    ms: float = 0.0


class AttentionRouter:
    def __init__(self, profile: Profile, spec: ModelSpec, num_layers: int):
        self.profile = profile
        self.spec = spec
        self.num_layers = num_layers
        self.order = profile.order if spec.tile_order else "frame"
        self.step = -1
        self.forward_id = 0
        self.timestep: float | None = None
        self.grid: tuple[int, int, int] | None = None
        self.reference = False  # compute plans with the float64 references (tests)
        self.profiler = None  # a profiling.Profiler observing every call (calibration runs)
        self.last_geometry: VideoGeometry | None = None
        self.last_heads = 0
        self.timing = False
        self.stats: dict[int, LayerStats] = defaultdict(LayerStats)
        self._warned: set[str] = set()
        self._drafts: dict[tuple, tuple] = {}
        self._layouts: dict[tuple, tuple] = {}

    # ---- per forward / per pipeline call -------------------------------------------------
    def begin_forward(self, timestep: float | None, grid: tuple[int, int, int]) -> None:
        if self.step < 0 or timestep != self.timestep:
            self.step += 1  # CFG as two passes sees the same timestep twice: one step
        self.timestep, self.grid = timestep, grid
        self.forward_id += 1

    def reset(self) -> None:
        self.step, self.timestep, self.grid = -1, None, None
        self._drafts.clear()

    def geometry(self, seq_len: int) -> VideoGeometry:
        f, h, w = self.grid
        text = seq_len - f * h * w
        pos = self.spec.text_position if text > 0 else "none"
        if text < 0 or (text > 0 and self.spec.text_position == "none"):
            raise _Fallback(f"sequence of {seq_len} tokens does not fit the {f}x{h}x{w} latent grid")
        return VideoGeometry(f, h, w, text=text, text_position=pos, block=self.profile.block, order=self.order)

    # ---- the call ------------------------------------------------------------------------
    def attend_masked(self, layer, q, k, v, attn_mask, scale):
        """Entry from the diffusers dispatch interceptor (attn_mask: a key-padding mask or None)."""
        return self.attend(layer, q, k, v, attn_mask=attn_mask, scale=scale)

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
               text_lengths: list[int] | None = None, scale: float | None = None, head_offset: int = 0,
               total_heads: int | None = None) -> torch.Tensor:
        """q/k/v [B, S, H, D] -> [B, S, H, D]. ``attn_mask``: a boolean key mask [B, N] / [B, 1, 1, N] whose
        False entries are text padding at the back; ``text_lengths``: the same given as valid text counts.
        Under Ulysses context parallelism q holds heads [head_offset, head_offset + H) of ``total_heads``."""
        st = self.stats[layer]
        st.calls += 1
        st.steps.append(self.step)
        H = q.shape[2]
        t0 = self._tick(q)
        plans = self.profile.plans(layer, total_heads or H, self.step, self.timestep)[head_offset:head_offset + H]
        st.plans = [p.label for p in plans]
        if self.profiler is not None:
            self._observe(layer, q, k, v, attn_mask)
        try:
            if all(p.pattern == "dense" for p in plans):
                out, dens = self._dense(q, k, v, scale, attn_mask), 1.0
            else:
                geometry = self._check(q, text_lengths)
                if attn_mask is not None:
                    text_lengths = self._text_lengths(attn_mask, geometry, q.shape[0])
                out, dens = self._route(layer, q, k, v, plans, geometry, text_lengths, scale, st, attn_mask)
        except _Fallback as fb:
            self._fallback(layer, f"{fb}: ran dense")
            out, dens = self._dense(q, k, v, scale, attn_mask), 1.0
        st.density_sum += dens
        st.ms += self._tock(q, t0)
        return out

    def _observe(self, layer, q, k, v, attn_mask) -> None:
        try:
            g = self._check(q, None)
            lens = None if attn_mask is None else self._text_lengths(attn_mask, g, q.shape[0])
        except _Fallback as fb:
            self._fallback(layer, f"{fb}: not profiled")
            return
        self.last_geometry, self.last_heads = g, q.shape[2]
        self.profiler.observe(layer, self.step, self.timestep, q, k, v, g, valid_text=None if lens is None else lens[0])

    def _check(self, q: torch.Tensor, text_lengths) -> VideoGeometry:
        if self.grid is None:
            raise _Fallback("no latent grid known for this call (the transformer hook did not run)")
        if q.shape[-1] not in (64, 128):
            raise _Fallback(f"head dim {q.shape[-1]} is not supported by the sparse kernels (64, 128)")
        g = self.geometry(q.shape[1])
        if text_lengths is not None and g.text == 0:
            raise _Fallback("text lengths given for a model without joint text")
        return g

    def _text_lengths(self, attn_mask: torch.Tensor, g: VideoGeometry, batch: int) -> list[int]:
        m = attn_mask
        if m.dtype != torch.bool or m.numel() != batch * g.seq_len:
            raise _Fallback(f"attention mask {tuple(m.shape)} {m.dtype} is not a boolean key-padding mask")
        m = m.reshape(batch, g.seq_len)
        vlo, vhi = g.video_range
        tlo, _ = g.text_range
        lens = m[:, tlo:tlo + g.text].sum(-1).tolist()
        ok = bool(m[:, vlo:vhi].all()) and all(bool(m[b, tlo:tlo + n].all()) for b, n in enumerate(lens))
        if not ok:
            raise _Fallback("attention mask is not a prefix text-padding mask")
        return [int(n) for n in lens]

    def _dense(self, q, k, v, scale, attn_mask=None):
        if attn_mask is not None:
            if attn_mask.numel() == q.shape[0] * k.shape[1]:  # a key mask: broadcast over heads and queries
                attn_mask = attn_mask.reshape(q.shape[0], 1, 1, k.shape[1])
            return torch.nn.functional.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=attn_mask, scale=scale).transpose(1, 2)
        if self.reference:
            return layout_attention(q, k, v, _dense_layout(q, k), scale)[0].to(q.dtype)
        return dense_attention(q, k, v, scale)

    def _static_mask(self, plan: Plan, geometry: VideoGeometry) -> torch.Tensor:
        kw = plan.kwargs
        if "density" in kw:
            d = kw.pop("density")
            return _fitted(plan.pattern, geometry, d, tuple(sorted(kw.items())))
        return block_mask(plan.pattern, geometry, **kw)

    def _layout(self, layer, plans, heads, geometry, sub, text_lengths):
        """Kernel layout and per-head densities of a sparse group; static groups are built once and cached."""
        static = not any(plans[h].pattern == "draft" for h in heads)
        key = (tuple(plans[h] for h in heads), geometry, tuple(text_lengths or ()), str(sub[0].device))
        if static and key in self._layouts:
            return self._layouts[key]
        masks = self._group_masks(layer, plans, heads, geometry, sub)
        lay = build_layout(geometry, masks, text_lengths, sub[0].device)
        value = (lay, torch.tensor([mask_density(m, geometry) for m in masks.cpu()]))
        if static:
            self._layouts[key] = value
        return value

    def _group_masks(self, layer, plans, heads, geometry, sub) -> torch.Tensor:
        """bool [len(heads), NB, NB]: static masks from the cache, draft masks from these heads' q/k
        (recomputed every ``every`` steps, default each step)."""
        dev = sub[0].device
        masks: dict[int, torch.Tensor] = {}
        by_kw: dict[tuple, list[int]] = defaultdict(list)
        for i, h in enumerate(heads):
            if plans[h].pattern == "draft":
                by_kw[plans[h].params].append(i)
            else:
                masks[i] = self._static_mask(plans[h], geometry).to(dev)
        for params, idx in by_kw.items():
            kw = dict(params)
            every = int(kw.pop("every", 1))
            key = (layer, tuple(heads[i] for i in idx), params)  # real head numbers: groups differ per call
            cached = self._drafts.get(key)
            if cached is None or self.step - cached[0] >= every or cached[1].shape[-1] != geometry.num_blocks:
                sel = torch.tensor(idx, device=dev)
                cached = (self.step, draft_masks(sub[0].index_select(2, sel), sub[1].index_select(2, sel), geometry, **kw))
                self._drafts[key] = cached
            for j, i in enumerate(idx):
                masks[i] = cached[1][j]
        return torch.stack([masks[i] for i in range(len(heads))])

    def _route(self, layer, q, k, v, plans, geometry, text_lengths, scale, st, attn_mask=None):
        B, S, H, D = q.shape
        out = torch.zeros_like(q)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for h, p in enumerate(plans):
            kind = ("dense",) if p.pattern == "dense" else ("skip",) if p.pattern == "skip" else \
                ("pyramid", p.precision, p.compensate) if p.pattern == "pyramid" or p.compensate else ("sparse", p.precision)
            groups[kind].append(h)
        dens = torch.zeros(H)
        cuda = q.is_cuda
        for kind, heads in groups.items():
            idx = torch.tensor(heads, device=q.device)
            sub = (q, k, v) if len(heads) == H else tuple(t.index_select(2, idx) for t in (q, k, v))
            fp8 = len(kind) > 1 and kind[1] == "fp8"
            if fp8 and not cuda and not self.reference:
                self._fallback(layer, "fp8 attention needs a CUDA GPU: ran bf16")
                fp8 = False
            if kind[0] == "skip":
                continue
            if kind[0] == "dense":  # keep the padding mask for dense heads of a mixed plan
                o = self._dense(*sub, scale, attn_mask if attn_mask is not None else _key_mask(geometry, text_lengths, q))
                dens[heads] = 1.0
            elif kind[0] == "sparse":
                lay, head_dens = self._layout(layer, plans, heads, geometry, sub, text_lengths)
                if self.reference:
                    o = layout_attention(*sub, lay, scale)[0].to(q.dtype)
                else:
                    o = sparse_attention(*sub, lay, scale=scale, fp8=fp8)
                dens[heads] = head_dens
                st.fp8_calls += int(fp8)
            else:  # pyramid levels, or a binary plan with mass compensation
                levels, comp = self._levels(layer, plans, heads, geometry, sub)
                if self.reference:
                    o = pyramid_reference(*sub, levels, geometry.block, geometry.video_range, geometry.text_range,
                                          compensate=comp, scale=scale, text_lengths=text_lengths).to(q.dtype)
                else:
                    o = pyramid_attention(*sub, geometry, levels, compensate=comp, text_lengths=text_lengths,
                                          scale=scale, fp8=fp8)
                dens[heads] = torch.tensor([mask_density(lv >= 0, geometry) for lv in levels.cpu()])
                st.fp8_calls += int(fp8)
            if len(heads) == H:
                out = o
            else:
                out.index_copy_(2, idx, o)
        return out, float(dens.mean())

    def _levels(self, layer, plans, heads, geometry, sub):
        """int8 levels [len(heads), NB, NB] (pyramid heads from block scores; binary plans as 0 / -1)."""
        dev = sub[0].device
        pyr = [i for i, h in enumerate(heads) if plans[h].pattern == "pyramid"]
        rest = [i for i in range(len(heads)) if i not in pyr]
        levels: dict[int, torch.Tensor] = {}
        if pyr:
            vr = geometry.video_range
            sel = torch.tensor(pyr, device=dev)
            probs = block_scores(sub[0].index_select(2, sel), sub[1].index_select(2, sel), geometry.block, geometry.block, vr, vr)
            top = int(math.log2(geometry.block // 16))  # pooled blocks keep >= 16 keys
            for j, i in enumerate(pyr):
                thr = plans[heads[i]].kwargs.get("thresholds", (0.6, 0.8, 0.9, 0.95))
                levels[i] = pyramid_levels(probs[:, j].mean(0), tuple(thr)).clamp(max=top)
        if rest:
            masks = self._group_masks(layer, plans, [heads[i] for i in rest], geometry,
                                      tuple(t.index_select(2, torch.tensor(rest, device=dev)) for t in sub[:2]))
            for j, i in enumerate(rest):
                levels[i] = torch.where(masks[j], 0, -1).to(torch.int8)
        comp = plans[heads[0]].compensate  # groups share it
        return torch.stack([levels[i].to(dev) for i in range(len(heads))]), comp

    # ---- bookkeeping ---------------------------------------------------------------------
    def _fallback(self, layer: int, reason: str) -> None:
        self.stats[layer].fallbacks[reason] += 1
        if reason not in self._warned:
            self._warned.add(reason)
            log.warning("videoaccel: fallback (%s); counted in videoaccel.report()", reason)

    def _tick(self, q):
        if not self.timing:
            return None
        if q.is_cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def _tock(self, q, t0) -> float:
        if t0 is None:
            return 0.0
        if q.is_cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            e.synchronize()
            return t0.elapsed_time(e)
        return 1e3 * (time.perf_counter() - t0)

    def report(self) -> dict:
        layers = {}
        for i in range(self.num_layers):
            s = self.stats.get(i)
            if s is None:
                continue
            layers[i] = {"calls": s.calls, "steps": sorted(set(s.steps)), "plans": s.plans,
                         "density": s.density_sum / max(s.calls, 1), "fp8_calls": s.fp8_calls,
                         "fallbacks": dict(s.fallbacks), "attention_ms": s.ms if self.timing else None}
        calls = sum(v["calls"] for v in layers.values())
        return {"profile": self.profile.name, "calibrated": self.profile.calibrated, "order": self.order,
                "mean_density": sum(v["density"] * v["calls"] for v in layers.values()) / max(calls, 1),
                "fallbacks": sum(sum(v["fallbacks"].values()) for v in layers.values()), "layers": layers}


class _Fallback(Exception):
    """A reason this call must run dense."""


def _key_mask(geometry: VideoGeometry, text_lengths, q) -> torch.Tensor | None:
    """bool [B, S] key mask from per-sample valid text lengths (None when there is no padding)."""
    if not text_lengths or all(n == geometry.text for n in text_lengths):
        return None
    m = torch.ones(q.shape[0], geometry.seq_len, dtype=torch.bool, device=q.device)
    lo = geometry.text_range[0]
    for b, n in enumerate(text_lengths):
        m[b, lo + n:lo + geometry.text] = False
    return m


def _dense_layout(q, k):
    from ..kernels import BlockLayout

    return BlockLayout.dense(q.shape[2], q.shape[1], k.shape[1], device=q.device)


_FIT_CACHE: dict = {}


def _fitted(pattern: str, geometry: VideoGeometry, density: float, params: tuple) -> torch.Tensor:
    key = (pattern, geometry, density, params)
    if key not in _FIT_CACHE:
        _FIT_CACHE[key] = fit_density(pattern, geometry, density, **dict(params))[1]
    return _FIT_CACHE[key]
