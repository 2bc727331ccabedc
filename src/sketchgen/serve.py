"""``sketchgen serve``: a local web page where the model draws, and finishes what you start.

The server is the standard library's ``ThreadingHTTPServer``: three JSON routes
and three static files need no framework, and a request's cost is the model
(tens to hundreds of milliseconds of LSTM steps), not HTTP parsing. Every
request gets a thread, which hands its drawing to a ``Batcher``: requests that
arrive together are generated together, as one batch, because a batch of 20
drawings costs about as much as 3 made one at a time. Each drawing draws from
its own seed, so a request gets the same drawing alone or in any batch. At most
``workers`` batches run at once, each on one torch thread: on a small machine
more concurrent generations only share the same cores and stretch every
request's latency together (``bench/load_serve.py`` measures it;
``docs/performance.md`` has the numbers).

The API speaks QuickDraw's simplified frame: x and y from 0 to 255, y down,
strokes as ``[[xs], [ys]]``.

* ``GET /api/classes`` -> ``{"classes": [...], "model": {...}, "limits": {...}}``
* ``POST /api/sample`` ``{"class", "temperature"?, "seed"?, "max_len"?}`` ->
  ``{"strokes": [[[xs], [ys]], ...], ...}``, fitted to 0-255.
* ``POST /api/complete`` ``{"class", "strokes", "temperature"?, "seed"?}`` ->
  ``{"strokes": [...], "n_prefix": k, ...}``: the user's strokes (simplified)
  then the model's continuation, at the user's place and scale.

A bad request gets a 4xx and one line of JSON, ``{"error": "..."}``; a body over
the limit is refused from its Content-Length, before any of it is read.
"""

from __future__ import annotations

import ipaddress
import json
import queue
import socket
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import torch

from sketchgen import models, sample, strokes

MAX_BODY = 1 << 20  # bytes; a drawing of MAX_POINTS points is well under 100 kB
MAX_POINTS = 2000  # points in a drawing sent to /api/complete (a minute of scribbling at 30 points a second)
MAX_COORD = 10_000  # |x|, |y| in the 0-255 frame: far off the canvas, but no float overflow downstream
MAX_LEN = 1000  # the most steps a request may ask the model for
# A start narrower than half the canvas is taken as part of a drawing at least this wide, not blown up to fill
# the frame: the model learnt whole drawings scaled to 0-255, and a face's outline or an eye's lid is usually
# what one starts with. Measured on an outline and an arc, completions then land inside the outline.
MIN_SPAN = 128
MAX_SEED = 2**31 - 1
TEMPERATURE = 0.4  # the default, as for `sketchgen sample`
TEMPERATURE_MAX = 2.0  # (0, 2]: above 2 the mixture is noise
BATCH = 64  # the most requests generated together: a burst of 200 takes a few batches (docs/performance.md)
BATCH_WAIT = 0.005  # seconds a batch's first request waits for others (a burst's requests arrive within milliseconds)
WEB = Path(__file__).parent / "web"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
# The page loads nothing from elsewhere; the policy makes the browser hold it to that.
PAGE_POLICY = "default-src 'self'; img-src 'self' data: blob:; base-uri 'none'; form-action 'none'"


class BadRequest(Exception):
    """A request the server refuses: an HTTP status and one line saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --- the model behind the page -------------------------------------------------------------


@dataclass
class _Job:
    """One request's drawing, waiting for a batch: what ``sample.generate`` needs, and where its answer goes."""

    label: int
    temperature: float
    seed: int
    max_len: int | None
    prefix: np.ndarray | None
    answer: Future = field(default_factory=Future)


