"""What a newcomer reads (issue 30): the fidelity verdict before any speedup, unknown prompt words named once,
bad flags as one line, and PNGs that explain themselves."""
import math

import numpy as np
import pytest

from videoaccel import cli
from videoaccel.cli import loading, session
from videoaccel.metrics import NO_LOSS, PLAN_FIX, SLIGHT_LOSS, verdict


@pytest.mark.parametrize("psnr, ssim, word", [
    (34.2, 0.98, "no visible loss"), (math.inf, 1.0, "no visible loss"), (NO_LOSS[0], NO_LOSS[1], "no visible loss"),
    (28.0, 0.96, "slight loss"), (34.0, 0.90, "slight loss"),  # the worse of the two metrics decides
    (24.9, 0.97, "VISIBLE LOSS"), (31.0, SLIGHT_LOSS[1] - 0.01, "VISIBLE LOSS"), (12.8, 0.36, "VISIBLE LOSS"),
])
def test_verdict_thresholds(psnr, ssim, word):
    line = verdict(psnr, ssim, PLAN_FIX)
    assert line.startswith(f"{word} (PSNR ") and f"SSIM {ssim:.3f})" in line
    assert ("videoaccel profile" in line) == (word != "no visible loss")  # the fix follows a loss only


def _frames(path, video):
    from videoaccel.video import write_video

    write_video(video, str(path) + "/", fps=8)  # PNG frames: lossless
    return str(path) + "/"


