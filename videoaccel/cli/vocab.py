"""`videoaccel vocab`: the words a model's text tokenizer knows, for models with a word-level vocabulary (the
embedded model knows about thirty words and reads any other as its unknown token: a prompt should use these)."""
from __future__ import annotations

import argparse
from pathlib import Path

from transformers import AutoTokenizer

from . import session

LISTED = 1000  # a vocabulary this small is word-level and worth printing; a subword one (T5: 32k) reads any word


def run(a: argparse.Namespace) -> int:
    return vocab_command(a.model)


def vocab_command(model: str | None) -> int:
    """Print the model's known words (tokenizer order), or its vocabulary size when it is a subword one."""
    model, _ = session.resolve_model(model)
    folder = Path(model) / "tokenizer"
    if not folder.is_dir():
        raise ValueError(f"{model} has no tokenizer/ folder: give a local diffusers directory with --model")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    if len(vocab) > LISTED:
        print(f"{folder}: a subword tokenizer with {len(vocab)} tokens: it reads any word (nothing to list)")
        return 0
    special = set(tokenizer.all_special_tokens)
    words = [w for w, _ in vocab if w not in special]
    print(f"{folder}: {len(words)} words; any other word is read as {tokenizer.unk_token} and does not steer the video")
    print(" ".join(words))
    return 0
