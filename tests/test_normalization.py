"""refrl.normalization: exact running statistics (Chan et al.'s merge) and per-rollout reward scaling,
and the algorithms' normalisation path built on them.

The oracle is numpy on the concatenated valid rows: whatever the grouping into rollouts, ranks
and masks, the statistics must equal those of all the data at once (<= 1e-10 relative, float64).
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refrl
import refrl.native
import refrl.serialization
from helpers import CounterEnv
from refrl.normalization import RewardNormalizer, RunningMeanStd, batch_moments

RTOL = 1e-10


def assert_stats_equal(rms: RunningMeanStd, rows: np.ndarray) -> None:
    """count, mean, var of ``rms`` == numpy's on ``rows`` [n, *shape] (relative to the data's spread)."""
    assert rms.count == rows.shape[0]
    mean, var = rows.mean(axis=0), rows.var(axis=0)
    spread = np.sqrt(var) + np.abs(mean)
    np.testing.assert_array_less(np.abs(rms.mean - mean), RTOL * spread + 1e-300)
    # where |mean| ≫ spread the means are only known to one ulp each, and the merge's δ² term carries
    # that: n·ulp(mean)·σ is the float64 floor of any variance of these rows (seen: σ² 1e-16 at |μ| 1e3)
    floor = 4 * rows.shape[0] * np.spacing(np.abs(mean)) * np.sqrt(var)
    np.testing.assert_array_less(np.abs(rms.var - var), RTOL * var + floor + 1e-300)


@st.composite
def rollouts(draw):
    """A list of rollouts [T_k, N, d] with masks; per-coordinate offsets and scales far apart."""
    d = draw(st.integers(1, 4))
    n_envs = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    sizes = draw(st.lists(st.integers(1, 40), min_size=1, max_size=5))
    rng = np.random.default_rng(seed)
    loc = rng.choice([0.0, 1.0, -50.0, 1e3], size=d)
    scale = rng.choice([1e-3, 1.0, 30.0], size=d)
    p_valid = draw(st.sampled_from([1.0, 0.8, 0.3]))
    batches = [loc + scale * rng.standard_normal((t, n_envs, d)) for t in sizes]
    masks = [rng.random((t, n_envs)) < p_valid for t in sizes]
    masks[0].flat[0] = True  # at least one valid row overall
    return batches, masks


@given(rollouts())
def test_update_by_rollout_equals_numpy_on_the_valid_rows(data):
    batches, masks = data
    rms = RunningMeanStd((batches[0].shape[-1],))
    for b, m in zip(batches, masks):
        rms.update(b, m)  # one vectorised call per rollout
    assert_stats_equal(rms, np.concatenate([b[m] for b, m in zip(batches, masks)]))


class StackedRanks:
    """A stand-in communicator: K 'ranks' whose gathered rows are given (tests the merge in rank order)."""

    def __init__(self, rows: list[np.ndarray]) -> None:
        self.rows = rows
        self.size = len(rows)

    def gather(self, x: np.ndarray) -> np.ndarray:
        assert np.array_equal(x, self.rows[0])  # this process is rank 0
        return np.stack(self.rows)


@given(rollouts())
def test_merge_across_ranks_equals_the_concatenated_statistics(data):
    batches, masks = data
    d = batches[0].shape[-1]
    rows = []
    for b, m in zip(batches, masks):  # each rollout is another rank's share of one step
        count, mean, var = batch_moments(b, m, (d,))
        rows.append(np.concatenate([[count], mean, var]))
    rms = RunningMeanStd((d,)).update(batches[0], masks[0], comm=StackedRanks(rows))
    assert_stats_equal(rms, np.concatenate([b[m] for b, m in zip(batches, masks)]))


@given(st.integers(0, 2**31 - 1), st.integers(2, 60))
def test_weighted_update_equals_numpys_weighted_moments(seed, n):
    rng = np.random.default_rng(seed)
    x = 5.0 + rng.standard_normal((n, 3))
    w = rng.random(n) * (rng.random(n) > 0.3)
    w[0] = 0.5
    rms = RunningMeanStd((3,)).update(x[: n // 2], w[: n // 2]).update(x[n // 2:], w[n // 2:])
    mean = np.average(x, axis=0, weights=w)
    var = np.average((x - mean) ** 2, axis=0, weights=w)
    assert abs(rms.count - w.sum()) <= RTOL * w.sum()
    np.testing.assert_allclose(rms.mean, mean, rtol=RTOL)
    np.testing.assert_allclose(rms.var, var, rtol=RTOL)


def test_sumsq_form_would_lose_precision_where_the_merge_does_not():
    """Why not (count, Σx, Σx²): with mean 1e6 and std 1e-2 the naive variance is garbage."""
    rng = np.random.default_rng(0)
    parts = [1e6 + 1e-2 * rng.standard_normal(500) for _ in range(3)]
    allx = np.concatenate(parts)
    naive = np.sum([np.square(p).sum() for p in parts]) / allx.size - (allx.sum() / allx.size) ** 2
    rms = RunningMeanStd()
    for p in parts:
        rms.update(p)
    assert abs(naive - allx.var()) > 1e-2 * allx.var()
    assert abs(rms.var - allx.var()) <= 1e-8 * allx.var()


def test_empty_statistics_and_empty_batches():
    rms = RunningMeanStd((2,))
    assert rms.count == 0 and np.array_equal(rms.var, np.ones(2)) and np.array_equal(rms.mean, np.zeros(2))
    rms.update(np.ones((3, 2)), np.zeros(3, dtype=bool))  # nothing valid: unchanged
    assert rms.count == 0 and np.array_equal(rms.var, np.ones(2))
    rms.update(np.array([[1.0, 2.0], [3.0, 6.0]]))
    assert rms.count == 2 and np.array_equal(rms.mean, [2.0, 4.0]) and np.array_equal(rms.var, [1.0, 4.0])


def test_normalize_is_gymnasiums_formula_with_clip():
    rms = RunningMeanStd((3,))
    rms.mean, rms.var, rms.count = np.array([1.0, 0.0, 0.0]), np.array([4.0, 1e-12, 1.0]), 10.0
    x = np.array([[3.0, 1.0, -50.0]], dtype=np.float32)
    out = rms.normalize(x)
    assert out.dtype == np.float32
    expected = np.clip((x.astype(np.float64) - rms.mean) / np.sqrt(rms.var + 1e-8), -10, 10)
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    assert out[0, 1] == 10.0 and out[0, 2] == -10.0  # clipped at ±10
    assert rms.normalize(np.array([3.0]).reshape(1, 1).repeat(3, 1), clip=None)[0, 2] == 3.0 / np.sqrt(1 + 1e-8)


def test_state_dict_round_trip_is_exact_and_checked():
    rms = RunningMeanStd((2,)).update(np.random.default_rng(3).standard_normal((50, 2)))
    state = rms.state_dict()
    assert set(state) == {"mean", "var", "count"} and all(a.dtype == np.float64 for a in state.values())
    back = RunningMeanStd((2,)).load_state_dict(state)
    assert back.count == rms.count and np.array_equal(back.mean, rms.mean) and np.array_equal(back.var, rms.var)
    with pytest.raises(ValueError, match="shape"):
        RunningMeanStd((3,)).load_state_dict(state)
    with pytest.raises(KeyError, match="count"):
        RunningMeanStd((2,)).load_state_dict({"mean": state["mean"], "var": state["var"]})
    with pytest.raises(ValueError, match="finite"):
        RunningMeanStd((2,)).load_state_dict({**state, "var": np.array([1.0, -1.0])})


def test_bad_input_names_the_argument():
    rms = RunningMeanStd((2,))
    with pytest.raises(ValueError, match="batch"):
        rms.update(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="batch"):
        rms.update(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="weights"):
        rms.update(np.zeros((4, 2)), np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="weights"):
        rms.update(np.zeros((4, 2)), -np.ones(4))
    with pytest.raises(TypeError, match="batch"):
        rms.update(np.zeros((4, 2), dtype=bool))
    with pytest.raises(ValueError, match="shape"):
        RunningMeanStd([2])
    with pytest.raises(ValueError, match="gamma"):
        RewardNormalizer(2, 1.5)
    with pytest.raises(ValueError, match="terminated"):
        RewardNormalizer(2, 0.9).returns(np.zeros((3, 2)), np.zeros((3, 1)), np.ones((3, 2), dtype=bool))
    # NaN in a masked-out row is not data
    assert rms.update(np.array([[np.nan, 1.0], [1.0, 1.0]]), np.array([False, True])).count == 1


def test_reward_accumulator_equals_gymnasiums_normalize_reward_step_by_step():
    """The per-env discounted-return accumulator, run on a whole rollout, equals gymnasium's
    vector NormalizeReward run step by step (NEXT_STEP autoreset; the reset step is not valid)."""
    from gymnasium.wrappers.vector import NormalizeReward

    class Tap(gym.vector.VectorWrapper):  # records the raw rewards below the wrapper
        def step(self, actions):
            out = self.env.step(actions)
            self.last_rewards = np.array(out[1], dtype=np.float64)
            return out

    n_envs, steps, gamma = 3, 400, 0.97
    tap = Tap(gym.make_vec("CartPole-v1", num_envs=n_envs, vectorization_mode="sync"))
    venv = NormalizeReward(tap, gamma=gamma)
    venv.reset(seed=5)
    venv.action_space.seed(5)
    rewards = np.zeros((steps, n_envs))
    terminated = np.zeros((steps, n_envs), dtype=bool)
    valid = np.zeros((steps, n_envs), dtype=bool)
    gym_acc = np.zeros((steps, n_envs))
    prev_done = np.zeros(n_envs, dtype=bool)
    for t in range(steps):
        valid[t] = ~prev_done
        _, _, term, trunc, _ = venv.step(venv.action_space.sample())
        rewards[t] = tap.last_rewards
        terminated[t] = term
        gym_acc[t] = venv.accumulated_reward
        prev_done = term | trunc
    assert terminated.any() and not valid.all()
    norm = RewardNormalizer(n_envs, gamma)
    ours = norm.returns(rewards, terminated, valid)
    assert venv.accumulated_reward.dtype == np.float32  # gymnasium accumulates in float32, refrl in float64
    np.testing.assert_allclose(ours, gym_acc, rtol=2e-6, atol=0)
    # the return statistics: those of the valid steps' accumulators; gymnasium's differ only by its 1e-4 prior
    norm2 = RewardNormalizer(n_envs, gamma)
    scaled = norm2(rewards, terminated, valid)
    assert norm2.return_rms.count == valid.sum()
    np.testing.assert_allclose(norm2.return_rms.var, ours[valid].var(), rtol=RTOL)
    np.testing.assert_allclose(norm2.return_rms.var, venv.return_rms.var, rtol=1e-3)
    np.testing.assert_array_equal(scaled, np.clip(rewards / np.sqrt(norm2.return_rms.var + 1e-8), -10, 10))


def test_reward_normalizer_state_carries_the_accumulator():
    rng = np.random.default_rng(1)
    r, term, valid = rng.standard_normal((20, 2)), rng.random((20, 2)) < 0.1, np.ones((20, 2), dtype=bool)
    a = RewardNormalizer(2, 0.99)
    a(r[:10], term[:10], valid[:10])
    b = RewardNormalizer(2, 0.99).load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(r[10:], term[10:], valid[10:]), b(r[10:], term[10:], valid[10:]))
    whole = RewardNormalizer(2, 0.99)
    whole(r, term, valid)
    np.testing.assert_allclose(a.return_rms.var, whole.return_rms.var, rtol=RTOL)


# ------------------------------------------------------------------ the training path of the algorithms
DATA = Path(__file__).parent / "data"
NORM = dict(normalize_obs=True, normalize_reward=True, n_envs=2, n_steps=32, batch_size=64, n_epochs=1)


class Recorder(gym.Wrapper):
    """Records every observation the env returns (reset and step), whether it ended an episode,
    and every step's reward and termination, in order."""

    def __init__(self, env: gym.Env, log: list) -> None:
        super().__init__(env)
        self.log = log

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.log.append(("obs", np.array(obs, dtype=np.float64), False))
        return obs, info

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        self.log.append(("step", float(r), bool(term)))
        self.log.append(("obs", np.array(obs, dtype=np.float64), bool(term or trunc)))
        return obs, r, term, trunc, info


