"""Checkpoint files: one ``.npz`` of arrays plus a JSON document, written atomically, verified on load, no pickle.

Layout of a refrl checkpoint (``format`` = ``refrl-checkpoint``, ``version`` 2)::

    __meta__          0-d unicode array: the JSON document (algorithm, config, env id,
                      seed, num_timesteps, spaces, optimiser scalars, rng state, ...), plus
                      "arrays": {name: {"dtype": "<f4", "shape": [n]}} for every array below and
                      "checksum": "sha256:<hex>" over the document and every array's bytes
    policy/<name>     ActorCritic.state_dict() arrays (flat parameters ...)
    optim/m, optim/v  Adam moments of the algorithm's optimiser (PPO: the joint one; TRPO/NPG:
                      the critic's); VPG adds its critic's as critic_optim/m, critic_optim/v
    obs_rms/mean|var|count, return_rms/mean|var|count     normalisation statistics
    <anything else>   extra arrays of an algorithm (its ``_extra_state``)

Reading never unpickles and never trusts a size it has not checked: the ``.npy`` header of every
zip member is read first and compared with the declared dtypes and shapes, with the member's size in
the zip directory and with ``max_bytes``; only then are the arrays read, and the checksum
recomputed.  Any problem raises :class:`CheckpointError` (a ``ValueError``) naming the file and the
problem in one line.  Version-1 files (written before the checksum existed) still load: their zip
CRCs, headers and sizes are verified, the checksum cannot be.

Writing goes to a hidden temporary file (``.NAME.XXXX.tmp``) in the same directory, which is
fsynced, renamed over the target with ``os.replace`` (atomic on POSIX and Windows), and the
directory fsynced, so a crash, kill -9 or Ctrl-C never leaves a half-written file under the real
name.  :func:`remove_temporaries` deletes the temporaries such an interruption leaves behind.
Files get the mode the umask gives (0644 under the usual 022).

Gym spaces are stored in the JSON as :func:`space_to_dict` describes them (Box, Discrete,
MultiDiscrete, MultiBinary, and a Dict of these with its key order) and rebuilt by
:func:`space_from_dict`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "MAX_BYTES", "VERSION", "CheckpointError", "load_checkpoint", "remove_temporaries",
           "save_checkpoint", "space_from_dict", "space_to_dict", "write_json_atomic", "write_text_atomic"]

FORMAT = "refrl-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_BYTES = 1 << 30  # arrays of one checkpoint, after inflation (pass max_bytes= to read larger ones)
_MAX_META_BYTES = 64 << 20
_MAX_INFLATION = 100  # refrl stores members uncompressed; a member inflating more than this is refused
_META_KEY = "__meta__"
_RESERVED = ("arrays", "checksum")
_DTYPE_KINDS = "biufcU"  # bool, integers, floats, complex, unicode (the JSON document)


class CheckpointError(ValueError):
    """A checkpoint file that is damaged, incomplete or not a refrl checkpoint.

    ``str(exc)`` is one line, ``path: FILE is damaged: PROBLEM``; ``exc.path`` is the file and
    ``exc.problem`` the part after "is" (``damaged: truncated zip``).
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path, self.problem = str(path), " ".join(str(problem).split())
        super().__init__(f"path: {self.path} is {self.problem}")

    def __reduce__(self):
        return type(self), (self.path, self.problem)


