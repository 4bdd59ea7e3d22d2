"""What the router says once when a calibrated profile runs somewhere other than where it was calibrated.

Why: plans refit to any size and buckets follow timesteps, so such a profile runs; but its fidelity was measured at
its own size and step count, and a user must know when that no longer holds. Said once per process (a Wan2.2
pipeline's two routers share it)."""
from __future__ import annotations

import logging

from ..plans import Profile

log = logging.getLogger("videoaccel")
_SAID: set[str] = set()


def _say(note: str) -> None:
    if note not in _SAID:
        _SAID.add(note)
        log.warning("videoaccel: %s", note)


def say_transfer(profile: Profile, grid: tuple[int, int, int]) -> None:
    """A calibrated profile at another latent grid than its calibration's: its plans are refitted there (static
    densities kept, sampled masks re-estimated), but calibration measured its fidelity at its own."""
    at = profile.meta.get("geometry") if profile.calibrated else None
    if at and tuple(at[:3]) != tuple(grid):
        _say(f"profile {profile.name!r} was calibrated at {'x'.join(map(str, at[:3]))} video tokens and runs at "
             f"{'x'.join(map(str, grid))}: its plans are refitted to this size, its fidelity here is not the calibrated "
             "one (profile at this size for that)")


def warm_up_for(profile: Profile, steps: int) -> int:
    """The dense warm-up steps of a generation of ``steps`` steps: a profile allocated for another count keeps the
    same share of the schedule (8 of 20 -> 20 of 50), said once."""
    if not profile.steps or steps == profile.steps or not profile.dense_steps:
        return profile.dense_steps
    warm = min(steps - 1, max(1, round(profile.dense_steps * steps / profile.steps)))
    _say(f"profile {profile.name!r} was allocated for {profile.steps} steps and this generation has {steps}: its "
         f"{profile.dense_steps} dense warm-up steps become {warm} (the same share of the schedule); its fidelity "
         "here is not the calibrated one (profile at this step count for that)")
    return warm