def _recorded_agent(algo: str, n_envs: int = 2, **kw):
    logs = [[] for _ in range(n_envs)]
    venv = gym.vector.SyncVectorEnv([lambda log=log: Recorder(gym.make("Pendulum-v1", max_episode_steps=50), log)
                                     for log in logs])
    hp = {k: v for k, v in {**NORM, "n_envs": n_envs, **kw}.items() if k != "n_epochs" or algo == "PPO"}
    return getattr(refrl, algo)(venv, seed=0, **hp), logs


@pytest.mark.parametrize("algo", ["PPO", "TRPO", "VPG"])
def test_agent_statistics_are_those_of_every_transitions_raw_observation_and_return(algo):
    """After training, obs_rms holds exactly (<= 1e-10) numpy's mean/var of the raw observations of
    all transitions collected (every observation the env returned that the policy then acted on
    for a real step: final observations and the not yet used last one excluded), and return_rms
    those of the discounted-return accumulator over all real steps, computed here step by step."""
    agent, logs = _recorded_agent(algo)
    agent.learn(4 * 64)
    rows, returns = [], []
    for log in logs:
        obs = [o for kind, o, _ in log if kind == "obs"]
        ended = [e for kind, _, e in log if kind == "obs"]
        rows += [o for o, e in zip(obs[:-1], ended[:-1]) if not e]  # the last one: not acted on yet
        acc = 0.0
        for kind, r, term in log:
            if kind == "step":
                acc = acc * agent.config.gamma * (1.0 - term) + r
                returns.append(acc)
    rows = np.array(rows)
    # the warm-up rollout and 4 rollouts of 2 x 32 slots; 50-step episodes: 6 slots are resets
    assert agent.num_timesteps == rows.shape[0] == len(returns) == 5 * 64 - 6
    assert_stats_equal(agent.obs_rms, rows)
    assert_stats_equal(agent.return_rms, np.array(returns)[:, None].reshape(-1))


