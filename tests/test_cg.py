"""refrl.kernels.conjugate_gradient against numpy.linalg.solve, its oracle, and its reports
of non-convergence; native operators and Python callables."""

from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import assert_close
from refrl import _core, kernels, oracle
from strategies import st_spd_system

NATIVE = {np.float32: _core.DenseOperatorF32, np.float64: _core.DenseOperatorF64}


def _operators(A):
    """The same A as a Python callable and as a native operator."""
    return {"callable": lambda v: A @ v, "native": NATIVE[A.dtype.type](A)}


@pytest.mark.parametrize("kind", ["callable", "native"])
@given(system=st_spd_system(), damping=st.one_of(st.just(0.0), st.floats(0.0, 1.0)))
def test_conjugate_gradient_matches_solve(kind, system, damping):
    A, b = system
    n = len(b)
    got = kernels.conjugate_gradient(_operators(A)[kind], b, iters=3 * n, tol=0.0, damping=damping)
    want = np.linalg.solve(A + damping * np.eye(n), b)
    # exact arithmetic needs n steps; round-off is bounded by cond(A)·eps·‖x‖
    cond = np.linalg.cond(A + damping * np.eye(n))
    assert_close(got.x, want, rtol=0, atol=1e-12 * cond * (1 + np.abs(want).max()) * n, name="x")
    assert got.iterations <= 3 * n
    assert got.status in ("converged", "max_iterations")  # tol = 0: converged only if r = 0 exactly
    assert got.converged == (got.status == "converged")


@pytest.mark.parametrize("kind", ["callable", "native"])
@given(system=st_spd_system(well_conditioned=True), iters=st.integers(0, 12), damping=st.floats(0.0, 1.0))
def test_conjugate_gradient_matches_oracle(kind, system, iters, damping):
    """Same iterates as the literal loop: iterations, status, x and ‖r‖ after `iters` steps.

    Well-conditioned systems only: on ill-conditioned ones CG's trajectory depends on the
    rounding of each dot product, so two correct implementations may stop at different
    steps (test_conjugate_gradient_matches_solve covers those against numpy.linalg.solve).
    """
    A, b = system
    got = kernels.conjugate_gradient(_operators(A)[kind], b, iters=iters, tol=1e-10, damping=damping)
    want = oracle.conjugate_gradient(A, b, iters=iters, tol=1e-10, damping=damping)
    assert (got.iterations, got.status, got.converged) == (want.iterations, want.status, want.converged)
    scale = 1 + np.abs(want.x).max(initial=0.0)
    cond = np.linalg.cond(A + damping * np.eye(len(b)))
    assert_close(got.x, want.x, rtol=0, atol=1e-11 * cond * scale, name="x")
    assert got.residual_norm == pytest.approx(want.residual_norm, rel=1e-6, abs=1e-9 * cond * scale)


@given(system=st_spd_system(max_n=8, dtype=np.float32))
def test_conjugate_gradient_float32(system):
    A, b = system
    n = len(b)
    for op in _operators(A).values():
        got = kernels.conjugate_gradient(op, b, iters=4 * n, tol=0.0)
        assert got.x.dtype == np.float32
        want = np.linalg.solve(A.astype(np.float64), b.astype(np.float64))
        cond = np.linalg.cond(A.astype(np.float64))
        assert_close(got.x, want, rtol=0, atol=1e-4 * cond * (1 + np.abs(want).max()), name="x")


@pytest.mark.parametrize("kind", ["callable", "native"])
def test_conjugate_gradient_reports_indefinite_operator(kind):
    A = np.diag([1.0, -1.0])
    got = kernels.conjugate_gradient(_operators(A)[kind], np.array([1.0, 1.0]), iters=10)
    assert got.status == "not_positive_definite"
    assert not got.converged
    assert got.iterations == 0  # pᵀAp = 1 − 1 = 0 at the first direction
    np.testing.assert_array_equal(got.x, [0.0, 0.0])
    # negative definite after one good step: x is that step, not garbage
    B = np.diag([2.0, 1.0, -3.0])
    got = kernels.conjugate_gradient(_operators(B)[kind], np.array([1.0, 0.0, 0.0]) + [0, 0, 1e-3], iters=10)
    want = oracle.conjugate_gradient(B, np.array([1.0, 0.0, 1e-3]), iters=10)
    assert got.status == want.status
    assert got.iterations == want.iterations
    np.testing.assert_allclose(got.x, want.x, rtol=1e-12)


@pytest.mark.parametrize("kind", ["callable", "native"])
def test_conjugate_gradient_damping_makes_indefinite_solvable(kind):
    A = np.diag([1.0, -0.5])
    got = kernels.conjugate_gradient(_operators(A)[kind], np.array([1.0, 1.0]), iters=10, damping=1.0)
    assert got.converged
    np.testing.assert_allclose(got.x, [0.5, 2.0], rtol=1e-12)


@pytest.mark.parametrize("kind", ["callable", "native"])
def test_conjugate_gradient_stops_at_iteration_cap(kind, rng):
    M = rng.normal(size=(20, 20))
    A = M @ M.T + np.eye(20)
    got = kernels.conjugate_gradient(_operators(A)[kind], rng.normal(size=20), iters=3)
    assert (got.iterations, got.status, got.converged) == (3, "max_iterations", False)
    assert got.residual_norm > 0


