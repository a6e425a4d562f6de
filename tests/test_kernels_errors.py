"""Bad input to every entry point gives a clear ValueError/TypeError naming the argument.

Targeted tests pin the messages; hypothesis fuzzes each entry point (refrl.kernels and the raw
refrl._core bindings) with arbitrary shapes, dtypes, values and Python objects: a call either
raises a ValueError/TypeError whose message names one of the function's arguments, or succeeds and
returns what the oracle (refrl.oracle) returns on the same input — never a crash, another error or
silent garbage.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refrl import _core, kernels, native, oracle
from refrl.algos.trpo import step_direction, trpo_step

# ---------------------------------------------------------------------------------------------
# targeted: each check names the argument


def _gae_args(T=4, N=2, dtype=np.float64):
    z = np.zeros((T, N), dtype)
    f = np.zeros((T, N), bool)
    return {"rewards": z, "values": z, "next_values": z, "terminated": f, "truncated": f, "gamma": 0.99, "lam": 0.95}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"rewards": np.zeros((4, 2), np.int64)}, TypeError, r"gae: 'rewards' must be a float32 or float64 array, got dtype int64"),
        ({"rewards": np.zeros((4, 2), np.float16)}, TypeError, "'rewards' must be float32 or float64"),
        ({"rewards": np.zeros(4)}, ValueError, r"'rewards' must be 2-D \[T, N\], got shape \(4,\)"),
        ({"values": np.zeros((4,))}, ValueError, r"gae: 'values' must have shape \(T, N\)=\(4, 2\), got \(4,\)"),
        ({"next_values": np.zeros((3, 2))}, ValueError, "'next_values' must have shape"),
        ({"values": np.zeros((4, 2), object)}, TypeError, "'values' must be a float32 or float64 array, got dtype object"),
        ({"values": np.zeros((4, 2), complex)}, TypeError, "'values'"),
        ({"terminated": np.zeros((4, 2), "U1")}, TypeError, "'terminated' must be a bool array"),
        ({"truncated": np.full((4, 2), 2)}, ValueError, "'truncated' must be boolean"),
        ({"truncated": np.full((4, 2), np.nan)}, ValueError, "'truncated' must be boolean"),
        ({"terminated": np.zeros((2, 4), bool)}, ValueError, "'terminated' must have shape"),
        ({"gamma": float("nan")}, ValueError, "gae: 'gamma' must be finite, got nan"),
        ({"gamma": 1.5}, ValueError, "'gamma' must be <= 1.0, got 1.5"),
        ({"lam": -0.1}, ValueError, "'lam' must be >= 0.0"),
        ({"lam": float("inf")}, ValueError, "'lam' must be finite"),
        ({"lam": True}, TypeError, "'lam' must be a real number, got bool"),
        ({"gamma": "0.9"}, TypeError, "'gamma' must be a real number, got str"),
        ({"gamma": None}, TypeError, "'gamma'"),
        ({"rewards": None}, TypeError, "'rewards' must be an array, got None"),
        ({"rewards": [[1.0], [1.0, 2.0]]}, ValueError, "'rewards' could not be converted"),
        ({"rewards": np.full((4, 2), np.nan)}, ValueError, r"gae: 'rewards' contains NaN or inf \(at index \[0, 0\]\)"),
        ({"values": np.full((4, 2), np.inf)}, ValueError, "gae: 'values' contains NaN or inf"),
        ({"next_values": np.full((4, 2), np.inf)}, ValueError, "gae: 'next_values' contains NaN or inf"),
        ({"rewards": np.full((4, 2), 1e308)}, ValueError, "overflowed"),
    ],
)
def test_gae_rejects_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        kernels.gae(**{**_gae_args(), **change})


def _surr_args(B=5):
    return {"logp": np.zeros(B), "logp_old": np.zeros(B), "advantages": np.ones(B), "clip_range": 0.2}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"logp": np.zeros(5, np.int32)}, TypeError, "clipped_surrogate: 'logp' must be a float32 or float64 array"),
        ({"logp": np.zeros((5, 1))}, ValueError, r"'logp' must be 1-D \[B\], got shape \(5, 1\)"),
        ({"logp_old": np.zeros(4)}, ValueError, r"'logp_old' must have shape \(B,\)=\(5,\), got \(4,\)"),
        ({"advantages": np.zeros(5, bool)}, TypeError, "'advantages' must be a float32 or float64 array, got dtype bool"),
        ({"logp": np.zeros(0), "logp_old": np.zeros(0), "advantages": np.zeros(0)}, ValueError, "'logp' must not be empty"),
        ({"clip_range": 0.0}, ValueError, "'clip_range' must be > 0.0"),
        ({"clip_range": -0.2}, ValueError, "'clip_range' must be > 0.0"),
        ({"clip_range": float("nan")}, ValueError, "'clip_range' must be finite"),
        ({"clip_range": [0.2]}, TypeError, "'clip_range' must be a real number, got list"),
        ({"weights": np.array([1.0, -1.0, 1.0, 1.0, 1.0])}, ValueError, "'weights' must be >= 0"),
        ({"weights": np.zeros(5)}, ValueError, "'weights' must not all be zero"),
        ({"weights": np.full(5, np.nan)}, ValueError, "'weights' contains NaN or inf"),
        ({"weights": np.array([1.0, 1.0, np.nan, 1.0, 1.0])}, ValueError, "'weights' contains NaN or inf"),
        ({"weights": np.array([1.0, np.inf, 1.0, 1.0, 1.0])}, ValueError, "'weights' contains NaN or inf"),
        ({"weights": np.array([1.0, -0.5, np.nan, 1.0, 1.0])}, ValueError, "'weights' contains NaN or inf"),
        ({"weights": np.full(5, 1e308)}, ValueError, "'weights' sum overflows"),
        ({"weights": np.zeros(5, bool)}, ValueError, "'weights' must not all be zero"),
        ({"weights": np.ones(5, np.int64)}, TypeError, "'weights' must be a float32 or float64 array"),
        ({"weights": np.ones(4)}, ValueError, "'weights' must have shape"),
        ({"advantages": np.array([1.0, np.nan, 1.0, 1.0, 1.0])}, ValueError, r"'advantages' contains NaN or inf \(at index \[1\]\)"),
        ({"logp_old": np.array([0.0, 0.0, -np.inf, 0.0, 0.0])}, ValueError, "'logp_old' contains NaN or inf"),
        ({"logp": np.array([800.0, 0, 0, 0, 0])}, ValueError, r"exp\(logp - logp_old\) overflows float64"),
        ({"logp": np.array([100.0, 0, 0, 0, 0], np.float32)}, ValueError, "overflows float32"),
        ({"logp": np.zeros(5, np.float32), "advantages": np.full(5, 1e39)}, ValueError,
         "'advantages' has values outside the float32 range"),
    ],
)
def test_clipped_surrogate_rejects_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        kernels.clipped_surrogate(**{**_surr_args(), **change})


@pytest.mark.parametrize(
    ("operator", "b", "kwargs", "error", "match"),
    [
        (np.eye(2), np.ones(2), {}, TypeError, "conjugate_gradient: 'operator' must be a callable v -> A v"),
        (None, np.ones(2), {}, TypeError, "'operator' must be a callable"),
        (lambda v: v, np.ones((2, 2)), {}, ValueError, r"'b' must be 1-D \[n\], got shape \(2, 2\)"),
        (lambda v: v, np.ones(2, np.int64), {}, TypeError, "'b' must be a float32 or float64 array"),
        (lambda v: v, np.array([1.0, np.nan]), {}, ValueError, "'b' contains NaN or inf"),
        (lambda v: v, np.ones(2), {"iters": -1}, ValueError, "'iters' must be >= 0"),
        (lambda v: v, np.ones(2), {"iters": 2.5}, TypeError, "'iters' must be an integer, got float"),
        (lambda v: v, np.ones(2), {"tol": -1.0}, ValueError, "'tol' must be >= 0.0"),
        (lambda v: v, np.ones(2), {"damping": float("nan")}, ValueError, "'damping' must be finite"),
        (lambda v: v, np.ones(2), {"damping": -1.0}, ValueError, "'damping' must be >= 0.0"),
        (_core.DenseOperatorF64(np.eye(3)), np.ones(2), {}, ValueError, r"'b' must have shape \(operator.size,\)=\(3,\)"),
        (_core.DenseOperatorF64(np.eye(2) * 1e300), np.full(2, 1e300), {}, ValueError, "NaN or inf appeared"),
    ],
)
def test_conjugate_gradient_rejects_bad_input(operator, b, kwargs, error, match):
    with pytest.raises(error, match=match):
        kernels.conjugate_gradient(operator, b, **kwargs)


def test_dense_operator_rejects_non_square():
    with pytest.raises(ValueError, match="'matrix' must be a square 2-D array"):
        _core.DenseOperatorF64(np.ones((2, 3)))
    with pytest.raises(TypeError):  # noconvert: a float32 matrix is not silently cast
        _core.DenseOperatorF64(np.ones((2, 2), np.float32))


# ---------------------------------------------------------------------------------------------
# fuzz: arbitrary shapes, dtypes, values, objects

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_, np.complex128, object, "U2"]


def _any_array():
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)

    def arr(dtype):
        dt = np.dtype(dtype)
        if dt.kind == "O":
            return hnp.arrays(dt, shapes, elements=st.sampled_from([None, 1.0, "a", (1,)]))
        if dt.kind == "U":
            return hnp.arrays(dt, shapes, elements=st.text(alphabet="ab", max_size=2))
        return hnp.arrays(dt, shapes)

    def noncontig(a):
        return a.T if a.ndim >= 2 else (a[::-1] if a.ndim == 1 else a)

    base = st.sampled_from(DTYPES).flatmap(arr)
    return st.one_of(
        base,
        base.map(noncontig),
        st.none(),
        st.floats(),
        st.lists(st.floats(), max_size=4),
        st.lists(st.lists(st.floats(), max_size=3), max_size=3),  # maybe ragged
        st.text(max_size=3),
        st.builds(object),
    )


def _any_scalar():
    """Any scalar a caller might pass: floats, small and huge ints (beyond int64, beyond float),
    numpy numbers, bools, complex, str, None, a list."""
    return st.one_of(
        st.floats(), st.integers(-3, 3), st.booleans(), st.none(), st.text(max_size=2),
        st.complex_numbers(), st.floats(width=32).map(np.float32), st.just([0.5]),
        st.integers(2**63 - 2, 2**64 + 2), st.integers(-3, 5).map(np.int64), st.just(np.uint64(2**64 - 1)),
        st.just(10**400), st.just(np.True_),
    )


def _maybe_valid_array(shape):
    """Mostly well-typed arrays of the right shape (so fuzz reaches the deeper checks), some not."""
    return st.one_of(
        hnp.arrays(st.sampled_from([np.float32, np.float64]), shape),
        hnp.arrays(np.bool_, shape),
        _any_array(),
    )


def _names_an_argument(exc: Exception, fn: str, args: tuple[str, ...], also: tuple[str, ...] = ()) -> None:
    """The message starts with ``fn: '<one of args>'`` (or contains one of the ``also`` phrases)."""
    msg = str(exc)
    assert any(msg.startswith(f"{fn}: '{a}'") for a in args) or any(p in msg for p in also), msg


def _tol(dtype) -> float:
    """Relative tolerance of a kernel against the float64 oracle (float32 kernels round in float32)."""
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-9


def _assert_near(got, want, tol: float, scale: float, name: str) -> None:
    """|got − want| <= tol · scale elementwise (scale: the magnitude of the inputs, >= 1)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    assert np.isfinite(got).all(), f"{name}: not finite: {got}"
    err = np.abs(got - want)
    assert (err <= tol * scale).all(), f"{name}: {got} != oracle {want} (tol {tol} x scale {scale:g})"


