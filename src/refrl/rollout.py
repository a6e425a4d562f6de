"""Rollout collection from gymnasium vector environments into a time-major buffer.

Everything here follows the data conventions of docs/design.md:

* arrays are time-major, shape ``[T, N]`` (``T = n_steps`` steps of ``N = n_envs`` envs);
* ``terminated`` and ``truncated`` stay separate all the way to :func:`refrl.kernels.gae`;
* gymnasium's vector environments auto-reset in ``NEXT_STEP`` mode: the observation
  returned on the step where an episode ends is its *real final observation*, and the
  following ``step`` call only resets that sub-environment (reward 0, action ignored).

So, with ``obs_t`` the observation the policy acts on at slot ``t``::

    V(s'_t) = values[t + 1]            (t < T - 1: the value of the next observation the
                                        policy saw, the final observation if t ended an episode)
    V(s'_{T-1}) = V(obs_T)             (one extra value evaluation after the loop)
    valid[t] = not (episode ended at t - 1)     (the reset step is not a transition)

A truncated step therefore bootstraps from the value of its real final observation
(never from the reset observation), and the reset step gets weight 0 in every loss and
in advantage normalisation.  Episode returns and lengths (of the *raw*, un-normalised
rewards) are recorded per finished episode for logging.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from refrl import native
from refrl.policy import ActorCritic

__all__ = [
    "VECTORIZATION_MODES",
    "EpisodeStats",
    "RawRewardTap",
    "RolloutBuffer",
    "RolloutCollector",
    "check_env_id",
    "check_spaces",
    "find_wrapper",
    "make_vec_env",
]

VECTORIZATION_MODES = ("auto", "vector_entry_point", "sync", "async")

# Measured here (CartPole-v1, gymnasium 1.4, one vector step): the NumPy-vectorized
# CartPoleVectorEnv costs ~39 us whatever N; SyncVectorEnv ~14 us at N=1, 22 us at N=2,
# 36 us at N=4, 63 us at N=8.  "auto" picks the vector entry point from this N upwards.
_AUTO_VECTOR_ENTRY_POINT_MIN_ENVS = 4


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """Return the registered spec of ``env_id``; ``ValueError`` naming it when unknown.

    gymnasium's ``"module:EnvId"`` form is accepted as ``gymnasium.make`` takes it: the module is
    imported first (registering its environments), then ``EnvId`` is looked up.
    """
    if not isinstance(env_id, str) or not env_id:
        raise TypeError(f"env: expected a gymnasium environment id (str), got {env_id!r}")
    module, _, name = env_id.rpartition(":")
    if module:
        import importlib

        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"env: cannot import module {module!r} of {env_id!r} ({exc}); it must be importable "
                             "(installed, on PYTHONPATH or in the current directory)") from None
    try:
        return gym.spec(name)
    except gym.error.Error as exc:
        where = f" (importing {module!r} registered no such id)" if module else ""
        raise ValueError(f"env: unknown gymnasium environment id {env_id!r}{where} ({exc})") from None


def check_spaces(observation_space: gym.Space, action_space: gym.Space) -> None:
    """Reject spaces the MLP policies cannot handle, naming the space."""
    if not isinstance(observation_space, spaces.Box):
        raise ValueError(
            f"env: unsupported observation space {observation_space!r}; refrl's MLP policies "
            "need a Box (wrap the env with gymnasium's FlattenObservation first)"
        )
    if not isinstance(action_space, (spaces.Discrete, spaces.Box, spaces.MultiDiscrete)):
        raise ValueError(
            f"env: unsupported action space {action_space!r}; supported: Discrete, Box, MultiDiscrete"
        )


class RawRewardTap(VectorWrapper):
    """Keeps the last raw reward (``.raw_rewards``) before reward scaling changes it."""

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        self.raw_rewards = np.zeros(self.num_envs)

    def step(self, actions):  # noqa: D102 (a one-line pass-through)
        obs, rew, term, trunc, info = self.env.step(actions)
        self.raw_rewards = rew
        return obs, rew, term, trunc, info


def find_wrapper(env: VectorEnv, cls: type) -> Any | None:
    """The outermost wrapper of type ``cls`` in the chain of ``env`` (or None)."""
    while True:
        if isinstance(env, cls):
            return env
        inner = getattr(env, "env", None)
        if inner is None or inner is env:
            return None
        env = inner


def make_vec_env(
    env: str | gym.Env | VectorEnv,
    n_envs: int = 1,
    *,
    vectorization_mode: str = "auto",
    normalize_obs: bool = False,
    normalize_reward: bool = False,
    clip_obs: float | None = 10.0,
    clip_reward: float | None = 10.0,
    gamma: float = 0.99,
    env_kwargs: dict[str, Any] | None = None,
) -> VectorEnv:
    """Build the vector environment a rollout collects from.

    ``env`` is a registered id (built with :func:`gymnasium.make_vec`: the NumPy-vectorized
    ``vector_entry_point`` when the environment has one and ``n_envs >= 4`` in ``"auto"``
    mode, else ``SyncVectorEnv``; ``"async"`` runs one subprocess per env), a single
    ``gymnasium.Env`` (then ``n_envs`` must be 1) or a ``VectorEnv`` in NEXT_STEP autoreset
    mode (used as given).

    Observation normalisation and reward scaling are gymnasium's own vector wrappers
    (``NormalizeObservation``: running mean/var per coordinate, then clip to ±``clip_obs``;
    ``NormalizeReward``: divide by the running std of the discounted return, then clip to
    ±``clip_reward``), as in SB3's ``VecNormalize`` and CleanRL's continuous PPO.
    """
    if vectorization_mode not in VECTORIZATION_MODES:
        raise ValueError(f"vectorization_mode: expected one of {VECTORIZATION_MODES}, got {vectorization_mode!r}")
    if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
        raise ValueError(f"n_envs: expected an integer >= 1, got {n_envs!r}")
    n_envs = int(n_envs)
    if isinstance(env, str):
        spec = check_env_id(env)
        mode = vectorization_mode
        if mode == "auto":
            mode = "vector_entry_point" if spec.vector_entry_point and n_envs >= _AUTO_VECTOR_ENTRY_POINT_MIN_ENVS else "sync"
        elif mode == "vector_entry_point" and not spec.vector_entry_point:
            raise ValueError(f"vectorization_mode: {env!r} has no vector_entry_point; use 'sync' or 'async'")
        # copy=False: the collector copies each observation into the buffer before the next
        # step overwrites it, so the vector env's defensive deepcopy (~30 us/step) is not needed.
        vector_kwargs = {"copy": False} if mode in ("sync", "async") else {}
        try:
            venv = gym.make_vec(env, num_envs=n_envs, vectorization_mode=mode, vector_kwargs=vector_kwargs,
                                **(env_kwargs or {}))
        except gym.error.DependencyNotInstalled as exc:
            raise ValueError(f"env: {env!r} needs an extra dependency ({exc}); for MuJoCo: pip install 'refrl[mujoco]'") from None
    elif isinstance(env, VectorEnv):
        if n_envs != 1 and n_envs != env.num_envs:
            raise ValueError(f"n_envs: a VectorEnv with {env.num_envs} envs was given but n_envs={n_envs}")
        venv = env
    elif isinstance(env, gym.Env):
        if n_envs != 1:
            raise ValueError(f"n_envs: a single gymnasium.Env instance can only give n_envs=1, got {n_envs}; pass its id instead")
        venv = gym.vector.SyncVectorEnv([lambda: env], copy=False)
    else:
        raise TypeError(f"env: expected an env id (str), a gymnasium.Env or a VectorEnv, got {type(env).__name__}")

    mode_meta = venv.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode_meta != AutoresetMode.NEXT_STEP:
        raise ValueError(f"env: refrl collects in NEXT_STEP autoreset mode (see docs/design.md), got {mode_meta}")
    check_spaces(venv.single_observation_space, venv.single_action_space)

    from gymnasium.wrappers import vector as wv

    if normalize_obs:
        venv = wv.NormalizeObservation(venv)
        if clip_obs is not None:
            c = float(clip_obs)
            venv = wv.TransformObservation(venv, lambda o: np.clip(o, -c, c), venv.observation_space)
    if normalize_reward:
        venv = RawRewardTap(venv)
        venv = wv.NormalizeReward(venv, gamma=gamma)
        if clip_reward is not None:
            venv = wv.ClipReward(venv, -float(clip_reward), float(clip_reward))
    return venv


@dataclass
class RolloutBuffer:
    """One rollout, time-major ``[T, N]`` (``T = n_steps``, ``N = n_envs``).

    ``valid[t, n]`` is False on a NEXT_STEP reset step (not a transition: weight 0).
    ``next_values[t, n]`` is V of the observation that followed step t (the real final
    observation when the episode ended there).  ``advantages``/``returns`` are filled by
    the algorithm (GAE).
    """

    obs: np.ndarray  # [T, N, *obs_shape]
    actions: np.ndarray  # [T, N, *act_shape]
    logp: np.ndarray  # [T, N]
    values: np.ndarray  # [T, N]
    next_values: np.ndarray  # [T, N]
    rewards: np.ndarray  # [T, N] (scaled when reward scaling is on)
    raw_rewards: np.ndarray  # [T, N] float64, as the environment gave them
    terminated: np.ndarray  # [T, N] bool
    truncated: np.ndarray  # [T, N] bool
    valid: np.ndarray  # [T, N] bool
    advantages: np.ndarray  # [T, N]
    returns: np.ndarray  # [T, N]

    @classmethod
    def allocate(cls, n_steps: int, n_envs: int, observation_space: gym.Space, action_space: gym.Space, dtype) -> RolloutBuffer:
        T, N = n_steps, n_envs
        dtype = np.dtype(dtype)
        if isinstance(action_space, spaces.Box):
            act_shape, act_dtype = action_space.shape, dtype
        elif isinstance(action_space, spaces.MultiDiscrete):
            act_shape, act_dtype = action_space.shape, np.int64
        else:
            act_shape, act_dtype = (), np.int64
        z = lambda d=dtype: np.zeros((T, N), dtype=d)  # noqa: E731
        return cls(
            obs=np.zeros((T, N, *observation_space.shape), dtype=dtype),
            actions=np.zeros((T, N, *act_shape), dtype=act_dtype),
            logp=z(), values=z(), next_values=z(), rewards=z(), raw_rewards=z(np.float64),
            terminated=z(bool), truncated=z(bool), valid=z(bool), advantages=z(), returns=z(),
        )

    @property
    def n_steps(self) -> int:
        return self.logp.shape[0]

    @property
    def n_envs(self) -> int:
        return self.logp.shape[1]


@dataclass
class EpisodeStats:
    """Finished episodes' raw returns and lengths (the last ``maxlen`` kept, as SB3's ep_info_buffer)."""

    returns: deque
    lengths: deque
    count: int = 0

    @classmethod
    def create(cls, maxlen: int = 100) -> EpisodeStats:
        return cls(deque(maxlen=maxlen), deque(maxlen=maxlen))


class RolloutCollector:
    """Steps a vector env with a policy and fills a :class:`RolloutBuffer`.

    The state that spans rollouts (the current observation, which sub-envs reset on their
    next step, the running raw return/length of unfinished episodes) lives here, so that
    consecutive rollouts continue the same episodes (CleanRL's ``next_obs``/``next_done``).

    ``policy`` needs ``act(obs, rng) -> (actions, logp, values)``, ``clip_actions(actions)``
    and ``predict_values(obs)`` (the :class:`refrl.policy.ActorCritic` contract); an ActorCritic
    acts through :func:`refrl.native.act_and_clip` (the two calls in one, natively).
    """

    def __init__(self, env: VectorEnv, policy, buffer: RolloutBuffer, *, seed: int | None, stats_window: int = 100) -> None:
        if buffer.n_envs != env.num_envs:
            raise ValueError(f"buffer: has {buffer.n_envs} envs but the env has {env.num_envs}")
        self.env = env
        self.policy = policy
        self.buffer = buffer
        self.episodes = EpisodeStats.create(stats_window)
        self._tap = find_wrapper(env, RawRewardTap)
        obs, _ = env.reset(seed=seed)
        self.obs = obs
        self.prev_done = np.zeros(env.num_envs, dtype=bool)
        self.ep_return = np.zeros(env.num_envs)
        self.ep_length = np.zeros(env.num_envs, dtype=np.int64)

    def collect(self, rng: np.random.Generator, on_step: Callable[[int, dict[str, Any]], bool] | None = None) -> int | None:
        """Fill the buffer with ``n_steps`` vector steps; return the number of real transitions.

        ``on_step(n_real, step_locals)``, when given, is called after every vector step that holds a
        transition (not after one in which every env only resets) with the real
        transitions collected so far in this rollout and the step's ``new_obs``, ``actions``,
        ``rewards``, ``dones``, ``infos`` and ``n_steps`` (the slot t); returning False stops the
        rollout at once: collect then returns None, the buffer is partial and this collector is
        spent (its episodes are cut; build a new one to continue).
        """
        env, policy, buf, tap = self.env, self.policy, self.buffer, self._tap
        if isinstance(policy, ActorCritic):  # the native acting network (NumPy fallback inside)
            act_and_clip = functools.partial(native.act_and_clip, policy)
        else:
            act, clip_actions = policy.act, policy.clip_actions

            def act_and_clip(o, g):
                a, lp, v = act(o, g)
                return a, clip_actions(a), lp, v

        step = env.step
        obs = self.obs
        # the buffer's arrays as locals: this loop runs once per env step (attribute look-ups add up)
        b_obs, b_actions, b_logp, b_values = buf.obs, buf.actions, buf.logp, buf.values
        b_rew, b_raw, b_term, b_trunc = buf.rewards, buf.raw_rewards, buf.terminated, buf.truncated
        n_real, ended = 0, self.prev_done
        for t in range(buf.n_steps):
            actions, env_actions, logp, values = act_and_clip(obs, rng)
            b_obs[t] = obs
            b_actions[t] = actions
            b_logp[t] = logp
            b_values[t] = values
            obs, rew, term, trunc, info = step(env_actions)
            if tap is None:
                b_raw[t] = rew  # the buffer's rewards are these, cast after the loop
            else:
                b_rew[t] = rew
                b_raw[t] = tap.raw_rewards
            b_term[t] = term
            b_trunc[t] = trunc
            if on_step is not None:  # one test per step when no callback is given
                new = env.num_envs - int(np.count_nonzero(ended))  # a slot after an episode end only resets
                ended = term | trunc
                if new:  # a step in which every env only resets holds no transition: no call
                    n_real += new
                    if on_step(n_real, {"new_obs": obs, "actions": env_actions, "rewards": rew, "dones": ended,
                                        "infos": info, "n_steps": t}) is False:
                        return None
        if tap is None:
            buf.rewards[...] = buf.raw_rewards
        # valid[t]: step t is a transition, i.e. step t - 1 did not end an episode (the step after
        # an episode end only resets); done flags as the env returned them, before the masking below
        done = buf.terminated | buf.truncated
        np.logical_not(self.prev_done, out=buf.valid[0])
        np.logical_not(done[:-1], out=buf.valid[1:])
        self.obs, self.prev_done = obs, done[-1].copy()
        # V(s'_t): the value of the observation that followed step t.  Under NEXT_STEP this is
        # values[t + 1] (the real final observation when t ended an episode: the policy saw it
        # on the reset step), and one extra evaluation for the last step.  (critical!)
        buf.next_values[:-1] = buf.values[1:]
        buf.next_values[-1] = policy.predict_values(obs)
        # A reset step is no transition: gymnasium already gives it reward 0 and no episode end;
        # enforce it so that a custom VectorEnv cannot leak one into the losses.
        buf.terminated &= buf.valid
        buf.truncated &= buf.valid
        buf.rewards *= buf.valid
        self._record_episodes()
        return int(np.count_nonzero(buf.valid))

    def _record_episodes(self) -> None:
        """Raw return and length of every episode that ended in this rollout (vectorised per env)."""
        buf = self.buffer
        r = np.where(buf.valid, buf.raw_rewards, 0.0)
        csum_r = np.cumsum(r, axis=0)
        csum_l = np.cumsum(buf.valid, axis=0, dtype=np.int64)
        done = buf.terminated | buf.truncated
        for n in np.flatnonzero(done.any(axis=0)):
            prev_r, prev_l = 0.0, 0
            for t in np.flatnonzero(done[:, n]):
                ep_r = self.ep_return[n] + csum_r[t, n] - prev_r
                ep_l = self.ep_length[n] + csum_l[t, n] - prev_l
                self.episodes.returns.append(float(ep_r))
                self.episodes.lengths.append(int(ep_l))
                self.episodes.count += 1
                self.ep_return[n], self.ep_length[n] = 0.0, 0
                prev_r, prev_l = csum_r[t, n], csum_l[t, n]
            self.ep_return[n] -= prev_r
            self.ep_length[n] -= prev_l
        self.ep_return += csum_r[-1]
        self.ep_length += csum_l[-1]
