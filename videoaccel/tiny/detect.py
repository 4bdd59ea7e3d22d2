"""Automatic prompt-adherence check for generated clips: which named colour moves in which direction.

Why this design: backgrounds are textured and move with the camera (data v2), and unnamed distractor shapes are
grey-ish, while every named colour is saturated or bright and the data keeps backgrounds and distractors away from
all of them. So the detector denoises, measures each pixel's Lab distance to every named colour, takes the colour
that covers the most pixels over the clip, follows the largest blob of that colour per frame, and reads the
direction from the first part of the clip only (before a bounce). Thresholds are relative to the best match in a
frame, which tolerates the blur and colour drift of generated videos.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .data import COLOURS, DIRECTIONS, PALETTE_LAB, ClipSpec

_NAMES = list(COLOURS)
FIRST_PART = 0.45  # fraction of the clip used for direction (data.py bounces no earlier than ~50%)
MATCH_DELTA_E = 28.0  # Lab delta-E within which a pixel counts as a named colour (data keeps others >= 30 away)
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
    dist = np.linalg.norm(lab[..., None, :] - PALETTE_LAB, axis=-1)  # f, h, w, colours
    near = dist < MATCH_DELTA_E
    if near.sum() == 0:
        return Detection("none", "none", 0.0, 0.0)
    c = int(np.argmax(near.sum((0, 1, 2))))
    times, cents = [], []
    for i in range(f):
        best = float(dist[i, ..., c].min())
        if best >= MATCH_DELTA_E:
            continue
        mask = (dist[i, ..., c] < min(MATCH_DELTA_E, best + 0.5 * MATCH_DELTA_E)).astype(np.uint8)
        n, labels, stats, cent = cv2.connectedComponentsWithStats(mask, connectivity=8)
        j = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        times.append(i)
        cents.append(cent[j])
    colour = _NAMES[c]
    t = np.array(times, np.float64) / max(f - 1, 1)
    xy = np.array(cents, np.float64) / (w, h)
    first = t <= FIRST_PART + 1e-9
    if first.sum() < 2:
        return Detection(colour, "none", 0.0, 0.0)
    vx, vy = (np.polyfit(t[first], xy[first, a], 1)[0] for a in (0, 1))  # least-squares velocity per clip
    return Detection(colour, _direction(vx, vy), float(vx), float(vy))


def score(frames_list: list[np.ndarray], specs: list[ClipSpec]) -> dict:
    """Colour and direction accuracy of detect() against the specs' prompted attributes."""
    dets = [detect(np.asarray(x)) for x in frames_list]
    n = len(dets)
    return {
        "colour": sum(d.colour == s.colour for d, s in zip(dets, specs)) / max(n, 1),
        "direction": sum(d.direction == s.direction for d, s in zip(dets, specs)) / max(n, 1),
        "n": n,
        "detected": [[d.colour, d.direction] for d in dets],
    }
