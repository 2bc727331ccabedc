"""Sketch-RNN's ``.npz`` datasets: reading them without running their pickles, and writing them.

Sketch-RNN (Ha & Eck 2017) keeps each class in ``<class>.npz`` (``sketchrnn_<class>.npz`` in some
mirrors) holding three arrays, ``train``, ``valid`` and ``test``, each a NumPy object array of int16
stroke-3 drawings. NumPy stores object arrays as pickles, and loading a pickle can run any code the
file's author chose, so these files are read with an unpickler that can build NumPy arrays and
nothing else: a file asking for anything more is refused before any of it runs.

This module knows the file format only; ``data`` decides where the files are and how their drawings
join the others.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from sketchgen.fileio import FileRefused, atomic_write, open_regular
from sketchgen.strokes import MAX_POINTS, odd_pen

# The arrays of a Sketch-RNN file, in Sketch-RNN's own names and order.
NPZ_ARRAYS = ("train", "valid", "test")
# Some mirrors of Sketch-RNN's data name the files sketchrnn_<class>.npz.
NPZ_PREFIX = "sketchrnn_"

# A Sketch-RNN class holds ~75,000 drawings of ~70 points: some 40 MB per array unpacked. An array that
# says it unpacks to more is refused unread: a small compressed file could otherwise fill the memory.
MAX_ARRAY_BYTES = 1 << 30

# What running a pickled (object) array's pickle may cost, besides the bytes its opcodes carry: per opcode, roughly
# the bytes the unpickler allocates for it (a reference on its stack or in a list, a tuple, a list, an array object).
# NumPy pickles a drawing's array in 23-29 opcodes, about 1.1 KB by this count (protocols 2-4); each drawing the
# header announces may cost twice that. A pickle can otherwise turn 2 bytes into a reference in a list, 1 byte
# into a 72-byte list, and a member compressed 1000:1 into gigabytes.
COST_PER_DRAWING, COST_AROUND = 2048, 1 << 16
MAX_PICKLED_DRAWINGS = 1_000_000  # in one object array: Sketch-RNN's hold 70,000, QuickDraw's largest class ~340,000
_COSTS = {**dict.fromkeys(("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "LIST", "DICT", "FROZENSET"), 72),
          **dict.fromkeys(("TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"), 64),
          **dict.fromkeys(("REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX", "OBJ", "INST"), 128)}
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}

# The one function NumPy pickles every array with: numpy.core.multiarray._reconstruct before NumPy 2
# (and in Sketch-RNN's published files), numpy._core.multiarray._reconstruct since. Taken from an
# array's own pickle recipe so that it is the real function under either NumPy.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_RECONSTRUCT_NAMES = (("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"))


@dataclass(frozen=True, eq=False)
class Drawings(Sequence):
    """Drawings end to end, as a class's cache holds them: drawing j is ``points[offsets[j]:offsets[j + 1]]``.

    Two arrays whatever the count, where a list would cost an object of some 100 bytes a drawing.
    """

    points: np.ndarray  # (total points, 3) int16
    offsets: np.ndarray  # (drawings + 1,) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, j: int) -> np.ndarray:
        if not 0 <= j < len(self):
            raise IndexError(j)
        return self.points[self.offsets[j] : self.offsets[j + 1]]

    @classmethod
    def of(cls, arrays: Sequence[np.ndarray]) -> Drawings:
        """Stroke-3 arrays joined end to end."""
        lengths = np.fromiter(map(len, arrays), dtype=np.int64, count=len(arrays))
        points = np.concatenate(arrays).astype(np.int16, copy=False) if len(arrays) else np.zeros((0, 3), np.int16)
        return cls(points, np.concatenate([[0], np.cumsum(lengths)]))

    @classmethod
    def join(cls, parts: Sequence[Drawings]) -> Drawings:
        """The drawings of ``parts``, one after another."""
        shifts = np.cumsum([0] + [len(p.points) for p in parts])
        return cls(np.concatenate([p.points for p in parts]),
                   np.concatenate([[0], *(p.offsets[1:] + shift for p, shift in zip(parts, shifts))]))

    def take(self, idx: np.ndarray) -> Drawings:
        """Drawings ``idx``, in that order, copied out with one gather."""
        idx = np.asarray(idx, dtype=np.int64)
        starts = self.offsets[idx]
        lengths = self.offsets[idx + 1] - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        rows = np.arange(offsets[-1]) + np.repeat(starts - offsets[:-1], lengths)
        return Drawings(self.points[rows], offsets)


class NpzError(ValueError):
    """A file that is not a usable Sketch-RNN dataset; the one-line message names the file."""


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds NumPy arrays and dtypes and refuses every other global.

    Every array it builds counts the bytes it is made from against ``budget`` (what the member
    holds) before NumPy takes them: a pickle can name one string of bytes thousands of times, and
    NumPy copies a string (a Python 2 ``str``, as Sketch-RNN's files hold) into each array. Nor may
    an array be larger than the member (``check_size``), checked before NumPy allocates it.
    """

    def __init__(self, f, budget: int):
        # encoding="latin1": Python 2 wrote Sketch-RNN's files, and NumPy reads their byte strings so.
        super().__init__(f, encoding="latin1")
        self.size = self.budget = budget
        unpickler = self

        class Counted(np.ndarray):
            def __new__(cls, shape, dtype=float, *rest, **named):
                unpickler.check_size(shape, dtype)
                return super().__new__(cls, shape, dtype, *rest, **named)

            def __setstate__(self, state):
                elements, data = unpickler.check_size(state[-4], state[-3]), state[-1]
                if isinstance(data, list) and len(data) != elements:  # NumPy reads past a short list (and crashes)
                    raise pickle.UnpicklingError(f"it fills an array of {elements} elements from {len(data)}")
                if isinstance(data, (bytes, str)):
                    unpickler.budget -= len(data)
                    if unpickler.budget < 0:
                        raise pickle.UnpicklingError(f"its arrays are built from more than the {budget} bytes it "
                                                     "holds: it repeats drawings by reference")
                super().__setstate__(state)

        def reconstruct(subtype, shape, dtype):
            unpickler.check_size(shape, dtype)
            return _RECONSTRUCT(subtype, shape, dtype)

        self.allowed = {**dict.fromkeys(_RECONSTRUCT_NAMES, reconstruct), ("numpy", "ndarray"): Counted,
                        ("numpy", "dtype"): np.dtype}

    def check_size(self, shape, dtype) -> int:
        """The elements of an array of ``shape`` and ``dtype``; UnpicklingError unless it takes at most the bytes
        the member holds.

        NumPy allocates an array from its shape (given to ``_reconstruct``, to ``ndarray`` or to ``__setstate__``)
        before filling it: 60 bytes asking for an object array of 400,000,000 elements took 3.4 GB. A real array's
        bytes are stored in the member, and each drawing of an object array in more than its 8-byte reference. The
        shape must be integers: math.prod would repeat a list."""
        dims = shape if isinstance(shape, tuple) else (shape,)
        if not all(isinstance(d, int) for d in dims):
            raise pickle.UnpicklingError("it gives an array a shape that is not integers")
        elements = math.prod(dims)
        if elements * max(np.dtype(dtype).itemsize, 1) > self.size:
            raise pickle.UnpicklingError(f"it builds an array larger than the {self.size} bytes it holds")
        return elements

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a NumPy array never needs") from None


