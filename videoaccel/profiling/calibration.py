"""Calibration state: what the profiler has measured so far, and only that.

Running sums of every candidate's error per (layer, timestep bucket), per step the errors of each call (the probe
weighs steps with them), the generator the sampled rows are drawn from (a resumed run continues its sequence),
and what the observed calls were (geometry, heads, head dim, device). The timestep buckets are fixed when the
calibration starts. Choosing reads it through ``mean_errors`` and ``step_calls`` (choose.py); a checkpoint saves
and restores it through ``state`` and ``load_state`` (checkpoint.py).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import torch

from ..patterns import VideoGeometry
from ..plans import bucket_of


def bucket_edges(timesteps: list[float], buckets: int, boundary: float | None = None) -> list[float]:
    """Timesteps (descending, as schedulers run) splitting the steps into ``buckets`` equal groups; with a stage
    ``boundary`` (two transformers) one edge lies on it and each stage gets its share of the buckets, so no bucket,
    and no plan, mixes the two transformers' attention."""
    ts = sorted(timesteps, reverse=True)
    high = [t for t in ts if boundary is not None and t >= boundary]
    if high and len(high) < len(ts):
        n_high = min(max(1, round(buckets * len(high) / len(ts))), buckets - 1) if buckets > 1 else 1
        low = [t for t in ts if t < boundary]
        return bucket_edges(high, n_high) + [boundary] + bucket_edges(low, max(1, buckets - n_high))
    if buckets <= 1 or len(ts) < buckets:
        return []
    return [ts[len(ts) * i // buckets] + 1e-3 for i in range(1, buckets)]


@dataclass
class Calibration:
    edges: list[float]  # timestep bucket edges (plans.bucket_of)
    step_bucket: list[int]  # the bucket of each denoising step
    generator: torch.Generator  # the sampled rows' generator
    err: dict = field(default_factory=lambda: defaultdict(lambda: 0.0))  # (layer, bucket) -> summed errors [H, C']
    count: dict = field(default_factory=lambda: defaultdict(int))  # (layer, bucket) -> calls summed
    step_err: dict = field(default_factory=lambda: defaultdict(list))  # step -> [(layer, errors [H, C'])] per call
    geometry: VideoGeometry | None = None  # of the last observed call
    heads: int = 0
    batch: int = 1  # of the observed calls (CFG's two passes batched: 2)
    head_dim: int = 128
    device: torch.device | None = None  # of the observed calls: whose costs the allocation reads

    @classmethod
    def start(cls, timesteps: list[float], buckets: int, seed: int, boundary: float | None = None) -> Calibration:
        edges = bucket_edges(timesteps, buckets, boundary)
        return cls(edges, [bucket_of(t, edges) for t in timesteps], torch.Generator().manual_seed(seed))

    @property
    def buckets(self) -> int:
        """Timestep buckets the edges make (a stage boundary may add one to the config's count)."""
        return len(self.edges) + 1

    def bucket(self, timestep: float | None) -> int:
        return bucket_of(timestep, self.edges)

    def add(self, layer: int, step: int, timestep: float | None, errs: torch.Tensor) -> None:
        """One call's errors [H, C'] (scoring.Scorer.score)."""
        b = self.bucket(timestep)
        self.err[(layer, b)] = self.err[(layer, b)] + errs
        self.count[(layer, b)] += 1
        self.step_err[step].append((layer, errs))

    def mean_errors(self) -> tuple[list[tuple[int, int]], list[torch.Tensor]]:
        """The observed (layer, bucket) keys, sorted, and each one's mean errors [H, C']."""
        keys = sorted(self.err)
        return keys, [self.err[k] / self.count[k] for k in keys]

    def step_calls(self, step: int) -> list[tuple[int, torch.Tensor]]:
        """(layer, errors [H, C']) of every call at ``step``."""
        return self.step_err.get(step, [])

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Tensors (sums, per-step errors, the generator's state) and JSON-ready fields that restore this state."""
        tensors = {f"err.{layer}.{b}": t for (layer, b), t in self.err.items()}
        tensors.update({f"step_err.{s}.{i}": t for s, ts in self.step_err.items() for i, (_, t) in enumerate(ts)})
        tensors["rng"] = self.generator.get_state()
        g = self.geometry
        meta = {"count": [[layer, b, n] for (layer, b), n in self.count.items()],
                "steps": {str(s): [layer for layer, _ in ts] for s, ts in self.step_err.items()}, "heads": self.heads,
                "batch": self.batch, "geometry": None if g is None else asdict(g)}
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """What ``state`` gave (the head dim and device come with the next observed call)."""
        for layer, b, n in meta["count"]:
            self.err[(layer, b)] = tensors[f"err.{layer}.{b}"]
            self.count[(layer, b)] = n
        for s, layers in meta["steps"].items():  # per step: (layer, errors) of every call
            self.step_err[int(s)] = [(layer, tensors[f"step_err.{s}.{i}"]) for i, layer in enumerate(layers)]
        self.generator.set_state(tensors["rng"])
        self.geometry = None if meta["geometry"] is None else VideoGeometry(**meta["geometry"])
        self.heads, self.batch = meta["heads"], meta.get("batch", 1)
