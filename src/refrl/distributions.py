"""Action distributions as stateless functions of a flat parameter array.

Every distribution takes its parameters as one 2-D array ``params`` of shape
``[B, param_dim]`` (a batch of B states):

* :class:`Categorical` (gymnasium ``Discrete``): ``params`` = logits ``[B, n]``.
* :class:`DiagGaussian` (``Box``): ``params`` = ``[mean | log_std]``, shape ``[B, 2d]``.
  In the actor-critic the mean comes from the network and ``log_std`` is a
  state-independent parameter broadcast over the batch ("37 implementation
  details", continuous details 1–3); the gradients returned here are per
  sample, the policy sums the ``log_std`` half over the batch.
* :class:`MultiCategorical` (``MultiDiscrete``): concatenated logits of
  independent components ``[B, Σ nvec]``; log-probabilities, entropies and KLs
  add over the components (MultiDiscrete detail of the same blog).
* :class:`Bernoulli` (``MultiBinary``): one logit per bit ``[B, n]``, independent bits;
  log-probabilities, entropies and KLs add over the bits (SB3's ``BernoulliDistribution``).

Entry points, the same for every distribution (all per sample, shape [B] or [B, param_dim]):

* ``sample(params, rng)``, ``mode(params)``;
* ``log_prob(params, actions)``, ``entropy(params)``, ``kl(params_old, params_new)`` = KL(π_old ‖ π_new);
* their hand-derived gradients with respect to the parameters: ``log_prob_grad``, ``entropy_grad``,
  ``kl_grad`` (w.r.t. ``params_new``);
* ``fisher_product(params, u)`` = M·u, the Fisher information of the distribution in its own
  parameters (the Hessian of KL(π_p ‖ π_q) in q at q = p), which the Fisher-vector product chains
  with the network Jacobian: F = Jᵀ M J;
* ``sample_with_log_prob(params, rng, deterministic)``: ``sample`` (or ``mode``) and ``log_prob`` of
  that action (DiagGaussian evaluates log π from the drawn ε, exact even when σ ≪ |μ|).

:class:`Categorical` also gives the full distribution, ``log_probs(params)`` (log-softmax) and
``probs(params)``; :class:`Bernoulli` gives ``probs(params)`` = σ(z). Each formula is written once, in the method that computes it; every gradient is
checked against finite differences in ``tests/test_distributions.py``.

Box actions are sampled *unclipped*; the policy clips them to the bounds only for
``env.step`` and the log-probability is always that of the unclipped sample.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "Bernoulli",
    "Categorical",
    "DiagGaussian",
    "Distribution",
    "MultiCategorical",
    "make_distribution",
]

#: Bounds applied to log σ inside every DiagGaussian computation (the stored parameter is
#: not changed). Below about −44, σ² = exp(2 log σ) underflows to 0 in float32 and every
#: 1/σ² becomes inf; bounding keeps log_prob, KL and their gradients finite. The values are
#: the convention of Stable-Baselines3's squashed Gaussian (SAC). Outside the bounds the
#: gradient with respect to log σ is 0 (the clip is part of the function).
LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0

_LOG_2PI = math.log(2.0 * math.pi)


# NumPy's reduction over a short last axis costs ~25 ns per row (x.max(axis=1) on [64, 2]: ~3 us);
# over the few columns of an action head, elementwise operations column by column give the same
# values for a fraction of that (NumPy adds fewer than 8 numbers left to right too: the same sums,
# except that a sum of −0s may come out −0 here and +0 there).  Every row sum and row max below
# goes through these two.
_FEW_COLUMNS = 7


def _row_sum(x: np.ndarray) -> np.ndarray:
    """x.sum(axis=1) for x [B, n], the columns added left to right."""
    n = x.shape[1]
    if n > _FEW_COLUMNS or n < 1:
        return x.sum(axis=1)
    if n == 1:
        return x[:, 0] + 0.0  # as NumPy: 0 + x (so −0 sums to +0)
    s = x[:, 0] + x[:, 1]
    for j in range(2, n):
        s += x[:, j]
    return s


def _row_max(x: np.ndarray) -> np.ndarray:
    """x.max(axis=1, keepdims=True) for x [B, n] (the max does not depend on the order; NaN propagates)."""
    n = x.shape[1]
    if n > _FEW_COLUMNS or n < 2:
        return x.max(axis=1, keepdims=True)
    m = np.maximum(x[:, 0:1], x[:, 1:2])
    for j in range(2, n):
        np.maximum(m, x[:, j : j + 1], out=m)
    return m


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p = z − max z − log Σ exp(z − max z) (log-sum-exp, stable for any finite z); logits [B, n]."""
    z = logits - _row_max(logits)
    return z - np.log(_row_sum(np.exp(z)))[:, None]


