"""How every benchmark times a GPU function, and its FlexAttention baseline on the same block layout."""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch.nn.attention.flex_attention import BlockMask, flex_attention
from triton.testing import do_bench


def median_ms(fn: Callable[[], object], repeats: int = 20, warmup: bool = True,
              before: Callable[[], object] | None = None) -> float:
    """Median of ``repeats`` CUDA-event timings (after one warm-up call unless the caller made it); ``before``
    runs untimed ahead of each call (e.g. a barrier between GPUs)."""
    if warmup:
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def bench_ms(fn: Callable[[], object], rep: int = 200) -> float:
    """triton.testing.do_bench's median (warm-up 25 ms, ``rep`` ms of runs) after one call."""
    fn()
    torch.cuda.synchronize()
    return do_bench(fn, warmup=25, rep=rep, return_mode="median")


def wall_ms(fn: Callable[[], object]) -> float:
    """One call's wall time, synchronised on both sides (host work such as layout building counts)."""
    torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return 1e3 * (time.perf_counter() - t)


def flex_block_mask(mask: torch.Tensor, seq_len: int, block: int) -> BlockMask:
    """FlexAttention's BlockMask of per-head block masks bool [H, NB, NB] (every kept block full)."""
    num = mask.sum(-1).to(torch.int32)[None].cuda()
    ind = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True).to(torch.int32)[None].cuda()
    return BlockMask.from_kv_blocks(torch.zeros_like(num), ind, full_kv_num_blocks=num, full_kv_indices=ind,
                                    BLOCK_SIZE=block, seq_lengths=(seq_len, seq_len))


def compiled_flex() -> Callable[..., torch.Tensor]:
    """flex_attention compiled once for fixed shapes (the baseline the kernel benchmarks compare with)."""
    return torch.compile(flex_attention, dynamic=False)
