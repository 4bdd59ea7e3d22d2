"""The profiling package's only coupling to the routing (and the diffusers glue around it), in one place.

Why: the router must not know the profiler. Calibration and attention statistics need these from a pipeline: its
one transformer (``transformer``), to run it by a profile of their own and get it back as it was (``routed``), every
self-attention call's q/k/v (the router's observer interface, ``observe``), the probe's switch to its reference
plan (``switch``), and one forward with every head dense (the probe's shadow pass, ``dense_forwards``).
"""
from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Iterator

import torch

from .. import pipelines
from ..pipelines.models import transformers_of
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


def transformer(pipe: DiffusionPipeline) -> torch.nn.Module:
    """The pipeline's one transformer; ValueError for pipelines with two (profile each stage)."""
    models = transformers_of(pipe)
    if len(models) != 1:
        raise ValueError("profiling pipelines with two transformers (Wan2.2 A14B) is not supported yet: profile each stage")
    return models[0][1]


def num_layers(model: torch.nn.Module) -> int:
    return pipelines.router_of(model).num_layers


@contextmanager
def dense_forwards(model: torch.nn.Module) -> Iterator[None]:
    """Inside, every head runs dense (same token order and block, so the step and order hooks agree)."""
    router = pipelines.router_of(model)
    with router.using(Profile("shadow", block=router.profile.block, order=router.profile.order)):
        yield