def _softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + e^z) = max(z, 0) + log1p(e^−|z|) (stable for any finite z)."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _check_params(name: str, params: np.ndarray, dim: int, who: str) -> np.ndarray:
    params = np.asarray(params)
    if params.dtype.kind != "f":
        params = params.astype(np.float64)
    if params.ndim != 2 or params.shape[1] != dim:
        raise ValueError(f"{who}: '{name}' must have shape (B, {dim}), got {params.shape}")
    return params


class Distribution:
    """Common surface. ``param_dim`` columns of params; ``action_shape`` per sample."""

    param_dim: int
    action_shape: tuple[int, ...]
    action_dtype: np.dtype

    def sample(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def log_prob(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def entropy(self, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def kl(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mode(self, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def log_prob_grad(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def entropy_grad(self, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def kl_grad(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fisher_product(self, params: np.ndarray, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sample_with_log_prob(
        self, params: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(a, log π(a)) with a = ``sample(params, rng)``, or ``mode(params)`` when ``deterministic``:
        the two calls composed (what ``ActorCritic.act`` needs per step), no formula of its own."""
        a = self.mode(params) if deterministic else self.sample(params, rng)
        return a, self.log_prob(params, a)

    def log_prob_entropy(self, params: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, object]:
        """(log π(a) [B], H [B], stash) for ``ActorCritic.evaluate``; ``stash`` is what
        ``params_grad_from_stash`` needs for the gradients of the same two quantities.

        Here ``log_prob`` and ``entropy`` composed; Categorical overrides the pair to compute its
        log-softmax once for all four quantities (see docs/benchmarks.md for the measured gain).
        """
        return self.log_prob(params, actions), self.entropy(params), (params, actions)

    def params_grad_from_stash(self, stash, dlogp: np.ndarray | None, dentropy: np.ndarray | None) -> np.ndarray | None:
        """dlogp_i ∂log π(a_i)/∂params_i + dentropy_i ∂H_i/∂params_i per sample [B, param_dim], or None
        when both weights are None; ``stash`` from ``log_prob_entropy`` (here: (params, actions))."""
        params, actions = stash
        ddist = None
        if dlogp is not None:
            ddist = self.log_prob_grad(params, actions) * dlogp[:, None]
        if dentropy is not None:
            g = self.entropy_grad(params) * dentropy[:, None]
            ddist = g if ddist is None else ddist + g
        return ddist


class Categorical(Distribution):
    """π(a) = softmax(z)_a over ``n`` actions ``start, ..., start + n − 1`` (gymnasium Discrete).

    Formulas (p = softmax(z), log p by log-sum-exp):
        log π(a) = z_a − logsumexp(z)            ∂/∂z = onehot(a) − p
        H = −Σ p log p                            ∂H/∂z_j = −p_j (log p_j + H)
        KL(p ‖ q) = Σ p (log p − log q)          ∂KL/∂z^q = q − p
        Fisher in z: M = diag(p) − p pᵀ           M u = p ⊙ u − p (pᵀu)
    """

    def __init__(self, n: int, start: int = 0) -> None:
        n = int(n)
        if n < 1:
            raise ValueError(f"Categorical: 'n' must be >= 1, got {n}")
        self.n = n
        self.start = int(start)
        self.param_dim = n
        self.action_shape = ()
        self.action_dtype = np.dtype(np.int64)

    def _params(self, params: np.ndarray, name: str = "params") -> np.ndarray:
        return _check_params(name, params, self.n, "Categorical")

    def _index(self, actions: np.ndarray, B: int) -> np.ndarray:
        a = np.asarray(actions)
        if a.shape != (B,):
            raise ValueError(f"Categorical: 'actions' must have shape ({B},), got {a.shape}")
        if a.dtype.kind not in "iu":
            if a.dtype.kind == "f" and np.all(a == np.round(a)):
                a = a.astype(np.int64)
            else:
                raise TypeError(f"Categorical: 'actions' must be integers, got dtype {a.dtype}")
        idx = a.astype(np.int64) - self.start
        if B and (idx.min() < 0 or idx.max() >= self.n):
            raise ValueError(
                f"Categorical: 'actions' must lie in [{self.start}, {self.start + self.n - 1}], "
                f"got values in [{a.min()}, {a.max()}]"
            )
        return idx

    def log_probs(self, params: np.ndarray) -> np.ndarray:
        """log p = log softmax(z) over all n actions, [B, n] (the full distribution, e.g. for a KL)."""
        return _log_softmax(self._params(params))

    def probs(self, params: np.ndarray) -> np.ndarray:
        """p = softmax(z), [B, n]."""
        return np.exp(self.log_probs(params))

    def sample(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Inverse-CDF sampling: a = #{j : cumsum(p)_j ≤ u}, u ~ U[0, 1)."""
        p = self.probs(params)
        cdf = np.cumsum(p, axis=1)
        u = rng.random((p.shape[0], 1)) * cdf[:, -1:]  # scale by the sum: no rounding overrun
        idx = (cdf <= u).sum(axis=1)
        np.minimum(idx, self.n - 1, out=idx)
        return idx + self.start

    def mode(self, params: np.ndarray) -> np.ndarray:
        return self._params(params).argmax(axis=1) + self.start

    # The formulas, each once, in terms of log p [B, n], p = exp(log p) and the action indices; the
    # public methods compute log p from the logits, the evaluate/backward pair computes it once.
    @staticmethod
    def _entropy_of(logp: np.ndarray, p: np.ndarray) -> np.ndarray:
        return -_row_sum(p * logp)  # H = −Σ p log p

    @staticmethod
    def _log_prob_grad_of(p: np.ndarray, idx: np.ndarray) -> np.ndarray:
        g = -p  # ∂log π(a)/∂z = onehot(a) − p
        g[np.arange(p.shape[0]), idx] += 1.0
        return g

    @staticmethod
    def _entropy_grad_of(logp: np.ndarray, p: np.ndarray, H: np.ndarray) -> np.ndarray:
        return -p * (logp + H[:, None])  # ∂H/∂z = −p (log p + H)

    def log_prob(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        logp = self.log_probs(params)
        B = logp.shape[0]
        return logp[np.arange(B), self._index(actions, B)]

    def log_prob_grad(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        p = self.probs(params)
        return self._log_prob_grad_of(p, self._index(actions, p.shape[0]))

    def entropy(self, params: np.ndarray) -> np.ndarray:
        logp = self.log_probs(params)
        return self._entropy_of(logp, np.exp(logp))

    def entropy_grad(self, params: np.ndarray) -> np.ndarray:
        logp = self.log_probs(params)
        p = np.exp(logp)
        return self._entropy_grad_of(logp, p, self._entropy_of(logp, p))

    def log_prob_entropy(self, params: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, object]:
        """log π(a), H and the stash (log p, p, H, action indices): one log-softmax for the four
        quantities of a PPO minibatch (log π, H and, in ``params_grad_from_stash``, their gradients)."""
        logp = self.log_probs(params)
        B = logp.shape[0]
        idx = self._index(actions, B)
        p = np.exp(logp)
        H = self._entropy_of(logp, p)
        return logp[np.arange(B), idx], H, (logp, p, H, idx)

    def params_grad_from_stash(self, stash, dlogp: np.ndarray | None, dentropy: np.ndarray | None) -> np.ndarray | None:
        """dlogp ⊙ (onehot(a) − p) + dentropy ⊙ (−p (log p + H)) from the stashed log p, p, H."""
        logp, p, H, idx = stash
        ddist = None
        if dlogp is not None:
            ddist = self._log_prob_grad_of(p, idx) * dlogp[:, None]
        if dentropy is not None:
            g = self._entropy_grad_of(logp, p, H) * dentropy[:, None]
            ddist = g if ddist is None else ddist + g
        return ddist

    def kl(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        lp = _log_softmax(self._params(params_old, "params_old"))
        lq = _log_softmax(self._params(params_new, "params_new"))
        if lp.shape != lq.shape:
            raise ValueError(f"Categorical.kl: 'params_old' {lp.shape} and 'params_new' {lq.shape} differ")
        return _row_sum(np.exp(lp) * (lp - lq))

    def kl_grad(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        p = np.exp(_log_softmax(self._params(params_old, "params_old")))
        q = np.exp(_log_softmax(self._params(params_new, "params_new")))
        if p.shape != q.shape:
            raise ValueError(f"Categorical.kl_grad: 'params_old' {p.shape} and 'params_new' {q.shape} differ")
        return q - p

    def fisher_product(self, params: np.ndarray, u: np.ndarray) -> np.ndarray:
        p = self.probs(params)
        u = np.asarray(u, dtype=p.dtype)
        if u.shape != p.shape:
            raise ValueError(f"Categorical.fisher_product: 'u' must have shape {p.shape}, got {u.shape}")
        return p * (u - _row_sum(p * u)[:, None])

    def __repr__(self) -> str:
        return f"Categorical(n={self.n}, start={self.start})"


class DiagGaussian(Distribution):
    """π(a) = Π_i N(a_i; μ_i, σ_i²), params = [μ | log σ] of shape [B, 2d].

    log σ is bounded to [LOG_STD_MIN, LOG_STD_MAX] inside every formula (see the module constant).
    Formulas (s = log σ, per dimension i, sums over i):
        log π(a) = −½ Σ ((a − μ)/σ)² − Σ s − (d/2) log 2π
            ∂/∂μ = (a − μ)/σ²,   ∂/∂s = ((a − μ)/σ)² − 1
        H = Σ s + (d/2)(1 + log 2π)                       ∂H/∂μ = 0,  ∂H/∂s = 1
        KL(old ‖ new) = Σ [s_n − s_o + (σ_o² + (μ_o − μ_n)²)/(2σ_n²) − ½]
            ∂/∂μ_n = (μ_n − μ_o)/σ_n²,   ∂/∂s_n = 1 − (σ_o² + (μ_o − μ_n)²)/σ_n²
        Fisher in (μ, s): M = diag(1/σ², 2)
    """

    def __init__(self, d: int) -> None:
        d = int(d)
        if d < 1:
            raise ValueError(f"DiagGaussian: 'd' must be >= 1, got {d}")
        self.d = d
        self.param_dim = 2 * d
        self.action_shape = (d,)
        self.action_dtype = None  # follows the params' dtype

    def _split(self, params: np.ndarray, name: str = "params") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(μ, bounded log σ, raw log σ as given); the raw values tell where the bound is active."""
        params = _check_params(name, params, 2 * self.d, "DiagGaussian")
        mean = params[:, : self.d]
        raw = params[:, self.d :]
        return mean, np.minimum(np.maximum(raw, LOG_STD_MIN), LOG_STD_MAX), raw  # np.clip, without its dispatch

    def _actions(self, actions: np.ndarray, B: int, dtype: np.dtype) -> np.ndarray:
        """[B, d], or [B, *box_shape] flattened to [B, d]."""
        a = np.asarray(actions, dtype=dtype)
        if a.ndim > 2 and a.shape[0] == B and a.size == B * self.d:
            a = a.reshape(B, self.d)
        if a.shape != (B, self.d):
            raise ValueError(f"DiagGaussian: 'actions' must have shape ({B}, {self.d}), got {a.shape}")
        return a

    def sample(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """a = μ + σ ⊙ ε, ε ~ N(0, I); unclipped."""
        mean, log_std, _ = self._split(params)
        eps = rng.standard_normal(mean.shape)
        return (mean + np.exp(log_std) * eps).astype(mean.dtype, copy=False)

    def mode(self, params: np.ndarray) -> np.ndarray:
        return self._split(params)[0].copy()

    def sample_with_log_prob(
        self, params: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """a = μ + σ ε and log π(a) = −½ Σ ε² − Σ log σ − (d/2) log 2π from ε itself (ε = 0 for the mode).

        Not ``sample`` then ``log_prob``: recomputing ε = (a − μ)/σ from the rounded action loses it
        when σ ≪ |μ| (float32), and the native acting network computes log π from ε in the same way.
        """
        mean, log_std, _ = self._split(params)
        const = _row_sum(log_std) + 0.5 * self.d * _LOG_2PI
        if deterministic:
            return mean.copy(), -const
        eps = rng.standard_normal(mean.shape)
        a = (mean + np.exp(log_std) * eps).astype(mean.dtype, copy=False)
        return a, (-0.5 * _row_sum(eps * eps) - const).astype(mean.dtype, copy=False)

    # The formulas, each once, in terms of z = (a − μ)/σ, 1/σ, the bounded and the raw log σ; the
    # public methods split the parameters for each call, the evaluate/backward pair splits them once.
    def _z(self, params: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(z = (a − μ)/σ, 1/σ, bounded log σ, raw log σ) of checked ``params`` and ``actions``."""
        mean, log_std, raw = self._split(params)
        a = self._actions(actions, mean.shape[0], mean.dtype)
        inv_std = np.exp(-log_std)
        return (a - mean) * inv_std, inv_std, log_std, raw

    def _log_prob_of(self, z: np.ndarray, log_std: np.ndarray) -> np.ndarray:
        return -0.5 * _row_sum(z * z) - _row_sum(log_std) - 0.5 * self.d * _LOG_2PI

    def _entropy_of(self, log_std: np.ndarray) -> np.ndarray:
        return _row_sum(log_std) + 0.5 * self.d * (1.0 + _LOG_2PI)

    def _log_prob_grad_of(self, z: np.ndarray, inv_std: np.ndarray, raw: np.ndarray) -> np.ndarray:
        return np.concatenate([z * inv_std, self._mask(z * z - 1.0, raw)], axis=1)

    def _entropy_grad_of(self, raw: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros_like(raw), self._mask(np.ones_like(raw), raw)], axis=1)

    def log_prob(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        z, _, log_std, _ = self._z(params, actions)
        return self._log_prob_of(z, log_std)

    def log_prob_grad(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        z, inv_std, _, raw = self._z(params, actions)
        return self._log_prob_grad_of(z, inv_std, raw)

    def entropy(self, params: np.ndarray) -> np.ndarray:
        return self._entropy_of(self._split(params)[1])

    def entropy_grad(self, params: np.ndarray) -> np.ndarray:
        return self._entropy_grad_of(self._split(params)[2])

    def log_prob_entropy(self, params: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, object]:
        """log π(a), H and the stash (z, 1/σ, raw log σ): one split and one z for the four quantities
        of a PPO minibatch (log π, H and, in ``params_grad_from_stash``, their gradients)."""
        z, inv_std, log_std, raw = self._z(params, actions)
        return self._log_prob_of(z, log_std), self._entropy_of(log_std), (z, inv_std, raw)

    def params_grad_from_stash(self, stash, dlogp: np.ndarray | None, dentropy: np.ndarray | None) -> np.ndarray | None:
        """dlogp ⊙ ∂log π/∂params + dentropy ⊙ ∂H/∂params from the stashed z, 1/σ and raw log σ."""
        z, inv_std, raw = stash
        ddist = None
        if dlogp is not None:
            ddist = self._log_prob_grad_of(z, inv_std, raw) * dlogp[:, None]
        if dentropy is not None:
            g = self._entropy_grad_of(raw) * dentropy[:, None]
            ddist = g if ddist is None else ddist + g
        return ddist

    def kl(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        mo, so, _ = self._split(params_old, "params_old")
        mn, sn, _ = self._split(params_new, "params_new")
        if mo.shape != mn.shape:
            raise ValueError(f"DiagGaussian.kl: 'params_old' {mo.shape} and 'params_new' {mn.shape} batch differ")
        inv_var_n = np.exp(-2.0 * sn)
        diff = mo - mn
        return _row_sum(sn - so + 0.5 * (np.exp(2.0 * so) + diff * diff) * inv_var_n - 0.5)

    def kl_grad(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        mo, so, _ = self._split(params_old, "params_old")
        mn, sn, raw = self._split(params_new, "params_new")
        if mo.shape != mn.shape:
            raise ValueError(f"DiagGaussian.kl_grad: 'params_old' {mo.shape} and 'params_new' {mn.shape} differ")
        inv_var_n = np.exp(-2.0 * sn)
        diff = mn - mo
        g_mean = diff * inv_var_n
        g_log_std = self._mask(1.0 - (np.exp(2.0 * so) + diff * diff) * inv_var_n, raw)
        return np.concatenate([g_mean, g_log_std], axis=1)

    def fisher_product(self, params: np.ndarray, u: np.ndarray) -> np.ndarray:
        mean, log_std, raw = self._split(params)
        u = np.asarray(u, dtype=mean.dtype)
        if u.shape != (mean.shape[0], 2 * self.d):
            raise ValueError(
                f"DiagGaussian.fisher_product: 'u' must have shape {(mean.shape[0], 2 * self.d)}, got {u.shape}"
            )
        u_mean, u_log_std = u[:, : self.d], u[:, self.d :]
        # KL is flat in log σ beyond the bounds: that block of M is 0 there
        return np.concatenate([u_mean * np.exp(-2.0 * log_std), self._mask(2.0 * u_log_std, raw)], axis=1)

    @staticmethod
    def _mask(g: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Zero the log σ gradient where the bound is active (the clip is part of the function)."""
        outside = (raw < LOG_STD_MIN) | (raw > LOG_STD_MAX)
        return np.where(outside, 0.0, g).astype(g.dtype, copy=False)

    def __repr__(self) -> str:
        return f"DiagGaussian(d={self.d})"


class MultiCategorical(Distribution):
    """Independent Categorical components with sizes ``nvec`` (gymnasium MultiDiscrete, 1-D).

    params = concatenated logits [B, Σ nvec]; actions [B, K]. log π, H and KL are sums of the
    components' values; every gradient is the concatenation of the components' gradients.
    """

    def __init__(self, nvec, start=None) -> None:
        nvec = np.asarray(nvec, dtype=np.int64).reshape(-1)
        if nvec.size < 1 or (nvec < 1).any():
            raise ValueError(f"MultiCategorical: 'nvec' must be non-empty with entries >= 1, got {nvec.tolist()}")
        start = np.zeros_like(nvec) if start is None else np.asarray(start, dtype=np.int64).reshape(-1)
        if start.shape != nvec.shape:
            raise ValueError(f"MultiCategorical: 'start' must have shape {nvec.shape}, got {start.shape}")
        self.nvec = nvec
        self.start = start
        self.parts = [Categorical(int(n), int(s)) for n, s in zip(nvec, start, strict=True)]
        bounds = np.concatenate([[0], np.cumsum(nvec)])
        self._slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self.param_dim = int(bounds[-1])
        self.action_shape = (int(nvec.size),)
        self.action_dtype = np.dtype(np.int64)

    def _params(self, params: np.ndarray, name: str = "params") -> np.ndarray:
        return _check_params(name, params, self.param_dim, "MultiCategorical")

    def _actions(self, actions: np.ndarray, B: int) -> np.ndarray:
        a = np.asarray(actions)
        K = len(self.parts)
        if a.shape != (B, K):
            raise ValueError(f"MultiCategorical: 'actions' must have shape ({B}, {K}), got {a.shape}")
        return a

    def sample(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        logits = self._params(params)
        return np.stack([c.sample(logits[:, s], rng) for c, s in zip(self.parts, self._slices, strict=True)], axis=1)

    def mode(self, params: np.ndarray) -> np.ndarray:
        logits = self._params(params)
        return np.stack([c.mode(logits[:, s]) for c, s in zip(self.parts, self._slices, strict=True)], axis=1)

    def log_prob(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        logits = self._params(params)
        a = self._actions(actions, logits.shape[0])
        return sum(c.log_prob(logits[:, s], a[:, k]) for k, (c, s) in enumerate(zip(self.parts, self._slices)))

    def log_prob_grad(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        logits = self._params(params)
        a = self._actions(actions, logits.shape[0])
        return np.concatenate(
            [c.log_prob_grad(logits[:, s], a[:, k]) for k, (c, s) in enumerate(zip(self.parts, self._slices))],
            axis=1,
        )

    def entropy(self, params: np.ndarray) -> np.ndarray:
        logits = self._params(params)
        return sum(c.entropy(logits[:, s]) for c, s in zip(self.parts, self._slices, strict=True))

    def entropy_grad(self, params: np.ndarray) -> np.ndarray:
        logits = self._params(params)
        return np.concatenate(
            [c.entropy_grad(logits[:, s]) for c, s in zip(self.parts, self._slices, strict=True)], axis=1
        )

    def kl(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        p = self._params(params_old, "params_old")
        q = self._params(params_new, "params_new")
        return sum(c.kl(p[:, s], q[:, s]) for c, s in zip(self.parts, self._slices, strict=True))

    def kl_grad(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        p = self._params(params_old, "params_old")
        q = self._params(params_new, "params_new")
        return np.concatenate(
            [c.kl_grad(p[:, s], q[:, s]) for c, s in zip(self.parts, self._slices, strict=True)], axis=1
        )

    def fisher_product(self, params: np.ndarray, u: np.ndarray) -> np.ndarray:
        logits = self._params(params)
        u = np.asarray(u)
        if u.shape != logits.shape:
            raise ValueError(f"MultiCategorical.fisher_product: 'u' must have shape {logits.shape}, got {u.shape}")
        return np.concatenate(
            [c.fisher_product(logits[:, s], u[:, s]) for c, s in zip(self.parts, self._slices, strict=True)], axis=1
        )

    def __repr__(self) -> str:
        return f"MultiCategorical(nvec={self.nvec.tolist()})"


class Bernoulli(Distribution):
    """Independent bits, π(a) = Π_i p_i^{a_i} (1 − p_i)^{1 − a_i}, p = σ(z), params = logits z [B, n]
    (gymnasium MultiBinary; actions [B, *shape] of 0/1, int8 as the space's dtype).

    Formulas (per bit i, sums over i; softplus(z) = log(1 + e^z), so log p = −softplus(−z) and
    log(1 − p) = −softplus(z)):
        log π(a) = Σ a z − softplus(z)                                ∂/∂z = a − p
        H = Σ softplus(z) − p z                                       ∂H/∂z = −z p (1 − p)
        KL(p ‖ q) = Σ p (log p − log q) + (1 − p)(log(1 − p) − log(1 − q))    ∂KL/∂z^q = q − p
        Fisher in z: M = diag(p (1 − p))                              M u = p (1 − p) ⊙ u
    Sampling: a_i = [u_i < p_i], u ~ U[0, 1); the mode is [z_i > 0] (p = ½ gives 0, as SB3's round).
    """

    def __init__(self, n: int, shape: tuple[int, ...] | None = None) -> None:
        n = int(n)
        if n < 1:
            raise ValueError(f"Bernoulli: 'n' must be >= 1, got {n}")
        shape = (n,) if shape is None else tuple(int(k) for k in shape)
        if math.prod(shape) != n:
            raise ValueError(f"Bernoulli: 'shape' {shape} must hold n = {n} bits")
        self.n = n
        self.param_dim = n
        self.action_shape = shape
        self.action_dtype = np.dtype(np.int8)

    def _params(self, params: np.ndarray, name: str = "params") -> np.ndarray:
        return _check_params(name, params, self.n, "Bernoulli")

    def _bits(self, actions: np.ndarray, B: int, dtype: np.dtype) -> np.ndarray:
        """Actions [B, *shape] (or [B, n]) of 0/1 as ``dtype`` [B, n]."""
        a = np.asarray(actions)
        if a.shape[:1] != (B,) or a.size != B * self.n or a.shape[1:] not in (self.action_shape, (self.n,)):
            shape = ", ".join(map(str, self.action_shape))
            raise ValueError(f"Bernoulli: 'actions' must have shape ({B}, {shape}), got {a.shape}")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"Bernoulli: 'actions' must be 0/1 numbers, got dtype {a.dtype}")
        if a.size and not ((a == 0) | (a == 1)).all():
            raise ValueError("Bernoulli: 'actions' must be 0 or 1")
        return a.reshape(B, self.n).astype(dtype)

    def probs(self, params: np.ndarray) -> np.ndarray:
        """p = σ(z) = exp(−softplus(−z)), [B, n]."""
        return np.exp(-_softplus(-self._params(params)))

    def _shaped(self, a: np.ndarray) -> np.ndarray:
        return a.reshape((a.shape[0], *self.action_shape))

    def sample(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.probs(params)
        return self._shaped((rng.random(p.shape) < p).astype(np.int8))

    def mode(self, params: np.ndarray) -> np.ndarray:
        return self._shaped((self._params(params) > 0).astype(np.int8))

    def log_prob(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        z = self._params(params)
        a = self._bits(actions, z.shape[0], z.dtype)
        return _row_sum(a * z - _softplus(z))

    def log_prob_grad(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        z = self._params(params)
        return self._bits(actions, z.shape[0], z.dtype) - self.probs(z)

    def entropy(self, params: np.ndarray) -> np.ndarray:
        z = self._params(params)
        return _row_sum(_softplus(z) - self.probs(z) * z)

    def entropy_grad(self, params: np.ndarray) -> np.ndarray:
        z = self._params(params)
        p = self.probs(z)
        return -z * p * (1.0 - p)

    def _pair(self, params_old: np.ndarray, params_new: np.ndarray, fn: str) -> tuple[np.ndarray, np.ndarray]:
        zp = self._params(params_old, "params_old")
        zq = self._params(params_new, "params_new")
        if zp.shape != zq.shape:
            raise ValueError(f"Bernoulli.{fn}: 'params_old' {zp.shape} and 'params_new' {zq.shape} differ")
        return zp, zq

    def kl(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        zp, zq = self._pair(params_old, params_new, "kl")
        p = self.probs(zp)
        # log p − log q = softplus(−z^q) − softplus(−z^p);  log(1 − p) − log(1 − q) = softplus(z^q) − softplus(z^p)
        return _row_sum(p * (_softplus(-zq) - _softplus(-zp)) + (1.0 - p) * (_softplus(zq) - _softplus(zp)))

    def kl_grad(self, params_old: np.ndarray, params_new: np.ndarray) -> np.ndarray:
        zp, zq = self._pair(params_old, params_new, "kl_grad")
        return self.probs(zq) - self.probs(zp)

    def fisher_product(self, params: np.ndarray, u: np.ndarray) -> np.ndarray:
        p = self.probs(params)
        u = np.asarray(u, dtype=p.dtype)
        if u.shape != p.shape:
            raise ValueError(f"Bernoulli.fisher_product: 'u' must have shape {p.shape}, got {u.shape}")
        return p * (1.0 - p) * u

    def __repr__(self) -> str:
        return f"Bernoulli(n={self.n})"


def make_distribution(action_space) -> Categorical | DiagGaussian | MultiCategorical | Bernoulli:
    """Distribution for a gymnasium action space: Discrete, Box, 1-D MultiDiscrete or MultiBinary.

    Raises ValueError naming the space for anything else (Dict, Tuple, ...).
    """
    from gymnasium import spaces

    if isinstance(action_space, spaces.Discrete):
        return Categorical(int(action_space.n), int(action_space.start))
    if isinstance(action_space, spaces.Box):
        d = int(np.prod(action_space.shape))
        if d < 1:
            raise ValueError(f"make_distribution: Box 'action_space' must have at least one dimension, got {action_space}")
        return DiagGaussian(d)
    if isinstance(action_space, spaces.MultiDiscrete):
        if action_space.nvec.ndim != 1:
            raise ValueError(
                f"make_distribution: only 1-D MultiDiscrete action spaces are supported, got {action_space}"
            )
        return MultiCategorical(action_space.nvec, getattr(action_space, "start", None))
    if isinstance(action_space, spaces.MultiBinary):
        shape = tuple(int(k) for k in action_space.shape)
        return Bernoulli(math.prod(shape), shape)
    raise ValueError(
        f"make_distribution: unsupported 'action_space' {action_space!r} "
        "(supported: gymnasium.spaces.Discrete, Box, MultiDiscrete, MultiBinary)"
    )
