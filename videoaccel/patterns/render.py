"""Pictures of block layouts: the block mask (or pyramid levels) and how it spreads over frame pairs."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..files import write_image
from .geometry import VideoGeometry

# BGR colours per pyramid level: 0 full, 1..3 pooled, skipped stays dark
_LEVEL_BGR = np.array([[40, 200, 255], [60, 160, 60], [160, 110, 40], [120, 60, 110]], dtype=np.uint8)


def _upscale(img: np.ndarray, size: int) -> np.ndarray:
    f = max(1, size // max(img.shape[:2]))
    return cv2.resize(img, (img.shape[1] * f, img.shape[0] * f), interpolation=cv2.INTER_NEAREST)


def mask_image(levels: torch.Tensor, size: int = 512) -> np.ndarray:
    """levels int [NB, NB] (-1 skip, 0 full, 1..3 pooled) or bool -> BGR image."""
    lv = levels.to(torch.int64).cpu().numpy() if levels.dtype != torch.bool else np.where(levels.cpu().numpy(), 0, -1)
    img = np.full(lv.shape + (3,), 25, dtype=np.uint8)
    for lvl, bgr in enumerate(_LEVEL_BGR):
        img[lv == lvl] = bgr
    return _upscale(img, size)


def frame_pair_image(levels: torch.Tensor, geometry: VideoGeometry, size: int = 512) -> np.ndarray:
    """Kept fraction of block pairs per (query frame, key frame), as a grey map."""
    kept = (levels >= 0) if levels.dtype != torch.bool else levels
    f = geometry.block_centers[:, 0].round().long().clamp(0, geometry.frames - 1)
    T = geometry.frames
    num = torch.zeros(T, T, dtype=torch.float64)
    den = torch.zeros(T, T, dtype=torch.float64)
    idx = (f[:, None] * T + f[None, :]).flatten()
    num.view(-1).index_add_(0, idx, kept.double().flatten().cpu())
    den.view(-1).index_add_(0, idx, torch.ones(idx.numel(), dtype=torch.float64))
    frac = (num / den.clamp_min(1)).numpy()
    img = cv2.applyColorMap((frac * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    return _upscale(img, size)


def write_layout_png(path: str, levels: torch.Tensor, geometry: VideoGeometry, title: str) -> None:
    """Block mask beside its frame-pair view, with a caption; raises if the file cannot be written."""
    a, b = mask_image(levels), frame_pair_image(levels, geometry)
    h = max(a.shape[0], b.shape[0])
    pad = lambda im: cv2.copyMakeBorder(im, 0, h - im.shape[0], 0, 10, cv2.BORDER_CONSTANT, value=(255, 255, 255))  # noqa: E731
    body = np.concatenate([pad(a), pad(b)], 1)
    cap = np.full((40, body.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(cap, title, (8, 27), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    write_image(path, np.concatenate([cap, body], 0))
