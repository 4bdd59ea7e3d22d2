"""Attention kernels: block-sparse (bf16/fp16/FP8, Triton), dense (cuDNN SDPA), block scores."""
from .attention import sparse_attention
from .block_scores import block_scores, pool_blocks
from .dense import dense_attention
from .fp8 import Fp8Inputs, quantize_fp8
from .layout import BlockLayout

__all__ = ["BlockLayout", "Fp8Inputs", "block_scores", "dense_attention", "pool_blocks", "quantize_fp8", "sparse_attention"]
