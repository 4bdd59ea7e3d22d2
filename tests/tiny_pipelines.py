"""Tiny diffusers pipelines built offline (tests only): a word-level tokenizer, a tiny UMT5 text encoder and a tiny
Wan VAE shared by the Wan-based pipelines, and image-to-video / video-to-video pipelines of the added families.

``I2V_V2V[name]()`` returns ``(pipeline, input)``: the input is "image" or "video", what the pipeline is conditioned on.
Every module is in eval mode, as ``from_pretrained`` leaves it (deterministic generations).
"""
import importlib
from types import SimpleNamespace

import tokenizers
import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    SkyReelsV2ImageToVideoPipeline,
    SkyReelsV2Transformer3DModel,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanTransformer3DModel,
    WanVACEPipeline,
    WanVACETransformer3DModel,
)
from transformers import (CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, PreTrainedTokenizerFast, UMT5Config,
                          UMT5EncoderModel)

from tiny_models_more import WAN

WORDS = ["<pad>", "</s>", "<unk>", "a", "red", "circle", "moving", "left"]
# diffusers 0.42's Wan I2V, SkyReels-V2 I2V and VACE pipelines call ftfy.fix_text without checking it is installed (their
# T2V sibling checks); ftfy is not in the test environment, so those modules get a no-op stand-in (``no_ftfy``)
FTFY_MODULES = ("wan.pipeline_wan_i2v", "wan.pipeline_wan_vace", "skyreels_v2.pipeline_skyreels_v2_i2v")


def no_ftfy(monkeypatch) -> None:
    for name in FTFY_MODULES:
        module = importlib.import_module(f"diffusers.pipelines.{name}")
        monkeypatch.setattr(module, "ftfy", SimpleNamespace(fix_text=str), raising=False)


def text_and_vae() -> dict:
    """tokenizer, text_encoder and vae of a tiny Wan-based pipeline (seeded)."""
    torch.manual_seed(0)
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    te = UMT5EncoderModel(UMT5Config(vocab_size=len(WORDS), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
                                     relative_attention_num_buckets=8))
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
    return dict(tokenizer=tokenizer, text_encoder=te.eval(), vae=vae.eval())


def _clip() -> dict:
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                           patch_size=8)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return dict(image_encoder=CLIPVisionModel(cfg).eval(), image_processor=processor)


def wan_i2v():
    """Wan2.2-style image-to-video: the image's latents as channels (36 in), no image encoder."""
    parts = text_and_vae()
    tr = WanTransformer3DModel(**WAN, in_channels=36, out_channels=16, num_layers=2).eval()
    return WanImageToVideoPipeline(**parts, scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=tr), "image"


def skyreels_i2v():
    """SkyReels-V2 image-to-video: image latents as channels and CLIP image tokens in cross-attention."""
    parts = text_and_vae()
    tr = SkyReelsV2Transformer3DModel(**WAN, in_channels=36, out_channels=16, num_layers=2, image_dim=32).eval()
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    return SkyReelsV2ImageToVideoPipeline(**parts, **_clip(), scheduler=scheduler, transformer=tr), "image"


def vace():
    """Wan VACE: a control video through the VACE blocks."""
    parts = text_and_vae()
    tr = WanVACETransformer3DModel(**WAN, in_channels=16, out_channels=16, num_layers=2, vace_layers=[0], vace_in_channels=96)
    return WanVACEPipeline(**parts, scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=tr.eval()), "video"


I2V_V2V = {"wan-i2v": wan_i2v, "skyreels-v2-i2v": skyreels_i2v, "wan-vace": vace}
