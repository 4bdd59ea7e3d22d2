"""Families with text in cross-attention and self-attention over the video tokens only, not built on
Wan's blocks: LTX-Video, Cosmos (Predict 1, 2 and 2.5) and Kandinsky 5."""
from __future__ import annotations

from ..spec import ModelSpec, grid_channels_first, grid_channels_last, grid_from_sizes


def _kandinsky_refuse(m) -> str | None:
    kind = m.config.attention_type
    return (f"attention_type={kind!r} computes its own sparse attention mask per call (a 2-D mask the kernels do not "
            "take): use the regular-attention checkpoints") if kind != "regular" else None


SPECS = [
    ModelSpec("LTXVideoTransformer3DModel", lambda m: [b.attn1 for b in m.transformer_blocks],
              lambda m: [b.attn2 for b in m.transformer_blocks], "none", grid_from_sizes, "dispatch",
              ("LTXPipeline", "LTXImageToVideoPipeline")),
    ModelSpec("CosmosTransformer3DModel", lambda m: [b.attn1 for b in m.transformer_blocks], lambda m: [], "none",
              grid_channels_first, "cosmos", ("CosmosTextToWorldPipeline", "CosmosVideoToWorldPipeline",
              "Cosmos2VideoToWorldPipeline", "Cosmos2_5_PredictBasePipeline", "Cosmos2_5_TransferPipeline")),
    ModelSpec("Kandinsky5Transformer3DModel", lambda m: [b.self_attention for b in m.visual_transformer_blocks],
              lambda m: [b.cross_attention for b in m.visual_transformer_blocks], "none", grid_channels_last, "dispatch",
              ("Kandinsky5T2VPipeline", "Kandinsky5I2VPipeline"), blocks=lambda m: list(m.visual_transformer_blocks),
              refuse=_kandinsky_refuse),
]
