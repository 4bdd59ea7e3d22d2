"""Attention statistics: the oracle recall is right on planted attention, and a real (tiny) pipeline fills every row."""
import torch

from videoaccel.profiling import attention_stats as st


def test_recall_planted_and_uniform():
    S, H, D = 256, 2, 16
    torch.manual_seed(0)
    k = torch.randn(S, H, D)
    q = torch.zeros(S, H, D)
    rows = torch.arange(64)
    # head 0: every query of block 0 (64 tokens) matches exactly the keys of key block 2 -> all mass in one block
    q[:64, 0] = 0.0
    k[:, 0] = 0.0
    k[128:192, 0, 0] = 1.0
    q[:64, 0, 0] = 200.0
    res = st.recall(q, k, rows, 1.0, blocks=(64,))
    for d in st.DENSITIES:
        assert res[("block", 64)][d][0] > 0.999  # one of 4 blocks is enough at any density >= 1/4 ... and below
    # head 1: uniform attention (q = 0) keeps exactly the kept fraction
    for d in st.DENSITIES:
        assert abs(res[("token", 0)][d][1] - round(d * S) / S) < 1e-5


def test_measure_tiny_pipeline():
    from test_pipelines import _tiny_wan_pipeline

    pipe = _tiny_wan_pipeline()
    obs = st.measure(pipe, ["a red circle moving left"], blocks=(32, 16), query_blocks=2, progress=False, height=64, width=128,
                     num_frames=9, num_inference_steps=4, max_sequence_length=8)
    rows = obs.rows("tiny")
    keys = {(r["order"], r["block"], r["density"]) for r in rows}
    assert len(keys) == len(rows) == (2 * 2 + 1) * len(st.DENSITIES)
    assert all(0 < r["recall"] <= 1 and len(r["per_layer"]) >= 1 for r in rows)
    assert st.summary(rows).count("\n") == 5


def test_inspect_attention_cli(tmp_path):
    import json

    from test_pipelines import _tiny_wan_pipeline
    from videoaccel import cli

    model = tmp_path / "tiny-wan"
    _tiny_wan_pipeline().save_pretrained(model)
    png, js = tmp_path / "recall.png", tmp_path / "recall.json"
    import videoaccel.profiling.attention_stats as st

    import functools

    orig = st.measure
    st.measure = functools.partial(orig, blocks=(32, 16))  # the tiny model has 96 video tokens
    try:
        assert cli.main(["inspect", "--attention", "--model", str(model), "--frames", "9", "--height", "64", "--width", "128",
                         "--steps", "4", "-o", str(png), "--json", str(js)]) == 0
    finally:
        st.measure = orig
    rows = json.loads(js.read_text())["results"]
    assert png.stat().st_size > 0 and {r["order"] for r in rows} == {"any", "frame", "tile"}
