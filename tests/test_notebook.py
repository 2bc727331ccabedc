"""Notebooks: training's progress bar shows in Jupyter as on a terminal."""

from __future__ import annotations

import sys
import types

from sketchgen.training.loop import progress_bar


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
