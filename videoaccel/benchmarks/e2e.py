"""`videoaccel bench e2e`: one denoising step of full-size random-weight transformers, per setting.

Models are built on the GPU from their published configs (no weights needed). Settings: ``cudnn``
(SDPA forced to cuDNN), videoaccel presets (bf16 / FP8 attention), a calibrated profile mapped onto the
model (``--profile``, profile_map.py: per timestep bucket and for a whole generation), and the same with
FP8 linears (torchao dynamic float8, on the layers whose shape measured faster). ``--compile`` adds
regional torch.compile twins (with compile seconds), ``--cudagraphs`` CUDA-graph twins (whole-forward
graphs per step context for videoaccel rows, inductor's for cuDNN). Every timed forward is a new
denoising step, so per-call estimates run at their real period (sampled: every 2 steps), inside the
mean over an even number of forwards. Sparse rows record sampled layers' self-attention error against
dense and the final output error (random weights give near-uniform attention: the hardest case).
"""
from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import diffusers
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import videoaccel  # the public API, as a user calls it

from ..pipelines import fp8_linear as fp8, router_of
from ..pipelines.compile import compile_transformer, uncompile
from ..pipelines.models import spec_for
from ..pipelines.spec import attention_heads
from ..plans import Profile, load_profile
from .cases import E2E_CASES, TINY, BenchCase
from .inputs import step_inputs
from .profile_map import bucket_timesteps, map_profile, profile_totals
from .record import write_record


def build(case: str, device: str = "cuda", dtype: torch.dtype = torch.bfloat16) -> tuple[torch.nn.Module, dict]:
    """The case's transformer from its config (random weights) and the forward arguments of one step."""
    return build_case({**E2E_CASES, **TINY}[case], device, dtype)


def build_case(c: BenchCase, device: str = "cuda", dtype: torch.dtype = torch.bfloat16) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    with torch.device(device):
        model = getattr(diffusers, c.model)(**c.config).to(dtype).eval()
    keep = model._keep_in_fp32_modules or []  # as from_pretrained(torch_dtype=...) leaves them
    for name, p in model.named_parameters():
        if any(k in name.split(".") for k in keep):
            p.data = p.data.float()
    g = torch.Generator(device=device).manual_seed(1)
    rnd = lambda *s: torch.randn(*s, generator=g, device=device, dtype=dtype)  # noqa: E731
    return model, step_inputs(c.model, dict(model.config), c.latent, rnd, device)


SLOW_S = 5.0


def _time(fn, repeats: int, warmup: int = 2, timed: Callable[[], None] | None = None) -> tuple[float, torch.Tensor, float]:
    """(mean ms of ``repeats`` calls after ``warmup`` more, last output, seconds of the first call: compilation,
    autotuning, plan building, graph captures). ``fn(i)`` runs call i; ``timed()`` runs before the timed calls.
    Each call starts a new inductor CUDA-graph step and its output is cloned (graphs reuse output memory)."""
    def call(i):
        torch.compiler.cudagraph_mark_step_begin()
        return fn(i).clone()

    t0 = time.time()
    out = call(0)
    torch.cuda.synchronize()
    first_s = time.time() - t0
    if first_s > SLOW_S:  # a multi-second forward: no extra warm-up, two timed forwards (they still hold one estimate)
        warmup, repeats = 0, min(repeats, 2)
    for i in range(1, 1 + warmup):
        call(i)
    if timed is not None:
        timed()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for i in range(1 + warmup, 1 + warmup + repeats):
        out = call(i)
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / repeats, out, first_s


def _calls(model) -> int:
    """Attention calls the router ran (under CUDA graphs: the ones replayed too)."""
    return sum(s.calls for s in router_of(model).stats.values())


def _capture(model, spec, layers):
    """Forward hooks that keep the self-attention outputs of ``layers``."""
    store, handles = {}, []
    mods = spec.self_attention(model)
    for i in layers:
        def hook(_m, _a, out, i=i):
            store[i] = (out[0] if isinstance(out, tuple) else out).detach().float()
        handles.append(mods[i].register_forward_hook(hook))
    return store, handles


