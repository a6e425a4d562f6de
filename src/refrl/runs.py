"""Run directories for the command line: ``refrl train | eval | plot``.

A run directory holds::

    config.json              algorithm, env id, seed, step budget, every hyperparameter
    metrics.csv              one row per update (SB3 metric names)
    model.npz                the final model (refrl checkpoint: .npz + JSON, atomic, no pickle)
    checkpoints/step_*.npz   periodic checkpoints (the last ``keep`` are kept); --resume uses the newest
    eval.json                the evaluation printed at the end of training
    .lock                    "pid host" of the process writing into the directory (fcntl.flock)

``refrl train --seeds 0 1 2 --out DIR`` makes a run group: one such directory per seed,
``DIR/seed_0``, ``DIR/seed_1``, ... (in parallel processes with ``--jobs N``); ``refrl plot DIR``
(refrl.plots) draws the group's mean and band over its seeds.

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
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from refrl.plots import plot_runs, read_metrics  # noqa: F401 (refrl.runs.plot_runs keeps working)

__all__ = ["describe_hyperparameters", "eval_run", "parse_env_kwargs", "parse_overrides", "plot_runs",
           "resolve_hyperparameters", "train_run", "train_seeds"]


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


def _parse_pairs(items: list[str] | None, flag: str, *, names: bool) -> dict[str, Any]:
    """``key=value`` items -> {key: parse_value(value)}; with ``names`` each key must be a Python name."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or (names and not key.isidentifier()):
            raise UsageError(f"{flag}: expected key=value{' with a Python name as key' if names else ''}, got {item!r}")
        out[key] = parse_value(value.strip())
    return out


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``--set key=value ...`` -> {key: value} (values as :func:`parse_value`)."""
    return _parse_pairs(items, "--set", names=False)


def parse_env_kwargs(items: list[str] | None) -> dict[str, Any]:
    """``--env-kwargs key=value ...`` -> keyword arguments of ``gymnasium.make``.  Values are read as
    :func:`parse_value` does (JSON or a Python literal through ``ast.literal_eval``, never ``eval``;
    anything else is the string itself: ``render_mode=rgb_array``)."""
    return _parse_pairs(items, "--env-kwargs", names=True)


def _tuned_key(env_id: str) -> str:
    """The id the tuned tables know ``env_id`` by (``module:EnvId`` -> ``EnvId``)."""
    return env_id.rpartition(":")[2]


def hyperparameter_layers(algo: str, env_id: str | None, *, tuned: bool, config_file: str | None,
                          overrides: dict[str, Any]) -> list[tuple[str, dict[str, Any], int | None]]:
    """The sources of a run's hyperparameters, lowest first: ``(source, values, steps or None)`` for
    the tuned defaults (RL Zoo), the config file and ``--set``."""
    from refrl.config import tuned_defaults, tuned_steps

    layers: list[tuple[str, dict[str, Any], int | None]] = []
    if tuned and env_id is not None:
        layers.append(("tuned", tuned_defaults(algo, _tuned_key(env_id)), tuned_steps(algo, _tuned_key(env_id))))
    if config_file is not None:
        try:
            doc = json.loads(Path(config_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"--config: cannot read {config_file!r} as JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise UsageError(f"--config: expected a JSON object, got {type(doc).__name__}")
        steps = None
        # accept both a flat {name: value} file and a run's config.json
        if "hyperparameters" in doc:
            steps = doc.get("steps")
            doc = doc["hyperparameters"]
        layers.append(("config", dict(doc), steps))
    layers.append(("--set", dict(overrides), None))
    return layers


def resolve_hyperparameters(algo: str, env_id: str | None, *, tuned: bool, config_file: str | None,
                            overrides: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """tuned defaults (RL Zoo) < config file < --set.  Returns (hyperparameters, steps from the sources)."""
    hp: dict[str, Any] = {}
    steps = None
    for _source, values, layer_steps in hyperparameter_layers(algo, env_id, tuned=tuned, config_file=config_file,
                                                               overrides=overrides):
        hp.update(values)
        steps = layer_steps if layer_steps is not None else steps
    return hp, steps


#: the step budget when neither --steps nor a source gives one
DEFAULT_STEPS = 100_000


def describe_hyperparameters(algo: str, env_id: str | None, *, tuned: bool, config_file: str | None,
                             overrides: dict[str, Any], steps: int | None,
                             env_kwargs: dict[str, Any] | None = None) -> list[tuple[str, Any, str, str]]:
    """``(name, value, source, meaning)`` of every value a run of ``algo`` on ``env_id`` will use, the
    source being ``default``, ``tuned``, ``config`` or ``--set`` (the last that gives it) -- what
    ``refrl train --params`` prints.  The values are validated as the run would validate them."""
    from refrl.algos import get_algorithm

    cls = get_algorithm(algo)
    layers = hyperparameter_layers(algo, env_id, tuned=tuned, config_file=config_file, overrides=overrides)
    hp, src_steps = resolve_hyperparameters(algo, env_id, tuned=tuned, config_file=config_file, overrides=overrides)
    values = cls.config_class.from_kwargs(**hp).to_dict()  # the run's own validation
    source = {name: "default" for name in values}
    step_source = "default"
    for name, layer, layer_steps in layers:
        source.update(dict.fromkeys(layer, name))
        step_source = name if layer_steps is not None else step_source
    total = steps if steps is not None else (src_steps or DEFAULT_STEPS)
    rows = [("steps", total, "--steps" if steps is not None else step_source, "total environment steps")]
    if env_kwargs:
        rows.append(("env_kwargs", env_kwargs, "--env-kwargs", "keyword arguments of gymnasium.make"))
    docs = cls.config_class.field_docs()
    rows += [(name, values[name], source[name], docs[name][1]) for name in values]
    return rows


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
_RUN_FILES = ("config.json", "metrics.csv", "model.npz", "eval.json", "best_model.npz", "evaluations.npz")


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


def _path_name(env_id: str) -> str:
    """``env_id`` as part of a default run-directory name (``module:EnvId`` -> ``module.EnvId``)."""
    return env_id.replace(":", ".")


def _check_new_run(algo: str, env_id: str, *, steps: int | None, tuned: bool, config_file: str | None,
                   overrides: dict[str, Any], env_kwargs: dict[str, Any]):
    """Everything about a new run that can be wrong before any work: the algorithm, the env id, the
    env kwargs, the hyperparameters and the step budget.  Returns (algorithm class, hyperparameters, steps)."""
    from refrl.algos import get_algorithm
    from refrl.rollout import check_env_id

    cls = get_algorithm(algo)  # ValueError naming the algorithm
    check_env_id(env_id)  # ValueError naming the env (imports the module of a module:EnvId id)
    if env_kwargs:
        _check_env_kwargs(env_id, env_kwargs)
    hp, src_steps = resolve_hyperparameters(algo, env_id, tuned=tuned, config_file=config_file, overrides=overrides)
    cls.config_class.from_kwargs(**hp)  # invalid hyperparameters: the error names the field
    total = int(steps if steps is not None else (src_steps or DEFAULT_STEPS))
    if total < 1:
        raise UsageError(f"--steps: must be >= 1, got {total}")
    return cls, hp, total


def _check_tensorboard(tensorboard: str | None) -> None:
    if tensorboard is not None:
        from refrl.tensorboard import require_writer

        try:
            require_writer()
        except ImportError as exc:
            raise UsageError(f"--tensorboard: {exc}") from None


def _check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Build the env once with ``env_kwargs``, so that a keyword it does not take is named as --env-kwargs'."""
    import gymnasium as gym

    try:
        gym.make(env_id, **env_kwargs).close()
    except TypeError as exc:
        raise UsageError(f"--env-kwargs: {env_id} does not take {sorted(env_kwargs)} ({exc})") from None
    except gym.error.DependencyNotInstalled:
        pass  # building the vector env names the missing extra


