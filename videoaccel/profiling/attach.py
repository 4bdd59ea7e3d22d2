"""The profiler's only coupling to the routing, in one place.

Why: the router must not know the profiler. Calibration needs two things from an accelerated
pipeline: every self-attention call's q/k/v (the router's observer interface, ``observe``), and one
forward with every head dense (the probe's shadow pass, ``dense_forwards``).
"""
from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Iterator

import torch

from .. import pipelines
from ..plans import Profile

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from ..routing import Observer


def observe(pipe: DiffusionPipeline, observer: Observer) -> AbstractContextManager[Observer]:
    """Every routed self-attention call of ``pipe`` is shown to ``observer(AttentionCall)`` inside the block."""
    return pipelines.observe(pipe, observer)


def num_layers(model: torch.nn.Module) -> int:
    return pipelines.router_of(model).num_layers


@contextmanager
def dense_forwards(model: torch.nn.Module) -> Iterator[None]:
    """Inside, every head runs dense (same token order and block, so the step and order hooks agree)."""
    router = pipelines.router_of(model)
    with router.using(Profile("shadow", block=router.profile.block, order=router.profile.order)):
        yield
