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

Methods: ``sample(params, rng)``, ``log_prob(params, actions)``, ``entropy(params)``,
``kl(params_old, params_new)`` = KL(π_old ‖ π_new), ``mode(params)``, and the hand-derived
gradients with respect to the parameters ``log_prob_grad``, ``entropy_grad``,
``kl_grad`` (w.r.t. ``params_new``), plus ``fisher_product(params, u)`` = M·u, the
Fisher information of the distribution in its own parameters (the Hessian of
KL(π_p ‖ π_q) in q at q = p), which the Fisher-vector product chains with the
network Jacobian: F = Jᵀ M J.  All are checked against finite differences in
``tests/test_distributions.py``.

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


# NumPy's reduction over a short contiguous last axis costs ~25 ns per row (x.max(axis=1) on
# [256, 2] float32: ~11 us); for the few columns of an action head, elementwise operations over
# the columns give the same results for a fraction of that (~1-2 us).
_FEW_COLUMNS = 8


def _row_max(x: np.ndarray) -> np.ndarray:
    """x.max(axis=1, keepdims=True) for x [B, n] (exactly: the max does not depend on the order)."""
    n = x.shape[1]
    if n > _FEW_COLUMNS:
        return x.max(axis=1, keepdims=True)
    m = x[:, :1].copy()
    for j in range(1, n):
        np.maximum(m, x[:, j : j + 1], out=m)
    return m


