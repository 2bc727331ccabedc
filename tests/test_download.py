"""The downloader against a real HTTP server on 127.0.0.1 serving real QuickDraw files.

The server is a small Range-capable handler that can be told to misbehave the ways real
networks and servers do: drop the connection half way, stall, ignore Range, fail with 503,
or serve the wrong bytes.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from sketchgen import classfiles, cli, fileio
from sketchgen.classfiles import DataError
from sketchgen.download import MAX_DOWNLOAD_BYTES, DownloadError, download_class, download_slice, validate_ndjson
from sketchgen.fileio import FileRefused

QUICKDRAW = Path(__file__).resolve().parents[2] / "shared" / "quickdraw"
SIMPLIFIED = QUICKDRAW / "simplified"
if not SIMPLIFIED.is_dir():
    pytest.skip(f"QuickDraw samples not found at {SIMPLIFIED}", allow_module_level=True)


def source(name: str) -> bytes:
    return (SIMPLIFIED / f"{name}.ndjson").read_bytes()


class Handler(BaseHTTPRequestHandler):
    """Serves SIMPLIFIED/<class>.ndjson with Range support, misbehaving as ``server.faults`` says.

    faults: a list of one-shot faults used up by successive requests ("drop", "stall", "slow": half the file, then
    2 KiB a second until the test is over, "503", "endless": the file
    again and again with no Content-Length, "trickle": a byte every ``server.trickle_s`` seconds, "huge": a
    Content-Length of 5 GB); server.ignore_range answers every request 200; server.bodies overrides a file's bytes.
    """

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.requests.append((self.path, self.headers.get("Range")))
            fault = server.faults.pop(0) if server.faults else None
        name = urllib.parse.unquote(self.path.rsplit("/", 1)[-1]).removesuffix(".ndjson")
        body = server.bodies.get(name)
        if body is None and (SIMPLIFIED / f"{name}.ndjson").is_file():
            body = source(name)
        if fault == "503" or body is None:
            self.send_error(503 if fault == "503" else 404)
            return
        if fault in ("endless", "huge"):
            self.send_response(200)
            if fault == "huge":
                self.send_header("Content-Length", str(5 << 30))
            self.end_headers()
            with contextlib.suppress(OSError):  # until the client hangs up
                while not server.released.is_set():
                    self.wfile.write(body)
            self.close_connection = True
            return
        start, end = 0, len(body) - 1
        ranged = self.headers.get("Range") and not server.ignore_range
        if ranged:
            first, last = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers["Range"]).groups()
            start, end = int(first), min(int(last or end), end)
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(206 if ranged else 200)
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        self.send_header("Content-Length", str(end + 1 - start))
        self.end_headers()
        payload = body[start : end + 1]
        if fault == "trickle":
            with contextlib.suppress(OSError):
                for i in range(len(payload)):
                    if server.released.wait(server.trickle_s):
                        break
                    self.wfile.write(payload[i : i + 1])
            self.close_connection = True
            return
        if fault == "slow":  # half the file, then 2 KiB a second - above the low-speed limit - until released
            at = len(payload) // 2
            self.wfile.write(payload[:at])
            while at < len(payload) and not server.released.wait(1.0):
                self.wfile.write(payload[at : at + 2048])
                self.wfile.flush()
                at += 2048
            self.close_connection = True
            return
        if fault in ("drop", "stall"):
            self.wfile.write(payload[: len(payload) // 2])
            if fault == "stall":  # hold the connection open until the test is over, or 10 s
                server.released.wait(10)
            self.close_connection = True
            return
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def httpd():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.lock = threading.Lock()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(httpd):
    """The shared server, behaving well and with no requests seen, for one test."""
    httpd.requests, httpd.faults, httpd.bodies = [], [], {}
    httpd.ignore_range = False
    httpd.released = threading.Event()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/simplified/"
    yield httpd
    httpd.released.set()


def fetch(server, name, tmp_path, **kwargs):
    return download_class(name, tmp_path, server.url, progress=False, timeout=5, **kwargs)


@pytest.mark.parametrize("name", ["circle", "The Eiffel Tower"])
def test_plain_download_is_byte_identical(server, tmp_path, name):
    path = fetch(server, name, tmp_path)
    assert path == tmp_path / f"{name}.ndjson"
    assert path.read_bytes() == source(name)
    assert server.requests == [(f"/simplified/{urllib.parse.quote(name)}.ndjson", None)]
    assert not (tmp_path / f".{name}.ndjson.part").exists()


def test_dropped_connection_resumes_with_range(server, tmp_path):
    server.faults = ["drop"]
    path = fetch(server, "circle", tmp_path)
    assert path.read_bytes() == source("circle")
    half = len(source("circle")) // 2
    assert [r for _, r in server.requests] == [None, f"bytes={half}-"]


def test_stalled_connection_times_out_and_resumes(server, tmp_path):
    server.faults = ["stall"]
    path = download_class("circle", tmp_path, server.url, progress=False, timeout=0.3)
    assert path.read_bytes() == source("circle")
    assert server.requests[1][1] == f"bytes={len(source('circle')) // 2}-"


def test_leftover_part_file_is_resumed(server, tmp_path):
    body = source("monkey")
    (tmp_path / ".monkey.ndjson.part").write_bytes(body[:250_000])
    path = fetch(server, "monkey", tmp_path)
    assert path.read_bytes() == body
    assert server.requests == [("/simplified/monkey.ndjson", "bytes=250000-")]
    assert not (tmp_path / ".monkey.ndjson.part").exists()


def test_leftover_complete_part_file_starts_over(server, tmp_path):
    (tmp_path / ".circle.ndjson.part").write_bytes(source("circle"))
    path = fetch(server, "circle", tmp_path)
    assert path.read_bytes() == source("circle")
    assert [r for _, r in server.requests] == [f"bytes={len(source('circle'))}-", None]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range = True
    server.faults = ["drop"]
    (tmp_path / ".circle.ndjson.part").write_bytes(b"stale bytes that must not survive")
    path = fetch(server, "circle", tmp_path)
    assert path.read_bytes() == source("circle")
    assert all(r is not None for _, r in server.requests) and len(server.requests) == 2


def test_gives_up_after_retries(server, tmp_path):
    server.faults = ["drop", "drop"]
    with pytest.raises(DownloadError, match=r"'circle' from http://127\.0\.0\.1.*gave up after 2 attempts"):
        fetch(server, "circle", tmp_path, retries=1)
    assert not (tmp_path / "circle.ndjson").exists()


def test_server_error_is_retried(server, tmp_path):
    server.faults = ["503"]
    assert fetch(server, "circle", tmp_path).read_bytes() == source("circle")
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!doctype html>\n<html><body>Service unavailable</body></html>\n", "line 1: not JSON"),
        (b"".join(source("circle").splitlines(keepends=True)[:3])[:-40], "line 3: not JSON"),
        (source("dog"), "line 1: word is 'dog', expected 'circle'"),
        (b'{"word": "circle", "drawing": [[[0], [0]]]}\n[1, 2]\n', "line 2: not a JSON object"),
        (b'{"word": "circle", "strokes": []}\n', "line 1: no 'drawing' list"),
        (b"", "empty"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1: not JSON"),  # too deep for json: not a RecursionError
        (source("circle").splitlines(keepends=True)[0] + b"[0," * (2 << 20), "line 2: longer than 4194304 bytes"),
    ],
    ids=["html", "truncated", "other class", "not an object", "no drawing", "empty", "nested 100,000 deep",
         "6 MB line without a newline"],
)
def test_bad_data_is_refused_and_never_cached(server, tmp_path, body, message):
    server.bodies["circle"] = body
    with pytest.raises(DownloadError, match=re.escape(message)) as error:
        fetch(server, "circle", tmp_path)
    assert "\n" not in str(error.value) and "'circle'" in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["circle.ndjson.lock"]


def test_existing_file_is_never_replaced_by_garbage(server, tmp_path):
    server.bodies["circle"] = b"<html>oops</html>\n"
    valid = b"".join(source("circle").splitlines(keepends=True)[:10])
    (tmp_path / "circle.ndjson").write_bytes(valid)
    assert fetch(server, "circle", tmp_path).read_bytes() == valid
    assert server.requests == []
    # A damaged file is refetched, but a bad answer leaves it as it was rather than losing it.
    (tmp_path / "circle.ndjson").write_bytes(valid[:-30])
    with pytest.raises(DownloadError, match="line 1: not JSON"):
        fetch(server, "circle", tmp_path)
    assert (tmp_path / "circle.ndjson").read_bytes() == valid[:-30]


def test_cached_file_makes_no_request(server, tmp_path):
    fetch(server, "circle", tmp_path)
    fetch(server, "circle", tmp_path)
    assert len(server.requests) == 1


def test_concurrent_downloads_of_one_class_fetch_once(server, tmp_path):
    server.faults = ["drop"]  # keeps the first download busy while the second waits on the lock
    results = []
    threads = [threading.Thread(target=lambda: results.append(fetch(server, "circle", tmp_path))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0].read_bytes() == source("circle")
    assert len(server.requests) == 2  # the dropped first try and its resumption, nothing more


def test_missing_class_is_http_404(server, tmp_path):
    with pytest.raises(DownloadError, match=r"'no such thing' from http://\S+/no%20such%20thing\.ndjson: HTTP 404"):
        fetch(server, "no such thing", tmp_path)
    assert len(server.requests) == 1


def test_name_cannot_escape_the_cache(tmp_path):
    with pytest.raises(DownloadError, match="not a QuickDraw class name"):
        download_class("../circle", tmp_path, "http://127.0.0.1:9/", progress=False)


BAD_BASE_URLS = ["file://{fifo}/", "file:///dev/zero#", "data:,", "http://[::1", "gopher://127.0.0.1/",
                 "http://127.0.0.1:99999/", "http://127.0.0.1/?q=", "http:///no-host/", "http://127.0.0.1/a b/"]


@pytest.mark.parametrize("url", BAD_BASE_URLS)
def test_a_base_url_that_is_not_an_http_address_is_refused_at_once(tmp_path, capsys, url):
    """An audit's find: urllib opens file: and data: URLs, so a FIFO hung the download for ever and a file or a
    data: URL ended in an AttributeError traceback; an unclosed [IPv6 address was a ValueError traceback, and a
    scheme urllib does not know was tried four times. Refused before anything is made, in the library and as the
    flag is parsed (exit 2)."""
    os.mkfifo(tmp_path / "circle.ndjson")
    url = url.format(fifo=tmp_path)
    with pytest.raises(DownloadError, match="is not a base URL to fetch class files from: give an http:// or "
                                            "https:// address"):
        download_class("circle", tmp_path / "dl", url, progress=False, retries=0)
    with pytest.raises(SystemExit) as done:
        cli.main(["download", "circle", "--base-url", url, "--data-dir", str(tmp_path / "dl")])
    assert done.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("sketchgen download: error: argument --base-url: ") and "Traceback" not in line
    assert not (tmp_path / "dl").exists()


@pytest.mark.parametrize("ignore_range", [False, True])
def test_slice_keeps_only_whole_valid_lines(server, tmp_path, ignore_range):
    server.ignore_range = ignore_range
    path = download_slice("circle", tmp_path, server.url, max_bytes=20_000, progress=False, timeout=5)
    data = path.read_bytes()
    assert len(data) < 20_000 and data.endswith(b"\n")
    assert source("circle").startswith(data)
    assert validate_ndjson(path, "circle") == data.count(b"\n") > 10
    assert server.requests[0][1] == "bytes=0-19999"


def test_slice_of_a_small_file_is_the_whole_file(server, tmp_path):
    path = download_slice("The Eiffel Tower", tmp_path, server.url, progress=False, timeout=5)
    assert path.read_bytes() == source("The Eiffel Tower")


def test_slice_too_small_for_one_line(server, tmp_path):
    with pytest.raises(DownloadError, match="no complete line in the first 100 bytes"):
        download_slice("circle", tmp_path, server.url, max_bytes=100, progress=False, timeout=5)
    assert not (tmp_path / "circle.ndjson").exists()


def test_validate_names_file_and_line(tmp_path):
    path = tmp_path / "dog.ndjson"
    path.write_bytes(b"".join(source("dog").splitlines(keepends=True)[:4]) + source("cat").splitlines(keepends=True)[0])
    with pytest.raises(DownloadError, match=rf"{re.escape(str(path))}: line 5: word is 'cat', expected 'dog'"):
        validate_ndjson(path, "dog")
    path.write_bytes(source("dog"))
    assert validate_ndjson(path, "dog") == source("dog").count(b"\n")


# --- downloads that never end ---------------------------------------------------------------------


def test_a_server_streaming_for_ever_is_cut_off_at_the_size_bound(server, tmp_path):
    """Without a Content-Length, a body past ``max_bytes`` is refused and nothing of it kept (it filled a disk at
    400 MB/s); with one past the bound, it is refused before a byte is read. The default bound is far above
    any class file (``MAX_DOWNLOAD_BYTES``, 1 GiB, against ~350 MB at most), so the test tightens it."""
    assert MAX_DOWNLOAD_BYTES == 1 << 30
    server.faults = ["endless"]
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"^class 'circle' from http://\S+: more than 1,000,000 bytes, more than "
                                            r"any class file; refused, nothing kept$"):
        fetch(server, "circle", tmp_path, max_bytes=1_000_000)
    assert time.monotonic() - started < 5
    server.faults = ["huge"]
    with pytest.raises(DownloadError, match=r"it announces 5,368,709,120 bytes, more than any class file "
                                            r"\(1,073,741,824 at most\); refused unread$"):
        fetch(server, "circle", tmp_path)
    assert len(server.requests) == 2  # neither was retried
    assert sorted(p.name for p in tmp_path.iterdir()) == ["circle.ndjson.lock"]


def test_a_server_sending_a_byte_at_a_time_is_dropped_and_resumed(server, tmp_path):
    """A byte every 50 ms (20 bytes/s) is under a limit of 1,000 bytes/s for 0.5 s: each attempt is dropped
    after about half a second, and the next resumes from what the last one kept (curl's --speed-limit and
    --speed-time; the defaults are 1 KiB/s for 30 s, see ``download.SPEED_LIMIT``)."""
    server.faults, server.trickle_s = ["trickle", "trickle"], 0.05
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"gave up after 2 attempts: slower than 1000 bytes/s for 0.5 s$"):
        fetch(server, "circle", tmp_path, retries=1, speed_limit=1000, speed_time=0.5)
    assert time.monotonic() - started < 5  # two attempts of ~0.5 s and a 0.5 s pause
    kept = (tmp_path / ".circle.ndjson.part").read_bytes()
    assert 10 < len(kept) < 100 and source("circle").startswith(kept)
    assert server.requests[1][1].startswith("bytes=") and server.requests[1][1] != "bytes=0-"
    assert fetch(server, "circle", tmp_path).read_bytes() == source("circle")  # and a later one finishes it


# --- links and special files planted in the download cache ----------------------------------------


@pytest.mark.parametrize("planted", [".circle.ndjson.part", "circle.ndjson.lock"])
def test_a_link_planted_in_the_cache_is_refused_never_written_through(server, tmp_path, planted):
    """The partial file was opened with "wb": a link there had the file it points at truncated and overwritten."""
    victim, absent = tmp_path / "precious.txt", tmp_path / "absent.txt"
    victim.write_bytes(b"precious")
    cache = tmp_path / "cache"
    cache.mkdir()
    for target in (victim, absent):
        (cache / planted).unlink(missing_ok=True)
        (cache / planted).symlink_to(target)
        with pytest.raises(FileRefused, match=rf"^{re.escape(str(cache / planted))}: a symbolic link where sketchgen "
                                              "keeps its own file; refused: remove the link$"):
            fetch(server, "circle", cache)
    assert victim.read_bytes() == b"precious" and not absent.exists()
    assert not (cache / "circle.ndjson").exists()
    (cache / planted).unlink()
    os.link(victim, cache / planted)  # a hard link too (an audit's find: the download was written into the file)
    if planted.endswith(".part"):
        with pytest.raises(FileRefused, match=rf"^{re.escape(str(cache / planted))}: a file with other names \(hard "
                                              r"links\) where sketchgen keeps its own file; refused: remove it$"):
            fetch(server, "circle", cache)
        assert not (cache / "circle.ndjson").exists()
    else:  # a lock is only read, never written: a cache copied with cp -al keeps working
        fetch(server, "circle", cache)
    assert victim.read_bytes() == b"precious"


def test_a_class_file_linked_in_the_cache_is_refused_never_read_through(server, tmp_path, monkeypatch):
    """Found by an audit: a link was refused as the partial file or the lock, not as the cached class file itself,
    which the download's check and ``find_class_file`` read through."""
    cache, elsewhere = tmp_path / "cache", tmp_path / "elsewhere.ndjson"
    cache.mkdir()
    elsewhere.write_bytes(source("circle"))
    (cache / "circle.ndjson").symlink_to(elsewhere)
    refused = rf"^{re.escape(str(cache / 'circle.ndjson'))}: a symbolic link where sketchgen keeps its own file; " \
              "refused: remove the link$"
    for read in (lambda: fetch(server, "circle", cache), lambda: validate_ndjson(cache / "circle.ndjson", "circle")):
        with pytest.raises(FileRefused, match=refused):
            read()
    monkeypatch.setenv("SKETCHGEN_CACHE", str(cache))
    with pytest.raises(DataError, match=refused):
        classfiles.find_class_file("circle")
    assert elsewhere.read_bytes() == source("circle")


def test_a_link_planted_as_the_partial_file_once_fetched_is_refused_never_read_or_kept(server, tmp_path, monkeypatch):
    """The fetched partial file is checked line by line, then becomes the class file: a link planted there once it
    was written (by another process, at that moment) was read through, and moved into place as the class file."""
    cache, elsewhere = tmp_path / "cache", tmp_path / "elsewhere.ndjson"
    cache.mkdir()
    elsewhere.write_bytes(source("circle"))
    part, fsync = cache / ".circle.ndjson.part", os.fsync

    def linked_once_written(fd):
        fsync(fd)
        if not part.is_symlink():
            part.unlink()
            part.symlink_to(elsewhere)

    monkeypatch.setattr(os, "fsync", linked_once_written)
    with pytest.raises(FileRefused, match=rf"^{re.escape(str(part))}: a symbolic link where sketchgen keeps its own "
                                          "file; refused: remove the link$"):
        fetch(server, "circle", cache)
    assert not os.path.lexists(cache / "circle.ndjson") and elsewhere.read_bytes() == source("circle")


PREPARE = """
import sys
from sketchgen import data
try:
    data.prepare(["circle"], cache_dir=sys.argv[1], workers=1)
except data.DataError as e:
    sys.exit(f"error: {e}")
"""


def test_a_class_file_linked_in_the_cache_after_it_was_found_is_never_read_through(tmp_path):
    """Found by an audit: ``find_class_file`` refused a link in the download cache, but ``prepare`` then read the
    file by its name, so that a link planted in between (while it waited for the class's lock, without bound) was
    read through and its target cached as the class. Its readers now open sketchgen's own files without following."""
    cache, prepared, elsewhere = tmp_path / "cache", tmp_path / "prepared", tmp_path / "elsewhere.ndjson"
    cache.mkdir()
    (cache / "circle.ndjson").write_bytes(source("circle"))
    env = {**os.environ, "SKETCHGEN_CACHE": str(cache)}
    env.pop("SKETCHGEN_DATA", None)
    subprocess.run([sys.executable, "-c", PREPARE, str(prepared)], env=env, check=True)
    (folder,) = prepared.glob("circle-*.lock")
    folder = folder.with_suffix("")
    (folder / "meta.json").unlink()  # no whole cache: the class is read again, in a folder whose name is known
    with fileio.locked(folder):
        run = subprocess.Popen([sys.executable, "-c", PREPARE, str(prepared)], env=env, stderr=subprocess.PIPE,
                               text=True)
        assert "waiting for it to finish" in run.stderr.readline()  # found, and waiting at the lock
        (cache / "circle.ndjson").rename(elsewhere)
        (cache / "circle.ndjson").symlink_to(elsewhere)
    err = run.communicate(timeout=60)[1]
    assert (run.returncode, err) == (1, f"error: {cache / 'circle.ndjson'}: a symbolic link where sketchgen keeps "
                                        "its own file; refused: remove the link\n")
    assert not (folder / "meta.json").exists()


def test_special_files_in_the_cache_never_block(server, tmp_path):
    """A FIFO where the class file should be is no valid copy: it is fetched and replaced (reading it would block
    for ever). A FIFO as the partial file is refused in one line."""
    os.mkfifo(tmp_path / "circle.ndjson")
    assert fetch(server, "circle", tmp_path).read_bytes() == source("circle")
    os.mkfifo(tmp_path / ".dog.ndjson.part")
    with pytest.raises(FileRefused, match=r"\.dog\.ndjson\.part: not a regular file \(a FIFO\) where sketchgen keeps"):
        fetch(server, "dog", tmp_path)


# --- the cache folders the environment names ---------------------------------------------------------


CACHE_VARIABLES = ("SKETCHGEN_PREPARED", "SKETCHGEN_CACHE", "XDG_CACHE_HOME")


@pytest.mark.parametrize("variable", CACHE_VARIABLES)
@pytest.mark.parametrize("kind", ["a file", "a FIFO", "/dev/null", "a broken link"])
def test_a_cache_folder_that_is_no_folder_is_refused_naming_its_variable(tmp_path, monkeypatch, capsys, variable, kind):
    """Making sketchgen's folder there failed as ``[Errno 17] File exists: 'afile'``, naming neither the variable
    nor what to do; now one line names both, before anything is read, fetched or prepared."""
    target = Path("/dev/null") if kind == "/dev/null" else tmp_path / "target"
    if kind == "a file":
        target.write_bytes(b"")
    elif kind == "a FIFO":
        os.mkfifo(target)
    elif kind == "a broken link":
        target.symlink_to(tmp_path / "nowhere")
    for name in CACHE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(target))
    monkeypatch.setenv("SKETCHGEN_BASE_URL", "http://127.0.0.1:9/")  # nothing listens: no download leaves the machine
    what = {"a file": "a file", "a broken link": "a broken link"}.get(kind, "a special file")
    inside = {"XDG_CACHE_HOME": f" (for sketchgen's cache {target}/sketchgen/prepared)"}.get(variable, "")
    refusal = (f"sketchgen: error: {variable}={str(target)!r}: {target} is {what}, not a folder{inside}: "
               f"point {variable} at a folder")
    data_dir = [] if variable == "SKETCHGEN_CACHE" else ["--data-dir", str(SIMPLIFIED)]  # that cache is looked in
    assert cli.main(["prepare", "--classes", "apple", *data_dir]) == 1
    assert capsys.readouterr().err.splitlines() == [refusal]
    if variable != "SKETCHGEN_PREPARED":
        assert cli.main(["download", "apple"]) == 1
        assert capsys.readouterr().err.splitlines() == [refusal.replace("prepared)", "quickdraw)")]



