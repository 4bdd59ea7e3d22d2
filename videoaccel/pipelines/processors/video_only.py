"""Replacement processor for self-attention over the video tokens alone."""
from __future__ import annotations

import torch
from diffusers.models.embeddings import apply_rotary_emb

from ...routing.op import attention
from .base import Routed, project_out


class CosmosRoutedProcessor(Routed):
    """CosmosAttnProcessor2_0 on self-attention (``attn1``) with the router. The stock processor calls
    ``dispatch_attention_fn`` without its parallel config, so no route can travel with the call. Its
    grouped-query repeat is left out: Cosmos' q, k and v have the same head dim (a repeat of one)."""

    def __call__(self, attn: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, image_rotary_emb: torch.Tensor | None = None) -> torch.Tensor:
        if encoder_hidden_states is not None:
            raise ValueError("CosmosRoutedProcessor routes self-attention only (attn1): it was given encoder_hidden_states")
        q, k, v = (f(hidden_states).unflatten(2, (attn.heads, -1)).transpose(1, 2) for f in (attn.to_q, attn.to_k, attn.to_v))
        q, k = attn.norm_q(q), attn.norm_k(k)
        if image_rotary_emb is not None:
            q = apply_rotary_emb(q, image_rotary_emb, use_real=True, use_real_unbind_dim=-2)
            k = apply_rotary_emb(k, image_rotary_emb, use_real=True, use_real_unbind_dim=-2)
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attention_mask, self.route)
        return project_out(attn, out.flatten(2, 3).type_as(q))
