"""sketchgen: class-conditional pen-stroke sketch generation on Google Quick, Draw!, as a library.

    import sketchgen
    model = sketchgen.load()                     # the shipped model, a checkpoint, or a Magenta .gen.json
    eyes = model.sample("eye", n=4)              # sketchgen.Drawing objects; a notebook shows each one
    done = model.complete(sketchgen.Drawing.from_strokes([([10, 80], [20, 20])], "eye"))
    sketchgen.grid(eyes + done)                  # several side by side
    run = sketchgen.train(classes=["cat", "dog"], model="mdn", out="runs/pets")

Every refusal is a ``SketchgenError`` (one line saying what is wrong). The
names in ``__all__`` are the public library; ``help(sketchgen.<name>)`` says
more, and docs/api.md lists them all. They are imported on first use, so
that ``import sketchgen.strokes`` (or the command line's first line) does not
wait for PyTorch.
"""

import importlib as _importlib

__version__ = "0.2.0"

# Each public name and the module that defines it.
_PUBLIC = {
    "Drawing": "drawing", "Grid": "drawing", "DrawingError": "errors", "SketchgenError": "errors",
    "Model": "api", "Run": "runs", "SettingError": "api", "UsageError": "api", "animate": "api", "classes": "api",
    "grid": "api", "load": "api", "read_ndjson": "api", "train": "runs", "write_ndjson": "api",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(_importlib.import_module(f"sketchgen.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sketchgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
