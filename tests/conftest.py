"""Run the Triton kernels in the interpreter when there is no GPU (before they are decorated); idle OpenMP
threads sleep, as under the CLI (spinning threads slow a shared CPU; videoaccel/cli main)."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads its OpenMP runtime

import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
