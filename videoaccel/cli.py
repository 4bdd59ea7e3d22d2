"""The `videoaccel` command line."""
from __future__ import annotations

import argparse
from pathlib import Path
import os
import sys

from . import cli_args
from .patterns.registry import USER_FACING


def _prepare_triton() -> str:
    """Pick the device; without a GPU the Triton kernels run in the interpreter (set before import)."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    os.environ.setdefault("TRITON_INTERPRET", "1")
    return "cpu"


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.suite == "cost-table":
        import shlex

        from .benchmarks.cost_table import run as run_costs

        try:
            path = run_costs(args.out, "videoaccel " + shlex.join(sys.argv[1:]), geometry=args.geometry, heads=args.heads)
        except ValueError as e:
            raise SystemExit(str(e)) from None
        print(f"wrote {path} (give it to `videoaccel profile --cost-table`)")
        return 0
    if args.suite == "e2e":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("videoaccel bench e2e needs a CUDA GPU (full-size models); on CPU run `videoaccel bench --self-check`")
        from .benchmarks.e2e import CASES, run

        unknown = [m for m in args.models if m not in CASES]
        if unknown:
            raise SystemExit(f"unknown models {unknown}; choose from {', '.join(CASES)}")
        run(args.models, args.out, fp8_linear=not args.no_fp8_linear, presets=tuple(args.presets), compile=args.compile,
            cudagraphs=args.cudagraphs)
        return 0
    if not args.self_check:
        print("videoaccel bench: give a suite (e2e) or --self-check", file=sys.stderr)
        return 2
    device = _prepare_triton()
    from .selfcheck import format_table, run_self_check

    rows = run_self_check(device)
    print(f"videoaccel self-check on {device}" + (" (Triton interpreter)" if device == "cpu" else ""))
    print(format_table(rows))
    failed = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _parse_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise SystemExit(f"--param {item!r}: write NAME=VALUE, e.g. --param decay=0.5")
        params[key] = int(val) if val.lstrip("-").isdigit() else float(val)
    return params


def _load_qk(path: str | None, geometry, synthetic: str):
    """One head's q, k [S, D] from a .safetensors file (tensors 'q', 'k') or synthetic planted structure."""
    if path is None:
        from .patterns.synthetic import planted_qk

        return planted_qk(geometry, synthetic, width=0.15, sharpness=30.0)
    from safetensors.torch import load_file

    t = load_file(path)
    if "q" not in t or "k" not in t:
        raise SystemExit(f"{path} must hold tensors 'q' and 'k' shaped [S, D] for one head")
    q, k = t["q"].float(), t["k"].float()
    if q.shape[0] != geometry.seq_len:
        raise SystemExit(f"{path}: q has {q.shape[0]} tokens but the geometry has {geometry.seq_len}")
    return q, k


