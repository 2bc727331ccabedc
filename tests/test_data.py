"""data on real QuickDraw files: both readers, Google's simplification, bad lines, preparation, the cache,
where drawings come from, and streaming."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, SMALL_CAP, SMALL_CLASSES, assert_same_prepared

from sketchgen import cache, classfiles, cli, data, download, fileio, strokes
from sketchgen.classfiles import DataError
from sketchgen.data import Problems
from sketchgen.drawing import MAX_LINE, MAX_LINE_VALUES, Drawing
from sketchgen.errors import DrawingError

BAD_LINES = FIXTURES / "bad_lines.ndjson"
# Line number -> the start of the reason the reader must give for it (bad_lines.ndjson).
BAD = {
    2: "not JSON",
    3: "drawing is empty",
    5: "stroke 0 has 3 x values but 2 y values",
    7: "word is 'square', expected 'circle'",
    8: "not a JSON object",
    9: "stroke 0 has a non-numeric coordinate",
    10: "stroke 0 has a non-finite coordinate",
    11: "no 'drawing' field",
    13: "not JSON",  # the truncated last line
}


def lines(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def fingerprint(s3: np.ndarray) -> bytes:
    return np.asarray(s3, dtype=np.int16).tobytes()


def recognized_fingerprints(path: Path) -> list[bytes]:
    """Every recognized drawing of a file as int16 stroke-3 bytes, read without sketchgen.data."""
    return sorted(
        fingerprint(strokes.strokes_to_stroke3(strokes.parse_drawing(r["drawing"])))
        for r in lines(path) if r["recognized"]
    )


def prepared_fingerprints(p: data.Prepared, idx=None) -> list[bytes]:
    idx = range(len(p)) if idx is None else idx
    return sorted(fingerprint(p.stroke3(i)) for i in idx)


# --- reading ---------------------------------------------------------------------------------


def test_reads_a_simplified_file_whole(quickdraw):
    path = quickdraw / "simplified" / "circle.ndjson"
    problems = Problems()
    drawings = list(data.read_ndjson(path, "circle", problems))
    records = lines(path)
    assert not problems.counts and len(drawings) == len(records) > 150
    assert [d.key_id for d in drawings] == [r["key_id"] for r in records]
    assert [d.recognized for d in drawings] == [r["recognized"] for r in records]
    assert not all(d.recognized for d in drawings)  # the file has unrecognized drawings to filter
    for d, r in zip(drawings, records):
        assert strokes.drawing_field(d.points) == r["drawing"]


def test_reads_a_raw_file_as_is_or_simplified(quickdraw):
    path = quickdraw / "raw" / "cat.ndjson"
    records = lines(path)
    raw = list(data.read_ndjson(path, "cat", simplify_raw=False))
    assert len(raw) == len(records) > 20
    for d, r in zip(raw, records):
        assert [len(s) for s in d.points] == [len(xs) for xs, _, _ in r["drawing"]]
        np.testing.assert_array_equal(d.points[0][:, 1], r["drawing"][0][1])
    # In QuickDraw's 0-255 frame; RDP may drop an extreme point, as in Google's own files.
    simplified = np.vstack([np.vstack(d.points) for d in data.read_ndjson(path, "cat")])
    assert (simplified == np.rint(simplified)).all() and simplified.min() == 0 and simplified.max() == 255


def vertex_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance from each of ``points`` to the polyline through ``line``."""
    if len(line) == 1:
        return np.hypot(*(points - line[0]).T)
    a, ab = line[:-1], np.diff(line, axis=0)
    ap = points[:, None, :] - a[None]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    d = ap - t[..., None] * ab
    return np.hypot(d[..., 0], d[..., 1]).min(axis=1)


def test_simplify_agrees_with_googles_own_simplification(quickdraw):
    """Our raw -> simplified against Google's simplified file, drawing by drawing (same key_id).

    Measured on all 7,728 pairs: the stroke count always matches, a vertex lies 0.15 px on average
    from the other's polyline (99th percentile of drawings 0.32 px), the point count differs by 1.8%.
    Here every 8th raw class (~1,000 pairs).
    """
    classes = sorted(p.stem for p in (quickdraw / "raw").glob("*.ndjson"))[::8]
    same_strokes, mean_dist, point_diff = [], [], []
    for name in classes:
        google = {d.key_id: d for d in data.read_ndjson(quickdraw / "simplified" / f"{name}.ndjson", name)}
        for ours in data.read_ndjson(quickdraw / "raw" / f"{name}.ndjson", name):
            theirs = google.get(ours.key_id)
            if theirs is None:
                continue
            same_strokes.append(len(ours.points) == len(theirs.points))
            pairs = list(zip(ours.points, theirs.points))
            dist = np.concatenate([vertex_to_polyline(a, b) for a, b in pairs] + [vertex_to_polyline(b, a) for a, b in pairs])
            mean_dist.append(dist.mean())
            n_ours, n_theirs = sum(map(len, ours.points)), sum(map(len, theirs.points))
            point_diff.append(abs(n_ours - n_theirs) / n_theirs)
    assert len(same_strokes) > 800
    assert np.mean(same_strokes) > 0.99
    assert np.mean(mean_dist) < 0.3 and np.percentile(mean_dist, 99) < 0.6
    assert np.mean(point_diff) < 0.05


def test_each_bad_line_is_reported_once_and_the_good_ones_kept(capsys):
    problems = Problems()
    kept = list(data.read_ndjson(BAD_LINES, "circle", problems))
    assert [d.key_id for d in kept] == ["good-1", "good-2", "good-3"]
    assert [d.recognized for d in kept] == [True, False, True]
    assert kept[0].countrycode == "NZ" and [len(s) for s in kept[0].points] == [5, 1]
    reported = capsys.readouterr().err.splitlines()
    assert len(reported) == len(BAD) == sum(problems.counts.values())
    for line, (lineno, reason) in zip(reported, BAD.items()):
        assert line.startswith(f"{BAD_LINES}:{lineno}: {reason}") and line.endswith("(skipped)")
    assert problems.summary().startswith(f"{len(BAD)} bad lines skipped: 2 not JSON")


def test_a_file_read_on_its_own_ends_with_what_it_skipped(capsys):
    """``sketchgen.read_ndjson`` and ``sample --prefix FILE``: the README's summary came only from preparation (an
    audit's find)."""
    kept = list(data.read_ndjson(BAD_LINES, "circle"))
    assert len(kept) == 3
    reported = capsys.readouterr().err.splitlines()
    assert len(reported) == len(BAD) + 1
    assert reported[-1].startswith(f"{BAD_LINES}: {len(BAD)} bad lines skipped: 2 not JSON")