def _scale(*arrays) -> float:
    return 1.0 + max((float(np.max(np.abs(np.asarray(a, np.float64)), initial=0.0)) for a in arrays), default=0.0)


@given(data=st.data(), T=st.integers(0, 5), N=st.integers(0, 4))
def test_gae_fuzz_only_clear_errors(data, T, N):
    args = [data.draw(_maybe_valid_array((T, N)), label=name) for name in
            ("rewards", "values", "next_values", "terminated", "truncated")]
    gamma = data.draw(st.one_of(st.floats(0, 1), _any_scalar()), label="gamma")
    lam = data.draw(st.one_of(st.floats(0, 1), _any_scalar()), label="lam")
    try:
        out = kernels.gae(*args, gamma, lam)
    except (ValueError, TypeError) as exc:
        _names_an_argument(exc, "gae", ("rewards", "values", "next_values", "terminated", "truncated", "gamma", "lam"))
    else:
        want = oracle.gae(*args, float(gamma), float(lam))
        # the recursion adds at most T terms of size |r| + |V| + |V'| (γ, λ ≤ 1)
        scale = (T + 1) * _scale(*args[:3])
        tol = _tol(out.advantages.dtype)
        _assert_near(out.advantages, want.advantages, tol, scale, "advantages")
        _assert_near(out.returns, want.returns, tol, scale, "returns")


@given(data=st.data(), B=st.integers(0, 6))
def test_clipped_surrogate_fuzz_only_clear_errors(data, B):
    args = [data.draw(_maybe_valid_array((B,)), label=name) for name in ("logp", "logp_old", "advantages")]
    clip = data.draw(st.one_of(st.floats(0.01, 1), _any_scalar()), label="clip_range")
    weights = data.draw(st.one_of(st.none(), _maybe_valid_array((B,))), label="weights")
    try:
        out = kernels.clipped_surrogate(*args, clip, weights)
    except (ValueError, TypeError) as exc:
        _names_an_argument(exc, "clipped_surrogate", ("logp", "logp_old", "advantages", "clip_range", "weights"),
                           also=("exp(logp - logp_old) overflows",))
    else:
        want = oracle.clipped_surrogate(*args, float(clip), weights)
        tol = _tol(out.grad_logp.dtype)
        r_max = want.ratio_max
        # every field is a weighted mean of terms of size <= r (1 + |A|) + |log r| + 1
        scale = _scale(args[2]) * (1.0 + r_max) + abs(np.log(want.ratio_min)) + abs(np.log(r_max))
        w = np.ones(B) if weights is None else np.asarray(weights, np.float64)
        for field in ("objective", "clip_fraction", "approx_kl", "ratio_min", "ratio_mean", "ratio_max"):
            _assert_near(getattr(out, field), getattr(want, field), tol, scale, field)
        _assert_near(out.grad_logp, want.grad_logp, tol, scale * w.max() / w.sum(), "grad_logp")


