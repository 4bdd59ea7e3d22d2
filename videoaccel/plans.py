"""Attention plans and profiles: which pattern and precision each (layer, head, step) uses.

A ``Plan`` is one head's choice (pattern, its parameters, precision, mass compensation). A
``Profile`` maps (layer, timestep bucket) to one plan per head, plus dense warm-up steps and
layers, the token order and block size, and the model it was made for. Presets are uncalibrated
profiles given by name (``dense``, ``radial``, ``radial:0.1``, ``draft:0.9+fp8``, ...).
Profiles are JSON; loading runs no code. Schema 2 adds the step budget (``steps``, ``budget``: how
the total attention cost splits into dense warm-up steps and per-bucket densities) and the cost model
the allocation used; schema-1 files are migrated on load (``migrate``).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cache_spec
from .files import read_text, write_text
from .patterns.registry import PATTERNS, PRECISIONS, PRESETS, Order, Precision
from .plan_checks import plan_params, profile_fields
from .profile_schema import check_profile_json, nearest, parse, shown

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Plan:
    pattern: str = "dense"  # a name of patterns.registry.PATTERNS
    params: tuple[tuple[str, Any], ...] = ()  # pattern parameters, or ("density", d) to fit per geometry
    precision: Precision = "bf16"
    compensate: bool = False

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {shown(self.pattern)}{nearest(self.pattern, PATTERNS)}: use one of {', '.join(PATTERNS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {shown(self.precision)}{nearest(self.precision, PRECISIONS)}: use 'bf16' or 'fp8'")
        if not isinstance(self.compensate, bool):
            raise ValueError(f"compensate={shown(self.compensate)} must be true or false")
        object.__setattr__(self, "params", plan_params(self.pattern, tuple(self.params)))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def density(self) -> float:
        """Computed fraction of the score matrix (nan where the pattern has no fixed density)."""
        if self.pattern == "dense":
            return 1.0
        if self.pattern == "skip":
            return 0.0
        return float(self.kwargs.get("density", float("nan")))

    @property
    def label(self) -> str:
        p = ",".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.params)
        return f"{self.pattern}({p})" + ("+fp8" if self.precision == "fp8" else "") + ("+comp" if self.compensate else "")

    def to_json(self) -> dict:
        return {"pattern": self.pattern, "params": dict(self.params), "precision": self.precision, "compensate": self.compensate}

    @classmethod
    def from_json(cls, d: dict) -> Plan:
        if not isinstance(d, dict) or not isinstance(d.get("params", {}), dict):
            raise ValueError(f"plan {shown(d)} must be an object like {{\"pattern\": \"radial\", \"params\": {{\"density\": 0.1}}}}")
        return cls(d["pattern"], tuple(sorted(d.get("params", {}).items())), d.get("precision", "bf16"), d.get("compensate", False))


@dataclass
class Profile:
    """Plans for one model. ``layers[i][b]`` is the list of per-head plans of layer i in timestep
    bucket b (bucket edges on the scheduler's timestep, descending from noise); a layer missing from
    ``layers`` uses ``default`` for every head."""
    name: str
    default: Plan = field(default_factory=Plan)
    layers: dict[int, list[list[Plan]]] = field(default_factory=dict)
    bucket_edges: list[float] = field(default_factory=list)  # timesteps splitting buckets, descending
    dense_steps: int = 0
    dense_layers: tuple[int, ...] = ()
    order: Order = "frame"
    block: int = 128
    calibrated: bool = False
    model: dict[str, str] | None = None  # {"class": ..., "config_hash": ...}
    meta: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None  # denoising steps the step budget was allocated for (None: any)
    budget: dict[str, Any] = field(default_factory=dict)  # target_density / error_budget asked, bucket_steps, expected cost
    cost_model: dict[str, Any] = field(default_factory=lambda: {"source": "analytic"})  # or measured: device, table
    cache: cache_spec.CacheSpec | None = None  # a measured recommended diffusers step cache (generate uses it)

    def bucket_density(self) -> list[float]:
        """Mean plan density per timestep bucket over every layer and head (nan for input-dependent plans)."""
        if not self.layers:
            return [self.default.density] * (len(self.bucket_edges) + 1)
        n = max(len(b) for b in self.layers.values())
        out = []
        for b in range(n):
            ds = [p.density for bs in self.layers.values() for p in bs[min(b, len(bs) - 1)]]
            out.append(sum(ds) / len(ds))
        return out

    def total_density(self) -> float | None:
        """Attention density of a whole generation: warm-up steps at 1.0, each bucket's steps at its
        density (None without the step split, e.g. presets and migrated schema-1 profiles)."""
        split = self.budget.get("bucket_steps")
        if not self.steps or split is None:
            return None
        dens = self.bucket_density()
        return (min(self.dense_steps, self.steps) + sum(n * d for n, d in zip(split, dens))) / self.steps

    def __post_init__(self) -> None:
        profile_fields(self)

    def bucket(self, timestep: float | None) -> int:
        return bucket_of(timestep, self.bucket_edges)

    def plans(self, layer: int, heads: int, step: int, timestep: float | None) -> list[Plan]:
        if step < self.dense_steps or layer in self.dense_layers:
            return [Plan()] * heads
        per_bucket = self.layers.get(layer)
        if per_bucket is None:
            return [self.default] * heads
        plans = per_bucket[min(self.bucket(timestep), len(per_bucket) - 1)]
        if len(plans) != heads:
            raise ValueError(f"profile {shown(self.name)} has {len(plans)} head plans for layer {layer}, the model has {heads} heads: "
                             "it was made for another model")
        return plans

    # ---- files ------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "name": self.name, "default": self.default.to_json(),
                "layers": {str(i): [[p.to_json() for p in hs] for hs in bs] for i, bs in self.layers.items()},
                "bucket_edges": self.bucket_edges, "dense_steps": self.dense_steps, "dense_layers": list(self.dense_layers),
                "order": self.order, "block": self.block, "calibrated": self.calibrated, "model": self.model, "meta": self.meta,
                "steps": self.steps, "budget": self.budget, "cost_model": self.cost_model,
                **({"cache": self.cache.to_json()} if self.cache else {})}  # absent unless measured: older readers skip it

    def save(self, path: str | Path) -> None:
        """Written atomically: a failed write (disk full, a size limit) leaves the old file whole."""
        try:
            text = json.dumps(self.to_json(), indent=1, allow_nan=False)
        except ValueError:
            raise ValueError(f"profile {shown(self.name)} holds NaN or an infinite number (in meta, budget or cost_model), which JSON "
                             "cannot hold and load would refuse: make it finite or null") from None
        write_text(path, text)

    @classmethod
    def from_json(cls, d: dict, source: str = "profile") -> Profile:
        if not isinstance(d, dict) or "schema_version" not in d:
            raise ValueError(f"{source} is not a videoaccel profile (no schema_version)")
        version = d["schema_version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError(f"{source}: schema_version={shown(version)} must be a whole number, e.g. {SCHEMA_VERSION}")
        if version > SCHEMA_VERSION:
            raise ValueError(f"{source} has schema version {d['schema_version']}, this videoaccel reads up to {SCHEMA_VERSION}: "
                             "upgrade videoaccel")
        check_profile_json(d, source)  # keys, JSON types, sizes: nothing below coerces a value
        d = migrate(d)
        try:
            return cls(name=d["name"], default=Plan.from_json(d["default"]),
                       layers={int(i): [[Plan.from_json(p) for p in hs] for hs in bs] for i, bs in d.get("layers", {}).items()},
                       bucket_edges=list(d.get("bucket_edges", [])), dense_steps=d.get("dense_steps", 0),
                       dense_layers=tuple(d.get("dense_layers", ())), order=d.get("order", "frame"), block=d.get("block", 128),
                       calibrated=d.get("calibrated", False), model=d.get("model"), meta=d.get("meta", {}),
                       steps=d.get("steps"), budget=dict(d.get("budget", {})), cost_model=dict(d.get("cost_model", {"source": "analytic"})),
                       cache=cache_spec.from_json(d["cache"], source) if d.get("cache") is not None else None)
        except KeyError as e:
            raise ValueError(f"{source} is corrupt: field {e} is missing (docs/profile-schema.md)") from None
        except (AttributeError, TypeError, ValueError) as e:
            raise ValueError(f"{source} is corrupt: {e} (docs/profile-schema.md)") from None

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """ValueError naming the file and the fix for anything but a profile (a missing file is also a FileNotFoundError)."""
        text = read_text(path, "profile file", "a profile .json from `videoaccel profile` or profiles/")
        return cls.from_json(parse(text, f"profile file {path}"), str(path))


def bucket_of(timestep: float | None, edges: list[float]) -> int:
    """The timestep bucket of ``timestep`` given descending bucket edges (0 when the timestep is unknown)."""
    return 0 if timestep is None else sum(1 for e in edges if timestep < e)


def migrate(d: dict) -> dict:
    """A schema-1 profile dict as schema 2: no step split known, the analytic cost model, and the
    schema-1 meta fields (error_budget, target_density, expected_density) as the budget."""
    if d["schema_version"] >= 2:
        return d
    meta = d.get("meta", {})
    budget = {k: meta[k] for k in ("error_budget", "target_density", "expected_density") if k in meta}
    return {**d, "schema_version": 2, "steps": None, "budget": budget,
            "cost_model": {"source": "analytic", "note": meta.get("cost_model", "migrated from schema 1")}}


def preset(spec: str) -> Profile:
    """An uncalibrated profile: ``pattern[:value][+fp8]``. value = the registry preset's parameter: target
    density for static patterns (default 0.25), top-p mass for ``draft`` (default 0.9)."""
    base, _, suffix = spec.partition("+")
    if suffix not in ("", "fp8"):
        raise ValueError(f"preset {shown(spec)}: the only suffix is '+fp8'")
    name, _, value = base.partition(":")
    if name not in PRESETS:
        raise ValueError(f"unknown preset {shown(spec)}{nearest(name, PRESETS)}; presets: {', '.join(PRESETS)} (e.g. radial:0.1, draft:0.9+fp8), "
                         "or pass a profile file")
    precision: Precision = "fp8" if suffix else "bf16"
    try:
        v = float(value) if value else None
    except ValueError:
        raise ValueError(f"preset {shown(spec)}: the value after ':' must be a number, e.g. radial:0.1") from None
    how = PATTERNS[name].preset
    try:
        if how.param is None:
            if v is not None:
                raise ValueError(f"{name} takes no value: write e.g. {name} or {name}+fp8")
            plan = Plan(name, precision=precision)
        else:
            plan = Plan(name, ((how.param, v if v is not None else how.default),), precision)
    except ValueError as e:
        raise ValueError(f"preset {shown(spec)}: {e}") from None
    return Profile(name=spec, default=plan, order="tile" if name != "dense" else "frame", meta={"preset": True})


def load_profile(profile: Profile | str | Path) -> Profile:
    """A Profile from a Profile, a profile .json path or a preset name (checked, before any model work)."""
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, Path) or isinstance(profile, str) and _names_a_file(profile):
        return Profile.load(profile)
    if isinstance(profile, str):
        return preset(profile)
    raise ValueError(f"profile must be a Profile, a profile .json path or a preset name, got {type(profile).__name__}")


def _names_a_file(text: str) -> bool:
    """A .json name, a file, or anything else on disk (a directory, a symlink loop) not spelt like a preset: read as
    a profile file, so its error names the file instead of 'unknown preset'."""
    base = text.partition("+")[0].partition(":")[0]
    return text.endswith(".json") or os.path.isfile(text) or (os.path.lexists(text) and base not in PRESETS)


def config_hash(config: dict) -> str:
    """Stable hash of a model config (what a profile's fingerprint checks)."""
    keep = {k: v for k, v in sorted(dict(config).items()) if not k.startswith("_")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


