"""The embedded tiny text-to-video model: real Wan diffusers classes at a size a CPU can run.

Same code path users run on real Wan: ``WanPipeline`` with ``WanTransformer3DModel``,
``AutoencoderKLWan``, a small ``UMT5EncoderModel``, a word-level tokenizer (``tokenizers``) and the
stock flow-matching scheduler, saved as a diffusers directory. The default geometry (25 frames at
192 x 320) gives 7 x 12 x 20 = 1680 video tokens per sample, enough for sparse patterns to matter.
"""
from __future__ import annotations

import tokenizers
import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from .data import CAMERAS, COLOURS, DIRECTIONS, SHAPES, ClipSpec, prompt

DEFAULT_FRAMES, DEFAULT_HEIGHT, DEFAULT_WIDTH = 25, 192, 320
TESTBED = (49, 384, 640)  # frames, height, width: 13 x 24 x 40 = 12480 tokens, the GPU fidelity geometry
Z_DIM = 8
TEXT_LEN = 16
SPECIAL = ["<pad>", "</s>", "<unk>"]


def vocabulary() -> list[str]:
    """Every word the prompt grammar can produce, plus the special tokens. Words added by a later data version go
    at the end, so token ids of an earlier model stay valid when it is trained further."""
    def words(cameras) -> set[str]:
        out: set[str] = set()
        for c in COLOURS:
            for s in SHAPES:
                for d in DIRECTIONS:
                    for speed in ("slowly", "quickly"):
                        for bouncing in (False, True):
                            for cam in cameras:
                                spec = ClipSpec(c, s, d, speed, bouncing, ((0, 0, 0),) * 2, 0.1, (0.5, 0.5), camera=cam)
                                out.update(prompt(spec).lower().split())
        return out

    v1 = words(CAMERAS[:1])
    return SPECIAL + sorted(v1) + sorted(words(CAMERAS) - v1)


def tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(vocabulary())}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = tokenizers.normalizers.Lowercase()
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()  # "up-left" is one word
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=TEXT_LEN)


def components(seed: int = 0) -> dict:
    """Freshly initialised pipeline components (the training script trains them)."""
    torch.manual_seed(seed)
    tok = tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tok), d_model=128, d_kv=32, d_ff=256, num_layers=2, num_heads=4,
                                               relative_attention_num_buckets=16, dropout_rate=0.0))
    vae = AutoencoderKLWan(base_dim=32, z_dim=Z_DIM, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True],
                           latents_mean=[0.0] * Z_DIM, latents_std=[1.0] * Z_DIM)
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=64, in_channels=Z_DIM,
                                        out_channels=Z_DIM, text_dim=128, freq_dim=64, ffn_dim=1024, num_layers=8,
                                        cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=256)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return dict(tokenizer=tok, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler)
