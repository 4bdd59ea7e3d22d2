"""`python -m videoaccel.benchmarks.patterns`: GPU benchmark of the pattern library at Wan2.1 geometries, one run.

Per pattern: kernel time vs FlexAttention on the same layout, tile-major vs frame-major order
(same parameters), and plan overhead (layout build, draft estimation, token reordering, mass
compensation) as a share of the attention time the pattern saves against cuDNN dense.
Writes bench-format JSON `patterns-<device>.json` to $OUT.

    python -m videoaccel.benchmarks.patterns
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..kernels import sparse_attention
from ..kernels.compensate import compensate_
from ..patterns import (VideoGeometry, block_mask, build_layout, draft_masks, estimate_levels, fit_density, pyramid_attention,
                        to_frame_major, to_tile_major)
from ..patterns.registry import behaviour
from ..patterns.synthetic import planted_qk
from .cases import CASES
from .record import run_suite, suite_command, write_record
from .timing import bench_ms, compiled_flex, flex_block_mask, wall_ms as wall

WAN = ("wan1.3b-480p81f", "wan14b-720p81f")


def bench(fn):
    return bench_ms(fn, rep=150)


def structured_qkv(g: VideoGeometry, heads: int, dim: int):
    """Real-looking inputs: half the heads local, half temporal structure, plus noise."""
    qs, ks = [], []
    for h in range(heads):
        q, k = planted_qk(g, "local" if h % 2 == 0 else "temporal", head_dim=dim, width=0.1 + 0.02 * h, sharpness=20.0, seed=h)
        qs.append(q)
        ks.append(k)
    q = torch.stack(qs, 1)[None].cuda()
    k = torch.stack(ks, 1)[None].cuda()
    q, k = q + 0.3 * torch.randn_like(q), k + 0.3 * torch.randn_like(k)
    return q.bfloat16(), k.bfloat16(), torch.randn_like(q).bfloat16()


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.patterns",
                            description="writes $OUT/patterns-<device>.json").parse_args(argv)
    out_dir = os.environ.get("OUT", ".")
    flex = compiled_flex()
    res = []

    def rec(**kw):
        res.append(kw)
        print(json.dumps(kw), flush=True)

    for case in WAN:
        c = CASES[case]
        H, D, hidden, layers = c.heads, c.head_dim, c.hidden, c.layers
        g_tile = VideoGeometry(*c.grid, order="tile")
        S = g_tile.seq_len
        q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        qh, kh, vh = (t.transpose(1, 2).contiguous() for t in (q, k, v))
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            dense_ms = bench(lambda: F.scaled_dot_product_attention(qh, kh, vh))
        rec(case=case, impl="cudnn", pattern="dense", layout="dense", order="frame", density=1.0, head_dim=D, seq_len=S,
            heads=H, ms=dense_ms)
        x = torch.randn(1, S, hidden, device="cuda", dtype=torch.bfloat16)
        reorder_ms = bench(lambda: to_frame_major(to_tile_major(x, g_tile), g_tile))
        for name, target in (("radial", 0.25), ("radial", 0.1), ("diagonal", 0.25), ("diagonal", 0.1),
                             ("multi_diagonal", 0.1), ("vertical_stripe", 0.1)):
            params, _ = fit_density(name, g_tile, target)
            for order in ("tile", "frame"):
                g = g_tile.with_order(order)
                t0 = time.perf_counter()
                behaviour(name)(g, **params)  # uncached build time; block_mask caches it per geometry
                build_ms = 1e3 * (time.perf_counter() - t0)
                masks = block_mask(name, g, **params)[None].expand(H, -1, -1)
                lay = build_layout(g, masks, device="cuda")
                build_ms += wall(lambda: build_layout(g, masks, device="cuda"))
                ms = bench(lambda: sparse_attention(q, k, v, lay))
                bm = flex_block_mask(masks, S, g.block)
                fms = bench(lambda: flex(qh, kh, vh, block_mask=bm))
                saved = dense_ms - ms
                overhead = build_ms / 50 + (reorder_ms / layers if order == "tile" else 0.0)  # build amortised over 50 steps
                rec(case=case, impl="videoaccel-bf16", pattern=name, params=params, layout=name, order=order,
                    target_density=target, density=round(lay.density, 4), head_dim=D, seq_len=S, heads=H, ms=ms, flex_ms=fms,
                    x_flex=fms / ms, speedup_vs_cudnn=dense_ms / ms, layout_build_ms=build_ms,
                    reorder_ms_per_layer=reorder_ms / layers if order == "tile" else 0.0,
                    overhead_share_of_saved=overhead / saved if saved > 0 else None)

        # dynamic patterns on structured inputs, tile order
        qs, ks, vs = structured_qkv(g_tile, H, D)
        for top_p in (0.9, 0.7):
            masks = draft_masks(qs, ks, g_tile, top_p=top_p)
            draft_ms = bench(lambda: draft_masks(qs, ks, g_tile, top_p=top_p))
            lay = build_layout(g_tile, masks, device="cuda")
            build_ms = wall(lambda: build_layout(g_tile, masks, device="cuda"))
            ms = bench(lambda: sparse_attention(qs, ks, vs, lay))
            bm = flex_block_mask(masks.cpu(), S, g_tile.block)
            qsh, ksh, vsh = (t.transpose(1, 2).contiguous() for t in (qs, ks, vs))
            fms = bench(lambda: flex(qsh, ksh, vsh, block_mask=bm))
            saved = dense_ms - ms
            rec(case=case, impl="videoaccel-bf16", pattern="draft", params={"top_p": top_p}, layout="draft", order="tile",
                density=round(lay.density, 4), head_dim=D, seq_len=S, heads=H, ms=ms, flex_ms=fms, x_flex=fms / ms,
                speedup_vs_cudnn=dense_ms / ms, draft_ms=draft_ms, layout_build_ms=build_ms,
                overhead_share_of_saved=(draft_ms + build_ms + reorder_ms / layers) / saved if saved > 0 else None)
        for thr in ((0.5, 0.7, 0.85, 0.95), (0.7, 0.9)):
            levels = estimate_levels(qs, ks, g_tile, thr)
            ms = bench(lambda: pyramid_attention(qs, ks, vs, g_tile, levels))
            ms_c = bench(lambda: pyramid_attention(qs, ks, vs, g_tile, levels, compensate=True))
            lay0 = build_layout(g_tile, levels == 0, device="cuda")
            out0, lse0 = sparse_attention(qs, ks, vs, lay0, return_lse=True)
            heads = torch.arange(H, device="cuda")
            kept = (levels >= 0).to(torch.uint8)
            comp_ms = bench(lambda: compensate_(qs, ks, vs, out0.clone(), lse0.clone(), lay0, heads, D ** -0.5, kept=kept))
            frac = [round(float((levels == lv).float().mean()), 4) for lv in range(-1, 4)]
            rec(case=case, impl="videoaccel-pyramid", pattern="pyramid", params={"thresholds": thr}, layout="pyramid",
                order="tile", level_fractions_skip_0_1_2_3=frac, head_dim=D, seq_len=S, heads=H, ms=ms,
                ms_with_compensation=ms_c, compensation_ms=comp_ms, speedup_vs_cudnn=dense_ms / ms)
        del q, k, v, qh, kh, vh, qs, ks, vs
        torch.cuda.empty_cache()

    write_record("patterns", suite_command(__spec__.name, argv), res, out_dir)
    print(f"\n{'case':<18}{'pattern':<16}{'order':<6}{'dens':>6}{'ms':>8}{'xFlex':>7}{'xCuDNN':>8}{'overhead/saved':>16}")
    for r in res:
        if r["impl"] == "videoaccel-bf16":
            ov = r.get("overhead_share_of_saved")
            print(f"{r['case']:<18}{r['pattern']:<16}{r['order']:<6}{r['density']:>6.3f}{r['ms']:>8.3f}{r['x_flex']:>7.2f}"
                  f"{r['speedup_vs_cudnn']:>8.2f}{(f'{100 * ov:.2f}%' if ov is not None else '-'):>16}")
        elif r["impl"] == "videoaccel-pyramid":
            print(f"{r['case']:<18}pyramid {r['params']['thresholds']} levels {r['level_fractions_skip_0_1_2_3']} "
                  f"{r['ms']:.3f} ms ({r['speedup_vs_cudnn']:.2f}x cuDNN), +compensation {r['ms_with_compensation']:.3f} ms")


if __name__ == "__main__":
    run_suite(main)
