"""One class's prepared drawings on disk, as plain ``.npy`` arrays that every process maps instead of copying.

A class's cache is a folder ``<name>-<key>/`` holding

* ``points.npy``: (total points, 3) int16 stroke-3 rows of all its drawings, end to end;
* ``offsets.npy``: (drawings + 1,) int64, drawing j being ``points[offsets[j]:offsets[j + 1]]``;
* ``split.npy``: (drawings,) int8, an index into the splits;
* ``meta.json``: what the cache was built from (the source file's SHA-256 among it), and each array file's size,
  SHA-256 and sample digest.

The key hashes everything that could change the arrays, so a class's cache serves any class list
that holds the class. The arrays are mapped read-only: however many processes read a class, the
machine holds one copy of its pages. ``meta.json`` is removed first and written last, so
a folder without it is unfinished and gets rebuilt; the caller holds the class's lock meanwhile.
Files are only ever replaced whole (``atomic_write``), never changed in place, so a process that
maps a cache keeps seeing the version it opened; the temporaries of a process killed as it wrote
are removed when the cache is built again.

Checking costs what it must. Writing maps every file back and compares it with the array it holds
(a full check, once), then records its size, SHA-256 and sampled digest. Opening compares each
file's size and the digest of 17 blocks of 4 KiB spread through it (``sampled_blocks``, the .npy
header among them), which finds truncation and most damage in microseconds; ``full=True``
(``sketchgen prepare --verify``) hashes every byte again. Opening also holds what the arrays say
against each other (``_shape_problem``, vectorised over the maps: offsets from 0 to the last point,
every drawing at least one point, every split 0, 1 or 2): a meta.json rewritten to match damaged or
hostile arrays still cannot make training read overlapping, empty or missing drawings.

The folder is sketchgen's own (``fileio.own_folder``): a symbolic link there is refused, never
written through, and meta.json is read only as a regular file of at most ``MAX_META`` bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.lib.format as npy

from sketchgen.classfiles import ClassFile
from sketchgen.fileio import atomic_write, open_regular, own_folder, read_bytes, safe_name, temporaries
from sketchgen.npz import NPZ_ARRAYS
from sketchgen.strokes import MAX_POINTS

# Version 1 was one prepared-<key>.npz for a whole class list; it is no longer read.
VERSION = 2
ARRAYS = {"points": np.int16, "offsets": np.int64, "split": np.int8}
FILES = tuple(f"{name}.npy" for name in ARRAYS)
BLOCK = 4096
# A meta.json is about 1 KB (its longest field is the source's path); one of more than this is not ours.
MAX_META = 1 << 20


@dataclass
class ClassArrays:
    """One class's arrays, mapped read-only from its cache folder."""

    points: np.ndarray  # (total points, 3) int16
    offsets: np.ndarray  # (n + 1,) int64
    split: np.ndarray  # (n,) int8
    folder: Path
    source_sha256: str  # of the class file the arrays were made from: what a checkpoint records of its drawings

    def __len__(self) -> int:
        return len(self.split)


def folder(cache_dir: str | os.PathLike, name: str, identity: dict) -> Path:
    """The cache folder of class ``name`` built from ``identity`` (source file, settings): readable name, hashed key."""
    key = hashlib.sha256(json.dumps({"version": VERSION, "class": name, **identity}, sort_keys=True).encode())
    return Path(cache_dir) / f"{safe_name(name)}-{key.hexdigest()[:16]}"


def write(where: Path, arrays: dict[str, np.ndarray], identity: dict, source_sha256: str) -> None:
    """Write the arrays as ``.npy`` files, check every byte written, then commit with ``meta.json``."""
    own_folder(where)
    _clear(where / "meta.json")  # unfinished from here until the new one is written
    _sweep(where, (*FILES, "meta.json"))
    files = {}
    for name, dtype in ARRAYS.items():
        path = where / f"{name}.npy"
        _clear(path)
        array = np.ascontiguousarray(arrays[name], dtype=dtype)
        with atomic_write(path, own=True) as f:
            np.save(f, array)
        with open_regular(path, own=True) as f:
            if not np.array_equal(_map(f, array.dtype), array):
                raise OSError(f"{path}: the file read back differs from the array written; check the disk")
            files[path.name] = {"bytes": os.fstat(f.fileno()).st_size, "sha256": _sha256(f), "sample": sample_digest(f)}
    meta = {"version": VERSION, "drawings": len(arrays["split"]), "points": len(arrays["points"]),
            "identity": identity, "source_sha256": source_sha256, "files": files}
    with atomic_write(where / "meta.json", own=True) as f:
        f.write(json.dumps(meta, indent=1).encode())


def _sweep(where: Path, names: tuple[str, ...]) -> None:
    """Remove the temporaries a process killed while it wrote these files of the cache left (each up to a class's
    size)."""
    for tmp in temporaries(where, names):
        tmp.unlink()