def _cmd_attention(args: argparse.Namespace) -> int:
    """inspect --attention: how sparse is this model's self-attention (oracle recall during real generations)."""
    from . import session
    from .files import check_writable
    from .profiling import attention_stats

    for out in (args.output, args.json):
        if out:
            check_writable(out)
    prompts = session.read_prompts(args.prompts) if args.prompts else ["a red circle slowly moving left"]
    model, _ = session.resolve_model(args.model)
    call = session.call_kwargs(args, session.model_defaults(model))
    pipe = session.load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    print(session.describe_call(pipe, call, model) + f"; attention statistics on {len(prompts)} prompts (dense)", flush=True)
    obs = attention_stats.measure(pipe, prompts, **call)
    rows = obs.rows(Path(model).name)
    print(attention_stats.summary(rows))
    if args.output:
        attention_stats.write_png(rows, args.output)
        print(f"wrote {args.output} (block recall at density 0.15 by layer x head; frame order left, tile order right)")
    if args.json:
        from .benchmarks.record import header
        from .files import write_json

        write_json(header("attention-recall", "videoaccel " + " ".join(sys.argv[1:]), rows), args.json)
        print(f"wrote {args.json}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    if args.attention:
        return _cmd_attention(args)
    if args.profile:
        from .plans import Profile
        from .profiling.inspect import summary, write_png

        try:
            prof = Profile.load(args.profile)
        except ValueError as e:
            raise SystemExit(str(e)) from None
        print(summary(prof))
        if args.output:
            write_png(prof, args.output)
            print(f"wrote {args.output} (rows: layers, columns: heads, one panel per timestep bucket; paler = sparser)")
        return 0
    if not (args.pattern and args.geometry and args.output):
        raise SystemExit("videoaccel inspect: give a profile file, or --pattern, --geometry and -o")
    import torch

    from .patterns import DYNAMIC, STATIC, VideoGeometry, block_mask, draft_masks, estimate_levels, fit_density, mask_density
    from .patterns.registry import USER_FACING
    from .patterns.render import write_layout_png
    from .plan_checks import plan_params

    dynamic = [p for p in DYNAMIC if p in USER_FACING]
    if args.pattern not in USER_FACING:
        raise SystemExit(f"unknown pattern {args.pattern!r}; choose from {', '.join(sorted(STATIC) + dynamic)}")
    try:
        geometry = VideoGeometry.parse(args.geometry, text=args.text, text_position=args.text_position if args.text else "none",
                                       block=args.block, order=args.order)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    params = dict(plan_params(args.pattern, tuple(_parse_params(args.param).items())))
    if args.pattern in dynamic:
        q, k = _load_qk(args.qk, geometry, args.synthetic)
        if args.pattern == "draft":
            levels = draft_masks(q[None, :, None], k[None, :, None], geometry, top_p=params.get("top_p", 0.9))[0]
        else:
            levels = estimate_levels(q[None, :, None], k[None, :, None], geometry)[0]
        kept = levels if levels.dtype == torch.bool else levels >= 0
    elif args.density is not None:
        params, kept = fit_density(args.pattern, geometry, args.density, **params)
        levels = kept
    else:
        try:
            kept = levels = block_mask(args.pattern, geometry, **params)
        except ValueError as e:
            raise SystemExit(str(e)) from None
    dens = mask_density(kept, geometry)
    shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    title = f"{args.pattern} {args.geometry} {args.order}-major block {args.block}: density {dens:.3f} {shown}"
    write_layout_png(args.output, levels, geometry, title)
    print(f"{title}\nwrote {args.output} (left: blocks, query rows down; right: kept fraction per frame pair)")
    return 0


def _cmd_profile(args: argparse.Namespace) -> int:
    from . import session
    from .files import check_writable
    from .generate import _check_geometry
    from .profiling import ProfileConfig, profile_pipeline
    from .profiling.checkpoint import check_checkpoint

    prompts = session.read_prompts(args.prompts)
    checkpoint = args.output + ".partial"  # resume an interrupted run with the same settings
    check_writable(args.output)
    check_checkpoint(checkpoint)
    cfg = ProfileConfig(error_budget=args.error_budget, target_density=args.target_density, buckets=args.buckets,
                        block=args.block, seed=args.seed, probe=not args.no_probe, fp8=args.fp8, cost_table=args.cost_table)
    model, _ = session.resolve_model(args.model)
    call = session.call_kwargs(args, session.model_defaults(model))
    _check_geometry(model, call)
    pipe = session.load_pipeline(model)
    print(session.describe_call(pipe, call, model) + f"; calibrating on {len(prompts)} prompts (dense)", flush=True)
    prof = profile_pipeline(pipe, prompts, cfg, name=args.name or Path(args.output).stem, seed=args.seed,
                            checkpoint=checkpoint, **call)
    try:
        prof.save(args.output)
    except OSError as e:
        raise SystemExit(f"cannot write {args.output}: {e}") from None
    from .profiling.inspect import summary

    Path(checkpoint).unlink(missing_ok=True)
    print(summary(prof))
    print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoaccel", description="Faster video diffusion transformers.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="check and time the kernels on this machine")
    bench.add_argument("suite", nargs="?", choices=["e2e", "cost-table"],
                       help="e2e: one denoising step of full-size models (GPU); cost-table: kernel time per pattern, density, "
                            "precision, head dim and block on this GPU, for the profiler")
    bench.add_argument("--geometry", default="21x30x52", help="cost-table: latent grid TxHxW (default Wan2.1 480p 81 frames)")
    bench.add_argument("--heads", type=int, default=12, help="cost-table: heads per call")
    bench.add_argument("--self-check", action="store_true", help="check every kernel against the reference on small shapes")
    bench.add_argument("--models", nargs="*", default=["wan1.3b-480p81f", "cogvideox5b-480p49f", "wan14b-720p81f"],
                       help="e2e cases (also hunyuan-720p129f)")
    bench.add_argument("--out", default=os.environ.get("OUT", "."), help="directory for the bench JSON")
    bench.add_argument("--no-fp8-linear", action="store_true", help="skip the torchao FP8 linear settings")
    bench.add_argument("--compile", action="store_true", help="e2e: also time each setting under regional torch.compile")
    bench.add_argument("--cudagraphs", action="store_true", help="e2e with --compile: also CUDA graphs (mode reduce-overhead)")
    bench.add_argument("--presets", nargs="*", default=["radial:0.25", "radial:0.1", "radial:0.1+fp8"],
                       help="videoaccel presets to time in e2e")
    bench.set_defaults(func=_cmd_bench)

    insp = sub.add_parser("inspect", help="summarise a profile, or render a pattern's block layout, as text and PNG")
    insp.add_argument("profile", nargs="?", help="a profile .json to summarise (with -o: a layers x heads PNG)")
    insp.add_argument("--pattern", help=", ".join(USER_FACING))
    insp.add_argument("--geometry", help="TxHxW latent tokens after patchify, e.g. 21x30x52 (Wan2.1 480p 81f)")
    insp.add_argument("--text", type=cli_args.non_negative_int, default=0, help="joined text tokens")
    insp.add_argument("--text-position", choices=["front", "back"], default="back")
    insp.add_argument("--block", type=int, default=128, choices=cli_args.BLOCKS)
    insp.add_argument("--order", choices=["frame", "tile"], default="tile")
    insp.add_argument("--param", action="append", default=[], help="pattern parameter NAME=VALUE (repeatable)")
    insp.add_argument("--density", type=cli_args.density, help="fit the pattern's knob to this density")
    insp.add_argument("--qk", help="draft/pyramid: .safetensors with one head's 'q' and 'k' [S, D]")
    insp.add_argument("--synthetic", default="local", choices=["local", "temporal", "stripe"],
                      help="draft/pyramid without --qk: planted structure to draw from")
    insp.add_argument("-o", "--output", help="PNG path")
    insp.add_argument("--attention", action="store_true",
                      help="measure how sparse a model's self-attention is: oracle recall per layer/head during real generations")
    insp.add_argument("--model", help="--attention: diffusers pipeline directory (default: the embedded model)")
    insp.add_argument("--prompts", help="--attention: text file, one prompt per line")
    insp.add_argument("--frames", type=cli_args.positive_int)
    insp.add_argument("--height", type=cli_args.size)
    insp.add_argument("--width", type=cli_args.size)
    insp.add_argument("--steps", type=cli_args.positive_int)
    insp.add_argument("--json", help="--attention: write the rows (bench format) here")
    insp.set_defaults(func=_cmd_inspect)

    from .compare import add_compare_parser
    from .generate import add_generate_parser

    add_generate_parser(sub)
    add_compare_parser(sub)

    prof = sub.add_parser("profile", help="calibrate a pipeline once and write its per-head attention plans")
    prof.add_argument("--model", help="diffusers pipeline directory or hub id (default: the embedded tiny model)")
    prof.add_argument("--prompts", required=True, help="text file, one calibration prompt per line")
    prof.add_argument("-o", "--output", required=True, help="profile .json to write")
    prof.add_argument("--steps", type=cli_args.positive_int,
                      help="this, --guidance and the geometry default to the model's videoaccel.json")
    prof.add_argument("--guidance", type=cli_args.non_negative)
    prof.add_argument("--height", type=cli_args.size)
    prof.add_argument("--width", type=cli_args.size)
    prof.add_argument("--frames", type=cli_args.positive_int)
    prof.add_argument("--error-budget", type=cli_args.positive, default=0.05,
                      help="predicted relative L2 error of the final latent (the cheapest profile that meets it)")
    prof.add_argument("--target-density", type=cli_args.density, help="instead: the generation's total attention cost relative "
                      "to dense (dense warm-up steps count 1.0, skipped heads 0), least predicted error first")
    prof.add_argument("--cost-table", help="`videoaccel bench cost-table` JSON of the target GPU (default: analytic costs)")
    prof.add_argument("--no-probe", action="store_true", help="skip the step-sensitivity probe (every step weighs the same)")
    prof.add_argument("--fp8", action=argparse.BooleanOptionalAction, default=None,
                      help="FP8 variants as per-head candidates (default: when a CUDA GPU is present)")
    prof.add_argument("--buckets", type=cli_args.positive_int, default=3, help="timestep buckets")
    prof.add_argument("--block", type=int, default=128, choices=cli_args.BLOCKS,
                      help="attention block; 64 for short sequences or heads that need finer masks")
    prof.add_argument("--seed", type=int, default=0)
    prof.add_argument("--name")
    prof.set_defaults(func=_cmd_profile)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; a known error (bad value, unreadable or unwritable file) is one line on stderr and exit code 2."""
    # Idle OpenMP threads sleep instead of spinning: on a shared CPU spinning threads take the cores from the
    # working ones (measured: sparse attention 3.5x slower with 2 spinning threads under load). Before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as e:
        message = str(e)
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        message = e.code
    print(f"videoaccel {args.command}: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
