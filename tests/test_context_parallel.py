"""Ulysses context parallelism (diffusers' engine) with videoaccel plans: two CPU processes (gloo)
on a tiny Wan model must match one process for dense, static sparse, draft-guided, pyramid and
compensated plans (FP8 needs a GPU: covered by python -m videoaccel.benchmarks.multigpu)."""
import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

HERE = os.path.dirname(__file__)


def _worker(rank: int, world: int, init: str, results):
    sys.path.insert(0, HERE)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    # diffusers sizes the device mesh from the accelerator count, 0 on a CPU-only machine: one "device" per rank
    torch.accelerator.device_count = lambda: 1
    try:
        import videoaccel
        from diffusers import ContextParallelConfig
        from tiny_models import TINY
        from videoaccel.plans import Plan, Profile

        model, kw = TINY["wan"]()
        plans = {"radial": Plan("radial", (("density", 0.3),)), "draft": Plan("draft", (("top_p", 0.8),)),
                 "pyramid": Plan("pyramid", (("thresholds", (0.5, 0.8)),)),
                 "compensated": Plan("diagonal", (("density", 0.3),), compensate=True)}
        profiles = {"dense": Profile("d", block=16)}
        profiles.update({k: Profile(k, default=p, block=32 if k == "pyramid" else 16, order="frame") for k, p in plans.items()})
        with torch.no_grad():
            single = {}
            for name, prof in profiles.items():
                videoaccel.accelerate(model, prof)
                single[name] = model(**kw)[0]
                videoaccel.restore(model)
            model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=world))
            errs = {}
            for name, prof in profiles.items():
                videoaccel.accelerate(model, prof)
                out = model(**kw)[0]
                rep = videoaccel.report(model).transformers["transformer"]
                videoaccel.restore(model)
                assert rep.fallbacks == 0, rep
                assert all(len(v.plans) == 2 // world for v in rep.layers.values())  # this rank's heads
                errs[name] = float((out - single[name]).abs().max())
        results.put((rank, errs, {k: float((v - single["dense"]).abs().max()) for k, v in single.items()}))
    except Exception as e:  # report, do not hang the other rank
        results.put((rank, repr(e)))
        raise
    finally:
        dist.destroy_process_group()


def test_ulysses_two_processes_match_one(tmp_path):
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    init = f"file://{tmp_path}/rendezvous"
    procs = [ctx.Process(target=_worker, args=(r, 2, init, results)) for r in range(2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    for r in got:
        assert len(r) == 3, f"rank {r[0]} failed: {r[1]}"
        _, errs, vs_dense = r
        assert all(e <= 1e-5 for e in errs.values()), errs  # 2 processes == 1 process, every plan kind
        assert all(vs_dense[k] > 1e-3 for k in vs_dense if k != "dense"), vs_dense  # the sparse plans really ran


@pytest.mark.parametrize("heads, degree", [(3, 2)])
def test_heads_must_split_over_the_degree(heads, degree):
    from videoaccel.pipelines.dispatch import _ulysses

    class Mesh:
        def get_local_rank(self):
            return 0

    class CP:
        ulysses_degree, ring_degree, _ulysses_mesh = degree, 1, Mesh()

    class PC:
        context_parallel_config = CP()

    q = torch.zeros(1, 8, heads, 64)
    with pytest.raises(ValueError, match="do not split over ulysses_degree=2"):
        _ulysses(None, q, q, q, None, None, PC())