def train_run(*, algo: str | None, env_id: str | None, steps: int | None, seed: int, out: str | None,
              overrides: dict[str, Any], config_file: str | None, tuned: bool, resume: str | None,
              checkpoint_every: int | None, keep: int, eval_episodes: int, progress: bool, verbose: int,
              overwrite: bool = False, env_kwargs: dict[str, Any] | None = None,
              tensorboard: str | None = None, eval_every: int | None = None) -> int:
    """``refrl train``: returns the exit status (0; 3 when training diverged (refrl.TrainingDiverged): the
    newest checkpoint is the last healthy update and no model.npz is written; 128 + signal number
    after SIGINT/SIGTERM)."""
    if keep < 1:
        raise UsageError(f"--keep: must be >= 1, got {keep}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every: must be >= 1, got {checkpoint_every}")
    if eval_episodes < 0:
        raise UsageError(f"--eval-episodes: must be >= 0, got {eval_episodes}")
    _check_tensorboard(tensorboard)
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
        run_dir, flag = Path(out if out is not None else f"runs/{algo}-{_path_name(env_id)}-s{seed}"), "--out"
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
                                     progress=progress, verbose=verbose, overwrite=overwrite,
                                     env_kwargs=env_kwargs or {}, tensorboard=tensorboard, eval_every=eval_every)
        except _Aborted as exc:
            return 128 + exc.signum


