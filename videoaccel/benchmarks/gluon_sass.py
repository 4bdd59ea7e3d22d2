"""`python -m videoaccel.benchmarks.gluon_sass`: offline sm90 build report of every shipped Gluon attention variant
(no GPU needed).

For each variant: compile for sm90, then from the cubin's SASS: registers per thread, shared memory,
HGMMA/QGMMA count, local-memory traffic (LDL/STL = spills; those inside the tile loops are what
costs), CTA barriers. Writes nothing.

    python -m videoaccel.benchmarks.gluon_sass [--version 3] [--dump DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile

import triton.backends.nvidia as nv

from ..kernels.gluon_attention import SHIPPED, compile_sm90
from .record import run_suite


def sass_facts(cubin: bytes) -> dict:
    """Registers, spills and MMA counts read from the cubin with triton's bundled cuobjdump."""
    tool = os.path.join(os.path.dirname(nv.__file__), "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        sass = subprocess.run([tool, "-sass", f.name], capture_output=True, text=True, check=True).stdout
        res = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    regs = re.search(r"REG:(\d+)", res)
    return {"regs": int(regs.group(1)) if regs else -1, "hgmma": sass.count("HGMMA"), "qgmma": sass.count("QGMMA"),
            "spill_ops": len(re.findall(r"\b(LDL|STL)\b", sass)), "loop_spill_ops": tile_loop_spills(sass),
            "bar_sync": sass.count("BAR.SYNC"), "sass": sass}


def tile_loop_spills(sass: str) -> int:
    """Spill loads/stores inside the tile loops: the innermost backward-branch ranges holding an MMA.

    Spills elsewhere (per work item: scalars kept across the item loop) cost a few loads per item;
    inside a tile loop they cost every tile.
    """
    ins = [(int(a, 16), text) for a, text in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    last_exit = max((a for a, text in ins if text.strip().endswith("EXIT")), default=max(a for a, _ in ins))
    # backward branches of the main body; the out-of-line mbarrier try-wait stubs after the last EXIT
    # jump back into the body but are not loops
    loops = [(int(t, 16), a) for a, text in ins if a < last_exit
             for t in re.findall(r"\bBRA\s+(?:`\()?0x([0-9a-f]+)", text) if int(t, 16) < a]
    mma = [(lo, hi) for lo, hi in loops if any(lo <= a <= hi and "GMMA" in text for a, text in ins)]
    inner = [(lo, hi) for lo, hi in mma if not any((lo, hi) != o and lo <= o[0] and o[1] <= hi for o in mma)]
    return sum(1 for a, text in ins if re.search(r"\b(LDL|STL)\b", text) and any(lo <= a <= hi for lo, hi in inner))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.gluon_sass")
    ap.add_argument("--version", type=int, nargs="*", default=None)
    ap.add_argument("--dump", default=None, help="write ptx/sass/ttgir per variant here")
    ap.add_argument("--json", action="store_true", help="one JSON object per variant (for tests)")
    args = ap.parse_args(argv)
    bad = 0
    for cfg in SHIPPED:
        if args.version and cfg.version not in args.version:
            continue
        name = f"v{cfg.version}-{cfg.dtype}-d{cfg.head_dim}-m{cfg.block_m}-n{cfg.block_n}-s{cfg.stages}"
        try:
            c = compile_sm90(cfg)
        except Exception as e:  # noqa: BLE001 - report every variant
            while e.__cause__ is not None:  # the root cause, not the nested compilation frames
                e = e.__cause__
            msg = f"{type(e).__name__}: {str(e)[-300:]}"
            print(json.dumps({"name": name, "error": msg}) if args.json else f"{name:<28} FAILED {msg}", flush=True)
            bad += 1
            continue
        f = sass_facts(c.asm["cubin"])
        if args.json:
            print(json.dumps({"name": name, "warps": c.metadata.num_warps, "smem": c.metadata.shared,
                              **{k: val for k, val in f.items() if k != "sass"}}), flush=True)
        else:
            print(f"{name:<28} warps={c.metadata.num_warps} regs={f['regs']} smem={c.metadata.shared} hgmma={f['hgmma']} "
                  f"qgmma={f['qgmma']} spill_ops={f['spill_ops']} loop_spill_ops={f['loop_spill_ops']} bar_sync={f['bar_sync']}",
                  flush=True)
        bad += f["loop_spill_ops"] > 0
        if args.dump:
            os.makedirs(args.dump, exist_ok=True)
            for ext, text in (("ptx", c.asm["ptx"]), ("ttgir", c.asm["ttgir"]), ("sass", f["sass"])):
                with open(os.path.join(args.dump, f"{name}.{ext}"), "w") as fh:
                    fh.write(text)
    return 1 if bad else 0


if __name__ == "__main__":
    run_suite(main)
