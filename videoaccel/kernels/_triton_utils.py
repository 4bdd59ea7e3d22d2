"""Triton helpers shared by the kernels: interpreter detection, the e4m3 range and cast."""
import math
import os

import triton
import triton.language as tl

# Read once, before any kernel is decorated: tests set it in conftest.py when there is no GPU.
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

E4M3_MAX = 448.0  # largest finite float8_e4m3fn: FP8 scales map a row's or channel's maximum onto it
E4M3_MAX_C = tl.constexpr(E4M3_MAX)  # the same inside kernels (a kernel reads globals only as constexpr)
LOG2_E4M3_MAX = tl.constexpr(math.log2(E4M3_MAX))  # the attention kernel folds P's factor 448 into the running max


@triton.jit
def _round_e4m3(x):
    """Round fp32 to the nearest e4m3 value (ties to even), kept in fp32.

    The interpreter's own fp32->fp8 cast is wrong (carries into the exponent halved, subnormals wrong, no
    saturation at 448), so under the interpreter the kernels round with this and feed fp32 values that are
    exactly representable in e4m3.
    """
    a = tl.minimum(tl.abs(x), E4M3_MAX_C)
    bits = a.to(tl.int32, bitcast=True)
    e = ((bits >> 23) & 0xFF) - 127
    e = tl.maximum(e, -6)  # subnormals share the exponent of the smallest normal
    quantum = tl.exp2((e - 3).to(tl.float32))
    magic = 12582912.0  # 1.5 * 2**23: (y + magic) - magic rounds y to an integer, ties to even
    r = ((a / quantum + magic) - magic) * quantum
    return tl.where(x < 0, -r, r)  # keeps the sign of values that round to zero


@triton.jit
def to_fp8(x, EMULATE: tl.constexpr):
    if EMULATE:
        return _round_e4m3(x)
    else:
        return x.to(tl.float8e4nv)
