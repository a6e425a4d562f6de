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
    """Result of one TRPO / NPG policy step: ``refrl.algos.trpo.trpo_step`` (the step that runs)
    and ``refrl.oracle.trpo_step`` (its literal float64 reference).

    ``theta`` is θ_old bit for bit when ``accepted`` is False. ``status``: "accepted", "rejected"
    (no line-search try passed), "zero_gradient", "bad_curvature" (sᵀ(F + λI)s not finite/positive).
    """

    theta: np.ndarray
    kl: float  # exact mean KL(π_old ‖ π_θ) on the batch after the step (0 when rejected)
    surrogate_gain: float  # actual L(θ) − L(θ_old) (0 when rejected)
    backtracks: int  # times the step was shrunk before acceptance (line_search_max_iter if rejected)
    accepted: bool  # θ moved (False: θ is bit-identical to θ_old)
    expected_gain: float = 0.0  # gᵀΔθ of the accepted (or last tried) step
    step_fraction: float = 0.0  # α^j of the accepted step (0 when rejected)
    cg_iterations: int = 0
    cg_residual: float = 0.0  # ‖r‖ of the CG solve
    quadratic_kl: float = 0.0  # ½ β² sᵀ(F + λI)s (= max_kl by construction)
    surrogate_old: float = 0.0  # L(θ_old) = Σ w Â / Σ w
    status: str = "accepted"
    grad_norm: float = 0.0  # ‖g‖
