"""`sketchgen serve` over real HTTP on loopback, with a small mdn model trained on real drawings.

Every kind of bad request gets its 4xx and a one-line JSON error, and the
server answers normally afterwards.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sketchgen import cli, sample
from sketchgen import models as model
from sketchgen.cli import SEED_CLASSES
from sketchgen.serve import MAX_BODY, MAX_POINTS, Batcher, Sketcher, SketchServer


@pytest.fixture(scope="module")
def checkpoint(tiny_models):
    """conftest's small mdn (5 seed classes, hidden 64), which has learned to lift its pen and stop."""
    return tiny_models["mdn"]


@pytest.fixture(scope="module")
def server(checkpoint):
    srv = SketchServer(Sketcher(checkpoint), "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def call(server, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One request on its own connection: (status, parsed JSON or {}, raw body)."""
    host, port = server.server_address
    conn = http.client.HTTPConnection(host, port, timeout=60)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    res = conn.getresponse()
    raw = res.read()
    conn.close()
    parsed = json.loads(raw) if res.getheader("Content-Type") == "application/json" else {}
    return res.status, parsed, raw


def post(server, path, body, **kw):
    return call(server, "POST", path, body, **kw)


def assert_still_serving(server):
    status, info, _ = call(server, "GET", "/api/classes")
    assert status == 200 and info["classes"] == SEED_CLASSES


def points(drawing_field) -> np.ndarray:
    return np.concatenate([np.array(s, dtype=float).T for s in drawing_field])


@pytest.fixture(scope="module")
def user_strokes(quickdraw) -> list[list[list[int]]]:
    """The first two strokes of a real raw (mouse-dense) face, put at half the canvas size, at (40, 60)."""
    with open(quickdraw / "raw" / "face.ndjson") as f:
        raw = json.loads(f.readline())["drawing"][:2]
    pts = [np.array(s[:2], dtype=float).T for s in raw]
    allpts = np.concatenate(pts)
    lo, extent = allpts.min(axis=0), (allpts.max(axis=0) - allpts.min(axis=0)).max()
    placed = [np.rint((p - lo) * 128 / extent + [40, 60]).astype(int) for p in pts]
    assert sum(len(p) for p in placed) > 60  # dense, like a mouse's, before simplification
    return [[p[:, 0].tolist(), p[:, 1].tolist()] for p in placed]


# --- what works ------------------------------------------------------------------------------


def test_classes_describe_the_checkpoint(server):
    status, info, raw = call(server, "GET", "/api/classes")
    assert status == 200 and info["classes"] == SEED_CLASSES
    assert info["model"]["kind"] == "mdn" and info["model"]["hidden"] == 64
    # The model's own length cap (its classes' longest 98th percentile, at most 250): the split decides it.
    assert info["model"]["temperature"] == 0.4 and 1 <= info["model"]["max_len"] == info["limits"]["max_len"] <= 250
    assert info["limits"]["max_points"] == MAX_POINTS and info["limits"]["max_body"] == MAX_BODY


def test_page_and_its_files_are_served_locally(server):
    host, port = server.server_address
    for path, kind in (("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css")):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", path)
        res = conn.getresponse()
        text = res.read().decode()
        assert res.status == 200 and res.getheader("Content-Type").startswith(kind)
        assert "default-src 'self'" in res.getheader("Content-Security-Policy")
        assert "//cdn" not in text and "fonts.googleapis" not in text
    assert "CC BY 4.0" in call(server, "GET", "/")[2].decode()


def test_sample_is_a_drawing_in_the_0_255_frame_that_its_seed_repeats(server):
    replies = [post(server, "/api/sample", {"class": "circle", "seed": s, "temperature": 0.5}) for s in (7, 7, 8)]
    assert [r[0] for r in replies] == [200, 200, 200]
    first, again, other = (r[1] for r in replies)
    assert first["strokes"] == again["strokes"] and first["strokes"] != other["strokes"]
    pts = points(first["strokes"])
    assert first["points"] == len(pts) > 3
    assert pts.min() == 0 and pts.max() == 255  # QuickDraw's frame: top-left aligned, longest side 255
    assert all(isinstance(v, int) for s in first["strokes"] for axis in s for v in axis)


def test_max_len_bounds_the_points(server):
    status, reply, _ = post(server, "/api/sample", {"class": "eye", "seed": 1, "max_len": 5})
    assert status == 200 and 1 <= reply["points"] <= 5 and len(points(reply["strokes"])) == reply["points"]


def scaled(drawing, factor: float, shift=(0, 0)) -> list:
    return [[(np.array(xs) * factor + shift[0]).tolist(), (np.array(ys) * factor + shift[1]).tolist()]
            for xs, ys in drawing]


def continued(server, start) -> dict:
    """The completion of an eye started with ``start`` by the first of seeds 0-9 with which the model adds strokes.

    An eye goes on after two strokes, but the tiny model ends some starts at once, depending on the seed;
    a user would press again.
    """
    for seed in range(10):
        status, reply, _ = post(server, "/api/complete", {"class": "eye", "seed": seed, "strokes": start})
        assert status == 200
        if len(reply["strokes"]) > len(start):
            return reply
    raise AssertionError("the model added nothing for any of 10 seeds")


@pytest.mark.parametrize("size", [1, 0.25], ids=["half the canvas", "an eighth of the canvas"])
def test_complete_keeps_the_users_strokes_where_and_as_large_as_they_were(server, user_strokes, size):
    start = scaled(user_strokes, size)
    reply = continued(server, start)
    k = reply["n_prefix"]
    assert k == len(start) and len(reply["strokes"]) > k  # the model added strokes
    for mine, back in zip(start, reply["strokes"][:k]):
        mine, back = np.array(mine, float).T, np.array(back, float).T
        assert len(back) < len(mine)  # thinned to QuickDraw's simplified density
        assert np.abs(back[[0, -1]] - mine[[0, -1]]).max() <= 1  # RDP keeps each stroke's ends
        nearest = np.linalg.norm(back[:, None] - mine[None], axis=-1).min(axis=1)
        assert nearest.max() <= 1.5  # each point is one of the user's, rounded: not moved, not rescaled


def test_completion_moves_and_grows_with_the_users_drawing(server, user_strokes):
    here = continued(server, user_strokes)
    there, bigger = (post(server, "/api/complete", {"class": "eye", "seed": here["seed"], "strokes": start})[1]
                     for start in (scaled(user_strokes, 1, (37, -22)), scaled(user_strokes, 1.5)))
    assert len(here["strokes"]) == len(there["strokes"]) == len(bigger["strokes"]) > here["n_prefix"]
    np.testing.assert_array_equal(points(there["strokes"]), points(here["strokes"]) + [37, -22])
    assert np.abs(points(bigger["strokes"]) - 1.5 * points(here["strokes"])).max() <= 1.5  # each rounded once


def test_the_seed_model_serves_too(tiny_models, user_strokes):
    sketcher = Sketcher(tiny_models["seed"])
    assert sketcher.info["model"]["kind"] == "seed" and sketcher.info["model"]["temperature"] is None
    drawn = sketcher.sample({"class": "apple", "seed": 0})
    assert len(points(drawn["strokes"])) == drawn["points"] > 3
    finished = sketcher.complete({"class": "apple", "seed": 0, "strokes": user_strokes})
    assert finished["n_prefix"] == 2 and len(points(finished["strokes"])) > len(points(finished["strokes"][:2]))


def test_concurrent_requests_all_succeed_while_a_client_stalls(server):
    host, port = server.server_address
    stalled = socket.create_connection((host, port))
    stalled.sendall(b"POST /api/sample HTTP/1.1\r\nHost: x\r\n")  # and never finishes its headers
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda s: post(server, "/api/sample", {"class": "square", "seed": s}), range(8)))
    stalled.close()
    assert [r[0] for r in replies] == [200] * 8
    assert len({json.dumps(r[1]["strokes"]) for r in replies}) > 1


