"""Checkpoint files (one ``.npz`` of arrays plus a JSON document, written atomically, no pickle)
and the JSON description of gymnasium spaces that the checkpoint's policy configuration holds.

Layout of a refrl checkpoint (``format`` = ``refrl-checkpoint``, ``version`` 1)::

    __meta__          0-d unicode array: the JSON document (algorithm, config, env id,
                      seed, num_timesteps, spaces, rng state, ...; ``extra``: the algorithm's
                      scalars, with each optimiser's t, lr, beta1, beta2, eps under its prefix)
    policy/<name>     ActorCritic.state_dict() arrays (flat parameters ...)
    optim/m, optim/v  Adam moments of the algorithm's optimiser (PPO: the joint one; TRPO/NPG:
                      the critic's); VPG adds its critic's as critic_optim/m, critic_optim/v
    obs_rms/mean|var|count, return_rms/mean|var|count     normalisation statistics
    <anything else>   extra arrays of an algorithm (its ``_extra_state``)

Gym spaces are stored in the JSON as :func:`space_to_dict` describes them (Box, Discrete,
MultiDiscrete) and rebuilt by :func:`space_from_dict`.

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

__all__ = [
    "FORMAT", "VERSION", "load_checkpoint", "save_checkpoint", "space_from_dict", "space_to_dict", "write_json_atomic",
]

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


def space_to_dict(space) -> dict:
    """JSON-able description of a Box / Discrete / MultiDiscrete space (no pickle)."""
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
    raise ValueError(f"space_from_dict: unsupported space type {kind!r}")