@pytest.mark.parametrize("variable, value, prepared", [
    ("SKETCHGEN_PREPARED", "~/sg", "home/sg"),
    ("SKETCHGEN_CACHE", "~/sg", "home/prepared"),  # prepared/ beside the download cache
    ("SKETCHGEN_DATA", "~/sg", "home/.cache/sketchgen/prepared"),
    ("SKETCHGEN_PREPARED", "sg", "work/sg"),  # a relative folder: the user's choice, in the working folder
    ("XDG_CACHE_HOME", "sg", "home/.cache/sketchgen/prepared"),  # relative: ignored, as the XDG spec asks
    ("XDG_CACHE_HOME", "~/sg", "home/.cache/sketchgen/prepared"),  # relative too: a shell expands ~ there, not we
])
def test_a_folder_variable_is_read_as_a_shell_and_the_xdg_spec_would(tmp_path, monkeypatch, capsys, variable, value,
                                                                    prepared):
    """Quoted, ``SKETCHGEN_PREPARED='~/sg'`` reaches sketchgen as it is: it made a folder named ``~`` in the working
    folder, ``SKETCHGEN_DATA='~/sg'`` was no such folder, and a relative XDG_CACHE_HOME put the caches in the
    working folder (an audit's finds). Now ``~`` is the home folder in every SKETCHGEN_ folder variable."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    for name in (*CACHE_VARIABLES, "SKETCHGEN_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    if variable == "SKETCHGEN_DATA":
        (home / "sg").symlink_to(SIMPLIFIED)
    assert cli.main(["prepare", "--classes", "apple"]) == 0, capsys.readouterr().err
    assert [p.name.split("-")[0] for p in (tmp_path / prepared).iterdir() if p.is_dir()] == ["apple"]
    assert sorted(p.name for p in work.iterdir()) == (["sg"] if prepared.startswith("work/") else [])


def test_a_folder_variable_that_names_no_folder_is_refused_naming_it(tmp_path, monkeypatch, capsys):
    """``SKETCHGEN_DATA='~'`` was refused as ``data folder ~: no such folder``, naming no variable (an audit's
    find); a home folder that cannot be known is refused as such, in one line naming the variable."""
    monkeypatch.setenv("HOME", str(tmp_path))
    no_user = "~sketchgen-no-such-user is no home folder known here"
    for variable, value, refusal in (
        ("SKETCHGEN_DATA", "~/nowhere", f"data folder {tmp_path}/nowhere: no such folder"),
        ("SKETCHGEN_DATA", "~", f"no apple.ndjson or apple.npz in {tmp_path} (looked in it and its simplified/ "
                                "folder)"),
        ("SKETCHGEN_DATA", "~sketchgen-no-such-user/qd", f"{no_user}: point SKETCHGEN_DATA at a folder"),
        ("SKETCHGEN_PREPARED", "~sketchgen-no-such-user", f"{no_user}: point SKETCHGEN_PREPARED at a folder"),
    ):
        monkeypatch.setenv(variable, value)
        data_dir = [] if variable == "SKETCHGEN_DATA" else ["--data-dir", str(SIMPLIFIED)]
        assert cli.main(["prepare", "--classes", "apple", *data_dir]) == 1
        assert capsys.readouterr().err.splitlines() == [f"sketchgen: error: {variable}={value!r}: {refusal}"]
        monkeypatch.delenv(variable)

# --- servers that never get to the file, and answers no retry mends (an audit's finds, 2026-12-07) -------------------


@contextlib.contextmanager
def raw_server(*answers):
    """A server on 127.0.0.1 answering its n-th connection with ``answers[n]`` (the last again after): bytes, or
    a function of the socket and an Event set when the test is over. Yields its URL and the requests it got."""
    listener = socket.create_server(("127.0.0.1", 0))
    over, seen = threading.Event(), []

    def answer(conn, what):
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            seen.append(conn.recv(65536))
            conn.sendall(what) if isinstance(what, bytes) else what(conn, over)

    def accept():
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                what = answers[min(len(seen), len(answers) - 1)]
                threading.Thread(target=answer, args=(conn, what), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{listener.getsockname()[1]}/simplified/", requests=seen)
    finally:
        over.set()
        listener.close()


def _continues(conn, over):  # a 100 Continue every 10 ms, for ever
    while not over.wait(0.01):
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")


def _drips(conn, over):  # a status line, a byte every 0.2 s
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n":
        if over.wait(0.2):
            return
        conn.sendall(bytes([byte]))


def _trails(conn, over):  # the whole file in one chunk, then a trailer line every 0.2 s, for ever
    body = source("circle")
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n" % (len(body), body))
    while not over.wait(0.2):
        conn.sendall(b"X-More: yes\r\n")


@pytest.mark.parametrize("answer", [_continues, _drips, _trails], ids=["100 Continue", "status drip", "trailers"])
@pytest.mark.parametrize("fetcher", [download_class, download_slice])
def test_a_server_that_never_gets_to_the_file_is_dropped(tmp_path, answer, fetcher):
    """Endless `100 Continue`s, a status line a byte at a time, or trailers without end after the whole file held
    `sketchgen download` (and a slice fetched for `prepare`) for ever: each read got something before the socket's
    timeout, and the speed limit counts the body only. Now a connection that brings nothing of the body for
    ``timeout + speed_time`` seconds is shut; where the body was whole (trailers) the file is kept."""
    started = time.monotonic()
    with raw_server(answer) as raw:
        if answer is _trails:
            got = fetcher("circle", tmp_path, raw.url, progress=False, timeout=1, retries=0, speed_time=0.5)
            assert got.read_bytes() == source("circle")
        else:
            with pytest.raises(DownloadError, match=r"^class 'circle' from http://\S+: gave up after 1 attempts: "
                                                    r"brought nothing of the file for 1.5 s$"):
                fetcher("circle", tmp_path, raw.url, progress=False, timeout=1, retries=0, speed_time=0.5)
    assert time.monotonic() - started < 6


def test_a_redirect_goes_to_http_addresses_only(server, tmp_path):
    """A 302 to ftp:// was followed (the file fetched there, then an AttributeError traceback), and one to
    `http://[::1/` raised a ValueError; each is one line now, not retried. A redirect to an http address is
    followed as before."""
    for where in (b"ftp://127.0.0.1:9/circle.ndjson", b"http://[::1/circle.ndjson", b"data:,hello"):
        with raw_server(b"HTTP/1.1 302 Found\r\nLocation: " + where + b"\r\nContent-Length: 0\r\n\r\n") as raw:
            with pytest.raises(DownloadError, match=rf"^class 'circle' from http://\S+: redirected to "
                                                    rf"{re.escape(repr(where.decode()))}, not an http\(s\) address$"):
                download_class("circle", tmp_path, raw.url, progress=False, timeout=5, retries=2)
            assert len(raw.requests) == 1
    to = f"{server.url}circle.ndjson".encode()
    with raw_server(b"HTTP/1.1 301 Moved\r\nLocation: " + to + b"\r\nContent-Length: 0\r\n\r\n") as raw:
        assert download_class("circle", tmp_path, raw.url, progress=False).read_bytes() == source("circle")


def test_a_content_range_of_5000_digits_restarts_the_file(server, tmp_path):
    """A partial file's 206 whose Content-Range starts with a number of 5,000 digits raised int()'s ValueError
    (a traceback); it is some other range, so the whole file is asked for, as for any."""
    (tmp_path / ".circle.ndjson.part").write_bytes(source("circle")[:100])
    body = source("circle")
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with raw_server(b"HTTP/1.1 206 Partial\r\nContent-Range: bytes " + b"9" * 5000 + b"-1/2\r\nContent-Length: 1\r\n"
                    b"\r\nx", whole) as raw:
        assert download_class("circle", tmp_path, raw.url, progress=False, timeout=5).read_bytes() == body
        assert len(raw.requests) == 2 and b"Range" not in raw.requests[1]


def test_a_servers_long_reason_is_cut_short(tmp_path):
    """A 404's reason phrase of 60,000 bytes was a 60 KB error line."""
    with raw_server(b"HTTP/1.1 404 " + b"x" * 60_000 + b"\r\nContent-Length: 0\r\n\r\n") as raw:
        with pytest.raises(DownloadError) as refused:
            download_class("circle", tmp_path, raw.url, progress=False, timeout=5)
    assert str(refused.value).endswith("HTTP 404 " + "x" * 200 + "...")


