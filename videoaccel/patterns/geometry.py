"""Video geometry: where each token sits, so patterns can be written in video terms.

A geometry is the latent grid after patchify (frames x height x width tokens), the joined text
tokens (front, back or none), the attention block size and the token order (frame-major as the
model produces it, or tile-major, see token_order.py). Pattern parameters are fractions of this
grid, so one plan applies at 480p and 720p, and at other lengths.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import torch

from ..kernels.layout import num_blocks
from .registry import BLOCKS, ORDERS, Order
from .token_order import tile_major_permutation

TextPosition = Literal["none", "front", "back"]


@dataclass(frozen=True)
class VideoGeometry:
    frames: int
    height: int
    width: int
    text: int = 0
    text_position: TextPosition = "none"
    block: int = 128
    order: Order = "frame"

    def __post_init__(self) -> None:
        if min(self.frames, self.height, self.width) < 1:
            raise ValueError(f"geometry {self.frames}x{self.height}x{self.width} must have at least one token per axis")
        if self.text < 0 or (self.text > 0) != (self.text_position != "none"):
            raise ValueError("give text > 0 with text_position 'front' or 'back', or text = 0 with 'none'")
        if self.block not in BLOCKS:
            raise ValueError(f"block={self.block}: use 16, 32, 64 or 128")
        if self.order not in ORDERS:
            raise ValueError(f"order={self.order!r}: use 'frame' or 'tile'")

    @classmethod
    def parse(cls, spec: str, **kw) -> VideoGeometry:
        """'21x30x52' -> frames 21, height 30, width 52 (tokens after patchify)."""
        try:
            t, h, w = (int(x) for x in spec.lower().split("x"))
        except ValueError:
            raise ValueError(f"geometry {spec!r} must look like TxHxW in latent tokens, e.g. 21x30x52") from None
        return cls(t, h, w, **kw)

    # ---- sizes ----------------------------------------------------------------------------
    @property
    def frame_tokens(self) -> int:
        return self.height * self.width

    @property
    def video_tokens(self) -> int:
        return self.frames * self.frame_tokens

    @property
    def seq_len(self) -> int:
        return self.video_tokens + self.text

    @property
    def video_range(self) -> tuple[int, int]:
        start = self.text if self.text_position == "front" else 0
        return start, start + self.video_tokens

    @property
    def text_range(self) -> tuple[int, int]:
        if self.text_position == "front":
            return 0, self.text
        if self.text_position == "back":
            return self.video_tokens, self.seq_len
        return 0, 0

    @property
    def num_blocks(self) -> int:
        return num_blocks(0, self.video_tokens, self.block)

    # ---- coordinates ----------------------------------------------------------------------
    @cached_property
    def token_coords(self) -> torch.Tensor:
        """int64 [S_video, 3]: (t, h, w) of the token at each video position, in this order."""
        t, h, w = torch.meshgrid(torch.arange(self.frames), torch.arange(self.height), torch.arange(self.width), indexing="ij")
        coords = torch.stack([t, h, w], -1).reshape(-1, 3)
        if self.order == "tile":
            coords = coords[tile_major_permutation(self)]
        return coords

    @cached_property
    def block_boxes(self) -> torch.Tensor:
        """int64 [NB, 3, 2]: per video block, (min, max) of t, h and w over its tokens."""
        c = self.token_coords
        nb, pad = self.num_blocks, self.num_blocks * self.block - c.shape[0]
        lo = torch.cat([c, c[-1:].expand(pad, 3)]).reshape(nb, self.block, 3)
        return torch.stack([lo.amin(1), lo.amax(1)], -1)

    @cached_property
    def block_centers(self) -> torch.Tensor:
        """float64 [NB, 3]: mean (t, h, w) of each video block's tokens."""
        c = self.token_coords.double()
        idx = torch.arange(c.shape[0]) // self.block
        return torch.zeros(self.num_blocks, 3, dtype=torch.float64).index_add_(0, idx, c) / torch.bincount(idx)[:, None]

    @cached_property
    def block_extent(self) -> torch.Tensor:
        """float64 [3]: mean size of a block along t, h, w (tokens)."""
        return (self.block_boxes[..., 1] - self.block_boxes[..., 0] + 1).double().mean(0)

    def with_order(self, order: Order) -> VideoGeometry:
        return replace(self, order=order)