def test_agent_acts_on_observations_normalised_with_the_statistics_before_the_rollout():
    """Frozen within a rollout: every observation in the buffer (what the policy saw, and trained
    on) is the raw one normalised with the statistics as they were when the rollout began; the
    buffer's rewards are the raw ones scaled by the return statistics after it, clipped, 0 on reset slots."""
    agent = refrl.PPO("Pendulum-v1", seed=1, **{**NORM, "clip_obs": 1.5, "clip_reward": 0.05})
    before = []

    def check(a) -> None:
        buf = a.buffer
        if before:
            expect = before[-1].normalize(buf.raw_obs, clip=1.5, dtype=np.float32)
            np.testing.assert_array_equal(buf.obs, expect)
        rew = np.clip(buf.raw_rewards / np.sqrt(a.return_rms.var + 1e-8), -0.05, 0.05) * buf.valid
        np.testing.assert_array_equal(buf.rewards, rew.astype(np.float32))
        before.append(RunningMeanStd((3,)).load_state_dict(a.obs_rms.state_dict()))

    agent.learn(5 * 64, callback=check)
    assert len(before) == 4 and np.abs(agent.buffer.obs).max() == np.float32(1.5)
    assert np.abs(agent.buffer.rewards).max() == np.float32(0.05)


def test_warm_up_rollout_only_for_empty_statistics(tmp_path):
    """A new agent's first iteration collects one extra rollout for the statistics (counted in
    num_timesteps); an agent with statistics (loaded, or a second learn) never does."""
    agent = refrl.PPO("Pendulum-v1", seed=0, **NORM)
    agent.learn(1)
    assert agent.num_timesteps == 2 * 64 and agent.obs_rms.count == 2 * 64 and agent.iteration == 1
    loaded = refrl.PPO.load(agent.save(tmp_path / "m"))
    loaded.learn(1, reset_num_timesteps=False)
    assert loaded.num_timesteps == 3 * 64 and loaded.obs_rms.count == 3 * 64
    without = refrl.PPO("Pendulum-v1", seed=0, **{**NORM, "normalize_obs": False}).learn(1)
    assert without.num_timesteps == 64 and without.obs_rms is None and without.return_rms.count == 64


