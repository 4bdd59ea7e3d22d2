"""Offline profiling: calibrate a pipeline once, save the per-head plans as a profile."""
from .profiler import ProfileConfig, Profiler, profile_pipeline

__all__ = ["ProfileConfig", "Profiler", "profile_pipeline"]
