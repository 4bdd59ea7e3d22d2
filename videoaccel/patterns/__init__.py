"""Attention patterns: geometry and token order -> per-head block masks -> kernel layouts."""
from .draft import draft_masks, top_p_mask
from .geometry import VideoGeometry
from .library import PATTERNS, block_mask, build_layout, fit_density, mask_density
from .oracle import oracle_masks
from .pyramid import compensation, merge_lse, pyramid_attention, pyramid_levels
from .token_order import tile_major_permutation, to_frame_major, to_tile_major

__all__ = ["PATTERNS", "VideoGeometry", "block_mask", "build_layout", "compensation", "draft_masks",
           "fit_density", "mask_density", "merge_lse", "oracle_masks", "pyramid_attention", "pyramid_levels", "tile_major_permutation",
           "to_frame_major", "to_tile_major", "top_p_mask"]