def _clear(path: Path) -> None:
    """Remove whatever is at one of the cache's own paths: a folder planted there too, which ``atomic_write``'s
    rename cannot replace ("Is a directory"). A link is removed itself, never followed."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def sha256(path: Path, own: bool = False) -> str:
    """The file's SHA-256, in hex; ``own``: one of sketchgen's own files, never read through a link."""
    with open_regular(path, own=own) as f:
        return _sha256(f)


def _sha256(f: BinaryIO) -> str:
    f.seek(0)
    h = hashlib.sha256()
    while chunk := f.read(1 << 16):  # hashlib.file_digest is Python 3.11's; 3.10 is supported
        h.update(chunk)
    return h.hexdigest()


def sampled_blocks(size: int) -> list[int]:
    """Where the blocks of ``BLOCK`` bytes that opening checks start: the first (the .npy header), the last, and
    15 spread between them; damage elsewhere is found by a full check."""
    return sorted({0, max(size - BLOCK, 0), *(size * k // 16 for k in range(1, 16))})


def sample_digest(f: BinaryIO) -> str:
    """SHA-256 of the open file's size and its sampled blocks."""
    size = os.fstat(f.fileno()).st_size
    h = hashlib.sha256(str(size).encode())
    for at in sampled_blocks(size):
        h.update(os.pread(f.fileno(), BLOCK, at))
    return h.hexdigest()


def _map(f: BinaryIO, dtype: np.dtype) -> np.ndarray:
    """The ``.npy`` array in the open file ``f``, mapped read-only from that descriptor: the file checked is the file
    mapped, whatever its name leads to by now. A header of another type or order is refused before mapping (an
    array of Python objects is never read). A plain ndarray: slices of an np.memmap would each be a memmap too."""
    f.seek(0)
    read_header = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(npy.read_magic(f))
    if read_header is None:
        raise ValueError("a .npy format version sketchgen does not write")
    shape, fortran, found = read_header(f)
    if found != dtype or fortran:
        raise ValueError(f"an array of {found} ({'Fortran' if fortran else 'C'} order), not {dtype}")
    return np.asarray(np.memmap(f, dtype=dtype, mode="r", offset=f.tell(), shape=shape))


def open_class(where: Path, source: ClassFile, most: int, identity: dict, full: bool = False, quiet: bool = False
               ) -> ClassArrays | None:
    """The mapped arrays of the class file ``source``, or None if the cache is missing or (with a note, unless
    ``quiet``) damaged. The caller holds the class's lock.

    ``identity``: what the folder's name was made from (``folder``), which its meta.json must say: the files of
    another class's cache copied in, digests and all, are not this class's drawings. None of its files may be a
    symbolic link: the folder is sketchgen's own, and a link would serve whatever it points at.

    ``most``: the drawings it may hold (the max_per_class its key was made with); meta.json counting more is
    damage found before any array is mapped, since checking the offsets costs memory in proportion to them.
    A folder that is a symbolic link is refused (FileRefused): a rebuild would write wherever it points.
    ``full`` also hashes ``source`` again: a file changed in place under the same size and time is rebuilt.
    """
    meta_path = where / "meta.json"
    if not own_folder(where, create=False) or not meta_path.exists():
        return None
    linked = next((name for name in ("meta.json", *FILES) if (where / name).is_symlink()), None)
    meta, problem = _read_meta(meta_path, most) if linked is None else \
        (None, f"damaged prepared cache ({linked} is a symbolic link)")
    if problem is None and meta.get("identity") != json.loads(json.dumps(identity)):
        problem = "prepared cache of other drawings or settings (meta.json's identity is not its folder's)"
    if problem is None:
        loaded, problem = _open_arrays(where, meta, full)
    # The source's digest once the cache itself is whole: an older cache's is taken now (one read, and nothing to
    # compare it with yet), a recorded one is checked, and with ``full`` compared with the file's bytes today.
    if problem is None and "source_sha256" not in meta:
        meta = _add_source_digest(meta_path, meta, source)
    elif problem is None and not is_sha256(meta["source_sha256"]):
        problem = "damaged prepared cache (meta.json's source_sha256 is not a SHA-256)"
    elif problem is None and full and sha256(*source) != meta["source_sha256"]:
        problem = f"its source {source.path} has other bytes than it was prepared from"
    if problem is None:
        return ClassArrays(folder=where, source_sha256=meta["source_sha256"], **loaded)
    if not quiet:
        print(f"{where}: {problem}; rebuilding", file=sys.stderr)
    return None


