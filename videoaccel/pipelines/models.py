"""Which transformers videoaccel routes: the spec of a model (``families/``), a pipeline's transformers,
and the latent grid of the embedded Wan model's call sizes."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .families import PIPELINES, REFUSED, REFUSED_PIPELINES, SPECS
from .spec import ModelSpec

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

__all__ = ["PIPELINES", "SPECS", "check_pipeline", "spec_for", "transformers_of", "wan_latent_grid"]


def spec_for(model: torch.nn.Module) -> ModelSpec:
    """The model's spec; ValueError saying why for a family or configuration videoaccel cannot route."""
    name = type(model).__name__
    if name in REFUSED:
        raise ValueError(f"{name} cannot be accelerated: {REFUSED[name]}")
    if name not in SPECS:
        raise ValueError(f"{name} is not supported; videoaccel supports {', '.join(SPECS)} "
                         f"(pipelines: {', '.join(PIPELINES)})")
    spec = SPECS[name]
    if why := spec.refuse(model):
        raise ValueError(f"{name} cannot be accelerated with this config: {why}")
    return spec


def check_pipeline(pipe: DiffusionPipeline | torch.nn.Module) -> None:
    """ValueError saying why for a pipeline whose transformer videoaccel routes but whose loop it cannot follow."""
    name = type(pipe).__name__
    if name in REFUSED_PIPELINES:
        raise ValueError(f"{name} cannot be accelerated: {REFUSED_PIPELINES[name]}")


def transformers_of(pipe: DiffusionPipeline | torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The pipeline's transformers (Wan2.2 A14B has two: transformer and transformer_2)."""
    if isinstance(pipe, torch.nn.Module):
        return [("transformer", pipe)]
    found = [(n, getattr(pipe, n)) for n in ("transformer", "transformer_2") if getattr(pipe, n, None) is not None]
    if not found:
        raise ValueError(f"{type(pipe).__name__} has no transformer; videoaccel supports pipelines {', '.join(PIPELINES)}")
    return found


def stage_boundary(pipe: DiffusionPipeline | torch.nn.Module) -> float | None:
    """The timestep at which a two-transformer pipeline (Wan2.2 A14B) hands over from ``transformer`` (timesteps at
    or above it) to ``transformer_2``; None for a pipeline with one."""
    ratio = getattr(getattr(pipe, "config", None), "boundary_ratio", None)
    if ratio is None or len(transformers_of(pipe)) < 2:
        return None
    return float(ratio) * pipe.scheduler.config.num_train_timesteps


def wan_latent_grid(frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Video tokens Wan's transformer sees: (frames - 1) / 4 + 1 latent frames, / 8 VAE, / 2 patch; ValueError
    naming the fix for a size its VAE cannot take."""
    if (frames - 1) % 4 or height % 16 or width % 16:
        raise ValueError(f"{frames} frames at {height}x{width}: use frames = 4k + 1 and sizes divisible by 16 "
                         f"(default 25 frames at 192x320)")
    return (frames - 1) // 4 + 1, height // 16, width // 16
