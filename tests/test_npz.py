"""Sketch-RNN's .npz datasets: written by `sketchgen convert`, read back exactly, trained on, never unpickled blindly.

The files are built from the real drawings in ../shared/quickdraw. Files as old NumPy wrote them
(Sketch-RNN's own were written by NumPy 1.x under Python 2) are assembled opcode by opcode, since
no such NumPy runs here.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sketchgen import npz
from sketchgen.classfiles import DataError, find_class_file
from sketchgen.cli import main
from sketchgen.data import SPLITS, prepare
from sketchgen.strokes import MAX_POINTS

CLASSES = ["circle", "zigzag"]
CAP = 60


@pytest.fixture(scope="module")
def converted(quickdraw, tmp_path_factory):
    """`sketchgen convert --to npz` of CLASSES, and the prepared data it came from."""
    out = tmp_path_factory.mktemp("npz")
    assert main(["convert", "--to", "npz", "--classes", *CLASSES, "--data-dir", str(quickdraw / "simplified"),
                 "--max-per-class", str(CAP), "--seed", "0", "--out", str(out)]) == 0
    return out, prepare(CLASSES, quickdraw / "simplified", max_per_class=CAP, seed=0)


def class_split(data, label: int, split: str) -> list[np.ndarray]:
    idx = data.indices(split)
    return [data.stroke3(i) for i in idx[data.labels[idx] == label]]


def test_convert_writes_sketchrnn_files_that_read_back_exactly(converted):
    out, data = converted
    assert sorted(p.name for p in out.iterdir()) == ["circle.npz", "zigzag.npz"]
    for label, name in enumerate(CLASSES):
        # What Sketch-RNN's own loader gets: object arrays of int16 (n, 3) drawings.
        with np.load(out / f"{name}.npz", encoding="latin1", allow_pickle=True) as z:
            assert sorted(z.files) == sorted([*SPLITS, npz.WRITTEN_BY])  # and the mark of convert's own files
            assert str(z[npz.WRITTEN_BY]) == "sketchgen"
            assert z["train"].dtype == object and z["train"][0].dtype == np.int16 and z["train"][0].shape[1] == 3
        read = npz.read_npz(out / f"{name}.npz")
        for split in SPLITS:
            expected = class_split(data, label, split)
            assert len(read[split]) == len(expected) > 0
            assert all(np.array_equal(a, b) and a.dtype == np.int16 for a, b in zip(read[split], expected, strict=True))


def test_npz_files_keep_their_split_and_train(converted, tmp_path):
    out, data = converted
    again = prepare(CLASSES, out, max_per_class=CAP, seed=5)  # another seed: nothing is re-split or reshuffled
    for label in range(len(CLASSES)):
        for split in SPLITS:
            pairs = zip(class_split(again, label, split), class_split(data, label, split), strict=True)
            assert all(np.array_equal(a, b) for a, b in pairs)
    assert main(["train", "--model", "mdn", "--classes", *CLASSES, "--data-dir", str(out), "--epochs", "1",
                 "--hidden", "16", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "best.pt").is_file()


@pytest.mark.parametrize("cap, shares", [(30, (21, 5, 4)), (10, (7, 2, 1)), (4, (3, 1, 0)), (1, (1, 0, 0))])
def test_the_cap_takes_each_splits_share(converted, tmp_path, cap, shares):
    """Each split keeps its share of the cap, by largest remainder: an audit found each share rounded down, so that
    --max-per-class 10 kept 8 drawings and 1 none ("no drawings in train, valid or test")."""
    out, data = converted
    assert [len(class_split(data, 0, s)) for s in SPLITS] == [42, 9, 9]
    capped = prepare(["circle"], out, max_per_class=cap, seed=0, cache_dir=tmp_path)
    assert tuple(len(capped.indices(s)) for s in SPLITS) == shares
    originals = {d.tobytes() for d in class_split(data, 0, "valid")}
    assert all(d.tobytes() in originals for d in class_split(capped, 0, "valid"))


def test_the_sketchrnn_prefix_names_the_class(converted, tmp_path):
    out, _ = converted
    (tmp_path / "sketchrnn_zigzag.npz").write_bytes((out / "zigzag.npz").read_bytes())
    assert find_class_file("zigzag", tmp_path).path == tmp_path / "sketchrnn_zigzag.npz"
    with pytest.raises(DataError, match="no circle.ndjson or circle.npz in"):
        find_class_file("circle", tmp_path)


# --- files as older NumPy wrote them ----------------------------------------------------------


def old_numpy_pickle(drawings: list[np.ndarray], python2: bool, share_bytes: bool = False) -> bytes:
    """The pickle NumPy 1.x wrote for an object array of int16 drawings.

    Protocol 2 under Python 2, byte strings as ``str`` (what Sketch-RNN's published files hold), or
    protocol 3 under Python 3; both name ``numpy.core.multiarray._reconstruct``. ``share_bytes``
    makes it hostile: every array takes the bytes of the first, memoised once (BINPUT 1, BINGET 1).
    """

    def string(b: bytes) -> bytes:  # py2 str: SHORT_BINSTRING / BINSTRING; py3 bytes: SHORT_BINBYTES / BINBYTES
        if len(b) < 256:
            return (b"U" if python2 else b"C") + bytes([len(b)]) + b
        return (b"T" if python2 else b"B") + struct.pack("<I", len(b)) + b

    def array(dtype: bytes, order: bytes, flags: int, shape: tuple, data: bytes) -> bytes:
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + string(b"b") + b"\x87R"
                + b"(K\x01(" + b"".join(b"J" + struct.pack("<i", n) for n in shape) + b"t"
                + b"cnumpy\ndtype\n" + string(dtype) + b"K\x00K\x01\x87R"
                + b"(K\x03" + string(order) + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK" + bytes([flags]) + b"tb"
                + b"\x89" + data + b"tb")

    def data(k: int, d: np.ndarray) -> bytes:
        if share_bytes and k:
            return b"h\x01"
        return string(d.astype("<i2").tobytes()) + (b"q\x01" if share_bytes else b"")

    inner = b"".join(array(b"i2", b"<", 0, d.shape, data(k, d)) for k, d in enumerate(drawings))
    return b"\x80" + (b"\x02" if python2 else b"\x03") + array(b"O8", b"|", 63, (len(drawings),), b"](" + inner + b"e") + b"."


def write_pickled_npz(path: Path, arrays: dict[str, tuple[int, bytes]], compression: int = zipfile.ZIP_STORED) -> None:
    """An .npz whose members are object-array headers followed by the given pickles."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, (n, body) in arrays.items():
            head = io.BytesIO()
            np.lib.format.write_array_header_1_0(head, {"descr": "|O", "fortran_order": False, "shape": (n,)})
            z.writestr(f"{name}.npy", head.getvalue() + body)


@pytest.mark.parametrize("python2", [True, False], ids=["python2-numpy1", "python3-numpy1"])
def test_files_written_by_old_numpy_read_exactly(converted, tmp_path, python2):
    out, data = converted
    splits = {s: class_split(data, 1, s) for s in SPLITS}
    write_pickled_npz(tmp_path / "zigzag.npz", {s: (len(d), old_numpy_pickle(d, python2)) for s, d in splits.items()})
    read = npz.read_npz(tmp_path / "zigzag.npz")
    for split, expected in splits.items():
        assert len(read[split]) == len(expected)
        assert all(np.array_equal(a, b) for a, b in zip(read[split], expected, strict=True))


# --- refusals ------------------------------------------------------------------------------------


class RunsCode:
    """Pickles as a call to os.system: what a booby-trapped dataset holds."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path, capsys):
    marker = tmp_path / "ran"
    trap = np.empty(1, dtype=object)
    trap[0] = RunsCode(marker)
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "circle.npz"
    np.savez(path, train=trap, valid=trap, test=trap)

    with pytest.raises(npz.NpzError, match=r"circle\.npz: refused array 'train': it asks for (posix|os)\.system"):
        npz.read_npz(path)
    assert not marker.exists()
    assert main(["train", "--model", "mdn", "--classes", "circle", "--data-dir", str(tmp_path / "data"),
                 "--epochs", "1", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    # (the mdn's first line says where the run starts; then one line of refusal, no traceback)
    (refused,) = [line for line in err.strip().splitlines() if line.startswith("sketchgen: error:")]
    assert "circle.npz" in refused and "Traceback" not in err and not marker.exists()

    np.load(path, allow_pickle=True)["train"]  # the trap is real: a plain load runs it
    assert marker.exists()


@pytest.mark.parametrize("by", ["one array", "one string of bytes"])
def test_a_pickle_that_repeats_a_drawing_by_reference_is_refused_before_copying(converted, tmp_path, by):
    """20,000 references to one 2,000-point drawing (a real one, repeated) make a file of a few MB that would
    unpack into 240 MB of copies, and a cache of them; the drawings cannot add up to more than the file holds."""
    out, data = converted
    real = class_split(data, 1, "train")[0]
    drawing = np.tile(real, (2000 // len(real) + 1, 1))[:2000]
    n = 20_000
    path = tmp_path / "data" / "zigzag.npz"
    path.parent.mkdir()
    if by == "one array":
        repeated = np.empty(n, dtype=object)
        for i in range(n):
            repeated[i] = drawing  # the same object: pickle writes it once and refers back to it
        np.savez_compressed(path, train=repeated, valid=repeated[:1], test=repeated[:1])
    else:
        pickled = old_numpy_pickle([drawing] * n, python2=True, share_bytes=True)
        write_pickled_npz(path, {"train": (n, pickled), "valid": (1, old_numpy_pickle([drawing], True)),
                                 "test": (1, old_numpy_pickle([drawing], True))})
    tracemalloc.start()
    try:
        # (an object array of more 8-byte references than the file holds bytes is refused when it is made)
        with pytest.raises(npz.NpzError, match=r"zigzag\.npz: refused array 'train': (its (drawings add up to|arrays "
                                                   r"are built from) more .*: it repeats drawings by reference|it builds "
                                                   r"an array larger than the \d+ bytes it holds)$"):
            npz.read_npz(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * drawing.nbytes / 10  # measured: 3.3 and 2.8 MB, against 240 MB of copies
    with pytest.raises(DataError, match="it repeats drawings by reference|it builds an array larger than"):
        prepare(["zigzag"], path.parent, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("bomb", ["a list of one object 5,000,000 times", "a memo index of 100,000,000",
                                  "a header announcing 2,000,000 drawings",
                                  "the list behind an opcode only the unpickler reads"])
def test_a_pickle_that_would_cost_more_than_its_drawings_is_refused_unrun(tmp_path, bomb):
    """An audit's find: a pickle can build a plain list where an array should be, each 2-byte opcode adding a
    reference to one object (a 487 KB file, its member compressed 1000:1, took 6 GB before its type was seen), or
    put an object at a memo index, for which the unpickler makes a slot at every index below it (12 bytes took
    1.5 GB). Each pickled array is read opcode by opcode first, and may cost no more to run than an array of the
    drawings its header announces; a header may announce no more than an array may hold."""
    one = old_numpy_pickle([np.ones((2, 3), np.int16)], python2=True)
    payload, n, message = {
        "a list of one object 5,000,000 times": (b"\x80\x02]q\x00(" + b"h\x00" * 5_000_000 + b"e.", 1,
                                                 "its pickle would cost more to run than an array of 1 drawings: it "
                                                 "is not one"),
        "a memo index of 100,000,000": (b"\x80\x02]r" + (10**8).to_bytes(4, "little") + b".", 1,
                                        "its pickle puts an object at memo index 100000000 at opcode 3"),
        "a header announcing 2,000,000 drawings": (one, 2_000_000, "its header announces 2000000 drawings, more than "
                                                                   "an array may hold (1000000)"),
        # pickletools reads INT with int(), the unpickler with base 0: skipped as unreadable, the list ran unread.
        "the list behind an opcode only the unpickler reads": (b"\x80\x02I0x1\n0]q\x00(" + b"h\x00" * 5_000_000 +
                                                               b"e.", 1, "its pickle is damaged at opcode 2 (ValueError)"),
    }[bomb]
    path = tmp_path / "data" / "circle.npz"
    path.parent.mkdir()
    write_pickled_npz(path, {"train": (n, payload), "valid": (1, one), "test": (1, one)}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 50_000
    tracemalloc.start()
    try:
        with pytest.raises(npz.NpzError, match=rf"circle\.npz: refused array 'train': {re.escape(message)}$"):
            npz.read_npz(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    with pytest.raises(DataError, match=re.escape(message)):
        prepare(["circle"], path.parent, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("by", ["_reconstruct", "a call of ndarray", "__setstate__"])
def test_a_pickle_asking_for_a_larger_array_than_its_member_holds_is_refused_before_numpy_allocates_it(tmp_path, by):
    """An audit's find: 60 bytes of pickle asked NumPy for an object array of 400,000,000 elements (3.4 GB) under a
    header of one drawing, which was compared only once the array was built. Here 10,000,000 (80 MB)."""
    n = struct.pack("<i", 10**7)
    reconstruct = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
    payload = b"\x80\x02" + {
        "_reconstruct": reconstruct + b"(J" + n + b"tC\x01O\x87R.",
        "a call of ndarray": b"cnumpy\nndarray\n(J" + n + b"tC\x01O\x86R.",
        "__setstate__": reconstruct + b"K\x00\x85C\x01b\x87R(K\x01J" + n + b"\x85cnumpy\ndtype\nC\x01O\x85R\x89]tb.",
    }[by]
    one = old_numpy_pickle([np.ones((2, 3), np.int16)], python2=True)
    path = tmp_path / "circle.npz"
    write_pickled_npz(path, {"train": (1, payload), "valid": (1, one), "test": (1, one)})
    tracemalloc.start()
    try:
        with pytest.raises(npz.NpzError, match=r"circle\.npz: refused array 'train': it builds an array larger than "
                                               r"the \d+ bytes it holds$"):
            npz.read_npz(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_an_object_array_filled_from_a_shorter_list_is_refused_not_crashing_numpy(tmp_path):
    """An audit's find: NumPy reads past the end of a list shorter than the object array it fills, and the process
    dies of a segmentation fault (NumPy 2.4); so the file is read in a process of its own here."""
    payload = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
               b"(K\x01K\x02\x85cnumpy\ndtype\nC\x01O\x85R\x89]tb.")
    one = old_numpy_pickle([np.ones((2, 3), np.int16)], python2=True)
    path = tmp_path / "circle.npz"
    write_pickled_npz(path, {"train": (2, payload), "valid": (1, one), "test": (1, one)})
    code = "import sys; from sketchgen import npz\ntry: npz.read_npz(sys.argv[1])\nexcept npz.NpzError as e: print(e)"
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{path}: refused array 'train': it fills an array of 2 "
                                                              "elements from 0\n", "")


def test_an_array_declaring_more_than_a_class_needs_is_refused_unread(converted, tmp_path):
    """A member whose zip entry says it unpacks to 2 GB (as a small zip bomb does) is refused from the entry alone."""
    path = tmp_path / "circle.npz"
    path.write_bytes((converted[0] / "circle.npz").read_bytes())
    with zipfile.ZipFile(path) as z:
        entry = z.getinfo("train.npy")
    blob = bytearray(path.read_bytes())
    at = blob.index(b"PK\x01\x02" + blob[blob.index(b"PK\x01\x02") + 4 : blob.index(b"PK\x01\x02") + 4])  # first entry
    while not blob[at + 46 : at + 46 + len(entry.filename)] == entry.filename.encode():
        at = blob.index(b"PK\x01\x02", at + 4)
    blob[at + 24 : at + 28] = struct.pack("<I", 2**31)  # the central directory's uncompressed size, which zipfile uses
    path.write_bytes(bytes(blob))
    with pytest.raises(npz.NpzError, match=r"refused array 'train': it unpacks to 2147483648 bytes, more than"):
        npz.read_npz(path)


@pytest.mark.parametrize("content, message", [
    (b"not a zip at all", "not a readable .npz file"),
    ({"train": [[[1, 2, 0]]], "valid": [[[1, 2, 0]]]}, r"not a Sketch-RNN dataset \(no test array\)"),
    ({s: [np.zeros((4, 2), np.int16)] for s in SPLITS}, "refused array 'train': drawing 0 holds a int16 array of shape"),
    ({s: [np.zeros((4, 3), np.float32)] for s in SPLITS}, "not integer stroke-3"),
])
def test_files_that_are_not_sketchrnn_datasets_are_refused(tmp_path, content, message):
    path = tmp_path / "circle.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        arrays = {}
        for name, drawings in content.items():
            arrays[name] = np.empty(len(drawings), dtype=object)
            for i, d in enumerate(drawings):
                arrays[name][i] = np.asarray(d)
        np.savez(path, **arrays)
    with pytest.raises(npz.NpzError, match=message) as e:
        npz.read_npz(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_truncated_file_is_refused(converted, tmp_path):
    whole = (converted[0] / "circle.npz").read_bytes()
    for cut in (len(whole) // 2, len(whole) - 30):
        (tmp_path / "circle.npz").write_bytes(whole[:cut])
        with pytest.raises(npz.NpzError, match="circle.npz: "):
            npz.read_npz(tmp_path / "circle.npz")


def test_convert_never_writes_over_the_drawings_it_reads_nor_over_another_file(converted, tmp_path, capsys):
    out, _ = converted
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(out / "circle.npz", own / "circle.npz")
    before = (own / "circle.npz").read_bytes()
    args = ["convert", "--to", "npz", "--classes", "circle", "--max-per-class", "10", "--seed", "0"]
    # Its own input, which a cap of 10 would have cut to 9 drawings:
    assert main([*args, "--data-dir", str(own), "--out", str(own)]) == 1
    assert (own / "circle.npz").read_bytes() == before
    assert "is the file this command reads" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "circle.npz").write_text("my notes")
    assert main([*args, "--data-dir", str(out), "--out", str(other)]) == 1
    assert (other / "circle.npz").read_text() == "my notes"
    assert "holds another file" in capsys.readouterr().err
    # An earlier dataset there is replaced, as before: running convert again still works.
    again = tmp_path / "again"
    assert main([*args, "--data-dir", str(out), "--out", str(again)]) == 0
    assert main([*args[:-2], "--seed", "1", "--data-dir", str(out), "--out", str(again)]) == 0
    assert npz.is_dataset(again / "circle.npz") and not npz.is_dataset(other / "circle.npz")
    # A dataset convert did not write (Sketch-RNN's own, 75,000 drawings a class) was replaced without a word, as an
    # audit found (2026-12-07): only with --overwrite now.
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    with np.load(again / "circle.npz", allow_pickle=True) as written:
        np.savez_compressed(theirs / "circle.npz", **{k: written[k] for k in npz.NPZ_ARRAYS})
    before = (theirs / "circle.npz").read_bytes()
    assert main([*args, "--data-dir", str(out), "--out", str(theirs)]) == 1
    assert (theirs / "circle.npz").read_bytes() == before
    assert capsys.readouterr().err.strip().endswith(
        "holds a Sketch-RNN dataset convert did not write (Sketch-RNN's own, or one converted before 2026-12-07); "
        "writing the Sketch-RNN dataset there would lose it: give another --out, or pass --overwrite to replace it")
    assert main([*args, "--data-dir", str(out), "--out", str(theirs), "--overwrite"]) == 0
    assert npz.is_dataset(theirs / "circle.npz", ours=True)


def test_a_plain_array_of_a_million_drawings_costs_its_own_bytes_not_an_object_each(converted, tmp_path):
    """A plain (N, 1, 3) int16 array, as np.save writes drawings of one length: a million one-point drawings (real
    first points) deflate to a few KB. Each drawing was made an array of its own before any cap, some 400 bytes of
    memory per 6 stored (4,000,000 took 1.6 GB and 36 s); now they stay one array, and a cap of 10 keeps 10."""
    first_points = np.array([d[0] for d in class_split(converted[1], 0, "train")], dtype=np.int16)
    n = 1_000_000
    train = first_points[np.arange(n) % len(first_points)][:, None, :]
    path = tmp_path / "data" / "circle.npz"
    path.parent.mkdir()
    np.savez_compressed(path, train=train, valid=train[:2], test=train[:2])
    member = train.nbytes
    tracemalloc.start()
    try:
        capped = prepare(["circle"], path.parent, max_per_class=10, cache_dir=tmp_path / "cache", workers=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * member  # measured: 2.5 times (the array read and its offsets); before, 47 times
    assert {s: len(capped.indices(s)) for s in SPLITS} == {"train": 10, "valid": 0, "test": 0}
    assert all(capped.stroke3(i).tobytes() in {p.tobytes() for p in first_points} for i in range(len(capped)))
    read = npz.read_npz(path)["train"]
    assert len(read) == n and all(np.array_equal(read[k], train[k]) for k in (0, 1234, n - 1))


def circle_npz(folder: Path, train: np.ndarray) -> Path:
    """``folder``/circle.npz of ``train`` beside valid and test splits of one plain drawing each."""
    ok = np.ones((2, 1, 3), dtype=np.int16)
    path = folder / "circle.npz"
    folder.mkdir(exist_ok=True)
    np.savez(path, train=train, valid=ok, test=ok)
    return path


@pytest.mark.parametrize("array", ["int32 drawing in an object array", "plain int64 array"])
def test_an_offset_at_the_least_integer_is_refused_not_wrapped_to_zero(tmp_path, array):
    """-2**31 and -2**63 passed the int16 range check, since np.abs of an integer type's least value is itself, and
    were cast to 0: the file was prepared with its drawing changed (the cache held [0, 5, 0])."""
    if array == "plain int64 array":
        train = np.full((2, 3, 3), -2**63, dtype=np.int64)
    else:
        train = np.empty(1, dtype=object)
        train[0] = np.array([[-2**31, 5, 0], [3, 3, 1]], dtype=np.int32)
    path = circle_npz(tmp_path / "data", train)
    with pytest.raises(npz.NpzError, match=r"circle\.npz: refused array 'train': (drawing 0|it) holds an offset beyond "
                                           r"the int16 range$"):
        npz.read_npz(path)
    with pytest.raises(DataError, match="beyond the int16 range"):
        prepare(["circle"], path.parent, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("pen", [7, -1, 2])
def test_a_pen_other_than_0_or_1_is_refused_when_the_file_is_read(tmp_path, pen):
    """A pen of 7 was read, and trained on as a lift (as any above 0.5 is); a drawing of the file given to
    ``Drawing.from_stroke3`` (demo's pictures of real drawings) was then refused, after training (a helper's find)."""
    train = np.empty(1, dtype=object)
    train[0] = np.array([[1, 2, 0], [3, 3, pen]], dtype=np.int16)
    path = circle_npz(tmp_path / "data", train)
    with pytest.raises(npz.NpzError, match=rf"circle\.npz: refused array 'train': drawing 0 holds a pen of {pen}, not 0 "
                                           r"\(down\) or 1 \(lifted\)$"):
        npz.read_npz(path)


@pytest.mark.parametrize("array", ["drawing in an object array", "plain array"])
def test_a_drawing_of_more_points_than_a_drawing_may_have_is_refused(tmp_path, array):
    """A drawing of millions of points fits a member's bytes, and was read and cached whole: gigabytes wherever a
    batch is padded to its longest drawing (the classifier's). Held, as ndjson's drawings are, to MAX_POINTS; a
    drawing of as many is read."""
    for n in (MAX_POINTS, MAX_POINTS + 1):
        train = np.zeros((1, n, 3), dtype=np.int16)
        if array != "plain array":
            train = np.empty(1, dtype=object)
            train[0] = np.zeros((n, 3), dtype=np.int16)
        path = circle_npz(tmp_path / "data", train)
        if n == MAX_POINTS:
            assert len(npz.read_npz(path)["train"][0]) == n
    with pytest.raises(npz.NpzError, match=rf"circle\.npz: refused array 'train': (drawing 0 has|its drawings have) "
                                           rf"{MAX_POINTS + 1} points, more than a drawing may have \({MAX_POINTS}\)$"):
        npz.read_npz(path)
    with pytest.raises(DataError, match="more than a drawing may have"):
        prepare(["circle"], path.parent, cache_dir=tmp_path / "cache")


def test_a_plain_array_announcing_more_than_its_member_holds_is_refused_from_its_header(tmp_path):
    """A header announcing 3,000,000,000 drawings over 60 bytes: NumPy allocates what a header says before reading
    (18 GB, left to the system's overcommit; 10**18 drawings was a MemoryError); refused before that now."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<i2", "fortran_order": False, "shape": (3 * 10**9, 1, 3)})
    ok = io.BytesIO()
    np.save(ok, np.ones((2, 1, 3), np.int16))
    path = tmp_path / "circle.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("train.npy", head.getvalue() + b"\1\0" * 30)
        z.writestr("valid.npy", ok.getvalue())
        z.writestr("test.npy", ok.getvalue())
    with pytest.raises(npz.NpzError, match=r"circle\.npz: refused array 'train': its header announces a "
                                           r"\(3000000000, 1, 3\) array, more than the 188 bytes it holds$"):
        npz.read_npz(path)
