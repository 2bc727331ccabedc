"""Other tools' files: Sketch-RNN's ``.npz`` datasets (``npz``, read by ``data``) and Magenta's model files
(``magenta``, after ``models``). Nothing is imported here, so that ``data`` can read npz files without
pulling in the models."""