def test_where_the_file_goes_is_checked_before_it_is_fetched(server, tmp_path):
    """A folder at the class file's name was found after the whole transfer (`[Errno 21] Is a directory`, the
    `.part` left to be fetched again), and a file as the folder gave `[Errno 17] File exists`: each refused in one
    line now, before any request."""
    (tmp_path / "circle.ndjson").mkdir()
    with pytest.raises(DownloadError, match=r"circle\.ndjson is a folder, where class 'circle''s file goes: move it$"):
        fetch(server, "circle", tmp_path)
    (tmp_path / "afile").write_bytes(b"")
    for where in (tmp_path / "afile", tmp_path / "afile" / "below"):
        with pytest.raises(DownloadError, match=r"afile is a file, where class 'circle' is to be downloaded into a "
                                                r"folder: give another$"):
            download_slice("circle", where, server.url, progress=False)
    assert server.requests == []


def test_a_cached_file_larger_than_any_class_file_is_not_read_through(server, tmp_path):
    """A 4 GB sparse file at the class's name was read whole (18.8 s) before it was found to be no class file;
    past MAX_DOWNLOAD_BYTES it is fetched anew unread."""
    with open(tmp_path / "circle.ndjson", "wb") as f:
        f.truncate(MAX_DOWNLOAD_BYTES + 1)
    started = time.monotonic()
    assert fetch(server, "circle", tmp_path).read_bytes() == source("circle")
    assert time.monotonic() - started < 5


