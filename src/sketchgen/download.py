"""Fetching Google QuickDraw *simplified* drawings: one ndjson file per class, cached on disk.

Class files run to tens of megabytes over connections that drop, so the body is streamed to a
``.part`` file that a retry (or a later process) resumes with an HTTP Range request. Nothing
reaches the cache until every line has been checked, and then only by an atomic rename: the
cache holds whole, valid files or nothing. A lock per class keeps two processes from fetching
the same file at once.

Every transfer ends: a body larger than any class file (``MAX_DOWNLOAD_BYTES``) is refused, from
its Content-Length when it has one, and one that comes slower than ``SPEED_LIMIT`` bytes a second
for ``SPEED_TIME`` seconds is dropped and retried, as curl's ``--speed-limit``/``--speed-time``
do; the socket's ``timeout`` bounds one read that gets nothing at all, and a watch (``_Watch``) shuts a connection
that brings nothing of the body for ``timeout + speed_time`` seconds, whatever it sends instead (a status line a
byte at a time, endless ``100 Continue``s, trailers without end). Only http(s) is fetched, redirects included.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import math
import os
import re
import reprlib
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from tqdm import tqdm

from sketchgen.errors import SketchgenError, one_line
from sketchgen.fileio import FileRefused, atomic_write, linked, locked, open_own, open_regular, read_lines

DEFAULT_BASE_URL = "https://storage.googleapis.com/quickdraw_dataset/full/simplified/"
# No drawing is a line this long: the longest in ../shared/quickdraw is 3.7 KB (simplified) and 37 KB (raw,
# with timestamps), so 4 MiB is over 100 times that. A longer line is a file without newlines, not a drawing.
MAX_LINE_BYTES = 4 << 20
# A field's value as shown in a one-line message: short, however long or deep the value is.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 1, 3, 3, 24, 20

# QuickDraw's largest classes hold about 340,000 drawings (snowman) and its heaviest lines average about 1 KB
# (blackberry, in ../shared/quickdraw), so no class file reaches 350 MB; 1 GiB leaves three times that. A
# body beyond it is no class file: a server streaming for ever would otherwise fill the disk.
MAX_DOWNLOAD_BYTES = 1 << 30
# A transfer averaging under SPEED_LIMIT bytes a second over SPEED_TIME seconds is dropped (and retried,
# resuming): a 100 MB class at 1 KiB/s would take a day, and a server sending a byte every 5 s would
# hold the download for ever, since each read gets something before the socket's timeout.
SPEED_LIMIT = 1024
SPEED_TIME = 30.0

_CHUNK = 1 << 16
_BACKOFF_S = 0.5
# Failures worth another try: the network, not the server's answer, went wrong.
_TRANSIENT = (http.client.HTTPException, ConnectionError, TimeoutError, urllib.error.URLError, ssl.SSLError)

_T = TypeVar("_T")


class DownloadError(SketchgenError):
    """A download or its data went wrong; the message is one line naming class, source and reason."""


class _TooLarge(Exception):
    """A body larger than any class file: no retry mends that."""


class _Refused(Exception):
    """An answer no retry mends (a redirect to a scheme other than http(s), or to no address at all)."""


class _Unwritable(Exception):
    """The partial file could not be written (a full disk): no retry mends that, and the network is not to blame."""


def default_cache_dir() -> Path:
    """Where downloads live unless told otherwise: ``$SKETCHGEN_CACHE``, else the XDG cache."""
    return env_folder(*cache_home())


def cache_home() -> tuple[Path, str]:
    """The download cache, and the environment variable that put it there: ``$SKETCHGEN_CACHE``, else
    ``$XDG_CACHE_HOME/sketchgen/quickdraw`` (an absolute one), else ``$HOME/.cache/sketchgen/quickdraw``."""
    if (path := env_path("SKETCHGEN_CACHE")) is not None:
        return path, "SKETCHGEN_CACHE"
    if (path := env_path("XDG_CACHE_HOME")) is not None:
        return path / "sketchgen" / "quickdraw", "XDG_CACHE_HOME"
    return Path.home() / ".cache" / "sketchgen" / "quickdraw", "HOME"


def env_path(variable: str) -> Path | None:
    """The folder the environment variable names, or None where it names none: the one reading of every folder
    variable. Quoted (``SKETCHGEN_DATA='~/qd'``), ``~`` reaches us as it is: expanded here as a shell would have
    (unexpanded, it made a folder named ``~`` in the working folder). A relative path is the user's choice, from
    the working folder, but in an ``XDG_`` variable it is ignored, as the XDG Base Directory spec asks."""
    text = os.environ.get(variable, "")
    if variable.startswith("XDG_"):
        return Path(text) if os.path.isabs(text) else None
    if not text:
        return None
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~name of no user here, or no home folder known
        raise FileRefused(f"{variable}={text!r}: {text.split('/')[0]} is no home folder known here: "
                          f"point {variable} at a folder") from None


def env_folder(path: Path, variable: str) -> Path:
    """``path``, a folder of sketchgen's that ``$variable`` placed, if it is a folder or can be made one; else
    FileRefused naming the variable (making it would fail with ``[Errno 17] File exists``, naming neither it nor
    what to do)."""
    for above in (path, *path.parents):
        if above.is_dir():
            return path
        if os.path.lexists(above):
            kind = "a broken link" if not above.exists() else "a file" if above.is_file() else "a special file"
            cached = "" if above == path else f" (for sketchgen's cache {path})"
            raise FileRefused(f"{variable}={os.environ.get(variable, '')!r}: {above} is {kind}, not a folder{cached}: "
                              f"point {variable} at a folder")
    return path


def validate_ndjson(path: str | os.PathLike, name: str) -> int:
    """Check that every line of ``path`` is a drawing of class ``name``; return the line count."""
    # Larger is no class file: not read through. Never through a link: a downloaded class file is sketchgen's own.
    with open_regular(path, MAX_DOWNLOAD_BYTES, "class file", own=True) as f:
        return _check_lines(f, name, source=str(path))


def _check_lines(f: BinaryIO, name: str, source: str) -> int:
    """Raise DownloadError at the first line that is not a ``name`` drawing; count the lines."""
    count = 0
    for count, line in enumerate(read_lines(f, MAX_LINE_BYTES), 1):
        if line is None:
            raise DownloadError(f"class {name!r} from {source}: line {count}: longer than {MAX_LINE_BYTES} bytes, "
                                "not a drawing")
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: [[[[... nested too deep for the parser
            reason = "not JSON"
        else:
            if not isinstance(record, dict):
                reason = "not a JSON object"
            elif record.get("word") != name:
                reason = f"word is {shown(record.get('word'))}, expected {name!r}"
            elif not isinstance(record.get("drawing"), list):
                reason = "no 'drawing' list"
            else:
                continue
        raise DownloadError(f"class {name!r} from {source}: line {count}: {reason}")
    if count == 0:
        raise DownloadError(f"class {name!r} from {source}: empty, no drawings")
    return count


def shown(value: object) -> str:
    """``value`` for a message: ``repr`` cut short (a line may hold megabytes of one field)."""
    return _SHORT.repr(value)


def download_class(
    name: str,
    dest_dir: str | os.PathLike,
    base_url: str = DEFAULT_BASE_URL,
    *,
    progress: bool = True,
    timeout: float = 30,
    retries: int = 3,
    speed_limit: float = SPEED_LIMIT,
    speed_time: float = SPEED_TIME,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Fetch a class's whole file into ``dest_dir/<name>.ndjson`` unless a valid copy is there.

    A dropped connection, or one slower than ``speed_limit`` bytes/s for ``speed_time`` s, is retried
    up to ``retries`` more times, resuming where it stopped. A body over ``max_bytes`` is refused and
    nothing of it kept. The partial file is sketchgen's own (``open_own``): never a link's target.
    """
    dest, part, url = _locations(name, dest_dir, base_url)
    with locked(dest, f"{dest}: another sketchgen process or thread is downloading it"):
        if _is_valid(dest, name):
            return dest

        def fetch() -> None:
            with _Watch(timeout, speed_time) as watch:
                response, offset = _open(url, part.stat().st_size if part.exists() else 0, timeout, watch)
                with response, os.fdopen(_written(open_own, part, os.O_WRONLY), "wb") as out:
                    _written(out.seek, offset)
                    _written(out.truncate)  # to where the answer starts: 0 if the server ignored the Range
                    _copy(response, out, start=offset, most=max_bytes, speed=(speed_limit, speed_time), desc=name,
                          progress=progress, alive=watch.fed)
                    _written(out.flush)
                    _written(os.fsync, out.fileno())

        try:
            _retrying(fetch, name, url, retries)
        except _TooLarge as e:  # nothing of it is a class file: keep none of it
            part.unlink(missing_ok=True)
            raise DownloadError(f"class {name!r} from {url}: {e}") from None
        except _Unwritable as e:
            raise DownloadError(f"class {name!r} from {url}: could not write {part} ({e}); what was fetched is "
                                "kept there, and the next try goes on from it") from None
        try:
            with open_regular(part, own=True) as f:  # ours: a link planted there is refused, not read and kept
                _check_lines(f, name, source=url)
        except DownloadError:
            part.unlink()
            raise
        os.replace(part, dest)
    return dest


