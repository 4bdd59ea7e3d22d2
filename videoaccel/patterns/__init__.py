"""Attention patterns: geometry and token order -> per-head block masks -> kernel layouts.

The registry (registry.py: every pattern's name, behaviour, parameters and knob) imports without torch,
so profile files and the CLI read it cheaply; the rest loads on first use of one of its names.
"""
from __future__ import annotations

import importlib

from .registry import DYNAMIC, PATTERNS, PRESETS, SCORED, STATIC, TUNABLE, PatternSpec

_HOME = {"VideoGeometry": "geometry", "block_mask": "library", "build_layout": "library",
         "fit_density": "library", "honest_density": "library", "mask_density": "library", "draft_masks": "draft", "top_p_mask": "draft",
         "video_block_scores": "draft", "estimate_levels": "pyramid", "merge_lse": "pyramid",
         "pyramid_attention": "pyramid", "pyramid_levels": "pyramid", "oracle_masks": "oracle", "sampled_masks": "sampled",
         "tile_major_permutation": "token_order", "to_frame_major": "token_order", "to_tile_major": "token_order"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


__all__ = ["DYNAMIC", "PATTERNS", "PRESETS", "SCORED", "STATIC", "TUNABLE", "PatternSpec", *_HOME]
