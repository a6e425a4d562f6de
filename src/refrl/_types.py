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
    """Result of ``refrl.kernels.trpo_step`` / ``refrl.oracle.trpo_step`` (the first five fields are
    the contract; the rest are diagnostics with defaults).

    ``theta`` is θ_old bit for bit when ``accepted`` is False. ``status``: "accepted", "rejected"
    (no line-search try passed), "zero_gradient", "bad_curvature" (sᵀ(F + λI)s not finite/positive).
    """

    theta: np.ndarray
    kl: float
    surrogate_gain: float
    backtracks: int
    accepted: bool
    expected_gain: float = 0.0  # gᵀΔθ of the accepted (or last tried) step
    step_fraction: float = 0.0  # α^j of the accepted step (0 when rejected)
    cg_iterations: int = 0
    cg_residual: float = 0.0
    quadratic_kl: float = 0.0  # ½ β² sᵀ(F + λI)s (= max_kl by construction)
    surrogate_old: float = 0.0  # L(θ_old) = Σ w Â / Σ w
    status: str = "accepted"
