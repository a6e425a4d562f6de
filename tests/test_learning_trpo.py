"""TRPO and NPG learn real gymnasium tasks (short runs, fixed seeds; evaluation as SB3's
evaluate_policy: deterministic actions, raw returns, episodes seeded 10_000 + i).  Measured here
(seed 0 / 1, 50k steps): TRPO Pendulum −215 / −434, NPG Pendulum −215 / −232; a uniformly random
Pendulum policy ≈ −1100. VPG's learning test is in test_learning_vpg.py."""

from __future__ import annotations

import pytest
from helpers import random_pendulum_return

import refrl
from refrl.evaluation import episode_returns
from refrl.config import tuned_defaults

pytestmark = pytest.mark.slow


def test_trpo_learns_cartpole():
    """RL Zoo's tuned TRPO CartPole-v1 settings (2 envs x 512, λ 0.98, cg_damping 1e-3, 20 critic
    epochs of 512, critic lr 1e-3; δ 0.01, 10 CG iterations), 60k of the zoo's 100k steps.
    A random policy scores ≈ 22.  Measured (seeds 0-3): deterministic eval 467 / 500 / 500 / 500,
    training ep_rew_mean 305-364 at the end.  The run is chaotic in the last bits of the float32
    arithmetic (a change of the C++ GEMM moved seed 0 at 50k from 500 to 286), so the threshold
    leaves room: eval ≥ 400 and training return ≥ 200."""
    agent = refrl.TRPO("CartPole-v1", seed=0, **tuned_defaults("trpo", "CartPole-v1")).learn(60_000)
    assert agent.ep_rew_mean >= 200.0
    returns = episode_returns(agent, n_episodes=10, seed=10_000)
    assert returns.mean() >= 400.0, returns


@pytest.mark.parametrize("algo", ["TRPO", "NPG"])
def test_trpo_and_npg_learn_pendulum_clearly_better_than_random(algo):
    """Zoo TRPO Pendulum-v1 settings minus gSDE (2 envs x 1024, γ 0.9, 15 critic epochs), 50k steps."""
    assert random_pendulum_return() < -900.0  # the baseline, so that the threshold means something
    agent = getattr(refrl, algo)("Pendulum-v1", seed=0, **tuned_defaults("trpo", "Pendulum-v1")).learn(50_000)
    returns = episode_returns(agent, n_episodes=10, seed=10_000)
    assert returns.mean() > -600.0, returns