def _any_operator(n):
    """(operator, A): the operator to pass and, for the well-posed ones, its matrix A (else None)."""
    returns = st.one_of(
        st.just((lambda v: 2.0 * v, 2.0 * np.eye(n))),
        _any_array().map(lambda a: (lambda v: a, None)),
        st.just((lambda v: v.astype(np.float32), np.eye(n))),
        st.just((lambda v: 1 / 0, None)),
    )
    return st.one_of(
        returns,
        st.sampled_from([np.float32, np.float64]).map(
            lambda dt: ((_core.DenseOperatorF32 if dt == np.float32 else _core.DenseOperatorF64)(np.eye(n, dtype=dt)),
                        np.eye(n))
        ),
        _any_array().map(lambda a: (a, None)),
    )


@given(data=st.data(), n=st.integers(0, 4))
def test_conjugate_gradient_fuzz_only_clear_errors(data, n):
    operator, A = data.draw(_any_operator(n), label="operator")
    b = data.draw(_maybe_valid_array((n,)), label="b")
    iters = data.draw(st.one_of(st.integers(0, 5), _any_scalar()), label="iters")
    tol = data.draw(st.one_of(st.just(1e-10), _any_scalar()), label="tol")
    damping = data.draw(st.one_of(st.just(0.0), _any_scalar()), label="damping")
    try:
        out = kernels.conjugate_gradient(operator, b, iters, tol, damping)
    except ZeroDivisionError:
        pass  # the callable's own exception, propagated unchanged
    except (ValueError, TypeError) as exc:
        _names_an_argument(exc, "conjugate_gradient", ("operator", "b", "iters", "tol", "damping"),
                           also=("NaN or inf appeared",))
    else:
        assert out.x.shape == np.shape(b)
        assert out.status in ("converged", "max_iterations", "not_positive_definite")
        if A is not None:  # a well-posed system (A + μI) x = b, A = cI: the oracle's x (one CG step solves it)
            want = oracle.conjugate_gradient(A, b, int(iters), float(tol), float(damping))
            _assert_near(out.x, want.x, _tol(out.x.dtype), _scale(b, want.x), "x")
            assert out.iterations == want.iterations or out.status == want.status == "converged"


_CORE_CALLS = {
    "gae": lambda a, s: getattr(_core, f"gae_{s}")(a[0], a[1], a[2], a[3], a[4], 0.9, 0.9),
    "clipped_surrogate": lambda a, s: getattr(_core, f"clipped_surrogate_{s}")(a[0], a[1], a[2], a[3], 0.2),
    "conjugate_gradient": lambda a, s: getattr(_core, f"conjugate_gradient_{s}")(
        (_core.DenseOperatorF32 if s == "f32" else _core.DenseOperatorF64)(np.eye(2, dtype=a[0].dtype)
                                                                          if isinstance(a[0], np.ndarray) and a[0].dtype.kind == "f" and a[0].dtype.itemsize in (4, 8) else np.eye(2, dtype=np.float32 if s == "f32" else np.float64)),
        a[1], 3, 1e-10, 0.0),
    "conjugate_gradient_callable": lambda a, s: getattr(_core, f"conjugate_gradient_callable_{s}")(
        lambda v: a[0], a[1], 3, 1e-10, 0.0),
    "adam_step": lambda a, s: getattr(_core, f"adam_step_{s}")(a[0], a[1], a[2], a[3], 1, 1e-3, 0.9, 0.999, 1e-5),
}


_CORE_ARGS = {
    "gae": ("rewards", "values", "next_values", "terminated", "truncated"),
    "clipped_surrogate": ("logp", "logp_old", "advantages", "weights"),
    "conjugate_gradient": ("operator", "b", "matrix"),
    "conjugate_gradient_callable": ("operator", "b"),
    "adam_step": ("params", "grads", "'m'", "'v'"),
}


def _checked_call(name, a):
    """The refrl.kernels call matching ``_CORE_CALLS[name]`` on the same arrays, or None if it refuses them."""
    try:
        if name == "gae":
            return kernels.gae(a[0], a[1], a[2], a[3], a[4], 0.9, 0.9)
        if name == "clipped_surrogate":
            return kernels.clipped_surrogate(a[0], a[1], a[2], 0.2, a[3])
        if name == "adam_step":
            params, m, v = (np.array(x, copy=True) for x in (a[0], a[2], a[3]))
            kernels.adam_step(params, a[1], m, v, 1, 1e-3, 0.9, 0.999, 1e-5)
            return None  # in place: compared in test_optim.py; here only refused-or-not matters
    except (ValueError, TypeError):
        return None
    return None  # conjugate gradient: the operator differs from the raw call's


def _as_tuple(x):
    return tuple(x) if isinstance(x, tuple) else (x,)


@pytest.mark.parametrize("suffix", ["f32", "f64"])
@pytest.mark.parametrize("name", sorted(_CORE_CALLS))
@given(args=st.lists(st.one_of(_any_array(), hnp.arrays(st.sampled_from([np.float32, np.float64, np.uint8]),
                                                        hnp.array_shapes(max_dims=2, max_side=4))),
                     min_size=5, max_size=5))
def test_core_bindings_fuzz_only_clear_errors(name, suffix, args):
    """The raw bindings, called without refrl.kernels' checks, never read out of bounds: arguments of
    the wrong type are refused by pybind11 (TypeError listing the signature), a wrong shape by the
    binding's own check (ValueError naming the argument), and an accepted call gives the same result
    as the same call through refrl.kernels (itself held to the oracle) whenever refrl.kernels accepts it."""
    try:
        got = _CORE_CALLS[name](args, suffix)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert "incompatible function arguments" in msg or "incompatible constructor arguments" in msg \
            or any(arg in msg for arg in _CORE_ARGS[name]), msg
        return
    want = _checked_call(name, args)
    if want is None:
        return  # refrl.kernels refuses this input (e.g. NaN): the raw binding's result is unspecified
    for g, w in zip(_as_tuple(got), _as_tuple(want), strict=False):
        if isinstance(w, np.ndarray):
            np.testing.assert_allclose(np.asarray(g, np.float64), w, rtol=1e-5, atol=1e-5, equal_nan=True)


# ------------------------------------------------------------------ adam_step
def _adam_args(n=4, dtype=np.float64):
    return {"params": np.zeros(n, dtype), "grads": np.ones(n, dtype), "m": np.zeros(n, dtype), "v": np.zeros(n, dtype),
            "t": 1, "lr": 1e-3}


