"""refrl TRPO vs sb3-contrib TRPO: same env, hyperparameters, seeds and step budget, one after
the other in the same process, both single-threaded.

    pip install torch==2.13.0 stable-baselines3 sb3-contrib    # the peer; never a runtime dependency
    python benchmarks/vs_sb3_trpo.py                            # SPS + eval (CartPole-v1, Pendulum-v1) and per-update times
    python benchmarks/vs_sb3_trpo.py --cases cartpole-zoo --seeds 0 1 2 --update-repeats 50

Learning runs: SPS = environment transitions per second of ``learn()`` (collection + updates);
eval = mean raw return of 10 deterministic episodes seeded 10_000 + i, identical code for both.
Hyperparameters map one to one (refrl -> sb3-contrib): max_kl -> target_kl, cg_iters ->
cg_max_steps, cg_damping, line_search_shrink -> line_search_shrinking_factor,
line_search_max_iter, n_critic_updates, batch_size (critic minibatch), fvp_subsample ->
sub_sampling_factor, learning_rate (critic Adam, eps 1e-5 on both sides), normalize_advantage,
net_arch / activation / ortho_init / log_std_init.  Pendulum uses no gSDE on either side.

Per-update timing: one rollout of 2048 steps (1 env) with a (64, 64) tanh policy is collected,
then ``train()`` is timed on it, repeatedly (median), on both sides:
  policy update = train() with n_critic_updates=0: gradient, CG (10 iterations) over Fisher-
                  vector products, step scaling and the backtracking line search;
  full update   = train() with the default critic epochs (10 x minibatch 128) as well.
Threads: OMP/OPENBLAS/MKL_NUM_THREADS=1 are set before NumPy/torch load and torch.set_num_threads(1).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from vs_sb3 import evaluate  # noqa: E402  (same evaluation protocol as the PPO benchmark)

import refrl  # noqa: E402
from refrl.config import TRPOConfig, tuned_defaults  # noqa: E402

CASES: dict[str, dict[str, Any]] = {
    "cartpole-zoo": dict(env="CartPole-v1", steps=100_000, hp=tuned_defaults("trpo", "CartPole-v1")),
    "pendulum-zoo": dict(env="Pendulum-v1", steps=100_000, hp=tuned_defaults("trpo", "Pendulum-v1")),
}


def sb3_kwargs(hp: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """refrl TRPO hyperparameters -> sb3-contrib TRPO keyword arguments (and n_envs)."""
    import torch

    cfg = TRPOConfig.from_kwargs(**hp)
    kw = dict(
        n_steps=cfg.n_steps, batch_size=cfg.batch_size, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda,
        learning_rate=cfg.learning_rate, n_critic_updates=cfg.n_critic_updates, cg_max_steps=cfg.cg_iters,
        cg_damping=cfg.cg_damping, line_search_shrinking_factor=cfg.line_search_shrink,
        line_search_max_iter=cfg.line_search_max_iter, target_kl=cfg.max_kl,
        normalize_advantage=cfg.normalize_advantage, sub_sampling_factor=cfg.fvp_subsample,
        policy_kwargs=dict(
            net_arch=dict(pi=list(cfg.net_arch), vf=list(cfg.net_arch)),
            activation_fn={"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[cfg.activation],
            ortho_init=cfg.ortho_init, log_std_init=cfg.log_std_init,
        ),
    )
    if cfg.normalize_obs or cfg.normalize_reward or cfg.anneal_lr:
        raise ValueError("this benchmark's cases use no normalisation and no LR annealing")
    return kw, cfg.n_envs


def run_refrl(env_id: str, steps: int, hp: dict[str, Any], seed: int) -> dict[str, float]:
    agent = refrl.TRPO(env_id, seed=seed, **hp)
    t0 = time.perf_counter()
    agent.learn(steps)
    dt = time.perf_counter() - t0
    ret = evaluate(lambda o: agent.predict(o, deterministic=True)[0], env_id)
    agent.close()
    return {"sps": agent.num_timesteps / dt, "eval": ret}


def run_sb3(env_id: str, steps: int, hp: dict[str, Any], seed: int) -> dict[str, float]:
    import torch
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    kw, n_envs = sb3_kwargs(hp)
    model = TRPO("MlpPolicy", make_vec_env(env_id, n_envs=n_envs, seed=seed), seed=seed, device="cpu", verbose=0, **kw)
    t0 = time.perf_counter()
    model.learn(steps)
    dt = time.perf_counter() - t0
    ret = evaluate(lambda o: model.predict(o, deterministic=True)[0], env_id)
    return {"sps": model.num_timesteps / dt, "eval": ret}


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def update_times(env_id: str, n_critic_updates: int, repeats: int, seed: int = 0) -> tuple[float, float, float, float]:
    """Median ms of one train() on a 2048-step rollout, (64, 64) policy: (refrl, sb3, refrl policy_step
    only: the gradient, native CG over the native Fisher operator, the NumPy line search)."""
    import torch
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    hp = dict(n_envs=1, n_steps=2048, batch_size=128, net_arch=(64, 64), n_critic_updates=n_critic_updates)
    ours = refrl.TRPO(env_id, seed=seed, **hp)
    ours.collect_rollouts()
    ours.compute_advantages()
    from refrl.threads import blas_threads

    with blas_threads():
        t_ours = _median_ms(ours.train, repeats)
        b = ours.flat_batch()
        idx = np.flatnonzero(b.weights > 0)
        obs, act, adv = b.obs[idx], b.actions[idx], b.advantages[idx]
        adv = (adv - adv.mean()) / (adv.std(ddof=1) + 1e-8)
        t_step = _median_ms(lambda: ours.policy_step(obs, act, adv), repeats)

    kw, _ = sb3_kwargs(hp)
    model = TRPO("MlpPolicy", make_vec_env(env_id, n_envs=1, seed=seed), seed=seed, device="cpu", verbose=0, **kw)
    _, callback = model._setup_learn(2048, callback=None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mean of the empty value-loss list when n_critic_updates=0
        t_sb3 = _median_ms(model.train, repeats)
    return t_ours, t_sb3, t_step


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=None, help="override every case's budget (smoke runs)")
    ap.add_argument("--update-repeats", type=int, default=30)
    ap.add_argument("--skip-learning", action="store_true")
    args = ap.parse_args()
    import sb3_contrib
    import torch

    print(f"# refrl {refrl.__version__}, sb3-contrib {sb3_contrib.__version__}, torch {torch.__version__}, "
          f"numpy {np.__version__}, gymnasium {gym.__version__}, python {platform.python_version()}; threads: 1")
    print("\n## one update on a 2048-step rollout, (64, 64) tanh policy, 10 CG iterations (median ms)")
    print("| env | scope | refrl ms | sb3-contrib ms | speed-up |")
    print("|---|---|---|---|---|")
    for env_id in ("CartPole-v1", "Pendulum-v1"):
        t_ours, t_sb3, t_step = update_times(env_id, 0, args.update_repeats)
        print(f"| {env_id} | policy update (train(), n_critic_updates=0) | {t_ours:.2f} | {t_sb3:.2f} | "
              f"{t_sb3 / t_ours:.1f}x |")
        print(f"| {env_id} | refrl policy_step alone (gradient + native CG + NumPy line search) | {t_step:.2f} | | |")
        t_ours, t_sb3, _ = update_times(env_id, 10, max(5, args.update_repeats // 5))
        print(f"| {env_id} | full train() with 10 critic epochs x 16 minibatches | {t_ours:.2f} | {t_sb3:.2f} | "
              f"{t_sb3 / t_ours:.1f}x |", flush=True)
    if args.skip_learning:
        return 0
    print("\n## learning runs (RL Zoo TRPO settings; Pendulum without gSDE on both sides)")
    print("| case | seed | steps | refrl SPS | sb3-contrib SPS | SPS ratio | refrl eval | sb3-contrib eval |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        case = CASES[name]
        steps = args.steps or case["steps"]
        for seed in args.seeds:
            ours = run_refrl(case["env"], steps, case["hp"], seed)
            peer = run_sb3(case["env"], steps, case["hp"], seed)
            print(f"| {name} | {seed} | {steps} | {ours['sps']:.0f} | {peer['sps']:.0f} | {ours['sps'] / peer['sps']:.1f}x | "
                  f"{ours['eval']:.1f} | {peer['eval']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
