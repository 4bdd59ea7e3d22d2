"""Several processes for one command (``generate --ulysses N``): this module starts them itself with torchrun's
launcher, so that a failure reads as each rank's one line and one summary, not as the launcher's traceback (which
a bare ``torchrun`` prints after any failed rank, whatever the rank printed)."""
from __future__ import annotations

import logging
import os
import sys

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch


def launched() -> bool:
    """Whether this process is one rank of a launched group (torchrun or ``run_ranks`` set WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ


def run_ranks(n: int, argv: list[str]) -> int:
    """Run ``python -m videoaccel *argv`` as ``n`` ranks on this host; 0 when every rank succeeds, else ValueError
    with one line naming the failed ranks (each printed its own message first)."""
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # its lines repeat what the ranks said
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=n, run_id="videoaccel", rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0)
    try:
        elastic_launch(config, sys.executable)("-m", "videoaccel", *argv)
    except ChildFailedError as e:
        failed = sorted(e.failures.items())
        codes = "; ".join(f"rank {r}: " + ("stopped" if f.exitcode < 0 else f"exit code {f.exitcode}") for r, f in failed)
        raise ValueError(f"{len(failed)} of {n} ranks did not finish ({codes}); the first failure's message is above") from None
    return 0