def test_compare_says_the_verdict_before_the_table(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (3, 32, 48, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    assert cli.main(["compare", _frames(tmp_path / "a", a), _frames(tmp_path / "b", b)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[3].startswith("B against A: VISIBLE LOSS (PSNR") and out[4].split() == ["frame", "PSNR(dB)", "SSIM"]
    assert cli.main(["compare", _frames(tmp_path / "a", a), _frames(tmp_path / "c", a)]) == 0
    assert "B against A: no visible loss (PSNR inf dB, SSIM 1.000)" in capsys.readouterr().out


def _word_level():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(session.EMBEDDED / "tokenizer")


def test_unknown_words_of_the_embedded_model_are_named():
    from videoaccel.prompt_check import unknown_words

    tok = _word_level()
    assert unknown_words(tok, "a purple elephant dancing on the moon") == ["elephant", "dancing", "on", "the", "moon"]
    assert unknown_words(tok, "a Red circle slowly moving left") == []


def test_unknown_word_note_points_at_the_vocabulary():
    from types import SimpleNamespace

    from videoaccel.prompt_check import unknown_words_note

    pipe = SimpleNamespace(tokenizer=_word_level())
    note = unknown_words_note(pipe, "a purple elephant", str(session.EMBEDDED), True)
    assert note == ("note: the model does not know 'elephant' (read as <unk>, so they do not steer the video; "
                    "`videoaccel vocab` lists the words it knows)")
    assert "--model /m" in unknown_words_note(pipe, "a purple elephant", "/m", False)
    assert unknown_words_note(pipe, "a purple circle", "/m", False) is None


def test_a_subword_tokenizer_gets_no_note():
    import tokenizers
    from transformers import PreTrainedTokenizerFast

    from videoaccel.prompt_check import unknown_words

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel()
    bpe.train_from_iterator(["a red circle"], tokenizers.trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
    assert unknown_words(PreTrainedTokenizerFast(tokenizer_object=bpe), "a purple elephant dancing on the moon") == []


def test_vocab_lists_the_embedded_model_words(capsys):
    assert cli.main(["vocab"]) == 0
    head, words = capsys.readouterr().out.splitlines()
    assert "29 words" in head and "<unk>" in head and words.split()[:3] == ["a", "blue", "bouncing"]
    assert "<pad>" not in words


@pytest.mark.parametrize("argv, text", [
    (["generate", "x", "--steps", "0"], "videoaccel generate: argument --steps: '0' is not a whole number >= 1, e.g. 20"),
    (["generate"], "videoaccel generate: the following arguments are required: prompt (see videoaccel generate --help)"),
    (["generate", "x", "--bogus"], "videoaccel generate: unrecognized arguments: --bogus (see videoaccel generate --help)"),
    (["nosuch"], "videoaccel: argument command: invalid choice: 'nosuch'"),
    (["inspect", "--block", "5"], "videoaccel inspect: argument --block: invalid choice: 5"),
])
def test_bad_flags_are_one_line_without_a_usage_block(argv, text, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(text) and len(err.splitlines()) == 1 and "usage:" not in err


def test_help_keeps_its_usage(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "--help"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("usage: videoaccel generate")


def test_bench_without_a_suite_names_every_suite(capsys):
    from videoaccel.cli.parsers import SUITES

    assert cli.main(["bench"]) == 2
    err = capsys.readouterr().err
    assert all(s in err for s in SUITES) and "--self-check" in err and len(err.splitlines()) == 1


def test_hub_errors_are_not_cut(monkeypatch, capsys):
    from diffusers import DiffusionPipeline

    cause = "the model is not fully cached locally " * 8 + "and the hub cannot be reached: end-of-message"
    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", lambda *a, **k: (_ for _ in ()).throw(OSError(cause)))
    with pytest.raises(ValueError) as e:
        loading.load_pipeline("someone/some-model")
    assert str(e.value).endswith("end-of-message)")


def test_pictures_have_titled_axes_and_legends(tmp_path):
    import torch

    from videoaccel.patterns import VideoGeometry, block_mask
    from videoaccel.pictures import layout_png, profile_png, recall_png
    from videoaccel.plans import Profile

    profile_png(Profile.load(session.EMBEDDED_PROFILE), str(tmp_path / "p.png"))
    geometry = VideoGeometry.parse("4x8x8", block=16, order="tile")
    layout_png(str(tmp_path / "m.png"), block_mask("radial", geometry), geometry, "radial")
    levels = torch.where(block_mask("radial", geometry), 0, 2).to(torch.int8)
    layout_png(str(tmp_path / "l.png"), levels, geometry, "pyramid-like")
    rows = [{"order": o, "block": 64, "density": 0.15, "recall": 0.5, "per_head": [[0.2, 0.8], None, [0.5, 0.5]]}
            for o in ("frame", "tile")]
    recall_png(rows, str(tmp_path / "r.png"))
    assert all((tmp_path / n).stat().st_size > 10_000 for n in ("p.png", "m.png", "l.png", "r.png"))
    with pytest.raises(OSError, match="could not write"):
        recall_png(rows, str(tmp_path / "missing" / "r.png"))


def test_inspect_png_without_matplotlib_stops_first(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert cli.main(["inspect", str(session.EMBEDDED_PROFILE), "-o", "x.png"]) == 2
    assert "pip install -e '.[bench]'" in capsys.readouterr().err


def test_ulysses_without_gpus_is_one_line_before_any_process(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["generate", "x", "--ulysses", "2", "-o", str(tmp_path / "o.mp4")]) == 2
    assert capsys.readouterr().err == "videoaccel generate: --ulysses 2 needs 2 CUDA GPUs, this machine has 0\n"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the ranks fail for want of GPUs")
def test_failed_ranks_are_one_line_each_and_one_summary(tmp_path, capfd):
    from videoaccel.cli.ranks import run_ranks

    with pytest.raises(ValueError) as e:  # each rank finds no GPU: its own line, then the launcher's summary
        run_ranks(2, ["generate", "x", "--ulysses", "2", "-o", str(tmp_path / "o.mp4")])
    assert str(e.value).startswith("2 of 2 ranks did not finish (rank 0: ")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "(rank 0 of 2): --ulysses 2 needs 2 CUDA GPUs" in err


def test_frame_pair_panel_counts_every_frame():
    """Each block weighs in every frame its tokens fall in: at 21x30x52 in tile order (block 128) no block centre
    rounds to frame 20, which the panel showed as nothing kept under a fully kept mask."""
    import numpy as np
    import torch

    from videoaccel.patterns import VideoGeometry, block_mask
    from videoaccel.pictures import frame_pair_fraction

    g = VideoGeometry.parse("21x30x52", block=128, order="tile")
    nb = g.num_blocks
    assert np.allclose(frame_pair_fraction(torch.ones(nb, nb, dtype=torch.bool), g), 1.0)
    assert np.allclose(frame_pair_fraction(torch.full((nb, nb), -1, dtype=torch.int8), g), 0.0)
    mask = block_mask("radial", g)
    tokens = torch.bincount(torch.arange(g.video_tokens) // g.block, minlength=nb).double()
    kept_pairs = float((mask.double() * tokens[:, None] * tokens[None, :]).sum()) / g.video_tokens ** 2
    assert np.isclose(frame_pair_fraction(mask, g).mean(), kept_pairs)  # frames hold equal tokens: the mean is exact
