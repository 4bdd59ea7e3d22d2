"""Rendering of `data.ClipSpec` clips: a textured background under a moving camera, the named shape, distractors.

Why this way: the background is drawn once on a canvas larger than the frame (in frame-normalised units, features
sized relative to the frame) and each frame is an affine view of it, so a spec renders the same clip at any
resolution, and pans/zooms move every background token coherently, the spatio-temporal structure real footage has.
Shapes are drawn per frame with OpenCV's anti-aliased primitives at sub-pixel precision.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .data import COLOURS, TRI, ClipSpec, prompt, sample_spec, trajectory

MARGIN = 0.35  # canvas border around the frame, in frame units: pans travel at most 0.3
PAN, ZOOM = 0.25, 0.25  # pan distance (frame units) and zoom factor change over a clip
_SHIFT = 4  # sub-pixel bits for OpenCV drawing


def _texture(spec: ClipSpec, ch: int, cw: int, unit: float) -> np.ndarray:
    """float32 [ch, cw] in [0, 1]; `unit` = pixels per min(frame H, W), so features scale with the frame."""
    rng = np.random.default_rng(spec.seed)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32) / unit
    if spec.texture == "flat":
        return np.zeros((ch, cw), np.float32)
    if spec.texture == "gradient":
        a = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(a) + yy * math.sin(a)
    elif spec.texture == "noise":  # value noise, three octaves
        t = np.zeros((ch, cw), np.float32)
        for k, cell in enumerate((0.3, 0.15, 0.075)):
            grid = rng.random((int(ch / unit / cell) + 2, int(cw / unit / cell) + 2)).astype(np.float32)
            t += 0.5 ** k * cv2.resize(grid, (cw, ch), interpolation=cv2.INTER_CUBIC)
    elif spec.texture == "stripes":
        a, period = rng.uniform(0, math.pi), rng.uniform(0.08, 0.2)
        t = np.sin(2 * math.pi * (xx * math.cos(a) + yy * math.sin(a)) / period)
    elif spec.texture == "checker":
        c = rng.uniform(0.08, 0.18)
        t = ((np.floor(xx / c) + np.floor(yy / c)) % 2).astype(np.float32)
        t = cv2.GaussianBlur(t, (0, 0), max(0.5, 0.004 * unit))
    else:
        raise ValueError(f"unknown texture {spec.texture!r}")
    lo, hi = float(t.min()), float(t.max())
    return ((t - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def _view(spec: ClipSpec, t: float) -> tuple[float, float, float]:
    """(x offset, y offset, zoom) of the camera at clip time t in [0, 1]; a pan left moves the view left."""
    ox = oy = 0.0
    z = 1.0
    kind, _, arg = spec.camera.partition(" ")
    if kind == "pans":
        d = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[arg]
        ox, oy = PAN * t * d[0], PAN * t * d[1]
    elif kind == "zooms":
        z = 1 + ZOOM * (t if arg == "in" else 1 - t)
    return ox, oy, z


def draw(img: np.ndarray, shape: str, cx: float, cy: float, r: float, rgb: tuple[int, int, int]) -> None:
    s = 1 << _SHIFT
    colour = tuple(int(v) for v in rgb) if img.ndim == 3 else 255
    if shape == "circle":
        cv2.circle(img, (round(cx * s), round(cy * s)), round(r * s), colour, -1, cv2.LINE_AA, _SHIFT)
        return
    if shape == "square":
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    else:  # upward equilateral triangle, circumradius TRI * r (similar area to the circle)
        R = TRI * r
        pts = [(cx + R * math.cos(a), cy - R * math.sin(a)) for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)]
    poly = np.round(np.array(pts) * s).astype(np.int32)
    cv2.fillPoly(img, [poly], colour, cv2.LINE_AA, _SHIFT)


def render(spec: ClipSpec, frames: int, height: int, width: int, with_mask: bool = False
           ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Anti-aliased uint8 clip [frames, height, width, 3] (RGB); with_mask: also uint8 [frames, height, width], 255
    where the named shape is (the autoencoder weights those pixels up)."""
    unit = float(min(height, width))
    ch, cw = round(height * (1 + 2 * MARGIN)), round(width * (1 + 2 * MARGIN))
    tex = _texture(spec, ch, cw, unit)[..., None]
    lo, hi = (np.float32(c) for c in spec.background)
    canvas = np.round(lo * (1 - tex) + hi * tex).astype(np.uint8)
    r = spec.size * unit
    out = np.empty((frames, height, width, 3), np.uint8)
    mask = np.zeros((frames, height, width), np.uint8) if with_mask else None
    ts = np.arange(frames) / max(frames - 1, 1)
    for i, ((cx, cy), t) in enumerate(zip(trajectory(spec, frames, height, width), ts)):
        ox, oy, z = _view(spec, float(t))
        a = np.float32([[1 / z, 0, width * (0.5 - 0.5 / z + ox + MARGIN)],
                        [0, 1 / z, height * (0.5 - 0.5 / z + oy + MARGIN)]])
        out[i] = cv2.warpAffine(canvas, a, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        draw(out[i], spec.shape, cx, cy, r, COLOURS[spec.colour])
        if mask is not None:
            draw(mask[i], spec.shape, cx, cy, r, None)
        for shape, rgb, size, (x0, y0), (vx, vy) in spec.distractors:
            draw(out[i], shape, (x0 + vx * t) * width, (y0 + vy * t) * height, size * unit, rgb)
        if spec.light:
            out[i] = cv2.convertScaleAbs(out[i], alpha=1 - spec.light + 2 * spec.light * float(t))
    return (out, mask) if with_mask else out


def batch(rng: np.random.Generator, n: int, frames: int, height: int, width: int, split: str = "train"
          ) -> tuple[np.ndarray, list[str], list[ClipSpec]]:
    """(uint8 [n, frames, height, width, 3], prompts, specs) for one training/eval batch."""
    specs = [sample_spec(rng, split) for _ in range(n)]
    clips = np.stack([render(s, frames, height, width) for s in specs]) if n else \
        np.zeros((0, frames, height, width, 3), np.uint8)
    return clips, [prompt(s) for s in specs], specs