class InfAt(gym.Wrapper):
    """Pendulum whose observation is +inf at step ``at`` (float32: what a 1e300 becomes)."""

    def __init__(self, at: int) -> None:
        super().__init__(gym.make("Pendulum-v1"))
        self.at, self.steps = at, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return (np.full_like(obs, np.inf) if self.steps == self.at else obs), reward, terminated, truncated, info


def test_statistics_broken_by_the_warm_up_rollout_stop_training_before_a_policy_acts_on_them():
    """An infinite observation inside the warm-up rollout: the health guard names the observation
    statistics (TrainingDiverged, nothing trained) instead of the next rollout's policy failing on
    the NaN observations those statistics would make."""
    agent = refrl.PPO(InfAt(10), seed=0, **{**NORM, "n_envs": 1, "batch_size": 32})
    with pytest.raises(refrl.TrainingDiverged, match="observation normalisation statistics overflowed"):
        agent.learn(4 * 64)
    assert agent.num_timesteps == 0 and agent.obs_rms.count == 0  # restored: the empty statistics


def test_checkpoint_round_trip_predicts_identically(tmp_path):
    agent = refrl.PPO("Pendulum-v1", seed=0, **{**NORM, "dtype": "float64"}).learn(3 * 64)
    loaded = refrl.PPO.load(agent.save(tmp_path / "m"))
    for name in ("obs_rms", "return_rms"):
        a, b = getattr(agent, name).state_dict(), getattr(loaded, name).state_dict()
        assert all(np.array_equal(a[k], b[k]) for k in a)
    obs = np.random.default_rng(0).normal(scale=4.0, size=(50, 3))
    np.testing.assert_array_equal(agent.normalize_obs(obs), loaded.normalize_obs(obs))
    assert agent.normalize_obs(obs).dtype == np.float64  # the policy dtype
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    # predict applies exactly the training normalisation
    actions, _, _ = refrl.native.act(agent.policy, agent.obs_rms.normalize(obs, clip=10.0), agent.rng,
                                     deterministic=True)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], agent.policy.clip_actions(actions))


