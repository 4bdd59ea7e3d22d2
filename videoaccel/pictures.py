"""The PNGs `videoaccel inspect` writes, each readable on its own: titled axes, a colour bar, a legend.

Why matplotlib (the optional ``bench`` extra; the ``test`` extra has it too): axis titles, tick labels, colour bars
and legends are what these pictures lacked, and drawing them by hand is what matplotlib is for. Without it
``inspect -o`` stops before any work and names the install command (``require``).
"""
from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import torch

from .files import atomic_path
from .patterns.registry import PATTERNS, USER_FACING

if TYPE_CHECKING:
    from .patterns import VideoGeometry
    from .plans import Profile

# Pyramid levels of a block pair: kept exactly, kept through 2x/4x/8x mean-pooled keys and values, skipped.
LEVELS = (("skipped", "#191919"), ("kept", "#ffc828"), ("pooled 2x", "#3ca03c"), ("pooled 4x", "#286ea0"),
          ("pooled 8x", "#6e3c78"))


def require() -> None:
    """ValueError naming the install command when matplotlib is missing (checked before any model work)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ValueError("the PNG is drawn with matplotlib, which is not installed: pip install -e '.[bench]' "
                         "(or leave out -o for the text summary)")


def _matplotlib() -> ModuleType:
    """matplotlib (an optional extra: imported here only) on its file backend, with pyplot and the modules
    pyplot loads (``cm``, ``colors``, ``patches``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 - loads pyplot, cm, colors and patches as matplotlib's attributes

    return matplotlib


def _save(fig, path: str) -> None:
    """The figure as PNG through an atomic write: a failed write leaves the old picture intact."""
    plt = _matplotlib().pyplot
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    except (OSError, ValueError) as e:
        raise OSError(f"could not write {path}: {e} (check the directory exists and the name ends in .png)") from None
    finally:
        plt.close(fig)


def _rgb(name: str) -> np.ndarray:
    """A pattern's colour (the registry keeps BGR) as RGB in [0, 1]."""
    return np.array(PATTERNS[name].color[::-1], np.float64) / 255 if name in PATTERNS else np.zeros(3)


def profile_png(profile: Profile, path: str) -> None:
    """Layers (rows) x heads (columns), one panel per timestep bucket: hue = pattern, strength = density,
    hatching = mass-compensated, a black dot = FP8."""
    if not profile.layers:
        raise ValueError(f"profile {profile.name!r} has no per-layer plans to draw (a preset: every head runs "
                         f"{profile.default.label})")
    mpl = _matplotlib()
    plt, Patch = mpl.pyplot, mpl.patches.Patch
    n_layers = max(profile.layers) + 1
    n_buckets = max(len(b) for b in profile.layers.values())
    n_heads = max(len(h) for b in profile.layers.values() for h in b)
    fig, axes = plt.subplots(1, n_buckets, figsize=(1.2 + 0.45 * n_heads * n_buckets, 1.6 + 0.3 * n_layers), squeeze=False)
    used = set()
    for b, ax in enumerate(axes[0]):
        img = np.ones((n_layers, n_heads, 3))
        for layer, buckets in profile.layers.items():
            for h, p in enumerate(buckets[min(b, len(buckets) - 1)]):
                used.add(p.pattern)
                d = 1.0 if np.isnan(p.density) else p.density
                img[layer, h] = _rgb(p.pattern) * (0.35 + 0.65 * d) + (0.65 - 0.65 * d)
                if p.compensate:
                    ax.add_patch(plt.Rectangle((h - 0.5, layer - 0.5), 1, 1, fill=False, hatch="///", lw=0))
                if p.precision == "fp8":
                    ax.plot(h, layer, "k.", ms=5)
        ax.imshow(img, aspect="auto", interpolation="nearest")
        ax.set(title=f"timestep bucket {b}", xlabel="head", ylabel="layer" if b == 0 else None,
               xticks=range(n_heads), yticks=range(n_layers))
    handles = [Patch(color=_rgb(n), label=n) for n in USER_FACING if n in used]
    handles += [Patch(facecolor="white", edgecolor="black", hatch="///", label="mass-compensated"),
                plt.Line2D([], [], color="k", marker=".", ls="", label="FP8 (else bf16)")]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.95), title="plan")
    grey = mpl.colors.LinearSegmentedColormap.from_list("density", [(0.72,) * 3, (0.2,) * 3])  # a grey plan at each density
    fig.colorbar(mpl.cm.ScalarMappable(mpl.colors.Normalize(0, 1), grey), ax=axes[0].tolist(), location="bottom", shrink=0.6, pad=0.2,
                 label="attention density of the plan (the colour's strength; paler = sparser)")
    fig.suptitle(f"profile {profile.name}: the plan of every layer and head", y=1.02)
    _save(fig, path)