def _row_sum(x: np.ndarray) -> np.ndarray:
    """x.sum(axis=1) for x [B, n]: the columns added left to right (the same value as NumPy's for
    n <= 2; for more columns NumPy may add in another order, a rounding-level difference)."""
    n = x.shape[1]
    if n > _FEW_COLUMNS:
        return x.sum(axis=1)
    if n == 1:
        return x[:, 0].copy()
    s = x[:, 0] + x[:, 1]
    for j in range(2, n):
        s += x[:, j]
    return s


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p = z − max z − log Σ exp(z − max z) (log-sum-exp, stable for any finite z); logits [B, n]."""
    z = logits - _row_max(logits)
    z -= np.log(_row_sum(np.exp(z)))[:, None]
    return z


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

    def log_prob_entropy(self, params: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, object]:
        """(log π(a) [B], H [B], stash): ``log_prob`` and ``entropy`` in one call, plus whatever
        ``params_grad_from_stash`` needs to form their gradients without recomputing them.

        The generic version just calls the separate methods; subclasses share the work (the
        Categorical normalisation is computed once here and reused for both gradients).
        """
        return self.log_prob(params, actions), self.entropy(params), (params, actions)

    def params_grad_from_stash(self, stash, dlogp: np.ndarray | None, dentropy: np.ndarray | None) -> np.ndarray | None:
        """Σ_i dlogp_i ∂log π(a_i)/∂params_i + dentropy_i ∂H_i/∂params_i, per sample [B, param_dim]
        (None when both weights are None); ``stash`` from ``log_prob_entropy`` at the same params.
        Same values as ``log_prob_grad(params, a) * dlogp[:, None] + entropy_grad(params) * dentropy[:, None]``.
        """
        params, actions = stash
        ddist = None
        if dlogp is not None:
            ddist = self.log_prob_grad(params, actions)
            ddist *= dlogp[:, None]
        if dentropy is not None:
            g = self.entropy_grad(params)
            g *= dentropy[:, None]
            ddist = g if ddist is None else ddist + g
        return ddist

    def sample_with_log_prob(
        self, params: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(a, log π(a)) with a ~ π (or the mode): the per-env-step path of ``ActorCritic.act``.

        Same values as ``sample``/``mode`` followed by ``log_prob``; subclasses fuse the two to save
        the repeated normalisation and the action validation (a few µs per call matter there).
        """
        a = self.mode(params) if deterministic else self.sample(params, rng)
        return a, self.log_prob(params, a)


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

    def probs(self, params: np.ndarray) -> np.ndarray:
        return np.exp(_log_softmax(self._params(params)))

    def sample(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Inverse-CDF sampling: a = #{j : cumsum(p)_j ≤ u}, u ~ U[0, 1)."""
        logits = self._params(params)
        p = np.exp(_log_softmax(logits))
        cdf = np.cumsum(p, axis=1)
        u = rng.random((logits.shape[0], 1)) * cdf[:, -1:]  # scale by the sum: no rounding overrun
        idx = (cdf <= u).sum(axis=1)
        np.minimum(idx, self.n - 1, out=idx)
        return idx + self.start if self.start else idx

    def mode(self, params: np.ndarray) -> np.ndarray:
        return self._params(params).argmax(axis=1) + self.start

    def sample_with_log_prob(
        self, params: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        logits = self._params(params)
        B = logits.shape[0]
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        cdf = np.cumsum(e, axis=1)  # unnormalised: cdf[:, -1] = Σ exp(z) = normaliser
        if deterministic:
            idx = logits.argmax(axis=1)
        else:
            u = rng.random((B, 1)) * cdf[:, -1:]
            idx = (cdf <= u).sum(axis=1)
            np.minimum(idx, self.n - 1, out=idx)
        logp = z[np.arange(B), idx] - np.log(cdf[:, -1])
        return (idx + self.start if self.start else idx), logp

    def log_prob(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        logits = self._params(params)
        idx = self._index(actions, logits.shape[0])
        logp = _log_softmax(logits)
        return logp[np.arange(logits.shape[0]), idx]

    def log_prob_grad(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        logits = self._params(params)
        B = logits.shape[0]
        idx = self._index(actions, B)
        g = -np.exp(_log_softmax(logits))
        g[np.arange(B), idx] += 1.0
        return g

    def entropy(self, params: np.ndarray) -> np.ndarray:
        logp = _log_softmax(self._params(params))
        return -_row_sum(np.exp(logp) * logp)

    def log_prob_entropy(self, params: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, object]:
        """log π(a), H and a stash (log p, p, H, flat indices of the actions): one log-softmax for all
        four quantities of a PPO minibatch (log π, H and, in ``params_grad_from_stash``, their gradients)."""
        logits = self._params(params)
        B = logits.shape[0]
        idx = self._index(actions, B)
        logp_all = _log_softmax(logits)
        p = np.exp(logp_all)
        ent = -_row_sum(p * logp_all)
        # entry (i, a_i) as a flat index: 1-D take / scatter are ~3x cheaper than [arange(B), idx]
        flat = idx + self.n * np.arange(B)
        return logp_all.reshape(-1).take(flat), ent, (logp_all, p, ent, flat)

    def params_grad_from_stash(self, stash, dlogp: np.ndarray | None, dentropy: np.ndarray | None) -> np.ndarray | None:
        """dlogp ⊙ (onehot(a) − p) + dentropy ⊙ (−p (log p + H)), from the cached log p, p, H
        (the same operations, in the same order, as ``log_prob_grad`` and ``entropy_grad``)."""
        logp_all, p, ent, flat = stash
        ddist = None
        if dlogp is not None:
            ddist = -p
            ddist.reshape(-1)[flat] += 1.0  # one entry per row: no repeated index
            ddist *= dlogp[:, None]
        if dentropy is not None:
            g = -p * (logp_all + ent[:, None])
            g *= dentropy[:, None]
            ddist = g if ddist is None else ddist + g
        return ddist

    def entropy_grad(self, params: np.ndarray) -> np.ndarray:
        logp = _log_softmax(self._params(params))
        p = np.exp(logp)
        H = -_row_sum(p * logp)[:, None]
        return -p * (logp + H)

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
        p = np.exp(_log_softmax(self._params(params)))
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
        """(μ, bounded log σ, mask of log σ inside the bounds)."""
        params = _check_params(name, params, 2 * self.d, "DiagGaussian")
        mean = params[:, : self.d]
        raw = params[:, self.d :]
        log_std = np.minimum(np.maximum(raw, LOG_STD_MIN), LOG_STD_MAX)  # = np.clip, without its dispatch
        return mean, log_std, raw

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
        """a = μ + σ ε, log π(a) = −½ Σ ε² − Σ log σ − (d/2) log 2π  (ε = 0 for the mode)."""
        mean, log_std, _ = self._split(params)
        const = _row_sum(log_std) + 0.5 * self.d * _LOG_2PI
        if deterministic:
            return mean.copy(), -const
        eps = rng.standard_normal(mean.shape)
        a = (mean + np.exp(log_std) * eps).astype(mean.dtype, copy=False)
        return a, (-0.5 * _row_sum(eps * eps) - const).astype(mean.dtype, copy=False)

    def log_prob(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        mean, log_std, _ = self._split(params)
        a = self._actions(actions, mean.shape[0], mean.dtype)
        z = (a - mean) * np.exp(-log_std)
        return -0.5 * _row_sum(z * z) - _row_sum(log_std) - 0.5 * self.d * _LOG_2PI

    def log_prob_entropy(self, params: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, object]:
        """log π(a), H and a stash (z = (a − μ)/σ, 1/σ, raw log σ): one split, one exp and one z for
        the four quantities of a PPO minibatch (log π, H and, in ``params_grad_from_stash``, their
        gradients)."""
        mean, log_std, raw = self._split(params)
        a = self._actions(actions, mean.shape[0], mean.dtype)
        inv_std = np.exp(-log_std)
        z = (a - mean) * inv_std
        sum_log_std = _row_sum(log_std)
        logp = -0.5 * _row_sum(z * z) - sum_log_std - 0.5 * self.d * _LOG_2PI
        ent = sum_log_std + 0.5 * self.d * (1.0 + _LOG_2PI)
        return logp, ent, (z, inv_std, raw)

    def params_grad_from_stash(self, stash, dlogp: np.ndarray | None, dentropy: np.ndarray | None) -> np.ndarray | None:
        """dlogp ⊙ [z/σ | z² − 1] + dentropy ⊙ [0 | 1], the log σ part masked where its bound is active
        (the values of ``log_prob_grad`` and ``entropy_grad`` weighted and summed)."""
        if dlogp is None and dentropy is None:
            return None
        z, inv_std, raw = stash
        d = self.d
        g = np.empty((z.shape[0], 2 * d), dtype=z.dtype)
        g_mu, g_s = g[:, :d], g[:, d:]
        if dlogp is not None:  # the products written straight into g (same operations, fewer copies)
            w = dlogp[:, None]
            np.multiply(z * inv_std, w, out=g_mu)
            np.multiply(z, z, out=g_s)
            g_s -= 1.0
            g_s *= w
        else:
            g.fill(0)
        if dentropy is not None:
            g_s += dentropy[:, None]
        masked = self._mask(g_s, raw)
        if masked is not g_s:
            g_s[...] = masked
        return g

    def log_prob_grad(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        mean, log_std, raw = self._split(params)
        a = self._actions(actions, mean.shape[0], mean.dtype)
        inv_std = np.exp(-log_std)
        z = (a - mean) * inv_std
        g = np.empty((mean.shape[0], 2 * self.d), dtype=mean.dtype)
        g[:, : self.d] = z * inv_std
        g[:, self.d :] = self._mask(z * z - 1.0, raw)
        return g

    def entropy(self, params: np.ndarray) -> np.ndarray:
        _, log_std, _ = self._split(params)
        return _row_sum(log_std) + 0.5 * self.d * (1.0 + _LOG_2PI)

    def entropy_grad(self, params: np.ndarray) -> np.ndarray:
        mean, _, raw = self._split(params)
        g = np.zeros((mean.shape[0], 2 * self.d), dtype=mean.dtype)
        g[:, self.d :] = self._mask(np.ones_like(raw), raw)
        return g

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
        g = np.empty((mn.shape[0], 2 * self.d), dtype=np.result_type(mn, mo))
        g[:, : self.d] = diff * inv_var_n
        g[:, self.d :] = self._mask(1.0 - (np.exp(2.0 * so) + diff * diff) * inv_var_n, raw)
        return g

    def fisher_product(self, params: np.ndarray, u: np.ndarray) -> np.ndarray:
        mean, log_std, raw = self._split(params)
        u = np.asarray(u, dtype=mean.dtype)
        if u.shape != (mean.shape[0], 2 * self.d):
            raise ValueError(
                f"DiagGaussian.fisher_product: 'u' must have shape {(mean.shape[0], 2 * self.d)}, got {u.shape}"
            )
        out = np.empty_like(u)
        out[:, : self.d] = u[:, : self.d] * np.exp(-2.0 * log_std)
        out[:, self.d :] = self._mask(2.0 * u[:, self.d :], raw)  # KL is flat in log σ beyond the bounds
        return out

    @staticmethod
    def _mask(g: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Zero the log σ gradient where the bound is active (the clip is part of the function)."""
        lo, hi = raw.min(), raw.max()  # two reductions instead of four ufuncs in the usual case
        if lo < LOG_STD_MIN or hi > LOG_STD_MAX or lo != lo:  # lo != lo: a NaN (then elementwise, exactly)
            outside = (raw < LOG_STD_MIN) | (raw > LOG_STD_MAX)
            g = np.where(outside, 0.0, g).astype(g.dtype, copy=False)
        return g

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


def make_distribution(action_space) -> Categorical | DiagGaussian | MultiCategorical:
    """Distribution for a gymnasium action space: Discrete, Box, or 1-D MultiDiscrete.

    Raises ValueError naming the space for anything else (MultiBinary, Dict, Tuple, ...).
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
    raise ValueError(
        f"make_distribution: unsupported 'action_space' {action_space!r} "
        "(supported: gymnasium.spaces.Discrete, Box, MultiDiscrete)"
    )
