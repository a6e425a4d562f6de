"""Rollout collection: NEXT_STEP reset slots, truncation bootstrapping from the real final
observation, episode statistics, and the environment checks of make_vec_env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

from helpers import CounterEnv
from refrl import kernels
from refrl.policy import ActorCritic
from refrl.rollout import RolloutBuffer, RolloutCollector, make_vec_env


class ValueIsObsPolicy:
    """A fake policy: V(s) = 10 + s[0] (so the final and the reset observation differ), action 0."""

    def act(self, obs, rng, deterministic=False):
        obs = np.asarray(obs, np.float64)
        n = obs.shape[0]
        return np.zeros(n, np.int64), np.zeros(n), 10.0 + obs[:, 0]

    def clip_actions(self, a):
        return a

    def predict_values(self, obs):
        return 10.0 + np.asarray(obs, np.float64)[:, 0]


def _collect(env_fn, n_envs, T, dtype=np.float64):
    venv = gym.vector.SyncVectorEnv([env_fn for _ in range(n_envs)])
    venv = make_vec_env(venv)
    buf = RolloutBuffer.allocate(T, n_envs, venv.single_observation_space, venv.single_action_space, dtype)
    col = RolloutCollector(venv, ValueIsObsPolicy(), buf, seed=0)
    n_valid = col.collect(np.random.default_rng(0))
    return buf, col, n_valid


def test_rollout_next_step_reset_slot_is_invalid():
    buf, col, n_valid = _collect(lambda: TimeLimit(CounterEnv(), 3), 1, 8)
    # slots: obs 0,1,2 (2 truncates), 3 = final obs on the reset step, then 0,1,2, final 3
    np.testing.assert_array_equal(buf.obs[:, 0, 0], [0, 1, 2, 3, 0, 1, 2, 3])
    np.testing.assert_array_equal(buf.valid[:, 0], [1, 1, 1, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(buf.truncated[:, 0], [0, 0, 1, 0, 0, 0, 1, 0])
    assert not buf.terminated.any()
    np.testing.assert_array_equal(buf.rewards[:, 0], [1, 1, 1, 0, 1, 1, 1, 0])
    assert n_valid == 6


def test_rollout_truncation_bootstraps_from_final_observation():
    buf, _, _ = _collect(lambda: TimeLimit(CounterEnv(), 3), 1, 8)
    # V(s'_2) is the value of the real final observation [3] (13), not of the reset observation [0] (10)
    assert buf.next_values[2, 0] == 13.0
    assert buf.next_values[6, 0] == 13.0
    gamma = 0.9
    adv, ret = kernels.gae(buf.rewards, buf.values, buf.next_values, buf.terminated, buf.truncated, gamma, 1.0)
    # λ = 1: return at t = r_t + γ r_{t+1} + ... + γ^k V(final obs)
    assert ret[2, 0] == pytest.approx(1 + gamma * 13.0)
    assert ret[0, 0] == pytest.approx(1 + gamma + gamma**2 + gamma**3 * 13.0)


def test_rollout_termination_does_not_bootstrap():
    buf, _, _ = _collect(lambda: CounterEnv(terminate_at=3), 1, 8)
    np.testing.assert_array_equal(buf.terminated[:, 0], [0, 0, 1, 0, 0, 0, 1, 0])
    assert not buf.truncated.any()
    adv, ret = kernels.gae(buf.rewards, buf.values, buf.next_values, buf.terminated, buf.truncated, 0.9, 1.0)
    assert ret[2, 0] == pytest.approx(1.0)
    assert ret[0, 0] == pytest.approx(1 + 0.9 + 0.81)


def test_rollout_last_step_bootstraps_from_next_observation():
    buf, col, _ = _collect(lambda: TimeLimit(CounterEnv(), 100), 2, 5)
    # after 5 steps the envs are at obs [5]: V = 15 for the last slot
    np.testing.assert_array_equal(buf.next_values[-1], [15.0, 15.0])
    np.testing.assert_array_equal(buf.next_values[:-1], buf.values[1:])


@pytest.mark.parametrize("T", [2, 3])  # T = 3: every episode ends on a rollout's last step
def test_rollout_continues_episodes_across_rollouts(T):
    venv = make_vec_env(gym.vector.SyncVectorEnv([lambda: TimeLimit(CounterEnv(), 3)]))
    buf = RolloutBuffer.allocate(T, 1, venv.single_observation_space, venv.single_action_space, np.float64)
    col = RolloutCollector(venv, ValueIsObsPolicy(), buf, seed=0)
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(-(-8 // T)):  # at least 8 steps
        col.collect(rng)
        seen += list(zip(buf.obs[:, 0, 0], buf.valid[:, 0], buf.rewards[:, 0]))
    seen = seen[:8]
    assert [o for o, _, _ in seen] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [bool(v) for _, v, _ in seen] == [True, True, True, False] * 2
    assert [r for _, _, r in seen] == [1.0, 1.0, 1.0, 0.0] * 2
    assert list(col.episodes.returns) == [3.0, 3.0]
    assert list(col.episodes.lengths) == [3, 3]


def test_rollout_episode_stats_multi_env():
    buf, col, _ = _collect(lambda: TimeLimit(CounterEnv(), 4), 3, 21)
    # each env: episodes of 4 steps + 1 reset slot -> ends at t = 3, 8, 13, 18: 4 episodes per env
    assert col.episodes.count == 12
    assert set(col.episodes.returns) == {4.0}
    assert set(col.episodes.lengths) == {4}
    # t = 19 is a reset slot, t = 20 the first step of the unfinished episode (carried over)
    np.testing.assert_array_equal(col.ep_length, [1, 1, 1])


def test_rollout_obs_filter_is_what_the_policy_sees_and_the_raw_obs_are_kept():
    """With an obs_filter (the algorithm's normalisation) the policy acts on, and the buffer holds,
    the filtered observations; raw_obs holds the environment's; the last bootstrap value is V of
    the filtered observation; episode returns stay raw."""
    venv = make_vec_env(gym.vector.SyncVectorEnv([lambda: TimeLimit(CounterEnv(), 5)]))
    buf = RolloutBuffer.allocate(30, 1, venv.single_observation_space, venv.single_action_space, np.float64,
                                 raw_obs=True)
    col = RolloutCollector(venv, ValueIsObsPolicy(), buf, seed=0, obs_filter=lambda o: 2.0 * np.asarray(o) - 1.0)
    col.collect(np.random.default_rng(0))
    np.testing.assert_array_equal(buf.raw_obs[:7, 0, 0], [0, 1, 2, 3, 4, 5, 0])  # 5 = the final observation
    np.testing.assert_array_equal(buf.obs, 2.0 * buf.raw_obs - 1.0)
    np.testing.assert_array_equal(buf.values, 10.0 + buf.obs[..., 0])  # V of what the policy saw
    assert buf.next_values[-1, 0] == 10.0 + 2.0 * col.obs[0, 0] - 1.0
    assert set(col.episodes.returns) == {5.0}
    with pytest.raises(ValueError, match="raw_obs"):
        RolloutCollector(venv, ValueIsObsPolicy(), RolloutBuffer.allocate(
            4, 1, venv.single_observation_space, venv.single_action_space, np.float64), seed=0, obs_filter=abs)


def test_rollout_cartpole_vector_entry_point_matches_sync_semantics():
    """Both vectorisation modes follow NEXT_STEP: reset slots exactly after episode ends."""
    for mode in ("vector_entry_point", "sync"):
        venv = make_vec_env("CartPole-v1", 4, vectorization_mode=mode)
        buf = RolloutBuffer.allocate(64, 4, venv.single_observation_space, venv.single_action_space, np.float32)
        col = RolloutCollector(venv, ValueIsObsPolicy(), buf, seed=0)
        col.collect(np.random.default_rng(0))
        done = buf.terminated | buf.truncated
        assert done.any()
        # the slot after every episode end (within the rollout) is invalid, and only those
        expect_invalid = np.zeros_like(done)
        expect_invalid[1:] = done[:-1]
        np.testing.assert_array_equal(~buf.valid, expect_invalid)
        assert col.episodes.count == done.sum()
        venv.close()


def test_make_vec_env_rejects_unknown_env():
    with pytest.raises(ValueError, match="env: unknown gymnasium environment id 'NoSuchEnv-v0'"):
        make_vec_env("NoSuchEnv-v0")


def test_make_vec_env_rejects_bad_n_envs():
    with pytest.raises(ValueError, match="n_envs"):
        make_vec_env("CartPole-v1", 0)
    with pytest.raises(ValueError, match="n_envs"):
        make_vec_env(CounterEnv(), 2)


def test_make_vec_env_rejects_bad_vectorization_mode():
    with pytest.raises(ValueError, match="vectorization_mode"):
        make_vec_env("CartPole-v1", 2, vectorization_mode="threads")
    with pytest.raises(ValueError, match="vector_entry_point"):
        make_vec_env("Pendulum-v1", 2, vectorization_mode="vector_entry_point")


def test_make_vec_env_rejects_unsupported_spaces():
    class TupleObs(CounterEnv):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (1,))))

    class TupleAct(CounterEnv):
        def __init__(self):
            super().__init__()
            self.action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))

    with pytest.raises(ValueError, match="unsupported observation space"):
        make_vec_env(TupleObs())
    with pytest.raises(ValueError, match="unsupported action space"):
        make_vec_env(TupleAct())


def test_make_vec_env_rejects_wrong_type():
    with pytest.raises(TypeError, match="env: expected an env id"):
        make_vec_env(42)


def test_make_vec_env_auto_mode():
    assert type(make_vec_env("CartPole-v1", 8).unwrapped).__name__ == "CartPoleVectorEnv"
    assert isinstance(make_vec_env("CartPole-v1", 1), gym.vector.SyncVectorEnv)
    assert isinstance(make_vec_env("Pendulum-v1", 8), gym.vector.SyncVectorEnv)


class DictCounterEnv(gym.Env):
    """obs = {"k": steps taken (Discrete 6), "x": [k / 5]}; terminates after 4 steps."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict({"k": spaces.Discrete(6), "x": spaces.Box(0, 1, (1,), np.float32)})
        self.action_space = spaces.MultiBinary(2)
        self.k = 0

    def _obs(self):
        return {"k": self.k, "x": np.array([self.k / 5], np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.k = 0
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action)), action
        self.k += 1
        return self._obs(), 1.0, self.k >= 4, False, {}


def test_rollout_of_dict_observations_stores_their_encoding():
    """The buffer keeps the policy's encoding of each Dict observation ([one-hot k | x]); the stored
    log π and V are what the policy recomputes from it; MultiBinary actions are stored as int8 bits."""
    env = make_vec_env(DictCounterEnv(), 1)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, net_arch=(8,),
                         rng=np.random.default_rng(0))
    buf = RolloutBuffer.allocate(10, 1, env.single_observation_space, env.single_action_space, np.float32)
    assert buf.obs.shape == (10, 1, 7) and buf.actions.shape == (10, 1, 2) and buf.actions.dtype == np.int8
    RolloutCollector(env, policy, buf, seed=0).collect(np.random.default_rng(0))
    k = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]  # the step after the end only resets (NEXT_STEP)
    expected = np.array([[*np.eye(6)[kk], kk / 5] for kk in k], dtype=np.float32)
    np.testing.assert_allclose(buf.obs[:, 0], expected, rtol=1e-7)
    logp, _, values, _ = policy.evaluate(buf.obs[:, 0], buf.actions[:, 0])
    np.testing.assert_allclose(logp, buf.logp[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values, buf.values[:, 0], rtol=1e-5, atol=1e-6)


def test_observation_normalisation_refuses_non_box_observations():
    import refrl

    with pytest.raises(ValueError, match="normalize_obs: observation normalisation needs a Box"):
        refrl.PPO(DictCounterEnv(), normalize_obs=True)
