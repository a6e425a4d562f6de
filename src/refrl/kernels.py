"""The checked Python face of refrl's compiled core (``refrl._core``): the array kernels.

``gae``, ``clipped_surrogate``, ``conjugate_gradient`` and ``adam_step`` take plain arrays and
scalars. Every function validates its arguments (with the checks of ``refrl._checks``), picks
the float32 or float64 kernel and calls the header-only C++ core (cpp/include/refrl/) with the
GIL released. Bad input raises a ``ValueError`` (shape, value, NaN/inf, range) or ``TypeError``
(dtype, type) whose message names the function and the argument, a result that overflows its
dtype a ``ValueError`` or ``OverflowError`` naming the cause; nothing a caller passes reaches C++
unchecked.

``fisher_operator`` and ``fisher_vector_product`` are policy-aware and live in
:mod:`refrl.native`, a layer above the policy; ``refrl.kernels.fisher_operator`` and
``refrl.kernels.fisher_vector_product`` still name them, through a module ``__getattr__`` that
imports :mod:`refrl.native` on first use, so that importing this module imports nothing above it.

The conventions all kernels share (which argument decides the dtype, copies of non-contiguous
inputs, flags, finiteness, integer ranges, overflow) are in docs/design.md, "Kernel contracts".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from refrl._checks import (
    adam_step_or_restore, as_flags, as_float_array, as_weights, check_adam, check_bool, check_cg_system, check_damping,
    check_scalar, checked_operator, gae_non_finite_message, raise_bad_weights, surrogate_non_finite_message,
)  # fmt: skip
from refrl._types import CGResult, GAEResult, SurrogateResult

try:
    from refrl import _core
except ImportError as exc:  # never fall back to the oracles: they are slow on purpose
    raise ImportError(
        "refrl._core, the compiled core, could not be imported. Rebuild it with `pip install .` "
        "(or, for development, `pip install --no-build-isolation -e . -Ceditable.rebuild=true`); "
        "a C++17 compiler is needed. Original error: " + str(exc)
    ) from exc

__all__ = [
    "adam_step", "clipped_surrogate", "conjugate_gradient", "fisher_operator", "fisher_vector_product", "gae",
]

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_SUFFIX = {_F32: "f32", _F64: "f64"}
_CORE_FNS: dict[tuple[str, np.dtype], Callable[..., Any]] = {}
_NATIVE_NAMES = ("fisher_operator", "fisher_vector_product")  # defined in refrl.native


def __getattr__(name: str) -> Any:
    """``fisher_operator`` / ``fisher_vector_product`` from :mod:`refrl.native` (imported on first use)."""
    if name in _NATIVE_NAMES:
        from refrl import native

        return getattr(native, name)
    raise AttributeError(f"module 'refrl.kernels' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NATIVE_NAMES))


def _core_fn(name: str, dtype: np.dtype) -> Callable[..., Any]:
    """The compiled function ``_core.<name>_f32`` or ``_core.<name>_f64`` for ``dtype``."""
    key = (name, dtype)
    f = _CORE_FNS.get(key)
    if f is None:
        f = _CORE_FNS[key] = getattr(_core, f"{name}_{_SUFFIX[np.dtype(dtype)]}")
    return f


# ---------------------------------------------------------------- Generalized Advantage Estimation


def gae(rewards: Any, values: Any, next_values: Any, terminated: Any, truncated: Any, gamma: float,
        lam: float) -> GAEResult:
    r"""Generalized Advantage Estimation over a time-major rollout.

    .. math::
        \delta_t = r_t + \gamma (1 - \mathrm{term}_t) V(s'_t) - V(s_t)

        A_t = \delta_t + \gamma\lambda (1 - (\mathrm{term}_t \lor \mathrm{trunc}_t)) A_{t+1},
        \qquad \mathrm{returns}_t = A_t + V(s_t)

    Schulman et al. (2016), "High-Dimensional Continuous Control Using Generalized
    Advantage Estimation", eqs. (11)-(16), with gymnasium's terminated/truncated split
    (docs/design.md). λ = 1 gives the discounted Monte-Carlo return minus V; λ = 0 the TD
    residual δ_t.

    Parameters
    ----------
    rewards : ndarray, shape [T, N], float32 or float64
        r_t. Its dtype decides the dtype of the computation and of the results.
    values : ndarray, shape [T, N], float
        V(s_t), converted to ``rewards.dtype``.
    next_values : ndarray, shape [T, N], float
        V(s'_t): the value of the observation that followed step t. Where the episode
        ended at t this must be the value of the *real final observation* (not of the
        reset observation that follows it): truncated steps bootstrap from it. On
        terminated steps it is never read.
    terminated : ndarray, shape [T, N], bool (or 0/1)
        The episode ended in a terminal state at step t: no bootstrap, trace cut.
    truncated : ndarray, shape [T, N], bool (or 0/1)
        The episode was cut by a time limit at step t: bootstrap from ``next_values``,
        trace cut. Must never be folded into ``terminated``.
    gamma : float in [0, 1]
        Discount γ.
    lam : float in [0, 1]
        GAE λ.

    Returns
    -------
    GAEResult(advantages, returns)
        Each ndarray [T, N] of ``rewards.dtype``, freshly allocated. A_{T} beyond the
        rollout is 0: bootstrap the last step through ``next_values[T-1]``.

    Raises
    ------
    TypeError
        Non-float data, non-boolean flags, non-real γ/λ.
    ValueError
        ``rewards`` not 2-D, any other array not of shape [T, N], flags not 0/1, γ or λ
        NaN/inf or outside [0, 1], or a NaN/inf in the inputs that reached the outputs.

    Notes
    -----
    Non-contiguous inputs are copied (see the module docstring). The C++ loop runs
    backwards over t and is vectorised over the N environments.
    """
    fn = "gae"
    rewards = as_float_array(rewards, "rewards", fn=fn, ndim=2, shape_desc="[T, N]")
    dtype, shape = rewards.dtype, rewards.shape
    values = as_float_array(values, "values", fn=fn, shape=shape, dtype=dtype, shape_desc="(T, N)")
    next_values = as_float_array(next_values, "next_values", fn=fn, shape=shape, dtype=dtype, shape_desc="(T, N)")
    term = as_flags(terminated, "terminated", fn=fn, shape=shape, shape_desc="(T, N)")
    trunc = as_flags(truncated, "truncated", fn=fn, shape=shape, shape_desc="(T, N)")
    gamma = check_scalar("gamma", gamma, fn=fn, lo=0.0, hi=1.0)
    lam = check_scalar("lam", lam, fn=fn, lo=0.0, hi=1.0)
    adv, ret, finite = _core_fn("gae", dtype)(rewards, values, next_values, term, trunc, gamma, lam)
    if not finite:
        raise ValueError(gae_non_finite_message(fn, rewards, values, next_values, term))
    return GAEResult(adv, ret)


# --------------------------------------------------------------------------- PPO clipped surrogate


def clipped_surrogate(logp: Any, logp_old: Any, advantages: Any, clip_range: float,
                      weights: Any = None) -> SurrogateResult:
    r"""PPO's clipped surrogate objective, its gradient with respect to log π_θ, and statistics.

    .. math::
        r_i = \exp(\log\pi_\theta(a_i|s_i) - \log\pi_{old}(a_i|s_i))

        L^{CLIP} = \frac{\sum_i w_i \min(r_i A_i,\ \mathrm{clip}(r_i, 1-\epsilon, 1+\epsilon) A_i)}{\sum_i w_i}

        \frac{\partial L^{CLIP}}{\partial \log\pi_\theta(a_i|s_i)} =
        \frac{w_i r_i A_i}{\sum_j w_j}\ \text{where } r_i A_i \le \mathrm{clip}(r_i) A_i
        \text{ (the unclipped term is the min), else } 0

    Schulman et al. (2017), "Proximal Policy Optimization Algorithms", eq. (7). The
    objective is to be *maximised* (the PPO policy loss is its negative). At a tie
    (inside the clip range both terms are equal) the unclipped branch's gradient is used,
    which is the true derivative there.

    Parameters
    ----------
    logp : ndarray, shape [B], float32 or float64
        log π_θ(a|s) at the current parameters. Its dtype decides the computation's dtype.
    logp_old : ndarray, shape [B], float
        log π_old(a|s) from the rollout.
    advantages : ndarray, shape [B], float
        Â (normalised or not: the caller's choice).
    clip_range : float > 0
        ε (0.2 is standard).
    weights : ndarray, shape [B], float >= 0 or bool, optional
        Per-sample weights w (a mask: padding or NEXT_STEP reset steps get 0). Samples with
        w = 0 are skipped entirely: their logp/advantages may hold anything. Default: all 1.
        Must not all be 0.

    Returns
    -------
    SurrogateResult
        ``objective`` (float), ``grad_logp`` (ndarray [B], dtype of ``logp``; already
        divided by Σw), ``clip_fraction`` = Σw·[|r−1| > ε]/Σw, ``approx_kl`` =
        Σw·((r−1) − log r)/Σw (the k3 estimator), ``ratio_min`` / ``ratio_max`` over samples
        with w ≠ 0, ``ratio_mean`` = Σw·r/Σw.

    Raises
    ------
    TypeError
        Non-float data, weights neither float nor bool, non-real ε.
    ValueError
        Not 1-D, mismatched lengths, empty batch, ε NaN/inf or ≤ 0, weights negative,
        NaN/inf or all zero, a NaN/inf in an input (where w ≠ 0), or log-ratios so large
        that exp overflows the dtype.
    """
    fn = "clipped_surrogate"
    logp = as_float_array(logp, "logp", fn=fn, ndim=1, shape_desc="[B]")
    dtype, shape = logp.dtype, logp.shape
    logp_old = as_float_array(logp_old, "logp_old", fn=fn, shape=shape, dtype=dtype, shape_desc="(B,)")
    advantages = as_float_array(advantages, "advantages", fn=fn, shape=shape, dtype=dtype, shape_desc="(B,)")
    clip_range = check_scalar("clip_range", clip_range, fn=fn, lo=0.0, lo_open=True)
    if shape[0] == 0:
        raise ValueError(f"{fn}: 'logp' must not be empty (the objective is a mean over the batch)")
    if weights is not None:
        weights = as_weights(weights, fn=fn, shape=shape, dtype=dtype)
    # the kernel checks the weights (>= 0, finite, not all zero, sum finite) in its summing pass
    # and then computes nothing; the checks below only run to name the problem
    objective, grad, clip_fraction, approx_kl, ratio_min, ratio_mean, ratio_max, weight_sum, invalid = _core_fn(
        "clipped_surrogate", dtype
    )(logp, logp_old, advantages, weights, clip_range)
    if invalid or not 0.0 < weight_sum < math.inf:
        raise_bad_weights(fn, weights)
    if not (np.isfinite(objective) and np.isfinite(approx_kl) and np.isfinite(ratio_mean)):
        raise ValueError(surrogate_non_finite_message(fn, logp, logp_old, advantages, weights))
    return SurrogateResult(
        float(objective),
        grad,
        float(clip_fraction),
        float(approx_kl),
        float(ratio_min),
        float(ratio_mean),
        float(ratio_max),
    )


# --------------------------------------------------------------------------------------- Adam step


def adam_step(params: np.ndarray, grads: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
              beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-5, *, check: bool = True) -> None:
    r"""One Adam step, in place on ``params``, ``m`` and ``v`` (Kingma & Ba 2015, Algorithm 1).

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2

        \theta \leftarrow \theta - \alpha \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    ε is added after the bias-corrected square root, as in Algorithm 1 and ``torch.optim.Adam``
    (see :class:`refrl.optim.Adam`, which calls this).

    Parameters
    ----------
    params : ndarray, shape [P], float32 or float64, C-contiguous, writeable
        θ, updated in place. Its dtype decides the computation's dtype.
    grads : ndarray, shape [P], same dtype
        g.
    m, v : ndarray, shape [P], same dtype, C-contiguous, writeable
        First and second moment estimates, updated in place (start at 0).
    t : int >= 1
        The step number *after* this step (1 for the first), for the bias corrections.
    lr : float >= 0
        α.
    beta1, beta2 : float in [0, 1)
    eps : float > 0
    check : bool
        Validate every argument (default). ``check=False`` skips the Python checks for a caller
        that has validated the arrays once and keeps them (``refrl.optim.Adam`` checks them at
        construction and calls this once per minibatch): the arrays must then be 1-D,
        C-contiguous, of one float dtype and length, and ``params``, ``m``, ``v`` writeable;
        ``t``, ``lr``, the β's and ε Python numbers in range. Overlapping arrays are still
        rejected (by the compiled core).

    Raises
    ------
    TypeError
        An argument that is not a numpy array of the dtype of ``params``; non-number scalars;
        ``check`` not a bool.
    ValueError
        Wrong shapes, non-contiguous or read-only arrays, overlapping arrays, NaN/inf in an
        array, a negative ``v``, scalars out of range or beyond the dtype (``t`` above 2⁶³ − 1,
        ``lr`` or ``lr / (1 − β1^t)`` overflowing it, ``eps`` rounding to 0).
    OverflowError
        The step itself overflowed the dtype (e.g. float32 gradients above √max ≈ 1.8e19, whose
        square is inf); ``params``, ``m`` and ``v`` are then left as they were.
    """
    fn = "adam_step"
    if not check_bool("check", check, fn=fn):
        _adam_call(params, grads, m, v, t, lr, beta1, beta2, eps)
        return
    t, lr, beta1, beta2, eps = check_adam(params, grads, m, v, t, lr, beta1, beta2, eps, fn=fn)
    adam_step_or_restore(lambda: _adam_call(params, grads, m, v, t, lr, beta1, beta2, eps), fn, params, grads, m, v)


def _adam_call(params, grads, m, v, t, lr, beta1, beta2, eps) -> None:
    """The compiled step. Arguments it refuses (a type or an integer it cannot take) are named by
    the checks of ``check=True``, never by pybind11's generic message."""
    try:
        _core_fn("adam_step", params.dtype)(params, grads, m, v, t, lr, beta1, beta2, eps)
    except ValueError as exc:  # overlapping arrays (checked in C++: cheaper than np.shares_memory)
        raise ValueError(f"adam_step: {exc}") from None
    except (TypeError, AttributeError, KeyError):  # unchecked arguments the core cannot take
        check_adam(params, grads, m, v, t, lr, beta1, beta2, eps, fn="adam_step")
        raise


# ------------------------------------------------------------------------------ Conjugate gradient

_NATIVE_OPERATORS = {_core.LinearOperatorF32: np.dtype(np.float32), _core.LinearOperatorF64: np.dtype(np.float64)}


def _native_dtype(operator: Any) -> np.dtype | None:
    for cls, dt in _NATIVE_OPERATORS.items():
        if isinstance(operator, cls):
            return dt
    return None


def conjugate_gradient(operator: Callable[[np.ndarray], np.ndarray] | Any, b: Any, iters: int = 10, tol: float = 1e-10,
                       damping: float = 0.0) -> CGResult:
    r"""Solve (A + damping·I) x = b by conjugate gradient, for symmetric positive-definite A.

    .. math::
        r_0 = p_0 = b,\ x_0 = 0;\quad
        \alpha_k = \frac{r_k^\top r_k}{p_k^\top (A + \mu I) p_k},\quad
        x_{k+1} = x_k + \alpha_k p_k,\quad r_{k+1} = r_k - \alpha_k (A + \mu I) p_k,

        \beta_k = \frac{r_{k+1}^\top r_{k+1}}{r_k^\top r_k},\quad p_{k+1} = r_{k+1} + \beta_k p_k

    Hestenes & Stiefel (1952); Demmel, *Applied Numerical Linear Algebra*, Alg. 6.11; the
    solver of TRPO's natural-gradient step (Schulman et al. 2015, Appendix C).

    Parameters
    ----------
    operator : callable or refrl._core.LinearOperatorF32 / LinearOperatorF64
        A as a Python callable ``v -> A v`` (v: ndarray [n] of ``b``'s dtype, a fresh copy
        the callable may keep; it must return a float array of shape [n] with finite
        values; the compiled loop reacquires the GIL for each call and an exception
        raised by the callable propagates unchanged), or a native operator, whose whole
        solve then runs in C++ without the GIL. A native operator fixes the dtype (``b``
        is converted to it).
    b : ndarray, shape [n], float32 or float64
        Right-hand side (e.g. the policy gradient g).
    iters : int >= 0
        Maximum number of operator applications (``cg_iters``; 10 in TRPO).
    tol : float >= 0
        Stop when rᵀr ≤ tol: the *squared* residual norm, as in OpenAI baselines and
        sb3-contrib, whose default 1e-10 is kept. rᵀr below the dtype's smallest normal
        number also counts as converged (exact convergence in floating point).
    damping : float >= 0
        μ added to the diagonal (``cg_damping``).

    Returns
    -------
    CGResult(x, iterations, residual_norm, converged, status)
        ``x`` [n] of the kernel's dtype, ``iterations`` used, ``residual_norm`` = ‖r‖ of
        the recursively updated residual, ``converged`` (rᵀr ≤ tol) and ``status``:
        "converged", "max_iterations" (the normal outcome of a fixed small ``iters``) or
        "not_positive_definite" (pᵀ(A + μI)p ≤ 0 was met: A + μI is not positive
        definite; ``x`` is the last iterate before that direction). Non-convergence is
        reported in these fields, never by a warning.

    Raises
    ------
    TypeError
        ``operator`` neither callable nor a native operator; ``b`` not float; the callable
        returned a non-float array.
    ValueError
        ``b`` not 1-D or of the wrong length, NaN/inf in ``b``, bad ``iters``/``tol``/
        ``damping``, the callable returned the wrong shape or NaN/inf, or the iteration
        produced NaN/inf.
    """
    fn = "conjugate_gradient"
    native_dtype = _native_dtype(operator)
    b = check_cg_system(operator, b, native_dtype, fn=fn)
    dtype, n = b.dtype, b.shape[0]
    iters = check_scalar("iters", iters, fn=fn, lo=0, integer=True)
    tol = check_scalar("tol", tol, fn=fn, lo=0.0)
    damping = check_damping(damping, fn=fn, dtype=dtype)

    if native_dtype is not None:
        x, k, res, status = _core_fn("conjugate_gradient", dtype)(operator, b, iters, tol, damping)
    else:
        checked_apply = checked_operator(operator, n, dtype, fn)
        x, k, res, status = _core_fn("conjugate_gradient_callable", dtype)(checked_apply, b, iters, tol, damping)
    status_name = _core.CG_STATUS[status]
    if status_name == "non_finite":
        raise ValueError(
            f"{fn}: NaN or inf appeared in the iteration after {k} step(s) (the native 'operator' returned "
            "non-finite values, or A + damping·I is badly scaled)"
        )
    if status_name == "operator_failed":  # the binding re-raises the callable's exception first
        raise RuntimeError(f"{fn}: the operator failed without an exception")
    return CGResult(x, int(k), float(res), status_name == "converged", status_name)
