"""Replacement processors for joint attention with the text in front of the video tokens (SDPA called directly)."""
from __future__ import annotations

import torch
from diffusers.models.embeddings import apply_rotary_emb

from ...routing.op import attention
from .base import Routed, normed, project_out


def _rope_video(q: torch.Tensor, k: torch.Tensor, text_len: int, rope, cross: bool) -> None:
    """RoPE on the video part of [B, H, S, D] q (and k for self-attention), in place as the stock code does."""
    if rope is not None:
        q[:, :, text_len:] = apply_rotary_emb(q[:, :, text_len:], rope)
        if not cross:
            k[:, :, text_len:] = apply_rotary_emb(k[:, :, text_len:], rope)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask, route) -> torch.Tensor:
    """[B, H, S, D] q/k/v through the router -> [B, S, H * D]."""
    return attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, route).flatten(2, 3)


class CogVideoXRoutedProcessor(Routed):
    """CogVideoXAttnProcessor2_0 with the router (CogVideoX, ConsisID): text (front) + video joint attention."""

    def __call__(self, attn: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor | None = None, image_rotary_emb: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        text_len = encoder_hidden_states.size(1)
        hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        b, s, _ = hidden_states.shape
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        hd = k.shape[-1] // attn.heads
        q, k, v = (t.view(b, s, attn.heads, hd).transpose(1, 2) for t in (q, k, v))
        q, k = normed(attn.norm_q, q), normed(attn.norm_k, k)
        _rope_video(q, k, text_len, image_rotary_emb, attn.is_cross_attention)
        mask = None
        if attention_mask is not None:
            mask = attn.prepare_attention_mask(attention_mask, s, b).view(b, attn.heads, -1, attention_mask.shape[-1])
        hidden_states = project_out(attn, _attend(q, k, v, mask, self.route))
        encoder_hidden_states, hidden_states = hidden_states.split([text_len, s - text_len], dim=1)
        return hidden_states, encoder_hidden_states


class EasyAnimateRoutedProcessor(Routed):
    """EasyAnimateAttnProcessor2_0 with the router: text (front) + video, through shared projections or the
    text stream's own (``add_q_proj``, EasyAnimate V5.1's MMDiT layers)."""

    def __call__(self, attn: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor | None = None, image_rotary_emb: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        shared = attn.add_q_proj is None
        if shared:
            hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        q, k, v = (f(hidden_states).unflatten(2, (attn.heads, -1)).transpose(1, 2) for f in (attn.to_q, attn.to_k, attn.to_v))
        q, k = normed(attn.norm_q, q), normed(attn.norm_k, k)
        if not shared:
            eq, ek, ev = (f(encoder_hidden_states).unflatten(2, (attn.heads, -1)).transpose(1, 2)
                          for f in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj))
            eq, ek = normed(attn.norm_added_q, eq), normed(attn.norm_added_k, ek)
            q, k, v = torch.cat([eq, q], dim=2), torch.cat([ek, k], dim=2), torch.cat([ev, v], dim=2)
        text_len = encoder_hidden_states.shape[1]
        _rope_video(q, k, text_len, image_rotary_emb, attn.is_cross_attention)
        out = _attend(q, k, v, attention_mask, self.route).to(q.dtype)
        encoder_hidden_states, hidden_states = out[:, :text_len], out[:, text_len:]
        if getattr(attn, "to_out", None) is not None:
            hidden_states = project_out(attn, hidden_states)
        if getattr(attn, "to_add_out", None) is not None:
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        return hidden_states, encoder_hidden_states
