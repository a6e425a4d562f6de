"""Data-parallel scaling of ``learn()`` under MPI: steps per second at 1..K ranks, against one process.

    pip install "refrl[mpi]" "refrl[mujoco]"               # mpirun in the venv; Hopper-v5
    python benchmarks/mpi_scaling.py                        # 1 and 2 ranks, CartPole/Pendulum/Hopper (zoo settings)
    python benchmarks/mpi_scaling.py --ranks 1 2 4 8 --envs Hopper-v5 --steps 50000 --repeats 3
    python benchmarks/mpi_scaling.py --envs CartPole-v1 --steps 20000 --repeats 1 --no-baselines   # a quick look
    python benchmarks/mpi_scaling.py --envs CartPole-v1 --steps 100000 --seed 1 --global-batch --no-baselines

For every environment (RL Zoo's PPO settings, ``refrl.config.tuned_defaults``) and every K, one
``mpirun -np K`` job trains ``--steps`` transitions in all; every rank runs the zoo's ``n_envs``, so
K ranks collect K times as many environments per rollout.  The runs of one environment alternate
(1, 2, ..., K, 1, 2, ...) ``--repeats`` times; the medians are reported:

* SPS(K) = total transitions / wall time of ``learn()`` (rank 0's clock, after a barrier);
* efficiency = SPS(K) / (K · SPS(1));
* comm = the share of ``learn()`` rank 0 spends inside refrl's collective operations (allreduce,
  allgather, ...); it includes waiting for the slowest rank, so load imbalance shows up here too;
* unequal = how unequally the cores ran the same work: for ``mpi K``, the longest time a rank spent
  outside the collectives over the shortest; for ``alone K``, the fastest process's SPS over the
  slowest's (1.00 on dedicated, equal cores; ranks in lockstep go at the slowest one's pace);
* eval = mean return of 10 deterministic episodes of the final policy (the same total budget);
* x SPS(1) run by run: each K-rank run against the 1-rank run just before it (the machine's speed
  drifts between runs; a pair shares its minute).

The ceiling, ``alone K`` (``--no-ceiling`` skips it): the same ``mpirun -np K`` starts K processes
that train independently (``distributed=False``, no communication at all), each on 1/K of the steps
with the same per-rank settings; SPS = all their transitions / the slowest one's wall time.  It is
what K cores of this machine give K learners that never wait for each other, so SPS(mpi K) /
SPS(alone K) is the share of it the synchronised run keeps.

``--global-batch`` keeps the zoo's rollout and minibatch for all ranks together (each rank runs
n_envs / K environments, or n_steps / K steps, and minibatches of batch_size / K), so K ranks make
the updates of one process, as many and as large; by default every rank runs all of it, and K
ranks make K times larger updates, K times fewer of them, for the same number of transitions.

Baselines in the same run (``--no-baselines`` skips them): one process with K·n_envs environments
in gymnasium's ``AsyncVectorEnv`` (refrl's ``vectorization_mode="async"``, one subprocess per
environment), and Stable-Baselines3's PPO with ``SubprocVecEnv`` over K·n_envs environments (when
stable-baselines3 is installed).  Each rank uses one BLAS thread.  Nothing here asserts.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

COLLECTIVES = ("average_", "weighted_mean", "sum", "max", "max_int", "sum_int", "any", "all", "gather", "concat",
               "agree", "check_identical", "broadcast_", "broadcast_object", "check_config")


def _timed(comm) -> dict[str, float]:
    """Wrap the communicator's collective methods with a wall-clock accumulator."""
    spent = {"s": 0.0, "calls": 0}
    for name in COLLECTIVES:
        fn = getattr(comm, name)

        def wrapper(*args, _fn=fn, **kwargs):
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                spent["s"] += time.perf_counter() - t0
                spent["calls"] += 1

        setattr(comm, name, wrapper)
    return spent


