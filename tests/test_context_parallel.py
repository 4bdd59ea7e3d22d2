"""Ulysses context parallelism (diffusers' engine) with videoaccel plans: two CPU processes (gloo)
on a tiny Wan model must match one process, dense and sparse."""
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
        sparse = Profile("r", default=Plan("radial", (("density", 0.3),)), block=16, order="frame")
        with torch.no_grad():
            ref = model(**kw)[0]
            videoaccel.accelerate(model, sparse)
            ref_sparse = model(**kw)[0]
            videoaccel.restore(model)
            model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=world))
            out = {}
            for name, prof in (("dense", Profile("d", block=16)), ("sparse", sparse)):
                videoaccel.accelerate(model, prof)
                out[name] = model(**kw)[0]
                rep = videoaccel.report(model)["transformer"]
                videoaccel.restore(model)
                assert rep["fallbacks"] == 0, rep
                assert all(len(v["plans"]) == 2 // world for v in rep["layers"].values())  # this rank's heads
        results.put((rank, float((out["dense"] - ref).abs().max()), float((out["sparse"] - ref_sparse).abs().max()),
                     float((ref_sparse - ref).abs().max())))
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
        assert len(r) == 4, f"rank {r[0]} failed: {r[1]}"
        _, dense_err, sparse_err, sparse_vs_dense = r
        assert dense_err <= 1e-5 and sparse_err <= 1e-5
        assert sparse_vs_dense > 1e-3  # the sparse plan really ran


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
        _ulysses(None, 0, q, q, q, None, None, PC())
