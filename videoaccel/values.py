"""Checks of single values (densities, fractions, counts, ...), one function per kind: a leaf module, so
patterns, plans, the profiler and the command line share them without importing each other.

Each error names the valid range and an example.
"""
from __future__ import annotations

import math
from typing import Any

from .profile_schema import shown


def _number(value: Any, name: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={shown(value)} must be a finite number, e.g. {example}")
    return float(value)


def density(value: Any, name: str = "density") -> float:
    """A target attention density: the kept fraction of the score matrix, in (0, 1]."""
    v = _number(value, name, "0.1 (radial:0.1)")
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name}={value} must be in (0, 1] (the kept fraction of attention), e.g. 0.1 as in radial:0.1")
    return v


def mass(value: Any, name: str = "top_p") -> float:
    """A fraction of attention mass to keep, in (0, 1]."""
    v = _number(value, name, "0.9 (draft:0.9)")
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name}={value} must be in (0, 1] (the attention mass kept), e.g. 0.9 as in draft:0.9")
    return v


def fraction(value: Any, name: str) -> float:
    """A fraction of the latent grid, in [0, 1]."""
    v = _number(value, name, f"{name}=0.25")
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}={value} must be a fraction of the latent grid in [0, 1], e.g. {name}=0.25")
    return v


def positive(value: Any, name: str) -> float:
    v = _number(value, name, f"{name}=1.0")
    if v <= 0:
        raise ValueError(f"{name}={value} must be > 0, e.g. {name}=1.0")
    return v


def count(value: Any, name: str, minimum: int) -> int:
    """A whole number (of frames, steps, blocks) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={shown(value)} must be a whole number >= {minimum}, e.g. {name}={max(minimum, 1)}")
    return value


def thresholds(value: Any, name: str = "thresholds") -> tuple[float, ...]:
    """Pyramid mass thresholds: 1 to 4 increasing fractions in (0, 1]."""
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 4:
        raise ValueError(f"{name}={shown(value)} must be 1 to 4 increasing mass fractions, e.g. [0.6, 0.8, 0.9, 0.95]")
    vals = tuple(mass(v, name) for v in value)
    if list(vals) != sorted(vals):
        raise ValueError(f"{name}={list(vals)} must increase, e.g. [0.6, 0.8, 0.9, 0.95]")
    return vals


def video_size(value: str, name: str = "size") -> tuple[int, int, int]:
    """'25x192x320' -> (frames, height, width) in pixels, each a positive integer."""
    try:
        f, h, w = (int(x) for x in str(value).lower().split("x"))
    except ValueError:
        raise ValueError(f"{name}={value!r}: give FRAMESxHEIGHTxWIDTH in pixels, e.g. 25x192x320") from None
    if min(f, h, w) < 1:
        raise ValueError(f"{name}={value!r}: frames, height and width must be positive, e.g. 25x192x320")
    return f, h, w
