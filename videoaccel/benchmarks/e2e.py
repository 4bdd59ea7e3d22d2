"""`videoaccel bench e2e`: one denoising step of full-size random-weight transformers, per setting.

Models are built on the GPU from their published configs (no weights needed). Settings:
``sdpa-default`` (diffusers out of the box), ``cudnn`` (SDPA forced to cuDNN), videoaccel presets
(bf16 / FP8 attention), and the same with FP8 linear layers (torchao dynamic float8). For the
sparse presets it records each sampled layer's self-attention output error against the dense
run and the final output error (random weights give near-uniform attention: the hardest case).
"""
from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace

import torch

WAN_BASE = dict(patch_size=(1, 2, 2), in_channels=16, out_channels=16, text_dim=4096, freq_dim=256, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
CASES = {
    "wan1.3b-480p81f": ("WanTransformer3DModel", dict(WAN_BASE, num_attention_heads=12, attention_head_dim=128, ffn_dim=8960,
                                                        num_layers=30), (21, 60, 104)),
    "wan14b-720p81f": ("WanTransformer3DModel", dict(WAN_BASE, num_attention_heads=40, attention_head_dim=128, ffn_dim=13824,
                                                       num_layers=40), (21, 90, 160)),
    "cogvideox5b-480p49f": ("CogVideoXTransformer3DModel", dict(
        num_attention_heads=48, attention_head_dim=64, in_channels=16, out_channels=16, time_embed_dim=512, text_embed_dim=4096,
        num_layers=42, sample_width=90, sample_height=60, sample_frames=49, patch_size=2, max_text_seq_length=226,
        use_rotary_positional_embeddings=True, norm_eps=1e-5), (13, 60, 90)),
    "hunyuan-720p129f": ("HunyuanVideoTransformer3DModel", dict(
        in_channels=16, out_channels=16, num_attention_heads=24, attention_head_dim=128, num_layers=20, num_single_layers=40,
        num_refiner_layers=2, patch_size=2, patch_size_t=1, text_embed_dim=4096, pooled_projection_dim=768,
        rope_axes_dim=(16, 56, 56), guidance_embeds=True), (33, 90, 160)),
}
PRESETS = ("radial:0.25", "radial:0.1", "radial:0.1+fp8")


def build(case: str):
    import diffusers

    cls_name, cfg, (f, h, w) = CASES[case]
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = getattr(diffusers, cls_name)(**cfg).to(torch.bfloat16).eval()
    g = torch.Generator(device="cuda").manual_seed(1)
    rnd = lambda *s: torch.randn(*s, generator=g, device="cuda", dtype=torch.bfloat16)  # noqa: E731
    t = torch.tensor([700.0], device="cuda")
    if cls_name == "WanTransformer3DModel":
        kw = dict(hidden_states=rnd(1, 16, f, h, w), timestep=t, encoder_hidden_states=rnd(1, 512, 4096))
    elif cls_name == "CogVideoXTransformer3DModel":
        from diffusers import CogVideoXPipeline

        ns = SimpleNamespace(vae_scale_factor_spatial=8, transformer=model)
        rope = CogVideoXPipeline._prepare_rotary_positional_embeddings(ns, h * 8, w * 8, f, torch.device("cuda"))
        kw = dict(hidden_states=rnd(1, f, 16, h, w), timestep=t, encoder_hidden_states=rnd(1, 226, 4096), image_rotary_emb=rope)
    else:
        mask = torch.ones(1, 256, device="cuda", dtype=torch.bool)
        mask[:, 200:] = False
        kw = dict(hidden_states=rnd(1, 16, f, h, w), timestep=t, encoder_hidden_states=rnd(1, 256, 4096),
                  encoder_attention_mask=mask, pooled_projections=rnd(1, 768), guidance=torch.tensor([6000.0], device="cuda"))
    return model, dict(kw, return_dict=False)


def _time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up: compilation, autotuning, plan building
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        out = fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2], out


