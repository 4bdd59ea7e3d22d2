"""Replacement self-attention processors for models whose stock processors call SDPA directly.

CogVideoX and Mochi call ``F.scaled_dot_product_attention`` themselves, so no dispatch hook sees
their attention. These processors do what the stock ones (diffusers 0.42) do, step for step, and
hand the joint text+video attention to the router instead (one call for the whole batch).
"""
from __future__ import annotations

import torch
from diffusers.models.embeddings import apply_rotary_emb

from ..routing import AttentionRouter
from ..routing.op import attention, route_tensor


class _Routed:
    """A replacement processor bound to one layer of a router (its route tensor, for the custom op)."""

    def __init__(self, router: AttentionRouter, layer: int):
        self.router, self.layer, self.route = router, layer, route_tensor(router.id, layer)


class CogVideoXRoutedProcessor(_Routed):
    """CogVideoXAttnProcessor2_0 with the router: text (front) + video joint attention."""

    def __call__(self, attn: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor | None = None, image_rotary_emb: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        text_len = encoder_hidden_states.size(1)
        hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        b, s, _ = hidden_states.shape
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        hd = k.shape[-1] // attn.heads
        q, k, v = (t.view(b, s, attn.heads, hd).transpose(1, 2) for t in (q, k, v))
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        if image_rotary_emb is not None:
            q[:, :, text_len:] = apply_rotary_emb(q[:, :, text_len:], image_rotary_emb)
            if not attn.is_cross_attention:
                k[:, :, text_len:] = apply_rotary_emb(k[:, :, text_len:], image_rotary_emb)
        mask = None
        if attention_mask is not None:
            mask = attn.prepare_attention_mask(attention_mask, s, b).view(b, attn.heads, -1, attention_mask.shape[-1])
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, self.route)
        hidden_states = out.reshape(b, s, attn.heads * hd)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        encoder_hidden_states, hidden_states = hidden_states.split([text_len, s - text_len], dim=1)
        return hidden_states, encoder_hidden_states


def _mochi_rope(x, freqs_cos, freqs_sin):
    x_even, x_odd = x[..., 0::2].float(), x[..., 1::2].float()
    cos = (x_even * freqs_cos - x_odd * freqs_sin).to(x.dtype)
    sin = (x_even * freqs_sin + x_odd * freqs_cos).to(x.dtype)
    return torch.stack([cos, sin], dim=-1).flatten(-2)


class MochiRoutedProcessor(_Routed):
    """MochiAttnProcessor2_0 with the router: video + valid text (back) per sample, in one batched call.

    The stock processor keeps each sample's valid text tokens and zero-pads the rest; here all text
    slots stay in place, the padding is excluded as keys (per-sample valid lengths) and its output
    rows are zeroed, which is the same result when the valid tokens come first (checked; otherwise
    the router runs dense with the mask)."""

    def __call__(self, attn: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor, image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = (f(hidden_states).unflatten(2, (attn.heads, -1)) for f in (attn.to_q, attn.to_k, attn.to_v))
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        eq, ek, ev = (f(encoder_hidden_states).unflatten(2, (attn.heads, -1)) for f in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj))
        if attn.norm_added_q is not None:
            eq = attn.norm_added_q(eq)
        if attn.norm_added_k is not None:
            ek = attn.norm_added_k(ek)
        if image_rotary_emb is not None:
            q, k = _mochi_rope(q, *image_rotary_emb), _mochi_rope(k, *image_rotary_emb)
        sv, st = q.shape[1], eq.shape[1]
        key_mask = torch.cat([torch.ones(q.shape[0], sv, dtype=torch.bool, device=q.device), attention_mask.bool()], 1)
        out = attention(torch.cat([q, eq], 1), torch.cat([k, ek], 1), torch.cat([v, ev], 1), key_mask, self.route)
        out = out * key_mask[:, :, None, None].to(out.dtype)  # padded text rows: zeros, as the stock processor
        hidden_states, encoder_hidden_states = out.flatten(2, 3).split_with_sizes((sv, st), dim=1)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if hasattr(attn, "to_add_out"):
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        return hidden_states, encoder_hidden_states


REPLACEMENTS = {"cogvideox": CogVideoXRoutedProcessor, "mochi": MochiRoutedProcessor}
