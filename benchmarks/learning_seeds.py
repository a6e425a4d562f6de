"""Evaluation returns of the seeded learning runs over several seeds, to judge a change that alters
rounding (RL training is chaotic: the same seed then follows another trajectory).

Cases are the learning tests' settings (RL Zoo tuned hyperparameters) and the README's default
PPO run; each prints, per seed, the mean deterministic return over 10 evaluation episodes
(evaluation seeds 10_000 + i, as the tests). Run it with two installs and compare.

    python benchmarks/learning_seeds.py --cases ppo-cartpole-zoo --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import refrl  # noqa: E402
from refrl.config import tuned_defaults  # noqa: E402
from refrl.evaluation import evaluate_policy  # noqa: E402

CASES = {
    # name: (algorithm, env, steps, zoo hyperparameters?)  -- the learning tests' runs
    "ppo-cartpole-zoo": ("PPO", "CartPole-v1", 50_000, True),
    "ppo-cartpole-default": ("PPO", "CartPole-v1", 50_000, False),  # the README's command
    "ppo-pendulum-zoo": ("PPO", "Pendulum-v1", 60_000, True),
    "trpo-cartpole-zoo": ("TRPO", "CartPole-v1", 60_000, True),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = ap.parse_args()
    for case in args.cases:
        algo, env, steps, zoo = CASES[case]
        hp = tuned_defaults(algo.lower(), env) if zoo else {}
        scores = []
        for seed in args.seeds:
            agent = getattr(refrl, algo)(env, seed=seed, **hp).learn(steps, progress_bar=False)
            scores.append(float(evaluate_policy(agent, n_episodes=10, seed=10_000).mean()))
            print(f"{case} seed {seed}: {scores[-1]:.1f}", flush=True)
        print(f"{case}: " + " ".join(f"{s:.1f}" for s in scores) + f"  (mean {sum(scores) / len(scores):.1f})",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
