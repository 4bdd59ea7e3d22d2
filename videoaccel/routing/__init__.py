"""Attention routing: per-head plans -> compiled routes -> executors, behind one custom op.

Independent of diffusers: ``pipelines/`` binds a router to a model's attention processors.
"""
from .executors import EXECUTORS, Call, Executor
from .router import AttentionCall, AttentionRouter, Observer
from .stats import LayerReport, Report, TransformerReport

__all__ = ["EXECUTORS", "AttentionCall", "AttentionRouter", "Call", "Executor", "LayerReport", "Observer", "Report",
           "TransformerReport"]
