"""Per-call CUDA graphs (routing/call_graphs.py) without a GPU: which calls run, are captured or replayed, and a
replay's bookkeeping (estimates marked done, fallbacks, outputs cloned). A fake graph replays by running the call
again on the static inputs, so outputs are checked against a plain run. Capture itself runs on the GPU
(videoaccel/benchmarks/routing.py)."""
from dataclasses import dataclass

import torch

from videoaccel.plans import Plan, Profile
from videoaccel.routing import AttentionRouter
from videoaccel.routing.call_graphs import CallGraphs, _CallGraph


@dataclass
class FakeGraph:
    replay_fn: object = None
    replays: int = 0

    def replay(self):
        self.replays += 1
        self.replay_fn()


def _fake_capture(self, runner, table, static, call):
    out, density = runner.execute(table, *static, call)
    g = FakeGraph()

    def replay():
        o, d = runner.execute(table, *static, call)
        out.copy_(o)
    g.replay_fn = replay
    return _CallGraph(g, out, density, list(runner.fallbacks))


def test_first_call_runs_second_captures_later_replay_with_estimates_marked(monkeypatch):
    monkeypatch.setattr(CallGraphs, "eligible", lambda self, q, mask: True)
    monkeypatch.setattr(CallGraphs, "_capture", _fake_capture)
    plans = [Plan("sampled", (("density", 0.3), ("every", 2))), Plan("radial", (("density", 0.4),))]
    r = AttentionRouter(Profile("p", layers={0: [plans]}, block=16), 1, 2, "none")
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 5 * 8 * 8, 2, 64, generator=gen) for _ in range(3))
    outs = []
    for step in range(5):
        r.begin_forward(step, 900.0 - step, (5, 8, 8), 0, torch.device("cpu"))
        outs.append(r.attend(0, q, k, v))
    graphs = r.runner.graphs
    assert len(graphs.graphs) == 2  # estimate due (steps 0, 2, 4) and not (1, 3): one graph each
    assert sum(g.graph.replays for g in graphs.graphs.values()) == 3  # captured at steps 2, 3 (and replayed), replayed at 4
    (table,) = [t for t in r.compiler._tables.values() if t.selections]
    assert table.selections[0].last == 4  # the replay of step 4 marked its estimate done
    for o in outs[1:]:
        assert torch.equal(o, outs[0])  # same inputs, same masks: the same output, cloned each time
    assert outs[3].data_ptr() != outs[4].data_ptr()