def _read_member(archive: zipfile.ZipFile, member: str) -> Drawings:
    """One ``.npy`` member's drawings as int16 stroke-3: a plain (drawings, n, 3) array as NumPy reads it,
    kept whole, or an object array through ``_ArraysOnly``.

    The member's size bounds everything: zipfile unpacks no more than it declares, and the drawings
    may add up to no more than that, since each must be stored in it. A plain array is checked from
    its header before it is read and never split into an object per drawing: a 24 KB file of
    4,000,000 one-point drawings took 1.6 GB that way. A pickle can name one array, or one string of
    bytes, thousands of times by reference, and copying each would take memory and cache space
    without bound; such a file is refused before anything is copied.
    """
    size = archive.getinfo(member).file_size
    if size > MAX_ARRAY_BYTES:
        raise ValueError(f"it unpacks to {size} bytes, more than a class's drawings need ({MAX_ARRAY_BYTES})")
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        if dtype.hasobject:
            start = f.tell()
            _check_cost(f, math.prod(shape))
            f.seek(start)
            array = _ArraysOnly(f, size).load()
        else:
            _check_form("it", shape, dtype, ndim=3)
            if math.prod(shape) * dtype.itemsize > size:  # NumPy would allocate what the header says first
                raise ValueError(f"its header announces a {shape} array, more than the {size} bytes it holds")
            f.seek(0)
            array = np.lib.format.read_array(f, allow_pickle=False)
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise ValueError(f"its pickle is not the {shape} array its header announces")
    if not dtype.hasobject:
        return Drawings(_int16("it", array).reshape(-1, 3), np.arange(shape[0] + 1, dtype=np.int64) * shape[1])
    items = list(np.asarray(array))
    for i, item in enumerate(items):
        if not isinstance(item, np.ndarray):
            raise ValueError(f"drawing {i} is a {type(item).__name__}, not an array")
    # Built once but named many times, an array costs nothing until each name is copied into the cache.
    items = [np.asarray(item) for item in items]
    total = sum(item.nbytes for item in items)
    if total > size:
        raise ValueError(f"its drawings add up to more than the {size} bytes it holds ({total}): "
                         "it repeats drawings by reference")
    for i, item in enumerate(items):
        _check_form(f"drawing {i}", item.shape, item.dtype, ndim=2)
        items[i] = _int16(f"drawing {i}", item)
    return Drawings.of(items)