def _read_only(n):
    a = np.zeros(n)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"params": [0.0, 0.0, 0.0, 0.0]}, TypeError, "adam_step: 'params' must be a numpy array, got list"),
        ({"params": np.zeros(4, np.int64)}, TypeError, "'params' must be float32 or float64, got dtype int64"),
        ({"params": np.zeros((2, 2))}, ValueError, r"'params' must be 1-D \[P\], got shape \(2, 2\)"),
        ({"grads": np.ones(4, np.float32)}, TypeError, "'grads' must have dtype float64 \\(that of 'params'\\), got float32"),
        ({"m": np.zeros(3)}, ValueError, r"'m' must have shape \(4,\), got \(3,\)"),
        ({"v": np.zeros(8)[::2]}, ValueError, "'v' must be C-contiguous"),
        ({"params": _read_only(4)}, ValueError, "'params' must be writeable"),
        ({"t": 0}, ValueError, "'t' must be >= 1"),
        ({"t": 1.5}, TypeError, "'t' must be an integer, got float"),
        ({"lr": -1.0}, ValueError, "'lr' must be >= 0.0"),
        ({"lr": float("nan")}, ValueError, "'lr' must be finite"),
        ({"beta1": 1.0}, ValueError, "'beta1' must be < 1.0"),
        ({"beta2": -0.1}, ValueError, "'beta2' must be >= 0.0"),
        ({"eps": 0.0}, ValueError, "'eps' must be > 0.0"),
    ],
)
def test_adam_step_rejects_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        kernels.adam_step(**{**_adam_args(), **change})


def test_adam_step_rejects_overlapping_arrays():
    buf = np.zeros(8)
    args = _adam_args()
    args["m"], args["v"] = buf[0:4], buf[2:6]
    with pytest.raises(ValueError, match="adam_step: 'params', 'grads', 'm' and 'v' must not share memory"):
        kernels.adam_step(**args)
    np.testing.assert_array_equal(buf, 0.0)  # nothing written


def _adam_well_scaled(arrays, scalars) -> bool:
    """Inputs on which the float32 kernel is held to the float64 oracle: magnitudes in {0} ∪ [1e-6, 1e6],
    eps >= 1e-8, lr <= 1e3, β's <= 1 - 1e-6. Outside (g² underflowing to 0 in float32 next to a
    subnormal eps, say) float32 rounding alone moves the step by more than a float32 tolerance;
    there only the errors and the finiteness of an accepted step are asserted."""
    def ok(a):
        a = np.abs(np.asarray(a, np.float64))
        return bool(np.all((a == 0) | ((a >= 1e-6) & (a <= 1e6))))
    return (all(ok(a) for a in arrays.values()) and float(scalars["eps"]) >= 1e-8 and float(scalars["lr"]) <= 1e3
            and max(float(scalars["beta1"]), float(scalars["beta2"])) <= 1 - 1e-6)


_ADAM_ARGS = ("params", "grads", "m", "v", "t", "lr", "beta1", "beta2", "eps", "check")
_ADAM_CAUSES = ("the moment 'm' overflows", "the moment 'v' overflows", "the update of 'params' overflows",
                "must not share memory")


@given(data=st.data(), n=st.integers(0, 5))
def test_adam_step_fuzz_only_clear_errors(data, n):
    """Any arrays and scalars: a named TypeError/ValueError/OverflowError and nothing written, or the
    oracle's step (on well-scaled inputs; a finite step on any other)."""
    if data.draw(st.booleans(), label="one well-scaled dtype"):  # reaches the oracle comparison often
        dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
        elements = st.one_of(st.just(0.0), st.floats(1e-6, 1e6), st.floats(-1e6, -1e-6))
        arrays = {k: data.draw(hnp.arrays(dtype, (n,), elements=elements), label=k) for k in ("params", "grads", "m", "v")}
        arrays["v"] = np.abs(arrays["v"])
    else:
        arrays = {k: data.draw(_maybe_valid_array((n,)), label=k) for k in ("params", "grads", "m", "v")}
    valid_scalars = {"t": st.one_of(st.integers(1, 10**6), st.integers(1, 50).map(np.int32), st.just(2**63 - 1)),
                     "lr": st.floats(0, 10), "beta1": st.floats(0, 0.999999), "beta2": st.floats(0, 0.999999),
                     "eps": st.floats(1e-8, 1e-1)}
    mixed = data.draw(st.booleans(), label="mixed scalars")
    scalars = {k: data.draw(st.one_of(valid, _any_scalar()) if mixed else valid, label=k)
               for k, valid in valid_scalars.items()}
    before = {k: a.copy() for k, a in arrays.items() if isinstance(a, np.ndarray)}
    try:
        kernels.adam_step(**arrays, **scalars)
    except (ValueError, TypeError, OverflowError) as exc:
        _names_an_argument(exc, "adam_step", _ADAM_ARGS, also=_ADAM_CAUSES)
        for k, b in before.items():  # a refused step writes nothing
            np.testing.assert_array_equal(arrays[k], b, err_msg=k)
        event(f"refused: {type(exc).__name__}")
        return
    p, m, v = (arrays[k] for k in ("params", "m", "v"))
    assert np.isfinite(p).all() and np.isfinite(m).all() and np.isfinite(v).all() and (v >= 0).all()
    if not _adam_well_scaled(before, scalars):
        event("accepted, finite")
        return
    event("accepted, equal to the oracle")
    t, lr, b1, b2, eps = (scalars[k] for k in ("t", "lr", "beta1", "beta2", "eps"))
    want = oracle.adam_step(before["params"], arrays["grads"], before["m"], before["v"], int(t), float(lr), float(b1),
                            float(b2), float(eps))
    tol = _tol(p.dtype)
    _assert_near(p, want[0], tol, _scale(before["params"], want[0]), "params")
    _assert_near(m, want[1], tol, _scale(before["m"], arrays["grads"]), "m")
    _assert_near(v, want[2], tol, _scale(before["v"], want[2]), "v")


# ---------------------------------------------------------------------------------------------
# Adam: values the step cannot take (each reproduced on the unchecked step first), atomicity

def _adam_state(dtype, n=3):
    return (np.zeros(n, dtype), np.ones(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype))


def _adam_case(dtype, **change):
    params, grads, m, v = _adam_state(dtype)
    args = {"params": params, "grads": grads, "m": m, "v": v, "t": 1, "lr": 1e-3}
    args.update(change)
    return args


_F32_SQRT_MAX = float(np.sqrt(np.finfo(np.float32).max))  # 1.8e19: g² overflows float32 beyond it


