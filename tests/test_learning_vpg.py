"""VPG learns a real gymnasium task (short run, fixed seed; evaluation as SB3's evaluate_policy:
deterministic actions, raw returns, episodes seeded 10_000 + i).  Measured here (seed 0 / 1, 50k
steps): CartPole 500 / 500."""

from __future__ import annotations

import pytest

import refrl
from refrl.evaluation import episode_returns

pytestmark = pytest.mark.slow


def test_vpg_with_baseline_learns_cartpole():
    """REINFORCE with a learned baseline (λ = 1), one Adam step of lr 1e-2 per 1024-step batch."""
    agent = refrl.VPG("CartPole-v1", seed=0, n_envs=2, n_steps=512, learning_rate=1e-2).learn(50_000)
    returns = episode_returns(agent, n_episodes=10, seed=10_000)
    assert returns.mean() >= 475.0, returns
