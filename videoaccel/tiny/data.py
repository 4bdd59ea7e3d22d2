"""Procedural clips for training and evaluating the embedded text-to-video model: the specs and the prompt grammar.

Why procedural: every clip comes with an exact ground-truth spec, so prompt adherence (colour, direction) of
generated videos can be scored automatically (see `videoaccel.tiny.detect`). A fixed, seed-independent set of
(colour, shape, direction) triples is held out of training so generalisation to unseen combinations can be measured.
Why textures, camera motion and distractors (data v2): on flat backgrounds with one shape, attending anywhere is as
good as attending nearby, and a model trained on them has diffuse attention. Real footage is textured and moves
under the camera, so denoising a token needs its spatio-temporal neighbours: the structure sparse attention relies
on. Rendering is in `scene.py`; everything here is numpy + OpenCV only (no torch).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40), "green": (40, 200, 60), "blue": (40, 90, 250), "yellow": (245, 225, 40),
    "white": (245, 245, 245), "purple": (160, 50, 210), "orange": (250, 140, 20), "cyan": (40, 220, 230),
}
SHAPES = ("circle", "square", "triangle")
# Unit vectors in image coordinates (+y is down).
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0),
    "up-left": (-math.sqrt(0.5), -math.sqrt(0.5)), "up-right": (math.sqrt(0.5), -math.sqrt(0.5)),
    "down-left": (-math.sqrt(0.5), math.sqrt(0.5)), "down-right": (math.sqrt(0.5), math.sqrt(0.5)),
}
# Distance travelled over the whole clip per unit direction component, as a fraction of the frame along that axis.
# Motion lives in frame-normalised coordinates, so a spec gives the same clip (and bounce timing) at any resolution;
# diagonals are 45 degrees in normalised coordinates (the detector measures in the same coordinates).
SPEEDS = {"slowly": 1 / 3, "quickly": 2 / 3}
HELDOUT_FRACTION = 0.15
MIN_BG_DELTA_E = 45.0  # background must be clearly distinguishable from the shape (CIE76 in Lab)
MIN_PALETTE_DELTA_E = 30.0  # backgrounds and distractors stay this far from every named colour (detector)
TEXTURES = ("flat", "gradient", "noise", "stripes", "checker")
# Camera words (prompt suffix "camera pans left"); "static" adds no words. A pan moves the view, so the background
# moves the other way in the frame; zooms scale the background about the frame centre. The named shape moves in
# frame coordinates whatever the camera does (its direction is what the detector reads).
CAMERAS = ("static", "pans left", "pans right", "pans up", "pans down", "zooms in", "zooms out")
TRI = 1.2  # triangle circumradius in units of `size` (similar area to the circle of radius `size`)
# Half-extents (left, right, top, bottom) of each shape around its centre, in units of `size`; walls for bouncing.
EXTENTS = {"circle": (1.0, 1.0, 1.0, 1.0), "square": (1.0, 1.0, 1.0, 1.0),
           "triangle": (TRI * math.sqrt(0.75), TRI * math.sqrt(0.75), TRI, TRI / 2)}


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip. `background` is the two end colours of the background texture (equal =
    solid); `size` is the shape radius as a fraction of min(H, W); `start` is the centre as fractions of (W, H).
    `texture`/`seed` pick the background pattern, `camera` its motion, `light` a brightness ramp over the clip
    (frame gain 1 - light -> 1 + light), `distractors` unnamed grey-ish shapes: (shape, RGB, size, start (x, y),
    velocity (x, y) per clip, in front of the named shape)."""

    colour: str
    shape: str
    direction: str
    speed: str
    bouncing: bool
    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    size: float
    start: tuple[float, float]
    texture: str = "flat"
    seed: int = 0
    camera: str = "static"
    light: float = 0.0
    distractors: tuple = ()


def to_lab(rgb: ArrayLike) -> np.ndarray:
    """RGB uint8-like values (..., 3) -> float32 Lab (L in 0..100); used for perceptual colour distances."""
    a = np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(a, cv2.COLOR_RGB2Lab).reshape(np.shape(rgb))


def _combo_key(combo: tuple[str, str, str]) -> int:
    return int.from_bytes(hashlib.sha256("|".join(combo).encode()).digest()[:8], "big")


ALL_COMBOS = [(c, s, d) for c in COLOURS for s in SHAPES for d in DIRECTIONS]
# Deterministic and seed-independent: the triples with the smallest hashes are held out.
HELDOUT_COMBOS = frozenset(sorted(ALL_COMBOS, key=_combo_key)[: round(HELDOUT_FRACTION * len(ALL_COMBOS))])
TRAIN_COMBOS = [t for t in ALL_COMBOS if t not in HELDOUT_COMBOS]
_HELDOUT_SORTED = sorted(HELDOUT_COMBOS)


def is_heldout(spec: ClipSpec) -> bool:
    return (spec.colour, spec.shape, spec.direction) in HELDOUT_COMBOS


PALETTE_LAB = to_lab(np.float32([COLOURS[c] for c in COLOURS]))


def _far_colours(rng, colour: str | None, n: int, sat: float, val: tuple[float, float]):
    """n dark/mid colours whose blends are >= MIN_BG_DELTA_E from the shape colour and >= MIN_PALETTE_DELTA_E from
    every named colour (so the detector never mistakes background or distractors for a named shape)."""
    while True:
        hsv = np.stack([rng.uniform(0, 180, n), rng.uniform(0, sat, n), rng.uniform(*val, n)], -1)
        rgb = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]
        ends = [tuple(int(v) for v in c) for c in rgb]
        lab = to_lab(np.linspace(np.float32(ends[0]), np.float32(ends[-1]), 5))
        far = np.linalg.norm(lab[:, None] - PALETTE_LAB[None], axis=-1).min() >= MIN_PALETTE_DELTA_E
        if far and (colour is None or np.linalg.norm(lab - to_lab(COLOURS[colour]), axis=-1).min() >= MIN_BG_DELTA_E):
            return tuple(ends)


