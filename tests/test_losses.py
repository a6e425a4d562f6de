"""refrl.losses: PPO's objective pieces against their literal oracles (refrl.oracle) and their
hand-derived gradients against central finite differences in float64, away from the kinks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refrl import losses, oracle
from refrl.distributions import Bernoulli, Categorical, DiagGaussian
from tests.helpers import assert_close, numerical_grad, rel_error
from tests.strategies import st_clip_range, st_surrogate_batch



def assert_matches_fd(grad, num, name):
    """|grad − FD| ≤ 1e-5·|FD| + 1e-7·max(1, max|FD|): central differences (h = 1e-6) in float64 carry
    ~1e-10·|f| of round-off, so tiny entries are compared absolutely (the suite's FD criterion)."""
    grad, num = np.asarray(grad, np.float64), np.asarray(num, np.float64)
    bound = 1e-5 * np.abs(num) + 1e-7 * max(1.0, float(np.abs(num).max(initial=0.0)))
    assert np.all(np.abs(grad - num) <= bound), f"{name}: rel. error {rel_error(grad, num):.3g}\n{grad}\n{num}"


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _arrays(n, lo, hi):
    return hnp.arrays(np.float64, n, elements=_floats(lo, hi))


@st.composite
def st_weights(draw, n):
    """0/1 masks (reset slots) or non-negative float weights, at least one positive."""
    if draw(st.booleans()):
        w = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0])))
    else:
        w = draw(_arrays(n, 0.0, 3.0))
    w[draw(st.integers(0, n - 1))] = 1.0
    return w


@st.composite
def st_value_batch(draw, max_B=32):
    n = draw(st.integers(1, max_B))
    return {
        "values": draw(_arrays(n, -5.0, 5.0)),
        "v_old": draw(_arrays(n, -5.0, 5.0)),
        "returns": draw(_arrays(n, -5.0, 5.0)),
        "weights": draw(st_weights(n)),
    }


@st.composite
def st_kl_batch(draw, max_B=12):
    """logp, logp_old, advantages, weights and a distribution with old / new parameters."""
    n = draw(st.integers(1, max_B))
    family = draw(st.sampled_from(["categorical", "bernoulli", "gaussian"]))
    if family == "categorical":
        k = draw(st.integers(2, 5))
        dist, kind = Categorical(k), "categorical"
        p_old, p_new = draw(_arrays((n, k), -3.0, 3.0)), draw(_arrays((n, k), -3.0, 3.0))
    elif family == "bernoulli":
        k = draw(st.integers(1, 4))
        dist, kind = Bernoulli(k), "bernoulli"
        p_old, p_new = draw(_arrays((n, k), -3.0, 3.0)), draw(_arrays((n, k), -3.0, 3.0))
    else:
        d = draw(st.integers(1, 3))
        dist, kind = DiagGaussian(d), "gaussian"
        mu = _arrays((n, d), -2.0, 2.0)
        log_std = _arrays((n, d), -1.5, 1.0)  # inside the log σ bounds [−20, 2]: no kink
        p_old = np.concatenate([draw(mu), draw(log_std)], axis=1)
        p_new = np.concatenate([draw(mu), draw(log_std)], axis=1)
    logp_old = draw(_arrays(n, -4.0, 0.0))
    return {
        "logp": logp_old + draw(_arrays(n, -1.0, 1.0)),
        "logp_old": logp_old,
        "advantages": draw(_arrays(n, -3.0, 3.0)),
        "weights": draw(st_weights(n)),
        "beta": draw(st.one_of(st.just(1.0), _floats(0.0, 4.0))),
        "dist": dist,
        "kind": kind,
        "dist_params_old": p_old,
        "dist_params": p_new,
    }


def _kl_objective(b, **override):
    a = {**b, **override}
    return losses.kl_penalty_objective(a["logp"], a["logp_old"], a["advantages"], a["weights"], 0.2, beta=a["beta"],
                                       dist=a["dist"], dist_params_old=a["dist_params_old"],
                                       dist_params=a["dist_params"])


