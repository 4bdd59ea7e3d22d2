"""The profiling package's only coupling to the routing (and the diffusers glue around it), in one place.

Why: the router must not know the profiler. Calibration and attention statistics need these from a pipeline: its
transformers (``transformers``: Wan2.2 A14B has two, ``boundary`` says where they switch), to run it by a profile
of their own and get it back as it was (``routed``), every self-attention call's q/k/v (the router's observer
interface, ``observe``), the probe's switch to its reference plan (``switch``), and one forward with every head
dense (the probe's shadow pass, ``dense_forwards``).
"""
from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Iterator

import torch

from .. import pipelines
from ..pipelines.models import stage_boundary, transformers_of
from ..plans import Profile

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from ..routing import Observer


@contextmanager
def routed(pipe: DiffusionPipeline, profile: Profile) -> Iterator[None]:
    """Inside, ``pipe`` runs accelerated by ``profile``; on exit it is restored, whatever profile it runs by then
    (``switch``)."""
    pipelines.accelerate(pipe, profile)
    try:
        yield
    finally:
        pipelines.restore(pipe)


def observe(pipe: DiffusionPipeline, observer: Observer) -> AbstractContextManager[Observer]:
    """Every routed self-attention call of ``pipe`` is shown to ``observer(AttentionCall)`` inside the block."""
    return pipelines.observe(pipe, observer)


def switch(pipe: DiffusionPipeline, profile: Profile) -> None:
    """Run ``pipe`` by ``profile`` from now on (observers stay with the installation it had)."""
    pipelines.restore(pipe)
    pipelines.accelerate(pipe, profile)


def transformers(pipe: DiffusionPipeline) -> list[torch.nn.Module]:
    """The pipeline's transformers (Wan2.2 A14B: two, one per stage); ValueError when their architectures differ
    (one profile addresses both by layer and head)."""
    models = [m for _, m in transformers_of(pipe)]
    configs = [(type(m).__name__, {k: v for k, v in m.config.items() if not k.startswith("_")}) for m in models]
    if any(c != configs[0] for c in configs):
        raise ValueError(f"{type(pipe).__name__}'s transformers differ in class or config: one profile needs the same "
                         "architecture in both; build a pipeline holding one of them (transformer_2=None) and profile it")
    return models


def boundary(pipe: DiffusionPipeline) -> float | None:
    """The timestep where a two-transformer pipeline switches stage (profile buckets split there), or None."""
    return stage_boundary(pipe)


def num_layers(model: torch.nn.Module) -> int:
    return pipelines.router_of(model).num_layers


@contextmanager
def dense_forwards(model: torch.nn.Module) -> Iterator[None]:
    """Inside, every head runs dense (same token order and block, so the step and order hooks agree)."""
    router = pipelines.router_of(model)
    with router.using(Profile("shadow", block=router.profile.block, order=router.profile.order)):
        yield
