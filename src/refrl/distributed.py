"""Data-parallel communication: one process per core (MPI rank), each with its own environments.

Everything here sits below the algorithms and knows nothing of them: the algorithms ask
:func:`world` for a communicator and call the few collective operations below at their
synchronisation points (docs/distributed.md lists them).  Two communicators share one interface:

* :class:`SerialComm` -- size 1, rank 0, every reduction the identity.  Used when the process was
  not started by an MPI launcher, when the launcher started one process, or when mpi4py is not
  installed; it costs nothing and changes no number, so a one-process run is exactly today's run.
* :class:`MPIComm` -- mpi4py's ``COMM_WORLD``; imported lazily, only when it is needed.

Conventions
-----------
``r`` runs over the ranks 0 .. K-1.  refrl's losses are *weighted means* over a rank's samples,
``L_r = sum_i w_i l_i / W_r`` with ``W_r = sum_i w_i`` (reset slots and padding weigh 0), so ranks
hold different amounts of real data; the global loss over the concatenated data is
``L = sum_r W_r L_r / sum_r W_r`` and its gradient is ``sum_r W_r g_r / sum_r W_r``
(:meth:`weighted_mean`).  A plain average of the ranks' gradients would weigh a rank with few real
samples as much as one with many.

Error protocol
--------------
Collective operations block until every rank has called them, so a rank that raises and leaves
the others waiting would hang the job.  Two layers prevent that:

1. :meth:`MPIComm.guard` -- a context manager around a region that contains *no* collective
   call (rollout collection, loading a checkpoint, building the environment).  On leaving the
   region every rank takes part in one status check (an allreduce of an int flag; only when a rank
   failed, an allgather of the failure messages).  If any rank failed, every rank raises: the
   failing rank re-raises its own exception, the others raise :class:`RemoteRankError` carrying
   the failing rank's number and message.  All ranks then unwind together, close their
   environments and exit non-zero.
2. An ``excepthook`` installed when the MPI communicator is created: an exception that escapes
   to the top level *outside* a guarded region (for example inside ``train()``, between two
   allreduces, where the other ranks already wait in the next collective and no status check can
   be matched) prints its traceback and calls ``MPI_Abort``, which makes the launcher kill every
   rank.  Exceptions that were already synchronised by a guard exit normally instead.

What neither layer can catch: a rank that hangs (an endless loop, a blocked environment) -- the
others wait for it in the next collective; a rank killed hard (segfault, out-of-memory kill) is
left to the launcher, which Open MPI's ``mpirun`` and SLURM's ``srun`` do by ending the job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import traceback
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ENV_VAR",
    "ConfigMismatchError",
    "MPIComm",
    "RemoteRankError",
    "SerialComm",
    "WeightedMean",
    "config_hash",
    "launched_size",
    "rank_seed",
    "rank_seed_sequence",
    "world",
]

#: ``REFRL_DISTRIBUTED=1`` asks for MPI (an error if it cannot be had), ``0`` forces one process,
#: unset: MPI exactly when an MPI launcher started more than one process.
ENV_VAR = "REFRL_DISTRIBUTED"

#: Environment variables through which MPI launchers announce the number of processes:
#: Open MPI's ``mpirun``/``prterun``, and the PMI of MPICH/Intel MPI's ``mpiexec`` and SLURM.
_LAUNCHER_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")

_INSTALL_HINT = 'pip install "refrl[mpi]"'


class WeightedMean(NamedTuple):
    """``mean = sum_r w_r g_r / sum_r w_r`` and ``weight = sum_r w_r`` (identical on every rank)."""

    mean: np.ndarray
    weight: float


class RemoteRankError(RuntimeError):
    """Raised on every rank when another rank failed inside a guarded region."""

    def __init__(self, rank: int, message: str) -> None:
        super().__init__(f"rank {rank} failed: {message}")
        self.rank = rank
        self.message = message


class ConfigMismatchError(RuntimeError):
    """Raised on every rank when the ranks were started with different configurations."""


# ---------------------------------------------------------------------------------------- checks
def _flat_float(x: Any, name: str, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{what}: '{name}' must be a float32 or float64 numpy array, got "
                        f"{type(x).__name__}{'' if not isinstance(x, np.ndarray) else ' of ' + str(x.dtype)}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{what}: '{name}' must be C-contiguous (a flat vector or a slice of one)")
    return x


def _float64(x: Any, name: str, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(f"{what}: '{name}' must be a float64 numpy array, got "
                        f"{type(x).__name__}{'' if not isinstance(x, np.ndarray) else ' of ' + str(x.dtype)}")
    return x


def _weight(w: Any, what: str) -> float:
    if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what}: 'w' must be a real number (the sum of the sample weights), got {type(w).__name__}")
    w = float(w)
    if not np.isfinite(w) or w < 0:
        raise ValueError(f"{what}: 'w' must be finite and >= 0, got {w}")
    return w


def _stable_repr(obj: Any) -> str:
    """repr without memory addresses (a schedule function's repr differs per process otherwise)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def _canonical_json(config: Mapping[str, Any]) -> str:
    if not isinstance(config, Mapping):
        raise TypeError(f"check_config: 'config' must be a mapping (e.g. Config.to_dict()), got {type(config).__name__}")
    return json.dumps(config, sort_keys=True, default=_stable_repr, separators=(",", ":"))


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` (keys sorted; non-JSON values by their repr
    without memory addresses, so that e.g. the same schedule function hashes alike on every rank)."""
    return hashlib.sha256(_canonical_json(config).encode()).hexdigest()


def _mismatch_message(texts: list[str]) -> str:
    docs = [json.loads(t) for t in texts]
    lines = [f"the ranks were started with different configurations (config hash: "
             + ", ".join(f"rank {r} {hashlib.sha256(t.encode()).hexdigest()[:12]}" for r, t in enumerate(texts)) + ")"]
    keys = sorted(set().union(*docs))
    for k in keys:
        vals = [d.get(k, "<missing>") for d in docs]
        if any(v != vals[0] for v in vals[1:]):
            lines.append(f"  {k}: " + ", ".join(f"rank {r} = {v!r}" for r, v in enumerate(vals)))
    lines.append("start every rank with the same command line and hyperparameters")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- serial
class SerialComm:
    """One process: size 1, rank 0; every reduction returns its input (no copy, no communication)."""

    size = 1
    rank = 0
    is_root = True
    is_distributed = False

    def broadcast_(self, x: np.ndarray) -> np.ndarray:
        """x <- x of rank 0, in place (here: nothing to do)."""
        return _flat_float(x, "x", "broadcast_")

    def weighted_mean(self, g: np.ndarray, w: float) -> WeightedMean:
        """sum_r w_r g_r / sum_r w_r over one rank: g itself (not copied), weight w."""
        return WeightedMean(_flat_float(g, "g", "weighted_mean"), _weight(w, "weighted_mean"))

    def average_(self, g: np.ndarray, w: float, stats: np.ndarray | None = None) -> tuple[float, np.ndarray | None]:
        """g <- sum_r w_r g_r / sum_r w_r in place, stats likewise; one rank: nothing to do.

        Returns ``(sum_r w_r, stats)``: here ``(w, stats)`` as given (no copy, no arithmetic).
        """
        return w, stats

    def sum(self, x: np.ndarray) -> np.ndarray:
        """sum_r x_r over one rank: x itself."""
        return _float64(x, "x", "sum")

    def max(self, x: np.ndarray) -> np.ndarray:
        """Elementwise max_r x_r over one rank: x itself."""
        return _float64(x, "x", "max")

    def max_int(self, n: int) -> int:
        """max_r n_r of integers."""
        return int(n)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's (JSON-able) value on every rank: obj itself."""
        return obj

    def agree(self, message: str | None) -> str | None:
        """The first rank's problem report (None when no rank has one): message itself."""
        return message

    def synchronised(self, exc: BaseException) -> BaseException:
        """Mark ``exc`` as raised on every rank by one global decision (no abort needed)."""
        return exc

    def abort_on_error(self) -> contextlib.AbstractContextManager[None]:
        """A region with collective calls (one process: nothing to guard)."""
        return contextlib.nullcontext()

    def gather(self, x: np.ndarray) -> np.ndarray:
        """Every rank's float64 array of one shape, stacked in rank order: ``x[None]`` (a view)."""
        return _float64(x, "x", "gather")[np.newaxis]

    def concat(self, x: np.ndarray) -> np.ndarray:
        """The ranks' 1-D float64 arrays concatenated in rank order: x itself."""
        x = _float64(x, "x", "concat")
        if x.ndim != 1:
            raise ValueError(f"concat: 'x' must be 1-D, got shape {x.shape}")
        return x

    def any(self, flag: bool) -> bool:
        """OR over the ranks."""
        return bool(flag)

    def all(self, flag: bool) -> bool:
        """AND over the ranks."""
        return bool(flag)

    def sum_int(self, n: int) -> int:
        """sum_r n_r of integers (e.g. the transitions collected)."""
        return int(n)

    def check_config(self, config: Mapping[str, Any]) -> str:
        """Hash of ``config`` (one rank cannot disagree with itself)."""
        return config_hash(config)

    def check_identical(self, x: np.ndarray, what: str = "array") -> None:
        """Raise on every rank unless ``x`` is bit-identical on all ranks (here: always is)."""
        np.asarray(x)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """A region whose errors every rank learns of at its end (one process: plain Python)."""
        yield


# ---------------------------------------------------------------------------------------- MPI
class MPIComm:
    """mpi4py's ``COMM_WORLD`` (or a given communicator), with the operations refrl needs.

    Every method is collective: every rank must call it, in the same order.  Buffers go through
    mpi4py's buffer interface (``Allreduce``/``Bcast``: no pickling) except the once-per-run
    configuration check and the failure messages of :meth:`guard`.
    """

    is_distributed = True

    def __init__(self, comm: Any = None) -> None:
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.size = int(self.comm.Get_size())
        self.rank = int(self.comm.Get_rank())
        self.is_root = self.rank == 0
        self._synchronised: BaseException | None = None

    def broadcast_(self, x: np.ndarray) -> np.ndarray:
        """x <- x of rank 0, in place, bit for bit (one ``Bcast``).  Returns x."""
        _flat_float(x, "x", "broadcast_")
        self.comm.Bcast(x, root=0)
        return x

    def weighted_mean(self, g: np.ndarray, w: float) -> WeightedMean:
        """mean = sum_r w_r g_r / sum_r w_r, weight = sum_r w_r, in ONE allreduce.

        ``g`` is this rank's gradient of its weighted-mean loss, ``w`` the sum of its sample
        weights (0 for a rank without real samples).  The buffer [w g, w] is summed in float64
        (so float32 gradients lose nothing in the sum), divided by the summed weight, and returned
        in g's dtype.  When the total weight is 0 the mean is undefined: zeros are returned and
        ``weight == 0`` on every rank, so the caller's skip is the same decision everywhere.
        """
        _flat_float(g, "g", "weighted_mean")
        w = _weight(w, "weighted_mean")
        n = g.size
        buf = np.zeros(n + 1, dtype=np.float64)
        if w > 0:  # a rank without real samples contributes exact zeros, whatever g holds (NaN from 0/0)
            np.multiply(g.reshape(-1), w, out=buf[:n])
            buf[n] = w
        self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        total = float(buf[n])
        mean = buf[:n] / total if total > 0 else np.zeros(n)
        return WeightedMean(mean.astype(g.dtype, copy=False).reshape(g.shape), total)

    def average_(self, g: np.ndarray, w: float, stats: np.ndarray | None = None) -> tuple[float, np.ndarray | None]:
        """g <- sum_r w_r g_r / sum_r w_r in place (and the float64 ``stats`` likewise), in ONE allreduce.

        The gradient step's reduction: ``g`` is this rank's gradient of its weighted-mean loss (e.g.
        ``policy.grads``), ``w`` the sum of its sample weights, ``stats`` the rank's weighted-mean
        statistics of the same minibatch (losses, KL, clip fraction), averaged with the same weights
        in the same message.  A rank with ``w == 0`` contributes exact zeros whatever ``g`` and
        ``stats`` hold.  The sum is float64; ``g`` keeps its dtype.  Returns ``(sum_r w_r,
        global stats)``; when the total weight is 0, ``g`` and the stats are set to 0 on every rank.
        """
        _flat_float(g, "g", "average_")
        w = _weight(w, "average_")
        n, k = g.size, 0 if stats is None else len(stats)
        buf = np.zeros(n + k + 1, dtype=np.float64)
        if w > 0:
            np.multiply(g.reshape(-1), w, out=buf[:n])
            if k:
                np.multiply(np.asarray(stats, dtype=np.float64), w, out=buf[n:n + k])
            buf[n + k] = w
        self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        total = float(buf[n + k])
        if total > 0:
            buf[: n + k] /= total
        g.reshape(-1)[...] = buf[:n]
        return total, (None if stats is None else buf[n:n + k].copy())

    def max(self, x: np.ndarray) -> np.ndarray:
        """Elementwise max_r x_r of a float64 array (one allreduce; a new array)."""
        _float64(x, "x", "max")
        out = np.ascontiguousarray(x).copy()
        self.comm.Allreduce(self._MPI.IN_PLACE, out, op=self._MPI.MAX)
        return out

    def max_int(self, n: int) -> int:
        """max_r n_r of integers (int64)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"max_int: 'n' must be an integer, got {type(n).__name__}")
        buf = np.array([n], dtype=np.int64)
        self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.MAX)
        return int(buf[0])

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's value (a small JSON-able object: a path, a step count) on every rank."""
        return json.loads(self.comm.bcast(json.dumps(obj) if self.is_root else None, root=0))

    def agree(self, message: str | None) -> str | None:
        """A global verdict from local checks: the first rank's report ``"rank r: message"``, or None.

        One allreduce of a flag; only when some rank has a problem, an allgather of the reports.
        Every rank gets the same answer, so every rank takes the same branch.
        """
        if self._count(int(message is not None)) == 0:
            return None
        messages = self.comm.allgather(message)
        first = next(r for r, m in enumerate(messages) if m is not None)
        return f"rank {first}: {messages[first]}"

    def synchronised(self, exc: BaseException) -> BaseException:
        """Mark ``exc`` as raised on every rank by one global decision, so that it ends the ranks
        normally (no ``MPI_Abort``).  Returns exc."""
        self._synchronised = exc
        return exc

    @contextlib.contextmanager
    def abort_on_error(self) -> Iterator[None]:
        """A region with collective calls (the training loop): an exception that is not raised on
        every rank alike (:meth:`synchronised`, :meth:`guard`'s, a config mismatch) cannot be met by
        the other ranks, who wait in the next collective; print it and abort the job at once."""
        try:
            yield
        except BaseException as exc:
            if exc is self._synchronised or isinstance(exc, (RemoteRankError, ConfigMismatchError)):
                raise
            traceback.print_exc()
            print(f"refrl: rank {self.rank} of {self.size} stopped by {type(exc).__name__} between collective "
                  "operations; aborting every rank (MPI_Abort)", file=sys.stderr)
            self.abort(1)
            raise

    def sum(self, x: np.ndarray) -> np.ndarray:
        """sum_r x_r of a float64 array of statistics (one allreduce; a new array)."""
        _float64(x, "x", "sum")
        out = np.ascontiguousarray(x).copy()
        self.comm.Allreduce(self._MPI.IN_PLACE, out, op=self._MPI.SUM)
        return out

    def gather(self, x: np.ndarray) -> np.ndarray:
        """Every rank's float64 array (same shape on all ranks) stacked in rank order: [K, *x.shape].

        One ``Allgather``; every rank receives the same bytes, so any arithmetic done on the
        result in rank order gives bit-identical results on all ranks.
        """
        x = np.ascontiguousarray(_float64(x, "x", "gather"))
        out = np.empty((self.size, *x.shape), dtype=np.float64)
        self.comm.Allgather(x, out)
        return out

    def concat(self, x: np.ndarray) -> np.ndarray:
        """The ranks' 1-D float64 arrays (lengths may differ) concatenated in rank order."""
        x = np.ascontiguousarray(_float64(x, "x", "concat"))
        if x.ndim != 1:
            raise ValueError(f"concat: 'x' must be 1-D, got shape {x.shape}")
        counts = np.array(self.comm.allgather(int(x.size)), dtype=np.int64)
        out = np.empty(int(counts.sum()), dtype=np.float64)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.comm.Allgatherv(x, [out, counts, displs, self._MPI.DOUBLE])
        return out

    def _count(self, n: int) -> int:
        buf = np.array([n], dtype=np.int64)
        self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        return int(buf[0])

    def any(self, flag: bool) -> bool:
        """OR over the ranks: sum_r [flag_r] > 0."""
        return self._count(int(bool(flag))) > 0

    def all(self, flag: bool) -> bool:
        """AND over the ranks: sum_r [flag_r] == K."""
        return self._count(int(bool(flag))) == self.size

    def sum_int(self, n: int) -> int:
        """sum_r n_r of integers (int64)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"sum_int: 'n' must be an integer, got {type(n).__name__}")
        return self._count(int(n))

    def check_config(self, config: Mapping[str, Any]) -> str:
        """Stop every rank with :class:`ConfigMismatchError` unless all ranks hold the same config.

        The canonical JSON of each rank's config is gathered (once per run); on a mismatch the
        message names the differing keys and each rank's value.  Returns the config hash.
        """
        text = _canonical_json(config)
        texts = self.comm.allgather(text)
        if any(t != texts[0] for t in texts[1:]):
            exc = ConfigMismatchError(_mismatch_message(texts))
            self._synchronised = exc
            raise exc
        return config_hash(config)

    def check_identical(self, x: np.ndarray, what: str = "array") -> None:
        """Raise on every rank unless ``x`` has the same bytes on all ranks (a SHA-256 per rank)."""
        digest = hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
        digests = self.comm.allgather(digest)
        if any(d != digests[0] for d in digests[1:]):
            bad = [r for r, d in enumerate(digests) if d != digests[0]]
            exc = RuntimeError(f"{what} differs between ranks: ranks {bad} differ from rank 0")
            self._synchronised = exc
            raise exc

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run a region that contains no collective call; on leaving it, every rank learns of failures.

        One allreduce of a failure flag per use; only if some rank failed, an allgather of the
        messages (``"ValueError: ..."``, the first failing rank's is reported).  The failing rank
        re-raises its own exception, every other rank raises :class:`RemoteRankError`.
        """
        failure: BaseException | None = None
        try:
            yield
        except BaseException as exc:  # noqa: BLE001 -- every failure is reported, then re-raised
            failure = exc
        if self._count(int(failure is not None)) == 0:
            return
        message = None if failure is None else f"{type(failure).__name__}: {failure}"
        messages = self.comm.allgather(message)
        first = next(r for r, m in enumerate(messages) if m is not None)
        if failure is not None:
            self._synchronised = failure
            raise failure
        exc = RemoteRankError(first, messages[first])
        self._synchronised = exc
        raise exc

    def abort(self, code: int = 1) -> None:
        """End every rank at once (``MPI_Abort``): the last resort when ranks cannot meet."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)

    def excepthook(self, exc_type, exc, tb) -> None:
        """Uncaught exception: print it; abort the job unless every rank already knows of it."""
        sys.__excepthook__(exc_type, exc, tb)
        if exc is self._synchronised or isinstance(exc, (RemoteRankError, ConfigMismatchError)):
            return  # every rank raises it: each exits non-zero by itself
        print(f"refrl: rank {self.rank} of {self.size} stopped by an uncaught {exc_type.__name__}; "
              "aborting every rank (MPI_Abort)", file=sys.stderr)
        self.abort(1)


# ---------------------------------------------------------------------------------------- world
def launched_size() -> int:
    """The number of processes an MPI launcher announced in the environment (1 when none did)."""
    for var in _LAUNCHER_SIZE_VARS:
        value = os.environ.get(var)
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                continue
    return 1


def _requested(distributed: bool | None) -> bool | None:
    if distributed is not None:
        if not isinstance(distributed, bool):
            raise TypeError(f"distributed: expected True, False or None, got {distributed!r}")
        return distributed
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{ENV_VAR}: expected 1/0/true/false/auto, got {os.environ[ENV_VAR]!r}")


_SERIAL = SerialComm()
_MPI_WORLD: MPIComm | None = None


def world(distributed: bool | None = None) -> SerialComm | MPIComm:
    """The communicator of this process (the MPI one is created once, then cached).

    ``distributed`` (or the ``REFRL_DISTRIBUTED`` environment variable when it is None):
    ``False`` -> :class:`SerialComm`; ``None`` (auto) -> :class:`MPIComm` when an MPI launcher
    started more than one process and mpi4py is installed, else :class:`SerialComm` (with a
    warning when a launcher started several processes but mpi4py is missing: they would train
    independently); ``True`` -> MPI is asked for even when no launcher variable is set (e.g.
    ``srun`` with PMIx), and ``ImportError`` naming ``pip install "refrl[mpi]"`` if a launcher
    started several processes but mpi4py is missing.  A world of size 1 is always the serial
    communicator.
    """
    global _MPI_WORLD
    want = _requested(distributed)
    if want is False:
        return _SERIAL
    launched = launched_size()
    if want is None and launched <= 1:
        return _SERIAL
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if want is True and launched > 1:
            raise ImportError(
                f"MPI was requested and {launched} processes were launched, but mpi4py is not installed: "
                f"{_INSTALL_HINT}") from exc
        if launched > 1:
            warnings.warn(
                f"an MPI launcher started {launched} processes but mpi4py is not installed: each process "
                f"trains alone on the same seed. {_INSTALL_HINT}", UserWarning, stacklevel=2)
        return _SERIAL
    if _MPI_WORLD is None:
        if MPI.COMM_WORLD.Get_size() <= 1:
            return _SERIAL
        _MPI_WORLD = MPIComm()
        sys.excepthook = _MPI_WORLD.excepthook
    return _MPI_WORLD


# ---------------------------------------------------------------------------------------- seeds
def rank_seed_sequence(seed: int | np.random.SeedSequence, rank: int, size: int) -> np.random.SeedSequence:
    """This rank's independent stream: ``SeedSequence(seed).spawn(size)[rank]``; ``size == 1``: the seed's own.

    Built without spawning (a given SeedSequence is not advanced), so calling it twice gives the
    same stream.  With one process the stream is the one a serial run draws today.
    """
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: expected an integer >= 1, got {size!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < size:
        raise ValueError(f"rank: expected an integer in [0, {size}), got {rank!r}")
    if size == 1:
        return seq
    return np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, seq.n_children_spawned + int(rank)),
                                  pool_size=seq.pool_size)


def rank_seed(seed: int, rank: int, size: int) -> int:
    """An integer environment seed for this rank (``seed`` itself with one process).

    For K > 1 ranks: the first 32-bit word of :func:`rank_seed_sequence`'s state, so no two ranks
    reset their environments into the same episodes.
    """
    if size == 1:
        return int(seed)
    return int(rank_seed_sequence(seed, rank, size).generate_state(1, dtype=np.uint32)[0])

