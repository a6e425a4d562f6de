"""The policy-aware native pieces: the Fisher operator and the native acting network.

This module sits above :mod:`refrl.policy` and reads an :class:`~refrl.policy.ActorCritic`
only through its public attributes and methods (``pi.sizes``, ``vf.sizes``, ``activation``,
``params``, ``policy_params``, ``log_std``, ``dist``, ``preprocess_obs``, ``act``,
``clip_actions``, ``dist_params_from_output``).

* :func:`fisher_operator` / :func:`fisher_vector_product`: F v for the policy's Fisher matrix
  (the Hessian of the mean KL at θ_old), the operator that TRPO and NPG hand to
  :func:`refrl.kernels.conjugate_gradient` (also reachable as ``refrl.kernels.fisher_operator``
  and ``refrl.kernels.fisher_vector_product``).
* :func:`act` / :func:`act_and_clip`: ``ActorCritic.act`` (the NumPy reference) with both
  forward passes and the Categorical / Gaussian / Bernoulli sampling in one native call
  (``refrl._core.ActNetF32/F64``), for the rollout collector and ``predict``. The random numbers
  are drawn exactly as the NumPy path draws them, so results equal it to rounding. It applies
  when ``policy.native_act`` is set (the float32 default) and falls back to ``policy.act`` for
  inputs it does not take and on a non-finite value (the NumPy path then names the error).

The oracle of both is the NumPy path: ``refrl.oracle.fisher_vector_product`` for the Fisher
operator, ``ActorCritic.act`` for acting.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from refrl import kernels  # noqa: F401  (imported first: it raises the rebuild hint if _core is missing)
from refrl import _core
from refrl._checks import (
    as_float_array, as_real_array, check_bool, check_damping, check_finite, check_scalar, checked_product, fmt_shape,
)  # fmt: skip
from refrl.distributions import LOG_STD_MAX, LOG_STD_MIN, Bernoulli, Categorical, DiagGaussian, MultiCategorical
from refrl.policy import ActorCritic

__all__ = ["FisherOperatorF32", "FisherOperatorF64", "act", "act_and_clip", "fisher_operator", "fisher_vector_product"]


# ----------------------------------------------------------------------------------------
# Fisher-vector product
# ----------------------------------------------------------------------------------------

_FISHER_HEADS = {Categorical: "categorical", DiagGaussian: "gaussian", MultiCategorical: "multicategorical",
                 Bernoulli: "bernoulli"}


def _fisher_inputs(policy: Any, obs: Any, fn: str) -> tuple[np.ndarray, str, list[int] | None]:
    """Check ``policy`` (an ActorCritic) and ``obs``; return (network input [B, d0], head, nvec)."""
    for attr in ("pi", "dist", "policy_params", "n_policy_params", "preprocess_obs", "dtype"):
        if not hasattr(policy, attr):
            raise TypeError(f"{fn}: 'policy' must be a refrl.policy.ActorCritic, got {type(policy).__name__}")
    head = _FISHER_HEADS.get(type(policy.dist))
    if head is None:
        raise ValueError(f"{fn}: 'policy' has an unsupported action distribution {policy.dist!r}")
    theta = policy.policy_params
    if not np.isfinite(theta).all():
        raise ValueError(f"{fn}: 'policy' parameters contain NaN or inf")
    if obs is None:
        raise TypeError(f"{fn}: 'obs' must be an array, got None")
    try:
        x = policy.preprocess_obs(obs)  # flattens Box / one-hot Discrete; names 'obs' on bad shape or NaN
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{fn}: {exc}") from exc
    if x.shape[0] < 1:
        raise ValueError(f"{fn}: 'obs' must hold at least one observation, got shape {fmt_shape(np.shape(obs))}")
    nvec = [int(n) for n in policy.dist.nvec] if head == "multicategorical" else None
    return np.ascontiguousarray(x, dtype=policy.dtype), head, nvec


class _CheckedProduct:
    """``op(v)`` and ``op.damping`` of a native Fisher operator, checked on the Python side (the
    solve of ``conjugate_gradient`` calls the C++ product directly and never passes here)."""

    __slots__ = ()
    _native: Any  # the compiled class
    _dtype: np.dtype

    def __call__(self, v: Any) -> np.ndarray:
        """F v + damping·v. ``v``: float array [op.size], finite (converted to the operator's dtype)."""
        return _checked_product(self, v, type(self).__name__)

    @property
    def damping(self) -> float:
        """λ added to the diagonal: a finite float >= 0 within the operator's dtype."""
        return self._native.damping.__get__(self)

    @damping.setter
    def damping(self, value: Any) -> None:
        self._native.damping.__set__(self, check_damping(value, fn=type(self).__name__, dtype=self._dtype))


def _checked_product(op: _CheckedProduct, v: Any, fn: str) -> np.ndarray:
    """The native product F v + λ v on a checked ``v``, its overflow reported (errors start ``fn:``)."""
    native_call = op._native.__call__
    return checked_product(lambda x: native_call(op, x), v, size=op.size, dtype=op._dtype, damping=op.damping, fn=fn)


class FisherOperatorF32(_CheckedProduct, _core.FisherOperatorF32):
    """A float32 native Fisher operator whose ``op(v)`` and ``op.damping`` are checked (build it with
    :func:`fisher_operator`)."""

    _native, _dtype = _core.FisherOperatorF32, np.dtype(np.float32)


class FisherOperatorF64(_CheckedProduct, _core.FisherOperatorF64):
    """A float64 native Fisher operator whose ``op(v)`` and ``op.damping`` are checked (build it with
    :func:`fisher_operator`)."""

    _native, _dtype = _core.FisherOperatorF64, np.dtype(np.float64)


def fisher_operator(policy: Any, obs: Any, damping: float = 0.0, subsample: int = 1, *, isa: str = "auto") -> Any:
    r"""The policy's Fisher matrix at the current θ (= θ_old) on ``obs``, as a native operator.

    .. math::
        F v = \frac{1}{B} \sum_b J_b^\top M_b J_b\, v + \lambda v,\qquad
        F = \nabla^2_\theta\, \overline{D}_{KL}(\pi_{\theta_{old}} \,\|\, \pi_\theta)\big|_{\theta=\theta_{old}}

    J_b: Jacobian of the distribution parameters of s_b (logits; or mean and log σ) with respect
    to the policy parameters; M_b: the distribution's Fisher information in those parameters —
    diag(p) − ppᵀ per categorical component, diag(p(1 − p)) per Bernoulli bit, diag(1/σ²) on the mean and 2 on log σ for the
    diagonal Gaussian (0 on a log σ outside [LOG_STD_MIN, LOG_STD_MAX], where the KL is flat in it).
    F is the Hessian of the mean KL at θ_old (Schulman et al. 2015, TRPO, Appendix C).

    The forward activations at θ_old are computed once here and reused by every product, so
    build one operator per policy update and hand it to ``conjugate_gradient`` (the whole CG
    solve then runs in C++ without the GIL). Later changes to ``policy.params`` do not affect it.

    Parameters
    ----------
    policy : refrl.policy.ActorCritic (Discrete, Box, MultiDiscrete or MultiBinary actions)
    obs : ndarray, shape [B, *obs_shape]
    damping : float >= 0
        λ added to the diagonal (``cg_damping``); also settable later as ``op.damping``.
    subsample : int >= 1
        Use only observations 0, k, 2k, ... (OpenAI Baselines TRPO uses every 5th).
    isa : {"auto", "generic", "avx2", "avx512"}
        Kernel variant (for tests and benchmarks); "auto" is ``refrl._core.KERNEL_ISA``, the best
        the CPU supports unless ``REFRL_KERNEL_ISA`` lowers it.

    Returns
    -------
    FisherOperatorF32 / FisherOperatorF64 (subclasses of refrl._core.FisherOperatorF32/F64, native
    LinearOperatorF32/F64) of size ``policy.n_policy_params``: ``op(v) -> F v + λ v``; attributes
    ``size``, ``damping`` (settable), ``batch_size`` (observations used), ``n_obs``, ``subsample``,
    ``head``, ``sizes``, ``isa``. ``op(v)`` takes a finite float vector [size] (TypeError for int,
    complex, str or object arrays; ValueError for NaN/inf or a wrong shape; OverflowError if F v + λ v
    overflows the dtype); ``op.damping = λ`` takes a finite real λ >= 0 within the dtype.

    Raises
    ------
    TypeError, ValueError
        A bad ``policy`` or ``obs``, ``damping`` negative, NaN/inf or beyond the policy's dtype,
        ``subsample`` not an integer in [1, 2⁶³ − 1], an unknown or unsupported ``isa``.
    """
    fn = "fisher_operator"
    x, head, nvec = _fisher_inputs(policy, obs, fn)
    damping = check_damping(damping, fn=fn, dtype=policy.dtype)
    subsample = check_scalar("subsample", subsample, fn=fn, lo=1, integer=True)
    if not isinstance(isa, str):
        raise TypeError(f"{fn}: 'isa' must be a str, got {type(isa).__name__}")
    if isa not in ("auto", "generic", "avx2", "avx512"):
        raise ValueError(f"{fn}: 'isa' must be 'auto', 'generic', 'avx2' or 'avx512', got {isa!r}")
    if isa != "auto" and not _core.isa_supported(isa):
        raise ValueError(f"{fn}: 'isa'={isa!r} is not supported by this CPU")
    cls = FisherOperatorF32 if policy.dtype == np.float32 else FisherOperatorF64
    theta = np.ascontiguousarray(policy.policy_params, dtype=policy.dtype)
    op = cls(
        theta, list(policy.pi.sizes), policy.pi.activation, head, x,
        damping=damping, subsample=subsample, nvec=nvec, isa=isa,
    )  # fmt: skip
    if not op.forward_finite:
        raise ValueError(
            f"{fn}: the policy output at the current 'policy' parameters overflowed to NaN/inf "
            "(parameters or observations too large)"
        )
    return op


def fisher_vector_product(policy: Any, obs: Any, v: Any, damping: float = 0.0) -> np.ndarray:
    r"""F·v + damping·v for the policy at its current θ, averaged over the batch ``obs``.

    F = (1/B) Σ_b J_bᵀ M_b J_b, the Fisher information of the policy = the Hessian of the mean
    KL(π_θold ‖ π_θ) at θ_old (see ``fisher_operator`` for M_b and the citation).
    One-shot convenience: it builds the operator (a forward pass) for a single product; for
    repeated products (conjugate gradient) build ``fisher_operator`` once.

    Parameters
    ----------
    policy : refrl.policy.ActorCritic
    obs : ndarray, shape [B, *obs_shape]
    v : ndarray, shape [policy.n_policy_params], float (converted to the policy's dtype)
    damping : float >= 0

    Returns
    -------
    ndarray, shape [n_policy_params], the policy's dtype.

    Raises
    ------
    TypeError, ValueError
        As :func:`fisher_operator`, and for a ``v`` that is not a finite float vector of the length.
    OverflowError
        F v + damping·v overflows the policy's dtype.
    """
    fn = "fisher_vector_product"
    if not hasattr(policy, "n_policy_params") or not hasattr(policy, "dtype"):
        raise TypeError(f"{fn}: 'policy' must be a refrl.policy.ActorCritic, got {type(policy).__name__}")
    n = int(policy.n_policy_params)
    v = as_float_array(v, "v", fn=fn, shape=(n,), dtype=policy.dtype, shape_desc="(policy.n_policy_params,)")
    check_finite(v, "v", fn)
    damping = check_damping(damping, fn=fn, dtype=policy.dtype)
    try:
        op = fisher_operator(policy, obs, damping=damping)
    except (ValueError, TypeError) as exc:
        raise type(exc)(str(exc).replace("fisher_operator:", f"{fn}:", 1)) from exc
    return _checked_product(op, v, fn)


# ----------------------------------------------------------------------------------------
# Native acting network
# ----------------------------------------------------------------------------------------


class _ActingNetwork:
    """The native forward pass + sampling of one ActorCritic (built once; reads ``params`` live)."""

    def __init__(self, policy: ActorCritic) -> None:
        from gymnasium import spaces

        cls = _core.ActNetF32 if policy.dtype == np.float32 else _core.ActNetF64
        self.net = cls(list(policy.pi.sizes), list(policy.vf.sizes), policy.n_policy_params, policy.activation)
        self.dtype = policy.dtype
        self.obs_dim = policy.obs_dim
        self.obs_shape = tuple(policy.observation_space.shape or ())
        self.box_obs = isinstance(policy.observation_space, spaces.Box)
        self.categorical = type(policy.dist) is Categorical
        self.bernoulli = type(policy.dist) is Bernoulli
        self.gaussian = isinstance(policy.dist, DiagGaussian)
        if self.gaussian:  # Box actions: bounds for the clip, shape [d] -> box shape
            self.low = policy.action_space.low.astype(policy.dtype).reshape(-1)
            self.high = policy.action_space.high.astype(policy.dtype).reshape(-1)
            self.act_shape = tuple(policy.action_space.shape)

    def input(self, policy: ActorCritic, obs: Any) -> np.ndarray | None:
        """The native net's input [B, obs_dim] (C-contiguous, ``dtype``), or None when the shape is
        not one it takes (the NumPy path then names the problem)."""
        if self.box_obs:
            x = obs
            if type(x) is not np.ndarray or x.dtype != self.dtype:
                x = np.asarray(x, dtype=self.dtype)
            if x.ndim != 2 or x.shape[1] != self.obs_dim:
                shape = self.obs_shape
                if x.ndim != len(shape) + 1 or x.shape[1:] != shape:
                    return None
                x = x.reshape(x.shape[0], self.obs_dim)
            if not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
        else:
            x = policy.preprocess_obs(obs)
        return x if x.shape[0] >= 1 else None

    def act(self, policy: ActorCritic, obs: Any, rng: np.random.Generator, deterministic: bool):
        """Fused native act; None when it cannot take this input (then the NumPy path runs and names
        any bad input)."""
        x = self.input(policy, obs)
        if x is None:
            return None
        B = x.shape[0]
        dist = policy.dist
        if not deterministic and self.categorical:
            res = self.net.act_categorical(policy.params, x, rng.random((B, 1)))
            if res is None:  # non-finite: the NumPy path raises the named error (rng already used)
                return policy.act(obs, rng, deterministic)
            if dist.start:
                res = (res[0] + dist.start, res[1], res[2])
            return res
        if not deterministic and self.bernoulli:
            res = self.net.act_bernoulli(policy.params, x, rng.random((B, dist.n)))
            if res is None:  # non-finite: the NumPy path raises the named error (rng already used)
                return policy.act(obs, rng, deterministic)
            a, logp, values = res
            return a.reshape((B, *dist.action_shape)), logp, values
        if not deterministic and self.gaussian:
            a, _, logp, values = self.act_gaussian(policy, obs, x, rng, clip=False)
            return a, logp, values
        res = self.net.forward(policy.params, x)
        if res is None or (self.gaussian and not np.isfinite(policy.log_std).all()):
            return None  # the NumPy path raises the named error
        out, values = res
        a, logp = dist.sample_with_log_prob(policy.dist_params_from_output(out), rng, deterministic)
        if self.gaussian:
            a = a.reshape((B, *self.act_shape))
        return a, logp, values

    def act_gaussian(self, policy: ActorCritic, obs: Any, x: np.ndarray, rng: np.random.Generator, *, clip: bool):
        """Native Gaussian sample from the prepared input ``x``: (actions, env_actions or None,
        logp, values), ``env_actions`` = the actions clipped to the bounds in the same C++ call
        when ``clip``. On a non-finite value the NumPy path runs (it names the error; rng already used)."""
        B = x.shape[0]
        bounds = (self.low, self.high) if clip else (None, None)
        eps = rng.standard_normal((B, policy.dist.d))
        res = self.net.act_gaussian(policy.params, x, eps, LOG_STD_MIN, LOG_STD_MAX, *bounds)
        if res is None:
            a, logp, values = policy.act(obs, rng, False)
            return a, (policy.clip_actions(a) if clip else None), logp, values
        a, logp, values = res[:3]
        a_env = res[3] if clip else None
        if len(self.act_shape) > 1:  # [B, d] -> [B, *box_shape]
            shape = (B, *self.act_shape)
            a = a.reshape(shape)
            a_env = None if a_env is None else a_env.reshape(shape)
        return a, a_env, logp, values


_NETS: weakref.WeakKeyDictionary[ActorCritic, _ActingNetwork] = weakref.WeakKeyDictionary()


def _acting_network(policy: ActorCritic) -> _ActingNetwork:
    net = _NETS.get(policy)
    if net is None:
        net = _NETS[policy] = _ActingNetwork(policy)
    return net


def act(
    policy: ActorCritic, obs: Any, rng: np.random.Generator, deterministic: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``policy.act(obs, rng, deterministic)`` through the native acting network.

    Sample a ~ π(·|s) (or the mode), with log π(a|s) and V(s): actions ([B] int64 for Discrete,
    [B, K] for MultiDiscrete, [B, *box_shape] UNclipped for Box), logp [B] and values [B]. With
    ``policy.native_act`` (the float32 default) both forward passes and the sampling run in one
    native call that draws the same random numbers as ``ActorCritic.act``; otherwise, and for
    inputs the native network does not take, this is ``policy.act``.

    ``policy`` must be an ActorCritic, ``obs`` an array (or nested sequence) of real numbers, ``rng``
    a ``numpy.random.Generator`` and ``deterministic`` a bool: anything else raises a ``TypeError``
    naming it (the NumPy path names a wrong shape or NaN/inf in ``obs``).
    """
    obs = _act_args("act", policy, obs, rng, deterministic)
    return _act(policy, obs, rng, bool(deterministic))


def _act_args(fn: str, policy: Any, obs: Any, rng: Any, deterministic: Any) -> Any:
    """Check the arguments of :func:`act` / :func:`act_and_clip`; returns ``obs`` (as an array when it
    was not one)."""
    if type(obs) is not np.ndarray or obs.dtype.kind not in _REAL_KINDS:
        if not isinstance(obs, dict):  # a Dict observation space's dict: the policy's encoding checks its entries
            obs = as_real_array(obs, "obs", fn)  # complex, str or object observations are refused
    if type(policy) is not ActorCritic and not isinstance(policy, ActorCritic):
        raise TypeError(f"{fn}: 'policy' must be a refrl.policy.ActorCritic, got {type(policy).__name__}")
    if type(rng) is not _GENERATOR and not isinstance(rng, _GENERATOR):
        raise TypeError(f"{fn}: 'rng' must be a numpy.random.Generator, got {type(rng).__name__}")
    if deterministic is not False and deterministic is not True:
        check_bool("deterministic", deterministic, fn=fn)
    return obs


_REAL_KINDS, _GENERATOR = "biuf", np.random.Generator


def _act(policy: ActorCritic, obs: Any, rng: np.random.Generator, deterministic: bool,
         net: _ActingNetwork | None = None):
    """:func:`act` on checked arguments (``net``: the policy's acting network, if already looked up)."""
    if policy.native_act:
        res = (_acting_network(policy) if net is None else net).act(policy, obs, rng, deterministic)
        if res is not None:
            return res
    return policy.act(obs, rng, deterministic)


def act_and_clip(
    policy: ActorCritic, obs: Any, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stochastic :func:`act` and the actions for ``env.step``: (actions, env_actions, logp, values)
    with ``env_actions = policy.clip_actions(actions)`` (what the rollout collector needs each step).

    The same values and random draws as ``act`` then ``clip_actions``; on the native Gaussian path
    the clip is done in the same C++ call. Arguments are checked as by :func:`act`.
    """
    obs = _act_args("act_and_clip", policy, obs, rng, False)
    net = None
    if policy.native_act:
        net = _acting_network(policy)
        if net.gaussian:
            x = net.input(policy, obs)
            if x is not None:
                return net.act_gaussian(policy, obs, x, rng, clip=True)
    a, logp, values = _act(policy, obs, rng, False, net)
    return a, policy.clip_actions(a), logp, values
