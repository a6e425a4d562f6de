"""evaluate_policy: raw returns of seeded episodes (episode i reset with seed + i), as SB3's; named errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import refrl
import refrl.algos.base
from refrl.evaluation import evaluate_policy


@pytest.fixture(scope="module")
def agent():
    a = refrl.PPO("CartPole-v1", seed=0, n_steps=64, batch_size=32, n_epochs=1).learn(64)
    yield a
    a.close()


def test_episode_i_is_reset_with_seed_plus_i(agent):
    three = evaluate_policy(agent, n_episodes=3, seed=5)
    assert three.shape == (3,) and three.dtype == np.float64
    assert np.all(three >= 1.0)  # CartPole pays 1 per step
    assert evaluate_policy(agent, n_episodes=1, seed=6)[0] == three[1]
    assert evaluate_policy(agent, n_episodes=1, seed=7)[0] == three[2]
    np.testing.assert_array_equal(evaluate_policy(agent, "CartPole-v1", n_episodes=3, seed=5), three)


def test_a_given_env_is_used_and_left_open(agent):
    env = gym.make("CartPole-v1")
    try:
        returns = evaluate_policy(agent, env, n_episodes=2, seed=5)
        np.testing.assert_array_equal(returns, evaluate_policy(agent, n_episodes=2, seed=5))
        env.reset(seed=0)  # still usable
    finally:
        env.close()


def test_stochastic_evaluation_is_seeded(agent):
    a = evaluate_policy(agent, n_episodes=3, seed=1, deterministic=False)
    b = evaluate_policy(agent, n_episodes=3, seed=1, deterministic=False)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_bad_n_episodes_is_named(agent, n):
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate_policy(agent, n_episodes=n)


def test_an_agent_without_env_id_needs_env():
    a = refrl.PPO(gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")]), seed=0, n_steps=64, batch_size=32)
    a.env_id = None
    with pytest.raises(ValueError, match="env: the agent was trained on an env without an id"):
        evaluate_policy(a, n_episodes=1)
    a.close()


def test_documented_import_path_still_works():
    assert refrl.algos.base.evaluate_policy is evaluate_policy
