import pytest
import torch

from videoaccel.kernels import BlockLayout
from helpers import random_layout


def test_from_block_mask_round_trip_and_key_mask():
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(3, 4, 5, generator=g) < 0.5
    lay = BlockLayout.from_block_mask(mask, 100, 150, block_m=32, block_n=32)
    assert lay.counts.tolist() == mask.sum(-1).tolist()
    km = lay.key_mask(1)[0]
    for h in range(3):
        for i in range(100):
            for j in range(150):
                assert km[h, i, j] == mask[h, i // 32, j // 32]


def test_lut_sorted_and_schedule_head_major_heaviest_first():
    lay = random_layout(4, 200, 200, gen=torch.Generator().manual_seed(2))
    c = lay.counts
    for h in range(4):
        for qb in range(c.shape[1]):
            row = lay.lut[h, qb, : c[h, qb]]
            assert torch.all(row[1:] > row[:-1])
    sched = lay.schedule.long()
    assert sorted(sched.tolist()) == list(range(c.numel()))  # every work item once
    heads = sched // c.shape[1]
    assert torch.all(heads[1:] >= heads[:-1])  # head-major: one head's K/V in flight (L2)
    for h in range(4):
        work = c.flatten()[sched[heads == h]]
        assert torch.all(work[1:] <= work[:-1])  # heaviest first inside a head


def test_density_counts_tails_text_and_dense_rows():
    # 2 query blocks of 32 rows (the second has 8), kv 50 tokens (blocks of 32 and 18) + 10 text keys
    mask = torch.tensor([[[True, False], [False, True]]])
    lay = BlockLayout.from_block_mask(mask, 45, 60, block_m=32, block_n=32, q_range=(5, 45), kv_range=(0, 50),
                                      kv_always=torch.tensor([[[50, 60]]], dtype=torch.int32))
    pairs = 32 * 32 + 8 * 18 + 40 * 10 + 5 * 60  # blocks, text columns, 5 dense rows
    assert lay.density == pytest.approx(pairs / (45 * 60))
    assert lay.key_mask(1).sum().item() == pairs


def _lay(**kw):
    base = dict(lut=torch.zeros(1, 2, 2, dtype=torch.int32), counts=torch.ones(1, 2, dtype=torch.int32), seq_q=64, seq_kv=64,
                block_m=32, block_n=32)
    base.update(kw)
    return BlockLayout(**base)


@pytest.mark.parametrize("kw, msg", [
    (dict(lut=torch.zeros(1, 2, 2, dtype=torch.int64)), "int32"),
    (dict(counts=torch.full((1, 2), 3, dtype=torch.int32)), "counts must lie"),
    (dict(lut=torch.tensor([[[2, 0], [0, 0]]], dtype=torch.int32)), "outside"),
    (dict(lut=torch.tensor([[[1, 0], [0, 0]]], dtype=torch.int32), counts=torch.tensor([[2, 1]], dtype=torch.int32)), "ascending"),
    (dict(lut=torch.tensor([[[1, 1], [0, 0]]], dtype=torch.int32), counts=torch.tensor([[2, 1]], dtype=torch.int32)), "ascending"),
    (dict(block_m=48), "block_m=48"),
    (dict(seq_q=100), "query blocks"),
    (dict(kv_range=(0, 80)), "kv_range"),
    (dict(kv_range=(0, 48), kv_always=torch.tensor([[[40, 64]]], dtype=torch.int32)), "overlap"),
    (dict(kv_range=(0, 48), kv_always=torch.tensor([[[50, 70]]], dtype=torch.int32)), "seq_kv"),
])
def test_bad_layouts_name_the_fix(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _lay(**kw)


def test_check_inputs_errors():
    lay = _lay()
    with pytest.raises(ValueError, match="build the layout for this geometry"):
        lay.check_inputs(torch.zeros(1, 60, 1, 64), torch.zeros(1, 64, 1, 64))
    with pytest.raises(ValueError, match="heads"):
        lay.check_inputs(torch.zeros(1, 64, 2, 64), torch.zeros(1, 64, 2, 64))
