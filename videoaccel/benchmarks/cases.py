"""The benchmark cases, one table: full-size video transformers at their published geometries.

Why one table: the e2e suite builds the models from these configs, the kernel benchmarks time
attention at their sequence lengths, head counts and head dims; each used to keep its own tuple.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WAN_BASE = dict(patch_size=(1, 2, 2), in_channels=16, out_channels=16, text_dim=4096, freq_dim=256, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)


@dataclass(frozen=True)
class BenchCase:
    name: str
    model: str  # diffusers transformer class
    config: dict[str, Any] = field(hash=False)  # its published config (random weights in e2e)
    latent: tuple[int, int, int]  # VAE latent frames, height, width (before patchify)
    text: int = 0  # joint text tokens in self-attention (0: text comes through cross-attention)
    kernel_heads: int = 0  # heads per kernel call in kernel benchmarks (0: all; fewer on the longest sequences bound the time)

    @property
    def grid(self) -> tuple[int, int, int]:
        """Video tokens (frames, height, width) after patchify."""
        p = self.config["patch_size"]
        pt, ph, pw = p if isinstance(p, (tuple, list)) else (self.config.get("patch_size_t") or 1, p, p)
        f, h, w = self.latent
        return -(-f // pt), h // ph, w // pw

    @property
    def seq_len(self) -> int:
        f, h, w = self.grid
        return f * h * w + self.text

    @property
    def heads(self) -> int:
        return self.kernel_heads or self.hidden // self.head_dim

    @property
    def head_dim(self) -> int:
        return self.config.get("attention_head_dim") or sum(self.config["axes_dims"])  # Kandinsky 5: its RoPE axes

    @property
    def hidden(self) -> int:
        return self.config.get("model_dim") or self.config["num_attention_heads"] * self.head_dim

    @property
    def layers(self) -> int:
        return self.config["num_layers"]


CASES: dict[str, BenchCase] = {c.name: c for c in [
    BenchCase("wan1.3b-480p81f", "WanTransformer3DModel", dict(WAN_BASE, num_attention_heads=12, attention_head_dim=128,
                                                               ffn_dim=8960, num_layers=30), (21, 60, 104)),
    BenchCase("wan14b-720p81f", "WanTransformer3DModel", dict(WAN_BASE, num_attention_heads=40, attention_head_dim=128,
                                                              ffn_dim=13824, num_layers=40), (21, 90, 160), kernel_heads=10),
    BenchCase("cogvideox5b-480p49f", "CogVideoXTransformer3DModel", dict(
        num_attention_heads=48, attention_head_dim=64, in_channels=16, out_channels=16, time_embed_dim=512, text_embed_dim=4096,
        num_layers=42, sample_width=90, sample_height=60, sample_frames=49, patch_size=2, max_text_seq_length=226,
        use_rotary_positional_embeddings=True, norm_eps=1e-5), (13, 60, 90), text=226),
    BenchCase("hunyuan-720p129f", "HunyuanVideoTransformer3DModel", dict(
        in_channels=16, out_channels=16, num_attention_heads=24, attention_head_dim=128, num_layers=20, num_single_layers=40,
        num_refiner_layers=2, patch_size=2, patch_size_t=1, text_embed_dim=4096, pooled_projection_dim=768,
        rope_axes_dim=(16, 56, 56), guidance_embeds=True), (33, 90, 160), text=256, kernel_heads=8),
]}
WAN13 = dict(WAN_BASE, num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30)
WAN14 = dict(WAN_BASE, num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40)
WAN14_I2V = dict(WAN14, in_channels=36, image_dim=1280, added_kv_proj_dim=5120)
# One case per further family, timed by `bench e2e --models NAME` (the kernel benchmarks keep to CASES). Configs: the
# published architecture where it is known (Wan-based, CogVideoX-5B-based, diffusers' defaults for Cosmos-1.0 7B and
# HunyuanVideo 1.5 8.3B); "class defaults" marks the families whose published config is not known here. Latents: the
# pipeline's default size and frames through its VAE.
FAMILY_CASES: dict[str, BenchCase] = {c.name: c for c in [
    BenchCase("skyreels-v2-1.3b-540p97f", "SkyReelsV2Transformer3DModel", WAN13, (25, 68, 120)),
    BenchCase("wan-vace1.3b-480p81f", "WanVACETransformer3DModel", dict(WAN13, vace_layers=list(range(0, 30, 2)),
                                                                      vace_in_channels=96), (21, 60, 104)),
    BenchCase("chronoedit14b-480p81f", "ChronoEditTransformer3DModel", WAN14_I2V, (21, 60, 104)),
    BenchCase("wan-animate14b-720p77f", "WanAnimateTransformer3DModel", dict(WAN14_I2V, latent_channels=16),
              (21, 90, 160)),  # 20 latent frames of the segment + the reference frame
    BenchCase("anyflow14b-480p81f", "AnyFlowTransformer3DModel", dict(patch_size=(1, 2, 2)), (21, 60, 104)),  # class defaults (Wan 14B)
    BenchCase("helios14b-384p33f", "HeliosTransformer3DModel", dict(patch_size=(1, 2, 2)), (9, 48, 80)),  # class defaults (Wan 14B), one chunk, no history
    BenchCase("hunyuanvideo1.5-480p121f", "HunyuanVideo15Transformer3DModel", dict(
        in_channels=65, out_channels=32, num_attention_heads=16, attention_head_dim=128, num_layers=54, patch_size=1,
        patch_size_t=1), (31, 30, 53), text=256 + 64 + 729),
    BenchCase("motif-video-736p121f", "MotifVideoTransformer3DModel", dict(  # class defaults
        num_attention_heads=24, attention_head_dim=128, num_layers=20, num_single_layers=40, patch_size=2, patch_size_t=1),
              (31, 92, 160), text=256),
    BenchCase("consisid-480p49f", "ConsisIDTransformer3DModel", dict(
        num_attention_heads=48, attention_head_dim=64, num_layers=42, in_channels=32, patch_size=2,
        use_rotary_positional_embeddings=True, is_train_face=True), (13, 60, 90), text=226),
    BenchCase("easyanimate-v5.1-512p49f", "EasyAnimateTransformer3DModel", dict(
        num_attention_heads=48, attention_head_dim=64, num_layers=48, mmdit_layers=48, in_channels=16, out_channels=16,
        patch_size=2, sample_width=64, sample_height=64, text_embed_dim=3584), (13, 64, 64), text=256),
    BenchCase("cosmos7b-704p121f", "CosmosTransformer3DModel", dict(
        num_attention_heads=32, attention_head_dim=128, num_layers=28, patch_size=(1, 2, 2)), (16, 88, 160)),
    BenchCase("kandinsky5-lite-512p121f", "Kandinsky5Transformer3DModel", dict(
        in_visual_dim=16, out_visual_dim=16, model_dim=1792, ff_dim=7168, num_text_blocks=2, num_visual_blocks=32,
        axes_dims=(16, 24, 24), patch_size=(1, 2, 2), visual_cond=True), (31, 64, 96)),
]}
E2E_CASES = {**CASES, **FAMILY_CASES}
TINY: dict[str, BenchCase] = {"wan-tiny": BenchCase("wan-tiny", "WanTransformer3DModel", dict(
    WAN_BASE, num_attention_heads=2, attention_head_dim=64, ffn_dim=256, num_layers=2), (3, 8, 8))}  # CPU smoke tests