def test_a_request_gets_the_same_drawing_alone_and_in_a_burst(server, user_strokes):
    """Requests that arrive together are generated as batches, and each still gets the drawing its seed gives alone."""
    jobs = [("/api/sample", {"class": SEED_CLASSES[i % 5], "seed": 100 + i, "temperature": 0.4 if i % 3 else 0.8})
            for i in range(20)]
    jobs += [("/api/complete", {"class": "eye", "seed": s, "strokes": user_strokes}) for s in range(4)]
    alone = [post(server, path, body)[1] for path, body in jobs]
    before = Counter(server.sketcher.batcher.sizes)
    gate = threading.Barrier(len(jobs))

    def at_once(job):
        gate.wait()
        return post(server, *job)

    with ThreadPoolExecutor(len(jobs)) as pool:
        burst = list(pool.map(at_once, jobs))
    assert [status for status, _, _ in burst] == [200] * len(jobs)
    assert [reply for _, reply, _ in burst] == alone
    assert max(server.sketcher.batcher.sizes - before) > 1  # some of them did share a batch


def test_a_failed_batch_fails_its_requests_and_the_batcher_goes_on(checkpoint):
    net, _ = model.load(checkpoint)
    batcher = Batcher(net)
    with pytest.raises(IndexError):
        batcher.draw(99, 0.4, 0)  # no such class: the embedding refuses it
    assert np.array_equal(batcher.draw(1, 0.4, 0, max_len=5), sample.generate(net, [1], 0.4, 0, max_len=5)[0])