def _train_locked(stop: _StopOnSignals, run_dir: Path, comm, *, algo, env_id, steps, seed, overrides, config_file,
                  tuned, resume, checkpoint_every, keep, eval_episodes, progress, verbose, overwrite, env_kwargs,
                  tensorboard, eval_every) -> int:
    from refrl.algos import get_algorithm
    from refrl.callbacks import BaseCallback
    from refrl.evaluation import episode_returns
    from refrl.health import TrainingDiverged
    from refrl.logger import Logger
    from refrl.serialization import write_json_atomic

    if resume is not None:
        cfg_path = run_dir / "config.json"
        run_cfg = json.loads(cfg_path.read_text())
        if algo is not None and algo != run_cfg["algo"] or env_id is not None and env_id != run_cfg["env_id"]:
            raise UsageError(f"--resume: the run is {run_cfg['algo']} on {run_cfg['env_id']}; do not pass another algorithm/env")
        if overrides or config_file or env_kwargs:
            raise UsageError("--resume: hyperparameters and env kwargs come from the checkpoint; "
                             "--set/--config/--env-kwargs are not allowed")
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
        with comm.guard():  # the same inputs on every rank; a file one rank cannot read stops them all
            cls, hp, total = _check_new_run(algo, env_id, steps=steps, tuned=tuned, config_file=config_file,
                                            overrides=overrides, env_kwargs=env_kwargs)
        with comm.guard():
            if comm.is_root:
                existing = sorted(p.name for p in run_dir.iterdir() if p.name != _RunLock.NAME)
                if existing and not overwrite:
                    raise UsageError(f"--out: {str(run_dir)!r} is not empty ({', '.join(existing[:5])}"
                                     f"{', ...' if len(existing) > 5 else ''}); continue it with --resume, replace the "
                                     "run with --overwrite, or choose another directory")
        agent = cls(env_id, seed=seed, verbose=verbose, env_kwargs=env_kwargs, **hp)
        with comm.guard():
            if comm.is_root:
                _clean_temporaries(run_dir)
                # a new run must not resume from, nor be evaluated as, the old one
                for old in [*(run_dir / "checkpoints").glob("step_*.npz*"), *(run_dir / name for name in _RUN_FILES)]:
                    old.unlink(missing_ok=True)
                run_cfg = {"algo": algo, "env_id": env_id, "seed": seed, "steps": total, "env_kwargs": env_kwargs,
                           "hyperparameters": agent.config.to_dict(), "command": sys.argv}
                if comm.is_distributed:
                    run_cfg["mpi_ranks"] = comm.size
                write_json_atomic(run_dir / "config.json", run_cfg)
        remaining, reset = total, True

    root = comm.is_root  # rank 0 alone writes metrics, checkpoints, the model and the evaluation
    agent.logger = Logger(run_dir if root else None, verbose=verbose if root else 0, append=not reset,
                          resume_step=None if reset else agent.num_timesteps)
    agent.tensorboard_log = tensorboard
    every = checkpoint_every or max(total // 10, agent.config.rollout_size)
    state = {"next_ckpt": (agent.num_timesteps // every + 1) * every}

    def save_checkpoint() -> Path:
        p = agent.save(run_dir / "checkpoints" / f"step_{agent.num_timesteps:012d}.npz")
        for stale in sorted((run_dir / "checkpoints").glob("step_*.npz"))[:-keep]:
            stale.unlink()
        return p

    class RunCallback(BaseCallback):
        """Checkpoints at the start of the next rollout, i.e. after the update's metrics row is written
        (a checkpoint never runs ahead of metrics.csv; under MPI rank 0 alone writes it); stops after the
        update on SIGINT/SIGTERM/SIGUSR1 (under MPI: a signal on any rank stops every rank after this update)."""

        def _on_rollout_start(self) -> None:
            if agent.num_timesteps >= state["next_ckpt"]:
                if root:
                    save_checkpoint()
                state["next_ckpt"] = (agent.num_timesteps // every + 1) * every

        def _on_update_end(self) -> bool:
            return not stop.requested

    callback = RunCallback()
    # --eval-every: rank 0 alone evaluates and writes; a stop it asks for is agreed by every rank (learn)
    evaluator = None
    if eval_every is not None and root:
        evaluator = _periodic_evaluation(agent, run_dir, eval_every, eval_episodes, seed, verbose)
    try:
        agent.learn(remaining, callback=[callback] if evaluator is None else [evaluator, callback],
                    progress_bar=progress, reset_num_timesteps=reset, tb_log_name=type(agent).__name__)
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
    if evaluator is not None:
        evaluator.eval_env.close()
        print(f"refrl: best evaluation {evaluator.best_mean_reward:.2f} (model {run_dir / 'best_model.npz'}); "
              f"every evaluation in {run_dir / 'evaluations.npz'}")
    if eval_episodes > 0 and root:
        returns = episode_returns(agent, n_episodes=eval_episodes, seed=10_000 + seed)
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


def _periodic_evaluation(agent, run_dir: Path, eval_every: int, episodes: int, seed: int, verbose: int):
    """``--eval-every N``: an EvalCallback evaluating every N steps (whole vector steps; under MPI, of all
    ranks together: every N / K steps of rank 0, which alone evaluates) on a fresh env of the run's id,
    the best model kept as DIR/best_model.npz and every evaluation in DIR/evaluations.npz.
    On a resume, the evaluations up to the checkpoint's step are read back (the best so far stays the bar)."""
    import gymnasium as gym
    import numpy as np

    from refrl.callbacks import EvalCallback

    evaluator = EvalCallback(gym.make(agent.env_id, **agent.env_kwargs), n_eval_episodes=episodes,
                             eval_freq=max(eval_every // (agent.config.n_envs * agent.comm.size), 1),
                             log_path=run_dir, best_model_save_path=run_dir, verbose=verbose, seed=10_000 + seed)
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


# ---------------------------------------------------------------------------------------- run groups
class _Prefixed:
    """A text stream that starts every line with ``prefix`` (the output of one seed among several)."""

    def __init__(self, stream, prefix: str) -> None:
        self._stream, self._prefix, self._at_line_start = stream, prefix, True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self._at_line_start:
                self._stream.write(self._prefix)
            self._stream.write(piece)
            self._at_line_start = piece.endswith(("\n", "\r"))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def _train_one_seed(kwargs: dict[str, Any]) -> tuple[int, str | None]:
    """``train_run(**kwargs)`` -> (exit status, what went wrong or None); no exception escapes."""
    import traceback

    try:
        code = train_run(**kwargs)
    except (ValueError, TypeError, FileNotFoundError) as exc:  # bad input: the usage-error status
        return 2, str(exc)
    except Exception as exc:  # noqa: BLE001 -- one seed's crash must not hide the others' results
        traceback.print_exc()
        return 1, f"{type(exc).__name__}: {exc}"
    return code, None if code == 0 else {EXIT_DIVERGED: "training diverged"}.get(code, "stopped by a signal")


def _seed_process(kwargs: dict[str, Any], conn) -> None:
    """One seed of ``--jobs N`` in its own process: its own process group (a Ctrl-C reaches the
    parent only, which passes each signal on, so that the seed sees it once), output lines prefixed."""
    import os

    os.setpgrp()
    prefix = f"[seed {kwargs['seed']}] "
    sys.stdout, sys.stderr = _Prefixed(sys.stdout, prefix), _Prefixed(sys.stderr, prefix)
    result = _train_one_seed(kwargs)
    conn.send(result)
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(result[0])


def _run_in_processes(tasks: list[dict[str, Any]], jobs: int) -> dict[int, tuple[int, str | None]]:
    """Run the seeds ``jobs`` at a time, each in a fresh (spawned) process; SIGINT/SIGTERM to this
    process are passed on to the running seeds (the first: save and stop; a second: abort) and no
    further seed starts."""
    import multiprocessing as mp
    import os
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    pending, running, results = list(tasks), {}, {}
    signals: list[int] = []

    def forward(signum, frame) -> None:
        signals.append(signum)
        print(f"\nrefrl: {signal.Signals(signum).name}: passed on to the running seeds; no new seed starts",
              file=sys.stderr, flush=True)
        for proc, _conn, _seed in running.values():
            if proc.pid is not None:
                os.kill(proc.pid, signum)

    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {sig: signal.signal(sig, forward) for sig in _StopOnSignals.SIGNALS}
    try:
        while pending or running:
            while pending and len(running) < jobs and not signals:
                kwargs = pending.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_seed_process, args=(kwargs, send), name=f"refrl-seed-{kwargs['seed']}")
                proc.start()
                send.close()
                running[proc.sentinel] = (proc, recv, kwargs["seed"])
            if not running:
                break
            for sentinel in wait(list(running)):
                proc, recv, seed = running.pop(sentinel)
                proc.join()
                try:
                    results[seed] = recv.recv()
                except EOFError:  # the process died before it could say why
                    results[seed] = (proc.exitcode or 1, f"the process ended with exit code {proc.exitcode}")
                recv.close()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if signals:
        for kwargs in pending:
            results[kwargs["seed"]] = (128 + signals[0], "not started (stopped by a signal)")
    return results


def train_seeds(*, seeds: list[int], jobs: int, out: str | None, algo: str | None, env_id: str | None,
                steps: int | None, overrides: dict[str, Any], config_file: str | None, tuned: bool,
                env_kwargs: dict[str, Any] | None = None, tensorboard: str | None = None,
                **run_options: Any) -> int:
    """``refrl train --seeds S1 S2 ... [--jobs N]``: one run per seed into ``OUT/seed_S`` (``OUT``
    defaults to ``runs/ALGO-ENV``), one after the other or ``jobs`` at a time in separate processes.
    A seed that fails does not stop the others; the summary names it and the exit status is that of
    the first failing seed (0 when all succeed)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"--jobs: must be an integer >= 1, got {jobs!r}")
    if not seeds:
        raise UsageError("--seeds: give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds: each seed once, got {seeds}")
    if any(seed < 0 for seed in seeds):
        raise UsageError(f"--seeds: seeds must be >= 0, got {seeds}")
    if algo is None or env_id is None:
        raise UsageError("train: ALGO and ENV_ID are required with --seeds")
    from refrl.distributed import launched_size

    if launched_size() > 1:  # every rank would start the whole group, --jobs N would fork from MPI ranks
        raise UsageError(f"--seeds: not under an MPI launcher ({launched_size()} processes); a run group of "
                         "multi-rank runs is one launch per seed: mpirun -n K refrl train ALGO ENV --seed S "
                         "--out DIR/seed_S for each S, then refrl plot DIR")
    env_kwargs = env_kwargs or {}
    # what would fail every seed alike fails here, once, before any seed starts
    _check_tensorboard(tensorboard)
    _check_new_run(algo, env_id, steps=steps, tuned=tuned, config_file=config_file, overrides=overrides,
                   env_kwargs=env_kwargs)
    group = Path(out if out is not None else f"runs/{algo}-{_path_name(env_id)}")
    tasks = [dict(run_options, algo=algo, env_id=env_id, steps=steps, seed=seed, out=str(group / f"seed_{seed}"),
                  overrides=overrides, config_file=config_file, tuned=tuned, resume=None, env_kwargs=env_kwargs,
                  tensorboard=None if tensorboard is None else str(Path(tensorboard) / f"seed_{seed}"))
             for seed in seeds]
    print(f"refrl: {algo} on {env_id}, seeds {' '.join(map(str, seeds))} into {group}/seed_S"
          + (f", {min(jobs, len(seeds))} at a time" if jobs > 1 else ""))
    if jobs == 1:
        results = {}
        for kwargs in tasks:
            print(f"refrl: seed {kwargs['seed']} -> {kwargs['out']}")
            code, problem = results[kwargs["seed"]] = _train_one_seed(kwargs)
            if code >= 128:  # stopped by a signal: start no other seed
                results.update({kw["seed"]: (code, "not started") for kw in tasks if kw["seed"] not in results})
                break
    else:
        results = _run_in_processes([dict(kw, progress=False) for kw in tasks], jobs)
    return _report_seeds(group, seeds, results)


def _report_seeds(group: Path, seeds: list[int], results: dict[int, tuple[int, str | None]]) -> int:
    failed = [s for s in seeds if results.get(s, (1, None))[0] != 0]
    for seed in seeds:
        code, problem = results.get(seed, (1, "not run"))
        run_dir = group / f"seed_{seed}"
        if code == 0:
            ev = run_dir / "eval.json"
            summary = ""
            if ev.is_file():
                doc = json.loads(ev.read_text())
                summary = f", eval mean return {doc['mean']:.2f} ± {doc['std']:.2f}"
            print(f"refrl: seed {seed}: done ({run_dir}{summary})")
        elif code >= 128 and not (run_dir / "config.json").is_file():
            print(f"refrl: seed {seed}: not started (stopped by a signal)", file=sys.stderr)
        elif code >= 128:
            print(f"refrl: seed {seed}: stopped by a signal (exit status {code}); continue it with: "
                  f"refrl train --resume {run_dir}", file=sys.stderr)
        else:
            print(f"refrl train: seed {seed} FAILED (exit status {code}): {problem}", file=sys.stderr)
    if failed:
        first = results.get(failed[0], (1, None))[0]
        if first < 128:
            print(f"refrl train: {len(failed)} of {len(seeds)} seeds failed: {' '.join(map(str, failed))}",
                  file=sys.stderr)
        return first
    return 0


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
