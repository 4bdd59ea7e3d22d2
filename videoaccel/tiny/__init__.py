"""Tiny text-to-video toy world: procedurally generated clips (data) and an automatic prompt-adherence check (detect)."""