# ---------------------------------------------------------------------------- writing
def _file_mode() -> int:
    mask = os.umask(0)  # the only portable way to read the umask: set it and put it back
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write) -> Path:
    """Call ``write(binary_file)`` on a temporary beside ``path``, fsync it, rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _file_mode())  # mkstemp creates 0600 whatever the umask
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.XXXX.tmp`` files interrupted writes left in ``folder``; returns them."""
    removed = []
    for p in Path(folder).glob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _array_bytes(a: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


def _checksum(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the JSON document (without "checksum", sorted keys) and every array's name, dtype, shape, bytes."""
    h = hashlib.sha256(json.dumps({k: v for k, v in doc.items() if k != "checksum"}, sort_keys=True).encode())
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"\0{name}\0{a.dtype.str}\0{list(a.shape)}\0".encode())
        h.update(_array_bytes(a))
    return "sha256:" + h.hexdigest()


def save_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and the JSON-able ``meta`` to ``path`` (``.npz`` appended if missing), atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if _META_KEY in arrays:
        raise ValueError(f"arrays: the key {_META_KEY!r} is reserved")
    for k in _RESERVED:
        if k in meta:
            raise ValueError(f"meta: the key {k!r} is reserved")
    for k, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind not in _DTYPE_KINDS:
            raise TypeError(f"arrays[{k!r}]: expected a numeric ndarray, got "
                            f"{a.dtype if isinstance(a, np.ndarray) else type(a).__name__}")
    doc = {**meta, "format": FORMAT, "version": VERSION,
           "arrays": {k: {"dtype": a.dtype.str, "shape": list(a.shape)} for k, a in arrays.items()}}
    doc["checksum"] = _checksum(doc, arrays)
    text = json.dumps(doc, sort_keys=True)
    return _atomic_write(path, lambda fh: np.savez(fh, **{_META_KEY: np.array(text)}, **arrays))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return _atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------- reading
def _member_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, header length) of a .npy member, without reading its data."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        return shape, fortran, dtype, fh.tell()


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shape, fortran: bool, dtype: np.dtype) -> np.ndarray:
    count = math.prod(shape)
    buf = bytearray(count * dtype.itemsize)
    with zf.open(info) as fh:
        fh.seek(info.file_size - len(buf))  # the data follow the header (sizes checked by the caller)
        view, got = memoryview(buf), 0
        while got < len(buf):
            n = fh.readinto(view[got:])
            if not n:
                raise EOFError(f"member {info.filename!r} ends early")
            got += n
        if fh.read(1):  # reading to the end also makes zipfile check the member's CRC-32
            raise ValueError(f"member {info.filename!r} is longer than its header says")
    a = np.frombuffer(buf, dtype=dtype, count=count)
    return a.reshape(shape[::-1]).T if fortran else a.reshape(shape)