# ---------------------------------------------------------------------------- value loss
@given(b=st_value_batch(), clip=st.one_of(st.none(), _floats(0.05, 2.0)))
def test_value_loss_matches_oracle(b, clip):
    loss, grad = losses.value_loss(b["values"], b["v_old"], b["returns"], b["weights"], clip)
    want_loss, want_grad = oracle.value_loss(b["values"], b["v_old"], b["returns"], b["weights"], clip)
    assert loss == pytest.approx(want_loss, rel=1e-12, abs=1e-12)
    assert_close(grad, want_grad, rtol=1e-12, atol=1e-12, name="dvalues")


@given(b=st_value_batch(), clip=st.one_of(st.none(), _floats(0.05, 2.0)))
def test_value_loss_grad_matches_finite_differences(b, clip):
    """With clipping, the kinks are |V − V_old| = ε_V and (V − R)² = (V^clip − R)²: samples within 1e-3
    of either are discarded, so central differences (h = 1e-6) see one smooth piece."""
    values, v_old, ret = b["values"], b["v_old"], b["returns"]
    if clip is not None:
        delta = values - v_old
        assume(np.all(np.abs(np.abs(delta) - clip) > 1e-3))
        err, err_c = values - ret, v_old + np.clip(delta, -clip, clip) - ret
        assume(np.all(np.abs(err**2 - err_c**2) > 1e-3))
    _, grad = losses.value_loss(values, v_old, ret, b["weights"], clip)
    num = numerical_grad(lambda v: losses.value_loss(v, v_old, ret, b["weights"], clip)[0], values.copy())
    assert_matches_fd(grad, num, "dvalues")


def test_value_loss_clipping_worked_example():
    """V_old = 0, ε_V = 0.2.  V = 0.5, R = 1: V^clip = 0.2 and (0.2 − 1)² = 0.64 > (0.5 − 1)² = 0.25, so the
    clipped term is the max; V is outside the clip range, so its gradient is 0.  V = 1.5, R = −1:
    (1.5 + 1)² = 6.25 > (0.2 + 1)² = 1.44, the unclipped term, gradient 2·2.5 = 5."""
    loss, grad = losses.value_loss(np.array([0.5]), np.zeros(1), np.ones(1), np.ones(1), 0.2)
    assert loss == pytest.approx(0.64) and grad[0] == 0.0
    loss, grad = losses.value_loss(np.array([1.5]), np.zeros(1), -np.ones(1), np.ones(1), 0.2)
    assert loss == pytest.approx(6.25) and grad[0] == pytest.approx(5.0)
    # inside the clip range both terms agree: plain squared error and its gradient 2(V − R)
    loss, grad = losses.value_loss(np.array([0.1]), np.zeros(1), np.ones(1), np.ones(1), 0.2)
    assert loss == pytest.approx(0.81) and grad[0] == pytest.approx(-1.8)
    # weights: a zero-weight sample is in no mean and gets no gradient
    loss, grad = losses.value_loss(np.array([0.0, 9.0]), np.zeros(2), np.ones(2), np.array([1.0, 0.0]), None)
    assert loss == 1.0 and grad.tolist() == [-2.0, 0.0]


# ---------------------------------------------------------------------------- L^KLPEN
@given(b=st_kl_batch())
def test_kl_penalty_objective_matches_oracle(b):
    got = _kl_objective(b)
    obj, surrogate, kl, grad_logp, grad_dist = oracle.kl_penalty_objective(
        b["logp"], b["logp_old"], b["advantages"], b["weights"], b["beta"], b["kind"], b["dist_params_old"],
        b["dist_params"])
    assert got.objective == pytest.approx(obj, rel=1e-10, abs=1e-12)
    assert got.surrogate == pytest.approx(surrogate, rel=1e-10, abs=1e-12)
    assert got.kl == pytest.approx(kl, rel=1e-10, abs=1e-12)
    assert_close(got.grad_logp, grad_logp, rtol=1e-10, atol=1e-12, name="grad_logp")
    assert_close(got.grad_dist_params, grad_dist, rtol=1e-10, atol=1e-12, name="grad_dist_params")
    assert got.kl >= -1e-12