@pytest.mark.parametrize(
    ("dtype", "change", "error", "match"),
    [
        # a negative second moment: √v is NaN (the unchecked kernel writes NaN into params)
        (np.float64, {"v": -np.ones(3)}, ValueError, r"adam_step: 'v' must be >= 0 \(a second moment\), got min -1"),
        (np.float32, {"v": np.array([0, -1e-3, 0], np.float32)}, ValueError, "adam_step: 'v' must be >= 0"),
        # float32 gradients near 1e20: g² overflows, v becomes inf and the step a silent 0
        (np.float32, {"grads": np.full(3, 1e20, np.float32)}, OverflowError,
         r"adam_step: 'grads' too large for float32: g² overflows \(max \|g\| = 1e\+20 > 1.84e\+19\)"),
        (np.float64, {"grads": np.full(3, 1e160)}, OverflowError, "adam_step: 'grads' too large for float64"),
        # NaN/inf in any array (NaN parameters, moments or gradients)
        (np.float64, {"grads": np.array([1.0, np.nan, 1.0])}, ValueError, r"adam_step: 'grads' contains NaN or inf \(at index \[1\]\)"),
        (np.float32, {"m": np.array([0, 0, np.inf], np.float32)}, ValueError, "adam_step: 'm' contains NaN or inf"),
        (np.float64, {"v": np.array([np.nan, 0, 0])}, ValueError, "adam_step: 'v' contains NaN or inf"),
        (np.float64, {"params": np.array([0, -np.inf, 0])}, ValueError, "adam_step: 'params' contains NaN or inf"),
        # a step that overflows the parameters: huge first moment, no second moment
        (np.float32, {"m": np.full(3, 1e38, np.float32), "grads": np.zeros(3, np.float32), "lr": 1.0}, OverflowError,
         r"adam_step: the update of 'params' overflows float32"),
        # scalars beyond the kernel's dtype
        (np.float32, {"lr": 1e300}, ValueError, r"adam_step: 'lr' = 1e\+300 overflows float32"),
        (np.float32, {"eps": 1e-50}, ValueError, r"adam_step: 'eps' = 1e-50 underflows to 0 in float32"),
        (np.float32, {"lr": 1e38, "beta1": 0.99}, ValueError, r"adam_step: 'lr' / \(1 - beta1\^t\) = .* overflows float32"),
        # integers the compiled core cannot take (64-bit), numpy integers, booleans
        (np.float64, {"t": 2**63}, ValueError, r"adam_step: 't' must be <= 9223372036854775807, got 9223372036854775808"),
        (np.float64, {"t": 10**30}, ValueError, "adam_step: 't' must be <= 9223372036854775807"),
        (np.float64, {"t": np.uint64(2**64 - 1)}, ValueError, "adam_step: 't' must be <= 9223372036854775807"),
        (np.float64, {"t": np.True_}, TypeError, "adam_step: 't' must be an integer, got bool"),
        (np.float64, {"lr": 10**400}, ValueError, "adam_step: 'lr' must be finite"),
        (np.float64, {"beta1": 1j}, TypeError, "adam_step: 'beta1' must be a real number, got complex"),
        (np.float64, {"check": "yes"}, TypeError, "adam_step: 'check' must be a bool, got str"),
        (np.float64, {"check": 1}, TypeError, "adam_step: 'check' must be a bool, got int"),
        (np.float64, {"grads": np.ones(3, complex)}, TypeError, "adam_step: 'grads' must have dtype float64"),
        (np.float64, {"params": np.array(["a", "b", "c"])}, TypeError, "adam_step: 'params' must be float32 or float64"),
    ],
)
def test_adam_step_refuses_what_it_cannot_step_and_writes_nothing(dtype, change, error, match):
    args = _adam_case(dtype, **change)
    before = {k: np.array(args[k], copy=True) for k in ("params", "m", "v") if isinstance(args[k], np.ndarray)}
    with pytest.raises(error, match=match):
        kernels.adam_step(**args)
    for k, b in before.items():
        np.testing.assert_array_equal(args[k], b, err_msg=f"'{k}' changed by a refused step")


