"""Tiny, randomly initialised diffusers video transformers for tests of the videoaccel diffusers integration.

Every model runs on CPU in float32 with 2 attention heads of head dim 64 (inner dim 128), 1-2 layers,
batch size 2 and a latent token grid of 5 x 8 x 8 = 320 video tokens after patchify, so one forward
takes well under a second. ``TINY[name](seed)`` returns ``(model.eval(), kwargs)`` for ``model(**kwargs)``
(``return_dict=False``); ``GRID[name]`` is the (frames, height, width) token grid the transformer sees.

Text handling: CogVideoX puts text in front of the video tokens, HunyuanVideo and Mochi put it after
(with the last text tokens of sample 2 padded via ``encoder_attention_mask``), Wan and LTX only use
cross-attention.
"""

import time

import torch
from diffusers import (
    CogVideoXTransformer3DModel,
    HunyuanVideoTransformer3DModel,
    LTXVideoTransformer3DModel,
    MochiTransformer3DModel,
    WanTransformer3DModel,
)

HEADS, HEAD_DIM = 2, 64
B, TXT, TXT_DIM = 2, 8, 32  # batch, text tokens, text embedding dim
F, H, W = 5, 8, 8  # latent token grid after patchify
GRID = {name: (F, H, W) for name in ("wan", "hunyuan", "cogvideox", "ltx", "mochi")}


def _timestep() -> torch.Tensor:
    return torch.tensor([900.0, 300.0])


def _text_mask(valid=(TXT, TXT - 3)) -> torch.Tensor:
    """[B, TXT] bool mask, True for the first ``valid[i]`` tokens of sample i (padding at the end)."""
    return torch.arange(TXT)[None, :] < torch.tensor(valid)[:, None]


def make_wan(seed: int = 0):
    torch.manual_seed(seed)
    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, in_channels=4,
        out_channels=4, text_dim=TXT_DIM, freq_dim=32, ffn_dim=256, num_layers=2, rope_max_seq_len=64,
    )
    kwargs = dict(
        hidden_states=torch.randn(B, 4, F, 2 * H, 2 * W),
        timestep=_timestep(),
        encoder_hidden_states=torch.randn(B, TXT, TXT_DIM),
        return_dict=False,
    )
    return model.eval(), kwargs


def make_hunyuan(seed: int = 0):
    torch.manual_seed(seed)
    model = HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, mlp_ratio=2.0, patch_size=2, patch_size_t=1,
        guidance_embeds=False, text_embed_dim=TXT_DIM, pooled_projection_dim=32, rope_axes_dim=(16, 24, 24),
    )
    kwargs = dict(
        hidden_states=torch.randn(B, 4, F, 2 * H, 2 * W),
        timestep=_timestep(),
        encoder_hidden_states=torch.randn(B, TXT, TXT_DIM),
        encoder_attention_mask=_text_mask().float(),  # valid lengths [8, 5]; pipeline passes float
        pooled_projections=torch.randn(B, 32),
        return_dict=False,
    )
    return model.eval(), kwargs


def make_cogvideox(seed: int = 0):
    torch.manual_seed(seed)
    model = CogVideoXTransformer3DModel(
        num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, in_channels=4, out_channels=4, time_embed_dim=64,
        text_embed_dim=TXT_DIM, num_layers=2, sample_width=2 * W, sample_height=2 * H,
        sample_frames=(F - 1) * 4 + 1, patch_size=2, max_text_seq_length=TXT,
    )
    kwargs = dict(
        hidden_states=torch.randn(B, F, 4, 2 * H, 2 * W),  # [B, F, C, H, W]
        encoder_hidden_states=torch.randn(B, TXT, TXT_DIM),  # text goes in front of the video tokens
        timestep=_timestep(),
        return_dict=False,
    )
    return model.eval(), kwargs


def make_ltx(seed: int = 0):
    torch.manual_seed(seed)
    model = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM, cross_attention_dim=HEADS * HEAD_DIM, num_layers=2, caption_channels=TXT_DIM,
    )
    kwargs = dict(
        hidden_states=torch.randn(B, F * H * W, 8),  # already patchified [B, S, C]
        encoder_hidden_states=torch.randn(B, TXT, TXT_DIM),
        timestep=_timestep(),
        encoder_attention_mask=torch.ones(B, TXT, dtype=torch.bool),
        num_frames=F, height=H, width=W,
        return_dict=False,
    )
    return model.eval(), kwargs


def make_mochi(seed: int = 0):
    torch.manual_seed(seed)
    model = MochiTransformer3DModel(
        patch_size=2, num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, num_layers=2,
        pooled_projection_dim=32, in_channels=4, text_embed_dim=TXT_DIM, time_embed_dim=32, max_sequence_length=TXT,
    )
    with torch.no_grad():  # learned RoPE frequencies are zero-initialised (= no RoPE); make them non-trivial
        model.pos_frequencies.normal_(std=0.5)
    kwargs = dict(
        hidden_states=torch.randn(B, 4, F, 2 * H, 2 * W),
        encoder_hidden_states=torch.randn(B, TXT, TXT_DIM),
        timestep=_timestep(),
        encoder_attention_mask=_text_mask(),  # valid lengths [8, 5]; pipeline passes bool
        return_dict=False,
    )
    return model.eval(), kwargs


TINY = {"wan": make_wan, "hunyuan": make_hunyuan, "cogvideox": make_cogvideox, "ltx": make_ltx, "mochi": make_mochi}


if __name__ == "__main__":
    for name, make in TINY.items():
        model, kwargs = make()
        with torch.no_grad():
            model(**kwargs)  # warm-up
            t0 = time.perf_counter()
            out = model(**kwargs)[0]
            dt = time.perf_counter() - t0
        assert torch.isfinite(out).all(), name
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{name:10s} grid={GRID[name]} out={tuple(out.shape)} params={n_params / 1e6:.2f}M {dt * 1e3:.1f} ms")
    print("ok")
