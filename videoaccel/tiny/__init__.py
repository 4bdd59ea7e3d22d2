"""Tiny text-to-video toy world: procedurally generated clips (data) and an automatic prompt-adherence check (detect)."""
from pathlib import Path

EMBEDDED = Path(__file__).resolve().parents[2] / "assets" / "tiny-t2v"  # the diffusers directory shipped in the repository
EMBEDDED_PROFILE = EMBEDDED.parents[1] / "profiles" / "tiny-t2v.json"  # calibrated on it (benchmarks/fidelity.py)
