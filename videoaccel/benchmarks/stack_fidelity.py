"""`videoaccel bench stack --fidelity`: each stack's fidelity on the embedded testbed model (real weights).

Why beside the speed rows: a stack is only worth its speed if the videos stay close to dense. Per
stack (same names as the speed rows) the held-out prompts are generated through the real pipeline
(its own CFG, scheduler and cache contexts) and compared with dense: PSNR and SSIM per video, and
prompt adherence (colour, direction: tiny/detect.py). MagCache needs the model's ratios: with none
given they are measured here by diffusers' own calibration run on the first prompt.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys

import torch
from diffusers import WanPipeline
from diffusers.hooks import MagCacheConfig

import videoaccel  # the public API, as a user calls it

from .. import cache_spec
from ..metrics import psnr, ssim
from ..pipelines import caches, fp8_linear as fp8
from ..pipelines.compile import compile_transformer, uncompile
from ..tiny import EMBEDDED, detect, evaluate
from ..tiny.model import TESTBED, TEXT_LEN
from .record import write_record
from .stack_spec import parse_stack, restore_with_report, sparse_preset


def _mag_ratios(pipe, prompt: str, seed: int, call: dict) -> list[float]:
    """diffusers' MagCache calibration (it prints the ratios at the end of the run; no other way out)."""
    pipe.transformer.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=call["num_inference_steps"]))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        pipe(prompt, generator=torch.Generator().manual_seed(seed), output_type="np", **call)
    pipe.transformer.disable_cache()
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("[") and ln.endswith("]")]
    if not lines:
        raise RuntimeError("MagCache calibration printed no ratios (diffusers changed?): pass mag params in a profile")
    return json.loads(lines[-1])


def run(out_dir: str, prompts_n: int = 8, steps: int = 20, cache: str = "taylorseer-lite:2", preset: str = "radial:0.1",
        stacks=("dense", "cache", "sparse", "sparse+cache", "sparse+cache+fp8", "sparse+cache+fp8+compile")) -> list[dict]:
    cuda = torch.cuda.is_available()
    pipe = WanPipeline.from_pretrained(str(EMBEDDED), torch_dtype=torch.bfloat16 if cuda else torch.float32,
                                       use_safetensors=True).to("cuda" if cuda else "cpu")
    pipe.set_progress_bar_config(disable=True)
    call = dict(num_inference_steps=steps, guidance_scale=5.0, max_sequence_length=TEXT_LEN, num_frames=TESTBED[0],
                height=TESTBED[1], width=TESTBED[2])  # the >= 12k-token testbed geometry (fidelity is measured there)
    prompts, seeds, specs = evaluate.heldout(prompts_n)
    spec = cache_spec.parse(cache)
    if spec is not None and spec.name == "mag" and "mag_ratios" not in spec.kwargs:
        spec = cache_spec.CacheSpec("mag", spec.params + (("mag_ratios", _mag_ratios(pipe, prompts[0], seeds[0], call)),))
    results, dense, dense_s = [], None, None
    for name in stacks:
        parts = parse_stack(name)
        row = dict(case=f"testbed-heldout-{prompts_n}", pixels="x".join(map(str, TESTBED)), stack=name, steps=steps,
                   cache=spec.label if "cache" in parts else None, preset=sparse_preset(preset, parts))
        if "fp8linear" in parts:
            try:
                fp8.check_available()
            except ValueError as e:
                results.append({**row, "skipped": str(e)})
                continue
        if "cache" in parts:
            caches.enable(pipe, spec, steps)
            if spec.name == "mag":
                row["mag_ratios"] = [round(r, 4) for r in spec.kwargs["mag_ratios"]]
        if "sparse" in parts:
            videoaccel.accelerate(pipe, row["preset"], fp8_linear=True if "fp8linear" in parts else False)
        if "compile" in parts:
            torch._dynamo.reset()
            compile_transformer(pipe.transformer)
            evaluate.generate(pipe, prompts[:1], seeds[:1], **{**call, "num_inference_steps": 2})  # compiles
        videos, seconds = evaluate.generate(pipe, prompts, seeds, batch=1, **call)
        if "compile" in parts:
            uncompile(pipe.transformer)
        if "sparse" in parts:
            row.update(restore_with_report(pipe))
        if "cache" in parts:
            caches.disable(pipe)
        if parts == ("dense",):
            dense, dense_s = videos, seconds
        adh = detect.score(videos, specs)
        row.update(seconds=round(seconds, 2), colour=adh["colour"], direction=adh["direction"])
        if dense is not None and parts != ("dense",):
            row.update(psnr=round(sum(psnr(a, b)[1] for a, b in zip(videos, dense)) / len(dense), 2),
                       ssim=round(sum(ssim(a, b)[1] for a, b in zip(videos, dense)) / len(dense), 4),
                       speedup_vs_dense=round(dense_s / seconds, 3))
        results.append(row)
        print(json.dumps(row), flush=True)
    if out_dir:
        print("wrote " + write_record("stack-fidelity", "videoaccel " + " ".join(sys.argv[1:]), results, out_dir))
    return results
