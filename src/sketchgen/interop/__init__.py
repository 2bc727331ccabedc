"""Other tools' model files: Magenta's Sketch-RNN ``.gen.json`` (``magenta``), imported and exported through the
models' capabilities. (Sketch-RNN's ``.npz`` datasets are data: ``sketchgen.npz``, read by ``data``.)"""