def _check_cost(f, drawings: int) -> None:
    """ValueError unless the pickle in ``f`` costs no more to run than an array of ``drawings`` drawings may
    (``COST_PER_DRAWING``), read opcode by opcode (pickletools: nothing is built) before the unpickler runs it; nor
    may it put an object at a memo index past its opcodes so far: the unpickler makes a slot for every index below
    it (12 bytes took 1.5 GB). A pickle pickletools cannot read is refused too: the unpickler reads some opcodes
    otherwise (an INT of "0x1"), so it would run what was never counted."""
    if drawings > MAX_PICKLED_DRAWINGS:
        raise ValueError(f"its header announces {drawings} drawings, more than an array may hold "
                         f"({MAX_PICKLED_DRAWINGS})")
    budget, cost, read, problem = COST_PER_DRAWING * drawings + COST_AROUND, 0, 0, None
    buffered = io.BufferedReader(f, 1 << 16)  # genops reads a byte at a time
    try:  # read alone: genops asks a reader that has tell() where each opcode is, which zipfile answers slowly
        for op, arg, _ in pickletools.genops(SimpleNamespace(read=buffered.read, readline=buffered.readline)):
            read += 1
            cost += _COSTS.get(op.name, 16)
            if cost > budget:
                problem = f"its pickle would cost more to run than an array of {drawings} drawings: it is not one"
            elif op.name in _MEMO_PUTS and arg >= read:
                problem = f"its pickle puts an object at memo index {arg} at opcode {read}"
            if problem:
                break
    except Exception as e:  # whatever a damaged byte makes of genops
        problem = f"its pickle is damaged at opcode {read + 1} ({type(e).__name__})"
    finally:
        buffered.detach()  # f stays open, for the unpickler
    if problem:
        raise ValueError(problem)


def _check_form(what: str, shape: tuple, dtype: np.dtype, ndim: int) -> None:
    """ValueError naming ``what`` unless it is integer stroke-3: one drawing (n, 3), or (ndim 3) drawings alike, of
    at most the points a drawing may have (one of millions would cost gigabytes where drawings are batched)."""
    if len(shape) != ndim or shape[-1] != 3 or not shape[-2] or dtype.kind not in "iu":
        form = "(n, 3)" if ndim == 2 else "(drawings, n, 3)"
        raise ValueError(f"{what} holds a {dtype} array of shape {shape}, not integer stroke-3 {form}")
    if shape[-2] > MAX_POINTS:
        raise ValueError((f"{what} has" if ndim == 2 else "its drawings have") +
                         f" {shape[-2]} points, more than a drawing may have ({MAX_POINTS})")


def _int16(what: str, a: np.ndarray) -> np.ndarray:
    """Integer stroke-3 as int16; ValueError naming ``what`` for an offset beyond +-32767, or a pen other than 0 or 1
    (a pen of 7 was read as a lift, as any above 0.5 is). Its least and greatest values are compared, not np.abs of
    them: the abs of int32's or int64's minimum is negative, and passed."""
    limit = np.iinfo(np.int16).max
    if a.size and (a.min() < -limit or a.max() > limit):
        raise ValueError(f"{what} holds an offset beyond the int16 range")
    if (odd := odd_pen(a)) is not None:
        raise ValueError(f"{what} holds a pen of {a[..., 2].flat[odd]}, not 0 (down) or 1 (lifted)")
    return a.astype(np.int16, copy=False)