@dataclass(frozen=True)
class Setting:
    """One timed row: attention (``cudnn``, a videoaccel preset, or ``profile:NAME`` at one timestep bucket),
    FP8 linears, eager or compiled."""
    attention: str
    compiled: bool = False
    mode: str | None = None  # torch.compile mode; "reduce-overhead" adds CUDA graphs
    fp8_linear: bool = False
    bucket: int | None = None  # a mapped profile's timestep bucket

    @property
    def impl(self) -> str:
        base = self.attention if self.attention == "cudnn" else f"videoaccel-{self.attention}"
        how = ("compiled-cudagraphs" if self.mode == "reduce-overhead" else "compiled") if self.compiled else "eager"
        bucket = "" if self.bucket is None else f"-bucket{self.bucket}"
        return f"{base}{'+fp8linear' if self.fp8_linear else ''}{bucket}-{how}"


def settings(presets: tuple[str, ...], compile: bool, cudagraphs: bool, fp8_linear: bool, buckets: int = 0) -> list[Setting]:
    """Eager rows; a mapped profile's rows per bucket (``buckets`` of them); with ``compile`` the compiled twin of
    each (regional compilation), with ``cudagraphs`` CUDA-graph rows for all of them; FP8 linears on cuDNN and
    the first density-0.1 preset."""
    attn = [Setting(p) for p in presets] + [Setting("profile", bucket=b) for b in range(buckets)]
    out = [Setting("cudnn")] + attn
    if compile:
        out += [Setting("cudnn", True)] + [Setting(a.attention, True, bucket=a.bucket) for a in attn]
    if compile and cudagraphs:
        out += [Setting("cudnn", True, "reduce-overhead")] + [Setting(a.attention, True, "reduce-overhead", bucket=a.bucket)
                                                              for a in attn]
    best = [p for p in presets if ":0.1" in p][:1]
    if fp8_linear:
        out += [Setting(a, compile, fp8_linear=True) for a in ["cudnn"] + best]
    return out


def run(cases: list[str], out_dir: str, presets: tuple[str, ...], fp8_linear: bool = True, compile: bool = False,
        cudagraphs: bool = False, profile_path: str | None = None) -> list:
    profile = load_profile(profile_path) if profile_path else None
    times = bucket_timesteps(profile)
    results = []

    def rec(**kw):
        results.append(kw)
        print(json.dumps(kw), flush=True)

    for case in cases:
        try:
            _case(case, rec, results, presets, fp8_linear, compile, cudagraphs, profile, times)
        except Exception as e:  # noqa: BLE001 - recorded; the other cases still run
            rec(case=case, impl="error", error=repr(e)[:300])
        torch._dynamo.reset()
        torch.cuda.empty_cache()
        path = _write(results, out_dir)  # after every case: a run cut short keeps what it measured
    _table(results)
    print(f"wrote {path}")
    return results


