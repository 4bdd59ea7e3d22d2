"""`videoaccel inspect`: summarise a profile, or render a pattern's block layout, as text and PNG (how sparse a
model's self-attention is, ``--attention``: inspect_attention.py)."""
from __future__ import annotations

import argparse

import torch
from safetensors.torch import load_file

from ..patterns import VideoGeometry, block_mask, draft_masks, estimate_levels, fit_density, mask_density, sampled_masks
from ..patterns.registry import DYNAMIC, STATIC, USER_FACING
from ..patterns.synthetic import planted_qk
from ..pictures import layout_png, profile_png, require
from ..plan_checks import plan_params
from ..plans import Profile
from ..profile_summary import summary


def run(a: argparse.Namespace) -> int:
    if a.output:
        require()
    if a.profile:
        return profile_summary(a.profile, a.output)
    if not (a.pattern and a.geometry and a.output):
        raise ValueError("give a profile file, or --pattern, --geometry and -o")
    return pattern_layout(a.pattern, a.geometry, a.output, text=a.text, text_position=a.text_position, block=a.block,
                          order=a.order, params=a.param, density=a.density, qk=a.qk, synthetic=a.synthetic)


def profile_summary(path: str, output: str | None) -> int:
    profile = Profile.load(path)
    print(summary(profile))
    if output:
        profile_png(profile, output)
        print(f"wrote {output} (layers x heads per timestep bucket: colour = pattern, paler = sparser; legend inside)")
    return 0


def _parse_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r}: write NAME=VALUE, e.g. --param decay=0.5")
        params[key] = int(val) if val.lstrip("-").isdigit() else float(val)
    return params


def _load_qk(path: str | None, geometry: VideoGeometry, synthetic: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One head's q, k [S, D] from a .safetensors file (tensors 'q', 'k') or synthetic planted structure."""
    if path is None:
        return planted_qk(geometry, synthetic, width=0.15, sharpness=30.0)
    t = load_file(path)
    if "q" not in t or "k" not in t:
        raise ValueError(f"{path} must hold tensors 'q' and 'k' shaped [S, D] for one head")
    q, k = t["q"].float(), t["k"].float()
    if q.shape[0] != geometry.seq_len:
        raise ValueError(f"{path}: q has {q.shape[0]} tokens but the geometry has {geometry.seq_len}")
    return q, k


def pattern_layout(pattern: str, geometry_spec: str, output: str, *, text: int, text_position: str, block: int, order: str,
                   params: list[str], density: float | None, qk: str | None, synthetic: str) -> int:
    """A pattern's block layout on a geometry as a PNG (dynamic patterns from given or planted q/k)."""
    dynamic = [p for p in DYNAMIC if p in USER_FACING]
    if pattern not in USER_FACING:
        raise ValueError(f"unknown pattern {pattern!r}; choose from {', '.join(sorted(STATIC) + dynamic)}")
    geometry = VideoGeometry.parse(geometry_spec, text=text, text_position=text_position if text else "none",
                                   block=block, order=order)
    kw = dict(plan_params(pattern, tuple(_parse_params(params).items())))
    if pattern in dynamic:
        q, k = _load_qk(qk, geometry, synthetic)
        if pattern == "draft":
            levels = draft_masks(q[None, :, None], k[None, :, None], geometry, top_p=kw.get("top_p", 0.9))[0]
        elif pattern == "sampled":
            kw.pop("every", None)
            levels = sampled_masks(q[None, :, None], k[None, :, None], geometry, kw.pop("density", density or 0.25), **kw)[0]
        else:
            levels = estimate_levels(q[None, :, None], k[None, :, None], geometry)[0]
        kept = levels if levels.dtype == torch.bool else levels >= 0
    elif density is not None:
        kw, kept = fit_density(pattern, geometry, density, **kw)
        levels = kept
    else:
        kept = levels = block_mask(pattern, geometry, **kw)
    dens = mask_density(kept, geometry)
    shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items())
    title = f"{pattern} {geometry_spec} {order}-major block {block}: density {dens:.3f} {shown}"
    layout_png(output, levels, geometry, title)
    print(f"{title}\nwrote {output} (left: block mask, query blocks down; right: kept fraction per frame pair)")
    return 0
