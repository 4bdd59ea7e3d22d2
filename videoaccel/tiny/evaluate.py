"""Prompt adherence of a text-to-video pipeline on the embedded model's held-out prompts.

Why batched with one generator per prompt: the held-out set is generated many times (dense, then once per
profile in the fidelity sweep); a generator per prompt makes each video depend on its prompt and seed only, not on
the batch it ran in, so dense and accelerated videos of the same prompt start from the same noise.
"""
from __future__ import annotations

import time

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..video import as_uint8_video
from . import data
from .detect import detect

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline


def generate(pipe: DiffusionPipeline, prompts: list[str], seeds: list[int], batch: int = 10, **call) -> tuple[list[np.ndarray], float]:
    """uint8 [F, H, W, 3] videos for ``prompts`` (seed i for prompt i) and the seconds spent in the pipeline."""
    videos, seconds = [], 0.0
    for i in range(0, len(prompts), batch):
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds[i:i + batch]]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = pipe(prompts[i:i + batch], generator=gens, output_type="np", **call).frames
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t
        videos += [as_uint8_video(v) for v in out]
    return videos, seconds


def heldout(n: int = 50, seed: int = 0) -> tuple[list[str], list[int], list[data.ClipSpec]]:
    """The n held-out prompts (never-trained colour/shape/direction triples), their seeds and specs."""
    pairs = data.heldout_prompts(n, seed)
    return [p for p, _ in pairs], [seed + i for i in range(n)], [s for _, s in pairs]


class Adherence:
    """The embedded model's prompt adherence as a `videoaccel compare --prompts` scorer: the colour and direction
    a prompt of its grammar names (None where it names none) against those detected in the dense and the
    accelerated video, and the accuracy of each over the prompts that name them."""

    def row(self, prompt: str, dense: np.ndarray, accelerated: np.ndarray) -> dict:
        words = prompt.lower().split()
        colour = next((w for w in words if w in data.COLOURS), None)
        direction = next((w for w in words if w in data.DIRECTIONS), None)
        dd, df = detect(dense), detect(accelerated)
        return {"expected": [colour, direction], "dense_detected": [dd.colour, dd.direction],
                "accelerated_detected": [df.colour, df.direction]}

    def summary(self, rows: list[dict]) -> dict:
        def acc(key: str, j: int) -> float | None:
            hits = [r[key][j] == r["expected"][j] for r in rows if r["expected"][j] is not None]
            return sum(hits) / len(hits) if hits else None

        return {"colour_dense": acc("dense_detected", 0), "colour_accelerated": acc("accelerated_detected", 0),
                "direction_dense": acc("dense_detected", 1), "direction_accelerated": acc("accelerated_detected", 1)}