def _case(case: str, rec: Callable[..., None], results: list, presets: tuple[str, ...], fp8_linear: bool, compile: bool,
          cudagraphs: bool, profile: Profile | None, times: list) -> None:
    """Every setting of one case, each row through ``rec``."""
    model, kw = build(case)
    spec = spec_for(model)
    attn = spec.self_attention(model)
    sample = sorted({0, len(attn) // 4, len(attn) // 2, 3 * len(attn) // 4, len(attn) - 1})
    mapped = map_profile(profile, len(attn), attention_heads(attn[0]), block=128) if profile else None
    f, h, w = E2E_CASES[case].grid
    base: dict[str, float] = {}
    dense_out = dense_layers = chosen = None
    t_case = time.time()
    with torch.no_grad():
        for s in settings(presets, compile, cudagraphs, fp8_linear, len(times)):
            t_mid = 700.0 if s.bucket is None else times[s.bucket]

            def step(i, t_mid=t_mid):  # every forward a new step: estimates run at their real period
                return model(**{**kw, "timestep": torch.full_like(kw["timestep"], t_mid - 0.01 * i)})[0]

            row = dict(case=case, impl=s.impl)
            if s.fp8_linear and chosen is None:
                try:
                    chosen, speed = fp8.select(model, f * h * w)
                    rec(case=case, impl="fp8-linear-selection", chosen=len(chosen), of=len(fp8.block_linears(model)),
                        speedup_by_shape={f"{k}x{n}": round(v, 3) for (k, n), v in speed.items()})
                except Exception as e:  # noqa: BLE001 - recorded, the rest of the run goes on
                    rec(case=case, impl="fp8-linear", error=repr(e)[:300])
                    break
            if s.attention != "cudnn":
                videoaccel.accelerate(model, mapped if s.bucket is not None else s.attention,
                                      fp8_linear=chosen if s.fp8_linear else False)
            elif s.fp8_linear:
                saved = fp8.apply(model, chosen)
            store, handles = _capture(model, spec, sample) if not s.compiled else ({}, [])
            if s.compiled:
                torch._dynamo.reset()
                compile_transformer(model, mode=s.mode)
            host = {}
            timed = (lambda: host.update(s0=router_of(model).host_s, c0=_calls(model))) if s.attention != "cudnn" else None
            with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]) if s.attention == "cudnn" else nullcontext():
                reps = 4 if base.get("cudnn-eager", 0) < 1000 else 1 if s.attention == "cudnn" and base["cudnn-eager"] > 5000 else 2
                ms, out, first_s = _time(step, reps, warmup=1, timed=timed)
            if s.compiled:
                row.update(mode=s.mode or "default", compile_s=round(first_s - ms / 1e3, 1))
                uncompile(model)
            for hd in handles:
                hd.remove()
            if s.attention != "cudnn":
                rep = videoaccel.report(model)
                calls = _calls(model) - host["c0"]
                row.update(attn_density=round(rep.mean_density, 4), fallbacks=rep.fallbacks,
                           host_ms_per_call=round(1e3 * (router_of(model).host_s - host["s0"]) / max(calls, 1), 4))
                videoaccel.restore(model)
            else:
                row.update(attn_density=1.0)
                if s.fp8_linear:
                    fp8.restore(model, saved)
            if s.impl == "cudnn-eager":
                dense_out, dense_layers = out.float(), dict(store)
            base.setdefault(s.impl, ms)
            row.update(ms=ms, speedup_vs_cudnn=base["cudnn-eager"] / ms)
            for ref in ("cudnn-compiled", "cudnn-compiled-cudagraphs"):
                if ref in base:
                    row[f"speedup_vs_{ref.replace('-', '_')}"] = base[ref] / ms
            row["out_rel_err"] = float((out.float() - dense_out).norm() / dense_out.norm())
            if store and s.attention != "cudnn":
                row["layer_rel_err"] = {i: float((store[i] - dense_layers[i]).norm() / dense_layers[i].norm()) for i in sample}
            rec(**row)
        if profile is not None:
            profile_totals(case, profile, results, rec)
        print(f"{case}: {time.time() - t_case:.0f} s", flush=True)


def _write(results: list, out_dir: str) -> str:
    return write_record("e2e", "videoaccel bench e2e " + " ".join(sys.argv[3:]), results, out_dir)


def _table(results: list) -> None:
    print(f"\n{'case':<22}{'impl':<46}{'ms':>9}{'density':>9}{'x cuDNN':>9}{'x comp.':>9}{'compile s':>10}{'out err':>9}")
    for r in results:
        if "ms" not in r and "speedup_vs_cudnn" in r:
            print(f"{r['case']:<22}{r['impl'][:45]:<46}{'':>9}{r['attn_density']:>9.3f}{r['speedup_vs_cudnn']:>9.2f}"
                  f"  (whole generation with warm-up: {r['generation_speedup_vs_cudnn']:.2f}x)")
        if "ms" in r:
            print(f"{r['case']:<22}{r['impl']:<46}{r['ms']:>9.1f}{r['attn_density']:>9.3f}{r.get('speedup_vs_cudnn', 0):>9.2f}"
                  f"{r.get('speedup_vs_cudnn_compiled', 0):>9.2f}{r.get('compile_s', 0):>10.1f}{r.get('out_rel_err', 0):>9.3f}")
