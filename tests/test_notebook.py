"""Notebooks: examples/quickstart.ipynb runs end to end in a real Jupyter kernel and shows what it should, and
training's progress bar shows in Jupyter as on a terminal."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from sketchgen.training.loop import progress_bar

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_quickstart_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")


def test_the_quickstart_notebook_runs_end_to_end(quickdraw, tmp_path, monkeypatch):
    """Every cell runs in a fresh kernel in an empty folder, each showing what it made: the model, grids as PNG,
    a drawing as SVG, training's log and progress bar, a GIF."""
    monkeypatch.setenv("SKETCHGEN_DATA", str(quickdraw))  # where the notebook reads real drawings and trains
    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.monotonic()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"quickstart.ipynb ran in {time.monotonic() - started:.1f} s")

    def outputs(snippet: str) -> list[dict]:
        (cell,) = [c for c in nb.cells if c.cell_type == "code" and snippet in c.source]
        return cell.outputs

    def shown(snippet: str) -> set[str]:
        return {kind for o in outputs(snippet) for kind in o.get("data", {})}

    def stderr(snippet: str) -> str:
        return "".join(o.text for o in outputs(snippet) if o.output_type == "stream" and o.name == "stderr")

    assert "<sketchgen mdn model, 29 classes" in outputs("sketchgen.load()")[0]["data"]["text/plain"]
    for grid in ("grid(drawings", "grid([start", "grid(faces", "grid(mine"):
        assert "image/png" in shown(grid), grid
    assert outputs("drawings[0]")[0]["data"]["image/svg+xml"].startswith("<svg")
    log = stderr("sketchgen.train(")
    assert "training mdn on" in log and "round 1/2:" in log  # the log, and the progress bar
    assert (tmp_path / "runs" / "quickstart" / "best.pt").is_file()
    assert "image/gif" in shown("animate(") and (tmp_path / "drawn.gif").is_file()


def kernel(monkeypatch, config: dict) -> None:
    """Run as if inside an IPython shell with this config (a Jupyter kernel's holds IPKernelApp)."""
    shell = types.SimpleNamespace(config=config)
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_the_progress_bar_shows_in_a_jupyter_kernel_though_stderr_is_no_terminal(monkeypatch):
    assert not sys.stderr.isatty()  # pytest captures it, as Jupyter does
    assert progress_bar(10, 0, "round 1/2", show=True).disable  # a redirected stderr: no bar, as before
    kernel(monkeypatch, {"IPKernelApp": {}})
    bar = progress_bar(10, 3, "round 1/2", show=True)
    assert not bar.disable and bar.n == 3
    bar.close()
    assert progress_bar(10, 0, "round 1/2", show=False).disable  # ranks other than 0: never


def test_a_terminal_ipython_keeps_the_terminal_rule(monkeypatch):
    kernel(monkeypatch, {"TerminalInteractiveShell": {}})
    assert progress_bar(10, 0, "round 1/2", show=True).disable  # stderr redirected: hidden, as in any terminal