@pytest.mark.parametrize("kind", ["callable", "native"])
def test_conjugate_gradient_zero_rhs(kind):
    got = kernels.conjugate_gradient(_operators(np.eye(3))[kind], np.zeros(3))
    assert (got.iterations, got.status, got.residual_norm) == (0, "converged", 0.0)
    np.testing.assert_array_equal(got.x, np.zeros(3))


def test_conjugate_gradient_native_operator_sets_the_dtype():
    op = _core.DenseOperatorF32(np.eye(2, dtype=np.float32) * 2)
    got = kernels.conjugate_gradient(op, np.array([2.0, 4.0]))  # float64 b, converted
    assert got.x.dtype == np.float32
    np.testing.assert_allclose(got.x, [1.0, 2.0])


class _Boom(Exception):
    pass


def test_conjugate_gradient_callable_exception_propagates():
    calls = []

    def op(v):
        calls.append(v.copy())
        if len(calls) == 2:
            raise _Boom("operator failed on its second call")
        return np.array([1.0, 2.0, 3.0]) * v  # needs more than one step

    with pytest.raises(_Boom, match="second call"):
        kernels.conjugate_gradient(op, np.array([1.0, 2.0, 3.0]), iters=5, tol=0.0)
    assert len(calls) == 2
    # and the interpreter is fine afterwards
    assert kernels.conjugate_gradient(lambda v: 2 * v, np.ones(2)).converged


@pytest.mark.parametrize(
    ("returned", "error", "match"),
    [
        (lambda v: v[:-1], ValueError, r"'operator' must return shape \(3,\)"),
        (lambda v: np.full_like(v, np.nan), ValueError, "'operator' returned NaN or inf"),
        (lambda v: np.ones(3, dtype=np.int64), TypeError, "'operator' must return a float array"),
        (lambda v: None, TypeError, "'operator' must return a float array"),
        (lambda v: "abc", TypeError, "'operator' must return a float array"),
        (lambda v: np.ones((3, 1)), ValueError, "'operator' must return shape"),
    ],
)
def test_conjugate_gradient_rejects_bad_callable_result(returned, error, match):
    with pytest.raises(error, match=match):
        kernels.conjugate_gradient(returned, np.array([1.0, 2.0, 3.0]))


def test_conjugate_gradient_callable_may_return_other_float_dtype_and_keep_v():
    kept = []

    def op(v):
        kept.append(v)  # the callable owns its argument: later iterations must not change it
        return (2 * v).astype(np.float32)

    got = kernels.conjugate_gradient(op, np.array([1.0, 2.0]), iters=5)
    np.testing.assert_allclose(got.x, [0.5, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(kept[0], [1.0, 2.0])


def test_conjugate_gradient_native_solve_is_thread_safe(rng):
    """Two native solves in two threads give the same answers as one after the other."""
    M = rng.normal(size=(60, 60))
    op = _core.DenseOperatorF64(M @ M.T + np.eye(60))
    bs = [rng.normal(size=60) for _ in range(2)]
    want = [kernels.conjugate_gradient(op, b, iters=200).x for b in bs]
    got = [None, None]

    def solve(i):
        got[i] = kernels.conjugate_gradient(op, bs[i], iters=200).x

    threads = [threading.Thread(target=solve, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def _progress_of_another_thread_during(call) -> int:
    """How many loop iterations a second Python thread completes while ``call()`` runs.

    The switch interval is made huge, so the running thread is never forced to hand over the GIL
    and the other thread (which gives the GIL up at every iteration, ``time.sleep(0)``) can run only
    while ``call`` itself has released it: if ``call`` holds the GIL throughout, the count is exactly 0,
    whatever the load of the machine.
    """
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1
            time.sleep(0)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    t = threading.Thread(target=spin)
    try:
        t.start()
        while count[0] == 0:  # the other thread is running (and now waits for the GIL at each step)
            time.sleep(0)
        before = count[0]
        call()
        return count[0] - before
    finally:
        stop.set()
        sys.setswitchinterval(old)
        t.join()


def test_conjugate_gradient_native_solve_releases_the_gil():
    """While a long native CG solve runs, another Python thread makes progress (with the GIL held
    it would make none: the control below shows the measure gives 0 for a call that holds it)."""
    n = 400
    op = _core.DenseOperatorF64(np.diag(np.geomspace(1.0, 1e10, n)))  # ill-conditioned: no early stop
    b = np.ones(n)

    def solve():  # the raw binding, as refrl.kernels.conjugate_gradient calls it after its checks
        res = _core.conjugate_gradient_f64(op, b, 600, 0.0, 0.0)
        assert res[1] == 600  # all iterations run

    assert _progress_of_another_thread_during(lambda: math.factorial(20_000)) == 0  # control: holds the GIL
    progress = 0
    for _ in range(50):  # on a loaded machine the other thread may not be scheduled during one solve
        progress = _progress_of_another_thread_during(solve)
        if progress:
            break
    assert progress > 0
