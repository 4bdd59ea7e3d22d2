"""The Gluon (sm90) kernel without a GPU: kernel-choice policy, forced-backend errors, host-side tables,
and an offline sm90 build of every shipped variant (wgmma present, no spills, shared memory fits).
Correctness on the GPU: python -m videoaccel.benchmarks.gluon_smoke and .gpu_check."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import triton

from videoaccel.kernels import BlockLayout, sparse_attention
from videoaccel.kernels import attention, backends as attn
from videoaccel.kernels.backends import choose_kernel
from videoaccel.kernels.gluon_attention import GLUON_IMPORT_ERROR, SHIPPED, SMEM_LIMIT, _as_rows, always_tiles, gluon_unsupported

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("env,default,reason,want", [
    (None, False, None, ("triton", None)),  # GLUON_DEFAULT off: classic
    (None, True, None, ("gluon", None)),
    (None, True, "not sm90", ("triton", "not sm90")),  # wanted Gluon, cannot: classic, said
    ("gluon", False, None, ("gluon", None)),  # the environment overrides the default
    (" Triton ", True, None, ("triton", None)),
    ("", True, None, ("gluon", None)),  # empty: unset
])
def test_auto_choice(monkeypatch, env, default, reason, want):
    monkeypatch.setattr(attn, "GLUON_DEFAULT", default)
    assert choose_kernel("auto", env=env, gluon_reason=reason, interpret=False) == want


def test_default_keeps_the_classic_kernel_where_it_measured_faster():
    from videoaccel.kernels.gluon_attention import gluon_preferred
    assert attn.GLUON_DEFAULT
    assert gluon_preferred(64, 128) and gluon_preferred(128, 64) and not gluon_preferred(64, 64)
    slow = dict(gluon_reason=None, interpret=False, gluon_faster=False)
    assert choose_kernel("auto", env=None, **slow) == ("triton", None)  # a preference, not a fallback
    assert choose_kernel("auto", env="gluon", **slow) == ("gluon", None)  # asked for explicitly
    assert choose_kernel("gluon", env=None, **slow) == ("gluon", None)


def test_interpreter_always_runs_the_classic_kernel(monkeypatch):
    monkeypatch.setattr(attn, "GLUON_DEFAULT", True)
    kernel, why = choose_kernel("auto", env="gluon", gluon_reason=None, interpret=True)
    assert kernel == "triton" and "interpreter" in why


def test_forced_backends():
    assert choose_kernel("triton", env="gluon", gluon_reason="x", interpret=False) == ("triton", None)
    assert choose_kernel("gluon", env="triton", gluon_reason=None, interpret=False) == ("gluon", None)
    for reason, interp, match in (("not sm90", False, "not sm90"), ("the Gluon FP8 kernel (v3) takes 128-row blocks", False, "FP8"),
                                  (None, True, "interpreter")):
        with pytest.raises(ValueError, match=match):
            choose_kernel("gluon", env=None, gluon_reason=reason, interpret=interp)
    with pytest.raises(ValueError, match="VIDEOACCEL_KERNEL"):
        choose_kernel("auto", env="cudnn", gluon_reason=None, interpret=False)
    with pytest.raises(ValueError, match="unknown backend"):
        choose_kernel("flash", env=None, gluon_reason=None, interpret=False)


def test_forced_gluon_on_cpu_raises_naming_why():
    q = k = v = torch.randn(1, 64, 1, 64)
    lay = BlockLayout.dense(1, 64, 64)
    with pytest.raises(ValueError, match="backend='gluon' cannot run"):
        sparse_attention(q, k, v, lay, backend="gluon")


def test_fallback_is_counted_and_warned_once(monkeypatch):
    monkeypatch.setattr(attention, "GLUON_FALLBACKS", attention.Counter())
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for _ in range(3):
            attention._fallback("head dim 96")
    assert attention.GLUON_FALLBACKS["head dim 96"] == 3 and len(w) == 1 and "head dim 96" in str(w[0].message)


def test_unsupported_names_a_reason_and_never_raises():
    q = torch.randn(1, 64, 2, 64)
    lay = BlockLayout.dense(2, 64, 64)
    assert gluon_unsupported(q, q, q, lay)  # CPU tensors (or no Gluon): a reason, not an exception


def test_row_views():
    qkv = torch.randn(2, 10, 3, 4, 64, dtype=torch.bfloat16)
    q = qkv[:, :, 0]  # packed: row stride 3*H*D
    rows = _as_rows(q)
    assert rows.shape == (20, 256) and rows.stride() == (768, 1) and torch.equal(rows[13, 64:128], q[1, 3, 1])
    assert _as_rows(torch.randn(2, 10, 4, 64).transpose(1, 2).transpose(1, 2).contiguous()) is not None
    assert _as_rows(torch.randn(2, 4, 10, 64).transpose(1, 2)) is None  # [B, H, S, D] memory: heads not adjacent


def test_always_tiles_cut_ranges_per_sample():
    mask = torch.ones(1, 1, 2, dtype=torch.bool)
    lay = BlockLayout.from_block_mask(mask, 300, 300, block_m=128, block_n=64, q_range=(0, 100), kv_range=(0, 100),
                                      kv_always=torch.tensor([[[100, 230]], [[100, 164]]], dtype=torch.int32))
    tiles, counts = always_tiles(lay, 64)
    assert counts.tolist() == [3, 1]
    assert tiles[0].tolist() == [[100, 100, 230], [164, 164, 230], [228, 228, 230]] and tiles[1, 0].tolist() == [100, 100, 164]
    assert always_tiles(lay, 64)[0] is tiles  # cached per layout
    # FP8: V^T column start + pad 16-byte aligned; the first tile loads from before the range and masks up to it
    tiles, counts = always_tiles(lay, 64, pad=3, align=16)
    assert counts.tolist() == [3, 2]
    assert tiles[0].tolist() == [[93, 100, 230], [157, 157, 230], [221, 221, 230]]
    assert tiles[1, :2].tolist() == [[93, 100, 164], [157, 157, 164]]
    covered = {j for g, lo, hi in tiles[0].tolist() for j in range(max(lo, g), min(hi, g + 64))}
    assert covered == set(range(100, 230)) and all((g + 3) % 16 == 0 for g, _, _ in tiles[0].tolist())


def _can_compile_gluon(tmp: Path) -> str | None:
    """None if this triton compiles a trivial Gluon kernel for sm90 offline, else why not."""
    if GLUON_IMPORT_ERROR:
        return GLUON_IMPORT_ERROR
    code = ("import triton; from triton.experimental import gluon; from triton.experimental.gluon import language as gl\n"
            "from triton.backends.compiler import GPUTarget\n"
            "@gluon.jit\ndef k(X):\n    gl.store(X + gl.arange(0, 128, layout=gl.BlockedLayout([1], [32], [4], [0])), 1.0)\n"
            "triton.compile(gluon._runtime.GluonASTSource(k, signature={'X': '*fp32'}, constexprs={}), "
            "target=GPUTarget('cuda', 90, 32))\n")
    (tmp / "probe.py").write_text(code)  # @jit functions must live in a file
    p = subprocess.run([sys.executable, str(tmp / "probe.py")], capture_output=True, text=True, env=_compile_env(), timeout=300)
    return None if p.returncode == 0 else f"this triton cannot compile Gluon for sm90 offline: {p.stderr[-300:]}"


def _compile_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # the interpreter does not build Gluon
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def test_every_shipped_variant_builds_for_sm90(tmp_path):
    why = _can_compile_gluon(tmp_path)
    if why:
        pytest.skip(why)
    procs = [subprocess.Popen([sys.executable, "-m", "videoaccel.benchmarks.gluon_sass", "--json", "--version", str(v)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_compile_env()) for v in (2, 3)]
    rows = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(rows) == len(SHIPPED), err[-2000:]
    for r in rows:
        assert "error" not in r, r
        assert (r["qgmma"] if "-fp8-" in r["name"] else r["hgmma"]) > 0 and 0 < r["smem"] <= SMEM_LIMIT, r
        # no spill inside a tile loop. Known gap: v3 d128/n128 built by triton 3.9 (CI's) spills 37 ops
        # per tile; triton 3.6 (the GPU image's, where its speed is measured) spills none there
        known = triton.__version__ != "3.6.0" and "-d128-m128-n128-" in r["name"] and r["name"].startswith("v3")
        assert r["loop_spill_ops"] == 0 or (known and r["loop_spill_ops"] <= 40), r
