"""diffusers integration: accelerate(pipe, profile), restore(pipe), report(pipe)."""
from .api import accelerate, report, restore, router_of, set_timing

__all__ = ["accelerate", "report", "restore", "router_of", "set_timing"]
