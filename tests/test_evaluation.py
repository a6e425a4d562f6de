"""Evaluation: SB3's evaluate_policy ((mean, std) on an Env or a VectorEnv) and refrl's episode_returns
(raw returns of seeded episodes, episode i reset with seed + i); named errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import refrl
import refrl.algos.base
from refrl.evaluation import episode_returns, evaluate_policy


@pytest.fixture(scope="module")
def agent():
    a = refrl.PPO("CartPole-v1", seed=0, n_steps=64, batch_size=32, n_epochs=1).learn(64)
    yield a
    a.close()


def test_episode_i_is_reset_with_seed_plus_i(agent):
    three = episode_returns(agent, n_episodes=3, seed=5)
    assert three.shape == (3,) and three.dtype == np.float64
    assert np.all(three >= 1.0)  # CartPole pays 1 per step
    assert episode_returns(agent, n_episodes=1, seed=6)[0] == three[1]
    assert episode_returns(agent, n_episodes=1, seed=7)[0] == three[2]
    np.testing.assert_array_equal(episode_returns(agent, "CartPole-v1", n_episodes=3, seed=5), three)


def test_a_given_env_is_used_and_left_open(agent):
    env = gym.make("CartPole-v1")
    try:
        returns = episode_returns(agent, env, n_episodes=2, seed=5)
        np.testing.assert_array_equal(returns, episode_returns(agent, n_episodes=2, seed=5))
        env.reset(seed=0)  # still usable
    finally:
        env.close()


def test_stochastic_evaluation_is_seeded(agent):
    a = episode_returns(agent, n_episodes=3, seed=1, deterministic=False)
    b = episode_returns(agent, n_episodes=3, seed=1, deterministic=False)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_bad_n_episodes_is_named(agent, n):
    with pytest.raises(ValueError, match="n_episodes"):
        episode_returns(agent, n_episodes=n)
    with pytest.raises(ValueError, match="n_eval_episodes"):
        evaluate_policy(agent, n_eval_episodes=n)


def test_an_agent_without_env_id_needs_env():
    a = refrl.PPO(gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")]), seed=0, n_steps=64, batch_size=32)
    a.env_id = None
    with pytest.raises(ValueError, match="env: the agent was trained on an env without an id"):
        evaluate_policy(a, n_eval_episodes=1)
    a.close()


def test_documented_import_paths():
    assert refrl.algos.base.evaluate_policy is evaluate_policy
    assert refrl.evaluate_policy is evaluate_policy


# ---------------------------------------------------------------------------- SB3's evaluate_policy
def test_evaluate_policy_returns_mean_and_std_of_the_seeded_episodes(agent):
    returns = episode_returns(agent, n_episodes=4, seed=3)
    env = gym.make("CartPole-v1")
    mean, std = evaluate_policy(agent, env, n_eval_episodes=4, seed=3)
    assert isinstance(mean, float) and isinstance(std, float)
    assert (mean, std) == (float(returns.mean()), float(returns.std()))
    rewards, lengths = evaluate_policy(agent, env, n_eval_episodes=4, return_episode_rewards=True, seed=3)
    assert rewards == returns.tolist()
    assert lengths == [int(r) for r in rewards]  # CartPole: one reward per step
    env.close()


def test_the_deprecated_array_form_still_works(agent):
    with pytest.warns(DeprecationWarning, match="episode_returns"):
        old = evaluate_policy(agent, n_episodes=3, seed=5)
    np.testing.assert_array_equal(old, episode_returns(agent, n_episodes=3, seed=5))


@pytest.mark.parametrize("n_envs, n_eval", [(3, 7), (2, 2), (4, 1)])
def test_evaluate_policy_on_a_vector_env_matches_one_env_per_sub_env(agent, n_envs, n_eval):
    """Sub-env j (reset once with seed + j, then by autoreset) runs (n + j) // n_envs episodes, as SB3;
    oracle: the same episodes of one env reset with seed + j, then unseeded, one after the other."""
    venv = gym.make_vec("CartPole-v1", num_envs=n_envs, vectorization_mode="sync")
    rewards, lengths = evaluate_policy(agent, venv, n_eval_episodes=n_eval, return_episode_rewards=True, seed=11)
    venv.close()
    expected = []
    for j in range(n_envs):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=11 + j)
        for _ in range((n_eval + j) // n_envs):
            total, done = 0.0, False
            while not done:
                obs, r, term, trunc, _ = env.step(agent.predict(obs, deterministic=True)[0])
                total += r
                done = term or trunc
            expected.append(total)
            obs, _ = env.reset()
        env.close()
    assert len(rewards) == len(lengths) == n_eval
    assert sorted(rewards) == sorted(expected)


def test_evaluate_policy_on_the_training_vector_env(agent):
    mean, std = evaluate_policy(agent, agent.get_env(), n_eval_episodes=2)
    assert mean >= 1.0 and std >= 0.0


def test_reward_threshold_is_sb3s_assertion(agent):
    with pytest.raises(AssertionError, match="Mean reward below threshold"):
        evaluate_policy(agent, n_eval_episodes=1, reward_threshold=1e9)


def test_evaluate_policy_callback_sees_every_step(agent):
    steps = []
    rewards, lengths = evaluate_policy(agent, n_eval_episodes=2, return_episode_rewards=True,
                                       callback=lambda loc, _glob: steps.append(loc["dones"]))
    assert len(steps) == sum(lengths) and sum(steps) == 2


def test_an_env_that_does_not_autoreset_is_refused(agent):
    venv = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.DISABLED})
    with pytest.raises(ValueError, match="autoresets"):
        evaluate_policy(agent, venv, n_eval_episodes=2)
    venv.close()