@given(b=st_kl_batch())
def test_kl_penalty_objective_grads_match_finite_differences(b):
    """∂L^KLPEN/∂log π (the r·Â part) and ∂L^KLPEN/∂q (the −β·KL term) against central differences."""
    got = _kl_objective(b)
    num_logp = numerical_grad(lambda lp: _kl_objective(b, logp=lp).objective, b["logp"].copy())
    assert_matches_fd(got.grad_logp, num_logp, "grad_logp")
    num_dist = numerical_grad(lambda q: _kl_objective(b, dist_params=q).objective, b["dist_params"].copy())
    assert_matches_fd(got.grad_dist_params, num_dist, "grad_dist_params")


def test_kl_penalty_objective_at_theta_old():
    """π_θ = π_old: r = 1, KL = 0 and its gradient 0, so L^KLPEN = Ê[Â] and ∂L/∂log π = w Â / Σw."""
    dist = Categorical(3)
    p = np.array([[0.1, -0.3, 0.7], [1.0, 0.0, -1.0]])
    adv, w = np.array([2.0, -1.0]), np.array([1.0, 3.0])
    got = losses.kl_penalty_objective(np.log([0.2, 0.5]), np.log([0.2, 0.5]), adv, w, 0.2, beta=5.0, dist=dist,
                                      dist_params_old=p, dist_params=p.copy())
    assert got.objective == pytest.approx((2.0 - 3.0) / 4.0) and got.kl == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(got.grad_logp, [0.5, -0.75])
    np.testing.assert_allclose(got.grad_dist_params, 0.0, atol=1e-15)
    assert (got.ratio_min, got.ratio_max, got.clip_fraction) == (1.0, 1.0, 0.0)
    assert got.approx_kl == pytest.approx(0.0, abs=1e-15)


# ---------------------------------------------------------------------------- L^CLIP, entropy, advantages
@given(b=st_surrogate_batch(dtype=np.float64, weights=True), eps=st_clip_range())
def test_clipped_surrogate_objective_is_the_kernel_and_its_oracle(b, eps):
    got = losses.clipped_surrogate_objective(b["logp"], b["logp_old"], b["advantages"], b["weights"], eps)
    want = oracle.clipped_surrogate(b["logp"], b["logp_old"], b["advantages"], eps, weights=b["weights"])
    assert got.objective == got.surrogate == pytest.approx(want.objective, rel=1e-12, abs=1e-12)
    r = np.exp(b["logp"] - b["logp_old"])
    kink = np.abs(np.abs(r - 1.0) - eps) < 1e-9  # at 1 ± ε either branch's gradient is a valid choice
    assert_close(got.grad_logp[~kink], want.grad_logp[~kink], rtol=1e-12, atol=1e-12, name="grad_logp")
    assert got.kl == 0.0 and got.grad_dist_params is None
    assert got.approx_kl == pytest.approx(want.approx_kl, rel=1e-12, abs=1e-12)
    assert got.clip_fraction == pytest.approx(want.clip_fraction, rel=1e-12, abs=1e-12)
    assert (got.ratio_min, got.ratio_max) == pytest.approx((want.ratio_min, want.ratio_max), rel=1e-12)


@given(n=st.integers(1, 32), data=st.data(), coef=st.one_of(st.just(0.01), _floats(1e-4, 1.0)))
def test_entropy_bonus_matches_oracle_and_finite_differences(n, data, coef):
    ent, w = data.draw(_arrays(n, -3.0, 3.0)), data.draw(st_weights(n))
    mean, grad = losses.entropy_bonus(ent, w, coef)
    want_mean, want_grad = oracle.entropy_bonus(ent, w, coef)
    assert mean == pytest.approx(want_mean, rel=1e-12, abs=1e-12)
    assert_close(grad, want_grad, rtol=1e-12, atol=1e-15, name="dentropy")
    num = numerical_grad(lambda e: coef * losses.entropy_bonus(e, w, coef)[0], ent.copy())
    assert_matches_fd(grad, num, "dentropy")


def test_entropy_bonus_without_coefficient_has_no_gradient():
    mean, grad = losses.entropy_bonus(np.array([1.0, 3.0, 100.0]), np.array([1.0, 1.0, 0.0]), 0.0)
    assert mean == 2.0 and grad is None


