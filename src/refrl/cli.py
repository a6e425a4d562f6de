"""The `refrl` command: train | eval | plot | selfcheck | rlhf.

Each area registers its own subcommands through one ``_add_*`` function below,
so the parser stays in one place and each command's code stays with its layer.
"""

from __future__ import annotations

import argparse
import sys


def _add_selfcheck(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("selfcheck", help="check the installed compiled core against the pure-Python oracles")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--trials", type=int, default=20, help="random inputs per kernel")

    def run(args: argparse.Namespace) -> int:
        from refrl.selfcheck import run_selfcheck

        return run_selfcheck(seed=args.seed, trials=args.trials)

    p.set_defaults(func=run)


def _add_rlhf(sub: argparse._SubParsersAction) -> None:
    from refrl.rlhf.cli import add_rlhf_parser

    add_rlhf_parser(sub)


def _run_guarded(p: argparse.ArgumentParser, fn) -> int:
    """Bad inputs (unknown env/algorithm, invalid hyperparameters, missing files) -> usage error, exit 2."""
    from refrl.distributed import RemoteRankError

    try:
        return fn()
    except RemoteRankError as exc:  # under MPI: another rank failed and printed its error
        print(f"refrl: stopped because {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileNotFoundError) as exc:
        p.error(str(exc))
        return 2


def _search_cwd_for_env_modules() -> None:
    """A ``module:EnvId`` id imports ``module``: look for it in the current directory too (last, so
    that it shadows nothing installed), as ``python -m`` would."""
    import os

    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())


def _print_params(args: argparse.Namespace) -> int:
    """``--params``: every value the run will use and where it comes from."""
    from refrl import runs

    if args.resume is not None:
        import json
        from pathlib import Path

        cfg_path = Path(args.resume) / "config.json"
        if not cfg_path.is_file():
            raise runs.UsageError(f"--resume: {args.resume!r} is not a run directory (no config.json)")
        cfg = json.loads(cfg_path.read_text())
        rows = [("steps", args.steps or cfg["steps"], "--steps" if args.steps else "run", "total environment steps")]
        rows += [(k, v, "run", "") for k, v in cfg["hyperparameters"].items()]
        heading = f"{cfg['algo']} on {cfg['env_id']}: the values of the run in {args.resume}"
    else:
        algo = args.algo or "ppo"
        rows = runs.describe_hyperparameters(
            algo, args.env_id, tuned=args.tuned, config_file=args.config_file,
            overrides=runs.parse_overrides(args.overrides), steps=args.steps,
            env_kwargs=runs.parse_env_kwargs(args.env_kwargs))
        heading = (f"{algo} on {args.env_id}: the values this run will use" if args.env_id else
                   f"{algo}: the defaults (give ENV_ID for its tuned values)")
        heading += "; source: default < tuned (RL Zoo) < config (--config) < --set"
    print(f"# {heading}")
    print(f"{'name':<22} {'value':<12} {'source':<9} meaning")
    for name, value, source, doc in rows:
        print(f"{name:<22} {value!r:<12} {source:<9} {doc}".rstrip())
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    from refrl.algos import ALGORITHMS

    p = sub.add_parser(
        "train",
        help="train an agent on a gymnasium environment",
        description="Train ALGO on ENV_ID. Hyperparameters: RL Baselines3 Zoo's tuned values for ENV_ID where "
        "published (--no-tuned: the algorithm's SB3 defaults) < --config FILE.json < --set key=value. "
        "List them with --params.",
    )
    p.add_argument("algo", nargs="?", choices=sorted(ALGORITHMS), help="algorithm")
    p.add_argument("env_id", nargs="?",
                   help="gymnasium environment id, e.g. CartPole-v1, or module:EnvId (importing module registers it)")
    p.add_argument("--steps", type=int, default=None, help="total environment steps (default: the zoo budget, else 100000)")
    p.add_argument("--seed", type=int, default=None, help="seed of the run (default 0)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S",
                   help="one run per seed into OUT/seed_S (OUT default runs/ALGO-ENV); see --jobs")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="with --seeds: run N seeds at a time, each in its own process (default 1: one after the other)")
    p.add_argument("--out", default=None, help="run directory (default runs/ALGO-ENV-sSEED)")
    p.add_argument("--env-kwargs", dest="env_kwargs", nargs="+", action="extend", default=None, metavar="KEY=VALUE",
                   help="keyword arguments of gymnasium.make; values are JSON or Python literals, else strings")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write TensorBoard event files, into DIR/ALGO_N (needs refrl[tensorboard])")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", help="override a hyperparameter")
    p.add_argument("--config", dest="config_file", default=None, help="JSON file of hyperparameters")
    p.add_argument("--no-tuned", dest="tuned", action="store_false", help="ignore the per-environment tuned defaults")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its newest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (without it a non-empty --out is refused)")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="N", help="steps between checkpoints (default steps/10)")
    p.add_argument("--keep", type=int, default=3, help="checkpoints to keep")
    p.add_argument("--eval-episodes", type=int, default=10,
                   help="deterministic evaluation episodes after training (0: none), and of each --eval-every evaluation")
    p.add_argument("--eval-every", type=int, default=None, metavar="N",
                   help="evaluate every N steps on a separate env; the best model is kept as DIR/best_model.npz and "
                        "every result in DIR/evaluations.npz")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("-v", "--verbose", action="count", default=0, help="print the metrics table after every update")
    p.add_argument("--params", action="store_true",
                   help="list the values the run will use (with ENV_ID, --config, --set: tuned and overridden), "
                        "where each comes from and its meaning, and exit")

    def run(args: argparse.Namespace) -> int:
        from refrl import runs

        if args.env_id is not None and ":" in args.env_id:
            _search_cwd_for_env_modules()
        if args.params:
            return _print_params(args)
        common = dict(
            algo=args.algo, env_id=args.env_id, steps=args.steps, out=args.out,
            overrides=runs.parse_overrides(args.overrides), config_file=args.config_file, tuned=args.tuned,
            checkpoint_every=args.checkpoint_every, keep=args.keep, eval_episodes=args.eval_episodes,
            progress=args.progress, verbose=args.verbose, overwrite=args.overwrite,
            env_kwargs=runs.parse_env_kwargs(args.env_kwargs), tensorboard=args.tensorboard,
            eval_every=args.eval_every,
        )
        if args.seeds is not None:
            if args.seed is not None:
                raise runs.UsageError("--seeds: give either --seed S or --seeds S1 S2 ..., not both")
            if args.resume is not None:
                raise runs.UsageError("--seeds: not with --resume (resume each OUT/seed_S on its own)")
            return runs.train_seeds(seeds=args.seeds, jobs=args.jobs, **common)
        if args.jobs != 1:
            raise runs.UsageError("--jobs: only with --seeds")
        return runs.train_run(seed=0 if args.seed is None else args.seed, resume=args.resume, **common)

    p.set_defaults(func=lambda args: _run_guarded(p, lambda: run(args)))


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a trained agent (run directory or .npz checkpoint)")
    p.add_argument("path", help="run directory (uses its model.npz) or checkpoint file")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mode")
    p.add_argument("--env", dest="env_id", default=None,
                   help="evaluate on this env id (or module:EnvId) instead of the training one")

    def run(args: argparse.Namespace) -> int:
        from refrl import runs

        _search_cwd_for_env_modules()  # the run's own id may be module:EnvId

        return runs.eval_run(args.path, episodes=args.episodes, seed=args.seed, stochastic=args.stochastic,
                             env_id=args.env_id)

    p.set_defaults(func=lambda args: _run_guarded(p, lambda: run(args)))


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot", help="learning curves of runs and run groups (needs matplotlib: refrl[plot])",
        description="One curve per DIR: a run directory, or a run group (DIR/seed_S from train --seeds) drawn as "
        "the mean over its seeds with a band, on the steps all its seeds reach (seeds interpolated linearly).")
    p.add_argument("dirs", nargs="+", help="run directories or run groups (their metrics.csv)")
    p.add_argument("-o", "--output", default="curves.png", help="image file: .png, .pdf or .svg")
    p.add_argument("--x", default="time/total_timesteps")
    p.add_argument("--y", dest="ys", action="append", default=None, help="metric(s) to plot (default rollout/ep_rew_mean)")
    p.add_argument("--band", default="std", choices=("std", "minmax", "none"),
                   help="band over seeds: mean ± 1 sample std (default), min-max, or none")
    p.add_argument("--smooth", type=int, default=1, metavar="W",
                   help="trailing moving average over W updates of each seed before averaging (default 1: none)")
    p.add_argument("--title", default=None, help="figure title (default 'ALGO on ENV' when all runs share them)")
    p.add_argument("--xlabel", default=None)
    p.add_argument("--ylabel", default=None)
    p.add_argument("--labels", nargs="+", default=None, help="legend label of each DIR (default its folder name)")

    def run(args: argparse.Namespace) -> int:
        from refrl import plots

        return plots.plot_runs(args.dirs, output=args.output, x=args.x, ys=args.ys or ["rollout/ep_rew_mean"],
                              band=args.band, smooth=args.smooth, title=args.title, xlabel=args.xlabel,
                              ylabel=args.ylabel, labels=args.labels)

    p.set_defaults(func=lambda args: _run_guarded(p, lambda: run(args)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refrl", description=__doc__.splitlines()[0])
    from refrl import __version__

    parser.add_argument("--version", action="version", version=f"refrl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_selfcheck(sub)
    _add_rlhf(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_plot(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from refrl.threads import default_blas_to_one_thread  # imports no NumPy

    default_blas_to_one_thread()
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
