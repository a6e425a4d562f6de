"""Test helpers (CS231n / Caffe2 style): finite differences, relative error, oracle matching.

``numerical_grad`` and ``rel_error`` are shared by every gradient test in the suite;
``assert_matches_oracle`` compares a kernel's NamedTuple result with its oracle's, field by
field, with per-dtype tolerances (fast-histogram's habit).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

# Tolerances per dtype for kernel vs float64 oracle. float32 kernels compute in float32 (sums
# accumulated in double), so their error is a few float32 ulps of the largest magnitude.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 2e-5}
ATOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 2e-5}


def rtol_for(dtype) -> float:
    return RTOL[np.dtype(dtype)]


def atol_for(dtype) -> float:
    return ATOL[np.dtype(dtype)]


def rel_error(x, y) -> float:
    """max |x − y| / max(1e-8, |x| + |y|), elementwise (CS231n's gradient-check measure)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)), initial=0.0))


def numerical_grad(f: Callable[[np.ndarray], float | np.ndarray], x: np.ndarray, dout=None, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference gradient of ``sum(f(x) * dout)`` with respect to ``x``.

    ``x`` (float64, any shape) is perturbed in place and restored. With ``dout=None``,
    ``f`` must return a scalar. (f(x + h e_i) − f(x − h e_i)) / 2h per entry.
    """
    if x.dtype != np.float64:
        raise TypeError("numerical_grad needs a float64 x (finite differences in float32 are noise)")
    grad = np.zeros_like(x)
    flat_x = x.reshape(-1)  # a view: perturbations reach f
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        plus = f(x)
        flat_x[i] = old - h
        minus = f(x)
        flat_x[i] = old
        diff = np.asarray(plus, dtype=np.float64) - np.asarray(minus, dtype=np.float64)
        flat_g[i] = float(np.sum(diff * (1.0 if dout is None else dout))) / (2.0 * h)
    return grad


def assert_close(got, want, *, rtol: float, atol: float, name: str = "") -> None:
    """|got − want| ≤ atol + rtol·|want| everywhere, with a message naming the field."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want)
    bound = atol + rtol * np.abs(want)
    if not np.all(err <= bound):
        i = np.unravel_index(np.argmax(err - bound), err.shape) if err.ndim else ()
        raise AssertionError(
            f"{name}: max excess error at {i}: got {got[i]!r}, want {want[i]!r} (atol={atol}, rtol={rtol})"
        )


def assert_matches_oracle(got, want, *, rtol: float, atol: float, skip: tuple[str, ...] = ()) -> None:
    """Compare two NamedTuples (kernel result, oracle result) field by field."""
    assert type(got) is type(want), f"{type(got).__name__} != {type(want).__name__}"
    for field in got._fields:
        if field in skip:
            continue
        g, w = getattr(got, field), getattr(want, field)
        if isinstance(w, (bool, str, int)) and not isinstance(w, float):
            assert g == w, f"{field}: {g!r} != {w!r}"
        else:
            assert_close(g, w, rtol=rtol, atol=atol, name=field)


def random_pendulum_return(n_episodes: int = 5) -> float:
    """Mean raw return of a uniformly random Pendulum-v1 policy over the evaluation seeds
    10_000 + i (the baseline the learning tests' thresholds are measured against; ≈ −1100)."""
    import gymnasium as gym

    rng = np.random.default_rng(0)
    env = gym.make("Pendulum-v1")
    returns = []
    for i in range(n_episodes):
        env.reset(seed=10_000 + i)
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(rng.uniform(-2.0, 2.0, size=1).astype(np.float32))
            total += r
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


def find_tool(name: str) -> str | None:
    """A tool from PATH or from the running interpreter's environment (the pip wheels of cmake/ninja)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


class CounterEnv(gym.Env):
    """obs = [steps taken in this episode]; reward 1 per step; terminates after ``terminate_at``
    steps if given (else only a TimeLimit ends it)."""

    def __init__(self, terminate_at: int | None = None) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.terminate_at = terminate_at
        self.k = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.k = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.k += 1
        term = self.terminate_at is not None and self.k >= self.terminate_at
        return np.array([self.k], np.float32), 1.0, term, False, {}
