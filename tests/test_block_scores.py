import pytest
import torch

from videoaccel.kernels import block_scores, pool_blocks


@pytest.mark.parametrize("rng", [None, (13, 150)])
def test_pool_blocks_matches_mean(rng):
    x = torch.randn(2, 150, 3, 64)
    lo, hi = rng or (0, 150)
    out = pool_blocks(x.bfloat16(), 32, rng)
    xs = x.bfloat16().float()
    for b in range(out.shape[2]):
        s, e = lo + 32 * b, min(lo + 32 * (b + 1), hi)
        torch.testing.assert_close(out[:, :, b], xs[:, s:e].mean(1), rtol=1e-5, atol=1e-6)


def test_block_scores_estimate_pooled_softmax():
    q, k = torch.randn(1, 100, 2, 64), torch.randn(1, 90, 2, 64)
    p = block_scores(q, k, 32, 32)
    assert p.shape == (1, 2, 4, 3)
    torch.testing.assert_close(p.sum(-1), torch.ones(1, 2, 4))
    qp, kp = pool_blocks(q, 32), pool_blocks(k, 32)
    logits = qp @ kp.transpose(-1, -2) / 8 + torch.log(torch.tensor([32.0, 32.0, 26.0]))
    torch.testing.assert_close(p, torch.softmax(logits, -1), rtol=1e-5, atol=1e-6)


def test_block_scores_find_planted_blocks():
    """Query block i attends to key block perm[i]: the estimate must rank that block first."""
    g = torch.Generator().manual_seed(0)
    nb, bs, D = 6, 32, 64
    centers = torch.randn(nb, D, generator=g) * 2
    perm = torch.randperm(nb, generator=g)
    q = (centers.repeat_interleave(bs, 0) + 0.5 * torch.randn(nb * bs, D, generator=g))[None, :, None]
    k = (centers[perm.argsort()].repeat_interleave(bs, 0) + 0.5 * torch.randn(nb * bs, D, generator=g))[None, :, None]
    p = block_scores(q, k, bs, bs)
    assert torch.equal(p[0, 0].argmax(-1), perm)