def download_slice(
    name: str,
    dest_dir: str | os.PathLike,
    base_url: str = DEFAULT_BASE_URL,
    max_bytes: int = 4_000_000,
    *,
    progress: bool = True,
    timeout: float = 30,
    retries: int = 3,
    speed_limit: float = SPEED_LIMIT,
    speed_time: float = SPEED_TIME,
) -> Path:
    """Fetch only the whole lines within the first ``max_bytes`` of a class's file.

    A few megabytes give a few thousand real drawings, enough to try things without the full
    download. A valid file already at the destination (full or slice) is kept. Slow transfers are
    retried as ``download_class``'s are.
    """
    dest, _, url = _locations(name, dest_dir, base_url)
    with locked(dest, f"{dest}: another sketchgen process or thread is downloading it"):
        if _is_valid(dest, name):
            return dest

        def fetch() -> bytes:
            request = urllib.request.Request(url, headers={"Range": f"bytes=0-{max_bytes - 1}"})
            body = io.BytesIO()
            # A server without Range support answers 200 with everything: read only the start.
            with _Watch(timeout, speed_time) as watch, _opener(watch).open(request, timeout=timeout) as response:
                _copy(response, body, limit=max_bytes, speed=(speed_limit, speed_time), desc=name, progress=progress,
                      alive=watch.fed)
            return body.getvalue()

        head = _retrying(fetch, name, url, retries)
        lines = head[: head.rfind(b"\n") + 1]
        if not lines:
            raise DownloadError(f"class {name!r} from {url}: no complete line in the first {max_bytes} bytes")
        _check_lines(io.BytesIO(lines), name, source=url)
        with atomic_write(dest, own=True) as out:
            out.write(lines)
    return dest


