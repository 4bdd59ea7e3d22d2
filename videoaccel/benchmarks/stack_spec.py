"""What a stack is: its parts joined with '+', the sparse preset it runs, the suite's settings.

Why apart from stack.py: the speed loop (stack.py) and the fidelity run (stack_fidelity.py) share
these, and the command line's parser (cli/parsers.py) reads ``STACKS`` without loading either.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import videoaccel  # light: the public API loads on first use (videoaccel/__init__.py)

STACKS = ("dense", "cache", "sparse", "sparse+cache", "sparse+cache+fp8", "sparse+cache+fp8+compile",
          "sparse+cache+fp8+compile+fp8linear")
PARTS = ("dense", "cache", "sparse", "fp8", "compile", "fp8linear")
def parse_stack(text: str) -> tuple[str, ...]:
    parts = tuple(text.split("+"))
    if any(p not in PARTS for p in parts) or ("dense" in parts and len(parts) > 1) or \
            ("fp8" in parts or "fp8linear" in parts) and "sparse" not in parts:
        raise ValueError(f"stack {text!r}: join {', '.join(PARTS)} with '+' (dense alone; fp8 and fp8linear with sparse), "
                         "e.g. sparse+cache+fp8+compile")
    return parts


def sparse_preset(preset: str, parts: tuple[str, ...]) -> str | None:
    """The profile a stack accelerates with: ``preset`` (+fp8 for the fp8 stacks, presets only)."""
    if "sparse" not in parts:
        return None
    if "fp8" not in parts:
        return preset
    if preset.endswith(".json"):
        raise ValueError(f"the fp8 stacks add +fp8 to a preset (e.g. radial:0.1), not to a profile file ({preset})")
    return preset + "+fp8"


@dataclass(frozen=True)
class StackArgs:
    """The stack suite's settings (cli/bench.py fills them from its flags)."""

    models: list[str]
    out: str
    steps: int = 50
    dense_steps: int | None = None
    cache: str = "taylorseer-lite:2"
    preset: str = "radial:0.1"
    stacks: list[str] = field(default_factory=lambda: list(STACKS))
    tiny: bool = False
    fidelity: int | None = None


def restore_with_report(target) -> dict:
    """Undo ``accelerate`` on a pipeline or transformer and return the row fields of what ran: achieved attention
    density, counted fallbacks, and the fraction of attention calls that ran (the rest were served by the cache)."""
    rep = videoaccel.report(target).transformers["transformer"]
    videoaccel.restore(target)
    possible = sum(s.passes for s in rep.steps) * len(rep.steps[0].calls) if rep.steps else 0
    return dict(attn_density=round(rep.mean_density, 4), fallbacks=rep.fallbacks,
                attention_ran=round(sum(sum(s.calls) for s in rep.steps) / max(possible, 1), 3))
