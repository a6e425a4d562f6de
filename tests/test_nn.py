"""MLP: backward and R-operator against central finite differences (float64), layout, init, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, numerical_grad
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refrl.nn import MLP, orthogonal_


def assert_grad_close(analytic, numeric, rtol=1e-5, atol=1e-7):
    """Hand-derived gradient vs central differences: rtol covers the O(h²) truncation, atol (scaled by
    the gradient's magnitude) the O(ε_mach·|f|/h) rounding that dominates on entries near 0."""
    scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
    assert_close(analytic, numeric, rtol=rtol, atol=atol * scale, name="gradient")


finite = st.floats(-1.5, 1.5, allow_nan=False, width=64)


@st.composite
def mlp_case(draw, activations=("tanh", "relu")):
    """A small float64 MLP with hypothesis-drawn sizes, weights, inputs and output gradient."""
    depth = draw(st.integers(1, 4))  # number of linear layers
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=depth + 1, max_size=depth + 1)))
    activation = draw(st.sampled_from(activations))
    B = draw(st.integers(1, 4))
    n = MLP.num_params(sizes)
    theta = draw(arrays(np.float64, n, elements=finite))
    x = draw(arrays(np.float64, (B, sizes[0]), elements=st.floats(-2, 2, width=64)))
    dy = draw(arrays(np.float64, (B, sizes[-1]), elements=st.floats(-2, 2, width=64)))
    v = draw(arrays(np.float64, n, elements=finite))
    net = MLP(sizes, activation, dtype=np.float64, rng=np.random.default_rng(0))
    net.set_params(theta)
    return net, x, dy, v


def _min_abs_preactivation(net: MLP, x: np.ndarray) -> float:
    """Smallest |z_l| over hidden units (ReLU is not differentiable at 0: keep FD away from kinks)."""
    h, smallest = x, math.inf
    for l in range(net.n_layers - 1):
        z = h @ net.W[l] + net.b[l]
        smallest = min(smallest, float(np.abs(z).min()))
        h = np.maximum(z, 0) if net.activation == "relu" else np.tanh(z)
    return smallest


@given(mlp_case())
def test_mlp_backward_grad_matches_finite_differences(case):
    net, x, dy, _ = case
    if net.activation == "relu":
        assume(_min_abs_preactivation(net, x) > 1e-4)
    net.zero_grad()
    _y, cache = net.forward(x)
    dx = net.backward(dy, cache)

    def loss():
        return float((net(x) * dy).sum())  # ∂loss/∂y = dy

    assert_grad_close(net.grads, numerical_grad(lambda _: loss(), net.params))
    x_work = x.copy()
    assert_grad_close(dx, numerical_grad(lambda _: float((net(x_work) * dy).sum()), x_work))


@given(mlp_case())
def test_mlp_jvp_matches_finite_differences(case):
    net, x, _, v = case
    if net.activation == "relu":
        assume(_min_abs_preactivation(net, x) > 1e-3)
    theta = net.params.copy()
    y, jv = net.jvp(x, v)
    eps = 1e-6
    net.set_params(theta + eps * v)
    y_plus = net(x)
    net.set_params(theta - eps * v)
    y_minus = net(x)
    net.set_params(theta)
    assert_grad_close(jv, (y_plus - y_minus) / (2 * eps))
    np.testing.assert_array_equal(y, net(x))


@given(mlp_case(activations=("tanh",)))
def test_mlp_jvp_is_adjoint_of_backward(case):
    """⟨u, J v⟩ = ⟨Jᵀ u, v⟩: the R-operator and backward are transposes of one Jacobian."""
    net, x, dy, v = case
    _y, cache = net.forward(x)
    jv = net.jvp_from_cache(cache, v)
    jtu = np.zeros_like(net.params)
    net.backward(dy, cache, out=jtu, need_dx=False)
    assert math.isclose(float((dy * jv).sum()), float(jtu @ v), rel_tol=1e-10, abs_tol=1e-10)


