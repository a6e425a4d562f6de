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
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refrl import _core, kernels, oracle

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
    return st.one_of(
        st.floats(), st.integers(-3, 3), st.booleans(), st.none(), st.text(max_size=2),
        st.complex_numbers(), st.floats(width=32).map(np.float32), st.just([0.5]),
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


@given(data=st.data(), n=st.integers(0, 5))
def test_adam_step_fuzz_only_clear_errors(data, n):
    arrays = {k: data.draw(_maybe_valid_array((n,)), label=k) for k in ("params", "grads", "m", "v")}
    scalars = {k: data.draw(st.one_of(st.just(d), _any_scalar()), label=k)
               for k, d in (("t", 1), ("lr", 1e-3), ("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-5))}
    try:
        kernels.adam_step(**arrays, **scalars)
    except (ValueError, TypeError) as exc:
        assert str(exc).startswith("adam_step: '"), str(exc)