def _read(path: Path, max_bytes: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    def damaged(problem: str) -> CheckpointError:
        return CheckpointError(path, f"damaged: {problem}")

    size = path.stat().st_size
    if size == 0:
        raise damaged("empty file")
    with path.open("rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise CheckpointError(path, "not a refrl checkpoint (a single .npy array, not an .npz archive)")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        if magic.startswith(b"PK"):
            raise damaged(f"truncated zip (no end-of-archive record; {size} bytes)") from None
        raise CheckpointError(path, "not a refrl checkpoint (not a zip archive)") from None
    with zf:
        headers: dict[str, tuple] = {}
        total = 0
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise damaged(f"unexpected zip member {info.filename!r}")
            name = info.filename[: -len(".npy")]
            if name in headers:
                raise damaged(f"zip member {info.filename!r} appears twice")
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > _MAX_INFLATION * info.compress_size + (1 << 20):
                raise damaged(f"member {name!r} inflates {info.compress_size} -> {info.file_size} bytes")
            shape, fortran, dtype, hlen = _member_header(zf, info)
            if dtype.hasobject or dtype.kind not in _DTYPE_KINDS or dtype.fields is not None:
                raise CheckpointError(path, f"not a refrl checkpoint (member {name!r} has dtype {dtype}; "
                                            "refrl stores plain numeric arrays and never unpickles)")
            nbytes = math.prod(shape) * dtype.itemsize
            total += nbytes
            if total > max_bytes or (name == _META_KEY and nbytes > _MAX_META_BYTES):
                raise damaged(f"member {name!r} declares shape {shape} of {dtype} ({nbytes} bytes), "
                              f"over the limit of {max_bytes} bytes per checkpoint")
            if info.file_size != hlen + nbytes:
                raise damaged(f"member {name!r} holds {info.file_size - hlen} data bytes, its header "
                              f"declares {nbytes} (shape {shape} of {dtype})")
            headers[name] = (info, shape, fortran, dtype)
        if _META_KEY not in headers:
            raise CheckpointError(path, f"not a refrl checkpoint (no {_META_KEY})")
        info, shape, fortran, dtype = headers.pop(_META_KEY)
        if shape != () or dtype.kind != "U":
            raise damaged(f"{_META_KEY} is not a JSON text (shape {shape}, dtype {dtype})")
        text = str(_read_member(zf, info, shape, fortran, dtype)[()])
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise damaged(f"{_META_KEY} is not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise damaged(f"{_META_KEY} is a JSON {type(doc).__name__}, not an object")
        if doc.get("format") != FORMAT:
            raise CheckpointError(path, f"not a refrl checkpoint (format {doc.get('format')!r}, expected {FORMAT!r})")
        version = doc.get("version")
        if version not in READABLE_VERSIONS:
            raise CheckpointError(path, f"from another refrl (checkpoint version {version!r}; this refrl reads "
                                        f"{', '.join(map(str, READABLE_VERSIONS))})")
        if version >= 2:
            declared = doc.get("arrays")
            if not isinstance(declared, dict) or not isinstance(doc.get("checksum"), str):
                raise damaged("the JSON document lacks its array list or checksum")
            if set(declared) != set(headers):
                missing, extra = sorted(set(declared) - set(headers)), sorted(set(headers) - set(declared))
                raise damaged(f"missing arrays {missing}" if missing else f"undeclared arrays {extra}")
            for name, (_, shape, _, dtype) in headers.items():
                d = declared[name]
                if not isinstance(d, dict) or d.get("dtype") != dtype.str or d.get("shape") != list(shape):
                    raise damaged(f"array {name!r} is {dtype.str} {list(shape)}, the document declares {d}")
        arrays = {name: _read_member(zf, *h) for name, h in headers.items()}
    if version >= 2:
        found = _checksum(doc, arrays)
        if found != doc["checksum"]:
            raise damaged(f"checksum mismatch (stored {doc['checksum'][:19]}..., content {found[:19]}...)")
    for k in _RESERVED:
        doc.pop(k, None)
    return arrays, doc


def load_checkpoint(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`: ``(arrays, meta)``; never unpickles.

    Raises FileNotFoundError if there is no file, :class:`CheckpointError` for anything else wrong.
    """
    path = Path(path)
    if not path.exists() and path.suffix != ".npz" and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {str(path)!r}")
    try:
        return _read(path, max_bytes)
    except CheckpointError:
        raise
    except zipfile.BadZipFile as exc:  # e.g. "Bad CRC-32 for file 'policy/params.npy'"
        raise CheckpointError(path, f"damaged: {exc}") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, OverflowError, NotImplementedError, RuntimeError,
            UnicodeError, MemoryError, zlib.error, struct.error) as exc:  # RuntimeError: an encrypted member
        raise CheckpointError(path, f"damaged: {type(exc).__name__}: {exc}") from None


def space_to_dict(space) -> dict:
    """JSON-able description of a Box / Discrete / MultiDiscrete / MultiBinary space, or a Dict of
    them (its entries as [key, space] pairs, in the space's order) (no pickle)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).name,
            "low": space.low.reshape(-1).astype(np.float64).tolist(),
            "high": space.high.reshape(-1).astype(np.float64).tolist(),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.tolist(),
            "start": np.asarray(space.start).tolist(),
        }
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "shape": [int(k) for k in space.shape]}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": [[str(key), space_to_dict(sub)] for key, sub in space.spaces.items()]}
    raise ValueError(f"space_to_dict: unsupported 'space' {space!r}")


def space_from_dict(d: dict):
    """The space described by :func:`space_to_dict` (ValueError for an unknown type)."""
    from gymnasium import spaces

    kind = d.get("type")
    if kind == "Box":
        shape = tuple(d["shape"])
        dtype = np.dtype(d["dtype"])
        low = np.asarray(d["low"], dtype=np.float64).reshape(shape)
        high = np.asarray(d["high"], dtype=np.float64).reshape(shape)
        return spaces.Box(low=low.astype(dtype), high=high.astype(dtype), shape=shape, dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(np.asarray(d["nvec"], dtype=np.int64), start=np.asarray(d["start"], dtype=np.int64))
    if kind == "MultiBinary":
        shape = [int(k) for k in d["shape"]]
        return spaces.MultiBinary(shape[0] if len(shape) == 1 else shape)
    if kind == "Dict":  # a list of (key, space) pairs keeps the saved order
        return spaces.Dict([(str(key), space_from_dict(sub)) for key, sub in d["spaces"]])
    raise ValueError(f"space_from_dict: unsupported space type {kind!r}")
