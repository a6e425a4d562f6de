"""PPO's update alone: CPU time of ``train()`` repeated on one rollout, for comparing installs.

After ``learn`` has collected a rollout (2048 steps for SB3's defaults, 512 for the zoo's CartPole),
``train()`` runs again and again on that same rollout (each call costs the same: the same number
of minibatches and epochs); the minimum over the calls is the least disturbed figure on a shared
machine, the median shows the noise.  Run it with each install's interpreter, alternating:

    BASE/bin/python benchmarks/ppo_train_time.py cartpole-default pendulum-default cartpole-zoo
    NEW/bin/python  benchmarks/ppo_train_time.py cartpole-default pendulum-default cartpole-zoo
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import refrl  # noqa: E402
from refrl.config import tuned_defaults  # noqa: E402

ENVS = {"cartpole": "CartPole-v1", "pendulum": "Pendulum-v1"}


def main(cases: list[str]) -> None:
    for case in cases:
        name, _, settings = case.partition("-")
        if name not in ENVS or settings not in ("default", "zoo"):
            raise SystemExit(f"unknown case {case!r}: use cartpole|pendulum-default|zoo")
        env = ENVS[name]
        agent = refrl.PPO(env, seed=0, **(tuned_defaults("ppo", env) if settings == "zoo" else {}))
        agent.learn(2048 if settings == "default" else 512, progress_bar=False)
        times = []
        for _ in range(25 if settings == "default" else 200):
            t0 = time.process_time()
            agent.train()
            times.append(time.process_time() - t0)
        print(f"{case}: train min {min(times) * 1e3:.2f} ms median {statistics.median(times) * 1e3:.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1:] or ["cartpole-default", "pendulum-default", "cartpole-zoo"])
