"""Families whose self-attention joins text (or image) tokens to the video tokens in one sequence:
text in front (CogVideoX, ConsisID, EasyAnimate) or behind (HunyuanVideo 1 and 1.5, Motif-Video, Mochi),
padded text excluded as keys (per-sample valid lengths, routing/geometry.py)."""
from __future__ import annotations

from ..spec import ModelSpec, grid_channels_first, grid_frames_first, named_arg


def _attn(m):
    return [b.attn for b in m.transformer_blocks] + [b.attn for b in getattr(m, "single_transformer_blocks", [])]


def _blocks(m):
    return list(m.transformer_blocks) + list(getattr(m, "single_transformer_blocks", []))


def _attn1(m):
    return [b.attn1 for b in m.transformer_blocks]


def _tokens(*names: str):
    """Joint tokens: the sum of these forward arguments' sequence lengths (absent ones count 0)."""
    def count(m, args, kwargs) -> int:
        return sum(t.shape[1] for t in (named_arg(m, args, kwargs, n) for n in names) if t is not None)
    return count


def _none(m):  # no cross-attention: the text is in the joint sequence
    return []


SPECS = [
    ModelSpec("HunyuanVideoTransformer3DModel", _attn, _none, "back", grid_channels_first, "dispatch",
              ("HunyuanVideoPipeline", "HunyuanVideoImageToVideoPipeline", "HunyuanSkyreelsImageToVideoPipeline"), blocks=_blocks),
    ModelSpec("HunyuanVideo15Transformer3DModel", _attn, _none, "back", grid_channels_first, "hunyuanvideo15",
              ("HunyuanVideo15Pipeline", "HunyuanVideo15ImageToVideoPipeline"), blocks=_blocks,
              joint=_tokens("image_embeds", "encoder_hidden_states_2", "encoder_hidden_states")),
    ModelSpec("MotifVideoTransformer3DModel", _attn, _none, "back", grid_channels_first, "dispatch",
              ("MotifVideoPipeline", "MotifVideoImage2VideoPipeline"), blocks=_blocks,
              joint=_tokens("image_embeds", "encoder_hidden_states")),
    ModelSpec("MochiTransformer3DModel", _attn1, _none, "back", grid_channels_first, "mochi", ("MochiPipeline",)),
    ModelSpec("CogVideoXTransformer3DModel", _attn1, _none, "front", grid_frames_first, "cogvideox",
              ("CogVideoXPipeline", "CogVideoXImageToVideoPipeline", "CogVideoXVideoToVideoPipeline")),
    ModelSpec("ConsisIDTransformer3DModel", _attn1, _none, "front", grid_frames_first, "cogvideox", ("ConsisIDPipeline",)),
    ModelSpec("EasyAnimateTransformer3DModel", _attn1, _none, "front", grid_channels_first, "easyanimate",
              ("EasyAnimatePipeline", "EasyAnimateInpaintPipeline", "EasyAnimateControlPipeline"),
              joint=_tokens("encoder_hidden_states", "encoder_hidden_states_t5")),
]
