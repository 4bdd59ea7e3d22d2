"""videoaccel: profiled block-sparse and FP8 attention for diffusers video transformers.

The lazy boundary: ``import videoaccel``, profile files' and patterns' names (``plans``, ``patterns.registry``) and
the command line's parsing load neither torch nor diffusers. What needs them loads on first use, in three places
of one kind: the public API below (``videoaccel.pipelines``, through ``__getattr__``), the patterns' functions
(``videoaccel.patterns``' ``__getattr__``), and a command's module once its flags have parsed (``cli/parsers.py``).
Every other module imports at its top, except optional extras (matplotlib, lpips, torchao) where they are used.
"""
__version__ = "0.1.0"


def __getattr__(name):  # the public API: diffusers loads on first use
    if name in __all__:
        from . import pipelines

        return getattr(pipelines, name)
    raise AttributeError(name)


__all__ = ["accelerate", "accelerated", "observe", "report", "restore", "set_timing"]
