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
    """Result of ``refrl.kernels.conjugate_gradient`` (the first three fields are the contract).

    ``converged`` is True when rᵀr ≤ tol. ``status`` says why the solve stopped:
    "converged", "max_iterations" (the usual case for TRPO's 10 fixed iterations: x is
    the truncated-CG approximation) or "not_positive_definite" (pᵀ(A + damping·I)p ≤ 0:
    A is not positive definite; x is the last iterate before that direction).
    """

    x: np.ndarray  # [n]
    iterations: int
    residual_norm: float
    converged: bool = True
    status: str = "converged"


class TrpoStepResult(NamedTuple):
    theta: np.ndarray
    kl: float
    surrogate_gain: float
    backtracks: int
    accepted: bool
