"""Video transformers (and pipelines) diffusers ships that videoaccel cannot route as they are, with the reason
``spec_for`` (``check_profile``) gives before anything is installed: never a silent dense or wrong run."""

REFUSED = {
    "SanaVideoTransformer3DModel": "its self-attention is linear attention (a ReLU kernel feature map): there is no "
                                   "softmax score matrix to make block-sparse",
    "LatteTransformer3DModel": "it alternates spatial attention (one frame) and temporal attention (one position across "
                               "frames), never attention over the video token grid, and its head dim is 72",
    "AllegroTransformer3DModel": "its attention head dim is 96 (24 heads x 96); the sparse kernels take 64 and 128",
    "HunyuanVideoFramepackTransformer3DModel": "it puts history latents in front of the video tokens and text behind "
                                               "them; the router takes conditioning tokens on one side only",
    "WanAnimate2Transformer3DModel": "its self-attention runs under a block-causal flex-attention mask",
    "AnyFlowFARTransformer3DModel": "its self-attention is block-causal with a key-value cache (FAR generation)",
}

_DF = ("it denoises each frame with its own copy of the scheduler, so the pipeline's scheduler never steps and the step "
       "hook would count every forward as step 0 (a profile's dense warm-up steps and estimate periods would go wrong); "
       "SkyReelsV2Pipeline and SkyReelsV2ImageToVideoPipeline are supported")
REFUSED_PIPELINES = {f"SkyReelsV2DiffusionForcing{kind}Pipeline": _DF for kind in ("", "ImageToVideo", "VideoToVideo")}
