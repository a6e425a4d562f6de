"""Which collectives a data-parallel PPO run makes, how many per update and how long each takes.

Run under mpirun; rank 0 prints, per collective of ``refrl.distributed``, the calls per update and
the wall time inside them, split in two with the entry times of every rank (one monotonic clock on
one machine): *waiting*, from a rank's entry to the last rank's (the ranks' unequal progress, mean
over the ranks), and *after the last arrival*, from there to the rank's exit (the collective's own
cost: refrl's buffer work and the MPI transfer).  Then the time of a bare allreduce of the policy's
gradient size (2,000 back to back, after a barrier).

    mpirun -np 2 python benchmarks/mpi_collectives.py [ENV] [STEPS]     # CartPole-v1, 20480
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import refrl  # noqa: E402
from refrl.config import tuned_defaults  # noqa: E402

COLLECTIVES = ("average_", "weighted_mean", "sum", "max", "max_int", "sum_int", "any", "all", "gather", "concat",
               "agree", "check_identical", "broadcast_", "broadcast_object")


def main() -> None:
    env = sys.argv[1] if len(sys.argv) > 1 else "CartPole-v1"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20_480
    agent = refrl.PPO(env, seed=0, **tuned_defaults("ppo", env))
    comm = agent.comm
    if not comm.is_distributed:
        raise SystemExit("run under mpirun with 2 or more ranks")
    order: list[str] = []  # the collectives in call order, with their (entry, exit) times
    times: list[tuple[float, float]] = []
    for name in COLLECTIVES:
        fn = getattr(comm, name, None)
        if fn is None:
            continue

        def timed(*args, _fn=fn, _name=name, **kwargs):
            t0 = time.monotonic()
            try:
                return _fn(*args, **kwargs)
            finally:
                order.append(_name)
                times.append((t0, time.monotonic()))

        setattr(comm, name, timed)
    t0 = time.perf_counter()
    agent.learn(steps, progress_bar=False)
    wall = time.perf_counter() - t0
    n_updates = max(1, agent.num_timesteps // (agent.config.n_steps * agent.config.n_envs * comm.size))

    from mpi4py import MPI

    every = comm.comm.gather(np.array(times), root=0)  # [ranks] x [calls, (entry, exit)]
    buf = np.ones(agent.policy.params.size)
    comm.comm.Barrier()
    t1 = time.perf_counter()
    for _ in range(2000):
        comm.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    bare = (time.perf_counter() - t1) / 2000
    if comm.rank == 0:
        print(f"{env}, {comm.size} ranks: {n_updates} updates, learn() {wall:.2f} s, "
              f"{len(order) / n_updates:.1f} collectives per update")
        t = np.stack(every)
        last = t[:, :, 0].max(axis=0)  # the last rank's entry, per call
        waiting = (last - t[:, :, 0]).mean(axis=0)
        after = (t[:, :, 1] - last).clip(min=0).mean(axis=0)
        inside = t[0, :, 1] - t[0, :, 0]  # rank 0's time in each call
        names, counts = np.unique(order, return_counts=True)
        print(f"  {'':16s} {'calls':>15s} {'inside':>11s} {'per call':>13s} {'waiting':>10s} {'after last arrival':>19s}")
        for name, n in sorted(zip(names, counts), key=lambda nc: -nc[1]):
            mine = np.array(order) == name
            spent = inside[mine].sum()
            print(f"  {name:16s} {n / n_updates:6.1f} per update {spent * 1e3:8.1f} ms  "
                  f"{spent / n * 1e6:7.1f} us  {waiting[mine].sum() * 1e3:7.1f} ms  "
                  f"{after[mine].sum() * 1e3:8.1f} ms ({after[mine].mean() * 1e6:5.1f} us per call)")
        print(f"  all: waiting {waiting.sum() / wall:.1%} of learn(), after the last arrival {after.sum() / wall:.1%}")
        print(f"  bare allreduce of {buf.size} float64: {bare * 1e6:.1f} us")
    agent.close()


if __name__ == "__main__":
    main()
