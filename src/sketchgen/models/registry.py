"""The models by name: each model's file registers its class here with ``@register``."""

from __future__ import annotations

from sketchgen.models.base import MagentaImport, ModelError, SketchModel

# The most classes a model may have: far above QuickDraw's 345, far below what would allocate gigabytes.
MAX_CLASSES = 100_000

_MODELS: dict[str, type[SketchModel]] = {}


def register(cls: type[SketchModel]) -> type[SketchModel]:
    if cls.name in _MODELS:
        raise ModelError(f"two models are named {cls.name!r}")
    _MODELS[cls.name] = cls
    return cls


def registered() -> list[type[SketchModel]]:
    """The registered models, in their ``order`` (the simplest first)."""
    return sorted(_MODELS.values(), key=lambda cls: (cls.order, cls.name))


def names() -> list[str]:
    return [cls.name for cls in registered()]


def default() -> str:
    """The model trained when none is asked for: the first in ``order`` (the course report's seed model)."""
    return registered()[0].name


def get(name: str) -> type[SketchModel]:
    try:
        return _MODELS[name]
    except (KeyError, TypeError):
        raise ModelError(f"no model named {str(name)[:40]!r}; the models are: {', '.join(_MODELS)}") from None


def build(name: str, **config) -> SketchModel:
    cls = get(name)
    return cls(cls.Config(**config))


def capable(model, capability: type) -> bool:
    """Whether a model (or model class) has a capability of ``base`` (``Encodes``, ``MagentaExport``, ...)."""
    return issubclass(model if isinstance(model, type) else type(model), capability)


def require(model, capability: type, why: str) -> None:
    """Refuse, in one line, to ask a model for what its kind cannot do: "a seed model ``why``", and the kinds that
    can."""
    if not capable(model, capability):
        can = [cls.name for cls in registered() if capable(cls, capability)]
        raise ModelError(f"a {model.name} model {why}" + (f" (train a {' or '.join(can)} model)" if can else ""))


# Other tools' model files, and the capability of building a model from them.
IMPORTS = {"magenta": MagentaImport}


def importer(fmt: str) -> type[SketchModel]:
    """The model that builds itself from another tool's model files of ``fmt`` (the first in ``order``)."""
    for cls in registered():
        if capable(cls, IMPORTS.get(fmt, type(None))):
            return cls
    raise ModelError(f"no model here reads {fmt} model files")
