"""`sketchgen serve` over real HTTP on loopback, with small models trained on real drawings.

Every kind of bad request gets its 4xx and a one-line JSON error, and the
server answers normally afterwards. Several checkpoints serve on one page,
and a model with a latent (defined here, as a plug-in would be) reconstructs
and interpolates drawings.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ipaddress
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from sketchgen import cli, sample, serve, strokes
from sketchgen import models as model
from sketchgen.cli import SEED_CLASSES
from sketchgen.models import collate, registry
from sketchgen.models.base import Encodes, class_embedding
from sketchgen.models.mdn import MDN
from sketchgen.serve import BODY_WAIT, LOOPBACK, MAX_BODY, MAX_POINTS, Batcher, Job, Sketcher, SketchServer
from sketchgen.serve import app as app_module
from sketchgen.serve.app import HEAD_WAIT, IDLE, WRITE_WAIT


@pytest.fixture(scope="module")
def checkpoint(tiny_models):
    """conftest's small mdn (5 seed classes, hidden 64), which has learned to lift its pen and stop."""
    return tiny_models["mdn"]


@pytest.fixture(scope="module")
def server(checkpoint):
    with running(Sketcher(checkpoint)) as srv:
        yield srv


@contextlib.contextmanager
def running(sketcher: Sketcher, host: str = "127.0.0.1", **kw):
    """A server for ``sketcher`` on a free port (of loopback unless told), in a thread."""
    srv = SketchServer(sketcher, host, 0, quiet=True, **kw)
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
    assert info["model"]["kind"] == "mdn" and info["model"]["parameters"] == sum(
        p.numel() for p in server.sketcher.models[info["model"]["id"]].net.parameters())
    # The model's own length cap (its classes' longest 98th percentile, at most 250): the split decides it.
    assert info["model"]["temperature"] == sample.TEMPERATURE
    assert 1 <= info["model"]["max_len"] == info["limits"]["max_len"] <= 250
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
        # No other site may frame it (an audit's find: an invisible frame took the user's clicks).
        assert "frame-ancestors 'none'" in res.getheader("Content-Security-Policy")
        assert res.getheader("X-Frame-Options") == "DENY"
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


def test_a_request_without_max_len_is_held_to_what_one_may_ask_for(checkpoint, tmp_path):
    """An audit's find: a request that left max_len out drew to the model's class cap, which a checkpoint may set
    to 10,000 points (a Transformer's minutes, while its batcher draws for nobody else), past the 1,000 a request may
    ask for. Here a model that never lifts its pen, with caps of 3,000: each route stops at 1,000. Caps above the
    model's own max_len are refused when it is loaded."""
    ckpt = model.read(checkpoint)
    ckpt["config"] = {**ckpt["config"], "max_len": 3000, "lengths": [3000] * len(ckpt["classes"])}
    ckpt["state_dict"]["head.bias"][:3] = torch.tensor([50.0, -50.0, -50.0])  # pen down, never lifted, never ended
    model.save(tmp_path / "long.pt", ckpt)
    sketcher = Sketcher(tmp_path / "long.pt")
    assert sketcher.sample({"class": "eye", "seed": 1})["points"] == 1000
    assert sketcher.sample({"class": "eye", "seed": 1, "max_len": 7})["points"] == 7
    done = sketcher.complete({"class": "eye", "seed": 1, "strokes": [[[10, 60, 120], [10, 90, 30]]]})
    assert len(points(done["strokes"])) == 1000 + 3
    ckpt["config"]["max_len"] = 2999
    model.save(tmp_path / "caps.pt", ckpt)
    with pytest.raises(model.CheckpointError, match="length cap of 3,000 is more than its max_len, 2,999"):
        model.read(tmp_path / "caps.pt")


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
    # Each its own temperature and some their own max_len: they batch all the same (else a flood that varies them
    # would be drawn a request at a time, ahead of everyone after it).
    jobs = [("/api/sample", {"class": SEED_CLASSES[i % 5], "seed": 100 + i, "temperature": 0.3 + i / 40,
                             **({"max_len": 10 + i} if i % 2 else {})}) for i in range(20)]
    jobs += [("/api/complete", {"class": "eye", "seed": s, "strokes": user_strokes}) for s in range(4)]
    alone = [post(server, path, body)[1] for path, body in jobs]
    batcher = server.sketcher.models["best.pt"].batcher
    before = Counter(batcher.sizes)
    gate = threading.Barrier(len(jobs))

    def at_once(job):
        gate.wait()
        return post(server, *job)

    with ThreadPoolExecutor(len(jobs)) as pool:
        burst = list(pool.map(at_once, jobs))
    assert [status for status, _, _ in burst] == [200] * len(jobs)
    assert [reply for _, reply, _ in burst] == alone
    assert max(batcher.sizes - before) > 1  # some of them did share a batch


def test_a_cancelled_request_is_not_drawn_and_temperatures_share_a_batch(checkpoint):
    """A job whose request is cancelled (its client gone) before its batch is made is dropped unmade; the others,
    each at its own temperature and length, are made in one call and are what each gets alone."""
    net, _ = model.load(checkpoint)
    batcher = Batcher(net, workers=0)  # made by hand below
    jobs = [Job(1, 0.3, 5, 12), Job(2, 0.9, 6), Job(3, 0.6, 7, 20)]
    for job in jobs:
        batcher.submit(job)
    assert jobs[1].answer.cancel()
    batcher.work_once()
    assert jobs[1].answer.cancelled() and batcher.sizes == {2: 1}
    for job in (jobs[0], jobs[2]):
        alone = sample.generate(net, [job.label], job.temperature, max_len=job.max_len, seeds=[job.seed])[0]
        assert np.array_equal(job.answer.result(), alone)


