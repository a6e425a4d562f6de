"""Each observation and action space SB3 takes, learned on a small real task (short runs, fixed
seeds; evaluation as SB3's evaluate_policy: deterministic actions, raw returns, episodes seeded
10_000 + i), and a saved model acting from the raw observations of its environment.

* Discrete observations: FrozenLake-v1 (4x4, not slippery), one-hot inside the policy.
* Dict observations: ``GoalCorridor``, a corridor whose observation is the agent's cell and the
  goal's cell (a Dict of two Discrete entries): only a policy that reads both reaches the goal.
* MultiBinary observations and actions: ``CopyBits``, where the reward is the fraction of the
  action's bits that equal the bits shown.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import refrl
from refrl.evaluation import episode_returns

pytestmark = pytest.mark.slow


class GoalCorridorEnv(gym.Env):
    """A corridor of ``n`` cells; the observation is a Dict of the agent's cell and the goal's cell
    (both Discrete, drawn at reset, distinct). Action 0 steps left, 1 right (walls hold). Reaching the
    goal gives +1 and ends the episode; every other step costs 0.05; 2n steps truncate it. The
    shortest path from distance d returns 1 − 0.05 (d − 1)."""

    def __init__(self, n: int = 6) -> None:
        self.n = n
        self.observation_space = spaces.Dict({"agent": spaces.Discrete(n), "goal": spaces.Discrete(n)})
        self.action_space = spaces.Discrete(2)
        self.agent = self.goal = self.t = 0

    def _obs(self) -> dict:
        return {"agent": self.agent, "goal": self.goal}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.agent, self.goal = (int(v) for v in self.np_random.choice(self.n, 2, replace=False))
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.agent = min(max(self.agent + (1 if int(action) == 1 else -1), 0), self.n - 1)
        self.t += 1
        reached = self.agent == self.goal
        return self._obs(), 1.0 if reached else -0.05, reached, self.t >= 2 * self.n, {}


class CopyBitsEnv(gym.Env):
    """Each step shows ``n`` random bits (MultiBinary observation); the action is ``n`` bits
    (MultiBinary) and the reward the fraction of them equal to the bits shown. Episodes of 8 steps:
    a random policy scores 4 on average, a perfect one 8."""

    def __init__(self, n: int = 4) -> None:
        self.n = n
        self.observation_space = spaces.MultiBinary(n)
        self.action_space = spaces.MultiBinary(n)
        self.t = 0
        self.bits = np.zeros(n, dtype=np.int8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.bits = self.np_random.integers(0, 2, self.n, dtype=np.int8)
        return self.bits.copy(), {}

    def step(self, action):
        a = np.asarray(action)
        if not self.action_space.contains(a):
            raise ValueError(f"CopyBitsEnv: action {a!r} is not in {self.action_space}")
        reward = float((a == self.bits).mean())
        self.t += 1
        self.bits = self.np_random.integers(0, 2, self.n, dtype=np.int8)
        return self.bits.copy(), reward, False, self.t >= 8, {}


for _id, _cls in (("refrl-tests/GoalCorridor-v0", GoalCorridorEnv), ("refrl-tests/CopyBits-v0", CopyBitsEnv)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=_cls)

FROZEN_LAKE = {"is_slippery": False}
SMALL = {"n_envs": 4, "batch_size": 128}


def _random_return(env_id: str, n_episodes: int = 100, **kwargs) -> float:
    """Mean raw return of uniformly random actions (the baseline a threshold must clear)."""
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(0)
    total = 0.0
    for i in range(n_episodes):
        env.reset(seed=10_000 + i)
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += float(r)
            done = term or trunc
    env.close()
    return total / n_episodes


def _assert_saved_model_acts_the_same(agent, tmp_path, returns):
    """The checkpoint holds the spaces; the loaded model predicts from raw observations alike."""
    path = agent.save(tmp_path / "model.npz")
    loaded = type(agent).load(path)
    assert loaded.observation_space == agent.observation_space and loaded.action_space == agent.action_space
    np.testing.assert_array_equal(episode_returns(loaded, n_episodes=len(returns), seed=10_000), returns)


@pytest.mark.parametrize("algo", [refrl.PPO, refrl.TRPO])
def test_discrete_observations_frozen_lake(algo, tmp_path):
    """FrozenLake-v1 4x4 without slip (Discrete(16) observations): random actions almost never reach
    the goal (0 of the 100 baseline episodes here); 10k steps (seed 0) reach it in every evaluation
    episode."""
    assert _random_return("FrozenLake-v1", **FROZEN_LAKE) < 0.1
    n_steps = 128 if algo is refrl.PPO else 256
    agent = algo("FrozenLake-v1", env_kwargs=FROZEN_LAKE, seed=0, n_steps=n_steps, **SMALL).learn(10_000)
    returns = episode_returns(agent, n_episodes=10, seed=10_000)
    assert returns.min() == 1.0, returns
    action, _ = agent.predict(0, deterministic=True)  # one raw observation: the start cell
    assert agent.action_space.contains(action)
    _assert_saved_model_acts_the_same(agent, tmp_path, returns)


@pytest.mark.parametrize("algo", [refrl.PPO, refrl.TRPO])
def test_dict_observations_goal_corridor(algo, tmp_path):
    """GoalCorridor (Dict of two Discrete(6)): random actions return about 0.35; the shortest paths
    about 0.93. 20k steps (seed 0) reach the goal in every evaluation episode (return > 0.7: within
    two steps of the shortest path) and within 0.05 of the shortest paths on average."""
    env_id = "refrl-tests/GoalCorridor-v0"
    assert _random_return(env_id) < 0.4
    n_steps = 128 if algo is refrl.PPO else 256
    agent = algo(env_id, seed=0, n_steps=n_steps, **SMALL).learn(20_000)
    returns = episode_returns(agent, n_episodes=20, seed=10_000)
    assert returns.min() > 0.7 and returns.mean() > 0.88, returns
    action, _ = agent.predict({"agent": 0, "goal": 3}, deterministic=True)  # one raw Dict observation
    assert int(action) == 1
    _assert_saved_model_acts_the_same(agent, tmp_path, returns)


@pytest.mark.parametrize("algo", [refrl.PPO, refrl.TRPO])
def test_multibinary_actions_copy_bits(algo, tmp_path):
    """CopyBits (MultiBinary(4) observations and actions; TRPO through the Bernoulli Fisher block):
    random bits return 4 of 8; 10k steps (seed 0) return more than 7."""
    env_id = "refrl-tests/CopyBits-v0"
    assert _random_return(env_id) < 4.5
    n_steps = 128 if algo is refrl.PPO else 256
    agent = algo(env_id, seed=0, n_steps=n_steps, **SMALL).learn(10_000)
    returns = episode_returns(agent, n_episodes=10, seed=10_000)
    assert returns.mean() > 7.0, returns
    bits = np.array([1, 0, 0, 1], dtype=np.int8)
    action, _ = agent.predict(bits, deterministic=True)
    assert action.dtype == np.int8 and agent.action_space.contains(action)
    _assert_saved_model_acts_the_same(agent, tmp_path, returns)
