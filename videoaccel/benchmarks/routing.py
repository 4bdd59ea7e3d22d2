"""`python -m videoaccel.benchmarks.routing OUT`: the routing path on a GPU, checked and timed.

1. Kernels of one launch per call, against float references, outputs poisoned before each run: the Gluon
   and classic kernels with head roles (a dense head, an idle head whose rows must stay poisoned, LUT
   heads of different densities), text joined in front, head dims 64 and 128; the compensation epilogue
   (bf16 kernel vs its float32 PyTorch path); the one-pass sampled-mass kernel (vs the float32 path) and
   its time against cuDNN dense, beside its FLOP share.
2. A whole generation of the embedded model at the testbed geometry with a mixed profile (sampled,
   compensated, static, dense, skipped heads; a warm-up step; two buckets) with every transformer block
   under ``torch.cuda.set_sync_debug_mode("error")``: no host synchronisation on the attention path
   (after two generations: tables are built, and per-call graphs captured, once per key), and its host
   time per call. The same with whole-forward CUDA graphs: captures, and the latents against the eager
   and the compiled runs.
3. Host time per attention call (the router's own clock around ``attend``: kernels run asynchronously,
   so this is the path's host cost) on Wan2.1-1.3B 480p, eager, sampled:0.1 and radial:0.1.
Writes ``routing-<device>.json`` (bench format) and prints a table last.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import replace

import torch
from diffusers import WanPipeline

import videoaccel  # the public API, as a user calls it

from ..kernels import backends, dense_attention
from ..kernels.compensate import compensate_
from ..kernels.reference import masked_attention
from ..kernels.sampled_mass import sampled_mass_triton
from ..patterns import VideoGeometry, build_layout
from ..patterns.sampled import default_rows, estimate_cost, sample_rows, sampled_block_mass
from ..pipelines import router_of
from ..pipelines.compile import compile_transformer, uncompile
from ..plans import Plan, Profile
from ..tiny.model import TESTBED, TEXT_LEN
from .e2e import build
from .record import run_suite, suite_command, write_record
from .timing import median_ms


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def kernel_rows() -> list[dict]:
    rows = []
    for D, text in ((64, 226), (128, 0), (128, 226)):
        g = VideoGeometry(7, 15, 23, text=text, text_position="front" if text else "none", block=128)
        gen = torch.Generator(device="cuda").manual_seed(D + text)
        H = 6
        q, k, v = (torch.randn(1, g.seq_len, H, D, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(3))
        dens = torch.tensor([1.0, 0.5, 0.1, 0.2, 0.3, 0.6], device="cuda")[:, None, None]
        masks = torch.rand(H, g.num_blocks, g.num_blocks, device="cuda", generator=gen) < dens
        lay = build_layout(g, masks.cpu(), device="cuda")
        lay = replace(lay, dense_heads=(0,), idle_heads=(1,), validated=False)
        ref, _ = masked_attention(q.float(), k.float(), v.float(), lay.key_mask(1))
        for name in ("gluon", "triton"):
            out = torch.full_like(q, math.nan)
            backends.run(backends.BACKENDS[name], q, k, v, lay, D ** -0.5, False, False, out)
            live = [h for h in range(H) if h != 1]
            rows.append(dict(check=f"roles-{name}", head_dim=D, text=text, seq_len=g.seq_len,
                             rel_l2=_rel(out[:, :, live], ref[:, :, live]), unwritten=int(torch.isnan(out[:, :, live]).sum()),
                             idle_untouched=bool(torch.isnan(out[:, :, 1]).all())))
        out, lse = backends.run(backends.BACKENDS["gluon"], q, k, v, lay, D ** -0.5, True, False, None)
        a = (out.clone(), lse.clone())
        heads = torch.tensor([2, 3, 4], device="cuda")
        compensate_(q, k, v, a[0], a[1], lay, heads, D ** -0.5, backend="triton")
        b = (out.float(), lse.clone())
        compensate_(q.float(), k.float(), v.float(), b[0], b[1], lay, heads, D ** -0.5, backend="torch")
        rows.append(dict(check="compensation-bf16-vs-float32", head_dim=D, text=text, rel_l2=_rel(a[0][:, :, 2:5], b[0][:, :, 2:5]),
                         lse_max_diff=float((a[1] - b[1])[:, 2:5].abs().max())))
    # the estimate at Wan2.1-1.3B 480p: 32760 tokens, 12 heads, block 128, 8 rows a block
    g = VideoGeometry(21, 30, 52, block=128)
    q, k = (torch.randn(1, g.seq_len, 12, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    v = torch.randn_like(q)
    r = default_rows(g.block)
    idx = sample_rows(g, r, q.device)
    heads = torch.arange(12, dtype=torch.int32, device="cuda")
    out = torch.full((1, 12, g.num_blocks, g.num_blocks), math.nan, device="cuda")
    fused = sampled_mass_triton(q, k, idx, g.video_range, g.block, 128 ** -0.5, out=out, heads=heads)[0]
    ref = sampled_block_mass(q, k, g, r, fused=False)
    ms = median_ms(lambda: sampled_mass_triton(q, k, idx, g.video_range, g.block, 128 ** -0.5, out=out, heads=heads))
    dense_ms = median_ms(lambda: dense_attention(q, k, v))
    share = estimate_cost(r, g.block, every=1)
    rows.append(dict(check="sampled-mass-one-pass", rel_l2=_rel(fused, ref), unwritten=int(torch.isnan(fused).sum()), ms=ms,
                     dense_ms=dense_ms, time_share=ms / dense_ms, flop_share=share, x_flop_share=ms / dense_ms / share))
    return rows


def _mixed_profile():
    heads = [Plan("sampled", (("density", 0.25),), compensate=True), Plan("sampled", (("density", 0.15),)),
             Plan("radial", (("density", 0.3),)), Plan()]
    other = [Plan("skip"), Plan("diagonal", (("density", 0.2),), compensate=True), Plan("sampled", (("density", 0.1),)),
             Plan("sampled", (("density", 0.3),), compensate=True)]
    return Profile("mixed", layers={i: [heads if i % 2 else other, other if i % 2 else heads] for i in range(8)},
                   bucket_edges=[500.0], dense_steps=1, block=64, order="tile")


def generation_rows(model_dir: str = "assets/tiny-t2v", steps: int = 6) -> list[dict]:
    torch.backends.cudnn.benchmark = True
    pipe = WanPipeline.from_pretrained(model_dir, torch_dtype=torch.bfloat16).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    f, h, w = TESTBED
    call = dict(num_inference_steps=steps, guidance_scale=5.0, max_sequence_length=TEXT_LEN, num_frames=f, height=h, width=w,
                output_type="latent")
    blocks = pipe.transformer.blocks
    syncs = {"on": False}
    hooks = [blocks[0].register_forward_pre_hook(lambda *a: torch.cuda.set_sync_debug_mode("error") if syncs["on"] else None),
             blocks[-1].register_forward_hook(lambda *a: torch.cuda.set_sync_debug_mode(0))]

    def generate():
        g = torch.Generator("cpu").manual_seed(7)
        return pipe("a red circle slowly moving left", generator=g, **call).frames

    rows = []
    with videoaccel.accelerated(pipe, _mixed_profile()) as acc:
        generate()  # tables, tuning
        generate()  # the per-call graphs' captures (a capture synchronises, once per key)
        router = pipe.transformer._videoaccel.router
        calls0, host0 = sum(st.calls for st in router.stats.values()), router.host_s
        syncs["on"] = True
        try:
            eager = generate()
            ok, err = True, None
        except RuntimeError as e:  # a synchronising call on the attention path
            ok, err, eager = False, str(e)[:300], None
        syncs["on"] = False
        rep = acc.report()
        calls = sum(st.calls for st in router.stats.values()) - calls0
        rows.append(dict(check="generation-eager-sync-free", ok=ok, error=err, mean_density=rep.mean_density,
                         fallbacks=rep.fallbacks, call_graphs=len(router.runner.graphs.graphs),
                         host_ms_per_call=1e3 * (router.host_s - host0) / max(calls, 1)))
        for hd in hooks:  # the whole-forward graphs replay no block: the check above is the attention path's
            hd.remove()
        compile_transformer(pipe.transformer)
        generate()
        compiled = generate()  # the same without graphs: what compilation alone changes in the latents
        uncompile(pipe.transformer)
        compile_transformer(pipe.transformer, mode="reduce-overhead")
        try:
            generate()  # compiles and captures
            graphed = generate()
            graphs = pipe.transformer._videoaccel.step_hook.graphs
            rows.append(dict(check="generation-cuda-graphs", ok=True, captures=graphs.captures, graphs=len(graphs.graphs),
                             vs_eager=_rel(graphed.float(), eager.float()) if eager is not None else None,
                             compiled_vs_eager=_rel(compiled.float(), eager.float()) if eager is not None else None,
                             vs_compiled=_rel(graphed.float(), compiled.float())))
        except Exception as e:  # noqa: BLE001 - recorded
            rows.append(dict(check="generation-cuda-graphs", ok=False, error=repr(e)[:400]))
        finally:
            syncs["on"] = False
            torch.cuda.set_sync_debug_mode(0)
            uncompile(pipe.transformer)
    return rows


def host_rows() -> list[dict]:
    model, kw = build("wan1.3b-480p81f")
    rows = []
    with torch.no_grad():
        for plan in ("radial:0.1", "sampled:0.1"):
            videoaccel.accelerate(model, plan)
            router = router_of(model)
            for i in range(3):
                kw["timestep"] = torch.tensor([700.0 - i], device="cuda")
                model(**kw)
            torch.cuda.synchronize()
            calls0, host0 = sum(s.calls for s in router.stats.values()), router.host_s
            for i in range(4):
                kw["timestep"] = torch.tensor([600.0 - i], device="cuda")
                model(**kw)
            torch.cuda.synchronize()
            calls = sum(s.calls for s in router.stats.values()) - calls0
            rows.append(dict(check="host-time-per-call", case="wan1.3b-480p81f", plan=plan, calls=calls,
                             host_ms_per_call=1e3 * (router.host_s - host0) / calls))
            videoaccel.restore(model)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.routing", description="writes OUT/routing-<device>.json")
    ap.add_argument("out_dir", nargs="?", default="bench", metavar="OUT")
    out_dir = ap.parse_args(argv).out_dir
    rows = []
    for part in (kernel_rows, generation_rows, host_rows):
        try:
            got = part()
        except Exception as e:  # noqa: BLE001 - one part failing must not hide the others
            got = [dict(check=part.__name__, ok=False, error=repr(e)[:500])]
        rows += got
        for r in got:
            print(r, flush=True)
        write_record("routing", suite_command(__spec__.name, argv), rows, out_dir)
    print("\ncheck".ljust(36) + "result")
    for r in rows:
        print(f"{r['check']:<35} " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                               for k, v in r.items() if k != "check"))


if __name__ == "__main__":
    run_suite(main)