def test_a_flood_is_told_to_come_back(server, monkeypatch):
    """Past WAITING drawings being made, a request is answered 503 at once, not queued behind the others."""
    monkeypatch.setattr(app_module, "WAITING", 0)
    status, reply, _ = post(server, "/api/sample", GOOD)
    assert status == 503 and reply["error"].startswith("busy: 0 of the 0 drawings made at once are being made")
    monkeypatch.undo()
    assert post(server, "/api/sample", GOOD)[0] == 200


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
    "temperature zero": ({**GOOD, "temperature": 0}, "'temperature' must be a number in (0, 10]"),
    "temperature negative": ({**GOOD, "temperature": -1}, "'temperature'"),
    "temperature too high": ({**GOOD, "temperature": 10.01}, "'temperature'"),
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
    # Counted before parsing: 10,000 strokes with a bad last were parsed twice (whole, then stroke by stroke) on the
    # event loop, 230 ms a request, to be refused for the last stroke (an audit's find).
    "too many points, the last stroke bad": ({**GOOD, "strokes": [[[1, 2, 3], [4, 5, 6]]] * 10_000 + [[[1], []]]},
                                             "too many points"),
    "more points than the model draws": ({**GOOD, "strokes": [[list(range(1500)), [0, 200] * 750]]},
                                         "points after simplifying, more than the"),
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
    conn = http.client.HTTPConnection(*server.server_address, timeout=60)
    conn.request("POST", "/api/classes", body=b"{}", headers={"Content-Type": "application/json"})
    assert conn.getresponse().getheader("Allow") == "GET, HEAD"  # a 405 names what it takes (RFC 9110): POST's did not
    conn.close()
    assert_refused(post(server, "/api/elsewhere", GOOD), 404, "no POST route")
    # A trailing slash was a 307 with no body, to an address without the port when the Host header had none.
    assert_refused(post(server, "/api/sample/", GOOD), 404, "no POST route")
    assert_refused(call(server, "GET", "/api/classes/"), 404, "no such page")
    assert_still_serving(server)


def test_a_10_mb_body_is_refused_before_it_is_sent(server):
    """The 413 comes back from the headers alone: the server never waits for, or reads, the 10 MB."""
    reply = raw_exchange(server, b"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 10000000\r\n\r\n" + b"[" * 1000)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()  # header names: any case
    assert json.loads(body) == {"error": f"body of 10000000 bytes is over the limit of {MAX_BODY}"}
    assert_still_serving(server)