def _sample_background(rng, colour: str, texture: str):
    ends = _far_colours(rng, colour, 1 if texture == "flat" else 2, 170, (10, 130))
    return (ends[0], ends[-1])


def _sample_distractors(rng, n: int) -> tuple:
    """Unnamed low-saturation shapes drifting slowly in random directions (occluders and second movers)."""
    out = []
    for _ in range(n):
        rgb = _far_colours(rng, None, 1, 90, (60, 150))[0]
        angle = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(0.0, 0.3)
        out.append((SHAPES[rng.integers(len(SHAPES))], rgb, float(rng.uniform(0.06, 0.1)),
                    (float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.15, 0.85))),
                    (speed * math.cos(angle), speed * math.sin(angle))))
    return tuple(out)


def _sample_start(rng, shape: str, direction: str, speed: str, bouncing: bool, size: float) -> tuple[float, float]:
    """Start so a non-bouncing shape stays in frame, and a bouncing one first hits a wall at ~50-80% of the clip
    (so the first part of the clip shows the prompted direction; the detector relies on that).
    Extents are computed for a square frame; on wider/taller frames the shape is relatively smaller along the long
    axis, so it stays in frame all the same and bounces slightly later."""
    ext = EXTENTS[shape]
    start = []
    for v, (lo, hi) in zip(DIRECTIONS[direction], (ext[:2], ext[2:])):
        lo, hi = lo * size, hi * size
        travel = abs(v) * SPEEDS[speed]
        if v == 0:
            p = rng.uniform(lo, 1 - hi)
        elif bouncing:
            gap = rng.uniform(0.5, 0.7) * travel  # distance from the leading edge to the wall it will hit
            p = 1 - hi - gap if v > 0 else lo + gap
        else:
            a, b = (lo, 1 - hi - travel) if v > 0 else (lo + travel, 1 - hi)
            p = rng.uniform(a, b) if b > a else 0.5 * (a + b)
        start.append(float(p))
    return tuple(start)


def sample_spec(rng: np.random.Generator, split: str = "train") -> ClipSpec:
    """Random spec; split="train" never yields a held-out (colour, shape, direction), split="heldout" only those."""
    combos = {"train": TRAIN_COMBOS, "heldout": _HELDOUT_SORTED}[split]
    colour, shape, direction = combos[rng.integers(len(combos))]
    return _spec_for(rng, colour, shape, direction)


def _spec_for(rng, colour, shape, direction) -> ClipSpec:
    speed = ("slowly", "quickly")[rng.integers(2)]
    bouncing = bool(rng.random() < 0.4)
    size = float(rng.uniform(0.08, 0.12))
    start = _sample_start(rng, shape, direction, speed, bouncing, size)
    texture = TEXTURES[rng.choice(len(TEXTURES), p=(0.1, 0.15, 0.35, 0.2, 0.2))]
    camera = CAMERAS[0] if rng.random() < 0.3 else CAMERAS[1 + rng.integers(len(CAMERAS) - 1)]
    return ClipSpec(colour, shape, direction, speed, bouncing, _sample_background(rng, colour, texture), size, start,
                    texture=texture, seed=int(rng.integers(2 ** 31)), camera=camera,
                    light=float(rng.uniform(-0.12, 0.12)) if rng.random() < 0.5 else 0.0,
                    distractors=_sample_distractors(rng, int(rng.integers(0, 3))))


def prompt(spec: ClipSpec) -> str:
    """E.g. "a red circle slowly moving left" / "a blue square quickly bouncing up-right camera pans left"."""
    verb = "bouncing" if spec.bouncing else "moving"
    camera = "" if spec.camera == "static" else f" camera {spec.camera}"
    return f"a {spec.colour} {spec.shape} {spec.speed} {verb} {spec.direction}{camera}"


def _fold(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect positions into [lo, hi] (elastic bounces off both walls)."""
    if hi <= lo:
        return np.full_like(p, 0.5 * (lo + hi))
    q = np.mod(p - lo, 2 * (hi - lo))
    return lo + np.where(q > hi - lo, 2 * (hi - lo) - q, q)


def trajectory(spec: ClipSpec, frames: int, height: int, width: int) -> np.ndarray:
    """Shape centre per frame in pixels, float [frames, 2] as (x, y)."""
    t = np.arange(frames) / max(frames - 1, 1)
    vx, vy = DIRECTIONS[spec.direction]
    x = (spec.start[0] + vx * SPEEDS[spec.speed] * t) * width
    y = (spec.start[1] + vy * SPEEDS[spec.speed] * t) * height
    if spec.bouncing:
        left, right, top, bottom = (e * spec.size * min(height, width) for e in EXTENTS[spec.shape])
        x, y = _fold(x, left, width - right), _fold(y, top, height - bottom)  # touch the wall, then reflect
    return np.stack([x, y], -1)


def heldout_prompts(n: int = 50, seed: int = 0) -> list[tuple[str, ClipSpec]]:
    """n deterministic held-out (prompt, spec) pairs, cycling through every held-out triple."""
    rng = np.random.default_rng(seed)
    specs = [_spec_for(rng, *_HELDOUT_SORTED[i % len(_HELDOUT_SORTED)]) for i in range(n)]
    return [(prompt(s), s) for s in specs]
