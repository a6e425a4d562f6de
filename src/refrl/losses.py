"""PPO's objective pieces as small functions, each with its hand-derived gradient.

Schulman et al. 2017 (arXiv:1707.06347), eq. 7 and 9, §4; the value clipping of OpenAI's ppo2
and CleanRL.  Ê[x] = Σ_i w_i x_i / Σ_i w_i is a weighted mean over one minibatch (reset slots
carry w = 0).  Objectives (L^CLIP, L^KLPEN, the entropy bonus) are to be maximised; the value
loss is minimised.  Each function has a literal oracle in ``refrl.oracle`` and a finite-difference
test in ``tests/test_losses.py``; docs/math.md lists them.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from refrl import kernels

__all__ = [
    "PolicyObjective", "advantage_moments", "clipped_surrogate_objective", "entropy_bonus", "kl_penalty_objective",
    "normalize_advantages", "value_loss",
]


class PolicyObjective(NamedTuple):
    """A policy objective L on one minibatch, its gradients and the usual statistics."""

    objective: float  # L, including −β·Ê[KL] for L^KLPEN
    surrogate: float  # the likelihood-ratio part alone: L^CLIP, or Ê[r Â] of L^KLPEN
    kl: float  # Ê[KL[π_old, π_θ]] (0 for L^CLIP, which does not compute it)
    grad_logp: np.ndarray  # ∂L/∂log π_θ(a_i|s_i), [B]
    grad_dist_params: np.ndarray | None  # ∂L/∂(distribution params) of the −β·KL term, [B, P]; None for L^CLIP
    clip_fraction: float  # Ê[|r − 1| > ε]
    approx_kl: float  # Ê[(r − 1) − log r] (k3 estimator of KL[π_old, π_θ])
    ratio_min: float
    ratio_max: float


def _sum64(x: np.ndarray) -> float:
    """Σ x accumulated in float64 (what ``x.sum(dtype=np.float64)`` computes, without the method's Python layer)."""
    return float(np.add.reduce(x, dtype=np.float64))


def advantage_moments(advantages: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(Σw, Σw Â, Σw Â²) along the last axis, in float64: shape [..., 3].

    The statistics per-minibatch normalisation needs, for the rows of [n_minibatches, M] at once;
    the moments of a minibatch split over several ranks are the sum of the ranks' moments.
    """
    if advantages.shape != weights.shape or advantages.ndim < 1:
        raise ValueError(f"advantage_moments: 'advantages' {advantages.shape} and 'weights' {weights.shape} must have "
                         "one shape, with at least one axis")
    w = weights.astype(np.float64)
    wa = w * advantages
    moments = np.empty((*w.shape[:-1], 3))
    np.add.reduce(w, axis=-1, out=moments[..., 0])
    np.add.reduce(wa, axis=-1, out=moments[..., 1])
    np.add.reduce(wa * advantages, axis=-1, out=moments[..., 2])
    return moments


def normalize_advantages(advantages: np.ndarray, weights: np.ndarray, moments: np.ndarray | None = None) -> np.ndarray:
    """(Â − Ê[Â]) / (std_w(Â) + 1e-8) over one minibatch, in the advantages' dtype.

    std_w is the weighted, unbiased standard deviation, √(Σ w (Â − Ê[Â])² / max(Σw − 1, 1)),
    which with 0/1 weights is torch's ``.std()`` over the real samples (SB3, CleanRL).  Σw is
    taken as at least 1.  Both come from the minibatch's ``moments`` (Σw, Σw Â, Σw Â²) of
    :func:`advantage_moments` (Σ w (Â − m)² = Σw Â² − 2m Σw Â + m² Σw, in float64); pass them when
    ``advantages`` is one rank's share of the minibatch and the moments are of all of it.  The
    float64 sums lose about (Ê[Â]/std_w)² · 1e-16 of the variance to cancellation: nothing for the
    advantages of a minibatch (a mean 1e4 times the spread still leaves 1e-8 relative).
    """
    if moments is None:
        moments = advantage_moments(advantages, weights)
    elif np.shape(moments) != (3,):
        raise ValueError(f"normalize_advantages: 'moments' must be (Σw, Σw Â, Σw Â²), shape (3,), got {np.shape(moments)}")
    s0, s1, s2 = np.asarray(moments, dtype=np.float64).tolist()
    w_sum = max(s0, 1.0)
    mean = s1 / w_sum
    var = max(s2 - 2.0 * mean * s1 + mean * mean * s0, 0.0) / max(w_sum - 1.0, 1.0)
    centred = np.subtract(advantages, mean, dtype=np.float64)
    return (centred / (math.sqrt(var) + 1e-8)).astype(advantages.dtype)


def clipped_surrogate_objective(
    logp: np.ndarray, logp_old: np.ndarray, advantages: np.ndarray, weights: np.ndarray, clip_range: float
) -> PolicyObjective:
    """L^CLIP = Ê[min(r Â, clip(r, 1 − ε, 1 + ε) Â)] (eq. 7) and ∂L/∂log π_θ, r = exp(log π_θ − log π_old).

    The kernel ``refrl.kernels.clipped_surrogate`` computes it; this wraps its result.
    """
    s = kernels.clipped_surrogate(logp, logp_old, advantages, clip_range, weights=weights)
    return PolicyObjective(s.objective, s.objective, 0.0, s.grad_logp, None, s.clip_fraction, s.approx_kl,
                           s.ratio_min, s.ratio_max)


def kl_penalty_objective(
    logp: np.ndarray,
    logp_old: np.ndarray,
    advantages: np.ndarray,
    weights: np.ndarray,
    clip_range: float,
    *,
    beta: float,
    dist: Any,
    dist_params_old: np.ndarray,
    dist_params: np.ndarray,
) -> PolicyObjective:
    """L^KLPEN = Ê[r Â − β KL[π_old(·|s), π_θ(·|s)]] (§4, eq. 8) and its gradients.

    ∂L/∂log π_θ(a_i|s_i) = w_i r_i Â_i / Σw  (∂r/∂log π_θ = r);
    ∂L/∂q_i = −β w_i ∂KL(p_old,i ‖ q_i)/∂q_i / Σw for the distribution parameters q_i of π_θ(·|s_i)
    (``dist.kl`` and ``dist.kl_grad`` of a ``refrl.distributions`` distribution).  ``clip_range``
    serves only the clip-fraction statistic.
    """
    w_sum = _sum64(weights)
    log_ratio = logp - logp_old
    ratio = np.exp(log_ratio)
    surrogate = float(np.dot(weights, ratio * advantages)) / w_sum
    grad_logp = (weights * ratio * advantages) / w_sum
    kl = float(np.dot(weights, dist.kl(dist_params_old, dist_params))) / w_sum
    grad_dist_params = dist.kl_grad(dist_params_old, dist_params)
    grad_dist_params *= (-beta / w_sum) * weights[:, None]
    used = ratio[weights > 0]
    return PolicyObjective(
        objective=surrogate - beta * kl,
        surrogate=surrogate,
        kl=kl,
        grad_logp=grad_logp,
        grad_dist_params=grad_dist_params,
        clip_fraction=float(np.dot(weights, np.abs(ratio - 1.0) > clip_range)) / w_sum,
        approx_kl=float(np.dot(weights, (ratio - 1.0) - log_ratio)) / w_sum,
        ratio_min=float(used.min()),
        ratio_max=float(used.max()),
    )


def entropy_bonus(entropy: np.ndarray, weights: np.ndarray, coef: float) -> tuple[float, np.ndarray | None]:
    """Ê[H(π_θ(·|s))] and ∂(c2·Ê[H])/∂H_i = c2 w_i / Σw (eq. 9's entropy bonus c2·S[π_θ]).

    The gradient is None when c2 = 0: there is nothing to propagate.
    """
    w_sum = _sum64(weights)
    mean_entropy = float(np.dot(weights, entropy)) / w_sum
    return mean_entropy, ((coef / w_sum) * weights if coef else None)


def value_loss(
    values: np.ndarray, v_old: np.ndarray, returns: np.ndarray, weights: np.ndarray, clip_range_vf: float | None
) -> tuple[float, np.ndarray]:
    """L^VF = Ê[(V − R)²] and ∂L^VF/∂V_i, optionally clipped around the rollout's values.

    Without clipping: ∂L^VF/∂V_i = 2 w_i (V_i − R_i) / Σw.  With ``clip_range_vf`` = ε_V (ppo2 and
    CleanRL's max form; SB3's clip_range_vf keeps the clipped term alone):
    V^clip = V_old + clip(V − V_old, −ε_V, ε_V),  L^VF = Ê[max((V − R)², (V^clip − R)²)],
    and the gradient follows the larger term: 2 w_i (V^clip_i − R_i)·1[|V_i − V_old,i| ≤ ε_V] / Σw
    where the clipped term is larger, else 2 w_i (V_i − R_i) / Σw.
    """
    w_sum = _sum64(weights)
    err = values - returns
    if clip_range_vf is None:
        sq, derr = err**2, err
    else:
        delta = values - v_old
        inside = np.abs(delta) <= clip_range_vf
        err_clipped = v_old + np.clip(delta, -clip_range_vf, clip_range_vf) - returns
        sq_unclipped, sq_clipped = err**2, err_clipped**2
        use_clipped = sq_clipped > sq_unclipped
        sq = np.where(use_clipped, sq_clipped, sq_unclipped)
        derr = np.where(use_clipped, err_clipped * inside, err)
    return float(np.dot(weights, sq)) / w_sum, (2.0 / w_sum) * weights * derr
