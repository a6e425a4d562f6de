"""``refrl selfcheck``: the installed compiled core against the pure-Python oracles.

Each kernel is run on random inputs (seeded) in float64 and float32 and compared with its
oracle from ``refrl.oracle``; one line per kernel reports the largest error seen and whether
it is within tolerance. The error measure is max |kernel − oracle| / (1 + |oracle|) over all
outputs and trials (absolute for small values, relative for large ones).

Table-driven: ``CHECKS`` is a list of ``(name, check)`` where ``check(rng, trials)`` returns
``{variant: (largest_error, tolerance)}`` (variant = "float64", "float32", ...). Other
modules' kernels are added by appending to ``CHECKS``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np

Errors = dict[str, tuple[float, float]]
Check = Callable[[np.random.Generator, int], Errors]

# kernel vs float64 oracle: round-off only in float64; float32 kernels compute in float32
TOL = {"float64": 1e-9, "float32": 1e-4}


def _err(got, want, mask=None) -> float:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    e = np.abs(got - want) / (1.0 + np.abs(want))
    if mask is not None:
        e = e[mask]
    e = np.where(np.isnan(e), np.inf, e)  # a NaN is a failure, never a silent pass
    return float(e.max(initial=0.0))


def check_gae(rng: np.random.Generator, trials: int) -> Errors:
    from refrl import kernels, oracle

    worst = {"float64": 0.0, "float32": 0.0}
    for _ in range(trials):
        T, N = int(rng.integers(1, 65)), int(rng.integers(1, 9))
        r, v, vn = (rng.normal(size=(T, N)) for _ in range(3))
        term = rng.random((T, N)) < 0.05
        trunc = rng.random((T, N)) < 0.05
        gamma, lam = float(rng.choice([0.0, 1.0, rng.random()])), float(rng.choice([0.0, 1.0, rng.random()]))
        for name, dt in (("float64", np.float64), ("float32", np.float32)):
            args = [x.astype(dt) for x in (r, v, vn)]
            got = kernels.gae(*args, term, trunc, gamma, lam)
            want = oracle.gae(*args, term, trunc, gamma, lam)
            e = max(_err(got.advantages, want.advantages), _err(got.returns, want.returns))
            # float32: the λ-trace accumulates round-off over up to T steps
            worst[name] = max(worst[name], e / (1.0 if name == "float64" else max(1.0, T / 16)))
    return {k: (e, TOL[k]) for k, e in worst.items()}


def check_clipped_surrogate(rng: np.random.Generator, trials: int) -> Errors:
    from refrl import kernels, oracle

    worst = {"float64": 0.0, "float32": 0.0}
    for trial in range(trials):
        B = int(rng.integers(1, 257))
        logp_old = rng.normal(-1.0, 0.5, size=B)
        logp = logp_old + rng.normal(0.0, 0.3, size=B)
        adv = rng.normal(size=B)
        weights = None if trial % 2 == 0 else (rng.random(B) < 0.8).astype(np.float64)
        if weights is not None:
            weights[0] = 1.0
        eps = float(rng.uniform(0.05, 0.4))
        for name, dt in (("float64", np.float64), ("float32", np.float32)):
            args = [x.astype(dt) for x in (logp, logp_old, adv)]
            w = None if weights is None else weights.astype(dt)
            got = kernels.clipped_surrogate(*args, eps, w)
            want = oracle.clipped_surrogate(*args, eps, w)
            # float32 may take the other branch for ratios within 1e-5 of a kink 1 ± ε
            ratio = np.exp(args[0].astype(np.float64) - args[1].astype(np.float64))
            near = (np.abs(ratio - (1 - eps)) < 1e-5) | (np.abs(ratio - (1 + eps)) < 1e-5)
            if name == "float64":
                near[:] = False
            e = _err(got.grad_logp, want.grad_logp, ~near)
            for field in ("objective", "approx_kl", "ratio_min", "ratio_mean", "ratio_max"):
                e = max(e, _err(getattr(got, field), getattr(want, field)))
            if not near.any():
                e = max(e, _err(got.clip_fraction, want.clip_fraction))
            worst[name] = max(worst[name], e)
    return {k: (e, TOL[k]) for k, e in worst.items()}


def check_conjugate_gradient(rng: np.random.Generator, trials: int) -> Errors:
    from refrl import _core, kernels, oracle

    worst = {"float64 native": 0.0, "float64 callable": 0.0, "float32 native": 0.0}
    for _ in range(trials):
        n = int(rng.integers(1, 21))
        M = rng.uniform(-1.0, 1.0, size=(n, n)) / n
        A = M.T @ M + rng.uniform(0.5, 2.0) * np.eye(n)  # cond(A) <= 3: one trajectory
        b = rng.normal(size=n)
        iters = int(rng.integers(1, n + 2))
        damping = float(rng.choice([0.0, 0.1]))
        want = oracle.conjugate_gradient(A, b, iters=iters, tol=1e-10, damping=damping)
        runs = {
            "float64 native": (_core.DenseOperatorF64(A), b),
            "float64 callable": ((lambda v, A=A: A @ v), b),
            "float32 native": (_core.DenseOperatorF32(A.astype(np.float32)), b.astype(np.float32)),
        }
        for name, (op, rhs) in runs.items():
            got = kernels.conjugate_gradient(op, rhs, iters=iters, tol=1e-10, damping=damping)
            if name.startswith("float32"):  # different stopping step possible: compare with solve
                want32 = np.linalg.solve(A.astype(np.float32).astype(np.float64) + damping * np.eye(n), b)
                e = _err(got.x, want.x) if got.iterations == want.iterations else _err(got.x, want32)
            elif (got.iterations, got.status) != (want.iterations, want.status):
                e = math.inf
            else:
                e = _err(got.x, want.x)
            worst[name] = max(worst[name], e)
    tol = {"float64 native": TOL["float64"], "float64 callable": TOL["float64"], "float32 native": 1e-3}
    return {k: (e, tol[k]) for k, e in worst.items()}


def check_fisher_vector_product(rng: np.random.Generator, trials: int) -> Errors:
    """Native F v (fisher.hpp) vs the oracle's F v on its own float64 forward pass and, in float64,
    vs the explicit Fisher matrix (1/B) Σ_b J_bᵀ M_b J_b; small random policies of every head,
    tanh and relu."""
    from gymnasium import spaces

    from refrl import native, oracle
    from refrl.policy import ActorCritic

    worst = {"float64": 0.0, "float64 matrix": 0.0, "float32": 0.0}
    for trial in range(trials):
        obs_dim = int(rng.integers(1, 6))
        net_arch = tuple(int(h) for h in rng.integers(1, 9, size=int(rng.integers(0, 3))))
        k = int(rng.integers(1, 4))
        act_space = [spaces.Discrete(k), spaces.Box(-1.0, 1.0, (k,)), spaces.MultiDiscrete([k, 2]),
                     spaces.MultiBinary(k)][trial % 4]
        activation = "relu" if trial % 5 == 4 else "tanh"
        B = int(rng.integers(1, 12))
        obs = rng.normal(size=(B, obs_dim))
        damping = float(rng.choice([0.0, 0.1]))
        for name, dt in (("float64", np.float64), ("float32", np.float32)):
            pol = ActorCritic(
                spaces.Box(-np.inf, np.inf, (obs_dim,)), act_space, net_arch=net_arch, activation=activation,
                dtype=dt, rng=np.random.default_rng(trial),
            )  # fmt: skip
            pol.policy_params[...] = rng.uniform(-1.0, 1.0, size=pol.n_policy_params).astype(dt)
            v = rng.normal(size=pol.n_policy_params).astype(dt)
            got = native.fisher_vector_product(pol, obs.astype(dt), v, damping=damping)
            want = oracle.fisher_vector_product(pol, obs.astype(dt), v, damping=damping)
            worst[name] = max(worst[name], _err(got, want))
            if name == "float64":
                F = oracle.fisher_matrix(pol, obs)
                worst["float64 matrix"] = max(worst["float64 matrix"], _err(got, F @ v + damping * v))
    tol = {"float64": TOL["float64"], "float64 matrix": TOL["float64"], "float32": TOL["float32"]}
    return {k: (e, tol[k]) for k, e in worst.items()}


def check_adam_step(rng: np.random.Generator, trials: int) -> Errors:
    """One compiled Adam step (adam.hpp) vs Algorithm 1 of Kingma & Ba as a scalar loop."""
    from refrl import kernels, oracle

    worst = {"float64": 0.0, "float32": 0.0}
    for _ in range(trials):
        n = int(rng.integers(1, 200))
        t = int(rng.integers(1, 1000))
        lr, b1, b2, eps = float(rng.uniform(0, 0.1)), float(rng.choice([0.0, 0.9])), float(rng.choice([0.9, 0.999])), 1e-5
        theta, g, m = (rng.normal(size=n) for _ in range(3))
        v = rng.uniform(0, 2, size=n)
        for name, dt in (("float64", np.float64), ("float32", np.float32)):
            th, gg, mm, vv = (x.astype(dt) for x in (theta, g, m, v))
            want = oracle.adam_step(th, gg, mm, vv, t, lr, b1, b2, eps)
            kernels.adam_step(th, gg, mm, vv, t, lr, b1, b2, eps)
            worst[name] = max(worst[name], _err(th, want[0]), _err(mm, want[1]), _err(vv, want[2]))
    return {k: (e, TOL[k]) for k, e in worst.items()}


CHECKS: list[tuple[str, Check]] = [
    ("gae", check_gae),
    ("clipped_surrogate", check_clipped_surrogate),
    ("conjugate_gradient", check_conjugate_gradient),
    ("fisher_vector_product", check_fisher_vector_product),
    ("adam_step", check_adam_step),
]


def run_selfcheck(seed: int = 0, trials: int = 20, out=None) -> int:
    """Run every check in ``CHECKS``; print one line per kernel; return 0 if all pass, else 1."""
    out = sys.stdout if out is None else out
    from refrl import __version__, _core

    rng = np.random.default_rng(seed)
    print(f"refrl {__version__} selfcheck: compiled core {_core.__file__}", file=out)
    print(f"seed {seed}, {trials} random inputs per kernel; error = max |kernel - oracle| / (1 + |oracle|)", file=out)
    failed = 0
    for name, check in CHECKS:
        try:
            errors = check(rng, trials)
        except Exception as exc:  # a crash of a check is a failure, reported, not hidden
            print(f"{name:<24} ERROR {type(exc).__name__}: {exc}", file=out)
            failed += 1
            continue
        ok = all(e <= tol for e, tol in errors.values())
        parts = "  ".join(f"{variant} {e:.1e} (tol {tol:.0e})" for variant, (e, tol) in errors.items())
        print(f"{name:<24} {'ok  ' if ok else 'FAIL'}  {parts}", file=out)
        failed += not ok
    print("all kernels match their oracles" if not failed else f"{failed} kernel(s) FAILED", file=out)
    return 0 if not failed else 1