@pytest.mark.parametrize("t", [2**63, np.uint64(2**63), 10**20])
def test_adam_step_unchecked_path_names_a_huge_t(t):
    """check=False skips the Python checks, yet an argument the compiled core refuses is still
    named (pybind11's generic "incompatible function arguments" never reaches the caller)."""
    args = _adam_case(np.float64, t=t)
    with pytest.raises(ValueError, match="adam_step: 't' must be <= 9223372036854775807"):
        kernels.adam_step(**args, check=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_step_at_the_edges_equals_the_oracle(dtype):
    """The largest accepted values step exactly as the oracle does: float32 gradients just below
    √max, a numpy integer t, the largest t, β's next to 1."""
    g_edge = np.array([_F32_SQRT_MAX * 0.99, -3.0, 1e-30], dtype)
    cases = [
        dict(grads=g_edge, t=1, lr=1e-3),
        dict(grads=np.array([1.0, -2.0, 3.0], dtype), t=np.int64(7), lr=0.1),
        dict(grads=np.array([1.0, -2.0, 3.0], dtype), t=2**63 - 1, lr=0.1, beta1=0.5, beta2=0.75),
        dict(grads=np.array([1.0, -2.0, 3.0], dtype), t=1, lr=1e-3, beta1=1 - 1e-9, beta2=1 - 1e-12),
    ]
    for case in cases:
        params = np.array([0.5, -0.25, 2.0], dtype)
        m = np.array([0.1, 0.0, -0.1], dtype)
        v = np.array([0.0, 1.0, 4.0], dtype)
        want = oracle.adam_step(params, case["grads"], m, v, int(case["t"]), case["lr"],
                                case.get("beta1", 0.9), case.get("beta2", 0.999))
        kernels.adam_step(params, case["grads"], m, v, case["t"], case["lr"], case.get("beta1", 0.9),
                          case.get("beta2", 0.999))
        for got, w, name in zip((params, m, v), want, ("params", "m", "v"), strict=True):
            _assert_near(got, w, _tol(dtype), _scale(w), name)


# ---------------------------------------------------------------------------------------------
# conjugate gradient: integers and damping beyond the kernel's dtype


@pytest.mark.parametrize(
    ("kwargs", "b_dtype", "error", "match"),
    [
        ({"iters": 2**63}, np.float64, ValueError, r"conjugate_gradient: 'iters' must be <= 9223372036854775807"),
        ({"iters": np.uint64(2**64 - 1)}, np.float64, ValueError, "'iters' must be <= 9223372036854775807"),
        ({"iters": np.True_}, np.float64, TypeError, "'iters' must be an integer, got bool"),
        ({"damping": 1e300}, np.float32, ValueError, r"conjugate_gradient: 'damping' = 1e\+300 overflows float32"),
        ({"tol": 10**400}, np.float64, ValueError, "conjugate_gradient: 'tol' must be finite"),
        ({"damping": "0.1"}, np.float64, TypeError, "'damping' must be a real number, got str"),
    ],
)
def test_conjugate_gradient_names_out_of_range_scalars(kwargs, b_dtype, error, match):
    op = (_core.DenseOperatorF32 if b_dtype == np.float32 else _core.DenseOperatorF64)(np.eye(2, dtype=b_dtype))
    for operator in (op, lambda v: v):
        with pytest.raises(error, match=match):
            kernels.conjugate_gradient(operator, np.ones(2, b_dtype), **kwargs)


def test_conjugate_gradient_takes_numpy_integer_iters():
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    b = np.array([1.0, -1.0])
    got = kernels.conjugate_gradient(_core.DenseOperatorF64(A), b, iters=np.int32(2), tol=0.0)
    want = oracle.conjugate_gradient(A, b, 2, 0.0)
    _assert_near(got.x, want.x, 1e-12, 1.0, "x")
    assert got.iterations == want.iterations


# ---------------------------------------------------------------------------------------------
# the Fisher operator: fisher_operator / fisher_vector_product, op(v) and op.damping


def _small_policy(dtype=np.float64, kind="discrete", seed=0):
    from gymnasium import spaces

    from refrl.policy import ActorCritic

    act_space = spaces.Discrete(3) if kind == "discrete" else spaces.Box(-1.0, 1.0, (2,))
    pol = ActorCritic(spaces.Box(-np.inf, np.inf, (4,)), act_space, net_arch=(5,), dtype=dtype,
                      rng=np.random.default_rng(seed))
    obs = np.random.default_rng(seed + 1).standard_normal((6, 4)).astype(dtype)
    return pol, obs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fisher_vector_product_refuses_damping_beyond_the_policy_dtype(dtype):
    """damping = 1e300 on a float32 policy used to give F v = inf everywhere, unchecked."""
    pol, obs = _small_policy(dtype)
    v = np.ones(pol.n_policy_params, dtype)
    if dtype == np.float32:
        with pytest.raises(ValueError, match=r"fisher_vector_product: 'damping' = 1e\+300 overflows float32"):
            native.fisher_vector_product(pol, obs, v, damping=1e300)
        with pytest.raises(ValueError, match=r"fisher_operator: 'damping' = 1e\+300 overflows float32"):
            native.fisher_operator(pol, obs, damping=1e300)
    # finite damping, but λ v overflows the dtype: an OverflowError naming both
    big = float(np.finfo(dtype).max) / 2
    with pytest.raises(OverflowError, match=r"fisher_vector_product: F v \+ damping·v overflows .*'damping'.*'v'"):
        native.fisher_vector_product(pol, obs, np.full(pol.n_policy_params, 4.0, dtype), damping=big)


def test_fisher_vector_product_names_policy_isa_and_huge_damping_ints():
    pol, obs = _small_policy()
    v = np.ones(pol.n_policy_params)
    with pytest.raises(ValueError, match="fisher_vector_product: 'damping' must be finite"):
        native.fisher_vector_product(pol, obs, v, damping=10**400)
    with pytest.raises(TypeError, match="fisher_vector_product: 'damping' must be a real number, got complex"):
        native.fisher_vector_product(pol, obs, v, damping=0.1 + 0j)
    with pytest.raises(TypeError, match="fisher_vector_product: 'v' must be a float32 or float64 array, got dtype complex128"):
        native.fisher_vector_product(pol, obs, v.astype(complex))
    with pytest.raises(TypeError, match="fisher_operator: 'isa' must be a str, got int"):
        native.fisher_operator(pol, obs, isa=5)


@pytest.mark.parametrize(
    ("subsample", "error", "match"),
    [
        (2**63, ValueError, r"fisher_operator: 'subsample' must be <= 9223372036854775807, got 9223372036854775808"),
        (np.uint64(2**64 - 1), ValueError, "'subsample' must be <= 9223372036854775807"),
        (True, TypeError, "'subsample' must be an integer, got bool"),
        ("5", TypeError, "'subsample' must be an integer, got str"),
    ],
)
def test_fisher_operator_names_a_subsample_it_cannot_take(subsample, error, match):
    pol, obs = _small_policy()
    with pytest.raises(error, match=match):
        native.fisher_operator(pol, obs, subsample=subsample)


def test_fisher_operator_takes_numpy_integers_and_the_largest_subsample():
    pol, obs = _small_policy()
    v = np.linspace(-1, 1, pol.n_policy_params)
    for k in (np.int64(2), np.uint8(3), 2**63 - 1):
        got = native.fisher_operator(pol, obs, subsample=k)(v)
        want = oracle.fisher_vector_product(pol, obs, v, subsample=int(k))
        _assert_near(got, want, 1e-10, _scale(want, v), f"F v (subsample={k!r})")


@pytest.mark.parametrize(
    ("v", "error", "match"),
    [
        ("complex", TypeError, r": 'v' must be a float32 or float64 array, got dtype complex128"),
        ("str", TypeError, r": 'v' must be a float32 or float64 array, got dtype <U"),
        ("object", TypeError, r": 'v' must be a float32 or float64 array, got dtype object"),
        ("int", TypeError, r": 'v' must be a float32 or float64 array, got dtype int64"),
        ("nan", ValueError, r": 'v' contains NaN or inf \(at index \[1\]\)"),
        ("inf", ValueError, r": 'v' contains NaN or inf"),
        ("short", ValueError, r": 'v' must have shape \(op.size,\)=\(\d+,\), got \(\d+,\)"),
        ("2-D", ValueError, r": 'v' must have shape \(op.size,\)"),
        ("None", TypeError, r": 'v' must be an array, got None"),
        ("beyond f32", ValueError, r": 'v' has values outside the float32 range"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fisher_operator_call_refuses_what_it_cannot_multiply(v, error, match, dtype):
    """op(v) used to accept complex (imaginary part dropped), str and NaN vectors."""
    pol, obs = _small_policy(dtype)
    op = native.fisher_operator(pol, obs)
    n = op.size
    bad = {
        "complex": np.ones(n, complex), "str": np.array(["1"] * n), "object": np.ones(n, object),
        "int": np.ones(n, np.int64), "nan": np.array([0.0, np.nan] + [0.0] * (n - 2)), "inf": np.full(n, np.inf),
        "short": np.ones(n - 1), "2-D": np.ones((n, 1)), "None": None, "beyond f32": np.full(n, 1e300),
    }[v]
    if v == "beyond f32" and dtype == np.float64:
        bad = np.full(n, np.inf)
        match = r": 'v' contains NaN or inf"
    with pytest.raises(error, match=type(op).__name__ + match):
        op(bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fisher_operator_call_reports_an_overflowing_product(dtype):
    pol, obs = _small_policy(dtype)
    op = native.fisher_operator(pol, obs, damping=1.0)
    with pytest.raises(OverflowError, match=type(op).__name__ + r": F v \+ damping·v overflows"):
        op(np.full(op.size, float(np.finfo(dtype).max) / 2, dtype))


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (-5, ValueError, r": 'damping' must be >= 0.0, got -5.0"),
        (-1e-300, ValueError, r": 'damping' must be >= 0.0"),
        (float("nan"), ValueError, r": 'damping' must be finite, got nan"),
        (float("inf"), ValueError, r": 'damping' must be finite, got inf"),
        (10**400, ValueError, r": 'damping' must be finite"),
        ("0.1", TypeError, r": 'damping' must be a real number, got str"),
        (True, TypeError, r": 'damping' must be a real number, got bool"),
        (0.1j, TypeError, r": 'damping' must be a real number, got complex"),
        (None, TypeError, r": 'damping' must be a real number, got NoneType"),
    ],
)
def test_fisher_operator_damping_attribute_is_checked(value, error, match):
    """op.damping = -5 used to be accepted (F + λI then not positive definite)."""
    pol, obs = _small_policy()
    op = native.fisher_operator(pol, obs, damping=0.25)
    with pytest.raises(error, match=type(op).__name__ + match):
        op.damping = value
    assert op.damping == 0.25


def test_fisher_operator_damping_beyond_float32_is_refused_and_numpy_scalars_are_taken():
    pol, obs = _small_policy(np.float32)
    op = native.fisher_operator(pol, obs)
    with pytest.raises(ValueError, match=r"FisherOperatorF32: 'damping' = 1e\+300 overflows float32"):
        op.damping = 1e300
    v = np.linspace(-1, 1, op.size).astype(np.float32)
    op.damping = np.float64(0.5)
    assert op.damping == 0.5
    want = oracle.fisher_vector_product(pol, obs, v, damping=0.5)
    _assert_near(op(v), want, 1e-4, _scale(want, v), "F v + 0.5 v")
    op.damping = np.int64(2)  # an integer damping is a number like any other
    assert op.damping == 2.0


def test_checked_fisher_operator_is_still_native_for_conjugate_gradient():
    """The checks live on the Python side: the operator is still a native LinearOperator, so the
    whole CG solve runs in C++, and its result is the oracle's."""
    pol, obs = _small_policy()
    op = native.fisher_operator(pol, obs, damping=0.1)
    assert isinstance(op, _core.LinearOperatorF64) and isinstance(op, _core.FisherOperatorF64)
    g = np.linspace(-1, 1, op.size)
    got = kernels.conjugate_gradient(op, g, iters=5, tol=0.0)
    want = oracle.conjugate_gradient(lambda v: oracle.fisher_vector_product(pol, obs, v, damping=0.1), g, 5, 0.0)
    _assert_near(got.x, want.x, 1e-9, _scale(want.x, g), "x")


# ---------------------------------------------------------------------------------------------
# the native acting path: act / act_and_clip


@pytest.mark.parametrize("fn", ["act", "act_and_clip"])
@pytest.mark.parametrize("kind", ["discrete", "box"])
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"policy": object()}, TypeError, r": 'policy' must be a refrl.policy.ActorCritic, got object"),
        ({"rng": 42}, TypeError, r": 'rng' must be a numpy.random.Generator, got int"),
        ({"rng": np.random.RandomState(0)}, TypeError, r": 'rng' must be a numpy.random.Generator, got RandomState"),
        ({"obs": np.ones((2, 4), complex)}, TypeError, r": 'obs' must be a real numeric array, got dtype complex128"),
        ({"obs": np.array([["a"] * 4] * 2)}, TypeError, r": 'obs' must be a real numeric array, got dtype <U1"),
        ({"obs": [[1.0, 2.0], [3.0]]}, ValueError, r": 'obs' could not be converted to an array"),
        ({"obs": None}, TypeError, r": 'obs' must be an array, got None"),
    ],
)
def test_native_act_names_every_bad_argument(fn, kind, change, error, match):
    pol, obs = _small_policy(np.float32, kind)
    args = {"policy": pol, "obs": obs, "rng": np.random.default_rng(0)}
    args.update(change)
    with pytest.raises(error, match=fn + match):
        getattr(native, fn)(**args)


