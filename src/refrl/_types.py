"""Result types shared across layers (NamedTuples, as in Stable-Baselines3's type_aliases)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class GAEResult(NamedTuple):
    advantages: np.ndarray  # [T, N]
    returns: np.ndarray  # [T, N]


class SurrogateResult(NamedTuple):
    objective: float
    grad_logp: np.ndarray  # [B]
    clip_fraction: float
    approx_kl: float
    ratio_min: float
    ratio_mean: float
    ratio_max: float


class CGResult(NamedTuple):
    x: np.ndarray  # [n]
    iterations: int
    residual_norm: float


class TrpoStepResult(NamedTuple):
    theta: np.ndarray
    kl: float
    surrogate_gain: float
    backtracks: int
    accepted: bool
