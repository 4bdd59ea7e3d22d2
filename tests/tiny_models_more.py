"""Tiny, randomly initialised diffusers transformers of the families added after the first five (tests only).

Same shape as tiny_models.py: 2 heads x 64, 1-2 layers, batch 2, a 5 x 8 x 8 = 320-token video grid after
patchify, float32 on CPU; ``TINY_MORE[name](seed)`` returns ``(model.eval(), kwargs)`` for ``model(**kwargs)``.
Joint text: ConsisID and EasyAnimate in front, HunyuanVideo 1.5 and Motif-Video behind (sample 2 padded),
Helios' history latents in front; the Wan-like families, Cosmos and Kandinsky 5 use cross-attention only.
"""
import torch
from diffusers import (
    AnyFlowTransformer3DModel,
    ChronoEditTransformer3DModel,
    ConsisIDTransformer3DModel,
    CosmosTransformer3DModel,
    EasyAnimateTransformer3DModel,
    HeliosTransformer3DModel,
    HunyuanVideo15Transformer3DModel,
    Kandinsky5Transformer3DModel,
    MotifVideoTransformer3DModel,
    SkyReelsV2Transformer3DModel,
    WanAnimateTransformer3DModel,
    WanVACETransformer3DModel,
)

from tiny_models import B, F, H, HEAD_DIM, HEADS, TXT, TXT_DIM, W, _text_mask, _timestep

INNER = HEADS * HEAD_DIM
WAN = dict(patch_size=(1, 2, 2), num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, text_dim=TXT_DIM, freq_dim=32,
           ffn_dim=256, rope_max_seq_len=64)


def _latents(channels: int = 4) -> torch.Tensor:
    return torch.randn(B, channels, F, 2 * H, 2 * W)


def _text(n: int = TXT, dim: int = TXT_DIM) -> torch.Tensor:
    return torch.randn(B, n, dim)


def _seeded(cls, seed: int, **config):
    torch.manual_seed(seed)
    return cls(**config).eval()


def make_skyreels(seed: int = 0):
    model = _seeded(SkyReelsV2Transformer3DModel, seed, **WAN, in_channels=4, out_channels=4, num_layers=2)
    return model, dict(hidden_states=_latents(), timestep=_timestep(), encoder_hidden_states=_text(), return_dict=False)


def make_vace(seed: int = 0):
    model = _seeded(WanVACETransformer3DModel, seed, **WAN, in_channels=4, out_channels=4, num_layers=2, vace_layers=[0],
                    vace_in_channels=8)
    return model, dict(hidden_states=_latents(), timestep=_timestep(), encoder_hidden_states=_text(),
                       control_hidden_states=_latents(8), return_dict=False)


def make_chronoedit(seed: int = 0):
    model = _seeded(ChronoEditTransformer3DModel, seed, **WAN, in_channels=4, out_channels=4, num_layers=2)
    return model, dict(hidden_states=_latents(), timestep=_timestep(), encoder_hidden_states=_text(), return_dict=False)


def make_animate(seed: int = 0):
    model = _seeded(WanAnimateTransformer3DModel, seed, **WAN, latent_channels=4, in_channels=12, out_channels=4, num_layers=2,
                    image_dim=None, motion_encoder_size=16, motion_style_dim=32, motion_dim=4, motion_encoder_dim=32,
                    motion_encoder_channel_sizes={"4": 32, "8": 32, "16": 32}, face_encoder_hidden_dim=32,
                    face_encoder_num_heads=2, inject_face_latents_blocks=2)
    return model, dict(hidden_states=_latents(12), timestep=_timestep(), encoder_hidden_states=_text(),
                       pose_hidden_states=torch.randn(B, 4, F - 1, 2 * H, 2 * W),
                       face_pixel_values=torch.randn(B, 3, 4 * (F - 1) - 3, 16, 16), return_dict=False)


def make_anyflow(seed: int = 0):
    model = _seeded(AnyFlowTransformer3DModel, seed, **WAN, in_channels=4, out_channels=4, num_layers=2)
    t = _timestep()[:, None].expand(B, F)  # per latent frame, [B, F] as AnyFlowPipeline passes it
    return model, dict(hidden_states=torch.randn(B, F, 4, 2 * H, 2 * W), timestep=t, r_timestep=t * 0.5,
                       encoder_hidden_states=_text(), return_dict=False)


def make_helios(seed: int = 0):
    model = _seeded(HeliosTransformer3DModel, seed, **{k: v for k, v in WAN.items() if k != "rope_max_seq_len"},
                    in_channels=4, out_channels=4, num_layers=2, rope_dim=(24, 20, 20))
    short = torch.randn(B, 4, 1, 2 * H, 2 * W)  # one frame of short history: 64 tokens in front of the video
    return model, dict(hidden_states=_latents(), timestep=_timestep(), encoder_hidden_states=_text(),
                       indices_hidden_states=torch.arange(1, F + 1)[None].expand(B, -1), latents_history_short=short,
                       indices_latents_history_short=torch.zeros(B, 1, dtype=torch.long), return_dict=False)