@pytest.mark.parametrize("deterministic", ["yes", 1, None])
def test_native_act_deterministic_must_be_a_bool(deterministic):
    pol, obs = _small_policy(np.float32)
    with pytest.raises(TypeError, match="act: 'deterministic' must be a bool, got"):
        native.act(pol, obs, np.random.default_rng(0), deterministic)


@pytest.mark.parametrize("kind", ["discrete", "box"])
def test_native_act_on_valid_input_equals_the_numpy_path(kind):
    """The checks change nothing for valid calls: the NumPy reference's draws and values."""
    pol, obs = _small_policy(np.float32, kind)
    for deterministic in (False, True, np.bool_(True)):
        got = native.act(pol, obs, np.random.default_rng(7), deterministic)
        want = pol.act(obs, np.random.default_rng(7), bool(deterministic))
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=2e-5, atol=2e-5)
    got = native.act_and_clip(pol, obs.tolist(), np.random.default_rng(3))  # a nested list is an array too
    a, logp, values = pol.act(obs, np.random.default_rng(3))
    for g, w in zip(got, (a, pol.clip_actions(a), logp, values), strict=True):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=2e-5, atol=2e-5)


# ---------------------------------------------------------------------------------------------
# trpo_step / step_direction: the user's arguments, named as the user wrote them


def _trpo_problem():
    pol, obs = _small_policy()
    actions, logp_old, _ = pol.act(obs, np.random.default_rng(2))
    adv = np.random.default_rng(3).standard_normal(len(obs))
    g = np.linspace(-0.1, 0.1, pol.n_policy_params)
    return pol, {"obs": obs, "actions": actions, "logp_old": logp_old, "adv": adv, "g": g, "max_kl": 0.01}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"cg_iters": 2**63}, ValueError, r"trpo_step: 'cg_iters' must be <= 9223372036854775807"),
        ({"cg_iters": -1}, ValueError, r"trpo_step: 'cg_iters' must be >= 0"),
        ({"cg_iters": np.True_}, TypeError, r"trpo_step: 'cg_iters' must be an integer, got bool"),
        ({"subsample": 2**63}, ValueError, r"trpo_step: 'subsample' must be <= 9223372036854775807"),
        ({"subsample": 0}, ValueError, r"trpo_step: 'subsample' must be >= 1"),
        ({"line_search_max_iter": 2**63}, ValueError, r"trpo_step: 'line_search_max_iter' must be <= 9223372036854775807"),
        ({"line_search_max_iter": 2.0}, TypeError, r"trpo_step: 'line_search_max_iter' must be an integer, got float"),
        ({"cg_damping": -0.1}, ValueError, r"trpo_step: 'cg_damping' must be >= 0.0"),
        ({"cg_damping": "0.1"}, TypeError, r"trpo_step: 'cg_damping' must be a real number, got str"),
        ({"cg_tol": float("nan")}, ValueError, r"trpo_step: 'cg_tol' must be finite"),
        ({"max_kl": "0.01"}, TypeError, r"trpo_step: 'max_kl' must be a real number, got str"),
        ({"max_kl": True}, TypeError, r"trpo_step: 'max_kl' must be a real number, got bool"),
        ({"max_kl": 1j}, TypeError, r"trpo_step: 'max_kl' must be a real number, got complex"),
        ({"line_search_shrink": None}, TypeError, r"trpo_step: 'line_search_shrink' must be a real number, got NoneType"),
        ({"adv": "abc"}, TypeError, r"trpo_step: 'adv' must be a float32 or float64 array"),
        ({"adv": np.ones(6, complex)}, TypeError, r"trpo_step: 'adv' must be a float32 or float64 array, got dtype complex128"),
        ({"logp_old": None}, TypeError, r"trpo_step: 'logp_old' must be an array, got None"),
        ({"g": [0.0] * 3}, ValueError, r"trpo_step: 'g' must have shape"),
        ({"g": "g"}, TypeError, r"trpo_step: 'g' must be a float32 or float64 array"),
        ({"obs": None}, TypeError, r"trpo_step: 'obs' must be an array, got None"),
        ({"obs": 3.0}, ValueError, r"trpo_step: 'obs' must hold a batch \[B, \.\.\.\], got shape \(\)"),
    ],
)
def test_trpo_step_names_every_user_argument(change, error, match):
    pol, p = _trpo_problem()
    theta_old = pol.policy_params.copy()
    p.update(change)
    with pytest.raises(error, match=match):
        trpo_step(pol, **p)
    assert pol.policy_params.tobytes() == theta_old.tobytes()


def test_trpo_step_refuses_a_non_policy():
    _, p = _trpo_problem()
    with pytest.raises(TypeError, match="trpo_step: 'policy' must be a refrl.policy.ActorCritic, got dict"):
        trpo_step({}, **p)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"cg_iters": 2**64}, ValueError, r"step_direction: 'cg_iters' must be <= 9223372036854775807"),
        ({"cg_damping": 1e300}, ValueError, r"step_direction: 'cg_damping' = 1e\+300 overflows float32"),
        ({"subsample": np.uint64(2**63)}, ValueError, r"step_direction: 'subsample' must be <= 9223372036854775807"),
        ({"cg_tol": -1.0}, ValueError, r"step_direction: 'cg_tol' must be >= 0.0"),
    ],
)
def test_step_direction_names_its_arguments(change, error, match):
    pol, obs = _small_policy(np.float32)
    kw = {"cg_iters": 3, "cg_damping": 0.1, "cg_tol": 1e-10, "subsample": 1}
    kw.update(change)
    with pytest.raises(error, match=match):
        step_direction(pol, obs, np.ones(pol.n_policy_params, np.float32), **kw)


