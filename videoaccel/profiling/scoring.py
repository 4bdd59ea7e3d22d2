"""Scoring one calibration call: every candidate plan's output error on sampled rows of each head.

Why a module of its own: the calibration state (calibration.py) only accumulates; what a candidate is and how
it is scored lives here (``Scorer``: one config's candidates per geometry, and each call's errors). Static
candidates (radial, diagonal, ...) have one mask per geometry, built once; scored dynamic candidates
(``sampled``) get this call's own masks from this call's q/k, exactly as the router will build them, so
their error includes the estimate's misses.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..patterns import PATTERNS, VideoGeometry, fit_density, honest_density, mask_density
from ..patterns.measure import evaluate, fp8_error, sample_heads
from ..patterns.oracle import top_k_asked, top_k_blocks, top_k_density
from ..patterns.registry import estimate_share
from ..patterns.sampled import default_rows, sampled_block_mass
from ..plans import Plan


@dataclass
class Candidates:
    plans: list[Plan]  # skip, the static plans (``masks``), then the scored dynamic plans (masks per call)
    masks: torch.Tensor  # bool [C_static, NB, NB]
    cost: torch.Tensor  # [C]: exact mask density at this geometry (+ the estimate of a dynamic plan)
    scored: list[float]  # densities of the ``sampled`` candidates, in ``plans`` order after the static ones


def build(patterns: tuple[str, ...], densities: tuple[float, ...], g: VideoGeometry, estimate: tuple = ()) -> Candidates:
    """Candidates of one geometry: each pattern at each density (static ones fitted to it); ``estimate``: the
    scored plans' estimate parameters (("rows", r), ("every", e)), their cost counted."""
    plans, masks, scored, cost = [Plan("skip")], [torch.zeros(g.num_blocks, g.num_blocks, dtype=torch.bool)], [], []
    for name in patterns:
        if PATTERNS[name].scored:
            continue
        for d in densities:  # the density each mask runs at (asking 0.4 may give 0.35 here); one candidate per mask
            mask = fit_density(name, g, d)[1]
            if mask.all():  # every block kept (a tiny grid): that is the dense plan, not a candidate
                continue
            if not any(p.pattern == name and torch.equal(m, mask) for p, m in zip(plans, masks)):
                asked = honest_density(mask, g)
                if not torch.equal(fit_density(name, g, asked)[1], mask):  # a finer step than the grid's: ask d, said then
                    asked = d
                plans.append(Plan(name, (("density", asked),)))
                masks.append(mask)
    cost = [mask_density(m, g) for m in masks]
    for name in (n for n in patterns if PATTERNS[n].scored):
        for d in dict.fromkeys(top_k_asked(g, d) for d in densities):  # what each runs here; one candidate per count
            plans.append(Plan(name, (("density", d), *estimate)))
            scored.append(d)
            cost.append(top_k_density(g, d) + estimate_share(name, dict(estimate), g.block))
    return Candidates(plans, torch.stack(masks), torch.tensor(cost), scored)


def call_masks(c: Candidates, q: torch.Tensor, k: torch.Tensor, g: VideoGeometry) -> torch.Tensor:
    """bool [H, C, NB, NB]: every candidate's mask for each head of this call (sample 0 of q/k [B, S, H, D])."""
    H = q.shape[2]
    static = c.masks.to(q.device)[None].expand(H, -1, -1, -1)
    if not c.scored:
        return static
    rows = c.plans[-1].kwargs.get("rows", default_rows(g.block))
    mass = sampled_block_mass(q[:1], k[:1], g, rows=rows)  # as the router builds them
    dyn = torch.stack([top_k_blocks(mass, d) for d in c.scored], 1)  # [H, Cs, NB, NB]
    return torch.cat([static, dyn], 1)


def score_call(c: Candidates, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: VideoGeometry, *, rows: int,
               compensate: bool, fp8: bool, generator: torch.Generator, valid_text: int | None = None) -> torch.Tensor:
    """float32 [H, C'] on the host (one sync per call): per head the error of every candidate, then of the compensated
    ones (skip excluded), then the FP8 error of dense attention; every head in one batched pass on shared rows."""
    masks = call_masks(c, q, k, g)
    s = sample_heads(q[0], k[0], v[0], g, rows, generator=generator, valid_text=valid_text)
    errs = [evaluate(s, masks)[0]]
    if compensate:
        errs.append(evaluate(s, masks[:, 1:], compensate=True)[0])
    if fp8:
        errs.append(fp8_error(q[0], k[0], v[0], s, g, valid_text=valid_text)[:, None])
    return torch.cat(errs, 1).cpu()


class Scorer:
    """Scores calls for one calibration: its candidates per geometry (built once each) and every call's errors."""

    def __init__(self, patterns: tuple[str, ...], densities: tuple[float, ...], *, rows: int, compensate: bool, fp8: bool,
                 estimate: tuple = ()):
        self.patterns, self.densities, self.estimate = patterns, densities, estimate
        self.rows, self.compensate, self.fp8 = rows, compensate, fp8
        self._built: dict[VideoGeometry, Candidates] = {}

    def candidates(self, g: VideoGeometry) -> Candidates:
        if g not in self._built:
            self._built[g] = build(self.patterns, self.densities, g, self.estimate)
        return self._built[g]

    def score(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: VideoGeometry, generator: torch.Generator,
              valid_text: int | None = None) -> torch.Tensor:
        """``score_call`` with this calibration's candidates and settings: float32 [H, C'] on the host."""
        return score_call(self.candidates(g), q, k, v, g, rows=self.rows, compensate=self.compensate, fp8=self.fp8,
                          generator=generator, valid_text=valid_text)
