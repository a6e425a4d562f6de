"""refrl PPO vs Stable-Baselines3 PPO: same env, hyperparameters, seeds and step budget, one
after the other in the same process, both single-threaded.

    pip install torch==2.13.0 stable-baselines3     # the peer (refrl[bench]); never a runtime dependency
    python benchmarks/vs_sb3.py                      # CartPole-v1 (SB3 defaults + RL Zoo), Pendulum-v1
    python benchmarks/vs_sb3.py --cases cartpole-zoo --seeds 0 1 2 3 4
    python benchmarks/vs_sb3.py --long               # + Hopper-v5, 1M steps (needs refrl[mujoco]; hours)
    python benchmarks/vs_sb3.py --cases hopper-zoo --seeds 0   # Hopper-v5 with the zoo's tuned settings
    python benchmarks/vs_sb3.py --cases hopper-cleanrl --seeds 0 1   # ... with CleanRL's settings

SPS = environment transitions per second of ``learn()`` (collection + updates; refrl counts
real transitions only, SB3 every step: the same thing since SB3 resets inside the step), by wall
clock and by the process's CPU time (both single-threaded; CPU time is less disturbed when other
jobs share the machine).
Eval = mean raw return of 10 deterministic episodes seeded 10_000 + i, identical code for both.
Threads: OMP/OPENBLAS/MKL_NUM_THREADS=1 are set before NumPy/torch load and torch.set_num_threads(1).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import refrl  # noqa: E402
from refrl.config import CLEANRL_MUJOCO, ZOO_HOPPER, tuned_defaults  # noqa: E402

# Each case: env, step budget, refrl hyperparameters.  SB3 gets exactly the same values.
CASES: dict[str, dict[str, Any]] = {
    "cartpole-default": dict(env="CartPole-v1", steps=100_000, hp={}),
    "cartpole-zoo": dict(env="CartPole-v1", steps=100_000, hp=tuned_defaults("ppo", "CartPole-v1")),
    "pendulum-default": dict(env="Pendulum-v1", steps=100_000, hp={}),
    "pendulum-zoo": dict(env="Pendulum-v1", steps=100_000, hp=tuned_defaults("ppo", "Pendulum-v1")),
    "hopper-default": dict(env="Hopper-v5", steps=1_000_000, hp={}, long=True),
    "hopper-zoo": dict(env="Hopper-v5", steps=1_000_000, hp=ZOO_HOPPER, long=True),
    # CleanRL ppo_continuous_action.py: SB3's defaults + obs/reward normalisation (clip 10), LR
    # annealing and value clipping 0.2 (CleanRL/ppo2 take max(unclipped, clipped)^2; SB3's
    # clip_range_vf the clipped term alone: the one difference between the two sides here)
    "hopper-cleanrl": dict(env="Hopper-v5", steps=1_000_000, hp=CLEANRL_MUJOCO, long=True),
}


def evaluate(predict, env_id: str, n_episodes: int = 10) -> float:
    env = gym.make(env_id)
    total = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=10_000 + i)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(predict(obs))
            ret += float(r)
            done = term or trunc
        total.append(ret)
    env.close()
    return float(np.mean(total))


def run_refrl(env_id: str, steps: int, hp: dict[str, Any], seed: int) -> dict[str, float]:
    agent = refrl.PPO(env_id, seed=seed, **hp)
    t0, c0 = time.perf_counter(), time.process_time()
    agent.learn(steps)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    ret = evaluate(lambda o: agent.predict(o, deterministic=True)[0], env_id)
    agent.close()
    return {"sps": agent.num_timesteps / dt, "seconds": dt, "cpu_sps": agent.num_timesteps / cpu, "eval": ret,
            "steps": agent.num_timesteps}


def sb3_kwargs(hp: dict[str, Any]) -> tuple[dict[str, Any], int, bool]:
    """refrl hyperparameters -> SB3 PPO keyword arguments (n_envs, normalize separately)."""
    cfg = refrl.config.PPOConfig.from_kwargs(**hp)
    lin = lambda v: (lambda progress_remaining: progress_remaining * v)  # noqa: E731  SB3's lin_ schedule
    import torch

    kw = dict(
        n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs, gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda, ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm if cfg.max_grad_norm is not None else 1e10,
        target_kl=cfg.target_kl, normalize_advantage=cfg.normalize_advantage,
        clip_range_vf=cfg.clip_range_vf,
        learning_rate=lin(cfg.learning_rate) if cfg.anneal_lr else cfg.learning_rate,
        clip_range=lin(cfg.clip_range) if cfg.anneal_clip_range else cfg.clip_range,
        policy_kwargs=dict(
            net_arch=dict(pi=list(cfg.net_arch), vf=list(cfg.net_arch)),
            activation_fn={"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[cfg.activation],
            ortho_init=cfg.ortho_init, log_std_init=cfg.log_std_init,
        ),
    )
    return kw, cfg.n_envs, cfg.normalize_obs or cfg.normalize_reward


def run_sb3(env_id: str, steps: int, hp: dict[str, Any], seed: int) -> dict[str, float]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    kw, n_envs, normalize = sb3_kwargs(hp)
    venv = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if normalize:
        cfg = refrl.config.PPOConfig.from_kwargs(**hp)
        venv = VecNormalize(venv, norm_obs=cfg.normalize_obs, norm_reward=cfg.normalize_reward, gamma=cfg.gamma)
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kw)
    t0, c0 = time.perf_counter(), time.process_time()
    model.learn(steps)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    if normalize:
        venv.training = False
        predict = lambda o: model.predict(venv.normalize_obs(o[None]), deterministic=True)[0][0]  # noqa: E731
    else:
        predict = lambda o: model.predict(o, deterministic=True)[0]  # noqa: E731
    ret = evaluate(predict, env_id)
    return {"sps": model.num_timesteps / dt, "seconds": dt, "cpu_sps": model.num_timesteps / cpu, "eval": ret,
            "steps": model.num_timesteps}


def env_floor(env_id: str, n_envs: int, steps: int, seed: int) -> float:
    """Steps per second of the same vector env under random actions (no learning)."""
    venv = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="sync")
    venv.reset(seed=seed)
    venv.action_space.seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps // n_envs):
        venv.step(venv.action_space.sample())
    dt = time.perf_counter() - t0
    venv.close()
    return (steps // n_envs) * n_envs / dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=[k for k, c in CASES.items() if not c.get("long")], choices=list(CASES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=None, help="override every case's budget (smoke runs)")
    ap.add_argument("--long", action="store_true", help="add the long cases (Hopper-v5, 1M steps)")
    ap.add_argument("--skip-sb3", action="store_true")
    ap.add_argument("--json", default=None, help="append results as JSON lines to this file")
    args = ap.parse_args()
    cases = list(args.cases) + ([k for k, c in CASES.items() if c.get("long")] if args.long else [])
    print(f"# refrl {refrl.__version__}, numpy {np.__version__}, gymnasium {gym.__version__}, "
          f"python {platform.python_version()}, {platform.machine()}; threads: 1")
    print("| case | seed | steps | refrl SPS | SB3 SPS | SPS ratio | CPU-time SPS ratio | refrl eval | SB3 eval |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in cases:
        case = CASES[name]
        steps = args.steps or case["steps"]
        for seed in args.seeds:
            ours = run_refrl(case["env"], steps, case["hp"], seed)
            peer = None if args.skip_sb3 else run_sb3(case["env"], steps, case["hp"], seed)
            if peer:
                print(f"| {name} | {seed} | {steps} | {ours['sps']:.0f} | {peer['sps']:.0f} | "
                      f"{ours['sps'] / peer['sps']:.1f}x | {ours['cpu_sps'] / peer['cpu_sps']:.1f}x | "
                      f"{ours['eval']:.1f} | {peer['eval']:.1f} |", flush=True)
            else:
                print(f"| {name} | {seed} | {steps} | {ours['sps']:.0f} | - | - | - | {ours['eval']:.1f} | - |", flush=True)
            if case.get("long"):
                n_envs = refrl.config.PPOConfig.from_kwargs(**case["hp"]).n_envs
                floor = env_floor(case["env"], n_envs, min(steps, 200_000), seed)
                print(f"|   env-only floor {case['env']} | {seed} | | {floor:.0f} | | "
                      f"train time / floor time = {floor / ours['sps']:.2f} | | | |", flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps({"case": name, "seed": seed, "steps": steps, "refrl": ours, "sb3": peer}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
