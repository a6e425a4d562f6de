"""Action distributions: gradients vs finite differences (float64), Fisher = Hessian of KL, sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium import spaces
from helpers import assert_close, numerical_grad
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refrl import oracle
from refrl.distributions import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    Bernoulli,
    Categorical,
    DiagGaussian,
    MultiCategorical,
    make_distribution,
)


def assert_grad_close(analytic, numeric, rtol=1e-5, atol=1e-7):
    """Hand-derived gradient vs central differences: rtol covers the O(h²) truncation, atol (scaled by
    the gradient's magnitude) the O(ε_mach·|f|/h) rounding that dominates on entries near 0."""
    scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
    assert_close(analytic, numeric, rtol=rtol, atol=atol * scale, name="gradient")


logit = st.floats(-4.0, 4.0, width=64)
# log σ kept inside the bounds (the clip is not differentiable at them)
log_std = st.floats(-2.0, 1.5, width=64)


@st.composite
def dist_case(draw, kind=None):
    """(distribution, params, params2, actions) with hypothesis-drawn sizes and values, float64."""
    kind = kind or draw(st.sampled_from(["categorical", "gaussian", "multicategorical", "bernoulli"]))
    B = draw(st.integers(1, 4))
    if kind == "categorical":
        n = draw(st.integers(1, 5))
        dist = Categorical(n, start=draw(st.integers(-2, 2)))
        p1 = draw(arrays(np.float64, (B, n), elements=logit))
        p2 = draw(arrays(np.float64, (B, n), elements=logit))
        acts = np.array(draw(st.lists(st.integers(0, n - 1), min_size=B, max_size=B))) + dist.start
    elif kind == "gaussian":
        d = draw(st.integers(1, 4))
        dist = DiagGaussian(d)

        def params():
            mean = draw(arrays(np.float64, (B, d), elements=st.floats(-2, 2, width=64)))
            ls = draw(arrays(np.float64, (B, d), elements=log_std))
            return np.concatenate([mean, ls], axis=1)

        p1, p2 = params(), params()
        acts = draw(arrays(np.float64, (B, d), elements=st.floats(-3, 3, width=64)))
    elif kind == "bernoulli":
        shape = draw(st.sampled_from([(1,), (3,), (5,), (2, 3)]))
        dist = Bernoulli(math.prod(shape), shape)
        p1 = draw(arrays(np.float64, (B, dist.n), elements=logit))
        p2 = draw(arrays(np.float64, (B, dist.n), elements=logit))
        acts = draw(arrays(np.int8, (B, *shape), elements=st.integers(0, 1)))
    else:
        nvec = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
        dist = MultiCategorical(nvec)
        p1 = draw(arrays(np.float64, (B, dist.param_dim), elements=logit))
        p2 = draw(arrays(np.float64, (B, dist.param_dim), elements=logit))
        acts = np.stack([np.array(draw(st.lists(st.integers(0, n - 1), min_size=B, max_size=B))) for n in nvec], 1)
    return dist, p1, p2, acts


def _per_sample_fd(f, params: np.ndarray) -> np.ndarray:
    """Per-sample gradient of a per-sample quantity f(params) [B]: FD of Σ_i f_i (samples decouple)."""
    work = params.copy()
    return numerical_grad(lambda _: float(f(work).sum()), work)


@given(dist_case())
def test_log_prob_grad_matches_finite_differences(case):
    dist, p, _, a = case
    assert_grad_close(dist.log_prob_grad(p, a), _per_sample_fd(lambda q: dist.log_prob(q, a), p))


@given(dist_case())
def test_entropy_grad_matches_finite_differences(case):
    dist, p, _, _ = case
    assert_grad_close(dist.entropy_grad(p), _per_sample_fd(dist.entropy, p))


@given(dist_case())
def test_kl_grad_matches_finite_differences(case):
    dist, p_old, p_new, _ = case
    assert_grad_close(dist.kl_grad(p_old, p_new), _per_sample_fd(lambda q: dist.kl(p_old, q), p_new))


@given(dist_case(), st.data())
def test_fisher_product_is_hessian_of_kl_at_old(case, data):
    """M u = ∇²_q KL(p ‖ q)|_{q=p} · u, by central differences of the (checked) KL gradient."""
    dist, p, _, _ = case
    u = data.draw(arrays(np.float64, p.shape, elements=st.floats(-1, 1, width=64)))
    eps = 1e-5
    hu = (dist.kl_grad(p, p + eps * u) - dist.kl_grad(p, p - eps * u)) / (2 * eps)
    assert_grad_close(dist.fisher_product(p, u), hu, rtol=1e-6, atol=1e-8)


@given(dist_case(), st.data())
def test_fisher_product_is_symmetric_psd(case, data):
    dist, p, _, _ = case
    u = data.draw(arrays(np.float64, p.shape, elements=st.floats(-1, 1, width=64)))
    w = data.draw(arrays(np.float64, p.shape, elements=st.floats(-1, 1, width=64)))
    mu, mw = dist.fisher_product(p, u), dist.fisher_product(p, w)
    np.testing.assert_allclose((w * mu).sum(axis=1), (u * mw).sum(axis=1), rtol=1e-10, atol=1e-12)
    assert ((u * mu).sum(axis=1) >= -1e-12).all()


@given(dist_case("categorical"))
def test_categorical_fisher_equals_score_outer_product(case):
    """M = E_a[∇log π(a) ∇log π(a)ᵀ] by exact enumeration of the actions."""
    dist, p, _, _ = case
    B, n = p.shape
    probs = dist.probs(p)
    for i in range(B):
        M = np.zeros((n, n))
        for a in range(n):
            g = dist.log_prob_grad(p[i : i + 1], np.array([a + dist.start]))[0]
            M += probs[i, a] * np.outer(g, g)
        Mu = dist.fisher_product(np.tile(p[i], (n, 1)), np.eye(n))  # row k = M e_k
        np.testing.assert_allclose(Mu, M, atol=1e-12)


@given(dist_case())
def test_kl_is_zero_at_equal_params_and_nonnegative(case):
    dist, p, q, _ = case
    np.testing.assert_allclose(dist.kl(p, p), 0.0, atol=1e-12)
    assert (dist.kl(p, q) >= -1e-12).all()


@given(dist_case("categorical"))
def test_categorical_matches_literal_formulas(case):
    dist, z, z2, a = case
    B, _n = z.shape
    for i in range(B):
        p = [math.exp(v) / sum(math.exp(w) for w in z[i]) for v in z[i]]
        q = [math.exp(v) / sum(math.exp(w) for w in z2[i]) for v in z2[i]]
        assert math.isclose(dist.log_prob(z[i : i + 1], a[i : i + 1])[0], math.log(p[a[i] - dist.start]), abs_tol=1e-12)
        assert math.isclose(dist.entropy(z[i : i + 1])[0], -sum(pj * math.log(pj) for pj in p), abs_tol=1e-12)
        kl = sum(pj * (math.log(pj) - math.log(qj)) for pj, qj in zip(p, q, strict=True))
        assert math.isclose(dist.kl(z[i : i + 1], z2[i : i + 1])[0], kl, abs_tol=1e-12)


@given(dist_case("gaussian"))
def test_gaussian_matches_literal_formulas(case):
    dist, p, p2, a = case
    d = dist.d
    for i in range(p.shape[0]):
        logp = 0.0
        kl = 0.0
        ent = 0.0
        for j in range(d):
            mu, s = p[i, j], math.exp(p[i, d + j])
            mu2, s2 = p2[i, j], math.exp(p2[i, d + j])
            logp += math.log(math.exp(-0.5 * ((a[i, j] - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi)))
            ent += 0.5 * math.log(2 * math.pi * math.e * s * s)
            kl += math.log(s2 / s) + (s * s + (mu - mu2) ** 2) / (2 * s2 * s2) - 0.5
        assert math.isclose(dist.log_prob(p[i : i + 1], a[i : i + 1])[0], logp, rel_tol=1e-10, abs_tol=1e-10)
        assert math.isclose(dist.entropy(p[i : i + 1])[0], ent, rel_tol=1e-10, abs_tol=1e-10)
        assert math.isclose(dist.kl(p[i : i + 1], p2[i : i + 1])[0], kl, rel_tol=1e-10, abs_tol=1e-10)


@given(dist_case("bernoulli"))
def test_bernoulli_matches_oracle(case):
    """log π, H and KL against the literal float64 oracles (one bit at a time, from p = σ(z) itself)."""
    dist, z, z2, a = case
    np.testing.assert_allclose(dist.log_prob(z, a), oracle.bernoulli_log_prob(z, a.reshape(z.shape)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dist.entropy(z), oracle.bernoulli_entropy(z), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dist.kl(z, z2), oracle.bernoulli_kl(z, z2), rtol=1e-10, atol=1e-12)


@given(dist_case("bernoulli"))
def test_bernoulli_fisher_equals_score_outer_product(case):
    """M = E_a[∇log π(a) ∇log π(a)ᵀ] by exact enumeration of the 2^n bit vectors."""
    dist, z, _, _ = case
    B, n = z.shape
    p = dist.probs(z)
    for i in range(B):
        M = np.zeros((n, n))
        for k in range(2**n):
            a = np.array([(k >> j) & 1 for j in range(n)], dtype=np.int8)[None]
            prob = math.exp(dist.log_prob(z[i : i + 1], a)[0])
            g = dist.log_prob_grad(z[i : i + 1], a)[0]
            M += prob * np.outer(g, g)
        np.testing.assert_allclose(dist.fisher_product(np.tile(z[i], (n, 1)), np.eye(n)), M, atol=1e-12)
        np.testing.assert_allclose(np.diag(M), p[i] * (1 - p[i]), atol=1e-12)


def test_bernoulli_sampling_frequencies_mode_and_dtype():
    dist = Bernoulli(3)
    logits = np.tile([math.log(0.2 / 0.8), 0.0, math.log(0.9 / 0.1)], (20000, 1))
    a = dist.sample(logits, np.random.default_rng(0))
    assert a.dtype == np.int8 and a.shape == (20000, 3) and set(np.unique(a)) <= {0, 1}
    np.testing.assert_allclose(a.mean(axis=0), [0.2, 0.5, 0.9], atol=0.015)  # 4σ < 0.015 at n = 20000
    np.testing.assert_array_equal(dist.mode(logits[:1]), [[0, 0, 1]])  # p = ½ -> 0, as SB3's round
    shaped = Bernoulli(6, (2, 3))
    assert shaped.sample(np.zeros((4, 6)), np.random.default_rng(1)).shape == (4, 2, 3)


def test_bernoulli_is_stable_for_huge_logits():
    dist = Bernoulli(2)
    z = np.array([[1e4, -1e4]], dtype=np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        lp = dist.log_prob(z, np.array([[1, 0]]))
        h = dist.entropy(z)
        kl = dist.kl(z, -z)
    assert lp[0] == 0.0 and h[0] == 0.0 and np.isfinite(kl).all() and kl[0] > 1e3


def test_multicategorical_is_sum_of_independent_components(rng):
    dist = MultiCategorical([3, 2, 4])
    p = rng.standard_normal((5, 9))
    q = rng.standard_normal((5, 9))
    a = np.stack([rng.integers(0, n, 5) for n in (3, 2, 4)], 1)
    parts = [(Categorical(3), slice(0, 3)), (Categorical(2), slice(3, 5)), (Categorical(4), slice(5, 9))]
    np.testing.assert_allclose(dist.log_prob(p, a), sum(c.log_prob(p[:, s], a[:, k]) for k, (c, s) in enumerate(parts)))
    np.testing.assert_allclose(dist.entropy(p), sum(c.entropy(p[:, s]) for c, s in parts))
    np.testing.assert_allclose(dist.kl(p, q), sum(c.kl(p[:, s], q[:, s]) for c, s in parts))
    assert dist.sample(p, rng).shape == (5, 3) and dist.mode(p).shape == (5, 3)


def test_categorical_sampling_frequencies_match_probs():
    dist = Categorical(4, start=1)
    logits = np.tile(np.log([0.1, 0.2, 0.3, 0.4]), (20000, 1))
    a = dist.sample(logits, np.random.default_rng(0))
    assert a.min() >= 1 and a.max() <= 4 and a.dtype == np.int64
    freq = np.bincount(a - 1, minlength=4) / a.size
    # 4σ of a binomial proportion at n = 20000 is < 0.015
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.015)
    np.testing.assert_array_equal(dist.mode(logits[:2]), [4, 4])


def test_categorical_sampling_never_picks_zero_probability_actions():
    dist = Categorical(3)
    logits = np.tile([0.0, -1e4, 0.0], (5000, 1))
    a = dist.sample(logits, np.random.default_rng(3))
    assert not (a == 1).any() and set(np.unique(a)) == {0, 2}


def test_gaussian_sampling_moments_and_unclipped():
    dist = DiagGaussian(2)
    params = np.tile([0.5, -3.0, math.log(0.1), math.log(2.0)], (50000, 1))
    a = dist.sample(params, np.random.default_rng(0))
    np.testing.assert_allclose(a.mean(0), [0.5, -3.0], atol=0.03)
    np.testing.assert_allclose(a.std(0), [0.1, 2.0], rtol=0.02)
    assert np.abs(a[:, 1]).max() > 5.0  # nothing clips the samples
    np.testing.assert_array_equal(dist.mode(params[:3]), params[:3, :2])


def test_log_softmax_is_stable_for_huge_logits():
    dist = Categorical(3)
    z = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        lp = dist.log_prob(z, np.array([0]))
        h = dist.entropy(z)
        kl = dist.kl(z, z[:, ::-1].copy())
    assert lp[0] == 0.0 and h[0] == 0.0 and np.isfinite(kl).all() and kl[0] > 1e3


def test_gaussian_log_std_is_bounded_and_stays_finite_in_float32():
    dist = DiagGaussian(1)
    p = np.array([[0.0, -100.0]], dtype=np.float32)  # σ = e^-100 underflows float32 without the bound
    a = np.array([[1e-3]], dtype=np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        lp = dist.log_prob(p, a)
        g = dist.log_prob_grad(p, a)
        kl = dist.kl(p, np.array([[0.0, 0.0]], dtype=np.float32))
    assert np.isfinite(lp).all() and np.isfinite(g).all() and np.isfinite(kl).all()
    assert math.isclose(dist.entropy(p)[0], LOG_STD_MIN + 0.5 * (1 + math.log(2 * math.pi)), rel_tol=1e-6)
    assert g[0, 1] == 0.0  # bound active: no gradient on log σ
    p_hi = np.array([[0.0, 50.0]])
    assert math.isclose(dist.entropy(p_hi)[0], LOG_STD_MAX + 0.5 * (1 + math.log(2 * math.pi)))
    assert dist.entropy_grad(p_hi)[0, 1] == 0.0
    assert dist.kl_grad(p_hi, p_hi + 1.0)[0, 1] == 0.0
    assert dist.fisher_product(p_hi, np.ones((1, 2)))[0, 1] == 0.0


def test_make_distribution_for_supported_spaces():
    assert isinstance(make_distribution(spaces.Discrete(3)), Categorical)
    g = make_distribution(spaces.Box(-1, 1, (2, 3)))
    assert isinstance(g, DiagGaussian) and g.d == 6 and g.param_dim == 12
    m = make_distribution(spaces.MultiDiscrete([2, 5]))
    assert isinstance(m, MultiCategorical) and m.param_dim == 7
    b = make_distribution(spaces.MultiBinary([2, 3]))
    assert isinstance(b, Bernoulli) and b.n == 6 and b.param_dim == 6 and b.action_shape == (2, 3)
    c = make_distribution(spaces.Discrete(3, start=-1))
    assert c.start == -1 and set(c.sample(np.zeros((100, 3)), np.random.default_rng(0))) <= {-1, 0, 1}


@pytest.mark.parametrize(
    "space, name",
    [
        (spaces.Dict({"a": spaces.Discrete(2)}), "Dict"),
        (spaces.Tuple((spaces.Discrete(2),)), "Tuple"),
        (spaces.MultiDiscrete([[2, 3], [4, 5]]), "MultiDiscrete"),
    ],
)
def test_make_distribution_rejects_unsupported_space(space, name):
    with pytest.raises(ValueError, match=name):
        make_distribution(space)


def test_distributions_reject_bad_arguments():
    c = Categorical(3)
    with pytest.raises(ValueError, match="'actions' must lie in"):
        c.log_prob(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="'actions' must have shape"):
        c.log_prob(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="'actions' must be integers"):
        c.log_prob(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"'params' must have shape \(B, 3\)"):
        c.entropy(np.zeros((2, 4)))
    g = DiagGaussian(2)
    with pytest.raises(ValueError, match="'actions' must have shape"):
        g.log_prob(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="'params_new'"):
        g.kl(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="'n'"):
        Categorical(0)
    with pytest.raises(ValueError, match="'nvec'"):
        MultiCategorical([2, 0])
    b = Bernoulli(3)
    with pytest.raises(ValueError, match="'actions' must be 0 or 1"):
        b.log_prob(np.zeros((2, 3)), np.array([[0, 1, 2], [0, 0, 0]]))
    with pytest.raises(ValueError, match="'actions' must have shape"):
        b.log_prob(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"'params' must have shape \(B, 3\)"):
        b.entropy(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="'params_new'"):
        b.kl(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="'n'"):
        Bernoulli(0)


@given(dist_case(), st.integers(0, 2**16), st.booleans())
def test_sample_with_log_prob_equals_sample_then_log_prob(case, seed, deterministic):
    dist, p, _, _ = case
    a, logp = dist.sample_with_log_prob(p, np.random.default_rng(seed), deterministic)
    a_ref = dist.mode(p) if deterministic else dist.sample(p, np.random.default_rng(seed))
    np.testing.assert_array_equal(a, a_ref)
    np.testing.assert_allclose(logp, dist.log_prob(p, a), rtol=1e-12, atol=1e-12)
