"""The embedded model's definition and training script, at smoke scale (training itself runs on a GPU)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from videoaccel.tiny import data
from videoaccel.pipelines.models import wan_latent_grid as latent_grid
from videoaccel.tiny.model import tokenizer

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
                        "--dit-steps", "1", "--frames", "9", "--height", "64", "--width", "64", "--vae-batch", "1", "--vae-frames", "5",
                        "--vae-crop", "32", "--geometries", "9x64x64:2", "--fresh", "1", "--pool", "2", "--workers", "0"],
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


def test_heldout_generation_does_not_depend_on_the_batch():
    """One generator per prompt: a held-out video is the same whether made alone or in a batch (dense and
    accelerated runs of the fidelity benchmark compare the same noise)."""
    from test_pipelines import _tiny_wan_pipeline

    from videoaccel.tiny import evaluate

    pipe = _tiny_wan_pipeline()
    prompts, seeds, specs = evaluate.heldout(3)
    assert len(set(prompts)) == 3 and all(data.is_heldout(s) for s in specs)
    call = dict(num_inference_steps=2, height=32, width=32, num_frames=5, max_sequence_length=8)
    together, _ = evaluate.generate(pipe, prompts, seeds, batch=3, **call)
    alone, _ = evaluate.generate(pipe, prompts[1:2], seeds[1:2], batch=1, **call)
    assert together[1].shape == (5, 32, 32, 3)
    assert np.abs(together[1].astype(int) - alone[0].astype(int)).max() <= 1
    assert np.abs(together[0].astype(int) - together[1].astype(int)).max() > 1
