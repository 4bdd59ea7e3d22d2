"""What the replacement processors share: the route of one layer, and the stock processors' common steps."""
from __future__ import annotations

import torch

from ...routing import AttentionRouter
from ...routing.op import route_tensor


class Routed:
    """A replacement processor bound to one layer of a router (its route tensor, for the custom op)."""

    def __init__(self, router: AttentionRouter, layer: int):
        self.router, self.layer, self.route = router, layer, route_tensor(router.id, layer)


def heads_last(attn: torch.nn.Module, x: torch.Tensor, projections=("to_q", "to_k", "to_v")) -> list[torch.Tensor]:
    """q, k, v of ``x`` through the named projections, [B, S, H, D]."""
    return [getattr(attn, p)(x).unflatten(2, (attn.heads, -1)) for p in projections]


def normed(norm: torch.nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)``, or ``x`` where the module has none (the stock processors' ``if attn.norm_q is not None``)."""
    return x if norm is None else norm(x)


def added_qkv(attn: torch.nn.Module, encoder_hidden_states: torch.Tensor) -> list[torch.Tensor]:
    """The text stream's q, k, v [B, S, H, D] through the added projections, q and k normed."""
    q, k, v = heads_last(attn, encoder_hidden_states, ("add_q_proj", "add_k_proj", "add_v_proj"))
    return [normed(attn.norm_added_q, q), normed(attn.norm_added_k, k), v]


def zero_padded_rows(out: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """Rows of padded text tokens set to zero, as SDPA leaves a query whose keys are all masked."""
    return out * key_mask[:, :, None, None].to(out.dtype)


def project_out(attn: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return attn.to_out[1](attn.to_out[0](x))