@given(n=st.integers(1, 64), data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_normalize_advantages_matches_oracle(n, data, dtype):
    adv, w = data.draw(_arrays(n, -10.0, 10.0)).astype(dtype), data.draw(st_weights(n)).astype(dtype)
    want = oracle.normalize_advantages(adv, w)
    # near-constant advantages make (A − mean)/std ill-conditioned (round-off of the mean over a tiny std)
    w64, a64 = w.astype(np.float64), adv.astype(np.float64)
    centred = a64 - np.dot(w64, a64) / max(w64.sum(), 1.0)
    assume(np.sqrt(np.dot(w64, centred**2) / max(w64.sum() - 1.0, 1.0)) >= 1e-2 * (1.0 + np.abs(a64).max()))
    got = losses.normalize_advantages(adv, w)
    assert got.dtype == dtype
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert_close(got, want, rtol=tol, atol=tol * (1.0 + np.abs(want).max()), name="advantages")


@given(n=st.integers(1, 64), data=st.data())
def test_advantage_moments_are_the_weighted_sums_row_by_row(n, data):
    rows = data.draw(st.integers(1, 4))
    adv = np.stack([data.draw(_arrays(n, -10.0, 10.0)) for _ in range(rows)]).astype(np.float32)
    w = np.stack([data.draw(st_weights(n)) for _ in range(rows)]).astype(np.float32)
    got = losses.advantage_moments(adv, w)
    assert got.shape == (rows, 3) and got.dtype == np.float64
    for i in range(rows):
        want = [sum(float(w[i, j]) * float(adv[i, j]) ** k for j in range(n)) for k in (0, 1, 2)]
        assert_close(got[i], np.array(want), rtol=1e-12, atol=1e-12, name=f"moments of row {i}")


@given(n=st.integers(2, 64), data=st.data())
def test_normalize_advantages_of_a_share_with_the_whole_minibatchs_moments(n, data):
    """One rank's share of a minibatch, normalised with the summed moments of all shares, is that
    share of the whole minibatch normalised at once (what K ranks do in the PPO update)."""
    adv, w = data.draw(_arrays(n, -10.0, 10.0)), data.draw(st_weights(n))
    cut = data.draw(st.integers(1, n - 1))
    # near-constant advantages make (A − mean)/std ill-conditioned (as in the oracle test above)
    centred = adv - np.dot(w, adv) / max(w.sum(), 1.0)
    assume(np.sqrt(np.dot(w, centred**2) / max(w.sum() - 1.0, 1.0)) >= 1e-2 * (1.0 + np.abs(adv).max()))
    whole = losses.normalize_advantages(adv, w)
    moments = losses.advantage_moments(adv[:cut], w[:cut]) + losses.advantage_moments(adv[cut:], w[cut:])
    for part in (slice(0, cut), slice(cut, n)):
        got = losses.normalize_advantages(adv[part], w[part], moments)
        assert_close(got, whole[part], rtol=1e-9, atol=1e-9 * (1.0 + np.abs(whole).max()), name="share")


def test_advantage_moments_and_normalisation_name_a_wrong_shape():
    with pytest.raises(ValueError, match="'advantages' \\(4,\\) and 'weights' \\(3,\\)"):
        losses.advantage_moments(np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="'moments' must be .* shape \\(3,\\), got \\(2,\\)"):
        losses.normalize_advantages(np.zeros(4), np.ones(4), np.ones(2))


def test_normalize_advantages_is_torch_std_over_real_samples():
    """With a 0/1 mask it is (A − mean) / (std(ddof=1) + 1e-8) over the real samples (SB3 / CleanRL)."""
    adv = np.array([1.0, 2.0, 4.0, 1000.0, 7.0])
    w = np.array([1.0, 1.0, 1.0, 0.0, 1.0])
    real = adv[w > 0]
    got = losses.normalize_advantages(adv, w)
    np.testing.assert_allclose(got[w > 0], (real - real.mean()) / (real.std(ddof=1) + 1e-8), rtol=1e-14)
    assert np.dot(w, got) == pytest.approx(0.0, abs=1e-12)
