"""Hypothesis strategies for the kernels' inputs, one per code path (RapidFuzz habit).

All data comes from ``hypothesis.extra.numpy.arrays`` so failures shrink; nothing here
draws from np.random.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def st_float_dtype():
    return st.sampled_from(FLOAT_DTYPES)


def st_unit():
    """γ or λ in [0, 1], with both ends (λ = 0: TD residual; λ = 1: Monte Carlo) drawn often."""
    return st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))


def _floats(dtype, lo, hi):
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return st.floats(lo, hi, width=width, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def st_flags(shape):
    """terminated / truncated patterns: none, all, sparse or arbitrary."""
    T, N = shape
    return st.one_of(
        st.just(np.zeros(shape, dtype=bool)),
        st.just(np.ones(shape, dtype=bool)),
        hnp.arrays(bool, shape, elements=st.booleans()),
        # sparse episode ends: a few (t, n) positions
        st.lists(st.tuples(st.integers(0, T - 1), st.integers(0, N - 1)), max_size=3).map(
            lambda idx: _mark(shape, idx)
        ),
    )


def _mark(shape, idx):
    flags = np.zeros(shape, dtype=bool)
    for t, n in idx:
        flags[t, n] = True
    return flags


@st.composite
def st_rollouts(draw, max_T: int = 64, max_N: int = 8, dtype=None):
    """A dict of gae's array arguments: rewards, values, next_values, terminated, truncated."""
    dtype = draw(st_float_dtype()) if dtype is None else np.dtype(dtype)
    T = draw(st.integers(1, max_T))
    N = draw(st.integers(1, max_N))
    shape = (T, N)
    elements = _floats(dtype, -10.0, 10.0)
    return {
        "rewards": draw(hnp.arrays(dtype, shape, elements=elements)),
        "values": draw(hnp.arrays(dtype, shape, elements=elements)),
        "next_values": draw(hnp.arrays(dtype, shape, elements=elements)),
        "terminated": draw(st_flags(shape)),
        "truncated": draw(st_flags(shape)),
    }


def st_clip_range():
    return st.one_of(st.just(0.2), st.floats(0.01, 0.9))


@st.composite
def st_surrogate_batch(draw, max_B: int = 128, dtype=None, max_log_ratio: float = 2.0, weights: bool | None = None):
    """A dict of clipped_surrogate's arrays (logp, logp_old, advantages, weights).

    Code paths: no weights, a bool mask with at least one True, non-negative float weights
    with a positive sum. Log-ratios stay within ±max_log_ratio.
    """
    dtype = draw(st_float_dtype()) if dtype is None else np.dtype(dtype)
    B = draw(st.integers(1, max_B))
    logp_old = draw(hnp.arrays(dtype, B, elements=_floats(dtype, -5.0, 0.0)))
    log_ratio = draw(hnp.arrays(dtype, B, elements=_floats(dtype, -max_log_ratio, max_log_ratio)))
    logp = (logp_old + log_ratio).astype(dtype)
    advantages = draw(hnp.arrays(dtype, B, elements=_floats(dtype, -5.0, 5.0)))
    kind = draw(st.sampled_from(["none", "mask", "float"])) if weights is None else ("float" if weights else "none")
    w = None
    if kind == "mask":
        w = draw(hnp.arrays(bool, B, elements=st.booleans()))
        w[draw(st.integers(0, B - 1))] = True
    elif kind == "float":
        w = draw(hnp.arrays(dtype, B, elements=st.one_of(st.just(0.0), _floats(dtype, 0.0, 3.0))))
        w[draw(st.integers(0, B - 1))] = 1.0
    return {"logp": logp, "logp_old": logp_old, "advantages": advantages, "weights": w}


@st.composite
def st_spd_system(draw, max_n: int = 10, dtype=np.float64, well_conditioned: bool = False):
    """(A, b) with A = MᵀM + c·I symmetric positive definite (eigenvalues in [c, c + ‖M‖²]).

    ``well_conditioned``: entries of M within ±1/n and c ≥ 0.5, so cond(A) ≤ 3 and two CG
    implementations that round differently follow the same trajectory to ~1e-13.
    """
    n = draw(st.integers(1, max_n))
    bound = 1.0 / n if well_conditioned else 1.0
    M = draw(hnp.arrays(np.float64, (n, n), elements=_floats(np.float64, -bound, bound)))
    c = draw(st.floats(0.5, 2.0) if well_conditioned else st.floats(0.1, 2.0))
    A = (M.T @ M + c * np.eye(n)).astype(dtype)
    A = ((A + A.T) / 2).astype(dtype)  # exactly symmetric after the cast
    b = draw(hnp.arrays(dtype, n, elements=_floats(dtype, -10.0, 10.0)))
    return A, b
