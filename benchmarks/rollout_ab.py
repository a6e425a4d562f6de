"""The rollout collector of another source tree (OLD) against the installed one, in one process:
alternating rollouts of the same env and policy, CPU time per vector step, no callback.

    git archive OLD_COMMIT src/refrl/rollout.py | tar -x -C /tmp/old
    python benchmarks/rollout_ab.py --old /tmp/old/src/refrl/rollout.py --env CartPole-v1 --rollouts 60

The old module is loaded beside the installed refrl (it uses the installed refrl.native and
refrl.policy), so only the collector's own code differs between the two.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

import numpy as np

import refrl.rollout as new
from refrl.policy import ActorCritic


def _load(path: str):
    spec = importlib.util.spec_from_file_location("rollout_old", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["rollout_old"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="path of the other tree's refrl/rollout.py")
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--n-envs", type=int, default=1)
    p.add_argument("--n-steps", type=int, default=2048)
    p.add_argument("--rollouts", type=int, default=60)
    args = p.parse_args()
    mods = {"old": _load(args.old), "new": new}
    envs = {k: m.make_vec_env(args.env, args.n_envs) for k, m in mods.items()}
    space_o, space_a = envs["old"].single_observation_space, envs["old"].single_action_space
    policy = ActorCritic(space_o, space_a, rng=np.random.default_rng(0))
    collectors = {k: m.RolloutCollector(envs[k], policy, m.RolloutBuffer.allocate(args.n_steps, args.n_envs, space_o,
                                                                                 space_a, np.float32), seed=0)
                  for k, m in mods.items()}
    rngs = {k: np.random.default_rng(1) for k in mods}
    times: dict[str, list[float]] = {k: [] for k in mods}
    for k, c in collectors.items():
        c.collect(rngs[k])  # warm-up
    for i in range(args.rollouts):
        for k in (("old", "new") if i % 2 == 0 else ("new", "old")):
            t0 = time.process_time()
            collectors[k].collect(rngs[k])
            times[k].append(time.process_time() - t0)
    same = np.array_equal(collectors["old"].buffer.obs, collectors["new"].buffer.obs)
    old, new_ = (np.array(times[k]) for k in ("old", "new"))
    us = 1e6 / args.n_steps
    print(f"{args.env} n_envs={args.n_envs}: median CPU us per vector step old {np.median(old) * us:.2f}, "
          f"new {np.median(new_) * us:.2f}; new/old: of medians {np.median(new_) / np.median(old):.4f}, "
          f"of minima {new_.min() / old.min():.4f}, median of pairs {np.median(new_ / old):.4f} "
          f"({args.rollouts} rollouts each; identical buffers: {same})")


if __name__ == "__main__":
    main()
