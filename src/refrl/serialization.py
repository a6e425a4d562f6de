"""Checkpoint files: one ``.npz`` of arrays plus a JSON document, written atomically, no pickle.

Layout of a refrl checkpoint (``format`` = ``refrl-checkpoint``, ``version`` 1)::

    __meta__          0-d unicode array: the JSON document (algorithm, config, env id,
                      seed, num_timesteps, spaces, optimiser scalars, rng state, ...)
    policy/<name>     ActorCritic.state_dict() arrays (flat parameters ...)
    optim/<name>      optimiser state arrays (Adam moments m, v ...)
    obs_rms/mean|var|count, return_rms/mean|var|count     normalisation statistics
    <anything else>   extra arrays of an algorithm (its ``_extra_state``)

Reading uses ``np.load(..., allow_pickle=False)``: a file cannot run code when opened.
Writing goes to a temporary file in the same directory, then ``os.replace`` (atomic on
POSIX and Windows), so a crash or Ctrl-C never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "VERSION", "load_checkpoint", "save_checkpoint", "write_json_atomic"]

FORMAT = "refrl-checkpoint"
VERSION = 1
_META_KEY = "__meta__"


def _atomic_target(path: Path, suffix: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    return os.fdopen(fd, "wb"), Path(tmp)


def save_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and the JSON-able ``meta`` to ``path`` (``.npz`` appended if missing), atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if _META_KEY in arrays:
        raise ValueError(f"arrays: the key {_META_KEY!r} is reserved")
    for k, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype == object:
            raise TypeError(f"arrays[{k!r}]: expected a numeric ndarray, got {type(a).__name__}")
    doc = {"format": FORMAT, "version": VERSION, **meta}
    text = json.dumps(doc, sort_keys=True)
    fh, tmp = _atomic_target(path, ".tmp")
    try:
        with fh:
            np.savez(fh, **{_META_KEY: np.array(text)}, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(arrays, meta)``; never unpickles."""
    path = Path(path)
    if not path.exists() and path.suffix != ".npz" and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {str(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as exc:
        raise ValueError(f"path: {str(path)!r} is not a readable refrl checkpoint ({exc})") from None
    if _META_KEY not in arrays:
        raise ValueError(f"path: {str(path)!r} is not a refrl checkpoint (no {_META_KEY})")
    meta = json.loads(str(arrays.pop(_META_KEY)))
    if meta.get("format") != FORMAT:
        raise ValueError(f"path: {str(path)!r} has format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise ValueError(f"path: {str(path)!r} has checkpoint version {meta.get('version')!r}; this refrl reads {VERSION}")
    return arrays, meta


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    path = Path(path)
    fh, tmp = _atomic_target(path, ".tmp")
    try:
        with fh:
            fh.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
