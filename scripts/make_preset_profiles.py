"""Write the shipped uncalibrated preset profiles (profiles/*.json) for the supported model families.

They follow the published defaults of the methods (Radial Attention: dense warm-up for the first
~20% of steps and the first layer; ~0.15 attention density afterwards) and are labelled
uncalibrated: real weights cannot be profiled here. Calibrate your model with `videoaccel profile`.

    python scripts/make_preset_profiles.py
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from videoaccel.plans import Plan, Profile  # noqa: E402

FAMILIES = {  # file: (transformer class, token order, steps of a typical run)
    "wan2.1-t2v": ("WanTransformer3DModel", "tile", 50),
    "wan2.2-a14b": ("WanTransformer3DModel", "tile", 40),
    "hunyuanvideo": ("HunyuanVideoTransformer3DModel", "frame", 50),
    "cogvideox": ("CogVideoXTransformer3DModel", "frame", 50),
    "ltx-video": ("LTXVideoTransformer3DModel", "frame", 50),
    "mochi": ("MochiTransformer3DModel", "frame", 64),
    "skyreels-v2": ("SkyReelsV2Transformer3DModel", "frame", 50),
    "wan-vace": ("WanVACETransformer3DModel", "frame", 50),
    "chronoedit": ("ChronoEditTransformer3DModel", "frame", 50),
    "wan-animate": ("WanAnimateTransformer3DModel", "frame", 20),
    "anyflow": ("AnyFlowTransformer3DModel", "frame", 50),
    "helios": ("HeliosTransformer3DModel", "frame", 50),
    "hunyuanvideo1.5": ("HunyuanVideo15Transformer3DModel", "frame", 50),
    "motif-video": ("MotifVideoTransformer3DModel", "frame", 50),
    "consisid": ("ConsisIDTransformer3DModel", "frame", 50),
    "easyanimate": ("EasyAnimateTransformer3DModel", "frame", 50),
    "cosmos": ("CosmosTransformer3DModel", "frame", 36),
    "kandinsky5": ("Kandinsky5Transformer3DModel", "frame", 50),
}


def main() -> None:
    out = os.path.join(os.path.dirname(__file__), "..", "profiles")
    os.makedirs(out, exist_ok=True)
    for name, (cls, order, steps) in FAMILIES.items():
        profile = Profile(name=f"{name}-radial-uncalibrated", default=Plan("radial", (("density", 0.15),)), dense_steps=steps // 5,
                       dense_layers=(0,), order=order, calibrated=False, model={"class": cls, "config_hash": None},
                       meta={"uncalibrated": True, "source": "Radial Attention defaults: dense first 20% of steps and layer 0",
                             "made_by": "scripts/make_preset_profiles.py"})
        profile.save(os.path.join(out, f"{name}.json"))
        print(f"wrote profiles/{name}.json")


if __name__ == "__main__":
    main()
