"""`videoaccel inspect --attention`: how sparse a model's self-attention is (oracle recall per layer and head during
real generations), as text, PNG and bench-format JSON."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..benchmarks.record import header
from ..files import check_writable, write_json
from ..pictures import recall_png, require
from ..profiling import attention_stats
from . import loading, session


def run(a: argparse.Namespace) -> int:
    if a.output:
        require()
    return attention_command(a.model, a.prompts, vars(a), a.output, a.json)


def attention_command(model: str | None, prompts_file: str | None, flags: dict, output: str | None, json_out: str | None) -> int:
    """inspect --attention: how sparse is this model's self-attention (oracle recall during real generations)."""
    for out in (output, json_out):
        if out:
            check_writable(out)
    prompts = session.read_prompts(prompts_file) if prompts_file else ["a red circle slowly moving left"]
    model, _ = session.resolve_model(model)
    call = session.call_kwargs(flags, session.model_defaults(model))
    pipe = loading.load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    print(session.describe_call(pipe, call, model) + f"; attention statistics on {session.prompt_count(prompts)} (dense)", flush=True)
    obs = attention_stats.measure(pipe, prompts, **call)
    rows = obs.rows(Path(model).name)
    print(attention_stats.summary(rows))
    if output:
        recall_png(rows, output)
        print(f"wrote {output} (oracle recall at density 0.15 by layer x head, one panel per token order)")
    if json_out:
        write_json(header("attention-recall", "videoaccel " + " ".join(sys.argv[1:]), rows), json_out)
        print(f"wrote {json_out}")
    return 0