# --- what is refused -------------------------------------------------------------------------

GOOD = {"class": "circle", "temperature": 0.4, "seed": 1}
A_STROKE = [[10, 20, 30], [10, 15, 40]]
BAD_SAMPLES = {
    "unknown class": ({**GOOD, "class": "unicorn"}, "unknown class 'unicorn'"),
    "class not a string": ({**GOOD, "class": 3}, "'class' must be"),
    "no class": ({"seed": 1}, "'class' must be"),
    "temperature zero": ({**GOOD, "temperature": 0}, "'temperature' must be a number in (0, 2]"),
    "temperature negative": ({**GOOD, "temperature": -1}, "'temperature'"),
    "temperature too high": ({**GOOD, "temperature": 2.01}, "'temperature'"),
    "temperature a string": ({**GOOD, "temperature": "hot"}, "'temperature'"),
    "temperature a bool": ({**GOOD, "temperature": True}, "'temperature'"),
    "seed negative": ({**GOOD, "seed": -1}, "'seed' must be an integer"),
    "seed fractional": ({**GOOD, "seed": 1.5}, "'seed'"),
    "seed too big": ({**GOOD, "seed": 2**31}, "'seed'"),
    "max_len zero": ({**GOOD, "max_len": 0}, "'max_len' must be an integer from 1 to "),
    "max_len huge": ({**GOOD, "max_len": 10**6}, "'max_len'"),
    "unknown field": ({**GOOD, "colour": "red"}, "unknown field 'colour'"),
}
BAD_COMPLETIONS = {
    "no strokes": ({**GOOD}, "'strokes'"),
    "strokes a string": ({**GOOD, "strokes": "abc"}, "'strokes'"),
    "empty drawing": ({**GOOD, "strokes": []}, "'strokes': drawing is empty"),
    "stroke not [xs, ys]": ({**GOOD, "strokes": [[1, 2]]}, "'strokes': stroke 0"),
    "x and y lengths differ": ({**GOOD, "strokes": [[[1, 2], [3]]]}, "'strokes': stroke 0 has 2 x values"),
    "text coordinates": ({**GOOD, "strokes": [[["a"], ["b"]]]}, "non-numeric"),
    "far-off coordinates": ({**GOOD, "strokes": [[[1, 1e9], [2, 3]]]}, "coordinates must lie within"),
    "too many points": ({**GOOD, "strokes": [[list(range(MAX_POINTS + 1))] * 2]}, "too many points"),
    "max_len not taken": ({**GOOD, "strokes": [A_STROKE], "max_len": 9}, "unknown field 'max_len'"),
    "unknown class": ({**GOOD, "class": "unicorn", "strokes": [A_STROKE]}, "unknown class"),
}