def test_bad_lines_are_counted_by_kind_never_by_what_they_say(tmp_path, capsys):
    """Found by an audit: the count was keyed by each reason's text, which quotes the line: 1.2 million lines of
    words of their own held 614 MB and printed a summary line of 44 MB. Each line shown keeps its exact reason."""
    good = {"word": "circle", "drawing": [[[0, 10], [0, 10]]]}
    said = [{"word": f"w{i}"} for i in range(300)] + [{"word": [i]} for i in range(300)] + \
        [{"recognized": f"r{i}"} for i in range(300)] + [{"key_id": [i]} for i in range(300)]
    path = tmp_path / "circle.ndjson"
    path.write_text("".join(json.dumps({**good, **line}) + "\n" for line in [{}, *said]))
    problems = Problems()
    assert len(list(data.read_ndjson(path, "circle", problems))) == 1
    assert problems.counts == {"word is not 'circle'": 300, "word is not a string": 300,
                               "recognized is not true or false": 300,
                               "key_id or countrycode is not a string of at most 100 characters": 300}
    assert capsys.readouterr().err.splitlines()[:2] == [f"{path}:2: word is 'w0', expected 'circle' (skipped)",
                                                        f"{path}:3: word is 'w1', expected 'circle' (skipped)"]
    assert len(problems.summary()) < 200


def test_a_line_is_read_only_if_the_writer_writes_it_back(tmp_path, capsys):
    """Found by an audit: whatever a line said beside its drawing was kept: 10 lines of 4 MiB of "{}," held 1.26 GB,
    and a note of 2 MB was read, then refused by write_ndjson. The reader holds a line to the writer's rule (a line
    of at most MAX_LINE bytes and MAX_LINE_VALUES values, strict JSON): each one written is read back, no other."""
    good = {"word": "circle", "drawing": [[[0, 10], [0, 10]]]}
    fits = len(json.dumps({**good, "countrycode": "", "recognized": True, "key_id": "", "note": ""}))
    said = [{"x": [{}] * 1_000_000}, {"note": "n" * 2_000_000}, {"note": "n" * (MAX_LINE - fits + 1)},
            {"x": [0] * MAX_LINE_VALUES}, {"x": float("nan")}, {"note": "n" * (MAX_LINE - fits)}, {"x": [0] * 90_000}]
    path = tmp_path / "circle.ndjson"
    path.write_text("".join(json.dumps({**good, **line}) + "\n" for line in said))
    problems = Problems(quiet=True)
    read = list(data.read_ndjson(path, "circle", problems))
    assert [sorted(d.info) for d in read] == [["note"], ["x"]] and len(read[0].to_ndjson()) == MAX_LINE
    assert problems.counts == {f"more than {MAX_LINE_VALUES:,} values": 2,
                               "what it says beside its drawing could not be written back": 3}
    data.write_ndjson(read, tmp_path / "again.ndjson")
    assert [d.info for d in data.read_ndjson(tmp_path / "again.ndjson")] == [d.info for d in read]
    with pytest.raises(DrawingError, match=f"line would hold 100,0\\d\\d values, more than the {MAX_LINE_VALUES:,}"):
        Drawing.from_strokes([([0, 10], [0, 10])], "circle", **said[3]).to_ndjson()


def test_prepare_skips_bad_lines_but_keeps_the_rest_of_the_file(quickdraw, tmp_path, capsys):
    """Bad lines in the middle and a truncated line at the end of a real file cost only those lines."""
    real = (quickdraw / "simplified" / "circle.ndjson").read_text().splitlines(keepends=True)
    bad = BAD_LINES.read_text().splitlines(keepends=True)
    (tmp_path / "circle.ndjson").write_text("".join(real[:60] + bad[:-1] + real[60:] + bad[-1:]))
    problems = Problems(quiet=True)
    p = data.prepare(["circle"], tmp_path, seed=0, cache_dir=tmp_path / "cache", problems=problems)
    assert sum(problems.counts.values()) == len(BAD)
    expected = recognized_fingerprints(quickdraw / "simplified" / "circle.ndjson")
    good = [strokes.strokes_to_stroke3(d.points) for d in data.read_ndjson(BAD_LINES, "circle") if d.recognized]
    assert prepared_fingerprints(p) == sorted(expected + [fingerprint(s) for s in good])
    assert f"{len(BAD)} bad lines skipped" in capsys.readouterr().err