def test_the_body_limit_fits_the_largest_request_and_no_more(server):
    """256 KiB: an interpolation between two drawings of MAX_POINTS points each, every coordinate a float at its
    longest, fits; a body of 300 kB, which parsing would hold the event loop for (a 1 MB one of 100,000 keys:
    ~0.1 s, so a stream of them stalled every client), is refused from its Content-Length."""
    longest = [[-9999.123456789012] * (MAX_POINTS // 2)] * 2  # (xs, ys) of one stroke, repr at its longest
    largest = {"class": "circle", "to_class": "eye", "model": "x" * 100, "temperature": 0.30000000000000004,
               "seed": 2**31 - 1, "steps": 16, "max_len": 1000, "strokes": [longest] * 2, "to_strokes": [longest] * 2}
    assert len(json.dumps(largest)) < MAX_BODY
    status, reply, _ = post(server, "/api/sample", b"{" + b" " * 300_000 + b"}")
    assert status == 413 and reply["error"] == f"body of 300002 bytes is over the limit of {MAX_BODY}"


def test_a_body_over_the_limit_sent_whole_still_gets_its_413(server):
    """A client that sends its whole body before it reads (urllib, http.client) was reset instead of answered: the
    413 went out from the headers and the connection was closed with the body unread, so the kernel sent a reset
    that destroyed the answer (an audit's find: 5 MB, and 300 kB followed by a pipelined request). Now the server
    shuts its side after the answer and drops what still arrives until the client closes (``app.LINGER``)."""
    for size in (300_000, 5_000_000):
        status, reply, _ = post(server, "/api/sample", b"{" + b" " * size + b"}")
        assert status == 413 and reply["error"] == f"body of {size + 2} bytes is over the limit of {MAX_BODY}"
    pipelined = raw_exchange(server, b"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 300000\r\n\r\n" + b" " * 300_000 +
                             b"GET /api/classes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head, _, body = pipelined.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and json.loads(body)["error"].startswith("body of 300000 bytes")
    assert_still_serving(server)


def raw_exchange(server, request: bytes, timeout: float = 10) -> bytes:
    """Send bytes, read the answer until the server closes; a server that hangs fails on the timeout."""
    with socket.create_connection(server.server_address, timeout=timeout) as s:
        s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def test_a_client_that_half_closes_once_its_request_is_sent_gets_its_answer(server):
    """``nc -N`` or ``shutdown(SHUT_WR)`` after the request: the answer was dropped (0 bytes back), and a body cut
    short then half-closed got no 408 either."""
    body = json.dumps(GOOD).encode()
    whole = JSON_POST + b"Content-Length: %d\r\n\r\n" % len(body) + body
    for request, statuses in ((whole, [b"200"]), (JSON_POST + b"Content-Length: 100\r\n\r\n{", [b"408"]),
                              (whole * 2, [b"200", b"200"])):  # pipelined: each answered (the second was dropped)
        with socket.create_connection(server.server_address, timeout=BODY_WAIT + 5) as s:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        assert re.findall(rb"HTTP/1\.1 (\d+) ", reply) == statuses, reply[:200]
    assert_still_serving(server)


def test_broken_http_gets_json_errors_too(server):
    """What h11 cannot parse is answered by uvicorn, in our one line of JSON with h11's reason."""
    reply = raw_exchange(server, b"HELLO\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400") and reply.endswith(b"""illegal request line: bytearray(b'HELLO')"}""")
    # Headers that are still arriving past 16 kB are refused at once (h11's limit): a 431, and one JSON line.
    reply = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 70_000)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431") and json.loads(body)["error"].startswith("malformed HTTP request")
    assert b"\n" not in body
    assert_still_serving(server)


# --- malformed framing and foreign hosts -----------------------------------------------------

JSON_POST = b"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
MALFORMED_LENGTHS = {
    "non-ASCII digits": ("Content-Length: ١٩".encode(), 400, "bad Content-Length"),
    "fullwidth digits": ("Content-Length: １９".encode(), 400, "bad Content-Length"),
    "negative": (b"Content-Length: -19", 400, "bad Content-Length"),
    "a plus sign": (b"Content-Length: +19", 400, "bad Content-Length"),
    "hexadecimal": (b"Content-Length: 0x13", 400, "bad Content-Length"),
    "a fraction": (b"Content-Length: 19.0", 400, "bad Content-Length"),
    "empty": (b"Content-Length: ", 400, "bad Content-Length"),
    "two that differ": (b"Content-Length: 19\r\nContent-Length: 20", 400, "Content-Length"),
    "a list that differs": (b"Content-Length: 19, 20", 400, "Content-Length"),
    "30 digits": (b"Content-Length: " + b"9" * 30, 400, "bad Content-Length"),
    "longer than the body": (b"Content-Length: 100", 408, "stopped after 19 of the 100 bytes"),
    "and chunked too": (b"Content-Length: 19\r\nTransfer-Encoding: chunked", 411, "no Transfer-Encoding"),
}


@pytest.mark.parametrize("header, status, words", MALFORMED_LENGTHS.values(), ids=MALFORMED_LENGTHS)
def test_a_malformed_content_length_is_refused_promptly(server, header, status, words):
    """A 4xx and one JSON line, within BODY_WAIT seconds and a margin: never a 500, never a 30-second hang."""
    body = b'{"class": "circle"}'
    assert len(body) == 19
    reply = raw_exchange(server, JSON_POST + header + b"\r\n\r\n" + body, timeout=BODY_WAIT + 3)
    head, _, answer = reply.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), reply
    assert words in json.loads(answer)["error"] and b"\n" not in answer
    assert_still_serving(server)


def test_a_connection_that_sends_nothing_is_closed(server):
    assert raw_exchange(server, b"", timeout=IDLE + 5) == b""


def test_two_equal_content_lengths_are_one(server):
    """RFC 9110 lets a list of equal values stand for one: the request is answered."""
    reply = raw_exchange(server, JSON_POST + b"Content-Length: 19\r\nContent-Length: 19\r\nConnection: close\r\n\r\n"
                         + b'{"class": "circle"}')
    assert reply.startswith(b"HTTP/1.1 200 ")


@contextlib.contextmanager
def few_descriptors(checkpoint, log: Path, limit: int = 128):
    """A real `sketchgen serve` allowed ``limit`` file descriptors (128: at most 32 connections and a backlog of 8,
    ``capacity``), its log written to ``log`` (a pipe left unread would fill and stop it); yields its address and
    process. Stopped with Ctrl-C on the way out, after the test's own clean-up."""
    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    proc = subprocess.Popen([sys.executable, "-m", "sketchgen", "serve", "--checkpoint", str(checkpoint), "--port",
                             "0"], stdout=subprocess.PIPE, stderr=log.open("w"), text=True, preexec_fn=lower,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        port = int(proc.stdout.readline().split("http://127.0.0.1:")[1].split("/")[0])
        yield SimpleNamespace(server_address=("127.0.0.1", port), pid=proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def test_clients_that_never_read_their_answers_are_closed_and_make_room(checkpoint, tmp_path):
    """A real `sketchgen serve` allowed 128 file descriptors (32 connections): 40 clients pipeline requests for the
    page's script and never read the answers. Before, a connection whose answer sat unread was never closed nor
    made room (it had sent whole requests), so with 32 of them every new client was closed unanswered. Now each
    is closed WRITE_WAIT after it stopped reading, the oldest first when a newcomer needs its place."""
    clients, log, readers = 40, tmp_path / "serve.log", []
    with few_descriptors(checkpoint, log) as server:
        try:
            for _ in range(clients):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                s.settimeout(30)
                s.connect(server.server_address)
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    s.send(b"GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\n" * 1000)
                readers.append(s)
            time.sleep(1)  # their answers fill the buffers
            statuses = [call(server, "GET", "/api/classes")[0] for _ in range(4)]
            time.sleep(WRITE_WAIT + 1)
            for s in readers:  # every one closed by the server: reading what it sent ends in the close
                s.setblocking(True)
                s.settimeout(5)
                with contextlib.suppress(ConnectionResetError):
                    while s.recv(65536):
                        pass
            assert_still_serving(server)
        finally:
            for s in readers:
                s.close()
    err = log.read_text()
    assert statuses == [200] * 4
    assert "Traceback" not in err
    assert err.count("connection closed:") == clients, err[-2000:]


def test_slow_and_malformed_clients_cost_a_log_line_each_never_the_server(checkpoint, tmp_path):
    """A real `sketchgen serve` allowed 128 file descriptors, so at most 32 connections and a backlog of 8
    (``capacity``): 48 clients send their request heads a byte every 0.4 s, and three send malformed chunked
    bodies. Before, the slow ones were never closed, took every descriptor, starved good requests and logged
    an accept() traceback for each retry (99 MB in 45 s); each malformed body was answered but left an h11
    traceback. Now good requests are answered all along (a new connection closes the one waiting longest for
    its head), every slow connection is closed within HEAD_WAIT, and the log holds one line per fault."""
    limit, clients, log, slow = 128, 48, tmp_path / "serve.log", []
    with few_descriptors(checkpoint, log, limit) as server:
        try:
            for _ in range(clients):
                slow.append(socket.create_connection(server.server_address, timeout=5))
                slow[-1].sendall(b"G")
            statuses, most_fds, ends = [], 0, time.monotonic() + HEAD_WAIT + 1
            while time.monotonic() < ends:
                for s in slow:
                    with contextlib.suppress(OSError):  # closed by the server
                        s.send(b"E")
                statuses.append(call(server, "GET", "/api/classes")[0])
                most_fds = max(most_fds, len(os.listdir(f"/proc/{server.pid}/fd")))
                time.sleep(0.4)
            for s in slow:  # every one closed by the server, none still waiting
                with contextlib.suppress(ConnectionResetError):
                    assert s.recv(100) == b""
            for body in (b"zz\r\n", b"5\r\nabc\r\n0\r\n\r\n", b"q\r\n\r\n"):
                reply = raw_exchange(server, JSON_POST + b"Transfer-Encoding: chunked\r\n\r\n" + body)
                assert reply.startswith(b"HTTP/1.1 400 ") and b"malformed HTTP request" in reply
            # `Upgrade: websocket` (any page may send one: WebSockets are not held to CORS) and `h2c`: answered and
            # logged as any request; uvicorn logged "Unsupported upgrade request." and advice to pip install a
            # WebSocket library for each (an audit's find).
            for upgrade in (b"websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                            b"h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__"):
                reply = raw_exchange(server, b"GET /api/classes HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, "
                                     b"close\r\nUpgrade: " + upgrade + b"\r\n\r\n")
                assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
            assert_still_serving(server)
        finally:
            for s in slow:
                s.close()
    err = log.read_text()
    assert statuses == [200] * len(statuses) and len(statuses) >= HEAD_WAIT / 1.5
    assert most_fds <= limit
    assert "Traceback" not in err and "Exception" not in err and "upgrade" not in err.lower()
    lines = Counter("connection closed" if "connection closed" in line else "malformed" if "malformed HTTP" in line
                    else "answered" if '"GET /api/classes HTTP/1.1" 200' in line else line for line in err.splitlines())
    assert lines == {"connection closed": clients, "malformed": 3, "answered": len(statuses) + 3}, lines


# A client of its own process (run in pytest's, its trickle reached the server too late: each body got a 408 after
# BODY_WAIT and freed its connection, which is not the case this checks): a server allowed 128 file descriptors,
# hence 32 connections; 40 bodies trickling a byte every 0.5 s (within BODY_WAIT); then 4 good requests.
TRICKLING_BODIES = """
import contextlib, http.client, os, resource, socket, subprocess, sys, threading, time
def few(): resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
proc = subprocess.Popen([sys.executable, "-m", "sketchgen", "serve", "--checkpoint", sys.argv[1], "--port", "0"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=few)
port = int(proc.stdout.readline().split("http://127.0.0.1:")[1].split("/")[0])
head = sys.argv[2].encode() + b"Content-Length: 2017\\r\\n\\r\\n{"
slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
for s in slow:
    s.sendall(head)
stop = threading.Event()
def trickle():
    while not stop.wait(0.5):
        for s in slow:
            with contextlib.suppress(OSError):
                s.send(b" ")
threading.Thread(target=trickle).start()
time.sleep(2)
for _ in range(4):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/api/classes")
        print(c.getresponse().status, flush=True)
    except OSError as e:
        print(type(e).__name__, flush=True)
    time.sleep(1)
stop.set()
proc.send_signal(2)
err = proc.communicate(timeout=30)[1]
print("closed", err.count("connection closed") + err.count('"POST /api/sample HTTP/1.1" 408'))
"""


def test_bodies_that_trickle_cannot_keep_good_requests_out(checkpoint):
    """Until 2026-12-06 a connection receiving its body could not make room, and HEAD_WAIT counted the head
    alone: 32 bodies trickling within BODY_WAIT held every connection for as long as they trickled, and each good
    request was reset (ConnectionResetError, 4 of 4). Now a request must be whole, body included, within
    HEAD_WAIT, and the connection waiting longest for a whole request makes room."""
    run = subprocess.run([sys.executable, "-c", TRICKLING_BODIES, str(checkpoint), JSON_POST.decode()],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    *statuses, closed = run.stdout.split("\n")[:-1]
    assert statuses == ["200"] * 4, run.stdout + run.stderr[-2000:]
    assert int(closed.split()[1]) >= 32  # each trickling body closed (or, paused past BODY_WAIT, answered 408)


def on_host(server, host: str) -> tuple[int, dict]:
    request = b"GET /api/classes HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n"
    reply = raw_exchange(server, request)
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost", "LocalHost:80", "[::1]", "[::1]:8000"])
def test_loopback_names_are_answered(server, host):
    status, info = on_host(server, host)
    assert status == 200 and info["classes"] == SEED_CLASSES


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil",
                                  "0.0.0.0", "[::2]", "10.0.0.1", "", "a b", "127.0.0.1:port"])
def test_other_hosts_are_refused_as_against_dns_rebinding(server, host):
    status, answer = on_host(server, host)
    assert status == 400 and list(answer) == ["error"] and "\n" not in answer["error"]
    assert "Host" in answer["error"]


def test_the_hosts_served_follow_host_and_allow_host(checkpoint):
    assert serve.allowed_hosts("127.0.0.1") == LOOPBACK
    assert serve.allowed_hosts("0.0.0.0") == serve.allowed_hosts("::") == ["*"]
    assert serve.allowed_hosts("10.1.2.3", ["*"]) == ["*"]
    assert serve.allowed_hosts("10.1.2.3") == [*LOOPBACK, "10.1.2.3"]
    assert serve.allowed_hosts("fe80::1") == [*LOOPBACK, "[fe80::1]"]
    assert serve.allowed_hosts("127.0.0.1", ["Sketch.Example", "*.lan"]) == [*LOOPBACK, "sketch.example", "*.lan"]
    with running(Sketcher(checkpoint), allow_hosts=["sketch.example", "*.lan"]) as srv:
        allowed = ("sketch.example", "sketch.example:8000", "box.lan", "127.0.0.1")
        assert [on_host(srv, h)[0] for h in allowed] == [200] * 4
        assert [on_host(srv, h)[0] for h in ("other.example", "lan")] == [400, 400]


@pytest.mark.parametrize("value", ["a b", "*", "*.lan", "[::1]", "evil/path", "x*y", ""])
def test_allow_host_values_are_checked_as_parsed(value, capsys):
    from sketchgen.cli import values

    if value in ("*", "*.lan", "[::1]"):
        assert values.host_name(value) == value
        return
    with pytest.raises(SystemExit) as stop:
        cli.main(["serve", "--allow-host", value])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "--allow-host" in err


# --- several checkpoints on one page ---------------------------------------------------------


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory) -> Path:
    """An untrained small mdn, also saved as best.pt, of two classes: cat, and eye, which the tiny models know too."""
    path = tmp_path_factory.mktemp("other") / "best.pt"
    model.save(path, model.checkpoint_dict(drawing(model.get("mdn"), 2), ["cat", "eye"]))
    return path


def drawing(cls, n_classes: int):
    """An untrained small model of ``cls`` (an mdn or one built on it) that draws: its end state made unlikely."""
    torch.manual_seed(0)
    net = cls(cls.Config(n_classes=n_classes, hidden=16, n_mixtures=3, max_len=40, scale=10.0))
    with torch.no_grad():
        net.head.bias[2] = -4.0  # the pen's third logit: end the drawing
    return net


@pytest.fixture(scope="module")
def two_models(checkpoint, other_checkpoint):
    with running(Sketcher([checkpoint, other_checkpoint])) as srv:
        yield srv


def id_of(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_classes_list_every_model_and_its_classes(two_models, checkpoint, other_checkpoint):
    status, info, raw = call(two_models, "GET", "/api/classes")
    assert status == 200
    json.loads(raw, parse_constant=lambda name: pytest.fail(f"{name} in /api/classes"))  # strict JSON
    assert [m["id"] for m in info["models"]] == [id_of(checkpoint), id_of(other_checkpoint)]
    assert [m["classes"] for m in info["models"]] == [SEED_CLASSES, ["cat", "eye"]]
    assert info["classes"] == SEED_CLASSES + ["cat"]  # each name once
    assert info["model"] == info["models"][0] and info["routes"] == ["sample", "complete"]
    assert [m["max_len"] for m in info["models"]] == [250, 40] and info["limits"]["max_len"] == 250


def test_each_model_draws_its_own_classes_as_it_does_alone(two_models, server, checkpoint, other_checkpoint,
                                                           user_strokes):
    alone = Sketcher(other_checkpoint)
    cat = post(two_models, "/api/sample", {"class": "cat", "seed": 3})  # one model knows cat: no need to name it
    assert cat[0] == 200 and cat[1]["model"] == id_of(other_checkpoint)
    assert cat[1]["strokes"] == alone.sample({"class": "cat", "seed": 3})["strokes"]
    named = post(two_models, "/api/sample", {"class": "eye", "model": id_of(other_checkpoint), "seed": 3})
    assert named[1]["strokes"] == alone.sample({"class": "eye", "seed": 3})["strokes"]
    # The tiny mdn's eye, its completion too, as the one-model server draws them; the burst shares batches.
    jobs = [("/api/sample", {"class": "eye", "model": id_of(checkpoint), "seed": s}) for s in range(6)]
    jobs += [("/api/complete", {"class": "eye", "model": id_of(checkpoint), "seed": 1, "strokes": user_strokes}),
             ("/api/sample", {"class": "cat", "seed": 9})]
    with ThreadPoolExecutor(len(jobs)) as pool:
        burst = list(pool.map(lambda job: post(two_models, *job), jobs))
    for (path, body), (status, reply, _) in zip(jobs, burst):
        body = {k: v for k, v in body.items() if k != "model"}
        expected = post(server, path, body)[1] if body["class"] == "eye" else alone.sample(body)
        assert status == 200 and reply["strokes"] == expected["strokes"]


def test_a_class_two_models_know_needs_the_model_named(two_models, checkpoint, other_checkpoint):
    assert_refused(post(two_models, "/api/sample", {"class": "eye"}), 400,
                   f"class 'eye' is drawn by 2 models here ({id_of(checkpoint)}, {id_of(other_checkpoint)}): name one")
    assert_refused(post(two_models, "/api/sample", {"class": "eye", "model": "nowhere.pt"}), 400, "unknown model")
    assert_refused(post(two_models, "/api/sample", {"class": "eye", "model": 3}), 400, "unknown model")
    assert_refused(post(two_models, "/api/sample", {"class": "cat", "model": id_of(checkpoint)}), 400,
                   f"unknown class 'cat' for model {id_of(checkpoint)!r}")
    assert_refused(post(two_models, "/api/complete", {"class": "eye", "strokes": [A_STROKE]}), 400, "name one")


def test_model_names_are_the_shortest_ends_of_their_paths(tmp_path):
    assert serve.model_ids([Path("runs/a/best.pt"), Path("runs/b/best.pt")]) == ["a/best.pt", "b/best.pt"]
    assert serve.model_ids([Path("x/cat.pt"), Path("y/dog.pt")]) == ["cat.pt", "dog.pt"]
    assert serve.model_ids([Path("one.pt")]) == ["one.pt"]
    assert serve.model_ids([Path("p/q/best.pt"), Path("r/q/best.pt")]) == ["p/q/best.pt", "r/q/best.pt"]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, tiny_models, other_checkpoint) -> Path:
    """A folder of checkpoints and things that are not: a junk .pt, a classifier-like dict, a NaN val_loss, a folder."""
    folder = tmp_path_factory.mktemp("zoo")
    shutil.copy(tiny_models["seed"], folder / "seed.pt")
    shutil.copy(other_checkpoint, folder / "other.pt")
    (folder / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"classes": ["cat"], "state_dict": {}}, folder / "judge.pt")
    nan_loss = model.read(other_checkpoint)
    model.save(folder / "diverged.pt", {**nan_loss, "val_loss": float("nan")})
    (folder / "notes.txt").write_text("not even a .pt")
    (folder / "sub.pt").mkdir()
    return folder


def test_a_folder_serves_every_model_checkpoint_in_it_and_says_what_it_skips(zoo):
    said = []
    sketcher = Sketcher(zoo, say=said.append)
    assert list(sketcher.models) == ["other.pt", "seed.pt"]
    assert len(said) == 3 and all(line.count("\n") == 0 and line.startswith("sketchgen: skipped ") for line in said)
    skipped = dict(line.removeprefix("sketchgen: skipped ").split(": ", 1) for line in said)
    assert set(skipped) == {str(zoo / name) for name in ("diverged.pt", "judge.pt", "junk.pt")}
    assert "val_loss is not a finite number" in skipped[str(zoo / "diverged.pt")]
    assert "not a sketchgen model checkpoint" in skipped[str(zoo / "judge.pt")]
    assert "not a readable sketchgen checkpoint" in skipped[str(zoo / "junk.pt")]


def test_a_folder_of_magenta_models_is_served_as_load_reads_them(zoo_files, tmp_path):
    """A folder of zoo files was "a folder holding no sketchgen model checkpoint (*.pt)", though each file given
    alone is served as it is: now each .gen.json is found too, and one that is not a model is skipped in a line."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    shutil.copy(zoo_files["sheep"], folder / "sheep.gen.json")
    (folder / "broken.gen.json").write_text('{"not": "a model"}')
    said = []
    sketcher = Sketcher(folder, say=said.append)
    assert list(sketcher.models) == ["sheep.gen.json"] and sketcher.models["sheep.gen.json"].classes == ["sheep"]
    (line,) = said
    assert line.startswith(f"sketchgen: skipped {folder / 'broken.gen.json'}: ") and "\n" not in line


def test_checkpoints_that_cannot_be_served_are_refused_in_one_line(tmp_path, zoo, checkpoint, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "loop.pt").symlink_to("loop.pt")  # resolving its path was a RuntimeError traceback (an audit's find)
    for given, words in (([tmp_path / "empty"], "holding no sketchgen model checkpoint"),
                         ([checkpoint, checkpoint], "given twice"),
                         ([zoo, zoo / "seed.pt"], "given twice"),
                         ([zoo / "junk.pt"], "not a readable sketchgen checkpoint"),
                         ([checkpoint, tmp_path / "loop.pt"], "cannot be read (Too many levels of symbolic links)")):
        assert cli.main(["serve", *[a for path in given for a in ("--checkpoint", str(path))], "--port", "0"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 + 3 * (zoo in given) and words in err.splitlines()[-1]


def test_serve_command_serves_a_folder_beside_a_file(zoo, checkpoint):
    proc = subprocess.Popen([sys.executable, "-m", "sketchgen", "serve", "--checkpoint", str(zoo), "--checkpoint",
                             str(checkpoint), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving 3 models (other.pt, seed.pt, best.pt) at http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/classes")
        assert [m["id"] for m in json.loads(conn.getresponse().read())["models"]] == ["other.pt", "seed.pt", "best.pt"]
        conn.close()
        proc.send_signal(2)
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read()
        assert err.count("sketchgen: skipped") == 3 and "Traceback" not in err
    finally:
        proc.kill()
        proc.wait()


# --- a model with a latent: reconstruct and interpolate --------------------------------------


class LatentMDN(MDN, Encodes):
    """A model sketchgen does not ship: the mdn with a latent added to its context, from a mean-pooled encoder."""

    name = "latent-test"
    latent_dim = 4

    def __init__(self, cfg):
        super().__init__(cfg)
        self.encoder = nn.Linear(self.step_dim, 2 * self.latent_dim)
        self.from_latent = nn.Linear(self.latent_dim, cfg.embed_dim)

    def condition(self, classes, latent=None):
        embedded = class_embedding(self.embed, classes)
        return embedded if latent is None else embedded + self.from_latent(latent)

    def encode_latent(self, batch):
        mask = batch.mask[..., None]
        pooled = (self.encoder(batch.targets) * mask).sum(1) / mask.sum(1)
        return pooled[:, : self.latent_dim], pooled[:, self.latent_dim :]


@pytest.fixture(scope="module")
def latent_server(tmp_path_factory, checkpoint):
    """The latent model (untrained, 3 classes) registered as a file in models/ would be, served beside the tiny mdn."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry._MODELS, LatentMDN.name, LatentMDN)
        path = tmp_path_factory.mktemp("latent") / "vae.pt"
        model.save(path, model.checkpoint_dict(drawing(LatentMDN, 3), ["cat", "dog", "eye"]))
        with running(Sketcher([path, checkpoint])) as srv:
            yield srv


def as_encoded(drawing) -> np.ndarray:
    """A drawing's strokes as the server encodes them: simplified into 0-255, stroke-3."""
    return strokes.strokes_to_stroke3(strokes.simplify(strokes.parse_drawing(drawing)))


def latent_of(net, drawing, label) -> torch.Tensor:
    with torch.no_grad():
        return net.encode_latent(collate(net, [as_encoded(drawing)], np.array([label])))[0]


def test_a_latent_model_reconstructs_a_drawing_from_its_latent(latent_server, user_strokes):
    status, info, _ = call(latent_server, "GET", "/api/classes")
    assert info["routes"] == ["sample", "complete", "reconstruct", "interpolate"]
    assert [m["latent_dim"] for m in info["models"]] == [4, 0]
    served = latent_server.sketcher.models["vae.pt"]
    body = {"class": "dog", "strokes": user_strokes, "seed": 5, "temperature": 0.6}
    status, reply, _ = post(latent_server, "/api/reconstruct", body)
    assert status == 200 and reply["model"] == "vae.pt" and post(latent_server, "/api/reconstruct", body)[1] == reply
    # What the model interface gives: the mean latent of the drawing as training saw it, decoded with the seed.
    expected = sample.generate(served.net, [1], 0.6, seeds=[5], latents=latent_of(served.net, user_strokes, 1))[0]
    assert reply["strokes"] == strokes.drawing_field(strokes.quickdraw_strokes(expected))
    assert reply["points"] == len(expected) > 0
    moved = post(latent_server, "/api/reconstruct", {**body, "strokes": scaled(user_strokes, 0.5, (30, 30))})[1]
    assert moved == reply  # a drawing is encoded as training data is: fitted to 0-255 first
    other = post(latent_server, "/api/reconstruct", {**body, "strokes": [A_STROKE]})[1]
    assert other["strokes"] != reply["strokes"]


def test_a_drawing_is_encoded_the_same_alone_and_among_other_requests(tiny_models, quickdraw):
    """The latent /api/reconstruct and /api/interpolate decode is the drawing's own, whatever else its batch holds:
    encoded together over padding, real eyes each got a latent 1e-7 off the one they got alone (an audit's find)."""
    served = next(iter(Sketcher(tiny_models["vae"], workers=0).models.values()))  # batches made by hand below
    with open(quickdraw / "simplified" / "eye.ndjson") as eyes, open(quickdraw / "simplified" / "circle.ndjson") as o:
        sent = [("eye", json.loads(next(eyes))["drawing"]) for _ in range(6)]
        sent += [("circle", json.loads(next(o))["drawing"]) for _ in range(2)]

    def made(jobs: list[Job]) -> list[np.ndarray]:
        for job in jobs:
            served.batcher.submit(job)
        served.batcher.work_once()
        return [job.answer.result() for job in jobs]

    def encodings() -> list[Job]:
        return [Job(served.rows.find(cls), encode=as_encoded(drawing)) for cls, drawing in sent]

    alone = [made([job])[0] for job in encodings()]
    together = made([*encodings(), Job(served.rows.find("eye"), 0.5, 1)])  # a sample request among them too
    assert served.batcher.sizes == {1: len(sent) + 1, len(sent): 1}  # the encodings were one batch
    assert [np.array_equal(a, t) for a, t in zip(alone, together)] == [True] * len(sent)


def test_interpolation_runs_from_one_reconstruction_to_the_other(latent_server, user_strokes):
    ends = {"class": "dog", "strokes": user_strokes, "to_class": "cat", "to_strokes": [A_STROKE], "seed": 2}
    status, reply, _ = post(latent_server, "/api/interpolate", {**ends, "steps": 4})
    assert status == 200 and len(reply["drawings"]) == 4 and reply["to_class"] == "cat"
    first = post(latent_server, "/api/reconstruct", {"class": "dog", "strokes": user_strokes, "seed": 2})[1]
    last = post(latent_server, "/api/reconstruct", {"class": "cat", "strokes": [A_STROKE], "seed": 2})[1]
    assert reply["drawings"][0]["strokes"] == first["strokes"] and reply["drawings"][-1]["strokes"] == last["strokes"]
    assert len({json.dumps(d["strokes"]) for d in reply["drawings"]}) > 1
    assert len(post(latent_server, "/api/interpolate", {k: v for k, v in ends.items() if k != "to_class"})[1]
               ["drawings"]) == 5  # the default; to_class defaults to class


def test_the_drawings_a_request_makes_are_what_the_server_counts(latent_server, user_strokes, monkeypatch):
    """WAITING counts drawings: an interpolation of 4 makes 6 (2 encodings and 4 decodings), a reconstruction 2. It
    counted requests, so that 256 interpolations queued 4,608 drawings (an audit's find)."""
    ends = {"class": "dog", "strokes": user_strokes, "to_strokes": [A_STROKE], "steps": 4}
    for most, interpolation, reconstruction in ((5, 503, 200), (6, 200, 200), (1, 503, 503)):
        monkeypatch.setattr(app_module, "WAITING", most)
        assert post(latent_server, "/api/interpolate", ends)[0] == interpolation
        assert post(latent_server, "/api/reconstruct", {"class": "dog", "strokes": user_strokes})[0] == reconstruction
        assert post(latent_server, "/api/sample", {"class": "dog"})[0] == 200


def address_elsewhere() -> str | None:
    """An IPv4 address of this machine's that is not loopback: a client connecting to it comes from it, as a
    client on the network would."""
    try:
        found = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    except OSError:  # no hostname command: no address known
        return None
    return next((a for a in found if "." in a and not ipaddress.ip_address(a).is_loopback), None)


def test_a_client_s_drawings_are_counted_while_made_and_given_back_however_the_request_ends():
    """What the share rests on (a review asked): each client's count grows with its requests in flight, alone; it
    returns to nothing when a request ends, is cancelled (its client gone) or fails; this machine's addresses,
    IPv4 ones written as IPv6 among them, share the whole; an IPv6 host is its /64, however many addresses it takes
    there (a review's find: each was a client of its own)."""
    budget, client = app_module.Budget(), app_module._client

    async def drawing(host, cost, end):
        with budget.spent(client(host), cost):
            await end

    async def main():
        loop = asyncio.get_running_loop()
        ends = [loop.create_future() for _ in range(4)]
        hosts = ("192.0.2.9", "192.0.2.9", "::1", "2001:db8::1")
        tasks = [asyncio.ensure_future(drawing(h, 30, e)) for h, e in zip(hosts, ends)]
        await asyncio.sleep(0)
        assert (budget.total, dict(budget.by_client)) == (120, {"192.0.2.9": 60, None: 30, "2001:db8::/64": 30})
        assert budget.refusal(client("192.0.2.9"), app_module.SHARE - 59) is not None  # past its share, with others
        assert budget.refusal(client("192.0.2.10"), app_module.SHARE) is None  # in flight: another has its own
        assert budget.refusal(client("2001:db8::2:3"), app_module.SHARE - 29) is not None  # the same /64
        assert budget.refusal(client("2001:db8:0:1::1"), app_module.SHARE) is None  # another /64
        assert budget.refusal(client("::ffff:127.0.0.1"), app_module.SHARE + 1) is None  # this machine's share all
        tasks[0].cancel()
        ends[1].set_exception(RuntimeError("a drawing failed"))
        ends[2].set_result(None)
        ends[3].set_result(None)
        await asyncio.gather(*tasks, return_exceptions=True)
        assert (budget.total, dict(budget.by_client)) == (0, {})

    asyncio.run(main())


def test_a_client_elsewhere_has_a_share_of_the_drawings_made_at_once(latent_server, user_strokes, monkeypatch):
    """A client on the network that ignores Retry-After kept WAITING full, so that every other client was told 503
    again and again (what round ten left). Now one client elsewhere may have SHARE drawings being made at once;
    this machine's own clients are one user, sharing all of WAITING."""
    address = address_elsewhere()
    if address is None:
        pytest.skip("this machine has no address but loopback, so no client can come from elsewhere")
    ends = {"class": "dog", "strokes": user_strokes, "to_strokes": [A_STROKE], "steps": 4}  # 6 drawings
    with running(latent_server.sketcher, host="0.0.0.0") as srv:
        port = srv.server_address[1]
        elsewhere, here = SimpleNamespace(server_address=(address, port)), SimpleNamespace(server_address=("127.0.0.1",
                                                                                                              port))
        monkeypatch.setattr(app_module, "SHARE", 5)
        status, reply, _ = post(elsewhere, "/api/interpolate", ends)
        assert (status, reply["error"]) == (503, "busy: 0 drawings of this client's are being made, and a client may "
                                                 "have 5 at once; try again once they are answered")
        assert post(elsewhere, "/api/reconstruct", {"class": "dog", "strokes": user_strokes})[0] == 200
        assert post(here, "/api/interpolate", ends)[0] == 200
        monkeypatch.setattr(app_module, "SHARE", 6)
        assert post(elsewhere, "/api/interpolate", ends)[0] == 200


def test_latent_routes_are_refused_where_they_cannot_work(latent_server, server, user_strokes, checkpoint):
    tiny = id_of(checkpoint).split("/")[-1]
    assert_refused(post(latent_server, "/api/reconstruct", {"class": "eye", "model": tiny, "strokes": user_strokes}),
                   400, f"model {tiny!r} (mdn) encodes no drawings, so it cannot reconstruct one")
    ends = {"class": "dog", "strokes": user_strokes, "to_strokes": [A_STROKE]}
    for spoiled, words in (({"steps": 1}, "'steps' must be an integer from 2 to 16"),
                           ({"to_class": "apple"}, "to_class"), ({"to_strokes": []}, "'to_strokes': drawing is empty"),
                           ({"colour": 1}, "unknown field")):
        assert_refused(post(latent_server, "/api/interpolate", {**ends, **spoiled}), 400, words)
    assert_refused(post(latent_server, "/api/reconstruct", {"class": "dog"}), 400, "'strokes'")
    # A server without a latent model has no such routes, as before.
    assert_refused(post(server, "/api/reconstruct", {"class": "eye", "strokes": user_strokes}), 404, "no POST route")


# --- the command -----------------------------------------------------------------------------


def serve_command(*flags) -> tuple[subprocess.Popen, dict]:
    """`sketchgen serve` on a free port, as a user starts it, and its answer to GET /api/classes."""
    proc = subprocess.Popen([sys.executable, "-m", "sketchgen", "serve", *flags, "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    line = proc.stdout.readline()
    assert "at http://127.0.0.1:" in line, proc.stderr.read()
    conn = http.client.HTTPConnection("127.0.0.1", int(line.split("http://127.0.0.1:")[1].split("/")[0]), timeout=30)
    conn.request("GET", "/api/classes")
    info = json.loads(conn.getresponse().read())
    conn.close()
    return proc, info


def test_serve_without_a_checkpoint_serves_the_shipped_mdn(capsys, tmp_path, monkeypatch):
    proc, info = serve_command()
    try:
        assert [m["id"] for m in info["models"]] == ["mdn-quickdraw29.pt", "mdn-quickdraw345.pt"]
        assert len(info["classes"]) == 345
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "no --checkpoint given; drawing with the shipped model mdn-quickdraw29.pt" in proc.stderr.read()
    # Each class drawn by the first shipped model that knows it, as `sample` chooses.
    from sketchgen.api import BASE_MODEL, SHIPPED_MODEL

    both = Sketcher([SHIPPED_MODEL, BASE_MODEL], first_wins=True)
    assert [both.sample({"class": c, "seed": 1})["model"] for c in ("eye", "cat")] == \
        ["mdn-quickdraw29.pt", "mdn-quickdraw345.pt"]
    # Without the shipped model (a checkout that lacks it), one line says how to get a checkpoint.
    monkeypatch.setattr("sketchgen.api.SHIPPED_MODEL", tmp_path / "missing.pt")
    assert cli.main(["serve"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--checkpoint" in err and "sketchgen train --model mdn" in err


def test_serve_command_listens_on_loopback_and_stops_on_interrupt(checkpoint):
    proc, info = serve_command("--checkpoint", str(checkpoint))
    try:
        assert info["classes"] == SEED_CLASSES
        proc.send_signal(2)  # Ctrl-C
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
