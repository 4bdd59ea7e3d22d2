"""The shipped embedded model: real Wan classes, size limits, its calibrated profile, and generate's defaults."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from videoaccel.cli.session import EMBEDDED, EMBEDDED_PROFILE
from videoaccel.video import read_video


def test_weights_are_small_fp16_safetensors():
    files = list(EMBEDDED.rglob("*.safetensors"))
    assert files, "assets/tiny-t2v holds no weights"
    sizes = [f.stat().st_size for f in files]
    assert max(sizes) <= 15 * 2 ** 20 and sum(sizes) <= 30 * 2 ** 20
    from safetensors import safe_open

    for f in files:  # the transformer and the VAE in fp16; the 1.3 MB text encoder stays fp32 (no fp16-on-CPU warning)
        with safe_open(str(f), "pt") as st:
            dtype = st.get_tensor(next(iter(st.keys()))).dtype
        assert dtype == (torch.float32 if f.parent.name == "text_encoder" else torch.float16), f


def test_loads_as_a_wan_pipeline_and_its_profile_matches():
    from diffusers import WanPipeline

    import videoaccel
    from videoaccel.plans import Profile

    pipe = WanPipeline.from_pretrained(EMBEDDED)
    assert type(pipe.transformer).__name__ == "WanTransformer3DModel" and type(pipe.vae).__name__ == "AutoencoderKLWan"
    prof = Profile.load(EMBEDDED_PROFILE)
    assert prof.calibrated and prof.meta["geometry"][:3] == [7, 12, 20]  # calibrated at the default geometry
    videoaccel.accelerate(pipe, prof)  # fingerprint (class and config hash) matches the shipped weights
    videoaccel.restore(pipe)


@pytest.mark.timeout(600)
def test_generate_defaults_to_the_embedded_model_and_its_profile(tmp_path):
    out = tmp_path / "o.mp4"
    r = subprocess.run([sys.executable, "-m", "videoaccel", "generate", "a red circle slowly moving left", "-o", str(out),
                        "--steps", "2", "--frames", "9", "--height", "64", "--width", "96"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "attention density" in r.stdout
    assert read_video(out).shape == (9, 64, 96, 3)


def test_shipped_benchmarks_record_adherence_and_fidelity():
    bench = Path(__file__).resolve().parent.parent / "bench"
    tiny = json.loads(next(bench.glob("tiny-model-*.json")).read_text())["results"][0]
    assert tiny["case"].startswith("heldout-") and 0 <= tiny["colour"] <= 1 and 0 <= tiny["direction"] <= 1
    fid = json.loads(next(bench.glob("fidelity-*.json")).read_text())["results"]
    assert {r["impl"] for r in fid} >= {"dense"} and any(r.get("calibrated") or r.get("oracle") for r in fid)
