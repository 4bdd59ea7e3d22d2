"""argparse value types: a bad command-line value stops in the parser (one line, exit code 2: cli.Parser)
before any model loads, with its valid range and an example."""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable

from .. import cache_spec, values



def _parse(text: str, convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str, example: str) -> Any:
    try:
        v = convert(text)
    except ValueError:
        v = None
    if v is None or not ok(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}, e.g. {example}")
    return v


def positive_int(text: str) -> int:
    """Steps, frames, fps, buckets, GPUs."""
    return _parse(text, int, lambda v: v >= 1, "a whole number >= 1", "20")


def non_negative_int(text: str) -> int:
    return _parse(text, int, lambda v: v >= 0, "a whole number >= 0", "0")


def size(text: str) -> int:
    """Height / width in pixels: every supported VAE downsamples by 8 or more (Wan-family checks 16 before loading)."""
    return _parse(text, int, lambda v: v >= 8 and v % 8 == 0, "a positive size in pixels divisible by 8", "480")


def positive(text: str) -> float:
    return _parse(text, float, lambda v: math.isfinite(v) and v > 0, "a number > 0", "0.05")


def non_negative(text: str) -> float:
    return _parse(text, float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0", "5.0")


def density(text: str) -> float:
    """A target attention density (the plan check's range)."""
    try:
        return values.density(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e) if "e.g." in str(e) else f"{text!r} is not a number, e.g. 0.1") from None



def cache(text: str) -> str:
    """``--cache NAME[:VALUE]``: checked here, parsed again where it is used (``none`` must stay distinguishable)."""
    try:
        cache_spec.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text
