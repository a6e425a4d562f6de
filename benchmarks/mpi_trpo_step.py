"""TRPO/NPG across MPI ranks: reduce every Fisher-vector product, or gather the batch?

    mpirun -np 2 python benchmarks/mpi_trpo_step.py [--env Pendulum-v1] [--n-steps 1024] [--repeats 20]

Each rank holds its own rollout (``--n-steps`` x 1 env, its own episodes).  Alternating, in the same
run, the time of one policy step (gradient + conjugate gradient + line search) two ways:

* reduce: each rank computes on its own batch and every product / line-search statistic is
  allreduced (what refrl does: ``trpo_step(..., comm=agent.comm)``);
* gather: the ranks' batches are allgathered and every rank runs the one-process step on all of it.

Both give the same step up to rounding; rank 0 prints the medians and the ratio.
"""

import argparse
import statistics
import time

import numpy as np

from refrl import TRPO, distributed
from refrl.algos.trpo import trpo_step

p = argparse.ArgumentParser()
p.add_argument("--env", default="Pendulum-v1")
p.add_argument("--n-steps", type=int, default=1024)
p.add_argument("--repeats", type=int, default=20)
args = p.parse_args()

comm = distributed.world()
agent = TRPO(args.env, seed=0, n_steps=args.n_steps, n_envs=1)
serial = TRPO(args.env, seed=0, n_steps=args.n_steps, n_envs=1, distributed=False)
agent.collect_rollouts()
agent.compute_advantages()
b = agent.real_transitions(True)
theta0 = agent.policy.params.copy()
cfg = agent.config
kw = dict(max_kl=cfg.max_kl, cg_iters=cfg.cg_iters, cg_damping=cfg.cg_damping, line_search_max_iter=10)


def reduce_step():
    agent.policy.params[...] = theta0
    g, logp = agent.policy_gradient(b.obs, b.actions, b.advantages)
    return trpo_step(agent.policy, b.obs, b.actions, logp, b.advantages, g, comm=comm, **kw)


def gather_step():
    serial.policy.params[...] = theta0
    obs = comm.concat(b.obs.astype(np.float64).reshape(-1)).reshape(-1, *b.obs.shape[1:]).astype(b.obs.dtype)
    act = comm.concat(b.actions.astype(np.float64).reshape(-1)).reshape(-1, *b.actions.shape[1:]).astype(b.actions.dtype)
    adv = comm.concat(b.advantages.astype(np.float64)).astype(b.advantages.dtype)
    g, logp = serial.policy_gradient(obs, act, adv)
    return trpo_step(serial.policy, obs, act, logp, adv, g, **kw)


times = {"reduce": [], "gather": []}
for _ in range(args.repeats):
    for name, fn in (("reduce", reduce_step), ("gather", gather_step)):
        comm.sum_int(0)  # line the ranks up
        t0 = time.perf_counter()
        info = fn()
        times[name].append(time.perf_counter() - t0)
a, g = reduce_step(), gather_step()
if comm.is_root:
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"{comm.size} ranks x {b.obs.shape[0]} real transitions, {agent.policy.n_policy_params} policy parameters, "
          f"{args.env}: reduce {med['reduce']:.2f} ms, gather {med['gather']:.2f} ms per step "
          f"(gather / reduce = {med['gather'] / med['reduce']:.2f}); steps agree to "
          f"{float(np.max(np.abs(a.theta - g.theta)) / np.max(np.abs(g.theta - theta0[:g.theta.size]))):.1e}")
