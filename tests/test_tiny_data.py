"""Tiny toy-world data: determinism, held-out split, and that the prompt-adherence detector is trustworthy
(clean and blurred+noisy clips, train and held-out combos, two resolutions) before it is used to score a model."""
import cv2
import numpy as np
import pytest

from videoaccel.tiny import data, scene
from videoaccel.tiny.detect import detect, score

SIZES = [(17, 64, 64), (21, 96, 160)]


def test_determinism_shapes_dtypes():
    a = scene.batch(np.random.default_rng(3), 4, 9, 32, 48, "train")
    b = scene.batch(np.random.default_rng(3), 4, 9, 32, 48, "train")
    c = scene.batch(np.random.default_rng(4), 4, 9, 32, 48, "train")
    assert a[0].shape == (4, 9, 32, 48, 3) and a[0].dtype == np.uint8
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]
    assert a[1] != c[1]
    assert all(isinstance(p, str) and p == data.prompt(s) for p, s in zip(a[1], a[2]))
    assert data.heldout_prompts() == data.heldout_prompts()
    assert len(data.heldout_prompts(7, seed=1)) == 7
    spec = a[2][0]
    assert np.array_equal(scene.render(spec, 5, 20, 30), scene.render(spec, 5, 20, 30))


def test_prompt_grammar():
    spec = data.ClipSpec("red", "circle", "left", "slowly", False, ((0, 0, 0), (0, 0, 0)), 0.1, (0.8, 0.5))
    assert data.prompt(spec) == "a red circle slowly moving left"
    assert data.prompt(data.ClipSpec("blue", "square", "up-right", "quickly", True, ((0, 0, 0),) * 2, 0.1,
                                     (0.5, 0.5))) == "a blue square quickly bouncing up-right"


def test_heldout_split():
    n_all = len(data.ALL_COMBOS)
    assert abs(len(data.HELDOUT_COMBOS) / n_all - 0.15) < 0.01
    rng = np.random.default_rng(0)
    train = [data.sample_spec(rng, "train") for _ in range(3000)]
    triples = {(s.colour, s.shape, s.direction) for s in train}
    assert not triples & data.HELDOUT_COMBOS
    assert {s.colour for s in train} == set(data.COLOURS)
    assert {s.shape for s in train} == set(data.SHAPES)
    assert {s.direction for s in train} == set(data.DIRECTIONS)
    assert {s.speed for s in train} == {"slowly", "quickly"} and {s.bouncing for s in train} == {True, False}
    held = [data.sample_spec(rng, "heldout") for _ in range(200)] + [s for _, s in data.heldout_prompts()]
    assert all(data.is_heldout(s) for s in held)
    assert {(s.colour, s.shape, s.direction) for _, s in data.heldout_prompts()} == data.HELDOUT_COMBOS
    # backgrounds are clearly distinct from the shape colour, and sometimes gradients
    for s in train[:500]:
        lab = data.to_lab(np.float32(s.background))
        assert np.linalg.norm(lab - data.to_lab(data.COLOURS[s.colour]), axis=-1).min() >= data.MIN_BG_DELTA_E
    assert any(s.background[0] != s.background[1] for s in train)


def test_motion_in_frame():
    rng = np.random.default_rng(5)
    for _ in range(300):
        s = data.sample_spec(rng)
        xy = data.trajectory(s, 17, 64, 96)
        assert (xy >= 0).all() and (xy[:, 0] <= 96).all() and (xy[:, 1] <= 64).all()
        step = np.linalg.norm((xy[-1] - xy[0]) / (96, 64))
        if not s.bouncing:
            assert abs(step - data.SPEEDS[s.speed]) < 1e-6
        else:  # the first bounce comes after the first ~half of the clip
            d = np.sign(data.DIRECTIONS[s.direction])
            assert (np.diff(xy[:9], axis=0) * d >= -1e-9).all()


def _corrupt(clips, seed=0):
    """What a blurry, noisy generator might produce: GaussianBlur(5x5) then additive N(0, 8^2) noise.
    (cv2.randn: ~4x faster than numpy's normal here, which keeps the test file quick.)"""
    cv2.setRNGSeed(seed)
    out = []
    for clip in clips:
        blurred = np.stack([cv2.GaussianBlur(x, (5, 5), 0) for x in clip]).astype(np.float32)
        noise = cv2.randn(np.empty((blurred.size // blurred.shape[-1] // blurred.shape[-2], blurred.shape[-2] * 3),
                                   np.float32), 0.0, 8.0)
        out.append(np.clip(blurred + noise.reshape(blurred.shape), 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module", params=SIZES, ids=lambda s: "x".join(map(str, s)))
def clip_sets(request):
    f, h, w = request.param
    clips, _, specs = scene.batch(np.random.default_rng(11), 200, f, h, w, "train")
    held = [s for _, s in data.heldout_prompts(50)]
    hclips = [scene.render(s, f, h, w) for s in held]
    return {"train": (list(clips), specs), "heldout": (hclips, held)}


@pytest.mark.parametrize("split", ["train", "heldout"])
@pytest.mark.parametrize("corrupted", [False, True], ids=["clean", "blur_noise"])
def test_detector_accuracy(clip_sets, split, corrupted):
    clips, specs = clip_sets[split]
    if corrupted:
        clips = _corrupt(clips)
    res = score(clips, specs)
    assert res["n"] == len(specs)
    assert res["colour"] >= 0.95 and res["direction"] >= 0.95, res


def test_detector_static_and_empty():
    blank = np.full((9, 32, 32, 3), 40, np.uint8)
    assert detect(blank).colour == "none"
    spec = data.ClipSpec("green", "square", "right", "slowly", False, ((20, 20, 60),) * 2, 0.12, (0.5, 0.5))
    clip = scene.render(spec, 9, 48, 48)
    still = np.repeat(clip[:1], 9, axis=0)
    d = detect(still)
    assert d.colour == "green" and d.direction == "none"
    d = detect(clip)
    assert d.direction == "right" and abs(d.dx - 1 / 3) < 0.05 and abs(d.dy) < 0.02