WRITES_TOO_LITTLE = """
import resource, signal, sys
from sketchgen.download import DownloadError, download_class
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
try:
    download_class("circle", sys.argv[2], sys.argv[1], progress=False, timeout=5)
except DownloadError as e:
    print(e)
"""


def test_a_partial_file_that_cannot_be_written_is_named(server, tmp_path):
    """Writing the partial file failed as a bare `[Errno 27] File too large` (so would a full disk), naming
    neither the file nor that what was fetched is kept for the next try."""
    run = subprocess.run([sys.executable, "-c", WRITES_TOO_LITTLE, server.url, str(tmp_path)], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.stdout.strip().endswith(f"could not write {tmp_path}/.circle.ndjson.part (File too large); what was "
                                       "fetched is kept there, and the next try goes on from it"), run.stdout + run.stderr
    assert 0 < (tmp_path / ".circle.ndjson.part").stat().st_size <= 20_000


def test_each_connection_has_its_own_patience(server, tmp_path):
    """A redirect answered after 1 s to a server that answers after 1 s: 2 s against a patience of 1.5 s, counted
    from the start of the attempt, dropped the download (found by a review); each connection has the patience now.
    No timeout (None), and no speed limit's span (inf), are taken again as before the watch."""
    def late(answer):
        def late_answer(conn, over):
            if not over.wait(1.0):
                conn.sendall(answer)
        return late_answer

    body = source("circle")
    with raw_server(late(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))) as second:
        to = f"{second.url}circle.ndjson".encode()
        with raw_server(late(b"HTTP/1.1 302 Found\r\nLocation: " + to + b"\r\nContent-Length: 0\r\n\r\n")) as first:
            got = download_class("circle", tmp_path, first.url, progress=False, timeout=1.2, speed_time=0.3, retries=0)
    assert got.read_bytes() == body
    for dest, how in (("none", {"timeout": None}), ("inf", {"speed_time": math.inf})):
        assert download_class("circle", tmp_path / dest, server.url, progress=False, **how).read_bytes() == body
