"""The embedded model's definition and training script, at smoke scale (training itself runs on a GPU)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from videoaccel.tiny import data
from videoaccel.tiny.model import latent_grid, tokenizer

ROOT = Path(__file__).resolve().parent.parent


def test_tokenizer_covers_every_prompt():
    tok = tokenizer()
    rng = np.random.default_rng(0)
    unk = tok.convert_tokens_to_ids("<unk>")
    for split in ("train", "heldout"):
        for _ in range(300):
            ids = tok(data.prompt(data.sample_spec(rng, split))).input_ids
            assert unk not in ids


def test_default_geometry_has_enough_tokens():
    f, h, w = latent_grid(25, 192, 320)
    assert f * h * w >= 1500


def test_training_script_smoke_saves_a_loadable_wan_pipeline(tmp_path):
    out = tmp_path / "m"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_tiny_t2v.py"), "--out", str(out), "--vae-steps", "1",
                        "--dit-steps", "1", "--frames", "9", "--height", "64", "--width", "64", "--batch", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    saved = json.loads(r.stdout.strip().splitlines()[-1])
    assert saved["largest_mb"] <= 15 and saved["weights_mb"] <= 30
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(out)
    assert pipe.vae.config.latents_std != [1.0] * len(pipe.vae.config.latents_std)  # the VAE stage recorded its statistics
    frames = pipe("a red circle slowly moving left", height=64, width=64, num_frames=9, num_inference_steps=1,
                  max_sequence_length=16, output_type="np").frames
    assert frames.shape == (1, 9, 64, 64, 3)
