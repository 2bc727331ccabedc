"""``sketchgen serve``: a local web page where models draw, and finish what you start.

One asyncio loop (uvicorn running a Starlette app, ``app``) parses, checks and
answers requests; a request's cost is the model (tens to hundreds of
milliseconds of LSTM steps), which each model's ``Batcher`` (``batcher``)
generates, requests that arrive together as one batch. At most ``workers``
batches of a model run at once, each on one torch thread: on a small machine
more concurrent generations only share the same cores and stretch every
request's latency together (``bench/load_serve.py`` measures it;
``docs/performance.md`` has the numbers). ``sketcher`` holds the models and
checks every field of a request. One request never harms another: a batch
that fails is split in halves until the failure is one request's, and a
drawing whose numbers went bad (NaN, infinite) fails only its own request,
with a 500 saying so.

The API speaks QuickDraw's simplified frame: x and y from 0 to 255, y down,
strokes as ``[[xs], [ys]]``.

* ``GET /api/classes`` -> ``{"classes": [...], "model": {...}, "models": [...], "routes": [...], "limits": {...}}``:
  every class of every model, the first model (for clients of a one-model
  server), each model with its classes, and the POST routes served.
* ``POST /api/sample`` ``{"class", "model"?, "temperature"?, "seed"?, "max_len"?}`` ->
  ``{"strokes": [[[xs], [ys]], ...], ...}``, fitted to 0-255.
* ``POST /api/complete`` ``{"class", "model"?, "strokes", "temperature"?, "seed"?}`` ->
  ``{"strokes": [...], "n_prefix": k, ...}``: the user's strokes (simplified)
  then the model's continuation, at the user's place and scale.
* With a model that encodes drawings to a latent (``latent_dim > 0``):
  ``POST /api/reconstruct`` ``{"class", "model"?, "strokes", "temperature"?, "seed"?, "max_len"?}`` -> the
  drawing decoded from the latent of the user's, fitted to 0-255; and
  ``POST /api/interpolate`` ``{"class", "strokes", "to_class"?, "to_strokes", "steps"?, ...}`` -> ``{"drawings":
  [...]}``: ``steps`` drawings decoded along the great circle between the two latents (spherical
  interpolation), the classes mixed alike.

``model`` may be left out where only one model knows the class. A bad request
gets a 4xx and one line of JSON, ``{"error": "..."}``; a body over the limit is
refused from its Content-Length, before any of it is read, and a body that
stops arriving is refused after ``BODY_WAIT`` seconds. Only requests whose
Host is this server's own address (or a loopback name) are answered, against
DNS rebinding, unless ``--host`` opens the server or ``--allow-host`` names
another.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from sketchgen.serve.app import BODY_WAIT, LOOPBACK, SketchServer, allowed_hosts
from sketchgen.serve.batcher import BATCH, Batcher, DrawingFailed, Job
from sketchgen.serve.sketcher import (
    MAX_BODY,
    MAX_POINTS,
    BadRequest,
    Sketcher,
    model_ids,
)

__all__ = ["BATCH", "BODY_WAIT", "LOOPBACK", "MAX_BODY", "MAX_POINTS", "BadRequest", "Batcher", "DrawingFailed", "Job",
           "SketchServer", "Sketcher", "allowed_hosts", "model_ids", "serve"]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(checkpoints: Sequence[str | Path], host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          batch: int = BATCH, allow_hosts: Sequence[str] = (), first_wins: bool = False) -> None:
    """Load the checkpoints and serve the page until Ctrl-C; the first stdout line is the URL. ``first_wins``: a
    class that several models draw is drawn by the first of them unless a request names one (else refused)."""
    torch.set_num_threads(1)
    sketcher = Sketcher(checkpoints, workers, batch, first_wins=first_wins)
    server = SketchServer(sketcher, host, port, allow_hosts=allow_hosts)
    if not is_loopback(host):
        print(f"sketchgen: serving on {host}: anyone who can reach this machine can use the page", file=sys.stderr)
    ids = list(sketcher.models)
    what = sketcher.models[ids[0]].path if len(ids) == 1 else \
        f"{len(ids)} models ({', '.join(ids[:3])}{', ...' * (len(ids) > 3)})"
    print(f"serving {what} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
