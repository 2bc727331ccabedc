"""HTTP: the Starlette application and the uvicorn server that runs it.

Starlette routes the requests and uvicorn's h11 protocol parses them: well-kept
libraries whose request parsing, Content-Length framing and Host checks have
met far more hostile clients than a hand-written handler would. Every answer,
refusals of theirs included, is one line of JSON; a body over the limit is
refused from its Content-Length before any of it is read (what the client sends
meanwhile is dropped for up to ``LINGER`` seconds after the answer, so that it
reads the answer), and a body that stops arriving is refused after ``BODY_WAIT``
seconds.

Slow and malformed clients cost a bounded share of the server and one log line
each, never a traceback. A request (its head, then its body) must be whole
within ``HEAD_WAIT`` seconds, or the connection is closed. Connections are
bounded so that the process never reaches its file-descriptor limit
(``capacity``): there, asyncio's accept() loop logs a traceback and schedules a
retry for each of its backlog of attempts, again and again, and the server
serves no one. Past the bound, the connection waiting longest for a whole request
is closed to make room, so clients trickling heads or bodies cannot keep a good
request out. uvicorn's ``limit_concurrency`` would not do: it counts requests once
their heads are whole, which a trickling client's never is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import resource
import socket
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from functools import partial
from http import HTTPStatus
from pathlib import Path

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from sketchgen.serve.batcher import DrawingFailed
from sketchgen.serve.sketcher import MAX_BODY, BadRequest, Sketcher

# Seconds a request body may stop arriving: on loopback or a LAN a 1 MB body takes milliseconds, so a body
# shorter than its Content-Length is answered promptly (408), and a stalled client holds no batch back.
BODY_WAIT = 2.0
# Seconds the body of a request answered unread (413 from its Content-Length, 408, 411) may go on arriving, read and
# dropped, after its answer: a client sends its whole body before it reads (urllib, http.client), and a connection
# closed with bytes unread is reset, which destroys an answer not yet read (RFC 9112, section 9.6). 5 MB: 10 ms here.
LINGER = 2.0
WRITE_WAIT = 5.0  # seconds an answer may wait for a client that has stopped reading (a browser reads at once)
IDLE = 5  # seconds a connection may wait for its next request (or its first) before it is closed
# Seconds from a connection's start (or its last answer) to a whole request, head and body (at most MAX_BODY, a
# few milliseconds here): a browser sends one in a packet or two, and a head or body that trickles in a byte at a
# time held its connection (and a file descriptor) for as long as it trickled.
HEAD_WAIT = 5.0
# Connections the kernel queues for accept() (200 clients connecting at once must queue, not be refused), and
# open at once; fewer where the file-descriptor limit is low (``capacity``).
BACKLOG = 256
CONNECTIONS = 4 * BACKLOG
FD_RESERVE = 64  # descriptors kept for the server's own files, sockets and threads (fewer than 10 at rest)
# Drawings being made at once, on all routes and models: a burst of 200 samples (bench/load_serve.py) is drawn in a
# few batches; past this, a request is answered 503 at once rather than queued behind thousands. Counted in drawings,
# not requests: an interpolation makes up to 18 (sketcher.Sketcher.drawings), and 256 of them were 4,608.
WAITING = 256
# The most of them one client elsewhere (by address) may have at once, so that one which ignores Retry-After cannot
# keep the others out: four such clients fill the server. This machine's own clients (the page in its tabs, scripts)
# are one user, and share all of WAITING.
SHARE = WAITING // 4
LOOPBACK = ["localhost", "127.0.0.1", "[::1]"]  # Host values always served: names of this machine only
ANY_ADDRESS = {"", "0.0.0.0", "::"}  # --host values that listen on every interface
WEB = Path(__file__).parents[1] / "web"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
# The page loads nothing from elsewhere, and no other site may frame it (clicks led through an invisible frame); the
# policy makes the browser hold it to that (X-Frame-Options says the second to browsers that predate it).
PAGE_POLICY = ("default-src 'self'; img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")


def _json(status: int, payload: dict, *, close: bool = False, headers: dict | None = None) -> Response:
    """One line of strict JSON (``allow_nan=False``: a NaN is a bug to catch here, not a reply a parser refuses)."""
    return _send(status, json.dumps(payload, allow_nan=False).encode(), "application/json", close=close,
                 headers=headers)


def _send(status: int, body: bytes, content_type: str, *, close: bool = False, headers: dict | None = None) -> Response:
    extra = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
             **(headers or {})}
    if close:  # the body was not read: the connection cannot carry another request
        extra["Connection"] = "close"
    return Response(body, status, extra, content_type)


async def _read_json(request: Request) -> dict:
    """The request body as a JSON object; refused by its declared size before reading it.

    h11 has refused a Content-Length that is not one decimal number (or several equal ones) with a 400 already.
    """
    length = request.headers.get("content-length")
    if length is None or "transfer-encoding" in request.headers:
        raise BadRequest(411, "send the JSON body with a Content-Length header (and no Transfer-Encoding)")
    if int(length) > MAX_BODY:
        raise BadRequest(413, f"body of {int(length)} bytes is over the limit of {MAX_BODY}")
    body, chunks = b"", request.stream()
    while len(body) < int(length):
        try:
            body += await asyncio.wait_for(anext(chunks), BODY_WAIT)
        except (asyncio.TimeoutError, StopAsyncIteration, ClientDisconnect):
            raise BadRequest(408, f"the body stopped after {len(body)} of the {length} bytes its Content-Length "
                                  f"declares (waited {BODY_WAIT:g} s)") from None
    # Only JSON: a cross-site form or "simple" fetch cannot send it without the browser asking us first.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise BadRequest(415, "send the body as Content-Type: application/json")
    try:
        req = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise BadRequest(400, f"malformed JSON: {str(e).splitlines()[0][:100]}") from None
    if not isinstance(req, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return req


class ClientGone(Exception):
    """The client closed its connection while its request was being drawn."""


async def _unless_gone(request: Request, work: Coroutine) -> dict:
    """``work``'s result, unless the client closes its connection first: then the work is cancelled, its jobs
    leave the batcher's queue unmade, and ClientGone is raised. A flood of requests sent and abandoned at once
    would otherwise be drawn in full, ahead of everyone after it."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
    if task not in done:
        raise ClientGone
    return task.result()


