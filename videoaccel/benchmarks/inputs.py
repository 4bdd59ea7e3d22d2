"""The forward arguments of one denoising step of a benchmark case's transformer, per diffusers class.

Why per class: each family's forward takes its own conditioning (text lengths and dims from its
config, image tokens, control or pose latents, RoPE tables its pipeline computes). Random values:
the benchmark times the step, it does not generate. ``step_inputs(cls_name, config, latent, rnd, device)``
returns the keyword arguments, sized by the config, so a tiny config of the same class gets inputs
through the same code (tests/test_families.py). ``cfg``: the model's whole config (class defaults included).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

import diffusers
import torch

Rnd = Callable[..., torch.Tensor]
TEXT = 512  # padded prompt tokens of the T5 / UMT5 pipelines
JOINT_TEXT = 256  # prompt tokens joined to the video tokens (the last 56 of them padding)


def _mask(device: str, n: int = JOINT_TEXT, valid: int = JOINT_TEXT - 56) -> torch.Tensor:
    mask = torch.zeros(1, n, device=device, dtype=torch.bool)
    mask[:, :valid] = True
    return mask


def _wan(cfg, latent, rnd, device):
    f, h, w = latent
    kw = dict(hidden_states=rnd(1, cfg["in_channels"], f, h, w), encoder_hidden_states=rnd(1, TEXT, cfg["text_dim"]))
    if cfg.get("image_dim"):  # image-to-video checkpoints: CLIP image tokens
        kw["encoder_hidden_states_image"] = rnd(1, 257, cfg["image_dim"])
    return kw


def _vace(cfg, latent, rnd, device):
    return dict(_wan(cfg, latent, rnd, device), control_hidden_states=rnd(1, cfg["vace_in_channels"], *latent))


def _animate(cfg, latent, rnd, device):
    f, h, w = latent  # f: the segment's latent frames + the reference frame
    size = cfg.get("motion_encoder_size", 512)
    return dict(_wan(cfg, latent, rnd, device), pose_hidden_states=rnd(1, cfg["latent_channels"], f - 1, h, w),
                face_pixel_values=rnd(1, 3, 4 * (f - 1) - 3, size, size))


def _anyflow(cfg, latent, rnd, device):
    f, h, w = latent
    t = torch.full((1, f), 700.0, device=device)  # per latent frame, as AnyFlowPipeline passes it
    return dict(hidden_states=rnd(1, f, cfg["in_channels"], h, w), encoder_hidden_states=rnd(1, TEXT, cfg["text_dim"]),
                timestep=t, r_timestep=t)


def _hunyuan(cfg, latent, rnd, device):
    return dict(hidden_states=rnd(1, cfg["in_channels"], *latent), encoder_hidden_states=rnd(1, JOINT_TEXT, cfg["text_embed_dim"]),
                encoder_attention_mask=_mask(device), pooled_projections=rnd(1, cfg["pooled_projection_dim"]),
                guidance=torch.tensor([6000.0], device=device))


def _hunyuan15(cfg, latent, rnd, device):
    return dict(hidden_states=rnd(1, cfg["in_channels"], *latent), encoder_hidden_states=rnd(1, JOINT_TEXT, cfg["text_embed_dim"]),
                encoder_attention_mask=_mask(device).long(), encoder_hidden_states_2=rnd(1, 64, cfg["text_embed_2_dim"]),
                encoder_attention_mask_2=_mask(device, 64, 32).long(), image_embeds=rnd(1, 729, cfg["image_embed_dim"]))


def _motif(cfg, latent, rnd, device):
    return dict(hidden_states=rnd(1, cfg["in_channels"], *latent), encoder_hidden_states=rnd(1, JOINT_TEXT, cfg["text_embed_dim"]),
                encoder_attention_mask=_mask(device))


def _cogvideox(cfg, latent, rnd, device, pipeline: str = "CogVideoXPipeline"):
    f, h, w = latent
    kw = dict(hidden_states=rnd(1, f, cfg["in_channels"], h, w), encoder_hidden_states=rnd(1, cfg["max_text_seq_length"],
              cfg["text_embed_dim"]))
    if cfg.get("use_rotary_positional_embeddings"):  # the pipeline computes the RoPE tables
        ns = SimpleNamespace(vae_scale_factor_spatial=8, transformer=SimpleNamespace(config=SimpleNamespace(**cfg)))
        prepare = getattr(diffusers, pipeline)._prepare_rotary_positional_embeddings
        kw["image_rotary_emb"] = prepare(ns, h * 8, w * 8, f, torch.device(device))
    return kw


def _consisid(cfg, latent, rnd, device):
    kw = _cogvideox(cfg, latent, rnd, device, "ConsisIDPipeline")
    if cfg.get("is_train_face"):  # the face branch: an identity vector and the face ViT's hidden states per scale
        kw.update(id_cond=rnd(1, cfg["LFE_id_dim"]), id_vit_hidden=[rnd(1, 577, cfg["LFE_vit_dim"])] * cfg["LFE_num_scale"])
    return kw


def _easyanimate(cfg, latent, rnd, device):
    kw = dict(hidden_states=rnd(1, cfg["in_channels"], *latent), encoder_hidden_states=rnd(1, JOINT_TEXT, cfg["text_embed_dim"]))
    if cfg.get("text_embed_dim_t5"):
        kw["encoder_hidden_states_t5"] = rnd(1, JOINT_TEXT, cfg["text_embed_dim_t5"])
    return kw


def _cosmos(cfg, latent, rnd, device):
    kw = dict(hidden_states=rnd(1, cfg["in_channels"], *latent), encoder_hidden_states=rnd(1, TEXT, cfg["text_embed_dim"]), fps=24)
    if cfg.get("concat_padding_mask", True):  # resized by torchvision inside the forward
        kw["padding_mask"] = torch.zeros(1, 1, *latent[1:], device=device, dtype=kw["hidden_states"].dtype)
    return kw


def _kandinsky5(cfg, latent, rnd, device):
    f, h, w = latent
    channels = cfg["in_visual_dim"] * (2 if cfg.get("visual_cond") else 1) + (1 if cfg.get("visual_cond") else 0)
    _, ph, pw = cfg["patch_size"]
    return dict(hidden_states=rnd(1, f, h, w, channels), encoder_hidden_states=rnd(1, JOINT_TEXT, cfg["in_text_dim"]),
                pooled_projections=rnd(1, cfg["in_text_dim2"]), text_rope_pos=torch.arange(JOINT_TEXT, device=device),
                visual_rope_pos=[torch.arange(n, device=device) for n in (f, h // ph, w // pw)])


TIMESTEP_IN_MODEL_DTYPE = ("HunyuanVideo15Transformer3DModel", "Kandinsky5Transformer3DModel")
MAKERS: dict[str, Callable] = {
    "WanTransformer3DModel": _wan, "SkyReelsV2Transformer3DModel": _wan, "ChronoEditTransformer3DModel": _wan,
    "HeliosTransformer3DModel": _wan, "WanVACETransformer3DModel": _vace, "WanAnimateTransformer3DModel": _animate,
    "AnyFlowTransformer3DModel": _anyflow, "HunyuanVideoTransformer3DModel": _hunyuan,
    "HunyuanVideo15Transformer3DModel": _hunyuan15, "MotifVideoTransformer3DModel": _motif,
    "CogVideoXTransformer3DModel": _cogvideox, "ConsisIDTransformer3DModel": _consisid,
    "EasyAnimateTransformer3DModel": _easyanimate, "CosmosTransformer3DModel": _cosmos,
    "Kandinsky5Transformer3DModel": _kandinsky5,
}


def step_inputs(cls_name: str, cfg: dict, latent: tuple[int, int, int], rnd: Rnd, device: str) -> dict:
    """Keyword arguments of one step (``timestep`` 700 unless the family takes it per frame), ``return_dict=False``."""
    kw = MAKERS[cls_name](cfg, latent, rnd, device)
    kw.setdefault("timestep", torch.tensor([700.0], device=device))
    if cls_name in TIMESTEP_IN_MODEL_DTYPE:  # as their pipelines pass it: their time embedding takes no float32
        kw["timestep"] = kw["timestep"].to(kw["hidden_states"].dtype)
    return dict(kw, return_dict=False)