def _capture(model, spec, layers):
    """Forward hooks that keep the self-attention outputs of ``layers``."""
    store, handles = {}, []
    mods = spec.self_attention(model)
    for i in layers:
        def hook(_m, _a, out, i=i):
            store[i] = (out[0] if isinstance(out, tuple) else out).detach().float()
        handles.append(mods[i].register_forward_hook(hook))
    return store, handles


def run(cases: list[str], out_dir: str, fp8_linear: bool = True, presets: tuple[str, ...] = PRESETS) -> list:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import videoaccel
    from videoaccel.pipelines.models import spec_for

    results = []

    def rec(**kw):
        results.append(kw)
        print(json.dumps(kw), flush=True)

    for case in cases:
        model, kw = build(case)
        spec = spec_for(model)
        n_layers = len(spec.self_attention(model))
        sample = sorted({0, n_layers // 4, n_layers // 2, 3 * n_layers // 4, n_layers - 1})
        step = lambda: model(**kw)[0]  # noqa: E731
        with torch.no_grad():
            t0 = time.time()
            ms, _ = _time(step, 1)
            reps = 3 if ms < 3000 else 1
            rec(case=case, impl="sdpa-default", ms=ms, attn_density=1.0)
            store, handles = _capture(model, spec, sample)
            with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                dense_ms, dense_out = _time(step, reps)
            dense_layers = dict(store)
            for h in handles:
                h.remove()
            rec(case=case, impl="cudnn", ms=dense_ms, attn_density=1.0, speedup_vs_cudnn=1.0)
            settings = [("dense", False)] + [(p, False) for p in presets]
            for name, lin in settings + ([("cudnn", True)] + [(p, True) for p in presets if ":0.1" in p] if fp8_linear else []):
                if lin and not getattr(model, "_fp8_linear", False):
                    try:
                        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_

                        quantize_(model, Float8DynamicActivationFloat8WeightConfig())
                        model._fp8_linear = True
                    except Exception as e:  # noqa: BLE001 - recorded, the rest of the run goes on
                        rec(case=case, impl="fp8-linear", error=repr(e)[:300])
                        break
                impl = ("cudnn" if name == "cudnn" else f"videoaccel-{name}") + ("+fp8linear" if lin else "")
                if name == "cudnn":
                    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                        ms, out = _time(step, reps)
                    rec(case=case, impl=impl, ms=ms, attn_density=1.0, speedup_vs_cudnn=dense_ms / ms)
                    continue
                videoaccel.accelerate(model, name)
                store, handles = _capture(model, spec, sample)
                ms, out = _time(step, reps)
                for h in handles:
                    h.remove()
                rep = videoaccel.report(model)["transformer"]
                videoaccel.restore(model)
                layer_err = {i: float((store[i] - dense_layers[i]).norm() / dense_layers[i].norm()) for i in sample}
                rec(case=case, impl=impl, ms=ms, attn_density=round(rep["mean_density"], 4), speedup_vs_cudnn=dense_ms / ms,
                    out_rel_err=float((out.float() - dense_out.float()).norm() / dense_out.float().norm()),
                    layer_rel_err=layer_err, fallbacks=rep["fallbacks"])
            print(f"{case}: {time.time() - t0:.0f} s", flush=True)
        del model, kw, dense_layers, store
        torch.cuda.empty_cache()
        path = _write(results, out_dir)  # after every case: a run cut short keeps what it measured
    _table(results)
    print(f"wrote {path}")
    return results


def _write(results: list, out_dir: str) -> str:
    from .record import device_tag, header

    doc = header("e2e", "videoaccel bench e2e " + " ".join(sys.argv[3:]), results)
    path = os.path.join(out_dir, f"e2e-{device_tag(doc['device'])}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return path


def _table(results: list) -> None:
    print(f"\n{'case':<22}{'impl':<36}{'ms':>10}{'density':>9}{'x cuDNN':>9}{'out err':>9}")
    for r in results:
        if "ms" in r:
            print(f"{r['case']:<22}{r['impl']:<36}{r['ms']:>10.1f}{r['attn_density']:>9.3f}{r.get('speedup_vs_cudnn', 0):>9.2f}"
                  f"{r.get('out_rel_err', 0):>9.3f}")
