"""Replacement processors for joint attention with the (padded) text behind the video tokens.

Both stock processors keep padded text out of attention, Mochi by dropping it per sample and
HunyuanVideo 1.5 with a full [B, 1, S, S] mask built from the key padding. Here every text slot
stays in place, the padding is excluded as keys (per-sample valid lengths, which the router reads
when the valid tokens come first; otherwise it runs dense with the mask) and its output rows are
zeroed: the same result as the stock processors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import apply_rotary_emb

from ...routing.op import attention
from .base import Routed, added_qkv, heads_last, normed, project_out, zero_padded_rows


def _mochi_rope(x, freqs_cos, freqs_sin):
    x_even, x_odd = x[..., 0::2].float(), x[..., 1::2].float()
    cos = (x_even * freqs_cos - x_odd * freqs_sin).to(x.dtype)
    sin = (x_even * freqs_sin + x_odd * freqs_cos).to(x.dtype)
    return torch.stack([cos, sin], dim=-1).flatten(-2)


def _joint(route, q, k, v, text, key_mask):
    """Video q/k/v and the text stream's, joined (text behind) and attended with padding keys excluded."""
    out = attention(torch.cat([q, text[0]], 1), torch.cat([k, text[1]], 1), torch.cat([v, text[2]], 1), key_mask, route)
    return zero_padded_rows(out, key_mask).flatten(2, 3)


class MochiRoutedProcessor(Routed):
    """MochiAttnProcessor2_0 with the router: video + valid text (back) per sample, in one batched call."""

    def __call__(self, attn: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor, image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = heads_last(attn, hidden_states)
        q, k = normed(attn.norm_q, q), normed(attn.norm_k, k)
        text = added_qkv(attn, encoder_hidden_states)
        if image_rotary_emb is not None:
            q, k = _mochi_rope(q, *image_rotary_emb), _mochi_rope(k, *image_rotary_emb)
        sv, st = q.shape[1], encoder_hidden_states.shape[1]
        key_mask = torch.cat([torch.ones(q.shape[0], sv, dtype=torch.bool, device=q.device), attention_mask.bool()], 1)
        hidden_states, encoder_hidden_states = _joint(self.route, q, k, v, text, key_mask).split_with_sizes((sv, st), dim=1)
        hidden_states = project_out(attn, hidden_states)
        if hasattr(attn, "to_add_out"):
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        return hidden_states, encoder_hidden_states


class HunyuanVideo15RoutedProcessor(Routed):
    """HunyuanVideo15AttnProcessor2_0 with the router: video + image, ByT5 and MLLM text tokens (back, valid ones
    first), the key padding mask instead of the stock [B, 1, S, S] outer product of it."""

    def __call__(self, attn: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor, image_rotary_emb: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = heads_last(attn, hidden_states)
        q, k = attn.norm_q(q), attn.norm_k(k)
        if image_rotary_emb is not None:
            q = apply_rotary_emb(q, image_rotary_emb, sequence_dim=1)
            k = apply_rotary_emb(k, image_rotary_emb, sequence_dim=1)
        text = added_qkv(attn, encoder_hidden_states)
        seq = q.shape[1] + encoder_hidden_states.shape[1]
        key_mask = F.pad(attention_mask, (seq - attention_mask.shape[1], 0), value=True).bool()
        out = _joint(self.route, q, k, v, text, key_mask).to(q.dtype)
        hidden_states, encoder_hidden_states = out[:, :-encoder_hidden_states.shape[1]], out[:, -encoder_hidden_states.shape[1]:]
        if getattr(attn, "to_out", None) is not None:
            hidden_states = project_out(attn, hidden_states)
        if getattr(attn, "to_add_out", None) is not None:
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        return hidden_states, encoder_hidden_states
