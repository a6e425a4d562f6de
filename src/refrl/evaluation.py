"""Evaluation of a trained agent, as Stable-Baselines3's ``evaluate_policy``.

:func:`evaluate_policy` is SB3's call: ``(mean, std)`` of the episode returns (or the lists of
returns and lengths) over ``n_eval_episodes`` episodes of a gymnasium.Env or a VectorEnv.
:func:`episode_returns` is refrl's array form (episode i reset with seed + i).  Both report the
environment's raw rewards and seed the episodes (``seed``) so that an evaluation is repeatable.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

__all__ = ["episode_returns", "evaluate_policy"]


class _Agent(Protocol):
    """What evaluation needs of an agent (every refrl algorithm has it)."""

    env_id: str | None
    env_kwargs: dict[str, Any]

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False,
                rng: np.random.Generator | None = None) -> tuple[np.ndarray, Any]: ...


def _check_episodes(name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {n!r}")
    return int(n)


def _check_seed(seed: Any) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed: expected a non-negative integer or None, got {seed!r}")
    return None if seed is None else int(seed)


def _episodes_single(agent: _Agent, env: gym.Env, n: int, seed: int | None, deterministic: bool, render: bool,
                     callback: Callable | None, rng: np.random.Generator) -> tuple[list[float], list[int]]:
    """n episodes of one env, one after the other (episode i reset with seed + i)."""
    returns, lengths = [], []
    for i in range(n):
        obs, _ = env.reset(seed=None if seed is None else seed + i)
        done, total, length = False, 0.0, 0
        while not done:
            action, _ = agent.predict(obs, deterministic=deterministic, rng=rng)
            obs, r, term, trunc, info = env.step(action)
            total += float(r)
            length += 1
            done = bool(term or trunc)
            if callback is not None:
                callback({"observations": obs, "rewards": r, "dones": done, "infos": info, "episode_counts": i},
                         globals())
            if render:
                env.render()
        returns.append(total)
        lengths.append(length)
    return returns, lengths


def _episodes_vector(agent: _Agent, env: VectorEnv, n: int, seed: int | None, deterministic: bool, render: bool,
                     callback: Callable | None, rng: np.random.Generator) -> tuple[list[float], list[int]]:
    """n episodes of a vector env, sub-env j running (n + j) // num_envs of them (SB3's split, so that
    the slower sub-envs do not bias the result); reset once with ``seed`` (sub-env j: seed + j)."""
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise ValueError(f"env: evaluate_policy needs a vector env that autoresets (NEXT_STEP or SAME_STEP), got {mode}")
    k = env.num_envs
    targets = np.array([(n + j) // k for j in range(k)])
    counts = np.zeros(k, dtype=int)
    cur_r, cur_l = np.zeros(k), np.zeros(k, dtype=int)
    resetting = np.zeros(k, dtype=bool)  # NEXT_STEP: this step of sub-env j only resets it (not a transition)
    returns, lengths = [], []
    obs, _ = env.reset(seed=seed)
    while (counts < targets).any():
        actions, _ = agent.predict(obs, deterministic=deterministic, rng=rng)
        obs, r, term, trunc, info = env.step(actions)
        real = ~resetting
        cur_r += np.where(real, r, 0.0)
        cur_l += real
        done = (np.asarray(term) | np.asarray(trunc)) & real
        if callback is not None:
            callback({"observations": obs, "rewards": r, "dones": done, "infos": info, "episode_counts": counts},
                     globals())
        for j in np.flatnonzero(done):
            if counts[j] < targets[j]:
                returns.append(float(cur_r[j]))
                lengths.append(int(cur_l[j]))
                counts[j] += 1
            cur_r[j], cur_l[j] = 0.0, 0
        resetting = done if mode == AutoresetMode.NEXT_STEP else np.zeros(k, dtype=bool)
        if render:
            env.render()
    return returns, lengths


def _run(agent: _Agent, env: str | gym.Env | VectorEnv | None, n: int, seed: int | None, deterministic: bool,
         render: bool, callback: Callable | None, env_kwargs: dict[str, Any] | None) -> tuple[list[float], list[int]]:
    if env is None:
        env = agent.env_id
        if env is None:
            raise ValueError("env: the agent was trained on an env without an id; pass env=...")
    owned = isinstance(env, str)
    e = gym.make(env, **(env_kwargs if env_kwargs is not None else agent.env_kwargs)) if owned else env
    rng = np.random.default_rng(seed)  # stochastic actions: their own stream, the agent's is left alone
    try:
        if isinstance(e, VectorEnv):
            returns, lengths = _episodes_vector(agent, e, n, seed, deterministic, render, callback, rng)
        elif isinstance(e, gym.Env):
            returns, lengths = _episodes_single(agent, e, n, seed, deterministic, render, callback, rng)
        else:
            raise TypeError(f"env: expected an env id, a gymnasium.Env or a VectorEnv, got {type(e).__name__}")
    finally:
        if owned:
            e.close()
    if not math.isfinite(sum(returns)):
        raise ValueError("evaluate_policy: non-finite episode return")
    return returns, lengths


def evaluate_policy(
    model: _Agent,
    env: str | gym.Env | VectorEnv | None = None,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    render: bool = False,
    callback: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    reward_threshold: float | None = None,
    return_episode_rewards: bool = False,
    warn: bool = True,
    *,
    seed: int | None = 0,
    env_kwargs: dict[str, Any] | None = None,
    n_episodes: int | None = None,
) -> Any:
    """Run ``n_eval_episodes`` episodes with ``model.predict``: ``(mean_reward, std_reward)``, or with
    ``return_episode_rewards`` the lists ``(episode_rewards, episode_lengths)``; as SB3's.

    ``env``: a gymnasium.Env, a VectorEnv (sub-env j runs ``(n_eval_episodes + j) // num_envs``
    episodes, as SB3), an env id (built with ``env_kwargs``, default the model's) or None (the
    model's env id).  Observations are the env's raw ones (``predict`` applies the model's
    normalisation) and rewards the env's own.  ``seed`` (refrl): a single env resets episode i with
    ``seed + i``, a vector env is reset once with ``seed``; None leaves the env's state alone (SB3).
    ``callback(locals, globals)`` is called after every step; ``reward_threshold`` raises
    AssertionError when the mean is below it (SB3's check).  ``warn`` is accepted for SB3 scripts.

    ``n_episodes`` (deprecated, refrl's earlier signature) returns the array of returns instead:
    use :func:`episode_returns` for that.
    """
    if n_episodes is not None:
        warnings.warn("evaluate_policy(n_episodes=...) returning an array is deprecated; use "
                      "refrl.evaluation.episode_returns, or n_eval_episodes for SB3's (mean, std)",
                      DeprecationWarning, stacklevel=2)
        return episode_returns(model, env, n_episodes=n_episodes, seed=0 if seed is None else seed,
                               deterministic=deterministic, env_kwargs=env_kwargs)
    n = _check_episodes("n_eval_episodes", n_eval_episodes)
    returns, lengths = _run(model, env, n, _check_seed(seed), bool(deterministic), bool(render), callback, env_kwargs)
    mean, std = float(np.mean(returns)), float(np.std(returns))
    if reward_threshold is not None:
        assert mean > reward_threshold, f"Mean reward below threshold: {mean:.2f} < {reward_threshold:.2f}"
    if return_episode_rewards:
        return returns, lengths
    return mean, std


def episode_returns(agent: _Agent, env: str | gym.Env | VectorEnv | None = None, *, n_episodes: int = 10,
                    seed: int = 0, deterministic: bool = True, env_kwargs: dict[str, Any] | None = None) -> np.ndarray:
    """Raw returns of ``n_episodes`` episodes as an array (episode i reset with seed + i on a single env).

    ``agent`` is a refrl algorithm (anything with ``predict``, ``env_id`` and ``env_kwargs``).
    ``env`` defaults to the agent's environment id, built with ``env_kwargs`` (default: the
    agent's).  Actions are deterministic unless ``deterministic=False``.
    """
    n = _check_episodes("n_episodes", n_episodes)
    seed = _check_seed(seed)
    if seed is None:
        raise ValueError("seed: expected a non-negative integer, got None")
    returns, _ = _run(agent, env, n, seed, bool(deterministic), False, None, env_kwargs)
    return np.asarray(returns, dtype=np.float64)
