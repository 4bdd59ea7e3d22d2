"""Static attention patterns: each builds a bool block mask [NB, NB] over a geometry's video blocks.

Parameters are fractions of the latent grid (or frame counts), never token counts, so a plan made
at one resolution or length applies at another. Masks depend only on the geometry and are cached.
Every pattern but ``skip`` keeps each block's own (diagonal) block. Names, parameters, knobs and
which function builds each mask are registry.py's; dynamic patterns (sampled, draft-guided, pyramid,
oracle) live in sampled.py, draft.py, pyramid.py and oracle.py; ``build_layout`` turns per-head masks
into a kernel layout with the text tokens handled.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from ..kernels.layout import BlockLayout
from ..values import density
from .geometry import VideoGeometry
from .registry import PATTERNS, TUNABLE, behaviour


def _gaps(geometry: VideoGeometry) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """|dt|, |dh|, |dw| between the centres of block i and block j, in tokens: [NB, NB] each.

    Centres, not bounding boxes: a frame-major block spans the whole frame width and a tile-major
    block near the grid edge is irregular, so box gaps would call almost every pair adjacent."""
    c = geometry.block_centers
    d = (c[:, None] - c[None]).abs()
    return d[..., 0], d[..., 1], d[..., 2]


def _with_diagonal(mask: torch.Tensor) -> torch.Tensor:
    mask = mask.clone()
    mask.fill_diagonal_(True)
    return mask


def _check_fraction(**kw: float) -> None:
    for name, v in kw.items():
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name}={v} must be a fraction in [0, 1] of the latent grid")


def diagonal(geometry: VideoGeometry, t: float = 0.1, h: float = 0.25, w: float = 0.25) -> torch.Tensor:
    """Local 3D window: keys within t of the frames and h, w of the height and width."""
    _check_fraction(t=t, h=h, w=w)
    dt, dh, dw = _gaps(geometry)
    keep = (dt <= t * geometry.frames) & (dh <= h * geometry.height) & (dw <= w * geometry.width)
    return _with_diagonal(keep)


def multi_diagonal(geometry: VideoGeometry, h: float = 0.1, w: float = 0.1) -> torch.Tensor:
    """The same place in every frame ('temporal' heads): small spatial window, all frames."""
    _check_fraction(h=h, w=w)
    _, dh, dw = _gaps(geometry)
    return _with_diagonal((dh <= h * geometry.height) & (dw <= w * geometry.width))


def vertical_stripe(geometry: VideoGeometry, sink_frames: int = 1, columns: float = 0.0) -> torch.Tensor:
    """Global key columns: every query sees the first ``sink_frames`` frames (text comes via the
    layout's always-visited ranges) plus a ``columns`` fraction of all key blocks, evenly spaced."""
    if sink_frames < 0 or not 0.0 <= columns <= 1.0:
        raise ValueError("vertical_stripe needs sink_frames >= 0 and columns in [0, 1]")
    nb = geometry.num_blocks
    cols = geometry.block_boxes[:, 0, 0] < sink_frames
    if columns > 0:
        cols[torch.unique(torch.linspace(0, nb - 1, max(1, round(columns * nb))).round().long())] = True
    return _with_diagonal(cols[None, :].expand(nb, nb))


def radial(geometry: VideoGeometry, decay: float = 1.0, sink_frames: int = 1, keep_every: int = 1) -> torch.Tensor:
    """Radial attention, O(n log n): between frames dt apart keep a spatial band of half-width
    decay * (H, W) / 2**ceil(log2(dt + 1)) (the whole frame at dt = 0 when decay >= 1). Once that
    band holds less than a block, keep only the co-located blocks, and only for frame distances that
    are multiples of keep_every * 2**(levels past that point): a logarithmic number of frame pairs
    per query. The first ``sink_frames`` frames are attention sinks, kept for every query."""
    if decay <= 0 or keep_every < 1 or sink_frames < 0:
        raise ValueError("radial needs decay > 0, keep_every >= 1, sink_frames >= 0")
    dt, dh, dw = _gaps(geometry)
    n = torch.ceil(torch.log2(dt + 1))
    half_h = decay * geometry.height / 2 ** n
    half_w = decay * geometry.width / 2 ** n
    band = (2 * half_h + 1) * (2 * half_w + 1) >= geometry.block
    keep = band & (dh <= half_h) & (dw <= half_w)
    n_thin = 0
    while (2 * decay * geometry.height / 2 ** n_thin + 1) * (2 * decay * geometry.width / 2 ** n_thin + 1) >= geometry.block:
        n_thin += 1
    stride = (keep_every * 2 ** torch.clamp(n - n_thin, min=0)).long()
    near = (dh <= geometry.block_extent[1] / 2) & (dw <= geometry.block_extent[2] / 2)  # co-located blocks
    thin = ~band & (torch.round(dt).long() % stride == 0) & near
    sink = (geometry.block_boxes[:, 0, 0] < sink_frames)[None, :]
    return _with_diagonal(keep | thin | sink)


@lru_cache(maxsize=256)
def _cached(name: str, geometry: VideoGeometry, params: tuple) -> torch.Tensor:
    if name in ("dense", "skip"):  # fixed patterns: every block, or none
        return torch.full((geometry.num_blocks, geometry.num_blocks), name == "dense", dtype=torch.bool)
    return behaviour(name)(geometry, **dict(params))


def block_mask(name: str, geometry: VideoGeometry, **params) -> torch.Tensor:
    """bool [NB, NB] block mask of a static (or fixed) pattern of the registry (cached per geometry and parameters)."""
    spec = PATTERNS.get(name)
    if spec is None or spec.selection not in ("fixed", "static"):
        known = sorted(n for n, s in PATTERNS.items() if s.selection in ("fixed", "static"))
        raise ValueError(f"unknown pattern {name!r}; known: {', '.join(known)}")
    try:
        return _cached(name, geometry, tuple(sorted(params.items())))
    except TypeError as e:
        raise ValueError(f"bad parameters for pattern {name!r}: {e}") from None


def mask_density(mask: torch.Tensor, geometry: VideoGeometry) -> float:
    """Fraction of video x video score entries a block mask computes (partial tail block counted exactly)."""
    n = torch.full((geometry.num_blocks,), geometry.block, dtype=torch.float64)
    n[-1] = geometry.video_tokens - (geometry.num_blocks - 1) * geometry.block
    return float((mask.double() * n[:, None] * n[None, :]).sum() / geometry.video_tokens ** 2)


def fit_density(name: str, geometry: VideoGeometry, target: float, **params) -> tuple[dict, torch.Tensor]:
    """Parameters of ``name`` giving the densest mask within ``target`` (bisection on its registry knob;
    the sparsest setting if even that exceeds it)."""
    if name not in TUNABLE:
        raise ValueError(f"pattern {name!r} has no density knob; tunable: {', '.join(sorted(TUNABLE))}")
    target = density(target, "target density")
    knob = PATTERNS[name].knob
    lo, hi = knob.lo, knob.hi
    for _ in range(30):
        mid = (lo + hi) / 2
        if mask_density(block_mask(name, geometry, **{**params, **knob.params(mid)}), geometry) < target:
            lo = mid
        else:
            hi = mid
    chosen = {**params, **knob.params(lo)}
    return chosen, block_mask(name, geometry, **chosen)


def honest_density(mask: torch.Tensor, geometry: VideoGeometry) -> float:
    """The ``density`` to ask for ``mask`` (a fitted mask) so that fitting it again gives the same mask and the router
    runs what was asked: its exact density plus less than the finest step of the block grid (fitting keeps masks
    strictly below what is asked) and at most 1e-4 (well inside the router's miss tolerance)."""
    return round(mask_density(mask, geometry) + min(0.5 / geometry.num_blocks ** 2, 1e-4), 7)


def build_layout(geometry: VideoGeometry, masks: torch.Tensor, text_lengths: list[int] | None = None,
                 device: torch.device | str = "cpu") -> BlockLayout:
    """Kernel layout from per-head video block masks [H, NB, NB]: text keys are always visited
    (``text_lengths`` gives each sample's valid text length when padded text is masked), text
    queries are dense rows."""
    if masks.dim() == 2:
        masks = masks[None]
    if masks.shape[-1] != geometry.num_blocks or masks.shape[-2] != geometry.num_blocks:
        raise ValueError(f"masks are {tuple(masks.shape)} but the geometry has {geometry.num_blocks} blocks per side")
    vr = geometry.video_range
    always = None
    if geometry.text:
        lo, hi = geometry.text_range
        lens = text_lengths or [geometry.text]
        if any(not 0 <= n <= geometry.text for n in lens):
            raise ValueError(f"text_lengths {lens} must lie in [0, {geometry.text}]")
        always = torch.tensor([[[lo, lo + n]] for n in lens], dtype=torch.int32, device=device)
    return BlockLayout.from_block_mask(masks.to(device), geometry.seq_len, geometry.seq_len, block_m=geometry.block,
                                       block_n=geometry.block, q_range=vr, kv_range=vr, kv_always=always)