def worker(env_id: str, steps: int, seed: int, mode: str) -> None:
    """One measured run (under mpirun for mode "mpi"); prints one JSON line on rank 0."""
    import numpy as np

    import refrl
    from refrl.config import tuned_defaults
    from refrl.evaluation import evaluate_policy

    hp = tuned_defaults("ppo", env_id)
    k_ranks = int(os.environ["BENCH_K"])
    if mode in ("mpi", "alone") and os.environ.get("BENCH_GLOBAL_BATCH") == "1" and k_ranks > 1:
        hp.update(_share_of_batch(hp, k_ranks))
    if mode == "alone":
        return alone_worker(env_id, steps, seed, hp, k_ranks)
    if mode == "async":  # one process, K·n_envs environments in subprocesses
        hp.update(n_envs=k_ranks * hp.get("n_envs", 1), vectorization_mode="async")
    agent = refrl.PPO(env_id, seed=seed, **hp)
    spent = _timed(agent.comm) if agent.comm.is_distributed else {"s": 0.0, "calls": 0}
    if agent.comm.is_distributed:
        agent.comm.comm.Barrier()
    t0 = time.perf_counter()
    agent.learn(steps)
    wall = time.perf_counter() - t0
    # each rank's time outside the collectives: the same work, so their ratio is how unequal the cores ran
    busy = agent.comm.comm.gather(wall - spent["s"], root=0) if agent.comm.is_distributed else None
    if agent.comm.is_root:
        ev = float(np.mean(evaluate_policy(agent, n_episodes=10, seed=10_000)))
        res = {"sps": agent.num_timesteps / wall, "wall": wall, "comm_s": spent["s"], "calls": spent["calls"],
               "eval": ev, "steps": agent.num_timesteps}
        if busy is not None:
            res["unequal"] = max(busy) / min(busy)
        print("RESULT " + json.dumps(res), flush=True)
    agent.close()