def read_npz(path: str | os.PathLike, own: bool = False) -> dict[str, Drawings]:
    """``train``, ``valid`` and ``test`` of a Sketch-RNN file, each a ``Drawings`` of int16 stroke-3 arrays.

    Raises NpzError naming the file (and the array and drawing) for anything else, including a
    pickle that would construct something other than NumPy arrays; such a pickle never runs. ``own``: one of
    sketchgen's own files, never read through a link.
    """
    path = Path(path)
    try:
        with open_regular(path, own=own) as f, zipfile.ZipFile(f) as archive:
            names = set(archive.namelist())
            missing = [a for a in NPZ_ARRAYS if f"{a}.npy" not in names]
            if missing:
                raise NpzError(f"{path}: not a Sketch-RNN dataset (no {', '.join(missing)} array)")
            splits = {}
            for name in NPZ_ARRAYS:
                try:
                    splits[name] = _read_member(archive, f"{name}.npy")
                except (pickle.UnpicklingError, ValueError) as e:
                    raise NpzError(f"{path}: refused array {name!r}: {' '.join(str(e).split())}") from None
                except Exception as e:  # a truncated or mangled member: any decoding error means "not a dataset"
                    raise NpzError(f"{path}: array {name!r} is unreadable ({type(e).__name__})") from None
    except (zipfile.BadZipFile, EOFError) as e:
        raise NpzError(f"{path}: not a readable .npz file ({e})") from None
    except FileRefused as e:  # a FIFO, a device, a folder, a missing file
        raise NpzError(str(e)) from None
    except OSError as e:  # a failing disk: a read error names no file of its own
        raise NpzError(f"{path}: cannot be read ({e.strerror or e})") from None
    return splits


def write_npz(path: str | os.PathLike, splits: dict[str, Sequence[np.ndarray]]) -> Path:
    """Write drawings as Sketch-RNN does: one object array of int16 stroke-3 drawings per split."""
    arrays = {}
    for name in NPZ_ARRAYS:
        drawings = splits.get(name, [])
        # Filled one by one: NumPy would turn drawings of equal length into one 3-D array.
        arrays[name] = np.empty(len(drawings), dtype=object)
        for i, d in enumerate(drawings):
            arrays[name][i] = np.asarray(d, dtype=np.int16)
    with atomic_write(path) as f:  # marked as ours: Sketch-RNN's loader reads its three arrays by name
        np.savez_compressed(f, **arrays, **{WRITTEN_BY: np.array(WRITER)})
    return Path(path)


# The member write_npz adds, so that convert tells its own earlier output from a dataset it did not write.
WRITTEN_BY, WRITER = "written_by", "sketchgen"


def is_dataset(path: str | os.PathLike, ours: bool = False) -> bool:
    """Whether ``path`` is an archive holding Sketch-RNN's three arrays (as ``write_npz`` writes), read no further;
    with ``ours``, one that ``write_npz`` wrote (since 2026-12-07: it holds a ``written_by`` member)."""
    try:
        with open_regular(path) as f, zipfile.ZipFile(f) as archive:
            names = archive.namelist()
            return all(f"{a}.npy" in names for a in NPZ_ARRAYS) and (not ours or f"{WRITTEN_BY}.npy" in names)
    except (zipfile.BadZipFile, EOFError, OSError):  # FileRefused is an OSError
        return False


def class_file(out_dir: str | os.PathLike, name: str) -> Path:
    """Where ``write_classes`` writes class ``name``."""
    return Path(out_dir) / f"{name}.npz"


def write_classes(data, out_dir: str | os.PathLike) -> list[Path]:
    """One ``<class>.npz`` per class of a ``data.Prepared``, its split becoming train/valid/test."""
    by_split = {split: data.indices(split) for split in NPZ_ARRAYS}
    out = []
    for label, name in enumerate(data.classes):
        splits = {split: [data.stroke3(i) for i in idx[data.labels[idx] == label]] for split, idx in by_split.items()}
        out.append(write_npz(class_file(out_dir, name), splits))
    return out
