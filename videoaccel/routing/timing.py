"""Attention time per call for report() when timing is on (``set_timing``): CUDA events on the GPU (synchronising:
timing is a measuring mode, off by default), wall time on the CPU."""
from __future__ import annotations

import time

import torch


def tick(q: torch.Tensor, on: bool):
    """A start mark for this call (None when timing is off)."""
    if not on:
        return None
    if q.is_cuda:
        e = torch.cuda.Event(enable_timing=True)
        e.record()
        return e
    return time.perf_counter()


def tock(q: torch.Tensor, t0) -> float:
    """Milliseconds since ``tick``'s mark (0 when timing was off)."""
    if t0 is None:
        return 0.0
    if q.is_cuda:
        e = torch.cuda.Event(enable_timing=True)
        e.record()
        e.synchronize()
        return t0.elapsed_time(e)
    return 1e3 * (time.perf_counter() - t0)
