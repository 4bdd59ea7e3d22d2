"""Step sensitivity: how much an attention error at step s moves the final latent.

Why measured: the error a step injects is amplified (or damped) by every later step, and this
dominates the budget (dense warm-up steps beat finer masks: docs/embedded-model.md). Two runs of one
prompt from the same noise: A dense (its latents x^A), B with a reference sparse plan where every
transformer call also runs dense on the same input (shadow). Per step, B's update is a linear mix of
its calls' outputs, ``x_{s+1} - x_s = sum_j beta_j out_j`` (the scheduler step and guidance), fitted
by least squares, so the error step s injects is ``iota_s = sum_j beta_j (out_j - shadow_j)`` and
the previous error is carried by ``a_s = |dx_{s+1} - iota_s| / |dx_s|`` (dx = x^B - x^A). The final
error from step s is ``|iota_s| * prod_{t>s} a_t``, relative to |x^A_final|. Cost: A once, B twice
(sparse and shadow forwards): the profiler's defaults spend it on one prompt, whose calibration run is A.
B steps with ``shadow + scale * (sparse - shadow)``: at full scale a cheap reference plan makes the
trajectory diverge (final error > 100% on the embedded model) and the step-to-step gains flatten;
a small scale keeps the probe a directional derivative, and results are divided by it.
"""
from __future__ import annotations

import functools
import logging
from contextlib import ExitStack, contextmanager

from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

from .attach import dense_forwards

log = logging.getLogger("videoaccel")


def _sample(out):
    return out[0] if isinstance(out, tuple) else out.sample


def _with_sample(out, sample: torch.Tensor):
    return (sample, *out[1:]) if isinstance(out, tuple) else type(out)(sample=sample)


@contextmanager
def _wrapped_forward(model: torch.nn.Module, wrapper):
    had = "forward" in model.__dict__
    inner = model.forward
    model.forward = lambda *a, **kw: wrapper(inner, *a, **kw)
    try:
        yield
    finally:
        if had:
            model.forward = inner
        else:
            del model.forward


def latent_run(pipe, prompt: str, seed: int, on_step, call: dict) -> torch.Tensor:
    """One generation to latents; ``on_step(i, latents)`` (float32 on the host) after every step, when given."""
    def callback(_pipe, i, _t, kw):
        on_step(i, kw["latents"].detach().float().cpu())
        return kw

    g = torch.Generator(device=getattr(pipe, "device", "cpu")).manual_seed(seed)
    steps = {} if on_step is None else {"callback_on_step_end": callback, "callback_on_step_end_tensor_inputs": ["latents"]}
    return pipe(prompt=prompt, generator=g, output_type="latent", **steps, **call)


def measure(pipe: DiffusionPipeline, models: list[torch.nn.Module], prompt: str, seed: int, accelerate_ref: Callable[[], None],
            call: dict, scale: float = 0.1, dense: dict[int, torch.Tensor] | None = None) -> dict:
    """Sensitivity of the final latent to each step's attention error.

    ``accelerate_ref()`` switches the (already accelerated, dense) pipeline to the reference plan. ``dense``: run A's
    latents per step when a dense run of this prompt and seed already made them (the calibration's first).
    Returns {"injected": [|iota_s| / |x_final|], "gain": [a_s], "final": [contribution of step s]}."""
    if dense is None:
        dense = {}
        latent_run(pipe, prompt, seed, dense.__setitem__, call)
    accelerate_ref()
    outs: list[tuple[torch.Tensor, torch.Tensor]] = []
    prev: dict[str, torch.Tensor] = {}
    injected, carried, dx_norm = [], [], []
    residual: dict[int, float] = {}

    def wrapper(model, inner, *a, **kw):
        out = inner(*a, **kw)
        with dense_forwards(model):
            ref = _sample(inner(*a, **kw))
        mixed = ref + scale * (_sample(out) - ref)
        outs.append((mixed.detach().float().cpu(), ref.detach().float().cpu()))
        return _with_sample(out, mixed)

    def on_step(i, x):
        dx = x - dense[i]
        if i == 0:  # same start: the whole difference is what step 0 injected
            iota = dx
        else:
            cols = torch.stack([o.flatten().double() for o, _ in outs], 1)
            beta = torch.linalg.lstsq(cols, (x - prev["x"]).flatten().double()[:, None]).solution.flatten()
            fit = (cols @ beta - (x - prev["x"]).flatten().double()).norm() / (x - prev["x"]).double().norm().clamp_min(1e-30)
            residual[i] = float(fit)
            iota = sum(b * (o - r).double() for b, (o, r) in zip(beta.tolist(), outs)).float()
        injected.append(float(iota.norm()))
        carried.append(float((dx - iota).norm()))
        dx_norm.append(float(dx.norm()))
        prev["x"] = x
        outs.clear()

    with ExitStack() as stack:  # every transformer (Wan2.2 A14B: one per stage)
        for model in models:
            stack.enter_context(_wrapped_forward(model, functools.partial(wrapper, model)))
        latent_run(pipe, prompt, seed, on_step, call)
    loose = [i for i, r in residual.items() if r > 1e-2]
    if loose:  # said once (bf16 outputs against a float32 scheduler: a few percent)
        log.warning("videoaccel: %d of %d probe steps are not a linear mix of the transformer outputs (residual up to %.1e): "
                    "step weights are approximate", len(loose), len(residual) + 1, max(residual[i] for i in loose))
    n = len(injected)
    norm = (float(dense[n - 1].norm()) or 1.0) * scale
    gain = [1.0] + [carried[s] / dx_norm[s - 1] if dx_norm[s - 1] > 0 else 1.0 for s in range(1, n)]
    final = []
    for s in range(n):
        g = 1.0
        for t in range(s + 1, n):
            g *= gain[t]
        final.append(injected[s] * g / norm)
    return {"injected": [x / norm for x in injected], "gain": gain, "final": final,
            "final_error": dx_norm[-1] / norm, "scale": scale}
