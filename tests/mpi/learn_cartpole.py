"""Run under mpirun -np 2: PPO with RL Zoo's CartPole-v1 settings learns across ranks.

The zoo's 8 environments and minibatch of 256 are split over the 2 ranks (4 environments and a
minibatch of 128 each); the ranks average every gradient step over the union of their minibatches,
so each update is the zoo's one-process update on 8 environments.  Rank 0 evaluates the final
policy (deterministic, 20 episodes) and prints ``EVAL <mean> <num_timesteps>``.
"""

import sys

import numpy as np

import refrl
from refrl.evaluation import evaluate_policy
from refrl import distributed
from refrl.config import tuned_defaults

steps, seed = int(sys.argv[1]), int(sys.argv[2])
comm = distributed.world()
assert comm.size == 2, comm.size
hp = {**tuned_defaults("ppo", "CartPole-v1"), "n_envs": 4, "batch_size": 128}
agent = refrl.PPO("CartPole-v1", seed=seed, **hp).learn(steps)
comm.check_identical(agent.policy.params, "final parameters")
if comm.is_root:
    returns = evaluate_policy(agent, n_episodes=20, seed=1000)
    print(f"EVAL {float(np.mean(returns)):.2f} {agent.num_timesteps}", flush=True)
agent.close()