async def _disconnect(request: Request) -> None:
    """Returns when the client has closed its connection (its body has been read: uvicorn says nothing else)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class Budget:
    """The drawings being made, on every route and model, and each client's part of them: a flood is told to come
    back (503) rather than queued without end, and a client elsewhere may have at most ``SHARE`` of them."""

    def __init__(self):
        self.total, self.by_client = 0, Counter()

    def refusal(self, client: str | None, cost: int) -> str | None:
        """Why ``cost`` more drawings for ``client`` (``_client``'s) must wait, or None."""
        if self.total + cost > WAITING:
            return f"busy: {self.total} of the {WAITING} drawings made at once are being made; try again in a moment"
        if client is not None and self.by_client[client] + cost > SHARE:
            return (f"busy: {self.by_client[client]} drawings of this client's are being made, and a client may have "
                    f"{SHARE} at once; try again once they are answered")
        return None

    @contextlib.contextmanager
    def spent(self, client: str | None, cost: int) -> Iterator[None]:
        self.total += cost
        self.by_client[client] += cost
        try:
            yield
        finally:
            self.total -= cost
            self.by_client[client] -= cost
            if not self.by_client[client]:
                del self.by_client[client]


def _client(host: str | None) -> str | None:
    """Who a request's drawings are counted for: None for this machine (a loopback address, or none: a Unix socket),
    one user who shares all of WAITING; else an IPv4 address, or an IPv6 host's /64 (a host takes as many addresses
    of its network as it likes)."""
    if host is None:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    address = getattr(address, "ipv4_mapped", None) or address
    if address.is_loopback:
        return None
    return str(ipaddress.ip_network(f"{address}/64", strict=False)) if address.version == 6 else str(address)


def _route(sketcher: Sketcher, route: str, budget: Budget):
    """``route``'s endpoint, whose drawings ``budget`` counts; a request whose client has gone is dropped."""
    async def endpoint(request: Request) -> Response:
        try:
            req = await _read_json(request)
            cost, client = sketcher.drawings(route, req), _client(request.client and request.client.host)
            if why := budget.refusal(client, cost):
                return _json(503, {"error": why}, headers={"Retry-After": "1"})
            with budget.spent(client, cost):
                reply = await _unless_gone(request, sketcher.answer(route, req))
            return _json(200, reply)
        except ClientGone:
            return _json(499, {"error": "the client went before its answer was made"})  # sent to no one
        except BadRequest as e:
            return _json(e.status, {"error": str(e)}, close=e.status in (408, 411, 413))
        except DrawingFailed as e:
            if e.__cause__ is not None:  # a bug, not only bad numbers: its traceback belongs in the log
                traceback.print_exception(e.__cause__)
            return _json(500, {"error": str(e)})
        except Exception as e:  # a bug must cost one request, never the server
            traceback.print_exc()
            return _json(500, {"error": f"internal error ({type(e).__name__}); see the server's log"})

    return endpoint


async def _refused(request: Request, exc: HTTPException) -> Response:
    """Starlette's 404 and 405, as today's one-line JSON."""
    path = request.url.path[:100]
    # A 405 names the methods the path takes (RFC 9110), in one order: Starlette's comes from a set.
    allow = {"Allow": ", ".join(sorted(exc.headers["Allow"].split(", ")))} if exc.status_code == 405 else None
    if request.method == "POST":
        return _json(exc.status_code, {"error": f"no POST route {path}"}, close=True, headers=allow)
    if exc.status_code == 405:
        return _json(405, {"error": f"{path} takes {allow['Allow']}"}, headers=allow,
                     close=request.method not in ("GET", "HEAD"))
    return _json(exc.status_code, {"error": f"no such page: {path}"}, close=request.method not in ("GET", "HEAD"))


class HostCheck:
    """Starlette's TrustedHostMiddleware, its plain-text refusal turned into our one line of JSON.

    A page on another site whose name a DNS rebinding points at 127.0.0.1 reaches
    this server from the user's own browser, with its own name as the Host:
    answering only this server's own names and addresses closes that door, as
    Jupyter does. Every response the app itself sends is JSON or a page, so a
    plain-text 400 can only be the check's.
    """

    def __init__(self, app, allowed_hosts: list[str]):
        self.allowed = allowed_hosts
        self.check = TrustedHostMiddleware(app, allowed_hosts=allowed_hosts, www_redirect=False)

    async def __call__(self, scope, receive, send) -> None:
        refused = False

        async def send_json(message: dict) -> None:
            nonlocal refused
            if message["type"] == "http.response.start":
                kind = dict(message["headers"]).get(b"content-type", b"")
                refused = message["status"] == 400 and kind.startswith(b"text/plain")
                if refused:
                    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")[:100]
                    response = _json(400, {"error": f"refused: Host {host!r} is not a name of this server "
                                                    f"({', '.join(self.allowed)}); to reach it by another name, start "
                                                    "serve with --allow-host NAME"}, close=True)
                    await send({"type": "http.response.start", "status": 400, "headers": response.raw_headers})
                    await send({"type": "http.response.body", "body": response.body})
            if not refused:
                await send(message)

        await self.check(scope, receive, send_json)


def app(sketcher: Sketcher, allowed_hosts: list[str]) -> Starlette:
    """The ASGI application: the JSON routes, the page, the Host check."""
    pages = {"/": WEB / "index.html", **{f"/{p.name}": p for p in WEB.iterdir() if p.suffix in CONTENT_TYPES}}
    info = json.dumps(sketcher.info, allow_nan=False).encode()  # strict, once: a NaN would fail here, at start

    def page(path: Path):
        body, kind = path.read_bytes(), CONTENT_TYPES[path.suffix]

        async def endpoint(request: Request) -> Response:
            return _send(200, body, kind, headers={"Content-Security-Policy": PAGE_POLICY})

        return endpoint

    async def classes(request: Request) -> Response:
        return _send(200, info, "application/json")

    budget = Budget()
    routes = [Route("/api/classes", classes, methods=["GET"]),
              *(Route(f"/api/{name}", _route(sketcher, name, budget), methods=["POST"]) for name in sketcher.routes),
              *(Route(url, page(path), methods=["GET"]) for url, path in pages.items())]
    app = Starlette(routes=routes, middleware=[Middleware(HostCheck, allowed_hosts=allowed_hosts)],
                    exception_handlers={HTTPException: _refused})
    app.router.redirect_slashes = False  # /api/sample/ is a 404 in JSON, not a bodiless redirect (to no port)
    return app


def capacity() -> tuple[int, int]:
    """The backlog and the most connections open at once that keep the process below its file-descriptor limit,
    which is raised first (up to its hard limit) to fit ``BACKLOG`` and ``CONNECTIONS``.

    One accept() batch takes up to a backlog of descriptors before any connection can be closed, and a few
    batches can follow before the first closes land: connections take half the room, batches an eighth each.
    """
    want = FD_RESERVE + 2 * CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    room = (want if soft == resource.RLIM_INFINITY else soft) - FD_RESERVE
    return max(1, min(BACKLOG, room // 8)), max(1, min(CONNECTIONS, room // 2))


class Protocol(H11Protocol):
    """uvicorn's h11 protocol, with what a server facing slow or malformed clients needs.

    A request it cannot parse is answered with one line of JSON (and h11's reason), logged as one line. A
    connection that sends nothing is closed after ``IDLE`` seconds, as one idle between requests is (quietly: a
    browser opens such connections ahead of need); one that has begun a request head and not finished it
    ``HEAD_WAIT`` seconds after it began waiting for one (opened, or answered) is closed with a log line, its body
    included: a client trickling its body a byte at a time holds a connection no longer than one trickling its
    head. A client that stops reading its answers (its buffers and ours full) is closed after ``WRITE_WAIT``
    seconds. Past ``most`` open connections, the one waiting longest for a whole request, or for its answer to be
    read, makes room; where every one is being drawn for or answered, the newcomer is told so (503) and closed.
    """

    def __init__(self, *args, most: int = CONNECTIONS, **kwargs):
        super().__init__(*args, **kwargs)
        self.most = most
        self.waiting_since: float | None = None  # when it began waiting for a whole request, while it waits
        self.head_deadline: asyncio.TimerHandle | None = None  # once a head has begun to arrive
        self.ended = False  # the client has half-closed: it sends no more, and is answered before we close
        self.stalled_since: float | None = None  # when the client stopped reading its answer, while it has
        self.write_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.lingering: asyncio.TimerHandle | None = None  # closing once the body it refused has been dropped
        super().connection_made(_Lingering(transport, self))
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        self.waiting_since = self.loop.time()
        if len(self.connections) > self.most:  # closed ones stay in it until the loop's next turn: count the open
            live = [c for c in self.connections if not c.transport.is_closing()]
            if len(live) > self.most:
                idle = [c for c in live if c is not self and c.idle_since() is not None]
                if not idle:
                    self._refuse_busy()
                    return
                oldest = min(idle, key=lambda c: c.idle_since())
                oldest._close(f"{self.most} connections open, the most served at once; it had sent no whole request, "
                              f"or read none of its answer, in {self.loop.time() - oldest.idle_since():.1f} s")

    def idle_since(self) -> float | None:
        """Since when it has kept its connection without use (no whole request sent, its answer unread, or answered
        and lingering for the rest of a body it refused)."""
        if self.lingering:
            return self.lingering.when() - LINGER
        return self.waiting_since if self.waiting_since is not None else self.stalled_since

    def pause_writing(self) -> None:
        super().pause_writing()
        self._unstall()
        self.stalled_since = self.loop.time()
        self.write_deadline = self.loop.call_later(WRITE_WAIT, self._close,
                                                   f"its answers sat unread, every buffer full, for {WRITE_WAIT:g} s")

    def resume_writing(self) -> None:
        super().resume_writing()
        self._unstall()

    def _unstall(self) -> None:
        self.stalled_since, self.write_deadline = None, _cancelled(self.write_deadline)

    def _refuse_busy(self) -> None:
        """A 503 for a new connection when every open one is being drawn for or answered, then closed: a client
        that has sent its request meanwhile may see the close as a reset, but most learn why."""
        self.logger.warning("%s - connection refused: %d connections open, each being drawn for or answered",
                            _peer(self.client), self.most)
        body = json.dumps({"error": f"busy: {self.most} connections open, each being drawn for or answered; try "
                                    "again in a moment"}).encode()
        self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nretry-after: 1\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        self._close_quietly()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # the rest of a body it answered unread: dropped
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):  # a whole request, or bytes h11 refused
            self._stop_waiting()
        elif self.head_deadline is None and self.waiting_since is not None:  # a request has begun
            self.head_deadline = self.loop.call_at(self.waiting_since + HEAD_WAIT, self._close,
                                                   f"its request was not whole after {HEAD_WAIT:g} s")

    def on_response_complete(self) -> None:
        super().on_response_complete()  # starts the next request if a whole one is waiting (pipelined)
        if self.ended and not self.transport.is_closing() and self.cycle.response_complete:
            self.transport.close()  # half-closed, and every request it sent answered
        elif not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.waiting_since = self.loop.time()  # for the next request on this connection

    def eof_received(self) -> bool | None:
        """A client that half-closes once its request is sent (``nc -N``, ``shutdown(SHUT_WR)``) still gets its
        answer, as does one whose body stops short (a 408): asyncio closed the connection at the EOF, dropping
        the answer. With no request begun, it is closed as before."""
        self.ended = True
        if self.lingering:
            return None  # the client has sent all it will: close now
        return True if self.cycle is not None and not self.cycle.response_complete else None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._stop_waiting()
        self._unstall()
        self.lingering = _cancelled(self.lingering)

    def _stop_waiting(self) -> None:
        self.waiting_since, self.head_deadline = None, _cancelled(self.head_deadline)

    def _close(self, why: str) -> None:
        self.logger.warning("%s - connection closed: %s", _peer(self.client), why)
        self._close_quietly()

    def _close_quietly(self) -> None:
        stalled = self.stalled_since is not None  # close() would wait for the client to read what it never will
        self._stop_waiting()
        self._unstall()
        if stalled:
            self.transport.abort()
        else:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Answer bytes h11 refused: our JSON 400 if no answer has begun, and the request before them (a valid head
        then a malformed chunked body) gets no other, so the app's own answer cannot fail with a traceback."""
        error = sys.exc_info()[1]  # uvicorn calls this while handling h11's RemoteProtocolError
        reason = str(error or msg)[:200]
        self.logger.warning("%s - malformed HTTP request: %s", _peer(self.client), reason)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # what the app sends for it now goes nowhere, as to a client gone
            self.cycle.message_event.set()
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = getattr(error, "error_status_hint", 400)
            body = json.dumps({"error": f"malformed HTTP request: {reason}"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            for event in (h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase.encode()),
                          h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
        self.transport.close()


class _Lingering:
    """A connection's transport, whose close after an answer sent while the client was still sending the request's
    body (answered unread) shuts our side first, then drops what still arrives until the client closes or ``LINGER``
    seconds pass, and only then closes: closed at once, the kernel would reset the connection over those unread
    bytes, and a reset destroys an answer the client has not yet read."""

    def __init__(self, transport: asyncio.Transport, protocol: Protocol):
        self._transport, self._protocol = transport, protocol

    def __getattr__(self, name: str):
        return getattr(self._transport, name)

    def close(self) -> None:
        protocol, transport = self._protocol, self._transport
        answered_unread = protocol.conn.their_state is h11.SEND_BODY and \
            protocol.conn.our_state in (h11.MUST_CLOSE, h11.CLOSED)
        if protocol.lingering or not answered_unread or transport.is_closing() or not transport.can_write_eof():
            transport.close()
            return
        protocol.lingering = protocol.loop.call_later(LINGER, transport.close)
        transport.write_eof()  # once the answer is sent
        transport.resume_reading()


def _cancelled(timer: asyncio.TimerHandle | None) -> None:
    """``timer`` cancelled, if there is one: None, what a deadline no longer set holds."""
    if timer is not None:
        timer.cancel()


def _peer(client: tuple | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"


class _SaidBetter(logging.Filter):
    """Drops uvicorn's "Invalid HTTP request received." (``Protocol`` logs the client and h11's reason instead), and
    its two lines on an ``Upgrade`` header, answered as any request (``ws="none"``), whose advice to install a
    WebSocket library any page the user visits could have it print again and again."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Invalid HTTP request received.", "Unsupported upgrade request.",
                                                   "No supported WebSocket library"))


def allowed_hosts(host: str, extra: Sequence[str] = ()) -> list[str]:
    """The Host values served: loopback names, the address listened on, ``--allow-host``'s; all on every interface."""
    if host in ANY_ADDRESS or "*" in extra:
        return ["*"]
    own = f"[{host}]" if ":" in host else host
    return list(dict.fromkeys([*LOOPBACK, own.lower(), *(e.lower() for e in extra)]))


class SketchServer:
    """The HTTP server: uvicorn serving ``app`` on a socket bound at once (so the port is known before it runs).

    ``serve_forever`` runs it in the calling thread (in the main thread, Ctrl-C
    stops it: uvicorn finishes the requests in flight first); ``shutdown``
    stops it from another thread.
    """

    def __init__(self, sketcher: Sketcher, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False,
                 allow_hosts: Sequence[str] = ()):
        self.sketcher = sketcher
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        backlog, most = capacity()
        try:
            self.socket = socket.create_server((host, port), family=family, backlog=backlog)
        except OSError as e:
            raise OSError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port or --host") from None
        self.server_address = self.socket.getsockname()[:2]
        # uvicorn listens again with its own backlog (2,048 unless told), which is also how many accept() takes at once
        config = uvicorn.Config(app(sketcher, allowed_hosts(host, allow_hosts)), http=partial(Protocol, most=most),
                                lifespan="off", log_config=_logging(quiet), server_header=False, backlog=backlog,
                                timeout_keep_alive=IDLE, timeout_graceful_shutdown=5, ws="none")
        self._server = uvicorn.Server(config)
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        self._server.should_exit = True
        self._stopped.wait()

    def server_close(self) -> None:
        self.socket.close()

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _logging(quiet: bool) -> dict:
    """uvicorn's log on stderr (stdout's first line is the URL): requests one a line, unless quiet; warnings."""
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain",
               "filters": ["said_better"]}
    return {"version": 1, "disable_existing_loggers": False, "filters": {"said_better": {"()": _SaidBetter}},
            "formatters": {"plain": {"format": "%(asctime)s %(message)s"}}, "handlers": {"stderr": handler},
            "loggers": {"uvicorn.error": {"handlers": ["stderr"], "level": "ERROR" if quiet else "WARNING",
                                          "propagate": False},
                        "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING" if quiet else "INFO",
                                           "propagate": False}}}
