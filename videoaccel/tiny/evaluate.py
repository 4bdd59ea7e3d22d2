"""Prompt adherence of a text-to-video pipeline on the embedded model's held-out prompts.

Why batched with one generator per prompt: the held-out set is generated many times (dense, then once per
profile in the fidelity sweep); a generator per prompt makes each video depend on its prompt and seed only, not on
the batch it ran in, so dense and accelerated videos of the same prompt start from the same noise.
"""
from __future__ import annotations

import time

import numpy as np

from ..video import as_uint8_video
from . import data


def generate(pipe, prompts: list[str], seeds: list[int], batch: int = 10, **call) -> tuple[list[np.ndarray], float]:
    """uint8 [F, H, W, 3] videos for ``prompts`` (seed i for prompt i) and the seconds spent in the pipeline."""
    import torch

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