def test_lines_too_long_to_be_drawings_are_refused_with_bounded_memory(quickdraw, tmp_path, capsys):
    """A 9 MB line and a 40 MB end of file without a newline: one report each, the good lines kept, a few MB used."""
    real = (quickdraw / "simplified" / "circle.ndjson").read_bytes().splitlines(keepends=True)[:20]
    long_line = b'{"word": "circle", "drawing": [[[' + b"1, " * (3 << 20) + b"1], [1]]]}\n"
    path = tmp_path / "circle.ndjson"
    path.write_bytes(b"".join(real[:10]) + long_line + b"".join(real[10:]) + b"[" * (40 << 20))
    tracemalloc.start()
    try:
        kept = list(data.read_ndjson(path, "circle"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [d.key_id for d in kept] == [json.loads(line)["key_id"] for line in real]
    err = capsys.readouterr().err.splitlines()
    assert err[:-1] == [f"{path}:{n}: longer than {download.MAX_LINE_BYTES} bytes, not a drawing (skipped)"
                        for n in (11, 22)]
    assert err[-1].startswith(f"{path}: 2 bad lines skipped: ")
    assert peak < 3 * download.MAX_LINE_BYTES  # measured 8.5 MB (readline joins its pieces); the file is 50 MB


def test_a_drawing_of_more_points_than_a_drawing_may_have_is_skipped(quickdraw, tmp_path, capsys):
    """300,000 one-point strokes (a 3.6 MB line) and one stroke of 20,000 points were read, cached by prepare and
    returned by read_ndjson as Drawings that write_ndjson then refused; a drawing of MAX_POINTS is still read. (The
    first is now refused before it is parsed, for its 1.5 million values.)"""
    real = (quickdraw / "simplified" / "circle.ndjson").read_text().splitlines(keepends=True)[:3]
    xs = list(range(200)) * (strokes.MAX_POINTS // 200)
    path = tmp_path / "circle.ndjson"
    crafted = [{"word": "circle", "drawing": [[[1], [2]]] * 300_000}, {"word": "circle", "drawing": [[xs * 2, xs * 2]]},
               {"word": "circle", "key_id": "longest", "drawing": [[xs, xs]]}]
    written = [real[0], crafted[0], real[1], crafted[1], crafted[2], real[2]]
    path.write_text("".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in written))
    kept = list(data.read_ndjson(path, "circle"))
    assert [d.key_id for d in kept] == [*(json.loads(line)["key_id"] for line in real[:2]), "longest",
                                        json.loads(real[2])["key_id"]]
    err = capsys.readouterr().err.splitlines()
    assert err[:-1] == [
        f"{path}:2: 1,500,002 values, more than the {MAX_LINE_VALUES:,} a drawing's line may have (skipped)",
        f"{path}:4: drawing has {2 * strokes.MAX_POINTS} points, more than the {strokes.MAX_POINTS} a drawing may have "
        "(skipped)"]
    assert err[-1].startswith(f"{path}: 2 bad lines skipped: ")
    data.write_ndjson(kept, tmp_path / "again.ndjson")  # every drawing read writes back
    assert [d.key_id for d in data.read_ndjson(tmp_path / "again.ndjson")] == [d.key_id for d in kept]


def test_a_class_list_file_may_start_with_a_bom(quickdraw, tmp_path, capsys):
    """An @FILE saved by an editor that writes a UTF-8 BOM was refused ("control character"), where an ndjson file
    with one is read."""
    listed = tmp_path / "classes.txt"
    listed.write_bytes("\ufeffcircle\r\neye\r\n".encode())
    assert cli.main(["prepare", "--classes", f"@{listed}", "--data-dir", str(quickdraw / "simplified"),
                     "--max-per-class", "10", "--workers", "1"]) == 0
    assert capsys.readouterr().out.startswith("20 drawings of 2 classes: ")


def test_fractional_coordinates_are_rounded_into_the_cache(quickdraw, tmp_path):
    """Every coordinate of a real file moved by up to 0.3: the cache holds the original drawings (truncating
    each int16 offset instead would move most of their points)."""
    rng = np.random.default_rng(0)
    records = lines(quickdraw / "simplified" / "circle.ndjson")
    for r in records:
        r["drawing"] = [[(np.array(c) + rng.uniform(-0.3, 0.3, len(c))).tolist() for c in stroke] for stroke in r["drawing"]]
    (tmp_path / "circle.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records))
    p = data.prepare(["circle"], tmp_path, cache_dir=tmp_path / "cache")
    assert prepared_fingerprints(p) == recognized_fingerprints(quickdraw / "simplified" / "circle.ndjson")


@pytest.mark.parametrize("kind", ["directory", "fifo", "empty", "read error", "looping link", "dangling link"])
def test_class_files_that_cannot_be_read_are_refused_in_one_line(kind, tmp_path):
    """Each in one line naming the file. A link that loops or dangles was taken for no file at all: "no circle.ndjson
    or circle.npz in DIR", with the link there (an audit's find)."""
    path = tmp_path / "circle.ndjson"
    expected = {"directory": f"{path} is a directory, not a file of drawings",
                "fifo": f"{path} is a special file, not a file of drawings",  # opening it would block for ever
                "looping link": f"{path} is a link that leads to no file (it dangles or loops), not a file of drawings",
                "dangling link": f"{path} is a link that leads to no file (it dangles or loops), not a file of drawings",
                "empty": f"{path}: no recognized drawings of 'circle'",
                "read error": f"{path}: cannot be read (Invalid argument)"}[kind]
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind.endswith("link"):
        path.symlink_to(path.name if kind == "looping link" else "gone.ndjson")
    elif os.path.isfile("/sys/class/net/lo/speed"):  # sysfs says 4096 bytes; a loopback has no speed: EINVAL, as a
        path.symlink_to("/sys/class/net/lo/speed")  # failing disk's EIO (/proc/self/mem's EIO is read no more: 0 bytes)
    else:
        pytest.skip("no /sys/class/net/lo/speed to fail as it is read")
    with pytest.raises(DataError) as error:
        data.prepare(["circle"], tmp_path, cache_dir=tmp_path / "cache")
    assert str(error.value) == expected


def test_files_without_read_permission_are_refused_in_one_line(tmp_path):
    """A class file, and a --classes @FILE list, that the user may not read: one line naming each. The suite runs
    as root in CI, and root reads any file, so this was skipped there and checked nowhere; the command now runs
    without the capabilities by which root overrides a file's permissions (setpriv, of util-linux)."""
    circle, listed = tmp_path / "circle.ndjson", tmp_path / "classes.txt"
    circle.write_bytes(b"{}\n")
    listed.write_text("circle\n")
    for f in (circle, listed):
        f.chmod(0)
    as_a_user = [] if os.geteuid() else ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    for flags, code, line in (
            (["--classes", "circle"], 1, f"sketchgen: error: {circle}: cannot be read (Permission denied)"),
            (["--classes", f"@{listed}"], 2, f"sketchgen prepare: error: argument --classes: @{listed}: cannot read class "
                                             "names (cannot be read (Permission denied)) (see sketchgen prepare --help)")):
        run = subprocess.run([*as_a_user, sys.executable, "-m", "sketchgen", "prepare", *flags, "--data-dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
        assert (run.returncode, run.stderr) == (code, line + "\n")


def test_a_file_that_is_not_ndjson_prints_a_screen_not_a_line_per_line(quickdraw, tmp_path):
    """A gzipped class file under the plain name: 20 bad lines shown, then counted, then one error."""
    (tmp_path / "circle.ndjson").write_bytes(gzip.compress((quickdraw / "simplified" / "circle.ndjson").read_bytes()))
    run = subprocess.run([sys.executable, "-m", "sketchgen", "prepare", "--classes", "circle", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    err = run.stderr.splitlines()
    path = tmp_path / "circle.ndjson"
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert len(err) == data.SHOWN_PER_FILE + 2, err
    assert all(re.fullmatch(rf"{re.escape(str(path))}:\d+: not (UTF-8 text: .*|JSON .*) \(skipped\)", e)
               for e in err[: data.SHOWN_PER_FILE])
    assert err[data.SHOWN_PER_FILE] == f"{path}: more than {data.SHOWN_PER_FILE} bad lines; the rest are counted, not shown"
    assert re.fullmatch(rf"sketchgen: error: {re.escape(str(path))}: no recognized drawings of 'circle' \(\d+ bad lines skipped\)", err[-1])


def test_a_file_of_proc_is_read_no_further_than_the_size_it_gives(tmp_path):
    """Found by an audit: /proc's files are regular files that say they hold 0 bytes and read on: /proc/self/pagemap
    (256 GiB) was read for 6 minutes, /proc/kmsg blocked for ever. A file is read no further than its size at opening.
    /proc/self/maps ends, so that the code before the fix fails here rather than hangs."""
    (tmp_path / "circle.ndjson").symlink_to("/proc/self/maps")
    problems = Problems()
    assert list(data.read_ndjson(tmp_path / "circle.ndjson", "circle", problems)) == [] and not problems.counts
    with pytest.raises(DataError, match=r"circle.ndjson: no recognized drawings of 'circle'$"):
        data.prepare(["circle"], tmp_path, cache_dir=tmp_path / "prepared")
    assert fileio.read_bytes("/proc/self/status", 1 << 20) == b""


def test_unknown_class_is_refused_with_close_names(quickdraw):
    with pytest.raises(DataError, match=r"unknown class 'eyee'\. Did you mean 'eye'.*sketchgen classes"):
        classfiles.check_classes(["circle", "eyee"])
    with pytest.raises(DataError, match=r"unknown class 'The Eifel Tower'\. Did you mean 'The Eiffel Tower'"):
        data.prepare(["The Eifel Tower"], quickdraw / "simplified")


def test_a_class_name_whose_files_no_file_system_takes_is_refused_in_one_line(quickdraw, tmp_path, capsys,
                                                                              monkeypatch):
    """Found by an audit: 100 characters were allowed, but 70 emoji are 280 bytes, and looking for
    <name>.ndjson (prepare, train, the download cache) raised OSError [Errno 36] File name too long."""
    monkeypatch.setenv("SKETCHGEN_CACHE", str(tmp_path / "downloads"))
    emoji, cjk, accents = "\U0001f600" * 70, "\u65e5" * 86, "\u00e9" * 80  # "é" composed: 240 bytes decomposed
    for name, length in ((emoji, 301), (cjk, 279), (accents, 261)):
        for where in (quickdraw / "simplified", None):  # --data-dir, and the download cache
            with pytest.raises(DataError) as refused:
                classfiles.check_classes([name], where)
            assert str(refused.value) == (f"{name[:40]!r} is not a class name (its file names would run to {length} "
                                          "bytes, more than the 255 a file system takes)")
    assert classfiles.name_problem("\u65e5" * 78) is None  # 234 bytes: a download's temporary file just fits
    for command in (["prepare", "--data-dir", str(tmp_path)], ["download"]):
        with pytest.raises(SystemExit):
            cli.main([*command, "--classes" if command[0] == "prepare" else "--", emoji])
        assert "is not a class name (its file names would run to 301 bytes" in capsys.readouterr().err


# --- preparation -----------------------------------------------------------------------------


def test_prepare_keeps_every_recognized_drawing_and_only_those(quickdraw, tmp_path):
    path = quickdraw / "simplified" / "circle.ndjson"
    p = data.prepare(["circle"], quickdraw / "simplified", cache_dir=tmp_path)
    assert p.classes == ["circle"] and p.parts[0].points.dtype == np.int16
    assert prepared_fingerprints(p) == recognized_fingerprints(path)
    assert len(p) < len(lines(path))


def test_max_per_class_caps_each_class(small_data, quickdraw):
    assert small_data.classes == SMALL_CLASSES
    for ci, name in enumerate(SMALL_CLASSES):
        idx = np.flatnonzero(small_data.labels == ci)
        assert len(idx) == SMALL_CAP
        got = prepared_fingerprints(small_data, idx)
        available = set(recognized_fingerprints(quickdraw / "simplified" / f"{name}.ndjson"))
        assert set(got) <= available and len(set(got)) == SMALL_CAP


def test_split_is_70_15_15_per_class_without_overlap(small_data):
    parts = [small_data.indices(s) for s in data.SPLITS]
    assert sorted(np.concatenate(parts)) == list(range(len(small_data)))
    for ci in range(len(SMALL_CLASSES)):
        assert [int((small_data.labels[idx] == ci).sum()) for idx in parts] == [84, 18, 18]
    contents = [set(prepared_fingerprints(small_data, idx)) for idx in parts]
    assert not (contents[0] & contents[1] or contents[0] & contents[2] or contents[1] & contents[2])


def test_split_is_deterministic_per_seed(small_data, quickdraw, tmp_path):
    """Built afresh in other cache folders: the same seed gives the same arrays, another seed others."""
    again = data.prepare(SMALL_CLASSES, quickdraw / "simplified", SMALL_CAP, seed=0, cache_dir=tmp_path / "a")
    assert_same_prepared(again, small_data)
    other = data.prepare(SMALL_CLASSES, quickdraw / "simplified", SMALL_CAP, seed=1, cache_dir=tmp_path / "b")
    test_0 = prepared_fingerprints(small_data, small_data.indices("test"))
    test_1 = prepared_fingerprints(other, other.indices("test"))
    assert len(test_0) == len(test_1) and test_0 != test_1


def test_second_prepare_reads_the_cache_not_the_ndjson(quickdraw, tmp_path):
    """After the first run the source is replaced by garbage of the same size and time: nothing notices."""
    source = tmp_path / "data" / "circle.ndjson"
    source.parent.mkdir()
    shutil.copy2(quickdraw / "simplified" / "circle.ndjson", source)
    first = data.prepare(["circle"], source.parent, cache_dir=tmp_path / "cache")
    st = source.stat()
    source.write_bytes(b"x" * st.st_size)
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    problems = Problems(quiet=True)
    second = data.prepare(["circle"], source.parent, cache_dir=tmp_path / "cache", problems=problems)
    assert not problems.counts
    assert_same_prepared(second, first)


@pytest.mark.parametrize("damage", ["truncate", "flip bytes"])
def test_corrupted_cache_is_rebuilt(quickdraw, tmp_path, capsys, damage):
    first = data.prepare(["circle"], quickdraw / "simplified", cache_dir=tmp_path)
    points = first.parts[0].folder / "points.npy"
    expected = np.array(first.parts[0].points)  # a copy: damage in place changes what is mapped
    del first
    blob = bytearray(points.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:  # inside the stored points: the file still opens, only a digest can tell
        middle = len(blob) // 2
        blob[middle : middle + 64] = bytes(b ^ 0xFF for b in blob[middle : middle + 64])
    points.write_bytes(bytes(blob))
    second = data.prepare(["circle"], quickdraw / "simplified", cache_dir=tmp_path)
    assert capsys.readouterr().err == f"{points.parent}: prepared cache fails its checksum (points.npy" + (
        " has another size" if damage == "truncate" else "") + "); rebuilding\n"
    np.testing.assert_array_equal(second.parts[0].points, expected)
    third = data.prepare(["circle"], quickdraw / "simplified", cache_dir=tmp_path)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(third.parts[0].points, expected)


def test_a_rebuild_removes_what_a_process_killed_while_writing_the_cache_left(quickdraw, tmp_path):
    """An audit's find: `kill -9` while a class's cache was written left its temporary (29 MB for a big class) for
    good. Here a process is killed inside the very write the cache uses, as a killed prepare would be."""
    folder = data.prepare(["circle"], quickdraw / "simplified", cache_dir=tmp_path).parts[0].folder
    code = ("import os, signal, sys\nfrom pathlib import Path\nfrom sketchgen.fileio import atomic_write\n"
            "folder = Path(sys.argv[1])\n(folder / 'meta.json').unlink()\n"
            "with atomic_write(folder / 'points.npy', own=True) as f:\n"
            "    f.write(bytes(1 << 20))\n    f.flush()\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, timeout=60)
    assert done.returncode == -9
    (left,) = fileio.temporaries(folder, ["points.npy"])
    (folder / ".points.npy.mine.txt").write_bytes(b"not ours")
    data.prepare(["circle"], quickdraw / "simplified", cache_dir=tmp_path)
    assert not left.exists() and (folder / ".points.npy.mine.txt").exists()


def test_damage_between_the_sampled_blocks_is_found_by_verify(quickdraw, tmp_path, monkeypatch, capsys):
    """Opening checks sizes and 17 sampled blocks; bytes flipped between two of them pass it, and
    `sketchgen prepare --verify`, which hashes every byte, finds them and rebuilds the class."""
    monkeypatch.setenv("SKETCHGEN_PREPARED", str(tmp_path))
    flags = ["--classes", "eye", "--data-dir", str(quickdraw / "simplified"), "--max-per-class", "5000"]
    first = data.prepare(["eye"], quickdraw / "simplified", 5000)
    points = first.parts[0].folder / "points.npy"
    expected = np.array(first.parts[0].points)
    del first
    blocks = cache.sampled_blocks(points.stat().st_size)
    at = blocks[1] + cache.BLOCK + 100
    assert at + 64 < blocks[2]
    with open(points, "r+b") as f:
        f.seek(at)
        f.write(bytes(b ^ 0xFF for b in f.read(64)))
    capsys.readouterr()
    assert cli.main(["prepare", *flags]) == 0
    assert capsys.readouterr().err == ""  # not seen by the cheap check
    assert cli.main(["prepare", *flags, "--verify"]) == 0
    assert capsys.readouterr().err == f"{points.parent}: prepared cache fails its checksum (points.npy); rebuilding\n"
    np.testing.assert_array_equal(data.prepare(["eye"], quickdraw / "simplified", 5000).parts[0].points, expected)


def test_a_cache_knows_its_source_s_sha256_from_before_and_verify_hashes_the_source_again(quickdraw, tmp_path, capsys):
    """A cache written before meta.json recorded its source's SHA-256 is given it in place (one read of the file,
    not a parse: a full download's 345 classes would take hours again); a source changed in place under the same
    size and mtime is served as it was prepared, and `--verify`, which hashes it again, rebuilds the class."""
    (tmp_path / "data").mkdir()
    source = tmp_path / "data" / "circle.ndjson"
    shutil.copy(quickdraw / "simplified" / "circle.ndjson", source)
    first = data.prepare(["circle"], tmp_path / "data", cache_dir=tmp_path / "cache")
    folder, digest = first.parts[0].folder, hashlib.sha256(source.read_bytes()).hexdigest()
    assert first.settings["digests"] == {"circle": digest}
    arrays = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.npy")}
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "source_sha256"}))
    left = folder / ".meta.json.k1ll3d.tmp"  # what a process killed while it gave the digest left: a whole cache is
    left.write_bytes(b"{")  # never rebuilt, so the rebuild's sweep never took it (an audit's find)
    capsys.readouterr()
    again = data.prepare(["circle"], tmp_path / "data", cache_dir=tmp_path / "cache")
    assert capsys.readouterr().err == "" and again.settings["digests"] == {"circle": digest}
    assert json.loads((folder / "meta.json").read_text())["source_sha256"] == digest and not left.exists()
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.npy")} == arrays  # not rebuilt

    before = source.stat()
    text = source.read_text()
    at = text.index('"countrycode":"') + len('"countrycode":"')
    source.write_text(text[:at] + ("ZZ" if text[at:at + 2] != "ZZ" else "YY") + text[at + 2:])  # as many bytes
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size
    assert data.prepare(["circle"], tmp_path / "data", cache_dir=tmp_path / "cache").settings["digests"] == \
        {"circle": digest}  # the cache's word: the file's size and time are what it was made from
    capsys.readouterr()
    verified = data.prepare(["circle"], tmp_path / "data", cache_dir=tmp_path / "cache", verify=True)
    assert capsys.readouterr().err == f"{folder}: its source {source} has other bytes than it was prepared from; " \
                                      "rebuilding\n"
    assert verified.settings["digests"] == {"circle": hashlib.sha256(source.read_bytes()).hexdigest()} != \
        {"circle": digest}


def test_prepare_streams_without_holding_the_json(quickdraw, tmp_path):
    """Reading all 4,923 eye lines while keeping 200: the peak of Python allocations (NumPy's
    included) stays far below the 2.6 MB of JSON read. Measured: 0.2 MB (eye and mouth, 4.6 MB: 0.4 MB)."""
    size = (quickdraw / "simplified" / "eye.ndjson").stat().st_size
    data.prepare(["circle"], quickdraw / "simplified", max_per_class=10, cache_dir=tmp_path / "warm")  # imports
    tracemalloc.start()
    try:
        p = data.prepare(["eye"], quickdraw / "simplified", max_per_class=200, cache_dir=tmp_path / "eye")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(p) == 200
    assert peak < size / 5


# --- one cache per class, mapped by every process ------------------------------------------------

CLASSES_4 = ["circle", "eye", "bear", "zigzag"]


def test_a_class_cache_serves_any_class_list(quickdraw, tmp_path, capsys):
    """A class's randomness comes from its name, so its cache (and its drawings and split) are the same in
    every list that holds it; a list that adds a class prepares that class only."""
    folder = quickdraw / "simplified"
    pair = data.prepare(["circle", "eye"], folder, 100, cache_dir=tmp_path)
    built = {p.folder: (p.folder / "meta.json").stat().st_mtime_ns for p in pair.parts}
    eye = data.prepare(["eye"], folder, 100, cache_dir=tmp_path)
    more = data.prepare(["bear", "circle"], folder, 100, cache_dir=tmp_path)
    assert capsys.readouterr().err == ""
    assert eye.parts[0].folder == pair.parts[1].folder and more.parts[1].folder == pair.parts[0].folder
    assert all((f / "meta.json").stat().st_mtime_ns == t for f, t in built.items())  # read, never rebuilt
    assert len(list(tmp_path.glob("*/meta.json"))) == 3
    np.testing.assert_array_equal(more.labels[more.starts[1]:], 1)
    for a, b in ((pair.parts[0], more.parts[1]), (pair.parts[1], eye.parts[0])):
        np.testing.assert_array_equal(a.split, b.split)
        np.testing.assert_array_equal(a.points, b.points)


POOLED = """
import sys
from sketchgen import classfiles, data
assert data._pool_context().get_start_method() == "fork"  # a fresh process has no other thread
data.prepare(sys.argv[1:5], sys.argv[5], 300, cache_dir=sys.argv[6], workers=2)
"""


@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_parallel_preparation_equals_one_process(quickdraw, tmp_path, start):
    """Workers fork from a process with no other thread (a fresh one here), else start from a forkserver
    (this one, with a thread started to make it so): either way, the arrays one process makes."""
    folder = quickdraw / "simplified"
    alone = data.prepare(CLASSES_4, folder, 300, cache_dir=tmp_path / "one", workers=1)
    if start == "fork":
        run = subprocess.run([sys.executable, "-c", POOLED, *CLASSES_4, str(folder), str(tmp_path / "two")],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and run.stderr == "", run.stderr
    else:
        other_thread = threading.Event()
        threading.Thread(target=other_thread.wait, daemon=True).start()
        try:
            assert data._pool_context().get_start_method() == "forkserver"
            data.prepare(CLASSES_4, folder, 300, cache_dir=tmp_path / "two", workers=2)
        finally:
            other_thread.set()
    assert_same_prepared(data.prepare(CLASSES_4, folder, 300, cache_dir=tmp_path / "two", workers=1), alone)


# `prepare --workers 2 --verify` on a machine of 2 cores (this one may give a process 1, and then starts no pool),
# saying what the command line says of an error or Ctrl-C (without importing torch, as the command line does).
ON_TWO_CORES = """
import sys
from sketchgen import classfiles, data
data.cores = lambda: 2
try:
    data.prepare(sys.argv[1:3], sys.argv[3], cache_dir=sys.argv[4], workers=2, verify=True)
except classfiles.DataError as e:
    sys.exit(f"error: {e}")
except KeyboardInterrupt:
    sys.exit("interrupted")
"""


@pytest.mark.parametrize("fault", ["kill -9 of a worker", "Ctrl-C"])
def test_a_worker_killed_or_interrupted_ends_prepare_in_one_line(quickdraw, tmp_path, fault):
    """An audit's finds: a pool worker killed (as the kernel kills one out of memory) ended `prepare` in a
    `BrokenProcessPool` traceback, and Ctrl-C printed the KeyboardInterrupt traceback of each worker waiting for a
    class before `sketchgen: interrupted`. The fault strikes when one worker waits at bear's lock (taken here), the
    other for a class (apple's done), as the kernel says (/proc/PID/wchan)."""
    classes = ["apple", "bear"]
    bear = data.prepare(classes, quickdraw / "simplified", cache_dir=tmp_path).parts[1].folder
    with fileio.locked(bear):
        run = subprocess.Popen([sys.executable, "-c", ON_TWO_CORES, *classes, quickdraw / "simplified", tmp_path],
                               start_new_session=True, stderr=subprocess.PIPE, text=True,  # Ctrl-C as a terminal's
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # (xdist ignores it)
        children, waits = Path(f"/proc/{run.pid}/task/{run.pid}/children"), {}
        deadline = time.monotonic() + 60
        while not (len(waits) == 2 and any("lock" in w for w in waits.values())
                   and any("pipe" in w for w in waits.values())):
            assert time.monotonic() < deadline, waits
            time.sleep(0.05)
            waits = {int(pid): Path(f"/proc/{pid}/wchan").read_text() for pid in children.read_text().split()}
        if fault == "Ctrl-C":
            os.killpg(run.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
        else:
            os.kill(min(waits), signal.SIGKILL)
        err = run.communicate(timeout=60)[1]
    waiting = f"'bear': another sketchgen process or thread is preparing it (it holds {bear}.lock): waiting for it to finish\n"
    assert (run.returncode, err) == (1, waiting + ("interrupted\n" if fault == "Ctrl-C" else "error: a process preparing "
                                     "the classes was killed (out of memory? or a script that runs sketchgen without "
                                     "`if __name__ == \"__main__\":`, which each such process runs again): run again, "
                                     "or with --workers 1\n"))


def test_every_line_of_a_prepare_s_notes_is_written_whole(quickdraw, tmp_path):
    """Found as a suite that failed now and then: the pool's workers share one stderr, where Python, unbuffered (as
    here, and in many containers), wrote ``print``'s text and its newline apart, so two workers' notes came out as
    one line and an empty one. Read here from a socket that keeps each write apart (SOCK_SEQPACKET): every write of a
    real ``prepare --workers 2`` that skips bad lines in four files, waits for a class and sums up is one whole line
    (on one core, with a note that it has one, and no pool)."""
    good = (quickdraw / "simplified" / "circle.ndjson").read_text().splitlines()[0]
    for name in ("alpha", "beta", "gamma", "delta"):
        (tmp_path / f"{name}.ndjson").write_text(f"{{not json\n{good.replace('circle', name)}\n" * 25)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with mine, theirs:
        folder = data.prepare(["delta"], tmp_path, cache_dir=tmp_path / "cache", problems=Problems(quiet=True))
        folder = folder.parts[0].folder
        shutil.rmtree(folder)
        with fileio.locked(folder):  # so that a worker waits for it, and says so
            run = subprocess.Popen([sys.executable, "-m", "sketchgen", "prepare", "--classes", "alpha", "beta", "gamma",
                                    "delta", "--data-dir", tmp_path, "--workers", "2"], stdout=subprocess.DEVNULL,
                                   stderr=theirs, env={**os.environ, "SKETCHGEN_PREPARED": str(tmp_path / "cache"),
                                                       "PYTHONUNBUFFERED": "1"})
            writes, deadline = [], time.monotonic() + 120
            while not any(b"waiting for it to finish" in w for w in writes):
                assert time.monotonic() < deadline and run.poll() is None, writes
                if select.select([mine], [], [], 0.1)[0]:
                    writes.append(mine.recv(1 << 16))
        assert run.wait(timeout=120) == 0
        theirs.close()
        while write := mine.recv(1 << 16):
            writes.append(write)
    # 20 bad lines and "more than 20" a file, the wait, the sum; and where there is one core, a note that there is
    assert len(writes) == 4 * 21 + 2 + (data.cores() < 2)
    assert all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes), writes


def test_a_prepare_waiting_for_another_says_so(quickdraw, tmp_path):
    """A class another process is preparing (or a stopped one holds) was waited for in silence, for ever if need be
    (an audit's find); now the wait is said first, and the class prepared once the lock is free."""
    circle = data.prepare(["circle"], quickdraw / "simplified", cache_dir=tmp_path).parts[0].folder
    code = "import sys; from sketchgen import data; data.prepare(['circle'], sys.argv[1], cache_dir=sys.argv[2])"
    with fileio.locked(circle):
        run = subprocess.Popen([sys.executable, "-c", code, quickdraw / "simplified", tmp_path], stderr=subprocess.PIPE,
                               text=True)
        said = select.select([run.stderr], [], [], 60)[0] and run.stderr.readline()
        assert run.poll() is None  # still waiting
    assert said == f"'circle': another sketchgen process or thread is preparing it (it holds {circle}.lock): waiting for it to finish\n"
    assert run.wait(timeout=60) == 0 and run.stderr.read() == ""


def test_a_failing_class_among_many_is_one_error(quickdraw, tmp_path):
    for name in CLASSES_4:
        shutil.copy(quickdraw / "simplified" / f"{name}.ndjson", tmp_path)
    (tmp_path / "bear.ndjson").write_bytes(b"")
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path / 'bear.ndjson'))}: no recognized drawings of 'bear'$"):
        data.prepare(CLASSES_4, tmp_path, cache_dir=tmp_path / "cache", workers=2)
    data.prepare(["circle", "eye"], tmp_path, cache_dir=tmp_path / "cache")  # the others were cached whole


def test_gather_lengths_labels_and_split_agree_with_stroke3(quickdraw, tmp_path):
    p = data.prepare(CLASSES_4, quickdraw / "simplified", 300, cache_dir=tmp_path)
    idx = np.random.default_rng(0).integers(0, len(p), 500)  # every class, repeats, any order
    gathered = p.gather(idx)
    assert len(gathered) == len(idx) and p.gather([]) == []
    for i, d in zip(idx, gathered):
        np.testing.assert_array_equal(d, p.stroke3(i))
        assert np.shares_memory(d, p.parts[p.labels[i]].points) and not d.flags.writeable  # a view of the cache
    lengths = p.lengths()
    assert lengths is p.lengths() and lengths.dtype == np.int32
    assert lengths.tolist() == [len(p.stroke3(i)) for i in range(len(p))]
    assert p.labels.dtype == np.int64 and p.split.dtype == np.int8 and len(p.labels) == len(p.split) == len(p)
    assert [p.classes[c] for c in p.labels[p.starts[:-1]]] == CLASSES_4
    # Each source is the file itself, whatever links led to it (../shared may be one): its real path, and its bytes'
    # SHA-256.
    sources = {c: (quickdraw / "simplified" / f"{c}.ndjson").resolve() for c in CLASSES_4}
    assert p.settings == {"data_dir": str(quickdraw / "simplified"), "max_per_class": 300, "seed": 0,
                          "sources": {c: str(path) for c, path in sources.items()},
                          "digests": {c: hashlib.sha256(path.read_bytes()).hexdigest() for c, path in sources.items()}}
    assert json.loads(json.dumps(p.settings)) == p.settings  # plain values: a checkpoint can hold them


SHARED_PAGES = """
import sys
from sketchgen import classfiles, data
p = data.prepare(["eye"], sys.argv[1], 5000, cache_dir=sys.argv[2])
int(p.parts[0].points.sum())  # touch every page
rollup = {}
lines = open("/proc/self/smaps").read().splitlines()
for k, line in enumerate(lines):
    if line.endswith("points.npy"):
        fields = dict(l.split(":") for l in lines[k + 1 : k + 20] if l.split(":")[0] in ("Rss", "Shared_Clean", "Private_Clean", "Private_Dirty"))
        print({f: int(v.split()[0]) for f, v in fields.items()})
"""


def test_a_class_file_written_while_it_is_prepared_is_refused_never_cached_with_another_version_s_digest(
        quickdraw, tmp_path):
    """The drawings are parsed in one read and the SHA-256 a run records is taken in a second: a file written (or
    replaced) in between would have the run record the digest of drawings it never saw. A file that changes while
    it is read is refused in one line and nothing is cached; once it stops changing it is prepared, and its cache
    records the digest of the bytes it now holds."""
    (tmp_path / "data").mkdir()
    source = tmp_path / "data" / "eye.ndjson"
    shutil.copy(quickdraw / "simplified" / "eye.ndjson", source)  # ~5,000 drawings: a read of about a second
    line = source.read_bytes().splitlines(keepends=True)[0]
    stop = threading.Event()

    def keep_writing():
        while not stop.wait(0.002):
            with open(source, "ab") as f:
                f.write(line)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        with pytest.raises(DataError, match=rf"^{re.escape(str(source))}: changed while it was read \(written or "
                                            r"replaced meanwhile\); try again once it is whole$"):
            data.prepare(["eye"], tmp_path / "data", cache_dir=tmp_path / "cache")
    finally:
        stop.set()
        writer.join()
    assert not list((tmp_path / "cache").glob("*/meta.json"))
    prepared = data.prepare(["eye"], tmp_path / "data", cache_dir=tmp_path / "cache")
    assert prepared.settings["digests"] == {"eye": hashlib.sha256(source.read_bytes()).hexdigest()}


def test_unchanged_tells_a_file_written_or_replaced_from_one_left_alone(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"drawings")
    with fileio.unchanged(path):
        path.read_bytes()
    with pytest.raises(fileio.FileChanged, match="changed while it was read"), fileio.unchanged(path):
        path.write_bytes(b"drawings, and one more")
    other = tmp_path / "g"
    other.write_bytes(path.read_bytes())
    os.utime(other, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))  # the same bytes and time: another file
    with pytest.raises(fileio.FileChanged), fileio.unchanged(path):
        os.replace(other, path)
    with pytest.raises(fileio.FileChanged), fileio.unchanged(path):  # in place, as many bytes, the same mtime
        was, text = path.stat(), path.read_bytes()
        path.write_bytes(text.swapcase())
        os.utime(path, ns=(was.st_atime_ns, was.st_mtime_ns))
        assert path.stat().st_size == was.st_size
    with pytest.raises(fileio.FileChanged), fileio.unchanged(path):
        path.unlink()
    path.write_bytes(b"drawings")
    with pytest.raises(fileio.FileChanged), fileio.unchanged(path):  # the change, not what it made the block do
        path.write_bytes(b"draw")
        raise ValueError("a drawing cut short")
    with pytest.raises(ValueError, match="a drawing cut short"), fileio.unchanged(path):
        raise ValueError("a drawing cut short")


def test_two_processes_share_one_copy_of_the_points(quickdraw, tmp_path):
    """This process maps eye's points and reads them all; a second process does the same, and the kernel
    counts every page of its mapping as shared: the machine holds one copy, however many processes read it."""
    p = data.prepare(["eye"], quickdraw / "simplified", 5000, cache_dir=tmp_path)
    assert int(p.parts[0].points.sum()) != 0
    run = subprocess.run([sys.executable, "-c", SHARED_PAGES, str(quickdraw / "simplified"), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    (mapping,) = [eval(line) for line in run.stdout.splitlines()]
    assert mapping["Rss"] >= p.parts[0].points.nbytes // 1024 - 4
    assert mapping["Shared_Clean"] == mapping["Rss"] and mapping["Private_Dirty"] == 0, mapping


def test_old_single_file_caches_are_ignored_with_a_note(quickdraw, tmp_path, capsys):
    old = tmp_path / "prepared-0123456789abcdef.npz"
    np.savez(old, meta=np.array(json.dumps({"version": 1, "classes": ["circle"]})), points=np.zeros((5, 3), np.int16))
    data.prepare(["circle"], quickdraw / "simplified", cache_dir=tmp_path)
    assert capsys.readouterr().err == (
        f"{tmp_path}: 1 prepared cache of an older sketchgen (prepared-*.npz, 0 MiB), no longer read: each class is "
        "prepared again into a cache of its own (delete the old to free the space)\n")
    data.prepare(["circle"], quickdraw / "simplified", cache_dir=tmp_path)
    assert capsys.readouterr().err == ""  # said once, when classes were prepared again
    assert old.exists()


def test_links_where_old_caches_lie_are_none_and_stop_nothing(quickdraw, tmp_path, capsys):
    """An audit's find: a link named as an old cache that leads nowhere, or to itself, stopped every prepare of a new
    class (`[Errno 2] No such file or directory`, `[Errno 40] Too many levels of symbolic links`)."""
    (tmp_path / "prepared-gone.npz").symlink_to(tmp_path / "nowhere")
    (tmp_path / "prepared-loop.npz").symlink_to(tmp_path / "prepared-loop.npz")
    assert len(data.prepare(["apple"], quickdraw / "simplified", cache_dir=tmp_path)) > 0
    assert capsys.readouterr().err == ""


# What torchrun sets for the processes of one machine of a 2-process run, but each one's ranks.
TORCHRUN = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


def rank(n: int) -> dict[str, str]:
    """The environment of torchrun's process ``n`` of a 2-process run on one machine."""
    return {**os.environ, **TORCHRUN, "RANK": str(n), "LOCAL_RANK": str(n)}


def test_under_torchrun_only_local_rank_0_prepares(quickdraw, tmp_path):
    """Local rank 1 starts first and waits, building nothing; rank 0 prepares; both then report the same set."""
    command = [sys.executable, "-m", "sketchgen", "prepare", "--classes", *CLASSES_4, "--data-dir",
               str(quickdraw / "simplified"), "--max-per-class", "300"]
    prepared = {"SKETCHGEN_PREPARED": str(tmp_path)}
    follower = subprocess.Popen(command, env={**rank(1), **prepared}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stderr.readline() == "local rank 1: waiting for local rank 0 to prepare 4 classes\n"
        time.sleep(1)
        assert follower.poll() is None and not list(tmp_path.glob("*/meta.json"))
        leader = subprocess.run(command, env={**rank(0), **prepared}, capture_output=True, text=True, timeout=120)
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert leader.returncode == 0 and follower.returncode == 0, (leader.stderr, err)
    assert out == leader.stdout and " drawings of 4 classes: " in out, out
    assert len(list(tmp_path.glob("*/meta.json"))) == 4


WAITING = """
import sys
from sketchgen import classfiles, data
data.WAIT_S = 1
try:
    data.prepare(["apple", "eye"], sys.argv[1], 300, cache_dir=sys.argv[2])
except classfiles.DataError as e:
    sys.exit(str(e))
"""


def test_a_local_rank_waits_for_local_rank_0_for_a_bounded_time(quickdraw, tmp_path):
    """No local rank 0 preparing what it waits for: after WAIT_S without a class, one line saying what it waited
    for, and where. A WORLD_SIZE without torchrun's other variables waits for nothing: refused at once."""
    run = subprocess.run([sys.executable, "-c", WAITING, str(quickdraw / "simplified"), str(tmp_path)], env=rank(1),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.splitlines() == [
        "local rank 1: waiting for local rank 0 to prepare 2 classes",
        (f"local rank 1: waited 1 s for local rank 0 to prepare 'apple' and 1 more classes in {tmp_path}, in vain: "
         "run local rank 0 with the same classes, data and SKETCHGEN_PREPARED")], run.stderr
    assert not list(tmp_path.glob("*/meta.json"))

    alone = {k: v for k, v in os.environ.items() if k not in (*TORCHRUN, "RANK")}
    run = subprocess.run([sys.executable, "-m", "sketchgen", "prepare", "--classes", "apple", "--data-dir",
                          str(quickdraw / "simplified")], env={**alone, "WORLD_SIZE": "2", "LOCAL_RANK": "1"},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.splitlines() == [
        ("sketchgen: error: WORLD_SIZE is 2 but RANK is not set: start sketchgen with torchrun, which sets it, or "
         "unset WORLD_SIZE, RANK and LOCAL_RANK to run one process")]


def test_the_pool_never_exceeds_the_cores(quickdraw, tmp_path):
    """--workers counts processes, each holding a class's drawings: more than the cores this process may use would
    only queue for them (1,000 forked 345 processes on 2 cores, 3.8 GB). Capped, with a note; the same arrays. The
    command runs on at most 2 of this machine's cores (its affinity), as on CI."""
    cpus = set(sorted(os.sched_getaffinity(0))[:2])
    folder = quickdraw / "simplified"
    run = subprocess.run([sys.executable, "-m", "sketchgen", "prepare", "--classes", *CLASSES_4, "--data-dir",
                          str(folder), "--max-per-class", "300", "--workers", "1000"],
                         env={**os.environ, "SKETCHGEN_PREPARED": str(tmp_path / "cli"), "OMP_NUM_THREADS": "1"},
                         preexec_fn=lambda: os.sched_setaffinity(0, cpus), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (f"workers 1000: this process may use {len(cpus)} cores, so {len(cpus)} processes prepare the 4 classes\n"
            in run.stderr), run.stderr
    assert_same_prepared(data.prepare(CLASSES_4, folder, 300, cache_dir=tmp_path / "cli"),
                         data.prepare(CLASSES_4, folder, 300, cache_dir=tmp_path / "one", workers=1))


# --- where the drawings come from ----------------------------------------------------------------


def class_file(folder: Path, name: str, quickdraw: Path, n: int = 30) -> Path:
    """A folder holding the first ``n`` real drawings of a class, as the download cache or a data dir would."""
    folder.mkdir(parents=True, exist_ok=True)
    head = (quickdraw / "simplified" / f"{name}.ndjson").read_text().splitlines(keepends=True)[:n]
    (folder / f"{name}.ndjson").write_text("".join(head))
    return folder / f"{name}.ndjson"


def test_resolution_order(quickdraw, tmp_path, monkeypatch):
    shared = quickdraw / "simplified" / "circle.ndjson"
    monkeypatch.setenv("SKETCHGEN_CACHE", str(tmp_path / "cache"))
    assert classfiles.find_class_file("circle", fetch=False).path == shared  # the download cache is empty
    assert classfiles.find_class_file("circle", quickdraw).path == shared  # a data dir with a simplified/ folder

    cached = class_file(tmp_path / "cache", "circle", quickdraw)
    assert classfiles.find_class_file("circle").path == cached  # the download cache before ../shared
    assert classfiles.find_class_file("eye").path == quickdraw / "simplified" / "eye.ndjson"  # per class

    from_env = class_file(tmp_path / "env", "circle", quickdraw)
    monkeypatch.setenv("SKETCHGEN_DATA", str(tmp_path / "env"))
    assert classfiles.find_class_file("circle").path == from_env  # $SKETCHGEN_DATA before the cache

    flag = class_file(tmp_path / "flag", "circle", quickdraw)
    assert classfiles.find_class_file("circle", tmp_path / "flag").path == flag  # --data-dir before everything

    with pytest.raises(DataError, match=f"no eye.ndjson .*in {tmp_path / 'flag'}"):
        classfiles.find_class_file("eye", tmp_path / "flag")  # an explicit folder is the only place looked in


SEARCH = """
import json, sys
from sketchgen import classfiles, data
try:
    print(json.dumps({"module": data.__file__, "path": str(classfiles.find_class_file(sys.argv[1]).path)}))
except classfiles.DataError as e:
    print(json.dumps({"module": data.__file__, "error": str(e)}))
"""


@pytest.fixture()
def elsewhere(tmp_path):
    """The package installed where no ../shared/quickdraw is near it or the working directory."""
    site = tmp_path / "site" / "lib" / "python"
    shutil.copytree(Path(data.__file__).parent, site / "sketchgen", ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    work = tmp_path / "work" / "here"
    work.mkdir(parents=True)

    def find(name: str, base_url: str) -> dict:
        env = {**os.environ, "PYTHONPATH": str(site), "SKETCHGEN_CACHE": str(tmp_path / "cache"),
               "SKETCHGEN_BASE_URL": base_url}
        done = subprocess.run([sys.executable, "-c", SEARCH, name], cwd=work, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["module"].startswith(str(site))
        return result

    return find


@pytest.fixture()
def bucket(quickdraw):
    """A plain HTTP server on 127.0.0.1 serving ../shared/quickdraw/simplified as the QuickDraw bucket."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(quickdraw / "simplified")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_without_local_data_a_slice_is_downloaded_else_a_clear_error(elsewhere, bucket, quickdraw, tmp_path):
    got = elsewhere("The Eiffel Tower", bucket)
    slice_path = Path(got["path"])
    assert slice_path == tmp_path / "cache" / "slices" / "The Eiffel Tower.ndjson"
    assert slice_path.read_bytes() == (quickdraw / "simplified" / "The Eiffel Tower.ndjson").read_bytes()

    closed = "http://127.0.0.1:9/"  # the discard port: nothing listens
    assert elsewhere("The Eiffel Tower", closed) == got  # the slice is found again, offline
    error = elsewhere("circle", closed)["error"]
    assert error.startswith("no drawings for 'circle': none local and the download failed")
    assert "sketchgen download 'circle'" in error and "--data-dir" in error and "\n" not in error
