"""MultiBinary actions: PPO with the fused native Bernoulli sampling vs the native forward pass
followed by the NumPy sampling (``Bernoulli.sample_with_log_prob``), alternating in one process.

The task is CopyBits (the learning test's: n random bits shown, reward = the fraction of the
action's bits equal to them, 8-step episodes). CPU time of ``learn`` per run, single-threaded BLAS.

    python benchmarks/act_bernoulli.py --steps 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402

import refrl  # noqa: E402
from refrl import native  # noqa: E402


class CopyBitsEnv(gym.Env):
    """n random bits per step (MultiBinary); action n bits; reward = fraction equal; 8 steps."""

    def __init__(self, n: int = 4) -> None:
        self.n = n
        self.observation_space = spaces.MultiBinary(n)
        self.action_space = spaces.MultiBinary(n)
        self.t = 0
        self.bits = np.zeros(n, dtype=np.int8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.bits = self.np_random.integers(0, 2, self.n, dtype=np.int8)
        return self.bits.copy(), {}

    def step(self, action):
        reward = float((np.asarray(action) == self.bits).mean())
        self.t += 1
        self.bits = self.np_random.integers(0, 2, self.n, dtype=np.int8)
        return self.bits.copy(), reward, False, self.t >= 8, {}


gym.register("bench/CopyBits-v0", entry_point=CopyBitsEnv)


def run(steps: int, fused: bool, seed: int) -> tuple[float, float]:
    agent = refrl.PPO("bench/CopyBits-v0", seed=seed, n_envs=4, n_steps=128, batch_size=128)
    native._acting_network(agent.policy).bernoulli = fused  # False: forward natively, sample in NumPy
    c0 = time.process_time()
    agent.learn(steps)
    cpu = time.process_time() - c0
    agent.close()
    return cpu, float(agent.ep_rew_mean)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| round | NumPy sampling CPU s | fused CPU s | ratio (NumPy / fused) | ep_rew_mean NumPy / fused |")
    print("|---|---|---|---|---|")
    ratios = []
    for r in range(args.rounds):
        old_cpu, old_ret = run(args.steps, False, args.seed)
        new_cpu, new_ret = run(args.steps, True, args.seed)
        ratios.append(old_cpu / new_cpu)
        print(f"| {r} | {old_cpu:.2f} | {new_cpu:.2f} | {ratios[-1]:.2f} | {old_ret:.3f} / {new_ret:.3f} |", flush=True)
    print(f"median ratio {np.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
