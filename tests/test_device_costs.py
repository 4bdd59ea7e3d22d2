"""The profiler's per-device cost table: analytic on a CPU, measured once per device and versions on a GPU and read
from the cache after (measurement faked here: the real one runs the kernels, on the GPU)."""
import pytest
import torch

from videoaccel.plans import Plan
from videoaccel.profiling import device_costs as dc


def _rows(calls):
    def measure(progress):
        calls.append(progress)
        return [{"case": "x", "impl": "cost", "pattern": "radial", "precision": p, "head_dim": 64, "block": 64,
                 "target_density": d, "density": d, "ms": d * (1.6 if p == "fp8" else 1.0), "dense_ms": 1.0}
                for p in ("bf16", "fp8") for d in (0.1, 0.5, 1.0)]
    return measure


def test_cpu_uses_the_analytic_model_and_fp8_is_never_cheaper():
    costs = dc.device_costs(torch.device("cpu"))
    assert costs.source == "analytic"
    bf16, fp8 = Plan("radial", (("density", 0.25),)), Plan("radial", (("density", 0.25),), "fp8")
    assert costs.cost(fp8, 64, 64) >= costs.cost(bf16, 64, 64)


def test_a_gpu_measures_once_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOACCEL_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU 80GB")
    calls = []
    first = dc.device_costs(torch.device("cuda"), progress=False, measure=_rows(calls))
    again = dc.device_costs(torch.device("cuda"), progress=False, measure=_rows(calls))
    assert calls == [False] and first.source == again.source == "measured" and again.device == "Fake GPU 80GB"
    path = dc.cache_path("Fake GPU 80GB")
    assert path.is_file() and "Fake-GPU-80GB" in path.name and torch.__version__.split("+")[0] in path.name
    fp8 = again.cost(Plan("radial", (("density", 0.5),), "fp8"), 64, 64)
    assert fp8 == pytest.approx(0.8) and fp8 > again.cost(Plan("radial", (("density", 0.5),)), 64, 64)


def test_fp8_candidates_only_where_fp8_measured_faster():
    from videoaccel.profiling.costs import CostModel

    row = lambda p, ms: {"pattern": "radial", "precision": p, "head_dim": 128, "block": 128, "density": 0.25, "ms": ms,  # noqa: E731
                         "dense_ms": 1.0}
    assert not CostModel("measured", "x", [row("bf16", 0.3), row("fp8", 0.4)]).fp8_pays()
    assert CostModel("measured", "x", [row("bf16", 0.3), row("fp8", 0.2)]).fp8_pays()
    assert not CostModel().fp8_pays()


def test_measured_estimate_and_compensation_are_priced_from_their_rows():
    """A sampled plan pays its estimate at the measured per-call price scaled by its rows and period, a compensated
    plan the measured epilogue; the kernel's interpolation never reads those rows."""
    from videoaccel.patterns.registry import estimate_share
    from videoaccel.profiling.costs import CostModel

    row = lambda pattern, d, ms: {"pattern": pattern, "precision": "bf16", "head_dim": 64, "block": 64,  # noqa: E731
                                  "density": d, "ms": ms, "dense_ms": 2.0}
    table = [row("radial", 0.1, 0.2), row("radial", 1.0, 2.0), row("estimate", 0.25, 0.2), row("compensate", 0.25, 0.08)]
    costs = CostModel("measured", "x", table)
    sampled = Plan("sampled", (("density", 0.1), ("every", 2)))
    ref = estimate_share("sampled", {"every": 1}, 64)
    assert costs.cost(sampled, 64, 64) == pytest.approx(0.1 + 0.1 * estimate_share("sampled", {"every": 2}, 64) / ref)
    assert costs.cost(sampled, 64, 64) == pytest.approx(0.15)  # every 2: half the measured per-call 0.1
    comp = Plan("radial", (("density", 0.1),), compensate=True)
    assert costs.cost(comp, 64, 64) == pytest.approx(0.1 + 0.04)
    analytic = CostModel("measured", "x", table[:2]).cost(comp, 64, 64)  # no extra rows: the score-matrix share
    assert analytic == pytest.approx(0.1 + 1 / 64)


def test_a_graphed_call_pays_its_copies_as_a_share_that_falls_with_length():
    from videoaccel.profiling.costs import CostModel

    row = lambda pattern, d, ms, **kw: {"pattern": pattern, "precision": "bf16", "head_dim": 64, "block": 64,  # noqa: E731
                                        "density": d, "ms": ms, "dense_ms": 1.0, **kw}
    costs = CostModel("measured", "x", [row("radial", 0.1, 0.1), row("radial", 1.0, 1.0), row("graph", 0.25, 0.04, tokens=1000)])
    plan = Plan("radial", (("density", 0.1),))
    assert costs.cost(plan, 64, 64) == pytest.approx(0.1)  # not replayed as a graph: no copies
    assert costs.cost(plan, 64, 64, graph_tokens=1000) == pytest.approx(0.14)
    assert costs.cost(plan, 64, 64, graph_tokens=2000) == pytest.approx(0.12)
    assert costs.cost(Plan(), 64, 64, graph_tokens=1000) == 1.0  # an all-dense call runs cuDNN, never a graph
