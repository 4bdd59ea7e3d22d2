"""The fidelity bench's rows: which oracle rows it runs, what a row's target density is, and each plan's gaps.

Why apart from fidelity.py: the bench's loop (generate, measure, time) and the bookkeeping of what is compared
with what are separate concerns; the gaps are recomputed from every row measured so far, so a run cut short keeps
what it measured.
"""
from __future__ import annotations

import numpy as np

from ..plans import preset
from ..profiling.oracle import oracle_for_total


def preset_density(spec: str) -> float | None:
    """radial:0.25 -> 0.25 (a preset has no warm-up: its density is its total); draft (top-p) / dense -> None."""
    return preset(spec).default.kwargs.get("density")


def uses(profile, pattern: str) -> bool:
    return profile.default.pattern == pattern or any(p.pattern == pattern for b in profile.layers.values() for hs in b for p in hs)


def compensation_flags(spec: str, flag: str) -> list[bool]:
    """'0,1' -> [False, True] ('' -> none), checked before any work."""
    if any(x not in ("0", "1") for x in spec.split(",") if spec):
        raise ValueError(f"{flag} {spec!r} must be 0, 1 or 0,1")
    return [x == "1" for x in spec.split(",") if spec]


def oracles(args, compensate: list[bool]) -> list[tuple[str, object]]:
    """The oracle rows: at each total density, each warm-up count that fits in it (the bound is their best), without
    and/or with compensation."""
    block = args.oracle_block or args.block
    out = []
    for d in (args.targets if args.oracles is None else args.oracles).split(","):
        for w in (int(x) for x in args.oracle_warmups.split(",") if x):
            for comp in compensate:
                if d and w < args.steps and w < float(d) * args.steps:
                    tag = f"oracle-{'layer-' if args.oracle_per_layer else ''}b{block}-{d}-w{w}{'-comp' if comp else ''}"
                    out.append((tag, oracle_for_total(float(d), args.steps, w, block, args.oracle_order, args.oracle_per_layer,
                                                      comp)))
    return out


def gaps(rows: list[dict]) -> None:
    """Fill each plan row's ``oracle_gap_db`` (PSNR minus the best oracle row at its target total density: the bound)
    and ``own_bound_gap_db`` (minus the oracle at its own allocation), from the rows measured so far."""
    bound: dict[float, float] = {}
    own: dict[str, float] = {}
    for r in rows:
        if r.get("oracle") and r["psnr"] is not None:
            bound[r["target_density"]] = max(bound.get(r["target_density"], -np.inf), r["psnr"])
            if r["like"]:
                own[r["like"]] = max(own.get(r["like"], -np.inf), r["psnr"])
    for r in rows:
        if "oracle" in r and not r["oracle"]:
            ok = r["psnr"] is not None
            r["oracle_gap_db"] = r["psnr"] - bound[r["target_density"]] if ok and r["target_density"] in bound else None
            r["own_bound_gap_db"] = r["psnr"] - own[r["profile"]] if ok and r["profile"] in own else None
