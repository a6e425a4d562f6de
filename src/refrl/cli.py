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
    p.add_argument("env_id", nargs="?", help="gymnasium environment id, e.g. CartPole-v1")
    p.add_argument("--steps", type=int, default=None, help="total environment steps (default: the zoo budget, else 100000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run directory (default runs/ALGO-ENV-sSEED)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", help="override a hyperparameter")
    p.add_argument("--config", dest="config_file", default=None, help="JSON file of hyperparameters")
    p.add_argument("--no-tuned", dest="tuned", action="store_false", help="ignore the per-environment tuned defaults")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its newest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (without it a non-empty --out is refused)")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="N", help="steps between checkpoints (default steps/10)")
    p.add_argument("--keep", type=int, default=3, help="checkpoints to keep")
    p.add_argument("--eval-episodes", type=int, default=10, help="deterministic evaluation episodes after training (0: none)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("-v", "--verbose", action="count", default=0, help="print the metrics table after every update")
    p.add_argument("--params", action="store_true", help="list the hyperparameters of ALGO (defaults and meaning) and exit")

    def run(args: argparse.Namespace) -> int:
        from refrl import runs

        if args.params:
            from refrl.algos import get_algorithm

            cls = get_algorithm(args.algo or "ppo")
            for name, (default, doc) in cls.config_class.field_docs().items():
                print(f"{name:<22} {default!r:<12} {doc}")
            return 0
        return runs.train_run(
            algo=args.algo, env_id=args.env_id, steps=args.steps, seed=args.seed, out=args.out,
            overrides=runs.parse_overrides(args.overrides), config_file=args.config_file, tuned=args.tuned,
            resume=args.resume, checkpoint_every=args.checkpoint_every, keep=args.keep,
            eval_episodes=args.eval_episodes, progress=args.progress, verbose=args.verbose, overwrite=args.overwrite,
        )

    p.set_defaults(func=lambda args: _run_guarded(p, lambda: run(args)))


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a trained agent (run directory or .npz checkpoint)")
    p.add_argument("path", help="run directory (uses its model.npz) or checkpoint file")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mode")
    p.add_argument("--env", dest="env_id", default=None, help="evaluate on this env id instead of the training one")

    def run(args: argparse.Namespace) -> int:
        from refrl import runs

        return runs.eval_run(args.path, episodes=args.episodes, seed=args.seed, stochastic=args.stochastic,
                             env_id=args.env_id)

    p.set_defaults(func=lambda args: _run_guarded(p, lambda: run(args)))


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="learning curves of run directories (needs matplotlib: refrl[plot])")
    p.add_argument("dirs", nargs="+", help="run directories (their metrics.csv)")
    p.add_argument("-o", "--output", default="curves.png")
    p.add_argument("--x", default="time/total_timesteps")
    p.add_argument("--y", dest="ys", action="append", default=None, help="metric(s) to plot (default rollout/ep_rew_mean)")

    def run(args: argparse.Namespace) -> int:
        from refrl import runs

        return runs.plot_runs(args.dirs, output=args.output, x=args.x, ys=args.ys or ["rollout/ep_rew_mean"])

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