def frame_pair_fraction(levels: torch.Tensor, geometry: VideoGeometry) -> np.ndarray:
    """Kept fraction of (query token, key token) pairs per (query frame, key frame) [T, T]. A block weighs in every
    frame its tokens fall in, by its tokens there: counted by its centre's frame only, a frame no centre rounds to
    (frame 20 of 21x30x52 in tile order, block 128) showed nothing kept."""
    kept = (levels if levels.dtype == torch.bool else levels >= 0).double().cpu()
    frame = geometry.token_coords[:, 0]
    block = torch.arange(frame.numel()) // geometry.block
    w = torch.zeros(geometry.num_blocks, geometry.frames, dtype=torch.float64)
    w.index_put_((block, frame), torch.ones(frame.numel(), dtype=torch.float64), accumulate=True)  # tokens of block b in frame t
    per_frame = w.sum(0)
    return (w.T @ kept @ w / (per_frame[:, None] * per_frame[None, :])).numpy()


def layout_png(path: str, levels: torch.Tensor, geometry: VideoGeometry, title: str) -> None:
    """A block layout (``levels``: bool kept, or int8 pyramid levels -1 skip / 0 full / 1-3 pooled): which key blocks
    each query block visits, beside the fraction of block pairs kept per (query frame, key frame)."""
    mpl = _matplotlib()
    plt, Patch = mpl.pyplot, mpl.patches.Patch
    lv = (torch.where(levels, 0, -1) if levels.dtype == torch.bool else levels.long()).cpu().numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5))
    left.imshow(lv + 1, cmap=mpl.colors.ListedColormap([c for _, c in LEVELS]), vmin=0, vmax=len(LEVELS) - 1, interpolation="nearest")
    left.set(title=f"block mask ({geometry.order} order, block {geometry.block})", xlabel="key block", ylabel="query block")
    shown = sorted({int(v) for v in np.unique(lv)})
    left.legend(handles=[Patch(color=LEVELS[v + 1][1], label=LEVELS[v + 1][0]) for v in shown], loc="upper right", fontsize=8)
    im = right.imshow(frame_pair_fraction(levels, geometry), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    right.set(title="block pairs kept per frame pair", xlabel="key frame", ylabel="query frame")
    fig.colorbar(im, ax=right, label="fraction kept")
    fig.suptitle(title, fontsize=10, y=1.02)
    _save(fig, path)


def recall_png(rows: list[dict], path: str, block: int | None = None, density: float = 0.15) -> None:
    """Oracle recall (the attention mass a block mask at ``density`` keeps) by layer x head, one panel per token order."""
    plt = _matplotlib().pyplot
    block = block or max(r["block"] for r in rows)
    picked = [r for r in rows if r["block"] == block and r["density"] == density and r["order"] != "any"]
    fig, axes = plt.subplots(1, len(picked), figsize=(1.5 + 3.2 * len(picked), 4.5), squeeze=False)
    for ax, r in zip(axes[0], picked):
        width = len(next(h for h in r["per_head"] if h is not None))
        grid = np.array([h if h is not None else [np.nan] * width for h in r["per_head"]], np.float64)
        im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set(title=f"{r['order']} order: mean {r['recall']:.2f}", xlabel="head", ylabel="layer",
               xticks=range(grid.shape[1]), yticks=range(grid.shape[0]))
    fig.colorbar(im, ax=axes[0].tolist(), label="attention mass kept (recall)")
    fig.suptitle(f"oracle recall of block-{block} masks at density {density}", y=1.02)
    _save(fig, path)
