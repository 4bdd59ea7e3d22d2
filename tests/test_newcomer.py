"""The README's commands on the embedded model, as a newcomer runs them (tiny settings): call defaults that belong
to the model however it is named, the call printed before the work, the files written, rounded output, one flag name."""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from videoaccel.cli.session import EMBEDDED, call_kwargs, describe_call, model_defaults, resolve_model
from videoaccel.video import read_video

SMALL = ["--steps", "2", "--frames", "5", "--height", "64", "--width", "96"]
LONG_FLOAT = re.compile(r"\d\.\d{5,}")


def _cli(*args, cwd=None):
    r = subprocess.run([sys.executable, "-m", "videoaccel", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def _args(**kw):
    return {"steps": None, "frames": None, "height": None, "width": None, "guidance": None, **kw}


@pytest.mark.parametrize("name", [None, str(EMBEDDED), "assets/tiny-t2v", "assets/tiny-t2v/"])
def test_call_defaults_come_from_the_model_however_it_is_named(name, monkeypatch):
    monkeypatch.chdir(EMBEDDED.parent.parent)
    model, embedded = resolve_model(name)
    assert embedded
    defaults = json.loads((EMBEDDED / "videoaccel.json").read_text())
    call = call_kwargs(_args(), model_defaults(model))
    assert call == {"num_frames": defaults["frames"], "height": defaults["height"], "width": defaults["width"],
                    "num_inference_steps": defaults["steps"], "guidance_scale": defaults["guidance"],
                    "max_sequence_length": defaults["max_sequence_length"], "negative_prompt": defaults["negative_prompt"]}
    assert call_kwargs(_args(steps=2, frames=9), model_defaults(model))["num_inference_steps"] == 2  # flags win


def test_bad_call_defaults_name_the_key(tmp_path):
    (tmp_path / "videoaccel.json").write_text('{"frames": 25, "num_frames": 25}')
    with pytest.raises(ValueError, match="unknown keys.*num_frames"):
        model_defaults(str(tmp_path))
    (tmp_path / "videoaccel.json").write_text('{"steps": "20"}')
    with pytest.raises(ValueError, match="steps must be int"):
        model_defaults(str(tmp_path))
    assert model_defaults(str(tmp_path / "elsewhere")) == {}  # no file (a hub id): the pipeline's own defaults


def test_training_script_writes_the_defaults_it_trained_at(tmp_path):
    from videoaccel.call_defaults import write_call_defaults

    write_call_defaults(tmp_path, frames=9, height=64, width=96)
    assert call_kwargs(_args(), model_defaults(str(tmp_path)))["num_frames"] == 9


def test_the_call_line_gives_geometry_tokens_and_steps():
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(EMBEDDED)
    assert pipe.dtype.is_floating_point and pipe.text_encoder.dtype == pipe.transformer.dtype  # CPU-safe by default
    line = describe_call(pipe, call_kwargs(_args(), model_defaults(str(EMBEDDED))), str(EMBEDDED))
    assert "25 frames, height 192, width 320 (7x12x20 = 1680 video tokens), 20 steps, guidance 5.0, text 16 tokens" in line
    bare = describe_call(pipe, {}, "elsewhere")
    assert "81 frames, height 480, width 832 (21x30x52 = 32760 video tokens), 50 steps" in bare  # the pipeline's defaults, shown


def test_generate_compare_dense_writes_dense_and_side_by_side_then_compare(tmp_path):
    out = tmp_path / "out.mp4"
    stdout = _cli("generate", "a red circle slowly moving left", "--model", EMBEDDED, "-o", out, "--profile", "radial:0.1",
                  "--compare-dense", *SMALL)
    assert "5 frames, height 64, width 96 (2x4x6 = 48 video tokens), 2 steps" in stdout.splitlines()[0]
    assert re.search(r"attention density \d\.\d{3}\b", stdout) and "speedup" in stdout
    for path in (out, tmp_path / "out.dense.mp4"):
        assert read_video(path).shape == (5, 64, 96, 3)
    assert read_video(tmp_path / "out.sbs.mp4").shape[2] > 2 * 96
    stdout = _cli("compare", "out.dense.mp4", "out.mp4", "--side-by-side", "sbs.mp4", "--json", "metrics.json", cwd=tmp_path)
    assert "PSNR" in stdout and (tmp_path / "sbs.mp4").exists() and json.loads((tmp_path / "metrics.json").read_text())["frames"] == 5


def test_profile_defaults_to_the_embedded_model_then_compare_prompts(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle slowly moving left\n")
    small = ["--steps", "2", "--frames", "9", "--height", "64", "--width", "128"]
    stdout = _cli("profile", "--prompts", prompts, "-o", tmp_path / "my.json", "--target-density", "0.25", "--block", "16", "--no-probe",
                  *small)
    assert "WanPipeline" in stdout and "(3x4x8 = 96 video tokens), 2 steps" in stdout and "videoaccel.json" in stdout
    assert (tmp_path / "my.json").exists() and not LONG_FLOAT.search(stdout)
    stdout = _cli("compare", "--prompts", prompts, "--model", "assets/tiny-t2v", "--profile", tmp_path / "my.json",
                  "--json", tmp_path / "report.json", *small, cwd=EMBEDDED.parent.parent)
    assert "96 video tokens" in stdout and re.search(r"attention density \d\.\d{3},", stdout)
    assert not LONG_FLOAT.search(stdout)
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["prompts"] == 1


def test_one_flag_name_for_one_option_everywhere():
    from videoaccel.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags: dict[str, set] = {}
    for parser in sub.choices.values():
        for action in parser._actions:
            if action.option_strings:
                flags.setdefault(action.dest, set()).add(tuple(action.option_strings))
    assert all(len(spellings) == 1 for spellings in flags.values()), {d: s for d, s in flags.items() if len(s) > 1}
    assert "num_frames" not in flags


def test_readme_commands_use_the_flags_that_exist():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "--num-frames" not in readme and "videoaccel compare out.dense.mp4 out.mp4" in readme


def test_readme_is_a_short_guide_without_commit_hashes():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert not re.findall(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b", readme)  # provenance lives in bench/*.json
    for block in ("headline-table", "first-run", "cpu-times"):  # generated by scripts/render_readme.py
        body = readme.split(f"<!-- {block}:start -->")[1].split(f"<!-- {block}:end -->")[0]
        assert body.strip(), block
    assert "no visible loss (PSNR" in readme and "VISIBLE LOSS (PSNR" in readme  # the verdict comes with each example


def test_render_readme_leaves_the_committed_files_as_they_are(tmp_path, monkeypatch):
    import importlib.util
    import shutil

    root = Path(__file__).resolve().parent.parent
    for sub in ("bench", "docs", "scripts"):
        shutil.copytree(root / sub, tmp_path / sub)
    shutil.copy(root / "README.md", tmp_path / "README.md")
    spec = importlib.util.spec_from_file_location("render_readme", tmp_path / "scripts" / "render_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()
    for name in ("README.md", "docs/gpu-results.md", "docs/embedded-model.md"):
        assert (tmp_path / name).read_text() == (root / name).read_text(), f"{name}: run python scripts/render_readme.py"


def test_shipped_profile_runs_the_densities_it_asks_at_its_geometry():
    """The first run prints no density miss: every static plan of the shipped profile fits to its own density
    on the geometry it was calibrated at."""
    from videoaccel.patterns import PATTERNS, VideoGeometry, fit_density, mask_density
    from videoaccel.plans import Profile

    profile = Profile.load(Path(__file__).resolve().parent.parent / "profiles" / "tiny-t2v.json")
    f, h, w, _ = profile.meta["geometry"]
    g = VideoGeometry(f, h, w, block=profile.block, order=profile.order)
    asked = {(p.pattern, p.kwargs["density"]) for bucket in profile.layers.values() for heads in bucket for p in heads
             if "density" in p.kwargs and not PATTERNS[p.pattern].scored}
    assert asked
    for name, d in asked:
        assert abs(mask_density(fit_density(name, g, d)[1], g) - d) < 1e-3, (name, d)
