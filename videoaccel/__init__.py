"""videoaccel: profiled block-sparse and FP8 attention for diffusers video transformers."""
__version__ = "0.1.0"


def __getattr__(name):  # keep `import videoaccel` light: diffusers loads on first use
    if name in __all__:
        from . import pipelines

        return getattr(pipelines, name)
    raise AttributeError(name)


__all__ = ["accelerate", "accelerated", "observe", "report", "restore", "set_timing"]
