"""FP8 linear layers where they pay off: torchao dynamic float8, chosen per layer by measured speed.

Float8 linears win only compiled (the activation quantisation fuses into the op before it) and on
large GEMMs; small ones lose to the quantisation cost (eager float8 was slower than bf16 on the
H100: bench/e2e-h100.json). ``select`` times every distinct linear shape of the transformer's
blocks, bf16 against float8, both compiled, at the model's token count, and keeps the layers whose
shape gains at least ``min_speedup``. ``apply`` quantises them; restore() puts the originals back.
"""
from __future__ import annotations

import copy

import torch

from .models import spec_for

DEFAULT_TOKENS = 32760  # Wan2.1 480p 81 frames: the sequence the measurement assumes unless told


def check_available() -> None:
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9):
        raise ValueError("fp8_linear needs a CUDA GPU with FP8 tensor cores (compute capability >= 8.9, e.g. H100)")
    try:
        import torchao  # noqa: F401
    except ImportError:
        raise ValueError("fp8_linear needs torchao: pip install torchao (a version matching your torch)") from None


def block_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """Linear layers inside the repeated blocks, by their name in ``model``."""
    inside = {id(m) for b in spec_for(model).blocks(model) for m in b.modules()}
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and id(m) in inside}


def _ms(fn, x: torch.Tensor, repeats: int) -> float:
    for _ in range(3):  # compile, autotune, warm
        fn(x)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(repeats):
        fn(x)
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / repeats


def measure(shapes: set[tuple[int, int]], tokens: int, dtype: torch.dtype = torch.bfloat16, repeats: int = 20) -> dict:
    """{(in_features, out_features): bf16 ms / float8 ms}, both under torch.compile, at ``tokens`` rows."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_

    out = {}
    for k, n in sorted(shapes):
        lin = torch.nn.Linear(k, n, device="cuda", dtype=dtype)
        q = copy.deepcopy(lin)
        quantize_(q, Float8DynamicActivationFloat8WeightConfig())
        x = torch.randn(tokens, k, device="cuda", dtype=dtype)
        with torch.no_grad():
            out[(k, n)] = _ms(torch.compile(lin), x, repeats) / _ms(torch.compile(q), x, repeats)
    return out


def select(model: torch.nn.Module, tokens: int = DEFAULT_TOKENS, min_speedup: float = 1.05) -> tuple[list[str], dict]:
    """(names of the block linears worth float8, the measured speedup per shape)."""
    lins = block_linears(model)
    speed = measure({(m.in_features, m.out_features) for m in lins.values()}, tokens, next(model.parameters()).dtype)
    return [n for n, m in lins.items() if speed[(m.in_features, m.out_features)] >= min_speedup], speed


def apply(model: torch.nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """Quantise the named linears to float8 (weights per tensor, activations dynamically); returns the
    original weights (on the CPU) for restore()."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_

    chosen = set(names)
    originals = {n: model.get_submodule(n).weight.detach().to("cpu") for n in chosen}
    quantize_(model, Float8DynamicActivationFloat8WeightConfig(), filter_fn=lambda m, fqn: fqn in chosen)
    return originals


def restore(model: torch.nn.Module, originals: dict[str, torch.Tensor]) -> None:
    """Put back the weights ``apply`` returned (on each linear's device)."""
    for name, w in originals.items():
        lin = model.get_submodule(name)
        lin.weight = torch.nn.Parameter(w.to(lin.weight.device), requires_grad=False)
