"""Bad kernel inputs: one shared check, errors that name the fix (issue 17)."""
import subprocess
import sys

import pytest
import torch

from videoaccel.kernels import BlockLayout, block_scores, dense_attention, sparse_attention


def _qkv(B=1, S=64, H=2, D=64, Skv=None):
    return torch.randn(B, S, H, D), torch.randn(B, Skv or S, H, D), torch.randn(B, Skv or S, H, D)


@pytest.mark.parametrize("fn", ["dense", "sparse"])
@pytest.mark.parametrize("bad, fix", [
    (lambda q, k, v: (q[0], k[0], v[0]), "add a batch axis"),
    (lambda q, k, v: (q, k, v[:, :32]), "same number of keys and values"),
    (lambda q, k, v: (q, k[..., :1, :], v[..., :1, :]), "share B, H, D"),
    (lambda q, k, v: (q[:0], k[:0], v[:0]), "skip the call"),
    (lambda q, k, v: (q[:, :0], k, v), "skip the call"),
    (lambda q, k, v: (q, k.half(), v), "cast them"),
])
def test_kernel_inputs_are_checked_in_one_place(fn, bad, fix):
    q, k, v = bad(*_qkv())
    with pytest.raises(ValueError) as e:
        if fn == "dense":
            dense_attention(q, k, v)
        else:
            sparse_attention(q, k, v, BlockLayout.dense(2, 64, 64, 32, 32))
    assert fix in str(e.value)


def test_block_scores_share_the_check():
    q, k, _ = _qkv(D=48)
    with pytest.raises(ValueError, match="route this head to dense_attention"):
        block_scores(q, k, 32, 32)


def test_block_mask_must_cover_the_keys():
    mask = torch.ones(2, 2, 1, dtype=torch.bool)  # one key block, but 64 keys need two blocks of 32
    with pytest.raises(ValueError, match=r"must be \[H, 2, 2\]"):
        BlockLayout.from_block_mask(mask, 64, 64, block_m=32, block_n=32)


def test_triton_backend_on_cpu_without_the_interpreter_names_the_fix():
    code = ("import torch; from videoaccel.kernels import BlockLayout, sparse_attention\n"
            "q = torch.randn(1, 64, 2, 64)\n"
            "try:\n    sparse_attention(q, q, q, BlockLayout.dense(2, 64, 64, 32, 32), backend='triton')\n"
            "except ValueError as e:\n    print(e)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "TRITON_INTERPRET=1" in r.stdout and "CUDA GPU" in r.stdout, r.stdout + r.stderr[-2000:]
