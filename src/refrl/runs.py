"""Run directories for the command line: ``refrl train | eval | plot``.

A run directory holds::

    config.json              algorithm, env id, seed, step budget, every hyperparameter
    metrics.csv              one row per update (SB3 metric names)
    model.npz                the final model (refrl checkpoint: .npz + JSON, atomic, no pickle)
    checkpoints/step_*.npz   periodic checkpoints (the last ``keep`` are kept); --resume uses the newest
    eval.json                the evaluation printed at the end of training
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


class _StopOnSigint:
    """First Ctrl-C: finish the current update, save, stop.  Second Ctrl-C: KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def __enter__(self) -> _StopOnSigint:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nrefrl: Ctrl-C: stopping after this update and saving (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def train_run(*, algo: str | None, env_id: str | None, steps: int | None, seed: int, out: str | None,
              overrides: dict[str, Any], config_file: str | None, tuned: bool, resume: str | None,
              checkpoint_every: int | None, keep: int, eval_episodes: int, progress: bool, verbose: int) -> int:
    from refrl.algos import get_algorithm, load
    from refrl.evaluation import evaluate_policy
    from refrl.logger import Logger
    from refrl.rollout import check_env_id
    from refrl.serialization import write_json_atomic

    if keep < 1:
        raise UsageError(f"--keep: must be >= 1, got {keep}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every: must be >= 1, got {checkpoint_every}")
    if eval_episodes < 0:
        raise UsageError(f"--eval-episodes: must be >= 0, got {eval_episodes}")
    if resume is not None:
        run_dir = Path(resume)
        cfg_path = run_dir / "config.json"
        if not cfg_path.is_file():
            raise UsageError(f"--resume: {str(run_dir)!r} is not a run directory (no config.json)")
        run_cfg = json.loads(cfg_path.read_text())
        if algo is not None and algo != run_cfg["algo"] or env_id is not None and env_id != run_cfg["env_id"]:
            raise UsageError(f"--resume: the run is {run_cfg['algo']} on {run_cfg['env_id']}; do not pass another algorithm/env")
        if overrides or config_file:
            raise UsageError("--resume: hyperparameters come from the checkpoint; --set/--config are not allowed")
        ckpt = _latest_checkpoint(run_dir)
        if ckpt is None:
            raise UsageError(f"--resume: no checkpoint in {str(run_dir / 'checkpoints')!r}")
        total = int(steps if steps is not None else run_cfg["steps"])
        agent = load(ckpt, verbose=verbose)
        if total <= agent.num_timesteps:
            raise UsageError(f"--steps: the run already has {agent.num_timesteps} steps; pass a larger --steps to continue")
        run_cfg["steps"] = total
        write_json_atomic(cfg_path, run_cfg)
        print(f"refrl: resuming {run_cfg['algo']} on {run_cfg['env_id']} from {ckpt} ({agent.num_timesteps} steps)")
        remaining = total - agent.num_timesteps
        reset = False
    else:
        if algo is None or env_id is None:
            raise UsageError("train: ALGO and ENV_ID are required (or --resume DIR)")
        cls = get_algorithm(algo)  # ValueError naming the algorithm
        check_env_id(env_id)  # ValueError naming the env, before any work
        hp, src_steps = resolve_hyperparameters(algo, env_id, tuned=tuned, config_file=config_file, overrides=overrides)
        total = int(steps if steps is not None else (src_steps or 100_000))
        if total < 1:
            raise UsageError(f"--steps: must be >= 1, got {total}")
        agent = cls(env_id, seed=seed, verbose=verbose, **hp)
        run_dir = Path(out if out is not None else f"runs/{algo}-{env_id}-s{seed}")
        run_dir.mkdir(parents=True, exist_ok=True)
        for old in (run_dir / "checkpoints").glob("step_*.npz"):
            old.unlink()  # a new run in an old directory must not resume from stale checkpoints
        run_cfg = {"algo": algo, "env_id": env_id, "seed": seed, "steps": total,
                   "hyperparameters": agent.config.to_dict(), "command": sys.argv}
        write_json_atomic(run_dir / "config.json", run_cfg)
        remaining, reset = total, True

    agent.logger = Logger(run_dir, verbose=verbose, append=not reset)
    every = checkpoint_every or max(total // 10, agent.config.rollout_size)
    state = {"next_ckpt": (agent.num_timesteps // every + 1) * every}

    def save_checkpoint() -> Path:
        p = agent.save(run_dir / "checkpoints" / f"step_{agent.num_timesteps:012d}.npz")
        for stale in sorted((run_dir / "checkpoints").glob("step_*.npz"))[:-keep]:
            stale.unlink()
        return p

    with _StopOnSigint() as stop:
        def callback(a) -> bool:
            if a.num_timesteps >= state["next_ckpt"]:
                save_checkpoint()
                state["next_ckpt"] = (a.num_timesteps // every + 1) * every
            return not stop.requested

        agent.learn(remaining, callback=callback, progress_bar=progress, reset_num_timesteps=reset)
        save_checkpoint()
        model = agent.save(run_dir / "model.npz")
    print(f"refrl: {agent.num_timesteps} steps; model saved to {model}")
    if stop.requested:
        print(f"refrl: interrupted; continue with: refrl train --resume {run_dir}", file=sys.stderr)
    if eval_episodes > 0:
        returns = evaluate_policy(agent, n_episodes=eval_episodes, seed=10_000 + seed)
        _print_eval(returns)
        write_json_atomic(run_dir / "eval.json", {"episodes": eval_episodes, "mean": float(returns.mean()),
                                                  "std": float(returns.std()), "returns": returns.tolist(),
                                                  "num_timesteps": agent.num_timesteps})
    agent.close()
    return 130 if stop.requested else 0


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
