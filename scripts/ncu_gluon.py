"""Thin launcher for Nsight Compute: two calls of the Gluon v3 kernel on one benchmark case (random 128-blocks), so
`ncu -k regex:_fwd_v3 --launch-skip 1 -c 1` profiles a warm launch.

    ncu --clock-control none --section ComputeWorkloadAnalysis -k regex:_fwd_v3 --launch-skip 1 -c 1 \\
        python scripts/ncu_gluon.py cogvideox5b-480p49f fp8 1.0
"""
from __future__ import annotations

import sys

import torch

from videoaccel.benchmarks.cases import CASES
from videoaccel.benchmarks.kernel_checks import make_mask
from videoaccel.kernels import BlockLayout, quantize_fp8
from videoaccel.kernels.gluon_attention import gluon_block_sparse_attention
from videoaccel.kernels.layout import num_blocks

case, dtype, density = sys.argv[1], sys.argv[2], float(sys.argv[3])
S, H, D = CASES[case].seq_len, CASES[case].heads, CASES[case].head_dim
q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
mask = make_mask("random", H, num_blocks(0, S, 128), density, torch.Generator().manual_seed(0))
lay = BlockLayout.from_block_mask(mask.cuda(), S, S)
f8 = quantize_fp8(q, k, v) if dtype == "fp8" else None
for _ in range(2):
    gluon_block_sparse_attention(q, k, v, lay, D ** -0.5, fp8=f8)
torch.cuda.synchronize()
