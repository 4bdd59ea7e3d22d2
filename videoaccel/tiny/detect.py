"""Automatic prompt-adherence check for generated clips: which named colour moves in which direction.

Why this design: generated videos are blurry and noisy, so the detector denoises, models the background per image
row (solid and vertical-gradient backgrounds are constant along a row, and the shape covers well under half a row;
a temporal median would fail for slow shapes that cover a pixel most of the clip), keeps the largest foreground blob,
classifies its core colour in Lab, and reads the direction from the first part of the clip only (before a bounce).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .data import COLOURS, DIRECTIONS, to_lab

_NAMES = list(COLOURS)
_PALETTE_LAB = to_lab(np.array([COLOURS[c] for c in _NAMES], np.float32))
FIRST_PART = 0.45  # fraction of the clip used for direction (data.py bounces no earlier than ~50%)
MIN_CONTRAST = 12.0  # Lab delta-E below which a frame is treated as empty
MIN_MOTION = 0.05  # displacement (fraction of the frame over the clip) below which the direction is "none"


@dataclass(frozen=True)
class Detection:
    """colour/direction are names from data.py (or "none"); dx, dy: estimated displacement over the whole clip as
    fractions of the frame width/height (the coordinates data.py moves shapes in), +y down; slow ~0.33, fast ~0.67
    per moving axis (times 0.71 for diagonals)."""

    colour: str
    direction: str
    dx: float
    dy: float


def _direction(dx: float, dy: float) -> str:
    """8-way with 45-degree sectors: a diagonal only when the smaller component is > tan(22.5 deg) of the larger."""
    if math.hypot(dx, dy) < MIN_MOTION:
        return "none"
    angle = math.atan2(dy, dx)
    return max(DIRECTIONS, key=lambda d: DIRECTIONS[d][0] * math.cos(angle) + DIRECTIONS[d][1] * math.sin(angle))


def detect(frames: np.ndarray) -> Detection:
    """frames: uint8 [F, H, W, 3] RGB."""
    f, h, w, _ = frames.shape
    scale = min(1.0, 64.0 / min(h, w))  # work at ~64 px: resolution-independent cost, and area-averaging denoises
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        frames = np.stack([cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in frames])
        f, h, w, _ = frames.shape
    smooth = np.stack([cv2.GaussianBlur(x, (3, 3), 0) for x in frames]).astype(np.float32) / 255.0
    lab = cv2.cvtColor(smooth.reshape(f * h, w, 3), cv2.COLOR_RGB2Lab).reshape(f, h, w, 3)
    bg = np.median(lab[:, :, ::2], axis=2, keepdims=True)
    diff = lab - bg
    dist = np.sqrt(np.einsum("fhwc,fhwc->fhw", diff, diff))
    peaks = dist.reshape(f, -1).max(1)
    times, cents, cores = [], [], []
    for i in range(f):
        peak = float(peaks[i])
        if peak < MIN_CONTRAST:
            continue
        mask = (dist[i] > 0.5 * peak).astype(np.uint8)
        n, labels, stats, cent = cv2.connectedComponentsWithStats(mask, connectivity=8)
        j = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        blob = labels == j
        core = blob & (dist[i] >= 0.8 * dist[i][blob].max())
        times.append(i)
        cents.append(cent[j])
        cores.append(lab[i][core].mean(0))
    if not times:
        return Detection("none", "none", 0.0, 0.0)
    colour = _NAMES[int(np.argmin(np.linalg.norm(_PALETTE_LAB - np.median(cores, 0), axis=-1)))]
    t = np.array(times, np.float64) / max(f - 1, 1)
    c = np.array(cents, np.float64) / (w, h)
    first = t <= FIRST_PART + 1e-9
    if first.sum() < 2:
        return Detection(colour, "none", 0.0, 0.0)
    vx, vy = (np.polyfit(t[first], c[first, a], 1)[0] for a in (0, 1))  # least-squares velocity per clip
    return Detection(colour, _direction(vx, vy), float(vx), float(vy))


def score(frames_list, specs) -> dict:
    """Colour and direction accuracy of detect() against the specs' prompted attributes."""
    dets = [detect(np.asarray(x)) for x in frames_list]
    n = len(dets)
    return {
        "colour": sum(d.colour == s.colour for d, s in zip(dets, specs)) / max(n, 1),
        "direction": sum(d.direction == s.direction for d, s in zip(dets, specs)) / max(n, 1),
        "n": n,
        "detected": [[d.colour, d.direction] for d in dets],
    }