def _read_meta(path: Path, most: int) -> tuple[dict | None, str | None]:
    """meta.json as a dict of this version counting 1 to ``most`` drawings, or why not: read as a regular file of at
    most ``MAX_META`` bytes."""
    try:
        meta = json.loads(read_bytes(path, MAX_META, "prepared cache's meta.json", own=True))
    except OSError as e:  # a FIFO, a device, more than MAX_META bytes, a read error
        return None, f"unreadable prepared cache ({e})"
    except (ValueError, RecursionError) as e:  # RecursionError: [[[[... nested too deep for the parser
        return None, f"unreadable prepared cache ({type(e).__name__})"
    if not isinstance(meta, dict) or meta.get("version") != VERSION or not isinstance(meta.get("files"), dict):
        return None, "prepared cache from another version"
    drawings, points = meta.get("drawings"), meta.get("points")
    if type(drawings) is not int or type(points) is not int or not 0 < drawings <= min(points, most) or \
            points > drawings * MAX_POINTS:
        return None, f"damaged prepared cache (meta.json counts {drawings!r:.20} drawings of {points!r:.20} points: " \
                     f"its settings keep 1 to {most} drawings, each of 1 to {MAX_POINTS} points)"
    return meta, None


def _add_source_digest(meta_path: Path, meta: dict, source: ClassFile) -> dict:
    """A cache from before meta.json recorded its source's SHA-256 (sketchgen before 2026-12-07), given it: the
    folder's key (the source's path, size and mtime) says ``source`` is the file it was made from, so this costs a
    read of the file where a rebuild would parse it again."""
    meta = {**meta, "source_sha256": sha256(*source)}
    _sweep(meta_path.parent, ("meta.json",))  # a whole cache is never rebuilt, so never swept there
    with atomic_write(meta_path, own=True) as f:
        f.write(json.dumps(meta, indent=1).encode())
    return meta


def is_sha256(value) -> bool:
    """Whether ``value`` is a SHA-256 as ``sha256`` writes it: 64 lowercase hex digits."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _open_arrays(where: Path, meta: dict, full: bool) -> tuple[dict[str, np.ndarray], str | None]:
    """The folder's arrays, each mapped from the descriptor its size and digests were checked on, or why not."""
    loaded = {}
    for name, dtype in ARRAYS.items():
        path, want = where / f"{name}.npy", meta["files"].get(f"{name}.npy")
        if not isinstance(want, dict):
            return {}, "prepared cache from another version"
        try:
            with open_regular(path, own=True) as f:
                if os.fstat(f.fileno()).st_size != want.get("bytes"):
                    return {}, f"prepared cache fails its checksum ({path.name} has another size)"
                if sample_digest(f) != want.get("sample") or (full and _sha256(f) != want.get("sha256")):
                    return {}, f"prepared cache fails its checksum ({path.name})"
                loaded[name] = _map(f, np.dtype(dtype))
        except OSError as e:  # FileRefused among them: a link, a FIFO
            return {}, f"unreadable prepared cache ({e})"
        except Exception as e:  # a foreign .npy behind a matching digest: any reader error means "rebuild"
            return {}, f"unreadable prepared cache ({type(e).__name__})"
    return loaded, _shape_problem(loaded, meta)


def _shape_problem(a: dict[str, np.ndarray], meta: dict) -> str | None:
    """Whether the arrays fit together and agree with meta.json: what the digests cannot promise if meta.json
    itself was rewritten. Vectorised over the maps: it reads the offsets and the split, never the points."""
    points, offsets, split = a["points"], a["offsets"], a["split"]
    if points.ndim != 2 or points.shape[1] != 3 or offsets.ndim != 1 or split.ndim != 1:  # types: ``_map``'s
        return "unreadable prepared cache (arrays of other shapes)"
    if not len(split) or len(offsets) != len(split) + 1 or offsets[0] != 0 or offsets[-1] != len(points):
        return "damaged prepared cache (its offsets do not span its points)"
    if meta.get("drawings") != len(split) or meta.get("points") != len(points):
        return "damaged prepared cache (meta.json counts other drawings or points than its arrays hold)"
    sizes = np.diff(offsets)
    if (sizes <= 0).any():
        j = int(np.argmax(sizes <= 0))
        return f"damaged prepared cache (drawing {j} has {'no points' if sizes[j] == 0 else 'offsets going back'})"
    if sizes.max() > MAX_POINTS:  # what a drawing may hold: one of millions would cost gigabytes where it is batched
        j = int(np.argmax(sizes > MAX_POINTS))
        return f"damaged prepared cache (drawing {j} has {sizes[j]} points, more than a drawing may have: {MAX_POINTS})"
    if split.min() < 0 or split.max() >= len(NPZ_ARRAYS):
        j = int(np.argmax((split < 0) | (split >= len(NPZ_ARRAYS))))
        return f"damaged prepared cache (drawing {j} is in split {split[j]}, not 0 to {len(NPZ_ARRAYS) - 1})"
    return None
