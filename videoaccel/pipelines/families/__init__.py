"""The supported transformer families, one registry: ``SPECS`` (class name -> ModelSpec), and the families
videoaccel refuses with the reason (``REFUSED``). Each module holds the specs of related families;
adding a family is one ``ModelSpec`` there (docs/adding-a-model.md)."""
from . import cross_text, joint_text, refused, wan_like

SPECS = {s.class_name: s for m in (wan_like, joint_text, cross_text) for s in m.SPECS}
REFUSED: dict[str, str] = refused.REFUSED
REFUSED_PIPELINES: dict[str, str] = refused.REFUSED_PIPELINES
PIPELINES = tuple(p for s in SPECS.values() for p in s.pipelines)

__all__ = ["PIPELINES", "REFUSED", "REFUSED_PIPELINES", "SPECS"]