def checked_base_url(url: str) -> str:
    """``url`` if class files can be fetched under it: http or https, a host, and no query, fragment, space or control
    character (each would move or cut the class's name off the URL); else DownloadError, one line. urllib would
    otherwise open ``file:`` (a FIFO there blocks for ever) and ``data:`` URLs, and retry a scheme it does not know."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # a ValueError where it is not a port
    except (ValueError, TypeError, AttributeError):  # an unclosed [IPv6 address, a port past 65535, not a str
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or "?" in url or "#" in url \
            or not url.isprintable() or any(c.isspace() for c in url):
        raise DownloadError(f"{shown(url)} is not a base URL to fetch class files from: give an http:// or https:// "
                            "address such as " + DEFAULT_BASE_URL)
    return url


def _locations(name: str, dest_dir: str | os.PathLike, base_url: str) -> tuple[Path, Path, str]:
    """The destination, its partial file and the URL; refuse names that would escape ``dest_dir``, and, before
    anything is fetched, a ``dest_dir`` that is no folder, a destination that is one (found at the end, after the
    whole transfer, as ``[Errno 21]``) and one that is a symbolic link (a cached file read through it)."""
    if not name or "/" in name or name.startswith("."):
        raise DownloadError(f"{name!r} is not a QuickDraw class name")
    dest_dir = Path(dest_dir)
    base_url = checked_base_url(base_url)
    base = base_url if base_url.endswith("/") else base_url + "/"
    url = f"{base}{urllib.parse.quote(name)}.ndjson"
    dest = dest_dir / f"{name}.ndjson"
    above = next((p for p in (dest_dir, *dest_dir.parents) if os.path.lexists(p)), None)
    if above is not None and not above.is_dir():
        raise DownloadError(f"{above} is {'a file' if above.is_file() else 'not a folder'}, where class {name!r} "
                            "is to be downloaded into a folder: give another")
    if dest.is_symlink():  # read through, it would be some other file; ours are never read or written through links
        raise linked(dest, "file")
    if dest.is_dir():
        raise DownloadError(f"{dest} is a folder, where class {name!r}'s file goes: move it")
    return dest, dest_dir / f".{name}.ndjson.part", url


def _is_valid(path: Path, name: str) -> bool:
    try:
        validate_ndjson(path, name)
    except (DownloadError, OSError):  # missing, unreadable, or not a regular file (a FIFO): fetched anew
        return False
    return True


def _open(url: str, have: int, timeout: float, watch: _Watch) -> tuple[http.client.HTTPResponse, int]:
    """Ask for the bytes from ``have`` on; return the response and the offset its body starts at.

    Only a 206 whose Content-Range starts at ``have`` continues the partial file; a 200 means
    the server ignored the Range and sends everything, so writing restarts at zero.
    """
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = _opener(watch).open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the partial file is already as long as the file, or longer
            e.close()
            return _open(url, 0, timeout, watch)
        raise
    if response.status != 206 or not have:
        return response, 0
    # At most 19 digits (a file under 10 exabytes): int() refuses a number of 5,000 with a ValueError.
    match = re.fullmatch(r"bytes (\d{1,19})-\d+/(?:\d+|\*)", response.headers.get("Content-Range", ""))
    if match and int(match[1]) == have:
        return response, have
    response.close()  # some other range: ask for the whole file instead
    return _open(url, 0, timeout, watch)


class _Watch:
    """Shuts a connection of one attempt once it has brought nothing of the body for ``timeout + speed_time``
    seconds since it was made (``fed`` is called with each piece): a socket's timeout bounds one read only, and a
    server that sends a byte each time could hold a download for ever before the body (a status line or headers a
    byte at a time, endless ``100 Continue``s) or after it (trailers). What the shut connection raises is told as
    a TimeoutError, retried. Connecting is the socket's timeout's to bound, not the watch's."""

    def __init__(self, timeout: float | None, speed_time: float):
        self.patience = (timeout or 0) + speed_time  # no timeout (None): the speed limit's span alone
        self.deadline, self.sock, self.expired = math.inf, None, False
        self.lock = threading.Lock()  # a connection made as the watch fires is watched, and the old one shut alone
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="sketchgen-download-watch", daemon=True)

    def __enter__(self) -> _Watch:
        if math.isfinite(self.patience):  # else no limit to keep
            self.thread.start()
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()
        if error is not None and self.expired:
            raise TimeoutError(f"brought nothing of the file for {self.patience:g} s") from None

    def guard(self, sock: socket.socket) -> None:
        """Watch a new connection (a redirect's, a restart's), with its own patience: first its deadline, so that
        the watch never holds the new socket to the old deadline."""
        with self.lock:
            self.fed()
            self.sock, self.expired = sock, False

    def fed(self) -> None:
        self.deadline = time.monotonic() + self.patience

    def _watch(self) -> None:
        # Awake at least 4 times a patience: a connection made while it sleeps is held to its own deadline late
        # by a quarter of it at most.
        while not self.done.wait(max(0.05, min(self.patience / 4, self.deadline - time.monotonic()))):
            with self.lock:
                sock = self.sock if time.monotonic() >= self.deadline else None
                if sock is not None:
                    self.expired, self.sock = True, None
            if sock is not None:
                with contextlib.suppress(OSError):  # the plain socket's shutdown, under TLS too: the reading
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # thread then sees the end of the data


