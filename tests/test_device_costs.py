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
