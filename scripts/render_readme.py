"""Regenerate the result tables from the committed bench/*.json (never typed by hand): the README's short
headline table and the full tables in docs/ (each between its `<!-- NAME:start -->` / `<!-- NAME:end -->` markers,
in whichever of those files holds them).

    python scripts/render_readme.py
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from videoaccel.files import write_image, write_text

ROOT = Path(__file__).resolve().parent.parent


def provenance(doc: dict, triton: bool = True) -> str:
    """Where a record comes from: device, versions, commit and date (the bench-format header)."""
    triton = f", triton {doc['triton']}" if triton else ""
    return f"Device: {doc['device']}, torch {doc['torch']}{triton}, videoaccel {doc['videoaccel']}, {doc['date']}. "


def table_head(doc: dict, note: str, columns: list[str], triton: bool = True) -> list[str]:
    """A table's provenance and note, then its markdown header."""
    return [provenance(doc, triton) + note, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def kind(r: dict) -> str:
    """A fidelity row's kind: the oracle, a profiled (calibrated) plan or a preset."""
    return "oracle" if r.get("oracle") else "profiled" if r["calibrated"] else "preset"


def with_density(r: dict) -> str:
    """A stack row's preset with its achieved attention density."""
    dens = f" ({r['attn_density']:.3f})" if r.get("attn_density") is not None else ""
    return f"{r.get('preset') or '-'}{dens}"


def kernels_table(doc: dict) -> str:
    rows = doc["results"]
    lines = [provenance(doc) + f"Command: `{doc['command']}`. Effective TF/s count computed blocks only; "
             "x = speed ratio, same run.", "",
             "| case | layout | density | cuDNN dense ms | Flex ms | bf16 ms (x Flex) | Gluon ms (x Flex) | FP8 ms (x Flex) | "
             "Gluon FP8 ms (x Flex) | bf16 x cuDNN | Gluon x cuDNN | FP8 x cuDNN | Gluon FP8 x cuDNN |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    cudnn = {r["case"]: r["ms"] for r in rows if r.get("impl") == "cudnn"}
    by = {}
    for r in rows:
        if r.get("impl") in ("flex", "videoaccel-bf16", "videoaccel-fp8", "videoaccel-gluon", "videoaccel-gluon-fp8") and "target_density" in r:
            by.setdefault((r["case"], r["layout"], r["target_density"]), {})[r["impl"]] = r
    for (case, layout, _), g in by.items():
        f, b, e = g.get("flex"), g.get("videoaccel-bf16"), g.get("videoaccel-fp8")
        if not (f and b and e):
            continue
        c = cudnn[case]
        (gcol, gx), (g8col, g8x) = (_cols(g.get(impl), f, c) for impl in ("videoaccel-gluon", "videoaccel-gluon-fp8"))
        lines.append(f"| {case} | {layout} | {b['density']:.3f} | {c:.2f} | {f['ms']:.2f} | {b['ms']:.2f} ({f['ms'] / b['ms']:.2f}) | "
                     f"{gcol} | {e['ms']:.2f} ({f['ms'] / e['ms']:.2f}) | {g8col} | {c / b['ms']:.2f} | {gx} | {c / e['ms']:.2f} | {g8x} |")
    lines += ["", gluon_summary(rows, cudnn), "", gluon_fp8_summary(rows, cudnn)]
    extra = [r for r in rows if "share_of_dense" in r]
    lines += ["", "| case | step | ms | share of cuDNN dense |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['impl']} | {r['ms']:.3f} | {100 * r['share_of_dense']:.2f}% |" for r in extra]
    errs = [r["rel_l2"] for r in rows if r.get("impl") == "videoaccel-fp8" and "rel_l2" in r]
    errb = [r["rel_l2"] for r in rows if r.get("impl") == "videoaccel-bf16" and "rel_l2" in r]
    lines += ["", f"Relative L2 error vs float64 on sampled rows: bf16 {min(errb):.1e} to {max(errb):.1e}, "
              f"FP8 {min(errs):.1e} to {max(errs):.1e} (random N(0,1) inputs)."]
    return "\n".join(lines)


def _cols(r: dict | None, flex: dict, cudnn_ms: float) -> tuple[str, str]:
    """'ms (x Flex)' and 'x cuDNN' cells of one row, or dashes when the run has none."""
    if not r or "ms" not in r:
        return "-", "-"
    return f"{r['ms']:.2f} ({flex['ms'] / r['ms']:.2f})", f"{cudnn_ms / r['ms']:.2f}"


def gluon_fp8_summary(rows: list, cudnn: dict) -> str:
    """The Gluon FP8 rows against the issue's goals: quantisation included (ms) and the kernel alone (kernel_ms)."""
    g8 = {(r["case"], r["target_density"]): r for r in rows if r.get("impl") == "videoaccel-gluon-fp8" and "ms" in r and "target_density" in r}
    if not g8:
        return "No Gluon FP8 rows in this run."
    gl = {(r["case"], r["target_density"]): r for r in rows if r.get("impl") == "videoaccel-gluon" and "ms" in r and "target_density" in r}
    flex = {(r["case"], r["target_density"]): r["ms"] for r in rows if r.get("impl") == "flex" and "target_density" in r}

    def span(xs):
        return f"{min(xs):.2f}-{max(xs):.2f}x" if xs else "-"
    lines = []
    for d in (128, 64):
        keys = [k for k, r in g8.items() if r["head_dim"] == d and k in flex and k in gl]
        for what, key in (("with its quantisation", "ms"), ("kernel alone", "kernel_ms")):
            lines.append(f"D={d}, {what}: {span([flex[k] / g8[k][key] for k in keys])} Flex bf16, "
                         f"{span([gl[k]['ms'] / g8[k][key] for k in keys])} the Gluon bf16 kernel; dense "
                         f"{span([cudnn[k[0]] / g8[k][key] for k in keys if k[1] >= 1.0])} cuDNN bf16")
    return ("Gluon FP8 (goals: >= 2x Flex bf16, never slower than bf16, dense >= 1.4x cuDNN bf16): " + "; ".join(lines) + ".")


def gluon_summary(rows: list, cudnn: dict) -> str:
    """The Gluon kernel against the issue's goals, from the same rows (ranges over cases and densities)."""
    flex = {(r["case"], r["layout"], r["target_density"]): r["ms"] for r in rows if r.get("impl") == "flex" and "target_density" in r}
    gl = [r for r in rows if r.get("impl") == "videoaccel-gluon" and "ms" in r and "target_density" in r]
    if not gl:
        return "No Gluon rows in this run."
    dense_tf = {r["case"]: r["eff_tflops"] for r in rows if r.get("impl") == "cudnn"}

    def span(xs):
        return f"{min(xs):.2f}-{max(xs):.2f}x" if xs else "-"
    sparse = [r for r in gl if r["layout"] != "dense"]
    vs_flex = {d: [flex[(r["case"], r["layout"], r["target_density"])] / r["ms"] for r in sparse if r["head_dim"] == d] for d in (64, 128)}
    per_block = [r["eff_tflops"] / dense_tf[r["case"]] for r in sparse if r["head_dim"] == 128]
    dense = [cudnn[r["case"]] / r["ms"] for r in gl if r["layout"] == "dense"]
    return (f"Gluon kernel, sparse layouts: {span(vs_flex[128])} Flex at D=128, {span(vs_flex[64])} at D=64; per computed "
            f"block {span(per_block)} cuDNN dense's TF/s at D=128; dense layout {span(dense)} cuDNN. Goals: 1.35x / 1.3x Flex, "
            "0.9x per block, 0.95x dense.")


def patterns_table(doc: dict) -> str:
    lines = table_head(doc, f"Command: `{doc['command']}`. Same heads x layout for both kernels; overhead = plan "
                       "building (amortised over 50 steps), draft estimation and token reordering, as a share of the attention "
                       "time the pattern saves against cuDNN dense.",
                       ["case", "pattern", "order", "density", "ms", "x Flex", "x cuDNN", "overhead / saved"])
    for r in doc["results"]:
        if r["impl"] == "videoaccel-bf16":
            ov = r.get("overhead_share_of_saved")
            ov = f"{100 * ov:.1f}%" if ov is not None else "-"
            lines.append(f"| {r['case']} | {r['pattern']} | {r['order']} | {r['density']:.3f} | {r['ms']:.2f} | {r['x_flex']:.2f} | "
                         f"{r['speedup_vs_cudnn']:.2f} | {ov} |")
    lines += ["", "| case | pyramid thresholds | blocks skipped / level 0 / 1 / 2 / 3 | ms | x cuDNN | + compensation ms |",
              "|---|---|---|---|---|---|"]
    for r in doc["results"]:
        if r["impl"] == "videoaccel-pyramid":
            fr = " / ".join(f"{x:.3f}" for x in r["level_fractions_skip_0_1_2_3"])
            lines.append(f"| {r['case']} | {tuple(r['params']['thresholds'])} | {fr} | {r['ms']:.2f} | {r['speedup_vs_cudnn']:.2f} | "
                         f"{r['ms_with_compensation']:.2f} |")
    return "\n".join(lines)


def e2e_table(doc: dict) -> str:
    lines = table_head(doc, f"Commands: {doc['command']}. One transformer forward (one denoising step, one CFG "
                       "branch), full-size random weights; x = speed ratio against cuDNN eager / compiled / compiled with "
                       "CUDA graphs in the same run; host ms = the router's own host time per attention call (graph "
                       "replays run none); compile s = first call minus one step.",
                       ["case", "setting", "ms", "attention density", "x cuDNN eager", "x cuDNN compiled", "x cuDNN graphs",
                        "host ms/call", "compile s", "output rel. error vs dense"])
    for r in doc["results"]:
        if "ms" not in r:
            continue
        x = f"{r['speedup_vs_cudnn']:.2f}" if "speedup_vs_cudnn" in r else "-"
        xc = f"{r['speedup_vs_cudnn_compiled']:.2f}" if "speedup_vs_cudnn_compiled" in r else "-"
        xg = f"{r['speedup_vs_cudnn_compiled_cudagraphs']:.2f}" if "speedup_vs_cudnn_compiled_cudagraphs" in r else "-"
        host = f"{r['host_ms_per_call']:.2f}" if "host_ms_per_call" in r else "-"
        cs = f"{r['compile_s']:.0f}" if "compile_s" in r else "-"
        err = f"{r['out_rel_err']:.3f}" if "out_rel_err" in r else "-"
        lines.append(f"| {r['case']} | {r['impl']} | {r['ms']:.0f} | {r['attn_density']:.3f} | {x} | {xc} | {xg} | {host} | {cs} | {err} |")
    for r in doc["results"]:
        if "generation_speedup_vs_cudnn" in r:
            lines.append(f"\n{r['case']}, {r['impl']}: {r['speedup_vs_cudnn']:.2f}x cuDNN eager per step over the buckets "
                         f"{r['bucket_steps']} (per bucket {', '.join(f'{x:.2f}' for x in r['step_speedup_vs_cudnn'])}), "
                         f"{r['generation_speedup_vs_cudnn']:.2f}x for a whole generation with its {r['dense_steps']} dense "
                         f"warm-up step(s); mapping: {r['mapping']}.")
    return "\n".join(lines)


def fidelity_table(path: Path, tiny: Path | None) -> str:
    doc = json.loads(path.read_text())
    lines = [provenance(doc, triton=False) + f"Command: `{doc['command']}`. PSNR/SSIM: accelerated vs dense video, same prompt and seed, mean over "
             "held-out prompts (min in brackets); adherence: colour / direction detected in the video.", ""]
    if tiny is not None:
        t = json.loads(tiny.read_text())["results"][0]
        lines += [f"Dense adherence of the embedded model on {t['case']} prompts ({t['steps']} steps, guidance "
                  f"{t['guidance']}): colour {100 * t['colour']:.0f}%, direction {100 * t['direction']:.0f}%.", ""]
    lines += ["Total attention density counts dense warm-up steps at 1.0; oracle gap = PSNR minus the oracle's (exact "
              "top-k key blocks per call) at the same target total density.", "",
              "Speed: the transformer's time per generation against dense in the same mode and run (eager; regional "
              "compile; compile with CUDA graphs), batch 1, first generation excluded.", "",
              "| plan | kind | total attention density | warm-up steps | PSNR dB | oracle gap dB | SSIM | colour | direction "
              "| x dense eager | x dense compiled | x dense graphs |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    x = lambda r, k: f"{r[k]:.2f}" if r.get(k) is not None else "-"  # noqa: E731
    for r in doc["results"]:
        if r["impl"] == "dense":
            lines.append(f"| dense | - | 1.000 | - | - | - | - | {100 * r['colour']:.0f}% | {100 * r['direction']:.0f}% | 1.00 | 1.00 | 1.00 |")
            continue
        gap = r.get("oracle_gap_db")
        lines.append(f"| {r['impl'].removeprefix('videoaccel-')} | {kind(r)} | {r['attn_density']:.3f} | {r.get('dense_steps') or 0} | "
                     f"{r['psnr']:.1f} ({r['psnr_min']:.1f}) | {'-' if gap is None else f'{gap:+.1f}'} | "
                     f"{r['ssim']:.3f} ({r['ssim_min']:.3f}) | {100 * r['colour']:.0f}% | {100 * r['direction']:.0f}% | "
                     f"{x(r, 'speedup')} | {x(r, 'speedup_compiled')} | {x(r, 'speedup_graphs')} |")
    return "\n".join(lines)


def fidelity_plot(path: Path, png: Path) -> None:
    """PSNR vs attention density, profiled plans vs presets (OpenCV: no plotting dependency)."""
    import cv2
    import numpy as np

    rows = [r for r in json.loads(path.read_text())["results"] if r["impl"] != "dense" and r["psnr"] is not None]
    w, h, m = 640, 400, 60
    img = np.full((h, w, 3), 255, np.uint8)
    lo, hi = min(r["psnr"] for r in rows) - 2, max(r["psnr"] for r in rows) + 2
    xy = lambda d, p: (int(m + d / 0.4 * (w - 2 * m)), int(h - m - (p - lo) / (hi - lo) * (h - 2 * m)))  # noqa: E731
    cv2.rectangle(img, (m, m), (w - m, h - m), (0, 0, 0), 1)
    for d in (0.0, 0.1, 0.2, 0.3, 0.4):
        cv2.putText(img, f"{d:.1f}", (xy(d, lo)[0] - 10, h - m + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    for p in range(int(np.ceil(lo)), int(np.floor(hi)) + 1, max(1, round((hi - lo) / 5))):
        cv2.putText(img, f"{p}", (m - 35, xy(0, p)[1] + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.putText(img, "attention density", (w // 2 - 70, h - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, "PSNR vs dense (dB)", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    if lo < 30 < hi:
        cv2.line(img, xy(0, 30), xy(0.4, 30), (160, 160, 160), 1)
    kinds = (("profiled", (200, 80, 0), "profiled"), ("preset", (0, 0, 220), "preset (radial, draft)"), ("oracle", (0, 150, 0), "oracle"))
    for i, (name, colour, label) in enumerate(kinds):
        pts = sorted(xy(r["attn_density"], r["psnr"]) for r in rows if kind(r) == name)
        for a, b in zip(pts, pts[1:]):
            cv2.line(img, a, b, colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 5, colour, -1, cv2.LINE_AA)
        y = 30 + 20 * i
        cv2.circle(img, (w - 190, y - 5), 5, colour, -1)
        cv2.putText(img, label, (w - 178, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1)
    write_image(png, img[..., ::-1])


def recall_table(doc: dict) -> str:
    """Oracle recall of the embedded model per training run (bench/attention-recall-*.json)."""
    get = {(r["tag"], r["tokens"], r["order"], r["block"], r["density"]): r["recall"] for r in doc["results"]}
    lines = [provenance(doc, triton=False) + "Command: " + f"{doc['command']}. Attention mass an oracle keeps (mean over sampled query blocks of every self-attention "
             "call at steps 2/10/17 of 20, 2 held-out prompts, cond and uncond).", "",
             "| run | tokens | per-token top-10% | top-25% | block-128 @0.15 frame / tile | block-64 @0.15 frame / tile | "
             "block-128 @0.25 frame |", "|---|---|---|---|---|---|---|"]
    for tag, tokens in sorted({(r["tag"], r["tokens"]) for r in doc["results"]}, key=lambda x: (x[1], x[0])):
        g = lambda o, b, d: get.get((tag, tokens, o, b, d), float("nan"))  # noqa: E731
        lines.append(f"| {tag} | {tokens} | {g('any', 0, 0.1):.3f} | {g('any', 0, 0.25):.3f} | {g('frame', 128, 0.15):.3f} / "
                     f"{g('tile', 128, 0.15):.3f} | {g('frame', 64, 0.15):.3f} / {g('tile', 64, 0.15):.3f} | "
                     f"{g('frame', 128, 0.25):.3f} |")
    return "\n".join(lines)


def stack_table(speed: dict, fidelity: dict | None) -> str:
    """Whole-loop speed of acceleration stacks (bench/stack-*.json) and, beside it, each stack's fidelity on the testbed."""
    lines = table_head(speed, f"Command: `{speed['command']}`. Whole denoising loops (CFG as the pipeline runs it) of a "
                       "random-weight transformer; speedup against the cuDNN eager dense loop of the same run.",
                       ["model", "stack", "cache", "preset (achieved density)", "steps", "attention ran", "loop s",
                        "speedup vs cuDNN eager"])
    for r in speed["results"]:
        lines.append(f"| {r['case']} | {r['stack']} | {r.get('cache') or '-'} | {with_density(r)} | {r['steps']} | "
                     f"{r.get('attention_ran', 1.0):.2f} | {r['loop_s']:.1f} | {r['speedup_vs_dense']:.2f}x |")
    if fidelity is not None:
        lines += [""] + table_head(fidelity, f"Command: `{fidelity['command']}`. The same stacks on the embedded testbed model "
                                   "(real weights): PSNR / SSIM against its dense video, same prompts and seeds.",
                                   ["testbed stack", "cache", "preset (achieved density)", "PSNR dB", "SSIM", "colour",
                                    "direction", "speedup (tiny model)"], triton=False)
        for r in fidelity["results"]:
            psnr = "-" if r.get("psnr") is None else f"{r['psnr']:.1f}"
            ssim = "-" if r.get("ssim") is None else f"{r['ssim']:.3f}"
            speed_up = "-" if r.get("speedup_vs_dense") is None else f"{r['speedup_vs_dense']:.2f}x"
            lines.append(f"| {r['stack']} | {r.get('cache') or '-'} | {with_density(r)} | {psnr} | {ssim} | "
                         f"{100 * r['colour']:.0f}% | {100 * r['direction']:.0f}% | {speed_up} |")
    return "\n".join(lines)


def families_table(doc: dict) -> str:
    """Per family: sampled:0.1 compiled against cuDNN eager and compiled, one full-size step (bench/e2e-families-*.json)."""
    lines = table_head(doc, "One transformer step at the published geometry, full-size random weights; x = against cuDNN in "
                       "the same run; target: sampled:0.1 compiled >= 1.5x cuDNN eager. Commands and notes: the JSON.",
                       ["family case", "cuDNN eager ms", "sampled:0.1 compiled ms (density)", "x cuDNN eager",
                        "x cuDNN compiled", "sampled:0.1 eager x cuDNN eager"])
    rows = {(r["case"], r["impl"]): r for r in doc["results"] if "ms" in r}
    for case in dict.fromkeys(r["case"] for r in doc["results"]):
        dense, comp, eager = (rows.get((case, i)) for i in ("cudnn-eager", "videoaccel-sampled:0.1-compiled",
                                                            "videoaccel-sampled:0.1-eager"))
        if dense and comp and eager:
            lines.append(f"| {case} | {dense['ms']:.0f} | {comp['ms']:.0f} ({comp['attn_density']:.3f}) | "
                         f"{comp['speedup_vs_cudnn']:.2f}x | {comp['speedup_vs_cudnn_compiled']:.2f}x | "
                         f"{eager['speedup_vs_cudnn']:.2f}x |")
    return "\n".join(lines)


def families_summary(doc: dict) -> str:
    """The README's line for the further families: the range of sampled:0.1 compiled against cuDNN eager."""
    rows = [r for r in doc["results"] if r["impl"] == "videoaccel-sampled:0.1-compiled"]
    failed = [r["case"] for r in doc["results"] if r["impl"] == "error"]
    if failed:  # a case that did not run would vanish from "across the N cases"
        raise SystemExit(f"bench/e2e-families JSON has error rows ({', '.join(failed)}): rerun those cases first")
    lo, hi = min(rows, key=lambda r: r["speedup_vs_cudnn"]), max(rows, key=lambda r: r["speedup_vs_cudnn"])
    return (f"on an {doc['device']} ({doc['date']}), one full-size step with sampled:0.1 compiled runs "
            f"{lo['speedup_vs_cudnn']:.2f}x ({lo['case']}) to {hi['speedup_vs_cudnn']:.2f}x ({hi['case']}) cuDNN eager across "
            f"the {len(rows)} cases (table and caveats: [docs/gpu-results.md](docs/gpu-results.md)).")


def stack_line(doc: dict | None) -> str:
    """The headline's whole-loop figure: the fastest stack of bench/stack-h200.json against the dense loop."""
    if doc is None:
        return ""
    r = max((r for r in doc["results"] if r["stack"] != "dense"), key=lambda r: r["speedup_vs_dense"])
    return (f" Whole loop ({r['steps']} steps with CFG, `bench/stack-h200.json`), {r['case']}: {r['preset']} with "
            f"{r['cache']}, regional compile and FP8 linears ({r['stack']}) runs {r['speedup_vs_dense']:.2f}x the dense "
            "cuDNN eager loop (random weights: speed only; that stack's fidelity on the testbed is not measured).")


def headline_table(e2e: dict, fidelity: dict | None) -> str:
    """The README's few lines: the faithful plan beside the fast static one at full size (one step, compiled), and what
    the calibrated profile does to a real model's video and speed on the testbed. Provenance: device, date, files."""
    lines = [f"{e2e['device']}, {e2e['date']} (`bench/e2e-h200.json`, `bench/fidelity-h200.json`; full tables, commands and "
             "provenance: [docs/gpu-results.md](docs/gpu-results.md)). One transformer step, full size, random weights, "
             "regional torch.compile; x = against cuDNN eager in the same run.", "",
             "| model and geometry | radial:0.1 (fast, breaks videos) | sampled:0.1 (follows the content) | sampled / radial |",
             "|---|---|---|---|"]
    rows = {(r["case"], r["impl"]): r for r in e2e["results"] if "speedup_vs_cudnn" in r}
    for case in dict.fromkeys(r["case"] for r in e2e["results"]):
        a, b = rows.get((case, "videoaccel-radial:0.1-compiled")), rows.get((case, "videoaccel-sampled:0.1-compiled"))
        if a and b:
            lines.append(f"| {case} | {a['speedup_vs_cudnn']:.2f}x | {b['speedup_vs_cudnn']:.2f}x | "
                         f"{b['speedup_vs_cudnn'] / a['speedup_vs_cudnn']:.2f} |")
    mapped = next((r for r in e2e["results"] if r["impl"].endswith("-compiled") and "generation_speedup_vs_cudnn" in r), None)
    profiled = next((r for r in (fidelity or {}).get("results", []) if r["impl"] == "videoaccel-target-0.25"), None)
    radial = next((r for r in (fidelity or {}).get("results", []) if r["impl"] == "videoaccel-radial:0.25"), None)
    if profiled:
        lines += ["", f"On the embedded testbed model (12480 tokens, real weights) the profile calibrated for a total density "
                      f"of 0.25 keeps {profiled['psnr']:.1f} dB (SSIM {profiled['ssim']:.3f}) against dense and runs "
                      f"{profiled['speedup']:.2f}x dense eager, {profiled['speedup_compiled']:.2f}x dense compiled, "
                      f"{profiled['speedup_graphs']:.2f}x dense with CUDA graphs"
                      + (f"; radial:0.25 gives {radial['psnr']:.1f} dB (visible loss)" if radial else "") + "."]
    if mapped:
        lines[-1] += (f" Mapped onto Wan2.1-1.3B 480p, its plans run {mapped['speedup_vs_cudnn']:.2f}x cuDNN eager per step "
                      f"({mapped['generation_speedup_vs_cudnn']:.2f}x for a whole generation with its warm-up step).")
    return "\n".join(lines)


def _user_paths(line: str) -> str:
    """A recorded output line as a user in the repository root sees it (no temporary or absolute paths)."""
    return re.sub(r"/\S*/assets/", "assets/", re.sub(r"/\S*/(out\.)", r"\1", line))


def first_run(doc: dict) -> str:
    """README command 1 with --compare-dense as recorded (bench/first-run-cpu.json, videoaccel/benchmarks/first_run.py)."""
    r = doc["results"][0]
    return "\n".join(["```text", f"$ videoaccel generate {json.dumps(r['prompt'])} -o out.mp4 --compare-dense",
                      *map(_user_paths, r["stdout"]), "```"])


def cpu_times(doc: dict) -> str:
    """What README command 1 costs on this CPU, per held-out prompt, with the load it ran under."""
    rows = doc["results"]
    lines = [f"README command 1 with `--compare-dense` on {doc['device']} ({doc['date']}, `bench/first-run-cpu.json`; "
             "held-out prompts, never trained or calibrated on; load = 1-minute load average before / after):", "",
             "| prompt | verdict | PSNR dB | SSIM | attention density | dense s | accelerated s | speedup | whole command s | load |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['prompt']} | {r['verdict']} | {r['psnr']:.1f} | {r['ssim']:.3f} | {r['attn_density']:.3f} | "
                     f"{r['dense_s']:.1f} | {r['accelerated_s']:.1f} | {r['speedup']:.2f}x | {r['wall_s']:.0f} | "
                     f"{r['load_before']:.1f} / {r['load_after']:.1f} |")
    dense, acc = sum(r["dense_s"] for r in rows), sum(r["accelerated_s"] for r in rows)
    lines += ["", f"Over the {len(rows)} prompts: PSNR {min(r['psnr'] for r in rows):.1f}-{max(r['psnr'] for r in rows):.1f} dB, "
              f"dense {dense:.0f} s against accelerated {acc:.0f} s ({dense / acc:.2f}x)."]
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str | None:
    """``text`` with the block between ``name``'s markers replaced; None when it has no such markers."""
    pat = re.compile(rf"(<!-- {name}:start -->).*?(<!-- {name}:end -->)", re.S)
    if not pat.search(text):
        return None
    return pat.sub(lambda m: m.group(1) + "\n" + body + "\n" + m.group(2), text)


def _json(name: str) -> dict | None:
    path = ROOT / "bench" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    files = [ROOT / "README.md", ROOT / "docs" / "gpu-results.md", ROOT / "docs" / "embedded-model.md"]
    texts = {f: f.read_text() for f in files}
    blocks: dict[str, str] = {}
    kern, e2e, pat, rec, stack, sfid, stack_h200 = (_json(n) for n in ("kernels-h100", "e2e-h200", "patterns-h100",
                                                                       "attention-recall-h100", "stack-h100",
                                                                       "stack-fidelity-h100", "stack-h200"))
    if kern:
        blocks["kernels-table"] = kernels_table(kern)
    if e2e:
        blocks["e2e-table"] = e2e_table(e2e)
        blocks["headline-table"] = headline_table(e2e, _json("fidelity-h200")) + stack_line(stack_h200)
    if pat:
        blocks["patterns-table"] = patterns_table(pat)
    fid = ROOT / "bench" / "fidelity-h200.json"  # the testbed (GPU); fidelity-cpu.json is the CPU demo geometry
    if fid.exists():
        tiny = ROOT / "bench" / fid.name.replace("fidelity-", "tiny-model-")
        blocks["fidelity-table"] = fidelity_table(fid, tiny if tiny.exists() else None)
        fidelity_plot(fid, ROOT / "docs" / "fidelity.png")
    if rec:
        blocks["recall-table"] = recall_table(rec)
    if stack:
        blocks["stack-table"] = (stack_table(stack_h200, None) + "\n\n" if stack_h200 else "") + stack_table(stack, sfid)
    families = _json("e2e-families-h200")
    if families:
        blocks["family-table"] = families_table(families)
        blocks["family-summary"] = families_summary(families)
    first = _json("first-run-cpu")
    if first:
        blocks["first-run"], blocks["cpu-times"] = first_run(first), cpu_times(first)
    for name, body in blocks.items():
        hits = 0
        for f in files:
            new = replace_block(texts[f], name, body)
            if new is not None:
                texts[f], hits = new, hits + 1
        if not hits:
            raise SystemExit(f"no file holds the {name} markers ({', '.join(str(f.relative_to(ROOT)) for f in files)})")
    for f, text in texts.items():
        write_text(f, text)


if __name__ == "__main__":
    main()
