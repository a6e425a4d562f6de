"""Run directories for the command line: ``refrl train | eval | plot``.

A run directory holds::

    config.json              algorithm, env id, seed, step budget, every hyperparameter
    metrics.csv              one row per update (SB3 metric names)
    model.npz                the final model (refrl checkpoint: .npz + JSON, atomic, no pickle)
    checkpoints/step_*.npz   periodic checkpoints (the last ``keep`` are kept); --resume uses the newest
    eval.json                the evaluation printed at the end of training
    .lock                    "pid host" of the process writing into the directory (fcntl.flock)

Only one process writes into a run directory (a second one is refused, naming the holder); a new
run into a non-empty directory needs ``--overwrite``.  SIGINT, SIGTERM or SIGUSR1 finishes the current
update, writes a checkpoint and the model, and exits with 128 + the signal number; a second signal
aborts at once.  A diverging run (refrl.TrainingDiverged) saves its last healthy update as the newest
checkpoint, prints one line naming the problem and exits with 3.  ``--resume`` removes the temporaries of interrupted writes, takes the newest
checkpoint that verifies (renaming damaged newer ones to ``*.damaged``) and cuts ``metrics.csv``
back to that checkpoint's step.  docs/reliability.md states these promises and their tests.

Under MPI (``mpirun -np K refrl train ...``) every rank trains; rank 0 alone takes the lock,
checks and cleans the directory, writes every file and prints; its failures there stop every rank
(``refrl.distributed``'s guard).  A stop signal reaching any rank stops every rank after the same
update.  ``--resume`` resumes every rank from the checkpoint rank 0 chose (the run directory must
be visible to every rank, as on a shared filesystem).
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["eval_run", "parse_overrides", "plot_runs", "resolve_hyperparameters", "train_run"]


#: exit status of ``refrl train`` when the health guard stopped a diverging run
EXIT_DIVERGED = 3


class UsageError(ValueError):
    """A bad command-line input (printed as ``refrl <cmd>: error: ...``, exit status 2)."""


def parse_value(text: str) -> Any:
    """``--set`` values: JSON (1e-3, true, null, [64, 64]) or Python literals (True, None, (64, 64)), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set: expected key=value, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def resolve_hyperparameters(algo: str, env_id: str, *, tuned: bool, config_file: str | None,
                            overrides: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """tuned defaults (RL Zoo) < config file < --set.  Returns (hyperparameters, steps from the sources)."""
    from refrl.config import tuned_defaults, tuned_steps

    hp: dict[str, Any] = tuned_defaults(algo, env_id) if tuned else {}
    steps = tuned_steps(algo, env_id) if tuned else None
    if config_file is not None:
        try:
            doc = json.loads(Path(config_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"--config: cannot read {config_file!r} as JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise UsageError(f"--config: expected a JSON object, got {type(doc).__name__}")
        # accept both a flat {name: value} file and a run's config.json
        if "hyperparameters" in doc:
            steps = doc.get("steps", steps)
            doc = doc["hyperparameters"]
        hp.update(doc)
    hp.update(overrides)
    return hp, steps


def _latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = sorted((run_dir / "checkpoints").glob("step_*.npz"))
    return ckpts[-1] if ckpts else None


class _StopOnSignals:
    """First SIGINT, SIGTERM or SIGUSR1: finish the current update, save, stop (exit status 128 + signal).
    A second one: abort at once (``_Aborted``); the atomic writers remove their temporary, so no
    file under its real name is ever half-written."""

    # SIGUSR1 too: Open MPI's mpirun forwards it to every rank (SIGTERM to mpirun kills the ranks)
    SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None))
                    if s is not None)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            print(f"\nrefrl: {name} again: aborting without saving", file=sys.stderr, flush=True)
            raise _Aborted(signum)
        self.signum = signum
        print(f"\nrefrl: {name}: stopping after this update and saving (send it again to abort)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


class _Aborted(BaseException):
    """A second stop signal (a BaseException, so that no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _RunLock:
    """An exclusive ``fcntl.flock`` on ``DIR/.lock`` (holding "pid host") while a run writes into DIR."""

    NAME = ".lock"

    def __init__(self, run_dir: Path, flag: str) -> None:
        self.path, self.flag, self._fh = run_dir / self.NAME, flag, None

    def __enter__(self) -> _RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        import os
        import socket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().split() or ["?", "?"]
            fh.close()
            raise UsageError(f"{self.flag}: {str(self.path.parent)!r} is in use by process {holder[0]} on "
                             f"{holder[-1]} (it holds {str(self.path)!r}); wait for it to end or choose another "
                             "directory") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} {socket.gethostname()}\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()  # releases the lock; the file stays (removing it would race with a new holder)
            self._fh = None


# the files a run writes into its directory (--overwrite removes these and nothing else)
_RUN_FILES = ("config.json", "metrics.csv", "model.npz", "eval.json")


def _clean_temporaries(run_dir: Path) -> None:
    from refrl.serialization import remove_temporaries

    for folder in (run_dir, run_dir / "checkpoints"):
        if folder.is_dir():
            for p in remove_temporaries(folder):
                print(f"refrl: removed {p}, left by an interrupted write", file=sys.stderr)


def _newest_valid_checkpoint(run_dir: Path, verbose: int, distributed: bool | None = None):
    """Load the newest checkpoint that verifies; rename the damaged newer ones to ``*.damaged``."""
    from refrl.algos import load
    from refrl.serialization import CheckpointError

    ckpts = sorted((run_dir / "checkpoints").glob("step_*.npz"))
    if not ckpts:
        raise UsageError(f"--resume: no checkpoint in {str(run_dir / 'checkpoints')!r}")
    for ckpt in reversed(ckpts):
        try:
            return ckpt, load(ckpt, verbose=verbose, distributed=distributed)
        except CheckpointError as exc:
            aside = ckpt.with_name(ckpt.name + ".damaged")
            ckpt.replace(aside)  # out of the step_*.npz glob, so that pruning and later resumes ignore it
            print(f"refrl: --resume: skipped {ckpt}: {exc.problem} (renamed to {aside.name})", file=sys.stderr)
    raise UsageError(f"--resume: no checkpoint in {str(run_dir / 'checkpoints')!r} verifies (see above)")


def train_run(*, algo: str | None, env_id: str | None, steps: int | None, seed: int, out: str | None,
              overrides: dict[str, Any], config_file: str | None, tuned: bool, resume: str | None,
              checkpoint_every: int | None, keep: int, eval_episodes: int, progress: bool, verbose: int,
              overwrite: bool = False) -> int:
    """``refrl train``: returns the exit status (0; 3 when training diverged (refrl.TrainingDiverged): the
    newest checkpoint is the last healthy update and no model.npz is written; 128 + signal number
    after SIGINT/SIGTERM)."""
    if keep < 1:
        raise UsageError(f"--keep: must be >= 1, got {keep}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every: must be >= 1, got {checkpoint_every}")
    if eval_episodes < 0:
        raise UsageError(f"--eval-episodes: must be >= 0, got {eval_episodes}")
    if resume is not None:
        run_dir, flag = Path(resume), "--resume"
        if not (run_dir / "config.json").is_file():
            raise UsageError(f"--resume: {str(run_dir)!r} is not a run directory (no config.json)")
    else:
        if algo is None or env_id is None:
            raise UsageError("train: ALGO and ENV_ID are required (or --resume DIR)")
        run_dir, flag = Path(out if out is not None else f"runs/{algo}-{env_id}-s{seed}"), "--out"
    from refrl.distributed import world

    comm = world()
    with _StopOnSignals() as stop:
        try:
            with contextlib.ExitStack() as lock:
                with comm.guard():  # rank 0 alone writes into the directory, so it alone holds the lock
                    if comm.is_root:
                        lock.enter_context(_RunLock(run_dir, flag))
                return _train_locked(stop, run_dir, comm, algo=algo, env_id=env_id, steps=steps, seed=seed,
                                     overrides=overrides, config_file=config_file, tuned=tuned, resume=resume,
                                     checkpoint_every=checkpoint_every, keep=keep, eval_episodes=eval_episodes,
                                     progress=progress, verbose=verbose, overwrite=overwrite)
        except _Aborted as exc:
            return 128 + exc.signum


def _train_locked(stop: _StopOnSignals, run_dir: Path, comm, *, algo, env_id, steps, seed, overrides, config_file,
                  tuned, resume, checkpoint_every, keep, eval_episodes, progress, verbose, overwrite) -> int:
    from refrl.algos import get_algorithm
    from refrl.evaluation import evaluate_policy
    from refrl.health import TrainingDiverged
    from refrl.logger import Logger
    from refrl.rollout import check_env_id
    from refrl.serialization import write_json_atomic

    if resume is not None:
        cfg_path = run_dir / "config.json"
        run_cfg = json.loads(cfg_path.read_text())
        if algo is not None and algo != run_cfg["algo"] or env_id is not None and env_id != run_cfg["env_id"]:
            raise UsageError(f"--resume: the run is {run_cfg['algo']} on {run_cfg['env_id']}; do not pass another algorithm/env")
        if overrides or config_file:
            raise UsageError("--resume: hyperparameters come from the checkpoint; --set/--config are not allowed")
        ckpt, agent = _resume_checkpoint(run_dir, comm, verbose)
        total = int(steps if steps is not None else run_cfg["steps"])
        if total <= agent.num_timesteps:
            raise UsageError(f"--steps: the run already has {agent.num_timesteps} steps; pass a larger --steps to continue")
        run_cfg["steps"] = total
        if comm.is_root:
            write_json_atomic(cfg_path, run_cfg)
            print(f"refrl: resuming {run_cfg['algo']} on {run_cfg['env_id']} from {ckpt} ({agent.num_timesteps} steps)"
                  + (f" on {comm.size} ranks" if comm.is_distributed else ""))
        remaining = total - agent.num_timesteps
        reset = False
    else:
        cls = get_algorithm(algo)  # ValueError naming the algorithm
        check_env_id(env_id)  # ValueError naming the env, before any work
        hp, src_steps = resolve_hyperparameters(algo, env_id, tuned=tuned, config_file=config_file, overrides=overrides)
        total = int(steps if steps is not None else (src_steps or 100_000))
        if total < 1:
            raise UsageError(f"--steps: must be >= 1, got {total}")
        with comm.guard():
            if comm.is_root:
                existing = sorted(p.name for p in run_dir.iterdir() if p.name != _RunLock.NAME)
                if existing and not overwrite:
                    raise UsageError(f"--out: {str(run_dir)!r} is not empty ({', '.join(existing[:5])}"
                                     f"{', ...' if len(existing) > 5 else ''}); continue it with --resume, replace the "
                                     "run with --overwrite, or choose another directory")
        agent = cls(env_id, seed=seed, verbose=verbose, **hp)
        with comm.guard():
            if comm.is_root:
                _clean_temporaries(run_dir)
                # a new run must not resume from, nor be evaluated as, the old one
                for old in [*(run_dir / "checkpoints").glob("step_*.npz*"), *(run_dir / name for name in _RUN_FILES)]:
                    old.unlink(missing_ok=True)
                run_cfg = {"algo": algo, "env_id": env_id, "seed": seed, "steps": total,
                           "hyperparameters": agent.config.to_dict(), "command": sys.argv}
                if comm.is_distributed:
                    run_cfg["mpi_ranks"] = comm.size
                write_json_atomic(run_dir / "config.json", run_cfg)
        remaining, reset = total, True

    root = comm.is_root  # rank 0 alone writes metrics, checkpoints, the model and the evaluation
    agent.logger = Logger(run_dir if root else None, verbose=verbose if root else 0, append=not reset,
                          resume_step=None if reset else agent.num_timesteps)
    every = checkpoint_every or max(total // 10, agent.config.rollout_size)
    state = {"next_ckpt": (agent.num_timesteps // every + 1) * every}

    def save_checkpoint() -> Path:
        p = agent.save(run_dir / "checkpoints" / f"step_{agent.num_timesteps:012d}.npz")
        for stale in sorted((run_dir / "checkpoints").glob("step_*.npz"))[:-keep]:
            stale.unlink()
        return p

    def callback(a) -> bool:
        if a.num_timesteps >= state["next_ckpt"]:
            if root:
                save_checkpoint()
            state["next_ckpt"] = (a.num_timesteps // every + 1) * every
        return not stop.requested  # (under MPI: a signal on any rank stops every rank after this update)

    try:
        agent.learn(remaining, callback=callback, progress_bar=progress, reset_num_timesteps=reset)
    except TrainingDiverged as exc:  # the agent is back at its last healthy update: keep that, write no model
        if root:
            healthy = save_checkpoint() if agent.num_timesteps > 0 else None
            print(f"refrl train: training diverged: {exc}", file=sys.stderr)
            print(f"refrl: the last healthy checkpoint is {healthy}" if healthy else
                  "refrl: no checkpoint written (the first update diverged)", file=sys.stderr)
        agent.close()
        return EXIT_DIVERGED
    with comm.guard():
        if root:
            save_checkpoint()
            model = agent.save(run_dir / "model.npz")
            print(f"refrl: {agent.num_timesteps} steps; model saved to {model}")
    signum = comm.max_int(stop.signum or 0)  # the signal that stopped some rank (0: none)
    if signum:
        if root:
            print(f"refrl: stopped by {signal.Signals(signum).name}; continue with: refrl train --resume {run_dir}",
                  file=sys.stderr)
        agent.close()
        return 128 + signum
    if eval_episodes > 0 and root:
        returns = evaluate_policy(agent, n_episodes=eval_episodes, seed=10_000 + seed)
        _print_eval(returns)
        write_json_atomic(run_dir / "eval.json", {"episodes": eval_episodes, "mean": float(returns.mean()),
                                                  "std": float(returns.std()), "returns": returns.tolist(),
                                                  "num_timesteps": agent.num_timesteps})
    agent.close()
    return 0


def _resume_checkpoint(run_dir: Path, comm, verbose: int):
    """The newest checkpoint that verifies, and the agent loaded from it on every rank.  Under MPI
    rank 0 chooses (cleaning temporaries, setting damaged files aside, with a one-process load) and
    every rank then loads its choice."""
    if not comm.is_distributed:
        _clean_temporaries(run_dir)
        return _newest_valid_checkpoint(run_dir, verbose)
    choice = None
    with comm.guard():
        if comm.is_root:
            _clean_temporaries(run_dir)
            ckpt, probe = _newest_valid_checkpoint(run_dir, verbose, distributed=False)
            probe.close()
            choice = str(ckpt)
    from refrl.algos import load

    ckpt = Path(comm.broadcast_object(choice))
    return ckpt, load(ckpt, verbose=verbose)


def _print_eval(returns) -> None:
    print(f"eval: mean return {returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes "
          f"(deterministic; min {returns.min():.1f}, max {returns.max():.1f})")


def eval_run(path: str, *, episodes: int, seed: int, stochastic: bool, env_id: str | None) -> int:
    from refrl.algos import load
    from refrl.evaluation import evaluate_policy

    if episodes < 1:
        raise UsageError(f"--episodes: must be >= 1, got {episodes}")
    p = Path(path)
    if p.is_dir():
        p = p / "model.npz" if (p / "model.npz").is_file() else (_latest_checkpoint(p) or p / "model.npz")
    agent = load(p, env=env_id)
    returns = evaluate_policy(agent, env_id, n_episodes=episodes, seed=seed, deterministic=not stochastic)
    print(f"{agent.algo_name} on {env_id or agent.env_id} ({agent.num_timesteps} steps), {p}")
    _print_eval(returns) if not stochastic else print(
        f"eval: mean return {returns.mean():.2f} ± {returns.std():.2f} over {episodes} episodes (stochastic)")
    agent.close()
    return 0


def read_metrics(run_dir: Path) -> dict[str, list[float]]:
    import csv

    path = run_dir / "metrics.csv" if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise UsageError(f"plot: no metrics.csv in {str(run_dir)!r}")
    cols: dict[str, list[float]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            for k, v in row.items():
                cols.setdefault(k, []).append(float(v) if v not in ("", None) else math.nan)
    return cols


def plot_runs(dirs: list[str], *, output: str, x: str, ys: list[str]) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("refrl plot: matplotlib is not installed; install it with: pip install 'refrl[plot]'", file=sys.stderr)
        return 1
    data = {d: read_metrics(Path(d)) for d in dirs}
    for d, cols in data.items():
        for key in (x, *ys):
            if key not in cols:
                raise UsageError(f"plot: {str(d)!r} has no column {key!r}; columns: {', '.join(sorted(cols))}")
    fig, axes = plt.subplots(1, len(ys), figsize=(5.5 * len(ys), 4), squeeze=False)
    for ax, y in zip(axes[0], ys):
        for d, cols in data.items():
            ax.plot(cols[x], cols[y], label=Path(d).name)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    print(f"refrl plot: wrote {output}")
    return 0
