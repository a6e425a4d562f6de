"""Central finite differences and relative error for gradient checks (CS231n gradient_check style)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂x by central differences (f(x + ε e_i) − f(x − ε e_i)) / 2ε, perturbing ``x`` in place.

    ``f`` takes no argument and reads ``x`` (which may be a view into a network's parameters);
    ``x`` is restored exactly after each coordinate. Use float64.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_x = x.reshape(-1)
    flat_g = grad.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_grad: 'x' must be reshapeable without a copy")
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + eps
        fp = float(f())
        flat_x[i] = old - eps
        fm = float(f())
        flat_x[i] = old
        flat_g[i] = (fp - fm) / (2.0 * eps)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-8) -> float:
    """max |a − b| / max(|a| + |b|, floor), elementwise (CS231n's rel_error with a floor for zeros)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))


def assert_grad_close(analytic: np.ndarray, numeric: np.ndarray, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """|analytic − numeric| ≤ atol + rtol·|numeric| elementwise, with a readable failure message.

    The atol covers the O(ε_machine·|f|/ε) rounding of central differences where the true
    gradient is ~0; the rtol covers the O(ε²·f''') truncation error.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    assert a.shape == n.shape, f"shape {a.shape} != {n.shape}"
    err = np.abs(a - n)
    bad = err > atol + rtol * np.abs(n)
    assert not bad.any(), (
        f"{int(bad.sum())}/{a.size} entries differ; worst |Δ|={err.max():.3e}, rel_error={rel_error(a, n):.3e}\n"
        f"analytic={a.reshape(-1)[:8]}\nnumeric={n.reshape(-1)[:8]}"
    )
