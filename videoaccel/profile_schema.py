"""The shape of a profile file, checked on the parsed JSON before any Plan or Profile is made.

Why strict: a misspelt key is otherwise ignored (``"dense_step": 5`` runs no warm-up, a plan's
``"precison": "fp8"`` runs bf16) and a wrongly typed value coerced (``"dense_steps": 2.7`` -> 2,
``"calibrated": "no"`` -> true). So: known keys only (the nearest known name is offered), JSON types
as documented, finite numbers, and sizes no real model needs. Every message is bounded: the first
few problems, then how many more. Values (ranges, pattern names) are checked when plans are made
(plan_checks.py).
"""
from __future__ import annotations

import difflib
import json
import math
from collections import Counter
from typing import Any

MAX_LAYERS = 1000  # the largest video transformers have ~60 attention layers
MAX_BUCKETS = 64
MAX_HEADS = 1024
MAX_STEPS = 10_000
SHOWN = 3  # problems spelled out in one message

NUMBER, INT, NULL = "number", "int", None  # JSON kinds besides the Python types below
TOP: dict[str, tuple] = {
    "schema_version": (INT,), "name": (str,), "default": (dict,), "layers": (dict,), "bucket_edges": (list,),
    "dense_steps": (INT,), "dense_layers": (list,), "order": (str,), "block": (INT,), "calibrated": (bool,),
    "model": (NULL, dict), "meta": (dict,), "steps": (INT, NULL), "budget": (dict,), "cost_model": (dict,),
    "cache": (NULL, dict)}
PLAN = {"pattern": (str,), "params": (dict,), "precision": (str,), "compensate": (bool,)}
MODEL = {"class": (str,), "config_hash": (str, NULL)}
BUDGET = {"target_density": (NUMBER, NULL), "error_budget": (NUMBER, NULL), "bucket_steps": (list,),
          "expected_density": (NUMBER, NULL), "expected_cost": (NUMBER, NULL), "expected_error": (NUMBER, NULL),
          "error_units": (str,)}
COST_MODEL = {"source": (str,), "note": (str,), "device": (str,), "table": (list,)}
CACHE = {"name": (str,), "params": (dict,)}
REQUIRED = ("schema_version", "name", "default")


def shown(value: Any, limit: int = 60) -> str:
    """repr(value), cut to ``limit`` characters: a message quotes a value, never a whole file."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def nearest(name: Any, known: Any) -> str:
    """' (did you mean dense_steps?)' when a known name is close to ``name``, else ''."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def summarise(problems: list[str]) -> str:
    """The first SHOWN problems, then a count of the rest."""
    more = len(problems) - SHOWN
    return "; ".join(problems[:SHOWN]) + (f"; and {more} more" if more > 0 else "")


def parse(text: str, source: str) -> Any:
    """JSON without NaN or Infinity (JSON has neither; Python's reader takes them) and without a key given twice."""
    def constant(name: str) -> Any:
        raise ValueError(f"{source} holds {name}: profile numbers must be finite (write a number such as 0.5)")

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            constant(text)
        return value

    def whole(text: str) -> int:
        if len(text.lstrip("-")) > 18:
            raise ValueError(f"{source} holds the number {text[:24]}...: too large for any profile field")
        return int(text)

    def pairs(items: list[tuple[str, Any]]) -> dict:
        out = dict(items)
        if len(out) != len(items):
            twice = sorted(k for k, n in Counter(k for k, _ in items).items() if n > 1)
            raise ValueError(f"{source} gives {shown(twice)} twice in one object: keep one (JSON readers keep the last silently)")
        return out

    try:
        return json.loads(text, parse_constant=constant, parse_float=finite, parse_int=whole, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source} is corrupt (not JSON: {e})") from None
    except RecursionError:
        raise ValueError(f"{source} is nested too deeply to be a profile") from None


def check_profile_json(d: dict, source: str) -> None:
    """ValueError naming the first few problems of a profile dict's shape (keys, types, sizes)."""
    problems: list[str] = []
    _fields(d, TOP, "", problems)
    problems += [f"field {k!r} is missing" for k in REQUIRED if k not in d]
    for where, spec in (("model", MODEL), ("budget", BUDGET), ("cost_model", COST_MODEL), ("cache", CACHE)):
        if isinstance(d.get(where), dict):
            _fields(d[where], spec, f"{where}.", problems)
    if isinstance(d.get("default"), dict):
        _fields(d["default"], PLAN, "default.", problems)
    _layers(d.get("layers"), problems)
    for key, limit, unit in (("bucket_edges", MAX_BUCKETS - 1, "edges"), ("dense_layers", MAX_LAYERS, "layers")):
        if isinstance(d.get(key), list) and len(d[key]) > limit:
            problems.append(f"{key} has {len(d[key])} {unit}, at most {limit} are read")
    for key in ("dense_steps", "steps"):
        if _is_int(d.get(key)) and d[key] > MAX_STEPS:
            problems.append(f"{key}={d[key]} is more than {MAX_STEPS} steps")
    if problems:
        raise ValueError(f"{source}: {summarise(problems)} (docs/profile-schema.md)")


def _layers(layers: Any, problems: list[str]) -> None:
    if not isinstance(layers, dict):
        return
    if len(layers) > MAX_LAYERS:
        problems.append(f"layers names {len(layers)} layers, at most {MAX_LAYERS} are read: it is not a profile of a real model")
        return
    for key, buckets in layers.items():
        if not (key.isdecimal() and key.isascii() and str(int(key)) == key and int(key) < MAX_LAYERS):
            problems.append(f"layer key {shown(key)} must be a layer index 0-{MAX_LAYERS - 1} written plainly, e.g. \"0\"")
            continue
        if not isinstance(buckets, list) or len(buckets) > MAX_BUCKETS:
            problems.append(f"layers.{key} must be a list of at most {MAX_BUCKETS} timestep buckets, got {shown(buckets)}")
            continue
        for b, plans in enumerate(buckets):
            if not isinstance(plans, list) or len(plans) > MAX_HEADS:
                problems.append(f"layers.{key}[{b}] must be a list of at most {MAX_HEADS} head plans, got {shown(plans)}")
                continue
            for h, plan in enumerate(plans):
                if isinstance(plan, dict):
                    _fields(plan, PLAN, f"layers.{key}[{b}][{h}].", problems)


def _fields(obj: dict, spec: dict, where: str, problems: list[str]) -> None:
    """Unknown keys (with the nearest known one) and values of the wrong JSON kind."""
    for key, value in obj.items():
        if key not in spec:
            problems.append(f"unknown field {where}{shown(key)}{nearest(key, spec)}")
        elif not any(_is(value, kind) for kind in spec[key]):
            problems.append(f"{where}{key}={shown(value)} must be {' or '.join(_NAMES[k] for k in spec[key])}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is(value: Any, kind: Any) -> bool:
    if kind is NULL:
        return value is None
    if kind == INT:
        return _is_int(value)
    if kind == NUMBER:
        return _is_int(value) or isinstance(value, float) and math.isfinite(value)
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


_NAMES = {INT: "a whole number", NUMBER: "a finite number", NULL: "null", str: "a string", bool: "true or false",
          dict: "an object", list: "a list"}
