"""The sketch models: one file each, registered by name, behind one interface (``base.SketchModel``).

Adding a model is adding a file to this folder that defines a ``SketchModel``
subclass decorated with ``@register``: every module here is imported below,
and from then on the command line, training, sampling, serving, evaluation
and export offer it.
"""

import importlib
import pkgutil

from sketchgen.models.base import (
    Batch,
    Encodes,
    MagentaExport,
    MagentaImport,
    ModelError,
    SketchModel,
    State,
    Term,
    collate,
    shapes_only,
)
from sketchgen.models.checkpoint import (
    CheckpointError,
    checkpoint_dict,
    listing,
    load,
    read,
    read_file,
    restrict,
    save,
)
from sketchgen.models.registry import (
    build,
    capable,
    default,
    get,
    importer,
    names,
    registered,
    require,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Batch", "CheckpointError", "Encodes", "MagentaExport", "MagentaImport", "ModelError", "SketchModel", "State",
           "Term", "build", "capable", "checkpoint_dict", "collate", "default", "get", "importer", "listing", "load",
           "names", "read", "read_file", "registered", "require", "restrict", "save", "shapes_only"]