def make_hunyuan15(seed: int = 0):
    model = _seeded(HunyuanVideo15Transformer3DModel, seed, in_channels=4, out_channels=4, num_attention_heads=HEADS,
                    attention_head_dim=HEAD_DIM, num_layers=2, num_refiner_layers=1, mlp_ratio=2.0, patch_size=2,
                    text_embed_dim=TXT_DIM, text_embed_2_dim=TXT_DIM, image_embed_dim=TXT_DIM, rope_axes_dim=(16, 24, 24))
    return model, dict(hidden_states=_latents(), timestep=_timestep(), encoder_hidden_states=_text(),
                       encoder_attention_mask=_text_mask().long(), encoder_hidden_states_2=_text(4),
                       encoder_attention_mask_2=torch.ones(B, 4, dtype=torch.long),
                       image_embeds=torch.zeros(B, 4, TXT_DIM), return_dict=False)


def make_motif(seed: int = 0):
    model = _seeded(MotifVideoTransformer3DModel, seed, in_channels=4, out_channels=4, num_attention_heads=HEADS,
                    attention_head_dim=HEAD_DIM, num_layers=1, num_single_layers=1, mlp_ratio=2.0, patch_size=2,
                    text_embed_dim=TXT_DIM, rope_axes_dim=(16, 24, 24))
    return model, dict(hidden_states=_latents(), timestep=_timestep(), encoder_hidden_states=_text(),
                       encoder_attention_mask=_text_mask(), return_dict=False)


def make_consisid(seed: int = 0):
    model = _seeded(ConsisIDTransformer3DModel, seed, num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, in_channels=4,
                    out_channels=4, time_embed_dim=64, text_embed_dim=TXT_DIM, num_layers=2, sample_width=2 * W,
                    sample_height=2 * H, sample_frames=(F - 1) * 4 + 1, patch_size=2, max_text_seq_length=TXT,
                    cross_attn_interval=1, cross_attn_dim_head=32, cross_attn_num_heads=2, LFE_id_dim=32, LFE_vit_dim=32,
                    LFE_depth=1, LFE_dim_head=16, LFE_num_heads=2, LFE_num_id_token=2, LFE_num_querie=4,
                    LFE_output_dim=INNER * 2 // 3, LFE_num_scale=1, is_train_face=True)  # the perceiver's kv dim
    return model, dict(hidden_states=torch.randn(B, F, 4, 2 * H, 2 * W), encoder_hidden_states=_text(), timestep=_timestep(),
                       id_cond=torch.randn(B, 32), id_vit_hidden=[torch.randn(B, 4, 32)], return_dict=False)


def make_easyanimate(seed: int = 0):
    model = _seeded(EasyAnimateTransformer3DModel, seed, num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, in_channels=4,
                    out_channels=4, patch_size=2, sample_width=2 * W, sample_height=2 * H, num_layers=2, mmdit_layers=2,
                    time_embed_dim=64, text_embed_dim=TXT_DIM)
    return model, dict(hidden_states=_latents(), timestep=_timestep(), encoder_hidden_states=_text(), return_dict=False)


def make_cosmos(seed: int = 0):
    model = _seeded(CosmosTransformer3DModel, seed, in_channels=4, out_channels=4, num_attention_heads=HEADS,
                    attention_head_dim=HEAD_DIM, num_layers=2, mlp_ratio=2.0, text_embed_dim=TXT_DIM, adaln_lora_dim=16,
                    max_size=(8, 32, 32), patch_size=(1, 2, 2), rope_scale=(1.0, 1.0, 1.0), concat_padding_mask=False)
    return model, dict(hidden_states=_latents(), timestep=_timestep(), encoder_hidden_states=_text(), fps=24, return_dict=False)


def make_kandinsky5(seed: int = 0):
    model = _seeded(Kandinsky5Transformer3DModel, seed, in_visual_dim=4, in_text_dim=TXT_DIM, in_text_dim2=32, time_dim=32,
                    out_visual_dim=4, patch_size=(1, 2, 2), model_dim=INNER, ff_dim=256, num_text_blocks=1, num_visual_blocks=2,
                    axes_dims=(16, 24, 24))
    with torch.no_grad():  # its modulations (attention gates included) are zero-initialised: attention would not count
        for name, p in model.named_parameters():
            if "modulation.out_layer" in name:
                p.normal_(std=0.1)
    return model, dict(hidden_states=torch.randn(1, F, 2 * H, 2 * W, 4), encoder_hidden_states=_text()[:1],
                       timestep=_timestep()[:1], pooled_projections=torch.randn(1, 32), visual_rope_pos=[torch.arange(n) for n in (F, H, W)],
                       text_rope_pos=torch.arange(TXT), return_dict=False)


TINY_MORE = {"skyreels": make_skyreels, "vace": make_vace, "chronoedit": make_chronoedit, "animate": make_animate, "anyflow": make_anyflow,
             "helios": make_helios, "hunyuan15": make_hunyuan15, "motif": make_motif, "consisid": make_consisid,
             "easyanimate": make_easyanimate, "cosmos": make_cosmos, "kandinsky5": make_kandinsky5}
