"""Offline profiling: calibrate a pipeline once, save the per-head plans as a profile."""
from .profiler import Calibrated, ProfileConfig, Profiler, calibrate, profile_pipeline

__all__ = ["Calibrated", "ProfileConfig", "Profiler", "calibrate", "profile_pipeline"]