class Batcher:
    """Generates the drawings of all request threads, those that arrive together as one batch.

    A request thread queues its job and waits for the answer. A worker thread
    takes the first job waiting, then whatever else arrives within ``wait``
    seconds (while it generates, the next batch queues up), at most ``size``,
    and runs one ``sample.generate`` for each group of jobs that share what
    ``generate`` takes once per call: temperature, max_len, and whether they
    complete a drawing. Completions batch too: ``generate`` primes each prefix
    on its own, then continues them together.
    """

    def __init__(self, net, workers: int = 1, size: int = BATCH, wait: float = BATCH_WAIT):
        self.net, self.size, self.wait = net, size, wait
        self.sizes: Counter[int] = Counter()  # drawings in a generate call -> how many calls: what batching achieved
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"sketchgen-batcher-{i}", daemon=True).start()

    def draw(self, label: int, temperature: float, seed: int, max_len: int | None = None,
             prefix: np.ndarray | None = None) -> np.ndarray:
        """One drawing (stroke-3, or the completion of the stroke-3 ``prefix``), the same in whatever batch."""
        job = _Job(label, temperature, seed, max_len, prefix)
        self._jobs.put(job)
        return job.answer.result()

    def _work(self) -> None:
        while True:
            groups = defaultdict(list)
            for job in self._take():
                groups[job.temperature, job.max_len, job.prefix is None].append(job)
            for group in groups.values():
                self._generate(group)

    def _take(self) -> list[_Job]:
        jobs = [self._jobs.get()]
        deadline = time.monotonic() + self.wait
        while len(jobs) < self.size:
            try:
                jobs.append(self._jobs.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return jobs

    def _generate(self, group: list[_Job]) -> None:
        first = group[0]
        self.sizes[len(group)] += 1
        try:
            drawings = sample.generate(self.net, [j.label for j in group], first.temperature, max_len=first.max_len,
                                       prefixes=None if first.prefix is None else [j.prefix for j in group],
                                       seeds=[j.seed for j in group])
        except Exception as e:  # a bug costs this batch's requests a 500 each, never the worker
            for job in group:
                job.answer.set_exception(e)
            return
        for job, drawing in zip(group, drawings):
            job.answer.set_result(drawing)


class Sketcher:
    """A loaded checkpoint and the two things the page asks of it, each with its input checks."""

    def __init__(self, checkpoint: str | Path, workers: int = 1, batch: int = BATCH):
        self.net, ckpt = models.load(checkpoint)
        self.classes: list[str] = list(ckpt["classes"])
        self.max_len = min(MAX_LEN, self.net.max_steps())
        self.info = {
            "classes": self.classes,
            "model": {"kind": self.net.name, "hidden": self.net.cfg.hidden, "checkpoint": Path(checkpoint).name,
                      "epoch": ckpt.get("epoch"), "val_loss": ckpt.get("val_loss"),
                      "temperature": TEMPERATURE if self.net.uses_temperature else None,
                      "max_len": self.max_len},
            "limits": {"temperature": [0, TEMPERATURE_MAX], "max_len": self.max_len, "max_points": MAX_POINTS,
                       "max_body": MAX_BODY, "seed": [0, MAX_SEED]},
        }
        self.batcher = Batcher(self.net, workers, batch)

    def sample(self, req: dict) -> dict:
        """A new drawing of a class, fitted to 0-255."""
        _only(req, "class", "temperature", "seed", "max_len")
        label, temperature, seed = self._common(req)
        max_len = _integer(req, "max_len", None, 1, self.max_len)
        s3 = self.batcher.draw(label, temperature, seed, max_len)
        drawing = strokes.quickdraw_strokes(s3)
        return {"class": req["class"], "temperature": temperature, "seed": seed, "points": len(s3),
                "strokes": strokes.drawing_field(drawing)}

    def complete(self, req: dict) -> dict:
        """The user's drawing, finished by the model, in the user's frame."""
        _only(req, "class", "temperature", "seed", "strokes")
        label, temperature, seed = self._common(req)
        start = _drawing(req.get("strokes"))
        frame = strokes.fitting(start, min_extent=MIN_SPAN)
        simplified = strokes.simplify(start, min_extent=MIN_SPAN)
        s3 = self.batcher.draw(label, temperature, seed, prefix=strokes.strokes_to_stroke3(simplified))
        finished = frame.invert(strokes.stroke3_to_strokes(s3))
        return {"class": req["class"], "temperature": temperature, "seed": seed, "n_prefix": len(simplified),
                "strokes": strokes.drawing_field(finished)}

    def _common(self, req: dict) -> tuple[int, float, int]:
        name = req.get("class")
        if not isinstance(name, str):
            raise BadRequest(400, "'class' must be a class name (a string)")
        if name not in self.classes:
            raise BadRequest(400, f"unknown class {name[:60]!r}: this model knows {len(self.classes)} "
                                  "(GET /api/classes lists them)")
        temperature = req.get("temperature", TEMPERATURE)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not 0 < temperature <= TEMPERATURE_MAX:
            raise BadRequest(400, f"'temperature' must be a number in (0, {TEMPERATURE_MAX:g}]")
        return self.classes.index(name), float(temperature), _integer(req, "seed", 0, 0, MAX_SEED)


def _only(req: dict, *names: str) -> None:
    extra = sorted(set(req) - set(names))
    if extra:
        raise BadRequest(400, f"unknown field {extra[0][:60]!r} (expected: {', '.join(names)})")


def _integer(req: dict, name: str, default, low: int, high: int):
    if name not in req:
        return default
    value = req[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(400, f"{name!r} must be an integer from {low} to {high}")
    return value


def _drawing(field: object) -> list[np.ndarray]:
    """The partial drawing of /api/complete, checked: strokes, point count, coordinate range."""
    try:
        drawing = strokes.parse_drawing(field)
    except strokes.StrokeError as e:
        raise BadRequest(400, f"'strokes': {e}") from None
    if sum(len(s) for s in drawing) > MAX_POINTS:
        raise BadRequest(400, f"too many points: a drawing to complete may have at most {MAX_POINTS}")
    if any(np.abs(s).max() > MAX_COORD for s in drawing):
        raise BadRequest(400, f"'strokes': coordinates must lie within +-{MAX_COORD}")
    return drawing


# --- HTTP ----------------------------------------------------------------------------------


def _static_files() -> dict[str, Path]:
    files = {f"/{p.name}": p for p in WEB.iterdir() if p.suffix in CONTENT_TYPES}
    files["/"] = WEB / "index.html"
    return files


class Handler(BaseHTTPRequestHandler):
    server_version = "sketchgen"
    protocol_version = "HTTP/1.1"  # keep-alive: the page's requests reuse one connection
    timeout = 30  # a client that stalls mid-request loses its connection, not a thread for good

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/api/classes":
            self._send_json(200, self.server.sketcher.info)
        elif path in self.server.static:
            self._send_file(self.server.static[path])
        elif path in self.server.routes:
            self._send_json(405, {"error": f"{path} takes POST"}, ("Allow", "POST"))
        else:
            self._send_json(404, {"error": f"no such page: {path[:100]}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        route = self.server.routes.get(path)
        try:
            if route is None:
                self.close_connection = True  # the body is not read
                raise BadRequest(405 if path == "/api/classes" or path in self.server.static else 404,
                                 f"no POST route {path[:100]}")
            self._send_json(200, route(self._read_json()))
        except BadRequest as e:
            self._send_json(e.status, {"error": str(e)})
        except Exception as e:  # a bug must cost one request, never the server
            traceback.print_exc()
            self._send_json(500, {"error": f"internal error ({type(e).__name__}); see the server's log"})

    def _read_json(self) -> dict:
        """The request body as a JSON object; refused by its declared size before reading it."""
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            raise BadRequest(411, "send the JSON body with a Content-Length header")
        if int(length) > MAX_BODY:
            self.close_connection = True
            raise BadRequest(413, f"body of {int(length)} bytes is over the limit of {MAX_BODY}")
        body = self.rfile.read(int(length))
        # Only JSON: a cross-site form or "simple" fetch cannot send it without the browser asking us first.
        if self.headers.get_content_type() != "application/json":
            raise BadRequest(415, "send the body as Content-Type: application/json")
        try:
            req = json.loads(body, parse_constant=_no_constant)
        except (ValueError, RecursionError) as e:
            raise BadRequest(400, f"malformed JSON: {str(e).splitlines()[0][:100]}") from None
        if not isinstance(req, dict):
            raise BadRequest(400, "the body must be a JSON object")
        return req

    def _send_json(self, status: int, payload: dict, *headers: tuple[str, str]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", *headers)

    def _send_file(self, path: Path) -> None:
        self._send(200, path.read_bytes(), CONTENT_TYPES[path.suffix], ("Content-Security-Policy", PAGE_POLICY))

    def _send(self, status: int, body: bytes, content_type: str, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        for name, value in (("Content-Type", content_type), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), *headers):
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's own refusals (bad request line, unknown method, huge headers) as JSON too."""
        self.close_connection = True
        self._send_json(code, {"error": message or self.responses.get(code, ("refused",))[0]})

    def log_message(self, format: str, *args) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class SketchServer(ThreadingHTTPServer):
    """The HTTP server with the model and routes it serves."""

    daemon_threads = True
    request_queue_size = 256  # 200 clients connecting at once must queue, not time out

    def __init__(self, sketcher: Sketcher, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False):
        self.sketcher, self.quiet = sketcher, quiet
        self.routes = {"/api/sample": sketcher.sample, "/api/complete": sketcher.complete}
        self.static = _static_files()
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), Handler)
        except OSError as e:
            raise OSError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port or --host") from None

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up needs no traceback
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          batch: int = BATCH) -> None:
    """Load the checkpoint and serve the page until Ctrl-C; the first stdout line is the URL."""
    torch.set_num_threads(1)
    server = SketchServer(Sketcher(checkpoint, workers, batch), host, port)
    if not is_loopback(host):
        print(f"sketchgen: serving on {host}: anyone who can reach this machine can use the page", file=sys.stderr)
    print(f"serving {checkpoint} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