class _Guarded:
    """A connection whose socket a ``_Watch`` may shut."""

    def __init__(self, *args, watch: _Watch, **kwargs):
        super().__init__(*args, **kwargs)
        self.watch = watch

    def connect(self) -> None:
        super().connect()
        self.watch.guard(self.sock)


class _Plain(_Guarded, http.client.HTTPConnection):
    pass


class _Secure(_Guarded, http.client.HTTPSConnection):
    pass


class _Connecting(urllib.request.AbstractHTTPHandler):
    """urllib's http and https handlers, with guarded connections (TLS set up as urllib's, when each is made)."""

    def __init__(self, watch: _Watch):
        super().__init__()
        self.watch = watch

    def http_open(self, request):
        return self.do_open(_Plain, request, watch=self.watch)

    def https_open(self, request):
        return self.do_open(_Secure, request, watch=self.watch)

    http_request = https_request = urllib.request.AbstractHTTPHandler.do_request_


class _Redirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, to http(s) addresses only: it followed one to ftp:// (fetched the file there, then failed
    with a traceback), and one to ``http://[::1`` raised a ValueError."""

    def http_error_302(self, request, fp, code, msg, headers):
        where = headers.get("Location") or headers.get("URI") or ""
        try:
            target = urllib.parse.urlsplit(urllib.parse.urljoin(request.full_url, where))
            target.port  # a ValueError where it is not a port
        except ValueError:
            target = None
        if target is None or target.scheme not in ("http", "https") or not target.hostname:
            fp.close()
            raise _Refused(f"redirected to {_said(where)!r}, not an http(s) address")
        return super().http_error_302(request, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _opener(watch: _Watch) -> urllib.request.OpenerDirector:
    """What fetches a class file: http(s) alone (through the environment's proxy, if any), redirects to http(s)."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), _Connecting(watch),
                    urllib.request.HTTPDefaultErrorHandler(), _Redirects(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _copy(
    response: http.client.HTTPResponse,
    out: BinaryIO,
    *,
    desc: str,
    progress: bool,
    start: int = 0,
    limit: float = math.inf,
    most: float = math.inf,
    speed: tuple[float, float] = (SPEED_LIMIT, SPEED_TIME),
    alive: Callable[[], None] = lambda: None,
) -> None:
    """Stream at most ``limit`` body bytes to ``out`` with a progress bar on stderr.

    http.client reports a connection closed early as a plain end of data, so the byte count is
    checked against Content-Length here, and a short body raises ConnectionError to be retried.
    A file (``start`` bytes, then the body) of more than ``most`` bytes raises _TooLarge, before
    reading when the Content-Length says so; a body averaging under ``speed`` = (bytes/s, s) over a
    span of that many seconds raises TimeoutError, to be retried. ``alive`` is called with each piece of the body.
    """
    promised = response.length  # http.client's reading of Content-Length: None if absent or not a count
    if promised is not None and start + min(promised, limit) > most:
        raise _TooLarge(f"it announces {start + promised:,} bytes, more than any class file "
                        f"({most:,.0f} at most); refused unread")
    want = limit if promised is None else min(promised, limit)
    got = 0
    total = start + want if want < math.inf else None
    speed_limit, speed_time = speed
    since, recent = time.monotonic(), 0
    with tqdm(total=total, initial=start, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
              file=sys.stderr, disable=None if progress else True, leave=False) as bar:
        while got < want:
            chunk = response.read1(int(min(_CHUNK, want - got)))  # what has arrived: kept if it stalls
            if not chunk:
                break
            if start + got + len(chunk) > most:
                raise _TooLarge(f"more than {most:,.0f} bytes, more than any class file; refused, nothing kept")
            _written(out.write, chunk)
            alive()
            got += len(chunk)
            bar.update(len(chunk))
            recent += len(chunk)
            if (spent := time.monotonic() - since) >= speed_time:
                if recent < speed_limit * spent:
                    raise TimeoutError(f"slower than {speed_limit:g} bytes/s for {speed_time:g} s")
                since, recent = time.monotonic(), 0
    if promised is not None and got < want:
        raise ConnectionError(f"connection closed with {want - got} of {want} bytes still to come")


def _retrying(fetch: Callable[[], _T], name: str, url: str, retries: int) -> _T:
    """Run ``fetch``, again after a growing pause while the network fails, at most ``retries``
    more times. HTTP errors are final, except 5xx: usually a passing problem of the server."""
    attempt = 0
    while True:
        try:
            return fetch()
        except urllib.error.HTTPError as e:
            e.close()
            if e.code < 500 or attempt >= retries:
                raise DownloadError(f"class {name!r} from {url}: HTTP {e.code} {_said(e.reason)}") from None
        except _Refused as e:
            raise DownloadError(f"class {name!r} from {url}: {e}") from None
        except _TRANSIENT as e:
            if attempt >= retries:
                reason = e.reason if isinstance(e, urllib.error.URLError) else str(e) or type(e).__name__
                raise DownloadError(
                    f"class {name!r} from {url}: gave up after {attempt + 1} attempts: {_said(reason)}"
                ) from None
        time.sleep(_BACKOFF_S * 2**attempt)
        attempt += 1


def _written(write: Callable[..., _T], *args) -> _T:
    """``write(*args)`` on the partial file; what fails is the disk's (a full disk, a file size limit, no permission),
    not the network's, and is said so, not retried. A link or a FIFO at its name is refused as it is."""
    try:
        return write(*args)
    except FileRefused:
        raise
    except OSError as e:
        raise _Unwritable(e.strerror or str(e)) from None


def _said(reason: object) -> str:
    """A server's words (a reason phrase, a status line) for a message: one line, cut short (one was 60 KB)."""
    text = one_line(str(reason))
    return text if len(text) <= 200 else text[:200] + "..."
