"""How sparse is a model's self-attention? Oracle recall measured during a real generation.

Why: every sparse plan keeps a subset of keys; the best any plan can do at a density is the exact top-k (the
oracle). The attention mass that oracle keeps, per layer and head, on sampled query blocks of every self-attention
call at a few denoising steps, tells before any profiling how much a model can be sparsified and which token order
(frame-major as the model produces it, or tile-major cubes) suits block masks. Rows: per-token top-k, and block
masks of 128 and 64 tokens in frame and tile order, at densities 0.05 / 0.1 / 0.15 / 0.25.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from ..patterns.geometry import VideoGeometry
from ..patterns.token_order import tile_major_permutation
from ..plans import Profile
from . import attach

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from ..routing import AttentionCall

DENSITIES = (0.05, 0.1, 0.15, 0.25)
BLOCKS = (128, 64)
ORDERS = ("frame", "tile")
STEP_FRACTIONS = (0.1, 0.5, 0.85)


def sample_steps(num_steps: int, fractions: tuple[float, ...] = STEP_FRACTIONS) -> set[int]:
    """Steps (0-based) at which calls are measured: early, middle, late."""
    return {min(num_steps - 1, int(f * num_steps)) for f in fractions}


def _kept(sorted_cum: torch.Tensor, n: int, density: float) -> torch.Tensor:
    """Mass kept by the top round(density * n) entries; sorted_cum [..., n] is a descending cumulative sum."""
    return sorted_cum[..., max(1, round(density * n)) - 1]


def recall(q: torch.Tensor, k: torch.Tensor, rows: torch.Tensor, scale: float, blocks: tuple[int, ...] = BLOCKS, tokens: bool = True) -> dict:
    """Oracle recall per head for query ``rows`` (whole blocks of q of the largest block size) against all keys.

    q, k [S, H, D] in one token order. Returns {("token", 0) (when ``tokens``) | ("block", b): {density: [H] tensor}};
    per-token recall does not depend on the order, so callers ask for it once."""
    S = k.shape[0]
    p = torch.softmax(torch.einsum("rhd,shd->hrs", q[rows].float(), k.float()) * scale, -1)
    out = {}
    if tokens:
        cum = p.sort(-1, descending=True).values.cumsum(-1)
        out[("token", 0)] = {d: _kept(cum, S, d).mean(-1) for d in DENSITIES}
    for b in blocks:
        nb = -(-S // b)
        mass = torch.nn.functional.pad(p, (0, nb * b - S)).reshape(p.shape[0], -1, b, nb, b).sum((2, 4)) / b
        cum = mass.sort(-1, descending=True).values.cumsum(-1)  # H, query blocks, nb
        out[("block", b)] = {d: _kept(cum, nb, d).mean(-1) for d in DENSITIES}
    return out


@dataclass
class RecallObserver:
    """A router observer (``videoaccel.observe``) accumulating oracle recall per layer/head at the sampled steps.
    Only video tokens are measured (joined text is kept dense by every plan)."""

    steps: set[int]
    query_blocks: int = 8
    seed: int = 0
    blocks: tuple[int, ...] = BLOCKS  # largest first: sampled query rows come in blocks of blocks[0]
    acc: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    geometry: VideoGeometry | None = None
    _perms: dict = field(default_factory=dict)

    def __call__(self, call: AttentionCall) -> None:
        if call.step not in self.steps:
            return
        layer, step, q, k, geometry = call.layer, call.step, call.q, call.k, call.geometry
        self.geometry = geometry
        n = geometry.video_tokens
        lo = geometry.text if geometry.text_position == "front" else 0
        q, k = q[0, lo:lo + n], k[0, lo:lo + n]
        g = torch.Generator().manual_seed(self.seed + 1000 * step + layer)
        qs = self.blocks[0]
        qb = torch.randperm(n // qs, generator=g)[: self.query_blocks]
        rows = (qb[:, None] * qs + torch.arange(qs)).flatten().to(q.device)
        scale = q.shape[-1] ** -0.5
        # frame order: one softmax serves every block size and the per-token rows; tile order permutes per block size
        self._add(layer, "frame", recall(q, k, rows, scale, self.blocks))
        for b in self.blocks:
            perm = self._perm(geometry, b, q.device)
            self._add(layer, "tile", recall(q[perm], k[perm], rows, scale, (b,), tokens=False))

    def _add(self, layer: int, order: str, res: dict) -> None:
        for (kind, b), vals in res.items():
            for d, val in vals.items():
                key = ("token", "any", 0, d) if kind == "token" else ("block", order, b, d)
                self.acc[key][layer].append(val.cpu())

    def _perm(self, geometry: VideoGeometry, block: int, device) -> torch.Tensor:
        key = (geometry.frames, geometry.height, geometry.width, block)
        if key not in self._perms:
            g = VideoGeometry(geometry.frames, geometry.height, geometry.width, block=block)
            self._perms[key] = tile_major_permutation(g).to(device)
        return self._perms[key]

    def rows(self, model: str) -> list[dict]:
        """Bench rows {model, geometry, order, block, density, recall, per_layer, per_head} (block 0 = per token)."""
        g = self.geometry
        out = []
        for (kind, order, block, d), layers in sorted(self.acc.items()):
            per_head = [torch.stack(layers[i]).mean(0).tolist() if i in layers else None for i in range(max(layers) + 1)]
            valid = [h for h in per_head if h is not None]
            out.append({"model": model, "geometry": f"{g.frames}x{g.height}x{g.width}", "tokens": g.video_tokens,
                        "order": order, "block": block, "density": d,
                        "recall": round(float(np.mean(valid)), 4),
                        "per_layer": [None if h is None else round(float(np.mean(h)), 4) for h in per_head],
                        "per_head": [None if h is None else [round(x, 4) for x in h] for h in per_head]})
        return out


def measure(pipe: DiffusionPipeline, prompts: list[str], *, seed: int = 0, query_blocks: int = 8, blocks: tuple[int, ...] = BLOCKS,
            progress: bool = True, **call_kwargs) -> RecallObserver:
    """Generate ``prompts`` densely (frame order) and return the filled observer; ``call_kwargs`` go to pipe()."""
    obs = RecallObserver(sample_steps(call_kwargs.get("num_inference_steps", 50)), query_blocks, seed, blocks)
    with attach.routed(pipe, Profile("attention-stats", order="frame", meta={"observe": True})), attach.observe(pipe, obs):
        for i, prompt in enumerate(tqdm(prompts, desc="attention statistics", disable=not progress)):
            gen = torch.Generator(device="cpu").manual_seed(seed + i)
            pipe(prompt=prompt, generator=gen, output_type="latent", **call_kwargs)
    if obs.geometry is None:
        raise ValueError("no self-attention call was observed at the sampled steps: is the pipeline supported?")
    return obs


def summary(rows: list[dict]) -> str:
    """One line per (order, block): recall at each density. A block row keeps round(density x key blocks) blocks
    (at least one), so on short sequences two densities can keep the same blocks: the key-block count is shown."""
    lines = ["order  block (key blocks)  " + "  ".join(f"@{d:<5}" for d in DENSITIES)]
    table, tokens = defaultdict(dict), {}
    for r in rows:
        table[(r["order"], r["block"])][r["density"]] = r["recall"]
        tokens[r["block"]] = r.get("tokens")
    for (order, block), vals in sorted(table.items()):
        n = tokens.get(block)
        name = "token" if block == 0 else f"{block} ({-(-n // block)})" if n else str(block)
        lines.append(f"{order:<6} {name:<19} " + "  ".join(f"{vals.get(d, float('nan')):.3f} " for d in DENSITIES))
    return "\n".join(lines)
