"""Evaluation of a trained agent: raw returns of seeded episodes, as SB3's ``evaluate_policy``."""

from __future__ import annotations

import math
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

__all__ = ["evaluate_policy"]


class _Agent(Protocol):
    """What evaluation needs of an agent (every refrl algorithm has it)."""

    env_id: str | None
    env_kwargs: dict[str, Any]

    def predict(self, obs: np.ndarray, deterministic: bool = True,
                rng: np.random.Generator | None = None) -> tuple[np.ndarray, None]: ...


def evaluate_policy(agent: _Agent, env: str | gym.Env | None = None, *, n_episodes: int = 10, seed: int = 0,
                    deterministic: bool = True, env_kwargs: dict[str, Any] | None = None) -> np.ndarray:
    """Raw returns of ``n_episodes`` episodes (episode i reset with seed + i), as SB3's evaluate_policy.

    ``agent`` is a refrl algorithm (anything with ``predict``, ``env_id`` and ``env_kwargs``).
    ``env`` defaults to the agent's environment id, built with ``env_kwargs`` (default: the
    agent's).  Actions are deterministic unless ``deterministic=False``.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise ValueError(f"n_episodes: expected an integer >= 1, got {n_episodes!r}")
    if env is None:
        env = agent.env_id
        if env is None:
            raise ValueError("env: the agent was trained on an env without an id; pass env=...")
    e = gym.make(env, **(env_kwargs if env_kwargs is not None else agent.env_kwargs)) if isinstance(env, str) else env
    rng = np.random.default_rng(seed)
    returns = np.zeros(n_episodes)
    try:
        for i in range(n_episodes):
            obs, _ = e.reset(seed=seed + i)
            done, total = False, 0.0
            while not done:
                action, _ = agent.predict(obs, deterministic=deterministic, rng=rng)
                obs, r, term, trunc, _ = e.step(action)
                total += float(r)
                done = term or trunc
            returns[i] = total
    finally:
        if isinstance(env, str):
            e.close()
    if not math.isfinite(returns.sum()):
        raise ValueError("evaluate_policy: non-finite episode return")
    return returns