def test_a_checkpoint_written_with_gymnasiums_wrappers_loads_and_means_the_same():
    """tests/data holds a PPO checkpoint saved by refrl when normalisation was gymnasium's
    NormalizeObservation/NormalizeReward (statistics with gymnasium's 1e-4 prior count; the policy
    built on the wrapper's unbounded float32 Box), and that version's normalised observations and
    deterministic actions on fixed inputs."""
    arrays, _ = refrl.serialization.load_checkpoint(DATA / "ppo_pendulum_gym_normalized.npz")
    expected = np.load(DATA / "ppo_pendulum_gym_normalized_predictions.npz")
    agent = refrl.PPO.load(DATA / "ppo_pendulum_gym_normalized.npz")
    assert agent.obs_rms.count == float(arrays["obs_rms/count"]) == 258.0001
    np.testing.assert_array_equal(agent.obs_rms.var, arrays["obs_rms/var"])
    assert agent.return_rms.var == arrays["return_rms/var"]
    # gymnasium kept float32 observation statistics and normalised in float32 arithmetic; refrl
    # normalises in float64 and rounds once: the two agree to the float32 rounding of the inputs
    norm = agent.normalize_obs(expected["obs"])
    assert norm.dtype == np.float32 and np.abs(norm).max() == 10.0  # the clip, as before
    np.testing.assert_allclose(norm, expected["normalized"], rtol=0, atol=4 * np.spacing(np.float32(10.0)))
    np.testing.assert_allclose(agent.predict(expected["obs"], deterministic=True)[0], expected["actions"], rtol=1e-5, atol=1e-6)
    agent.learn(64, reset_num_timesteps=False)  # continues from those statistics (no warm-up)
    assert agent.num_timesteps == 256 + 2 * 64 and agent.obs_rms.count == 258.0001 + 2 * 64


def test_reward_scaling_keeps_episode_returns_raw():
    env = gym.wrappers.TimeLimit(CounterEnv(), 5)
    agent = refrl.PPO(env, seed=0, **{**NORM, "n_envs": 1, "batch_size": 32}).learn(3 * 32)
    assert set(agent.collector.episodes.returns) == {5.0}  # raw, although the buffer's rewards are scaled
    buf = agent.buffer
    assert not np.allclose(buf.rewards[buf.valid], 1.0) and np.all(buf.rewards[~buf.valid] == 0)


class NaNAt(gym.Wrapper):
    """Pendulum whose observation (or reward) becomes NaN at the k-th step."""

    def __init__(self, env: gym.Env, k: int, what: str) -> None:
        super().__init__(env)
        self.k, self.what, self.steps = k, what, 0

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        self.steps += 1
        if self.steps == self.k:
            obs, r = (np.full_like(obs, np.nan), r) if self.what == "obs" else (obs, float("nan"))
        return obs, r, term, trunc, info


@pytest.mark.parametrize("what", ["obs", "reward"])
def test_a_nan_from_the_env_fails_as_without_normalisation(what):
    """The training path's statistics take a NaN without raising (never an exception of one rank
    between collectives): a NaN observation is refused by the policy as it acts, a NaN reward by
    GAE, with the same error as without normalisation."""
    errors = []
    for on in (False, True):
        agent = refrl.PPO(NaNAt(gym.make("Pendulum-v1"), 2 * 64 + 5, what), seed=0,
                          **{**NORM, "n_envs": 1, "n_steps": 64, "normalize_obs": on, "normalize_reward": on})
        with pytest.raises(ValueError) as info:
            agent.learn(10 * 64)
        errors.append(str(info.value).split(" (at index")[0])  # normalised, every reward of the rollout is NaN
    assert errors[0] == errors[1] and ("obs" if what == "obs" else "rewards") in errors[0]
    with pytest.raises(ValueError, match="batch"):  # used directly, the statistics refuse non-finite data
        RunningMeanStd((3,)).update(np.full((2, 3), np.nan))
