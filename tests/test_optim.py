"""Adam against a literal transcription of Kingma & Ba (2015) Algorithm 1; clipping; schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refrl import kernels, oracle
from refrl.optim import Adam, clip_grad_norm_, linear_schedule


def adam_paper_algorithm_1(theta0, grad_seq, alpha, beta1, beta2, eps):
    """Algorithm 1 of Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015),
    line by line, scalar loops, float64. Trusted because it is the pseudocode, nothing more.

        m_0 ← 0, v_0 ← 0, t ← 0
        while θ_t not converged:
            t ← t + 1
            g_t ← ∇_θ f_t(θ_{t−1})
            m_t ← β1·m_{t−1} + (1 − β1)·g_t
            v_t ← β2·v_{t−1} + (1 − β2)·g_t²
            m̂_t ← m_t / (1 − β1^t)
            v̂_t ← v_t / (1 − β2^t)
            θ_t ← θ_{t−1} − α·m̂_t / (√v̂_t + ε)

    The loop body is ``oracle.adam_step`` (the same transcription, one step); this is the
    outer ``while``: m_0 = v_0 = 0 and t counted from 1.
    """
    theta = np.asarray(theta0, dtype=np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    history = []
    for t, g in enumerate(grad_seq, start=1):
        theta, m, v = oracle.adam_step(theta, g, m, v, t, alpha, beta1, beta2, eps)
        history.append(list(theta))
    return history


@given(
    n=st.integers(1, 6),
    steps=st.integers(1, 12),
    data=st.data(),
    alpha=st.sampled_from([1e-3, 3e-4, 0.1]),
    betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)]),
    eps=st.sampled_from([1e-5, 1e-8, 1e-2]),
)
def test_adam_matches_paper_algorithm_1(n, steps, data, alpha, betas, eps):
    theta0 = data.draw(arrays(np.float64, n, elements=st.floats(-3, 3, width=64)))
    grad_seq = data.draw(
        st.lists(arrays(np.float64, n, elements=st.floats(-1e-2, 1e2, width=64)), min_size=steps, max_size=steps)
    )
    params = theta0.copy()
    grads = np.zeros(n)
    opt = Adam(params, grads, lr=alpha, betas=betas, eps=eps)
    want = adam_paper_algorithm_1(theta0, grad_seq, alpha, *betas, eps)
    for g, theta_t in zip(grad_seq, want, strict=True):
        grads[...] = g
        opt.step()
        np.testing.assert_allclose(params, theta_t, rtol=1e-12, atol=1e-14)


def test_adam_eps_placement_differs_from_the_tf_efficient_form():
    """The §2 rewriting α_t = α√(1−β2^t)/(1−β1^t), θ −= α_t m/(√v + ε̂) (TensorFlow) is NOT what we
    implement: with small gradients and ε = 1e-5 the first step differs by a factor ≈ 1/(1 + ε/|g|)."""
    g = np.full(3, 1e-5)
    params = np.zeros(3)
    opt = Adam(params, g.copy(), lr=1.0, eps=1e-5)
    opt.step()
    # Algorithm 1 at t = 1: m̂ = g, v̂ = g², step = g / (|g| + ε) = 0.5
    np.testing.assert_allclose(params, -0.5, rtol=1e-12)
    b1, b2 = 0.9, 0.999
    m, v = (1 - b1) * g, (1 - b2) * g * g
    tf_step = math.sqrt(1 - b2) / (1 - b1) * m / (np.sqrt(v) + 1e-5)
    assert abs(tf_step[0] - 0.5) > 0.1


def test_adam_updates_views_in_place_float32(rng):
    big = rng.standard_normal(10).astype(np.float32)
    big_g = np.ones(10, dtype=np.float32)
    params, grads = big[2:8], big_g[2:8]
    before = big.copy()
    opt = Adam(params, grads, lr=0.1)
    opt.step()
    assert params.dtype == np.float32 and opt.m.dtype == np.float32
    np.testing.assert_allclose(big[2:8], before[2:8] - 0.1 / (1 + 1e-5), rtol=1e-6)
    np.testing.assert_array_equal(big[:2], before[:2])
    np.testing.assert_array_equal(big[8:], before[8:])


def test_adam_minimises_a_quadratic(rng):
    A = np.diag([1.0, 10.0, 100.0])
    theta = rng.standard_normal(3)
    grads = np.zeros(3)
    opt = Adam(theta, grads, lr=0.05)
    for _ in range(2000):
        grads[...] = A @ theta
        opt.step()
    assert np.abs(theta).max() < 1e-3


def test_adam_state_dict_round_trip_continues_identically(rng):
    g_seq = rng.standard_normal((6, 4))
    p1, g1 = np.ones(4), np.zeros(4)
    a1 = Adam(p1, g1, lr=0.01)
    for g in g_seq[:3]:
        g1[...] = g
        a1.step()
    state = a1.state_dict()
    p2, g2 = p1.copy(), np.zeros(4)
    a2 = Adam(p2, g2, lr=0.5)
    a2.load_state_dict(state)
    assert a2.lr == 0.01 and a2.t == 3
    for g in g_seq[3:]:
        g1[...] = g
        g2[...] = g
        a1.step()
        a2.step()
    np.testing.assert_array_equal(p1, p2)


def test_adam_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'grads' must match"):
        Adam(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="'grads' must match"):
        Adam(np.zeros(3), np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="'params'"):
        Adam([0.0], np.zeros(1))
    with pytest.raises(ValueError, match="'betas'"):
        Adam(np.zeros(1), np.zeros(1), betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="'eps'"):
        Adam(np.zeros(1), np.zeros(1), eps=0.0)
    opt = Adam(np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="'m'"):
        opt.load_state_dict({"m": np.zeros(3), "v": np.zeros(2), "t": 1})
    with pytest.raises(ValueError, match="'v'"):
        opt.load_state_dict({"m": np.zeros(2), "v": np.array([np.nan, 0.0]), "t": 1})


@given(
    arrs=st.lists(arrays(np.float64, st.integers(1, 5), elements=st.floats(-10, 10, width=64)), min_size=1, max_size=3),
    max_norm=st.floats(0.01, 20.0),
)
def test_clip_grad_norm_global_norm_and_scaling(arrs, max_norm):
    originals = [a.copy() for a in arrs]
    want = math.sqrt(sum(float((a * a).sum()) for a in originals))
    got = clip_grad_norm_(arrs, max_norm)
    assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-300)
    coef = max_norm / (want + 1e-6)
    for a, o in zip(arrs, originals, strict=True):
        np.testing.assert_allclose(a, o * coef if coef < 1.0 else o, rtol=1e-12)
    after = math.sqrt(sum(float((a * a).sum()) for a in arrs))
    assert after <= max_norm + 1e-9


def test_clip_grad_norm_single_flat_array_and_errors():
    g = np.array([3.0, 4.0], dtype=np.float32)
    assert clip_grad_norm_(g, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(g, [0.6, 0.8], rtol=1e-5)
    with pytest.raises(ValueError, match="'grads' contain NaN"):
        clip_grad_norm_(np.array([np.nan, 1.0]), 1.0)
    with pytest.raises(ValueError, match="'max_norm'"):
        clip_grad_norm_(np.ones(2), 0.0)
    with pytest.raises(TypeError, match="'grads'"):
        clip_grad_norm_(np.ones(2, dtype=np.int64), 1.0)


def test_linear_schedule_follows_sb3_progress_remaining():
    f = linear_schedule(3e-4)
    assert f(1.0) == pytest.approx(3e-4) and f(0.5) == pytest.approx(1.5e-4) and f(0.0) == 0.0
    h = linear_schedule(0.2, 0.05)
    assert h(1.0) == pytest.approx(0.2) and h(0.0) == pytest.approx(0.05)


# ------------------------------------------------------------------ the compiled step vs its oracle
@given(
    n=st.integers(1, 300),  # beyond a few vector widths: the SIMD body and its tail
    dtype=st.sampled_from([np.float32, np.float64]),
    t=st.integers(1, 10_000),
    lr=st.floats(0.0, 1.0),
    betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99), (0.99, 0.0)]),
    eps=st.sampled_from([1e-5, 1e-8, 1e-2]),
    data=st.data(),
)
def test_adam_step_matches_oracle(n, dtype, t, lr, betas, eps, data):
    """kernels.adam_step (one fused pass in C++) == oracle.adam_step (Algorithm 1, a scalar loop in
    float64); float32 computes in float32: tolerance 1e-5 relative (a few ulp per operation)."""
    elems = st.floats(-10, 10, width=64)
    params, grads, m = (data.draw(arrays(np.float64, n, elements=elems)).astype(dtype) for _ in range(3))
    v = data.draw(arrays(np.float64, n, elements=st.floats(0, 100, width=64))).astype(dtype)
    want_theta, want_m, want_v = oracle.adam_step(params, grads, m, v, t, lr, *betas, eps)
    g_before = grads.copy()
    kernels.adam_step(params, grads, m, v, t, lr, *betas, eps)
    assert params.dtype == m.dtype == v.dtype == dtype
    rtol, atol = (1e-12, 1e-12) if dtype == np.float64 else (1e-5, 1e-5)
    np.testing.assert_allclose(m, want_m, rtol=rtol, atol=atol)
    np.testing.assert_allclose(v, want_v, rtol=rtol, atol=atol)
    # θ's error is that of the step α·m̂/(√v̂+ε), which can be large against a small θ
    step_scale = lr / (1 - betas[0] ** t) * (np.abs(want_m) + 1e-12) / (np.sqrt(want_v / (1 - betas[1] ** t)) + eps)
    np.testing.assert_allclose(params, want_theta, rtol=rtol, atol=atol + rtol * float(step_scale.max()))
    np.testing.assert_array_equal(grads, g_before)  # read only


def test_adam_rejects_arrays_the_kernel_cannot_update_in_place():
    with pytest.raises(TypeError, match="Adam: 'params' must be a 1-D float32 or float64 numpy array"):
        Adam(np.zeros(3, np.float16), np.zeros(3, np.float16))
    with pytest.raises(ValueError, match="Adam: 'params' must be C-contiguous"):
        Adam(np.zeros(6)[::2], np.zeros(3))
    buf = np.zeros(4)
    with pytest.raises(ValueError, match="Adam: 'params' and 'grads' must not share memory"):
        Adam(buf[:3], buf[1:])
