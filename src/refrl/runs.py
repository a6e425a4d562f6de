"""Run directories for the command line: ``refrl train | eval | plot``.

A run directory holds::

    config.json              algorithm, env id, seed, step budget, every hyperparameter
    metrics.csv              one row per update (SB3 metric names)
    model.npz                the final model (refrl checkpoint: .npz + JSON, atomic, no pickle)
    checkpoints/step_*.npz   periodic checkpoints (the last ``keep`` are kept); --resume uses the newest
    eval.json                the evaluation printed at the end of training
    .lock                    "pid host" of the process writing into the directory (fcntl.flock)

Only one process writes into a run directory (a second one is refused, naming the holder); a new
run into a non-empty directory needs ``--overwrite``.  SIGINT or SIGTERM finishes the current
update, writes a checkpoint and the model, and exits with 128 + the signal number; a second signal
aborts at once.  A diverging run (refrl.TrainingDiverged) saves its last healthy update as the newest
checkpoint, prints one line naming the problem and exits with 3.  ``--resume`` removes the temporaries of interrupted writes, takes the newest
checkpoint that verifies (renaming damaged newer ones to ``*.damaged``) and cuts ``metrics.csv``
back to that checkpoint's step.  docs/reliability.md states these promises and their tests.
"""

from __future__ import annotations

import ast
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
    """First SIGINT or SIGTERM: finish the current update, save, stop (exit status 128 + signal).
    A second one: abort at once (``_Aborted``); the atomic writers remove their temporary, so no
    file under its real name is ever half-written."""

    SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)

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
_RUN_FILES = ("config.json", "metrics.csv", "model.npz", "eval.json", "best_model.npz", "evaluations.npz")


def _clean_temporaries(run_dir: Path) -> None:
    from refrl.serialization import remove_temporaries

    for folder in (run_dir, run_dir / "checkpoints"):
        if folder.is_dir():
            for p in remove_temporaries(folder):
                print(f"refrl: removed {p}, left by an interrupted write", file=sys.stderr)


def _newest_valid_checkpoint(run_dir: Path, verbose: int):
    """Load the newest checkpoint that verifies; rename the damaged newer ones to ``*.damaged``."""
    from refrl.algos import load
    from refrl.serialization import CheckpointError

    ckpts = sorted((run_dir / "checkpoints").glob("step_*.npz"))
    if not ckpts:
        raise UsageError(f"--resume: no checkpoint in {str(run_dir / 'checkpoints')!r}")
    for ckpt in reversed(ckpts):
        try:
            return ckpt, load(ckpt, verbose=verbose)
        except CheckpointError as exc:
            aside = ckpt.with_name(ckpt.name + ".damaged")
            ckpt.replace(aside)  # out of the step_*.npz glob, so that pruning and later resumes ignore it
            print(f"refrl: --resume: skipped {ckpt}: {exc.problem} (renamed to {aside.name})", file=sys.stderr)
    raise UsageError(f"--resume: no checkpoint in {str(run_dir / 'checkpoints')!r} verifies (see above)")


def train_run(*, algo: str | None, env_id: str | None, steps: int | None, seed: int, out: str | None,
              overrides: dict[str, Any], config_file: str | None, tuned: bool, resume: str | None,
              checkpoint_every: int | None, keep: int, eval_episodes: int, progress: bool, verbose: int,
              overwrite: bool = False, eval_every: int | None = None) -> int:
    """``refrl train``: returns the exit status (0; 3 when training diverged (refrl.TrainingDiverged): the
    newest checkpoint is the last healthy update and no model.npz is written; 128 + signal number
    after SIGINT/SIGTERM)."""
    if keep < 1:
        raise UsageError(f"--keep: must be >= 1, got {keep}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every: must be >= 1, got {checkpoint_every}")
    if eval_episodes < 0:
        raise UsageError(f"--eval-episodes: must be >= 0, got {eval_episodes}")
    if eval_every is not None and eval_every < 1:
        raise UsageError(f"--eval-every: must be >= 1, got {eval_every}")
    if eval_every is not None and eval_episodes < 1:
        raise UsageError("--eval-every: needs --eval-episodes >= 1 (the episodes of each evaluation)")
    if resume is not None:
        run_dir, flag = Path(resume), "--resume"
        if not (run_dir / "config.json").is_file():
            raise UsageError(f"--resume: {str(run_dir)!r} is not a run directory (no config.json)")
    else:
        if algo is None or env_id is None:
            raise UsageError("train: ALGO and ENV_ID are required (or --resume DIR)")
        run_dir, flag = Path(out if out is not None else f"runs/{algo}-{env_id}-s{seed}"), "--out"
    with _StopOnSignals() as stop:
        try:
            with _RunLock(run_dir, flag):
                return _train_locked(stop, run_dir, algo=algo, env_id=env_id, steps=steps, seed=seed,
                                     overrides=overrides, config_file=config_file, tuned=tuned, resume=resume,
                                     checkpoint_every=checkpoint_every, keep=keep, eval_episodes=eval_episodes,
                                     progress=progress, verbose=verbose, overwrite=overwrite, eval_every=eval_every)
        except _Aborted as exc:
            return 128 + exc.signum


