"""PPO learn() speed of two refrl installs (e.g. a commit before and after a change), alternated.

Each install is a Python interpreter with refrl installed (a venv). For every repetition the two
run one after the other, each in its own process: ``PPO(env, seed=0).learn(2048)`` to warm up,
then ``learn(steps)`` timed by process CPU time (less disturbed by other jobs than wall time).
Prints every run and the medians; the spread between repetitions is the noise of the machine.

    git worktree add /tmp/base <commit> && python -m venv /tmp/basev && /tmp/basev/bin/pip install /tmp/base
    python benchmarks/ppo_ab_installs.py --base /tmp/basev/bin/python --new .venv/bin/python \\
        --cases cartpole-default pendulum-default cartpole-zoo --steps 30000 --reps 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

CHILD = r"""
import os, sys, time
os.environ["OPENBLAS_NUM_THREADS"] = "1"
import refrl
from refrl.config import tuned_defaults
case, steps = sys.argv[1], int(sys.argv[2])
env = {"cartpole": "CartPole-v1", "pendulum": "Pendulum-v1", "hopper": "Hopper-v5"}[case.split("-")[0]]
hp = tuned_defaults("ppo", env) if case.endswith(("zoo", "zoo+norm")) else {}
if case.endswith("+norm"):
    hp.update(normalize_obs=True, normalize_reward=True)
agent = refrl.PPO(env, seed=0, **hp)
agent.learn(2048, progress_bar=False)
c = time.process_time()
agent.learn(steps, progress_bar=False)
print(agent.num_timesteps / (time.process_time() - c))
"""


def run(python: str, case: str, steps: int) -> float:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([python, "-c", CHILD, case, str(steps)], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="Python interpreter of the baseline install")
    ap.add_argument("--new", required=True, help="Python interpreter of the changed install")
    ap.add_argument("--cases", nargs="+", default=["cartpole-default", "pendulum-default", "cartpole-zoo"],
                    choices=["cartpole-default", "pendulum-default", "cartpole-zoo", "pendulum-zoo+norm", "hopper-zoo"],
                    help="ENV-default: refrl's defaults; ENV-zoo: the tuned settings (Hopper's normalise); "
                         "+norm: with normalize_obs and normalize_reward")
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--reps", type=int, default=6)
    args = ap.parse_args()
    print("| case | base CPU-time SPS (each run) | new CPU-time SPS (each run) | median base | median new | new / base |")
    print("|---|---|---|---|---|---|")
    for case in args.cases:
        base, new = [], []
        for _ in range(args.reps):
            base.append(run(args.base, case, args.steps))
            new.append(run(args.new, case, args.steps))
        mb, mn = statistics.median(base), statistics.median(new)
        print(f"| {case} | {' '.join(f'{x:.0f}' for x in base)} | {' '.join(f'{x:.0f}' for x in new)} | "
              f"{mb:.0f} | {mn:.0f} | {mn / mb:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
