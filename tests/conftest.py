"""Run the Triton kernels in the interpreter when there is no GPU (before they are decorated)."""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