def test_trpo_step_with_numpy_hyperparameters_equals_the_python_ones():
    pol, p = _trpo_problem()
    theta_old = pol.policy_params.copy()
    want = trpo_step(pol, **p, cg_iters=4, subsample=1, line_search_max_iter=5)
    pol.policy_params[...] = theta_old
    got = trpo_step(pol, **{**p, "max_kl": np.float64(0.01)}, cg_iters=np.int64(4), subsample=np.uint8(1),
                    line_search_max_iter=np.int16(5))
    assert got.theta.tobytes() == want.theta.tobytes() and got.status == want.status


# ---------------------------------------------------------------------------------------------
# fuzz: the Fisher operator (construction, op.damping, op(v), fisher_vector_product) and act

_FISHER_POLICIES = {dt: _small_policy(dt) for dt in (np.float32, np.float64)}
_FISHER_MATRICES = {dt: oracle.fisher_matrix(*_FISHER_POLICIES[dt]) for dt in (np.float32, np.float64)}


def _fisher_tol(dtype, F, v, damping) -> float:
    """Bound on |F v + λ v| summed term by term, times the dtype's tolerance."""
    v = np.abs(np.asarray(v, np.float64))
    return _tol(dtype) * 10 * (float(np.max(np.abs(F) @ v, initial=0.0)) + damping * float(np.max(v, initial=0.0)) + 1e-300)


def _fisher_vector(n):
    return st.one_of(hnp.arrays(st.sampled_from([np.float32, np.float64]), n, elements=st.floats(-1e3, 1e3)),
                     hnp.arrays(np.float64, n), _maybe_valid_array((n,)))


@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_fisher_operator_fuzz_only_clear_errors(data, dtype):
    """fisher_operator's arguments, then op.damping = λ and op(v) with anything: a named error (the
    operator's damping unchanged), or F v + λ v equal to the oracle's."""
    pol, obs = _FISHER_POLICIES[dtype]
    F, n = _FISHER_MATRICES[dtype], pol.n_policy_params
    damping = data.draw(st.one_of(st.floats(0, 1e3), _any_scalar()), label="damping")
    subsample = data.draw(st.one_of(st.integers(1, 8), _any_scalar()), label="subsample")
    isa = data.draw(st.one_of(st.sampled_from(["auto", "generic", "avx9"]), _any_scalar()), label="isa")
    try:
        op = native.fisher_operator(pol, obs, damping=damping, subsample=subsample, isa=isa)
    except (ValueError, TypeError) as exc:
        _names_an_argument(exc, "fisher_operator", ("damping", "subsample", "isa"))
        op = native.fisher_operator(pol, obs, damping=0.5)
    else:
        assert op.subsample == int(subsample) and op.damping == float(dtype(damping))
        if int(subsample) > 1:  # F of the subsampled batch differs from the full one: checked on e_0
            e0 = np.eye(n, dtype=dtype)[0]
            want = oracle.fisher_vector_product(pol, obs, e0, damping=op.damping, subsample=int(subsample))
            _assert_near(op(e0), want, _tol(dtype), _scale(want) * 10, "F e0 (subsampled)")
            op = native.fisher_operator(pol, obs, damping=op.damping)
    old = op.damping
    new = data.draw(st.one_of(st.floats(0, 1e3), _any_scalar()), label="op.damping")
    try:
        op.damping = new
    except (ValueError, TypeError) as exc:
        _names_an_argument(exc, type(op).__name__, ("damping",))
        assert op.damping == old
    v = data.draw(_fisher_vector(n), label="v")
    try:
        got = op(v)
    except (ValueError, TypeError, OverflowError) as exc:
        _names_an_argument(exc, type(op).__name__, ("v",), also=("F v + damping·v overflows",))
        event(f"op(v) refused: {type(exc).__name__}")
        return
    v_in = np.asarray(v).astype(dtype)
    want = oracle.fisher_vector_product(pol, obs, v_in, damping=op.damping)
    _assert_near(got, want, 1.0, _fisher_tol(dtype, F, v_in, op.damping), "F v + λ v")
    event("op(v) equal to the oracle")


@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_fisher_vector_product_fuzz_only_clear_errors(data, dtype):
    pol, obs = _FISHER_POLICIES[dtype]
    F, n = _FISHER_MATRICES[dtype], pol.n_policy_params
    v = data.draw(_fisher_vector(n), label="v")
    damping = data.draw(st.one_of(st.floats(0, 1e3), st.floats(1e30, 1e300), _any_scalar()), label="damping")
    try:
        got = native.fisher_vector_product(pol, obs, v, damping)
    except (ValueError, TypeError, OverflowError) as exc:
        _names_an_argument(exc, "fisher_vector_product", ("v", "damping"), also=("F v + damping·v overflows",))
        event(f"refused: {type(exc).__name__}")
        return
    v_in = np.asarray(v).astype(dtype)
    d = float(dtype(damping))
    want = oracle.fisher_vector_product(pol, obs, v_in, damping=d)
    _assert_near(got, want, 1.0, _fisher_tol(dtype, F, v_in, d), "F v + λ v")
    event("equal to the oracle")


def _act_obs(B):
    real = st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_])
    return st.one_of(
        hnp.arrays(real, st.sampled_from([(B, 4), (B, 3), (4,), (B, 4, 1)]), elements=st.integers(0, 1)),
        hnp.arrays(np.float64, (B, 4), elements=st.floats(-1e3, 1e3) | st.just(np.nan)),
        hnp.arrays(st.sampled_from([np.complex128, object, "U2"]), (B, 4)),
        st.none(), st.just([[1.0, 2.0], [3.0]]), st.builds(object),
    )


@pytest.mark.parametrize("fn", ["act", "act_and_clip"])
@given(data=st.data(), kind=st.sampled_from(["discrete", "box"]), B=st.integers(1, 4))
def test_native_act_fuzz_only_clear_errors(fn, data, kind, B):
    """Anything for obs, rng and deterministic: a named error, or exactly the NumPy path's draws."""
    pol, _ = _small_policy(np.float32, kind)
    obs = data.draw(_act_obs(B), label="obs")
    rng = data.draw(st.one_of(st.integers(0, 3).map(np.random.default_rng), st.integers(0, 3), st.none()), label="rng")
    det = data.draw(st.one_of(st.booleans(), _any_scalar()), label="deterministic") if fn == "act" else False
    seed_state = rng.bit_generator.state if isinstance(rng, np.random.Generator) else None
    try:
        got = native.act(pol, obs, rng, det) if fn == "act" else native.act_and_clip(pol, obs, rng)
    except (ValueError, TypeError) as exc:
        _names_an_argument(exc, fn, ("policy", "obs", "rng", "deterministic"), also=("ActorCritic: 'obs'",))
        event(f"refused: {type(exc).__name__}")
        return
    replay = np.random.default_rng()
    replay.bit_generator.state = seed_state
    a, logp, values = pol.act(obs, replay, bool(det))
    want = (a, logp, values) if fn == "act" else (a, pol.clip_actions(a), logp, values)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=2e-5, atol=2e-5)
    event("equal to the NumPy path")
