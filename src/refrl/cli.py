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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refrl", description=__doc__.splitlines()[0])
    from refrl import __version__

    parser.add_argument("--version", action="version", version=f"refrl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_selfcheck(sub)
    _add_rlhf(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
