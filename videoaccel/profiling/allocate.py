"""One total budget: choose the dense warm-up steps and every (layer, bucket, head) plan jointly.

Why jointly: on the embedded model dense warm-up steps bought more fidelity than any mask refinement
(docs/embedded-model.md, the shipped CPU profile), so warm-up steps, bucket densities and head plans compete
for the same attention time. The predicted error of the final latent is
``J = sum_s w2[s] * mean_(layer, head) err[plan]**2`` over the sparse steps s (step weights from the
probe, probe.py; head errors measured per bucket), and the cost is the generation's attention time
over dense, warm-up steps at 1.0. For every warm-up length, heads climb their convex hull of
(cost, error**2) candidates, the steepest error reduction per unit of added cost first over all
heads, until the target cost is spent (or J meets the error budget); the warm-up length with the
least error (or the least cost) wins.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Allocation:
    choice: torch.Tensor  # int64 [K, H]: candidate per (layer, bucket) key and head
    warm: int  # dense warm-up steps
    cost: float  # total, warm-up steps at 1.0
    error: float  # sqrt(J): predicted relative error of the final latent (with probe weights)
    bucket_steps: list[int]  # sparse steps per bucket after the warm-up


def _hulls(e2: torch.Tensor, cost: torch.Tensor):
    """Per head the cheapest candidate, then its lower convex hull towards lower error: segments as
    flat tensors (head index, step along the hull, candidate, added cost, removed error**2)."""
    M, C = e2.shape
    cur = torch.stack([torch.arange(M), (cost[None] + 1e-9 * e2).argmin(1)], 1)[:, 1]
    start = cur.clone()
    segs = []
    for step in range(C):
        c0, e0 = cost[cur], e2[torch.arange(M), cur]
        dc, de = cost[None] - c0[:, None], e0[:, None] - e2
        ratio = torch.where((dc > 1e-12) & (de > 0), de / dc.clamp_min(1e-30), -1.0)
        best = ratio.argmax(1)
        go = ratio[torch.arange(M), best] > 0
        if not go.any():
            break
        idx = go.nonzero().flatten()
        segs.append((idx, torch.full_like(idx, step), best[idx], dc[idx, best[idx]], de[idx, best[idx]]))
        cur = torch.where(go, best, cur)
    cat = [torch.cat(x) for x in zip(*segs)] if segs else [torch.zeros(0, dtype=torch.long)] * 3 + [torch.zeros(0, dtype=e2.dtype)] * 2
    return start, cat


def _fill(idx, head, add_c, cut_e, total, j, target):
    """Hull steps in ``idx`` order while they fit in ``target``; a step that does not fit ends its head's climb."""
    taken, blocked = [], set()
    for i, h, c, e in zip(idx.tolist(), head[idx].tolist(), add_c[idx].tolist(), cut_e[idx].tolist()):
        if h in blocked:
            continue
        if total + c > target + 1e-9:
            blocked.add(h)
            continue
        taken.append(i)
        total, j = total + c, j - e
    return torch.tensor(taken, dtype=torch.long), total, j


def allocate(err: torch.Tensor, cost: torch.Tensor, key_bucket: torch.Tensor, step_bucket: list[int], w2: torch.Tensor,
             target: float | None = None, error_budget: float | None = None, warm_up: bool = True) -> Allocation:
    """err [K, H, C] mean relative head error per candidate (one candidate should be dense: error 0,
    cost 1), cost [C], key_bucket [K] the bucket of each key, step_bucket[s] the bucket of step s,
    w2 [steps] step weights. Exactly one of ``target`` (total cost) or ``error_budget`` (on sqrt(J))."""
    if (target is None) == (error_budget is None):
        raise ValueError("give exactly one of target (total attention cost in (0, 1]) or error_budget")
    n, nb = len(step_bucket), int(max(step_bucket)) + 1
    K, H, C = err.shape
    e2, cost = err.double().reshape(K * H, C) ** 2, cost.double()
    sb, w2 = torch.tensor(step_bucket, dtype=torch.long), w2.double()
    units = (torch.bincount(key_bucket, minlength=nb).double() * H).clamp_min(1)  # (layer, head) pairs per bucket
    head_bucket = key_bucket.repeat_interleave(H)
    start, (head, order, cand, dc, de) = _hulls(e2, cost)
    base_c = torch.zeros(nb, dtype=torch.float64).index_add_(0, head_bucket, cost[start]) / units
    base_c[torch.bincount(key_bucket, minlength=nb) == 0] = 1.0  # a bucket calibration never saw runs dense (per_layer)
    base_e = torch.zeros(nb, dtype=torch.float64).index_add_(0, head_bucket, e2[torch.arange(K * H), start]) / units
    best = None
    for warm in range(n if warm_up else 1):
        live = (torch.arange(n) >= warm).double()
        n_b = torch.zeros(nb, dtype=torch.float64).index_add_(0, sb, live)
        w_b = torch.zeros(nb, dtype=torch.float64).index_add_(0, sb, w2 * live)
        total0 = (warm + float((n_b * base_c).sum())) / n
        j0 = float((w_b * base_e).sum())
        seg_b = head_bucket[head]
        add_c = dc * (n_b / (n * units))[seg_b]
        cut_e = de * (w_b / units)[seg_b]
        ok = add_c > 0
        ratio = torch.where(ok, cut_e / add_c.clamp_min(1e-30), -1.0)
        # steepest first; within a head its hull order (ratios fall along a hull, ties keep the order)
        idx = torch.argsort(ratio * (1 + 1e-12) - order * 1e-15, descending=True, stable=True)
        idx = idx[ok[idx]]
        if target is not None:
            if total0 > target + 1e-9:
                break
            idx, total, j = _fill(idx, head, add_c, cut_e, total0, j0, target)
        else:
            cum_e = j0 - torch.cumsum(cut_e[idx], 0)
            met = (cum_e <= error_budget ** 2).nonzero()
            take = 0 if j0 <= error_budget ** 2 else int(met[0]) + 1 if len(met) else len(idx)
            idx = idx[:take]
            total, j = total0 + float(add_c[idx].sum()), j0 - float(cut_e[idx].sum())
        key = j if target is not None else (j > error_budget ** 2 + 1e-15, total)
        if best is None or key < best[0]:
            best = (key, warm, idx, total, j, [int(x) for x in n_b])
    _, warm, taken, total, j, bucket_steps = best
    choice = start.clone()
    for i in taken.tolist():  # hull steps of a head come in order: the last one taken is its plan
        choice[head[i]] = cand[i]
    return Allocation(choice.reshape(K, H), warm, total, max(j, 0.0) ** 0.5, bucket_steps)
