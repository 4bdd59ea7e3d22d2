"""Attention routing: per-head plans -> one compiled table per call -> one launch, behind one custom op.

Independent of diffusers: ``pipelines/`` binds a router to a model's attention processors and builds
the per-forward ``StepContext`` in its step hook.
"""
from .context import StepContext
from .executors import Call, Kernels
from .router import AttentionCall, AttentionRouter, Observer
from .stats import LayerReport, Report, TransformerReport

__all__ = ["AttentionCall", "AttentionRouter", "Call", "Kernels", "LayerReport", "Observer", "Report", "StepContext",
           "TransformerReport"]