def alone_worker(env_id: str, steps: int, seed: int, hp: dict, k: int) -> None:
    """The ceiling of the K-rank run: under ``mpirun -np K`` every process trains its own agent on
    steps / K transitions (``distributed=False``: no communication; every rank with the zoo's
    settings, a seed of its own), all started together after a barrier.  SPS = all processes'
    transitions / the slowest one's wall time: what K cores give K independent learners here."""
    from mpi4py import MPI

    import refrl

    world = MPI.COMM_WORLD
    agent = refrl.PPO(env_id, seed=seed + world.rank, distributed=False, **hp)
    world.Barrier()
    t0 = time.perf_counter()
    agent.learn(steps // k)
    wall = time.perf_counter() - t0
    done = world.gather((agent.num_timesteps, wall), root=0)
    if world.rank == 0:  # (no evaluation: each agent saw only its own share of the budget)
        total, slowest = sum(n for n, _ in done), max(w for _, w in done)
        speeds = [n / w for n, w in done]
        print("RESULT " + json.dumps({"sps": total / slowest, "wall": slowest, "comm_s": 0.0, "calls": 0,
                                      "eval": None, "steps": total, "unequal": max(speeds) / min(speeds)}),
              flush=True)
    agent.close()


def _share_of_batch(hp: dict, k: int) -> dict:
    """One rank's share of the zoo's rollout and minibatch when K ranks keep its global batch:
    n_envs / K environments (or n_steps / K steps when n_envs does not divide), batch_size / K."""
    from refrl.config import PPOConfig

    n_envs, n_steps = hp.get("n_envs", PPOConfig.n_envs), hp.get("n_steps", PPOConfig.n_steps)
    batch_size = hp.get("batch_size", PPOConfig.batch_size)
    if batch_size % k:
        raise SystemExit(f"--global-batch: batch_size {batch_size} is not divisible by {k} ranks")
    if n_envs % k == 0:
        return {"n_envs": n_envs // k, "batch_size": batch_size // k}
    if n_steps % k == 0:
        return {"n_steps": n_steps // k, "batch_size": batch_size // k}
    raise SystemExit(f"--global-batch: neither n_envs {n_envs} nor n_steps {n_steps} is divisible by {k} ranks")


def sb3_worker(env_id: str, steps: int, seed: int, k: int) -> None:
    import numpy as np
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from refrl.config import tuned_defaults

    torch.set_num_threads(1)
    hp = dict(tuned_defaults("ppo", env_id))
    n_envs = k * hp.pop("n_envs", 1)
    for key in ("normalize_obs", "normalize_reward", "anneal_lr", "anneal_clip_range", "net_arch", "activation",
                "ortho_init", "log_std_init", "vectorization_mode", "dtype", "clip_obs", "clip_reward"):
        hp.pop(key, None)
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env_cls=SubprocVecEnv)
    model = PPO("MlpPolicy", env, seed=seed, verbose=0, **hp)
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    ev = float(np.mean(evaluate_policy(model, make_vec_env(env_id, n_envs=1, seed=10_000), n_eval_episodes=10)[0]))
    print("RESULT " + json.dumps({"sps": steps / wall, "wall": wall, "comm_s": 0.0, "calls": 0, "eval": ev,
                                  "steps": steps}), flush=True)
    env.close()


def _mpirun() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "mpirun")
    found = beside if os.path.exists(beside) else shutil.which("mpirun")
    if found is None:
        raise SystemExit('mpirun not found: pip install "refrl[mpi]"')
    return found


def _launch(cmd: list[str], env: dict[str, str]) -> dict | None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    print(f"  failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-1500:]}", file=sys.stderr)
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--envs", nargs="+", default=["CartPole-v1", "Pendulum-v1", "Hopper-v5"])
    p.add_argument("--steps", type=int, default=100_000, help="total transitions per run (all ranks)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baselines", dest="baselines", action="store_false")
    p.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                   help="skip the 'alone K' row: K processes under the same mpirun training independently "
                        "(no communication), each on 1/K of the steps, the most K cores give here")
    p.add_argument("--global-batch", action="store_true",
                   help="K ranks share the zoo's rollout and minibatch (n_envs or n_steps / K, batch_size / K) "
                        "instead of each running all of it: the same updates as one process, for returns at the same budget")
    p.add_argument("--worker", nargs=3, metavar=("MODE", "ENV", "K"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        mode, env_id, k = args.worker
        os.environ["BENCH_K"] = k
        if mode == "sb3":
            sb3_worker(env_id, args.steps, args.seed, int(k))
        else:
            worker(env_id, args.steps, args.seed, mode)
        return

    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               BENCH_GLOBAL_BATCH="1" if args.global_batch else "0")
    me = [sys.executable, os.path.abspath(__file__), "--steps", str(args.steps), "--seed", str(args.seed)]
    cores = os.cpu_count() or 1
    batch = "K ranks share the zoo's batch" if args.global_batch else "every rank runs the zoo's n_envs"
    print(f"{cores} cores; {args.steps} steps per run; medians of {args.repeats}; {batch}")
    for env_id in args.envs:
        runs: dict[str, list[dict]] = {}
        for _ in range(args.repeats):  # alternate the configurations
            for k in args.ranks:
                launcher = [_mpirun(), "-np", str(k), *(["--oversubscribe"] if k > cores else []), *me, "--worker"]
                res = _launch([*launcher, "mpi", env_id, str(k)], env)
                if res:
                    runs.setdefault(f"mpi {k}", []).append(res)
                if args.ceiling and k > 1:  # K independent learners under the same launcher
                    res = _launch([*launcher, "alone", env_id, str(k)], dict(env, REFRL_DISTRIBUTED="0"))
                    if res:
                        runs.setdefault(f"alone {k}", []).append(res)
                if args.baselines and k > 1:
                    res = _launch([*me, "--worker", "async", env_id, str(k)], env)
                    if res:
                        runs.setdefault(f"async 1x{k}", []).append(res)
                    try:
                        import stable_baselines3  # noqa: F401
                    except ImportError:
                        pass
                    else:
                        res = _launch([*me, "--worker", "sb3", env_id, str(k)], env)
                        if res:
                            runs.setdefault(f"sb3 subproc x{k}", []).append(res)
        base = statistics.median(r["sps"] for r in runs.get("mpi 1", [])) if runs.get("mpi 1") else None
        print(f"\n{env_id}")
        print(f"  {'run':<16}{'SPS':>9}{'x SPS(1)':>10}{'efficiency':>12}{'comm':>8}{'unequal':>9}{'eval':>10}"
              "   x SPS(1) run by run (each against the 1-rank run just before it)")
        for name, rs in runs.items():
            sps = statistics.median(r["sps"] for r in rs)
            comm = statistics.median(r["comm_s"] / r["wall"] for r in rs)
            unequals = [r["unequal"] for r in rs if "unequal" in r]  # (not measured for one process)
            unequal = f"{statistics.median(unequals):.2f}" if unequals else "-"
            evals = [r["eval"] for r in rs if r["eval"] is not None]
            ev = f"{statistics.median(evals):.1f}" if evals else "-"
            k = int(name.split()[-1].split("x")[-1]) if name != "mpi 1" else 1
            ratio = f"{sps / base:.2f}" if base else "-"
            eff = f"{sps / (k * base):.2f}" if base and name.startswith(("mpi", "alone")) else "-"
            pairs = ""
            if base and name != "mpi 1":  # the runs alternate: repeat i of this row follows repeat i of "mpi 1"
                pairs = "   " + " ".join(f"{r['sps'] / r1['sps']:.2f}" for r, r1 in zip(rs, runs["mpi 1"]))
            print(f"  {name:<16}{sps:>9.0f}{ratio:>10}{eff:>12}{comm:>8.1%}{unequal:>9}{ev:>10}{pairs}")


if __name__ == "__main__":
    main()
