"""diffusers integration: accelerate(pipe, profile), restore(pipe), report(pipe)."""
from .api import accelerate, check_profile, observe, report, restore, router_of, set_timing

__all__ = ["accelerate", "check_profile", "observe", "report", "restore", "router_of", "set_timing"]
