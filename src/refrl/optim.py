"""Optimisation on flat parameter vectors: Adam, global gradient-norm clipping, LR schedules.

Everything works in place on the flat ``params`` / ``grads`` views of a network or policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from refrl import kernels

__all__ = ["Adam", "clip_grad_norm_", "linear_schedule"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1), in place on a flat parameter vector.

    With g_t = grads, for t = 1, 2, ...::

        m_t = β1 m_{t−1} + (1 − β1) g_t
        v_t = β2 v_{t−1} + (1 − β2) g_t²
        m̂_t = m_t / (1 − β1^t),   v̂_t = v_t / (1 − β2^t)
        θ_t = θ_{t−1} − α m̂_t / (√v̂_t + ε)

    ε placement: ε is added *after* the bias-corrected square root, exactly as in
    Algorithm 1 of the paper and in ``torch.optim.Adam`` (which PyTorch-based peers, SB3 and
    CleanRL, use with ε = 1e-5: "37 implementation details", core detail 3). The paper's
    §2 "efficient" rewriting α_t = α √(1 − β2^t)/(1 − β1^t), θ −= α_t m_t/(√v_t + ε̂), used by
    TensorFlow, puts ε before the bias correction and is a different optimiser whenever ε is not
    negligible against √v_t — which, with ε = 1e-5 and small gradients, it often is not.

    Parameters
    ----------
    params, grads : 1-D float arrays of the same shape and dtype (views are fine; updated in place)
    lr : float
        α; mutable attribute ``lr`` (set it from a schedule before each ``step``).
    betas : (β1, β2)
    eps : float
        ε, default 1e-5 (the peers' value; PyTorch's own default is 1e-8).
    """

    def __init__(
        self,
        params: np.ndarray,
        grads: np.ndarray,
        lr: float = 3e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-5,
    ) -> None:
        for name, arr in (("params", params), ("grads", grads)):
            if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype not in _FLOAT_DTYPES:
                raise TypeError(f"Adam: '{name}' must be a 1-D float32 or float64 numpy array")
            if not arr.flags.c_contiguous:
                raise ValueError(f"Adam: '{name}' must be C-contiguous (a flat vector or a slice of one)")
        if grads.shape != params.shape or grads.dtype != params.dtype:
            raise ValueError(
                f"Adam: 'grads' must match 'params' (shape {params.shape}, dtype {params.dtype}), "
                f"got shape {grads.shape}, dtype {grads.dtype}"
            )
        if not params.flags.writeable:
            raise ValueError("Adam: 'params' must be writeable")
        if np.shares_memory(params, grads):
            raise ValueError("Adam: 'params' and 'grads' must not share memory")
        b1, b2 = (float(b) for b in betas)
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam: 'betas' must lie in [0, 1), got {betas}")
        if not eps > 0.0:
            raise ValueError(f"Adam: 'eps' must be > 0, got {eps}")
        if not lr >= 0.0:
            raise ValueError(f"Adam: 'lr' must be >= 0, got {lr}")
        self.params = params
        self.grads = grads
        self.lr = float(lr)
        self.betas = (b1, b2)
        self.eps = float(eps)
        self.t = 0
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)

    def step(self) -> None:
        """One Adam update θ ← θ − α m̂/(√v̂ + ε) from the current ``grads`` (not zeroed here).

        One pass in the compiled core (``refrl.kernels.adam_step``; its oracle is
        ``refrl.oracle.adam_step``, the paper's Algorithm 1 as a loop).
        """
        self.t += 1
        b1, b2 = self.betas
        kernels.adam_step(self.params, self.grads, self.m, self.v, self.t, self.lr, b1, b2, self.eps, check=False)

    def state_dict(self) -> dict[str, np.ndarray | float]:
        b1, b2 = self.betas
        return {
            "m": self.m.copy(),
            "v": self.v.copy(),
            "t": float(self.t),
            "lr": self.lr,
            "beta1": b1,
            "beta2": b2,
            "eps": self.eps,
        }

    def load_state_dict(self, d: dict) -> None:
        for key in ("m", "v", "t"):
            if key not in d:
                raise ValueError(f"Adam.load_state_dict: missing key {key!r}")
        m = np.asarray(d["m"])
        v = np.asarray(d["v"])
        for name, arr in (("m", m), ("v", v)):
            if arr.shape != self.params.shape:
                raise ValueError(f"Adam.load_state_dict: {name!r} must have shape {self.params.shape}, got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"Adam.load_state_dict: {name!r} contains NaN or inf")
        if (v < 0).any():
            raise ValueError("Adam.load_state_dict: 'v' must be non-negative")
        self.m[...] = m
        self.v[...] = v
        self.t = int(np.asarray(d["t"]))
        if "lr" in d:
            self.lr = float(np.asarray(d["lr"]))
        if "beta1" in d and "beta2" in d:
            self.betas = (float(np.asarray(d["beta1"])), float(np.asarray(d["beta2"])))
        if "eps" in d:
            self.eps = float(np.asarray(d["eps"]))


def clip_grad_norm_(grads: np.ndarray | Sequence[np.ndarray], max_norm: float) -> float:
    """Global L2-norm clipping, in place ("37 implementation details", core detail 11).

    ‖g‖ = √(Σ_i g_i²) over all arrays; if ‖g‖ > max_norm, every g ← g · max_norm / (‖g‖ + 1e-6)
    (the same constant as ``torch.nn.utils.clip_grad_norm_``). Returns ‖g‖ before clipping.
    Non-finite gradients raise ValueError instead of silently spreading NaN into the parameters.
    """
    if type(grads) is np.ndarray and grads.dtype.kind == "f":  # the usual case: one flat vector
        arrays = (grads,)
    else:
        arrays = [grads] if isinstance(grads, np.ndarray) else list(grads)
        if not arrays or not all(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in arrays):
            raise TypeError("clip_grad_norm_: 'grads' must be a float numpy array or a sequence of them")
    max_norm = float(max_norm)
    if not max_norm > 0.0:
        raise ValueError(f"clip_grad_norm_: 'max_norm' must be > 0, got {max_norm}")
    sq = 0.0
    for a in arrays:
        flat = a.reshape(-1)
        sq += float(np.dot(flat, flat)) if flat.dtype == np.float64 else float(np.dot(flat, flat).astype(np.float64))
    norm = math.sqrt(sq)
    if not math.isfinite(norm):
        raise ValueError("clip_grad_norm_: 'grads' contain NaN or inf (or overflow)")
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for a in arrays:
            a *= coef
    return norm


def linear_schedule(initial_value: float, final_value: float = 0.0) -> Callable[[float], float]:
    """Linear annealing in Stable-Baselines3's convention.

    The returned function takes ``progress_remaining``, which goes from 1 (start of training)
    to 0 (end), and returns final + progress_remaining · (initial − final); with the default
    final_value = 0 this is SB3's ``progress_remaining * initial_value``.
    """
    initial_value = float(initial_value)
    final_value = float(final_value)

    def schedule(progress_remaining: float) -> float:
        return final_value + float(progress_remaining) * (initial_value - final_value)

    return schedule
