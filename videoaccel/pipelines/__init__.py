"""diffusers integration: accelerate(pipe, profile), accelerated(pipe, profile), restore(pipe), report(pipe)."""
from .api import Accelerated, accelerate, accelerated, check_profile, observe, report, restore, router_of, set_timing

__all__ = ["Accelerated", "accelerate", "accelerated", "check_profile", "observe", "report", "restore", "router_of",
           "set_timing"]