def _train_locked(stop: _StopOnSignals, run_dir: Path, *, algo, env_id, steps, seed, overrides, config_file,
                  tuned, resume, checkpoint_every, keep, eval_episodes, progress, verbose, overwrite,
                  eval_every) -> int:
    from refrl.algos import get_algorithm
    from refrl.callbacks import BaseCallback
    from refrl.evaluation import episode_returns
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
        _clean_temporaries(run_dir)
        ckpt, agent = _newest_valid_checkpoint(run_dir, verbose)
        total = int(steps if steps is not None else run_cfg["steps"])
        if total <= agent.num_timesteps:
            raise UsageError(f"--steps: the run already has {agent.num_timesteps} steps; pass a larger --steps to continue")
        run_cfg["steps"] = total
        write_json_atomic(cfg_path, run_cfg)
        print(f"refrl: resuming {run_cfg['algo']} on {run_cfg['env_id']} from {ckpt} ({agent.num_timesteps} steps)")
        remaining = total - agent.num_timesteps
        reset = False
    else:
        cls = get_algorithm(algo)  # ValueError naming the algorithm
        check_env_id(env_id)  # ValueError naming the env, before any work
        hp, src_steps = resolve_hyperparameters(algo, env_id, tuned=tuned, config_file=config_file, overrides=overrides)
        total = int(steps if steps is not None else (src_steps or 100_000))
        if total < 1:
            raise UsageError(f"--steps: must be >= 1, got {total}")
        existing = sorted(p.name for p in run_dir.iterdir() if p.name != _RunLock.NAME)
        if existing and not overwrite:
            raise UsageError(f"--out: {str(run_dir)!r} is not empty ({', '.join(existing[:5])}"
                             f"{', ...' if len(existing) > 5 else ''}); continue it with --resume, replace the run "
                             "with --overwrite, or choose another directory")
        agent = cls(env_id, seed=seed, verbose=verbose, **hp)
        _clean_temporaries(run_dir)
        # a new run must not resume from, nor be evaluated as, the old one
        for old in [*(run_dir / "checkpoints").glob("step_*.npz*"), *(run_dir / name for name in _RUN_FILES)]:
            old.unlink(missing_ok=True)
        run_cfg = {"algo": algo, "env_id": env_id, "seed": seed, "steps": total,
                   "hyperparameters": agent.config.to_dict(), "command": sys.argv}
        write_json_atomic(run_dir / "config.json", run_cfg)
        remaining, reset = total, True

    agent.logger = Logger(run_dir, verbose=verbose, append=not reset,
                          resume_step=None if reset else agent.num_timesteps)
    every = checkpoint_every or max(total // 10, agent.config.rollout_size)
    state = {"next_ckpt": (agent.num_timesteps // every + 1) * every}

    def save_checkpoint() -> Path:
        p = agent.save(run_dir / "checkpoints" / f"step_{agent.num_timesteps:012d}.npz")
        for stale in sorted((run_dir / "checkpoints").glob("step_*.npz"))[:-keep]:
            stale.unlink()
        return p

    class RunCallback(BaseCallback):
        """Checkpoints at the start of the next rollout, i.e. after the update's metrics row is written
        (a checkpoint never runs ahead of metrics.csv); stops after the update on SIGINT/SIGTERM."""

        def _on_rollout_start(self) -> None:
            if agent.num_timesteps >= state["next_ckpt"]:
                save_checkpoint()
                state["next_ckpt"] = (agent.num_timesteps // every + 1) * every

        def _on_update_end(self) -> bool:
            return not stop.requested

    callback = RunCallback()
    evaluator = None if eval_every is None else _periodic_evaluation(agent, run_dir, eval_every, eval_episodes, seed,
                                                                    verbose)
    try:
        agent.learn(remaining, callback=[callback] if evaluator is None else [evaluator, callback],
                    progress_bar=progress, reset_num_timesteps=reset)
    except TrainingDiverged as exc:  # the agent is back at its last healthy update: keep that, write no model
        healthy = save_checkpoint() if agent.num_timesteps > 0 else None
        print(f"refrl train: training diverged: {exc}", file=sys.stderr)
        print(f"refrl: the last healthy checkpoint is {healthy}" if healthy else
              "refrl: no checkpoint written (the first update diverged)", file=sys.stderr)
        agent.close()
        return EXIT_DIVERGED
    save_checkpoint()
    model = agent.save(run_dir / "model.npz")
    print(f"refrl: {agent.num_timesteps} steps; model saved to {model}")
    if stop.requested:
        print(f"refrl: stopped by {signal.Signals(stop.signum).name}; continue with: refrl train --resume {run_dir}",
              file=sys.stderr)
        agent.close()
        return 128 + stop.signum
    if evaluator is not None:
        evaluator.eval_env.close()
        print(f"refrl: best evaluation {evaluator.best_mean_reward:.2f} (model {run_dir / 'best_model.npz'}); "
              f"every evaluation in {run_dir / 'evaluations.npz'}")
    if eval_episodes > 0:
        returns = episode_returns(agent, n_episodes=eval_episodes, seed=10_000 + seed)
        _print_eval(returns)
        write_json_atomic(run_dir / "eval.json", {"episodes": eval_episodes, "mean": float(returns.mean()),
                                                  "std": float(returns.std()), "returns": returns.tolist(),
                                                  "num_timesteps": agent.num_timesteps})
    agent.close()
    return 0


def _periodic_evaluation(agent, run_dir: Path, eval_every: int, episodes: int, seed: int, verbose: int):
    """``--eval-every N``: an EvalCallback evaluating every N steps (whole vector steps) on a fresh env of
    the run's id, the best model kept as DIR/best_model.npz and every evaluation in DIR/evaluations.npz.
    On a resume, the evaluations up to the checkpoint's step are read back (the best so far stays the bar)."""
    import gymnasium as gym
    import numpy as np

    from refrl.callbacks import EvalCallback

    evaluator = EvalCallback(gym.make(agent.env_id, **agent.env_kwargs), n_eval_episodes=episodes,
                             eval_freq=max(eval_every // agent.config.n_envs, 1), log_path=run_dir,
                             best_model_save_path=run_dir, verbose=verbose, seed=10_000 + seed)
    past = run_dir / "evaluations.npz"
    if agent.num_timesteps > 0 and past.is_file():
        with np.load(past, allow_pickle=False) as data:
            keep = data["timesteps"] <= agent.num_timesteps
            evaluator.evaluations_timesteps = data["timesteps"][keep].tolist()
            evaluator.evaluations_results = data["results"][keep].tolist()
            evaluator.evaluations_length = data["ep_lengths"][keep].tolist()
        if evaluator.evaluations_results:
            evaluator.best_mean_reward = max(float(np.mean(r)) for r in evaluator.evaluations_results)
    return evaluator


def _print_eval(returns) -> None:
    print(f"eval: mean return {returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes "
          f"(deterministic; min {returns.min():.1f}, max {returns.max():.1f})")


def eval_run(path: str, *, episodes: int, seed: int, stochastic: bool, env_id: str | None) -> int:
    from refrl.algos import load
    from refrl.evaluation import episode_returns

    if episodes < 1:
        raise UsageError(f"--episodes: must be >= 1, got {episodes}")
    p = Path(path)
    if p.is_dir():
        p = p / "model.npz" if (p / "model.npz").is_file() else (_latest_checkpoint(p) or p / "model.npz")
    agent = load(p, env=env_id)
    returns = episode_returns(agent, env_id, n_episodes=episodes, seed=seed, deterministic=not stochastic)
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
