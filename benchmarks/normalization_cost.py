"""Cost per environment step of observation + reward normalisation: gymnasium's wrappers vs once per rollout.

Three collectors step the same raw vector environment with the same pre-drawn random actions
(no policy: only the environment and the normalisation are timed), one rollout of ``--n-steps``
steps each in turn, alternating their order, in one single-threaded process:

* ``raw``     -- the bare vector env (refrl.rollout.make_vec_env); the observation and the reward
                 are copied into a rollout buffer;
* ``gym``     -- gymnasium's vector wrappers, as refrl normalised before it owned the
                 normalisation: NormalizeObservation + clip ±10 (TransformObservation) and
                 NormalizeReward + ClipReward ±10, statistics updated on every step;
* ``refrl``   -- refrl.normalization as the algorithms use it: the observation normalised per
                 step with statistics frozen during the rollout (RunningMeanStd.normalize, cast to
                 float32), the raw observation kept; after the rollout one RunningMeanStd.update
                 over the buffer's valid rows and one RewardNormalizer call over its rewards.

Reported: median microseconds per env step (over the rollouts) and the extra cost over ``raw``.

    python benchmarks/normalization_cost.py --env Hopper-v5 Pendulum-v1 --n-envs 1 --rollouts 10
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from refrl.normalization import RewardNormalizer, RunningMeanStd  # noqa: E402
from refrl.rollout import make_vec_env  # noqa: E402


def gymnasium_wrappers(venv, gamma: float, clip: float = 10.0):
    """gymnasium's NormalizeObservation + clip and NormalizeReward + ClipReward around ``venv``."""
    from gymnasium.wrappers import vector as wv

    venv = wv.NormalizeObservation(venv)
    venv = wv.TransformObservation(venv, lambda o: np.clip(o, -clip, clip), venv.observation_space)
    venv = wv.NormalizeReward(venv, gamma=gamma)
    return wv.ClipReward(venv, -clip, clip)


class Collector:
    """One of the three variants: its own vector env, buffers, and per-rollout work."""

    def __init__(self, kind: str, env_id: str, n_envs: int, n_steps: int, gamma: float, seed: int) -> None:
        self.kind = kind
        self.env = make_vec_env(env_id, n_envs, vectorization_mode="sync")
        if kind == "gym":
            self.env = gymnasium_wrappers(self.env, gamma)
        obs, _ = self.env.reset(seed=seed)
        self.obs = np.asarray(obs)
        d = self.env.single_observation_space.shape
        self.buf_obs = np.zeros((n_steps, n_envs, *d), dtype=np.float32)
        self.raw_obs = np.zeros((n_steps, n_envs, *d), dtype=np.float64)
        self.rewards = np.zeros((n_steps, n_envs))
        self.terminated = np.zeros((n_steps, n_envs), dtype=bool)
        self.valid = np.zeros((n_steps, n_envs), dtype=bool)
        self.prev_done = np.zeros(n_envs, dtype=bool)
        self.obs_rms = RunningMeanStd(d)
        self.reward_norm = RewardNormalizer(n_envs, gamma)

    def rollout(self, actions: np.ndarray) -> tuple[float, float]:
        """Wall and CPU seconds of one rollout."""
        env, kind = self.env, self.kind
        t0, c0 = time.perf_counter(), time.process_time()
        for t in range(actions.shape[0]):
            if kind == "refrl":
                self.raw_obs[t] = self.obs
                self.buf_obs[t] = self.obs_rms.normalize(self.obs, dtype=np.float32)  # frozen within the rollout
            else:
                self.buf_obs[t] = self.obs
            self.valid[t] = ~self.prev_done
            obs, rew, term, trunc, _ = env.step(actions[t])
            self.obs = obs
            self.rewards[t] = rew
            self.terminated[t] = term
            self.prev_done = term | trunc
        if kind == "refrl":
            self.obs_rms.update(self.raw_obs, self.valid)
            self.rewards[:] = self.reward_norm(self.rewards, self.terminated, self.valid)
        return time.perf_counter() - t0, time.process_time() - c0


def measure(env_id: str, n_envs: int, n_steps: int, rollouts: int, seed: int, clock: int) -> dict[str, float]:
    kinds = ("raw", "gym", "refrl")
    cols = {k: Collector(k, env_id, n_envs, n_steps, 0.99, seed) for k in kinds}
    space = cols["raw"].env.action_space
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for i in range(rollouts + 1):  # the first round warms up and is dropped
        space.seed(int(rng.integers(2**31)))
        actions = np.stack([space.sample() for _ in range(n_steps)])
        order = kinds[i % 3:] + kinds[:i % 3]
        for k in order:
            dt = cols[k].rollout(actions)[clock]
            if i > 0:
                times[k].append(dt)
    for c in cols.values():
        c.env.close()
    steps = n_steps * n_envs
    return {k: 1e6 * float(np.median(v)) / steps for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", nargs="+", default=["Hopper-v5", "Pendulum-v1"])
    ap.add_argument("--n-envs", type=int, default=1)
    ap.add_argument("--n-steps", type=int, default=2048)
    ap.add_argument("--rollouts", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: process time, less sensitive to other processes on a shared machine")
    args = ap.parse_args()
    print(f"n_envs={args.n_envs} n_steps={args.n_steps} rollouts={args.rollouts} "
          f"(median {args.clock} us per env step)")
    print(f"{'env':<14}{'raw':>9}{'gym':>9}{'refrl':>9}{'gym extra':>11}{'refrl extra':>13}{'raw SPS':>10}"
          f"{'gym SPS':>10}{'refrl SPS':>11}")
    for env_id in args.env:
        us = measure(env_id, args.n_envs, args.n_steps, args.rollouts, args.seed, 0 if args.clock == "wall" else 1)
        print(f"{env_id:<14}{us['raw']:>9.1f}{us['gym']:>9.1f}{us['refrl']:>9.1f}{us['gym'] - us['raw']:>11.1f}"
              f"{us['refrl'] - us['raw']:>13.1f}{1e6 / us['raw']:>10.0f}{1e6 / us['gym']:>10.0f}{1e6 / us['refrl']:>11.0f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
