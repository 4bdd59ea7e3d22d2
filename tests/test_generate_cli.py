"""videoaccel generate / compare end to end on a tiny Wan pipeline saved as a diffusers directory."""
import re
import subprocess
import sys

import pytest

from videoaccel.video import read_video


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from test_pipelines import _tiny_wan_pipeline

    path = tmp_path_factory.mktemp("tiny") / "wan"
    _tiny_wan_pipeline().save_pretrained(path)
    return path


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "videoaccel", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_generate_writes_a_decodable_video_and_compares_with_dense(model_dir, tmp_path):
    out = tmp_path / "out.mp4"
    r = _cli("generate", "a red circle moving left", "--model", model_dir, "-o", out, "--steps", "2", "--height", "64",
             "--width", "64", "--frames", "9", "--compare-dense")
    assert r.returncode == 0, r.stderr[-2000:]
    video = read_video(out)
    assert video.shape == (9, 64, 64, 3)
    assert "attention density" in r.stdout and "speedup" in r.stdout and "PSNR" in r.stdout
    verdict = next(i for i, line in enumerate(r.stdout.splitlines()) if " (PSNR " in line)
    assert verdict < next(i for i, line in enumerate(r.stdout.splitlines()) if "speedup" in line)  # fidelity first
    r = _cli("compare", out, out)
    assert r.returncode == 0 and "PSNR" in r.stdout


@pytest.mark.parametrize("extra, msg", [
    (["--frames", "10"], "frames = 4k + 1"),
    (["-o", "/nonexistent-dir/x.mp4"], "does not exist"),
    (["--profile", "nonsense"], "unknown preset"),
])
def test_generate_errors_name_the_fix_and_write_nothing(model_dir, tmp_path, extra, msg):
    args = ["generate", "a red circle", "--model", model_dir, "--steps", "1", "--height", "64", "--width", "64", "--frames", "9",
            "-o", tmp_path / "o.mp4"] + extra
    r = _cli(*args)
    assert r.returncode != 0 and msg in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "o.mp4").exists()


def test_generate_unknown_model(tmp_path):
    r = _cli("generate", "x", "--model", tmp_path / "missing", "-o", tmp_path / "o.mp4")
    assert r.returncode != 0 and "cannot load a diffusers pipeline" in r.stderr


def test_compare_prompt_set_mode(model_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle slowly moving left\n")
    out = tmp_path / "report.json"
    r = _cli("compare", "--prompts", prompts, "--model", model_dir, "--profile", "radial:0.5", "--steps", "1", "--json", out,
             "--height", "64", "--width", "64", "--frames", "9")
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    rep = json.loads(out.read_text())
    assert rep["summary"]["prompts"] == 1 and rep["rows"][0]["expected"] == ["red", "left"]
    assert 0 < rep["summary"]["mean_attn_density"] <= 1


def test_a_notice_during_a_command_goes_above_the_progress_bar(monkeypatch, capsys):
    """A videoaccel warning while a progress bar runs is a line of its own (tqdm.write), not glued to the bar's line."""
    import logging

    from tqdm.auto import tqdm

    from videoaccel import cli

    def command(_args):
        bar = tqdm(total=3, file=sys.stderr, desc="denoising")
        bar.update()
        logging.getLogger("videoaccel").warning("videoaccel: a notice")
        bar.update(2)
        bar.close()
        return 0

    import argparse

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["vocab"].set_defaults(func=command)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["vocab"]) == 0
    lines = [x.strip() for x in re.split(r"[\r\n]", capsys.readouterr().err)]
    assert "videoaccel: a notice" in lines


def test_call_lines_count_prompts_in_the_singular_and_plural():
    from videoaccel.cli.session import prompt_count

    assert prompt_count(["a red circle"]) == "1 prompt" and prompt_count(["a", "b"]) == "2 prompts"