def assert_refused(reply, status: int, words: str):
    got, payload, raw = reply
    assert got == status, raw
    assert list(payload) == ["error"] and words in payload["error"]
    assert b"\n" not in raw and len(raw) < 400


@pytest.mark.parametrize("body, words", BAD_SAMPLES.values(), ids=BAD_SAMPLES)
def test_bad_sample_requests_get_400(server, body, words):
    assert_refused(post(server, "/api/sample", body), 400, words)
    assert_still_serving(server)


@pytest.mark.parametrize("body, words", BAD_COMPLETIONS.values(), ids=BAD_COMPLETIONS)
def test_bad_completion_requests_get_400(server, body, words):
    assert_refused(post(server, "/api/complete", body), 400, words)
    assert_still_serving(server)


BAD_BODIES = {
    "malformed JSON": (b'{"class": "circle",', {}, 400, "malformed JSON"),
    "NaN": (b'{"class": "circle", "temperature": NaN}', {}, 400, "NaN is not a number JSON allows"),
    "overflowing number": (b'{"class": "circle", "temperature": 1e999}', {}, 400, "'temperature'"),
    "not an object": (b"[1, 2]", {}, 400, "must be a JSON object"),
    "nested too deep": (b"[" * 100_000, {}, 400, "malformed JSON"),
    "not UTF-8": (b'{"class": "\xff"}', {}, 400, "malformed JSON"),
    "form, not JSON": (b"class=circle", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    "no length": (None, {"Transfer-Encoding": "chunked"}, 411, "Content-Length"),
}


@pytest.mark.parametrize("body, headers, status, words", BAD_BODIES.values(), ids=BAD_BODIES)
def test_bad_bodies_are_refused(server, body, headers, status, words):
    assert_refused(post(server, "/api/sample", body, headers=headers), status, words)
    assert_still_serving(server)


def test_wrong_paths_and_methods(server):
    assert_refused(call(server, "GET", "/nowhere"), 404, "no such page")
    assert_refused(call(server, "GET", "/../../etc/passwd"), 404, "no such page")
    assert_refused(call(server, "GET", "/api/sample"), 405, "takes POST")
    assert_refused(post(server, "/api/classes", GOOD), 405, "no POST route")
    assert_refused(post(server, "/api/elsewhere", GOOD), 404, "no POST route")
    assert_still_serving(server)


def test_a_10_mb_body_is_refused_before_it_is_sent(server):
    """The 413 comes back from the headers alone: the server never waits for, or reads, the 10 MB."""
    reply = raw_exchange(server, b"POST /api/sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 10000000\r\n\r\n" + b"[" * 1000)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"Connection: close" in head
    assert json.loads(body) == {"error": f"body of 10000000 bytes is over the limit of {MAX_BODY}"}
    assert_still_serving(server)


def raw_exchange(server, request: bytes) -> bytes:
    with socket.create_connection(server.server_address, timeout=10) as s:
        s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def test_broken_http_gets_json_errors_too(server):
    # No valid request line means no HTTP version: the answer is the bare body, as HTTP/0.9 has it.
    assert raw_exchange(server, b"HELLO\r\n\r\n") == b'{"error": "Bad request syntax (\'HELLO\')"}'
    reply = raw_exchange(server, b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431") and reply.endswith(b'{"error": "Line too long"}')
    assert_still_serving(server)


# --- the command -----------------------------------------------------------------------------


def test_serve_without_a_checkpoint_says_how_to_get_one(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["serve"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--checkpoint" in err and "sketchgen train --model mdn" in err


def test_serve_command_listens_on_loopback_and_stops_on_interrupt(checkpoint):
    proc = subprocess.Popen([sys.executable, "-m", "sketchgen", "serve", "--checkpoint", str(checkpoint), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "at http://127.0.0.1:" in line, proc.stderr.read()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/classes")
        assert json.loads(conn.getresponse().read())["classes"] == SEED_CLASSES
        conn.close()
        proc.send_signal(2)  # Ctrl-C
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
