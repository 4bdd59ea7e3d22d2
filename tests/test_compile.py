"""torch.compile of accelerated tiny transformers: no graph breaks inside blocks, no recompiles
across layers or steps, outputs equal to eager. Dynamo is what matters here, so the compiled
graphs run through aot_eager (AOT autograd with the op's fake implementation, no inductor codegen:
seconds on a CPU)."""
import pytest
import torch
from torch._dynamo.utils import counters

import videoaccel
from videoaccel.pipelines import router_of
from videoaccel.pipelines.compile import compile_transformer, uncompile
from videoaccel.plans import Plan, Profile
from tiny_models import TINY

RADIAL = Profile("r", default=Plan("radial", (("density", 0.3),)), block=16, order="tile")


def _steps(model, kwargs, timesteps):
    outs = []
    with torch.no_grad():
        for t in timesteps:
            outs.append(model(**dict(kwargs, timestep=torch.tensor([t, t])))[0])
    return outs


def _compiled_run(model, kwargs, timesteps, regional: bool):
    """Compile, run the first step (compiles), then the rest with recompiles turned into errors."""
    torch._dynamo.reset()
    counters.clear()
    compile_transformer(model, backend="aot_eager", regional=regional)
    try:
        first = _steps(model, kwargs, timesteps[:1])
        with torch._dynamo.config.patch(error_on_recompile=True):
            rest = _steps(model, kwargs, timesteps[1:])
    finally:
        uncompile(model)
    return first + rest, sum(counters["graph_break"].values()), counters["stats"]["unique_graphs"]


@pytest.mark.parametrize("name", ["wan", "cogvideox"])
def test_regional_compile_has_no_breaks_or_recompiles(name):
    model, kwargs = TINY[name]()
    videoaccel.accelerate(model, RADIAL)
    timesteps = [900.0, 500.0, 100.0]
    eager = _steps(model, kwargs, timesteps)
    router_of(model).reset()
    outs, breaks, graphs = _compiled_run(model, kwargs, timesteps, regional=True)
    rep = videoaccel.report(model).transformers["transformer"]
    videoaccel.restore(model)
    torch._dynamo.reset()
    assert breaks == 0, dict(counters["graph_break"])
    # one graph for every block: no recompile across layers (none across steps: error_on_recompile above). CogVideoX's
    # first block gets a strided slice of the embedded sequence (diffusers' layout, stock processors too): a second graph.
    assert graphs == (1 if name == "wan" else 2)
    assert rep.fallbacks == 0 and rep.mean_density < 1.0
    assert rep.layers[0].steps == [0, 1, 2]
    for a, b in zip(outs, eager):
        assert (a - b).abs().max().item() <= 1e-5


def test_whole_model_compile_breaks_only_at_the_step_hook():
    model, kwargs = TINY["wan"]()
    videoaccel.accelerate(model, RADIAL)
    timesteps = [900.0, 500.0]
    eager = _steps(model, kwargs, timesteps)
    router_of(model).reset()
    outs, breaks, _ = _compiled_run(model, kwargs, timesteps, regional=False)
    videoaccel.restore(model)
    torch._dynamo.reset()
    assert breaks <= 1, dict(counters["graph_break"])  # the step hook, at the transformer's entry (compiler.disable)
    for a, b in zip(outs, eager):
        assert (a - b).abs().max().item() <= 1e-5


def test_fake_implementation_matches_the_op():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.library import opcheck

    from videoaccel.routing.op import attention, route_tensor

    model, kwargs = TINY["wan"]()
    videoaccel.accelerate(model, RADIAL)
    with torch.no_grad():
        model(**kwargs)  # the step hook sets the grid
    router = router_of(model)
    q, k, v = (torch.randn(2, 320, 2, 64) for _ in range(3))
    opcheck(attention, (q, k, v, None, route_tensor(router.id, 0)), test_utils=("test_schema", "test_faketensor"))
    with FakeTensorMode():
        fq = torch.empty(2, 320, 2, 64)
        assert attention(fq, fq, fq, None, route_tensor(router.id, 0)).shape == (2, 320, 2, 64)
    videoaccel.restore(model)