@given(mlp_case(), st.booleans())
def test_mlp_backward_overwrite_equals_zero_then_accumulate(case, use_out):
    """accumulate=False writes ∂loss/∂θ over whatever the target held: = zero_grad() + backward."""
    net, x, dy, _ = case
    _y, cache = net.forward(x)
    ref = np.zeros_like(net.params)
    dx_ref = net.backward(dy, cache, out=ref)
    target = np.full_like(net.params, np.nan)  # garbage that an accumulation would keep
    if use_out:
        dx = net.backward(dy, cache, out=target, accumulate=False)
    else:
        net.grads[...] = target
        dx = net.backward(dy, cache, accumulate=False)
        target = net.grads
    np.testing.assert_array_equal(target, ref)
    np.testing.assert_array_equal(dx, dx_ref)


def test_mlp_backward_accumulates_into_grads(rng):
    net = MLP((3, 4, 2), dtype=np.float64, rng=rng)
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    _, cache = net.forward(x)
    net.backward(dy, cache)
    once = net.grads.copy()
    net.backward(dy, cache)
    np.testing.assert_allclose(net.grads, 2 * once, rtol=1e-12)
    assert np.abs(once).sum() > 0
    net.zero_grad()
    assert not net.grads.any()


def test_mlp_flat_layout_is_row_major_w_then_b_per_layer():
    """The contract read by the native code: [W1 (d0×d1 row-major), b1, W2, b2, ...]."""
    sizes = (3, 4, 2)
    net = MLP(sizes, dtype=np.float64, rng=np.random.default_rng(0))
    net.set_params(np.arange(MLP.num_params(sizes), dtype=np.float64))
    np.testing.assert_array_equal(net.W[0], np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(net.b[0], np.arange(12.0, 16.0))
    np.testing.assert_array_equal(net.W[1], np.arange(16.0, 24.0).reshape(4, 2))
    np.testing.assert_array_equal(net.b[1], np.arange(24.0, 26.0))
    assert MLP.num_params(sizes) == 3 * 4 + 4 + 4 * 2 + 2
    # forward is y = tanh(x W1 + b1) W2 + b2 with exactly those blocks
    x = np.linspace(-1, 1, 6).reshape(2, 3) * 0.01
    want = np.tanh(x @ net.W[0] + net.b[0]) @ net.W[1] + net.b[1]
    np.testing.assert_allclose(net(x), want, rtol=1e-12)
    assert [(s.start, s.stop, t.start, t.stop) for s, t in net.layer_slices()] == [(0, 12, 12, 16), (16, 24, 24, 26)]


def test_mlp_params_and_grads_are_views_of_external_storage(rng):
    sizes = (4, 8, 3)
    n = MLP.num_params(sizes)
    big_params = np.zeros(n + 10, dtype=np.float32)
    big_grads = np.zeros(n + 10, dtype=np.float32)
    net = MLP(sizes, rng=rng, params=big_params[5 : 5 + n], grads=big_grads[5 : 5 + n])
    assert np.shares_memory(net.params, big_params) and np.shares_memory(net.grads, big_grads)
    assert all(np.shares_memory(W, big_params) for W in net.W)
    assert all(np.shares_memory(dW, big_grads) for dW in net.dW)
    assert not big_params[:5].any() and not big_params[5 + n :].any()  # init stayed inside its slice
    np.testing.assert_array_equal(big_params[5 : 5 + n], net.params)
    # writes through the flat vector are seen by the layers, without a copy
    theta = rng.standard_normal(n).astype(np.float32)
    net.set_params(theta)
    np.testing.assert_array_equal(net.W[0].reshape(-1), theta[: 4 * 8])
    big_params[5] = 123.0
    assert net.W[0][0, 0] == 123.0
    _, cache = net.forward(rng.standard_normal((2, 4)))
    net.backward(rng.standard_normal((2, 3)), cache)
    assert big_grads[5 : 5 + n].any() and not big_grads[:5].any()


@pytest.mark.parametrize("sizes", [(5, 64, 64, 2), (3, 2, 7, 1), (64, 64)])
def test_mlp_orthogonal_init_gives_orthogonal_matrices(sizes):
    gain_out = 0.01
    net = MLP(sizes, output_gain=gain_out, dtype=np.float64, rng=np.random.default_rng(1))
    for l, W in enumerate(net.W):
        gain = gain_out if l == net.n_layers - 1 else math.sqrt(2.0)
        d_in, d_out = W.shape
        gram = W.T @ W if d_in >= d_out else W @ W.T
        np.testing.assert_allclose(gram, gain**2 * np.eye(min(d_in, d_out)), atol=1e-12)
        assert not net.b[l].any()


def test_orthogonal_is_reproducible_and_float32_matches_float64():
    a = MLP((4, 16, 2), dtype=np.float32, rng=np.random.default_rng(7))
    b = MLP((4, 16, 2), dtype=np.float64, rng=np.random.default_rng(7))
    c = MLP((4, 16, 2), dtype=np.float64, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(b.params, c.params)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-6, atol=1e-7)
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_allclose(a(x), b(x), rtol=1e-4, atol=1e-5)
    assert a(x).dtype == np.float32 and b(x).dtype == np.float64


def test_orthogonal_rejects_nothing_for_empty_and_fills_in_place():
    out = np.zeros((3, 5))
    res = orthogonal_(out, 2.0, np.random.default_rng(0))
    assert res is out
    np.testing.assert_allclose(out @ out.T, 4.0 * np.eye(3), atol=1e-12)


def test_mlp_default_init_without_ortho_is_uniform_fan_in(rng):
    net = MLP((16, 32, 4), ortho_init=False, dtype=np.float64, rng=rng)
    assert np.abs(net.W[0]).max() <= 1 / 4 and np.abs(net.W[1]).max() <= 1 / math.sqrt(32)
    assert net.b[0].any()


def test_mlp_relu_zero_region_has_zero_gradient(rng):
    net = MLP((2, 3, 1), "relu", dtype=np.float64, rng=rng)
    net.b[0][...] = -100.0  # every hidden unit off
    _, cache = net.forward(rng.standard_normal((4, 2)))
    net.zero_grad()
    dx = net.backward(np.ones((4, 1)), cache)
    assert not dx.any() and not net.dW[0].any() and not net.db[0].any()
    assert net.db[1][0] == 4.0


def test_mlp_rejects_bad_sizes(rng):
    with pytest.raises(ValueError, match="sizes"):
        MLP((3,), rng=rng)
    with pytest.raises(ValueError, match="sizes"):
        MLP((3, 0, 2), rng=rng)
    with pytest.raises(TypeError, match="sizes"):
        MLP(("a", 2), rng=rng)


def test_mlp_rejects_bad_activation_and_dtype(rng):
    with pytest.raises(ValueError, match="activation"):
        MLP((3, 2), "sigmoid", rng=rng)
    with pytest.raises(TypeError, match="dtype"):
        MLP((3, 2), dtype=np.int32, rng=rng)


def test_mlp_rejects_bad_storage(rng):
    n = MLP.num_params((3, 2))
    with pytest.raises(ValueError, match="'params' must have shape"):
        MLP((3, 2), rng=rng, params=np.zeros(n + 1, np.float32))
    with pytest.raises(TypeError, match="'params' must have dtype"):
        MLP((3, 2), rng=rng, params=np.zeros(n, np.float64))
    with pytest.raises(ValueError, match="'grads' must be C-contiguous"):
        MLP((3, 2), rng=rng, grads=np.zeros(2 * n, np.float32)[::2])
    buf = np.zeros(n, np.float32)
    with pytest.raises(ValueError, match="overlap"):
        MLP((3, 2), rng=rng, params=buf, grads=buf)


def test_mlp_rejects_bad_input_shapes(rng):
    net = MLP((3, 4, 2), rng=rng)
    with pytest.raises(ValueError, match=r"'x' must have shape \(B, 3\)"):
        net.forward(np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"'x' must have shape"):
        net.forward(np.zeros(3))
    _, cache = net.forward(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="'dy' must have shape"):
        net.backward(np.zeros((4, 2)), cache)
    with pytest.raises(ValueError, match="'v' must have shape"):
        net.jvp(np.zeros((5, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="'theta' must have shape"):
        net.set_params(np.zeros(2))
