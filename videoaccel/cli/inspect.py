"""`videoaccel inspect`: summarise a profile, render a pattern's block layout, or measure how sparse a
model's self-attention is (--attention), as text and PNG."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from ..patterns import VideoGeometry

from ..patterns.registry import BLOCKS, DYNAMIC, ORDERS, STATIC, USER_FACING
from . import args as types


def add_parser(sub: argparse._SubParsersAction) -> None:
    insp = sub.add_parser("inspect", help="summarise a profile, or render a pattern's block layout, as text and PNG")
    insp.add_argument("profile", nargs="?", help="a profile .json to summarise (with -o: a layers x heads PNG)")
    insp.add_argument("--pattern", help=", ".join(USER_FACING))
    insp.add_argument("--geometry", help="TxHxW latent tokens after patchify, e.g. 21x30x52 (Wan2.1 480p 81f)")
    insp.add_argument("--text", type=types.non_negative_int, default=0, help="joined text tokens")
    insp.add_argument("--text-position", choices=["front", "back"], default="back")
    insp.add_argument("--block", type=int, default=128, choices=BLOCKS)
    insp.add_argument("--order", choices=ORDERS, default="tile")
    insp.add_argument("--param", action="append", default=[], help="pattern parameter NAME=VALUE (repeatable)")
    insp.add_argument("--density", type=types.density, help="fit the pattern's knob to this density")
    insp.add_argument("--qk", help="draft/pyramid: .safetensors with one head's 'q' and 'k' [S, D]")
    insp.add_argument("--synthetic", default="local", choices=["local", "temporal", "stripe"],
                      help="draft/pyramid without --qk: planted structure to draw from")
    insp.add_argument("-o", "--output", help="PNG path")
    insp.add_argument("--attention", action="store_true",
                      help="measure how sparse a model's self-attention is: oracle recall per layer/head during real generations")
    insp.add_argument("--model", help="--attention: diffusers pipeline directory (default: the embedded model)")
    insp.add_argument("--prompts", help="--attention: text file, one prompt per line")
    insp.add_argument("--frames", type=types.positive_int)
    insp.add_argument("--height", type=types.size)
    insp.add_argument("--width", type=types.size)
    insp.add_argument("--steps", type=types.positive_int)
    insp.add_argument("--json", help="--attention: write the rows (bench format) here")
    insp.set_defaults(func=_dispatch)


def _dispatch(a) -> int:
    if a.output:
        from ..pictures import require

        require()
    if a.attention:
        return attention_command(a.model, a.prompts, vars(a), a.output, a.json)
    if a.profile:
        return profile_summary(a.profile, a.output)
    if not (a.pattern and a.geometry and a.output):
        raise SystemExit("give a profile file, or --pattern, --geometry and -o")
    return pattern_layout(a.pattern, a.geometry, a.output, text=a.text, text_position=a.text_position, block=a.block,
                          order=a.order, params=a.param, density=a.density, qk=a.qk, synthetic=a.synthetic)


def attention_command(model: str | None, prompts_file: str | None, flags: dict, output: str | None, json_out: str | None) -> int:
    """inspect --attention: how sparse is this model's self-attention (oracle recall during real generations)."""
    from ..files import check_writable
    from ..profiling import attention_stats
    from . import session

    for out in (output, json_out):
        if out:
            check_writable(out)
    prompts = session.read_prompts(prompts_file) if prompts_file else ["a red circle slowly moving left"]
    model, _ = session.resolve_model(model)
    call = session.call_kwargs(flags, session.model_defaults(model))
    pipe = session.load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    print(session.describe_call(pipe, call, model) + f"; attention statistics on {len(prompts)} prompts (dense)", flush=True)
    obs = attention_stats.measure(pipe, prompts, **call)
    rows = obs.rows(Path(model).name)
    print(attention_stats.summary(rows))
    if output:
        from ..pictures import recall_png

        recall_png(rows, output)
        print(f"wrote {output} (oracle recall at density 0.15 by layer x head, one panel per token order)")
    if json_out:
        from ..benchmarks.record import header
        from ..files import write_json

        write_json(header("attention-recall", "videoaccel " + " ".join(sys.argv[1:]), rows), json_out)
        print(f"wrote {json_out}")
    return 0


def profile_summary(path: str, output: str | None) -> int:
    from ..plans import Profile
    from ..pictures import profile_png
    from ..profiling.inspect import summary

    try:
        prof = Profile.load(path)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    print(summary(prof))
    if output:
        profile_png(prof, output)
        print(f"wrote {output} (layers x heads per timestep bucket: colour = pattern, paler = sparser; legend inside)")
    return 0


def _parse_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise SystemExit(f"--param {item!r}: write NAME=VALUE, e.g. --param decay=0.5")
        params[key] = int(val) if val.lstrip("-").isdigit() else float(val)
    return params


def _load_qk(path: str | None, geometry: VideoGeometry, synthetic: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One head's q, k [S, D] from a .safetensors file (tensors 'q', 'k') or synthetic planted structure."""
    if path is None:
        from ..patterns.synthetic import planted_qk

        return planted_qk(geometry, synthetic, width=0.15, sharpness=30.0)
    from safetensors.torch import load_file

    t = load_file(path)
    if "q" not in t or "k" not in t:
        raise SystemExit(f"{path} must hold tensors 'q' and 'k' shaped [S, D] for one head")
    q, k = t["q"].float(), t["k"].float()
    if q.shape[0] != geometry.seq_len:
        raise SystemExit(f"{path}: q has {q.shape[0]} tokens but the geometry has {geometry.seq_len}")
    return q, k


def pattern_layout(pattern: str, geometry_spec: str, output: str, *, text: int, text_position: str, block: int, order: str,
                   params: list[str], density: float | None, qk: str | None, synthetic: str) -> int:
    """A pattern's block layout on a geometry as a PNG (dynamic patterns from given or planted q/k)."""
    import torch

    from ..patterns import VideoGeometry, block_mask, draft_masks, estimate_levels, fit_density, mask_density, sampled_masks
    from ..pictures import layout_png
    from ..plan_checks import plan_params

    dynamic = [p for p in DYNAMIC if p in USER_FACING]
    if pattern not in USER_FACING:
        raise SystemExit(f"unknown pattern {pattern!r}; choose from {', '.join(sorted(STATIC) + dynamic)}")
    try:
        geometry = VideoGeometry.parse(geometry_spec, text=text, text_position=text_position if text else "none",
                                       block=block, order=order)
    except ValueError as e:
        raise SystemExit(str(e)) from None
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
        try:
            kept = levels = block_mask(pattern, geometry, **kw)
        except ValueError as e:
            raise SystemExit(str(e)) from None
    dens = mask_density(kept, geometry)
    shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items())
    title = f"{pattern} {geometry_spec} {order}-major block {block}: density {dens:.3f} {shown}"
    layout_png(output, levels, geometry, title)
    print(f"{title}\nwrote {output} (left: block mask, query blocks down; right: kept fraction per frame pair)")
    return 0
