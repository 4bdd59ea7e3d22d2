"""Video transformers diffusers ships whose attention videoaccel cannot route as it is, with the reason
``spec_for`` gives before anything is installed (never a silent dense run)."""

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
