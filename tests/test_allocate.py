"""Joint allocation of warm-up steps and head plans under one total budget, and the cost model."""
import json

import pytest
import torch

from videoaccel.plans import Plan
from videoaccel.profiling.allocate import allocate
from videoaccel.profiling.costs import CostModel

DENS = torch.tensor([0.0, 0.05, 0.1, 0.25, 0.4, 1.0])  # skip ... dense


def _tables(seed=0, keys=6, heads=4):
    gen = torch.Generator().manual_seed(seed)
    err = (1 - DENS).sqrt()[None, None] * (0.1 + torch.rand(keys, heads, 1, generator=gen))
    return err, torch.arange(keys) % 3


STEPS = [0] * 4 + [1] * 4 + [2] * 4


@pytest.mark.parametrize("target", [0.1, 0.25, 0.44])
def test_target_is_spent_and_more_budget_means_less_error(target):
    err, kb = _tables()
    w2 = torch.ones(12)
    a = allocate(err, DENS, kb, STEPS, w2, target=target)
    assert a.cost <= target + 1e-9 and a.cost >= target - 0.05
    richer = allocate(err, DENS, kb, STEPS, w2, target=target + 0.1)
    assert richer.error <= a.error + 1e-12
    # the reported cost and error are those of the chosen plans
    n_b = torch.tensor(a.bucket_steps, dtype=torch.float64)
    per_bucket = torch.stack([DENS[a.choice[kb == b]].double().mean() for b in range(3)])
    assert abs((a.warm + float((n_b * per_bucket).sum())) / 12 - a.cost) < 1e-9
    e2 = torch.stack([(err.double()[kb == b].gather(-1, a.choice[kb == b][..., None]) ** 2).mean() for b in range(3)])
    w_b = torch.tensor([float(w2[[s for s in range(a.warm, 12) if STEPS[s] == b]].sum()) for b in range(3)], dtype=torch.float64)
    assert abs(float((w_b * e2).sum()) ** 0.5 - a.error) < 1e-9


def test_sensitive_early_steps_become_dense_warm_up():
    err, kb = _tables()
    flat = allocate(err, DENS, kb, STEPS, torch.ones(12), target=0.3)
    early = allocate(err, DENS, kb, STEPS, torch.tensor([100.0, 50.0] + [0.1] * 10), target=0.3)
    assert flat.warm == 0 and early.warm == 2
    assert early.bucket_steps == [2, 4, 4]
    # the warm-up is paid for: the sparse steps get less
    assert early.cost <= 0.3 + 1e-9


def test_error_budget_gives_the_cheapest_profile_that_meets_it():
    err, kb = _tables()
    w2 = torch.ones(12) / 12
    loose = allocate(err, DENS, kb, STEPS, w2, error_budget=0.2)
    tight = allocate(err, DENS, kb, STEPS, w2, error_budget=0.05)
    assert loose.error <= 0.2 and tight.error <= 0.05
    assert 0 < loose.cost < tight.cost < 1.0  # usable: not all dense
    with pytest.raises(ValueError, match="exactly one"):
        allocate(err, DENS, kb, STEPS, w2)


def test_measured_cost_table_replaces_the_analytic_model(tmp_path):
    rows = [{"impl": "cost", "pattern": "radial", "precision": p, "head_dim": 128, "block": 128, "density": d,
             "ms": ms, "dense_ms": 10.0} for p, d, ms in (("bf16", 0.1, 1.5), ("bf16", 0.5, 5.5), ("fp8", 0.1, 2.0), ("fp8", 0.5, 4.0))]
    path = tmp_path / "cost.json"
    path.write_text(json.dumps({"device": "NVIDIA H100", "results": rows}))
    measured = CostModel.load(path)
    radial = Plan("radial", (("density", 0.3),))
    assert measured.cost(radial, 128, 128) == pytest.approx(0.35)
    assert measured.cost(Plan("radial", (("density", 0.3),), "fp8"), 64, 64) == pytest.approx(0.3)  # nearest head dim and block
    assert measured.cost(Plan("diagonal", (("density", 0.05),)), 128, 128) == pytest.approx(0.075)  # other pattern, below range
    assert measured.cost(Plan(), 128, 128) == 1.0 and measured.cost(Plan("skip"), 128, 128) == 0.0
    assert measured.to_json()["device"] == "NVIDIA H100"
    analytic = CostModel()
    assert analytic.cost(radial, 128, 128) == pytest.approx(0.3)
    assert analytic.cost(Plan("radial", (("density", 0.3),), compensate=True), 128, 64) == pytest.approx(0.3 + 1 / 64)
    assert analytic.to_json()["source"] == "analytic"
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a cost table"):
        CostModel.load(tmp_path / "bad.json")


def test_cost_table_needs_a_gpu_and_says_so():
    if torch.cuda.is_available():
        pytest.skip("on a GPU the table is measured (videoaccel bench cost-table)")
    from videoaccel.benchmarks.cost_table import measure

    with pytest.raises(ValueError, match="CUDA GPU.*analytic"):
        measure()


def test_a_bucket_never_observed_counts_as_dense():
    """Its plans run dense (choose.per_layer), so its steps cost 1.0 in the total, as warm-up steps do."""
    err = torch.tensor([[[0.5, 0.0]]])  # one key (bucket 0), one head: a cheap candidate and dense
    a = allocate(err, torch.tensor([0.1, 1.0]), torch.tensor([0]), [0, 0, 1, 1], torch.ones(4), target=0.6, warm_up=False)
    assert a.cost == pytest.approx((2 * 0.1 + 2 * 1.0) / 4) and a.choice.tolist() == [[0]]
