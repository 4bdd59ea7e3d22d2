"""Prompt files read with errors that name the file and the fix, and valid but unusual prompts said once
instead of silently generating something else."""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from .files import read_text

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline


def read_prompts(path: str) -> list[str]:
    """The prompts of a text file, one a line ('#' starts a comment line); ValueError (FileNotFoundError when
    missing) naming the file and the fix for a directory, a binary or non-UTF-8 file, or no prompts."""
    text = read_text(path, "prompts file", "a UTF-8 text file with one prompt per line")
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not prompts:
        raise ValueError(f"prompts file {path} holds no prompts: write one prompt per line")
    return prompts


def empty_prompt_note(prompt: str) -> str | None:
    if prompt.strip():
        return None
    return "note: the prompt is empty, so the video is unconditioned (give a prompt to steer it)"


def unknown_words(tokenizer, prompt: str) -> list[str]:
    """The words of ``prompt`` that ``tokenizer`` reads as its unknown token (a word-level vocabulary such as the
    embedded model's drops them; a subword tokenizer spells almost any word, so it rarely has one)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return []
    words = dict.fromkeys(prompt.split())
    return [w for w in words if unk in tokenizer(w, add_special_tokens=False)["input_ids"]]


def unknown_words_note(pipe: DiffusionPipeline, prompt: str, model: str, embedded: bool) -> str | None:
    """One note naming the prompt's unknown words and the command that lists the words the model knows."""
    tokenizer = getattr(pipe, "tokenizer", None)
    words = unknown_words(tokenizer, prompt) if tokenizer is not None else []
    if not words:
        return None
    listing = "videoaccel vocab" + ("" if embedded else f" --model {model}")
    return (f"note: the model does not know {', '.join(map(repr, words))} (read as {tokenizer.unk_token}, so they do not "
            f"steer the video; `{listing}` lists the words it knows)")


def long_prompt_note(pipe: DiffusionPipeline, prompt: str, call: dict) -> str | None:
    """A note when the pipeline's tokenizer will cut ``prompt`` at its maximum sequence length."""
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None or not prompt.strip():
        return None
    limit = call.get("max_sequence_length")
    if limit is None:
        param = inspect.signature(pipe.__call__).parameters.get("max_sequence_length")
        limit = param.default if param is not None and isinstance(param.default, int) else tokenizer.model_max_length
    n = len(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    if n <= limit:
        return None
    return (f"note: the prompt is {n} tokens, the model reads the first {limit}: the rest is ignored "
            "(shorten the prompt to control all of it)")
