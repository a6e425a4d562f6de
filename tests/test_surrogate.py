"""refrl.kernels.clipped_surrogate against its oracle, the seed text's worked examples, and
central finite differences of the objective (Schulman et al. 2017, eq. 7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from helpers import assert_close, numerical_grad, rel_error
from refrl import kernels, oracle
from strategies import st_clip_range, st_surrogate_batch


def _near_kink(batch, eps, tol):
    """Samples whose ratio lies within tol of 1 ± ε: float32 may take the other branch there."""
    r = np.exp(batch["logp"].astype(np.float64) - batch["logp_old"].astype(np.float64))
    return (np.abs(r - (1 - eps)) < tol) | (np.abs(r - (1 + eps)) < tol)


@given(batch=st_surrogate_batch(), eps=st_clip_range())
def test_clipped_surrogate_matches_oracle(batch, eps):
    got = kernels.clipped_surrogate(**batch, clip_range=eps)
    want = oracle.clipped_surrogate(**batch, clip_range=eps)
    dtype = batch["logp"].dtype
    assert got.grad_logp.dtype == dtype and got.grad_logp.shape == batch["logp"].shape
    if dtype == np.float64:  # the same exp, the same branch decisions: round-off only
        tol = {"rtol": 1e-12, "atol": 1e-12}
        near = np.zeros(batch["logp"].shape, dtype=bool)
    else:
        tol = {"rtol": 2e-5, "atol": 2e-5 * 5 * math.e**2}
        near = _near_kink(batch, eps, 1e-5)
    for field in ("objective", "approx_kl", "ratio_min", "ratio_mean", "ratio_max"):
        assert_close(getattr(got, field), getattr(want, field), **tol, name=field)
    w_sum = len(near) if batch["weights"] is None else float(np.sum(batch["weights"], dtype=np.float64))
    w_near = near.sum() if batch["weights"] is None else float(np.sum(np.where(near, batch["weights"], 0.0)))
    # float32 sums its (weighted) counts in float32 lanes within blocks of 1024: with B <= 128,
    # at most 32 terms per lane (SSE) of float32 round-off each
    count_tol = 1e-12 if dtype == np.float64 else 32 * np.finfo(np.float32).eps
    assert abs(got.clip_fraction - want.clip_fraction) <= w_near / w_sum + count_tol
    assert_close(got.grad_logp[~near], want.grad_logp[~near], **tol, name="grad_logp")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("adv", "ratio", "want", "want_grad"),
    [
        (1.0, 1.5, 1.2, 0.0),  # seed example 1: min(1.5, 1.2) = 1.2, clipped: no gradient
        (-1.0, 0.7, -0.8, 0.0),  # seed example 2: min(-0.7, -0.8) = -0.8, clipped: no gradient
        (-2.0, 1.4, -2.8, -2.8),  # seed exercise: min(-2.8, -2.4) = -2.8, unclipped: r·A
    ],
    ids=["seed_example_1", "seed_example_2", "seed_exercise"],
)
def test_clipped_surrogate_seed_examples(dtype, adv, ratio, want, want_grad):
    got = kernels.clipped_surrogate(
        np.array([math.log(ratio)], dtype), np.zeros(1, dtype), np.array([adv], dtype), clip_range=0.2
    )
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert got.objective == pytest.approx(want, abs=tol)
    assert got.grad_logp[0] == pytest.approx(want_grad, abs=tol)
    assert got.clip_fraction == 1.0
    assert oracle.clipped_surrogate([math.log(ratio)], [0.0], [adv], 0.2).objective == pytest.approx(want, abs=1e-12)


@given(batch=st_surrogate_batch(max_B=12, dtype=np.float64), eps=st_clip_range())
@example(
    batch={"logp": np.log([1.5, 0.7, 1.4, 1.0]), "logp_old": np.zeros(4), "advantages": np.array([1.0, -1.0, -2.0, 3.0]),
           "weights": None},
    eps=0.2,
)
def test_clipped_surrogate_grad_matches_finite_differences(batch, eps):
    """∂L/∂logp by central differences, at points at least 1e-4 away from the clip kinks."""
    assume(not _near_kink(batch, eps, 1e-4).any())
    logp = batch["logp"].copy()
    got = kernels.clipped_surrogate(**batch, clip_range=eps).grad_logp

    def objective(x):
        return oracle.clipped_surrogate(x, batch["logp_old"], batch["advantages"], eps, batch["weights"]).objective

    num = numerical_grad(objective, logp, h=1e-6)
    # central differences carry ~1e-16·|terms of L|/h of round-off in every entry: entries much
    # smaller than that scale are compared absolutely, on that scale
    ratio = np.exp(batch["logp"] - batch["logp_old"])
    scale = max(1e-8, float(np.abs(got).max()), float(np.mean(np.abs(ratio * batch["advantages"]))))
    big = np.abs(num) + np.abs(got) > 1e-3 * scale
    assert rel_error(num[big], got[big]) < 1e-6
    assert np.abs(num[~big] - got[~big]).max(initial=0.0) < 1e-7 * scale


@given(batch=st_surrogate_batch(dtype=np.float64, weights=False), eps=st_clip_range())
def test_clipped_surrogate_float32_matches_float64(batch, eps):
    want = kernels.clipped_surrogate(**batch, clip_range=eps)
    b32 = {k: v.astype(np.float32) for k, v in batch.items() if v is not None}
    got = kernels.clipped_surrogate(**b32, clip_range=eps)
    assert abs(got.objective - want.objective) <= 1e-4 * (1 + abs(want.objective)) + 1e-4
    assert abs(got.approx_kl - want.approx_kl) <= 1e-4


@given(batch=st_surrogate_batch(dtype=np.float64, weights=False), eps=st_clip_range(), data=st.data())
def test_clipped_surrogate_mask_equals_subset(batch, eps, data):
    """A 0/1 mask gives the result on the kept samples; masked samples may hold NaN."""
    B = len(batch["logp"])
    mask = data.draw(st.lists(st.booleans(), min_size=B, max_size=B).filter(any))
    mask = np.array(mask)
    keep = {k: v[mask] for k, v in batch.items() if v is not None}
    want = kernels.clipped_surrogate(**keep, clip_range=eps)
    poisoned = {k: np.where(mask, v, np.nan) for k, v in batch.items() if v is not None}
    got = kernels.clipped_surrogate(**poisoned, clip_range=eps, weights=mask)
    for field in ("objective", "clip_fraction", "approx_kl", "ratio_min", "ratio_mean", "ratio_max"):
        assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-12, abs=1e-12)
    assert_close(got.grad_logp[mask], want.grad_logp, rtol=1e-12, atol=1e-15, name="grad_logp")
    assert not got.grad_logp[~mask].any()


def test_clipped_surrogate_stats_follow_their_definitions(rng):
    B = 1000
    logp_old = rng.normal(size=B)
    logp = logp_old + 0.3 * rng.normal(size=B)
    adv = rng.normal(size=B)
    got = kernels.clipped_surrogate(logp, logp_old, adv, clip_range=0.2)
    ratio = np.exp(logp - logp_old)
    assert got.clip_fraction == pytest.approx(np.mean(np.abs(ratio - 1) > 0.2), abs=1e-12)
    assert got.approx_kl == pytest.approx(np.mean((ratio - 1) - np.log(ratio)), rel=1e-10)
    assert got.ratio_min == pytest.approx(ratio.min()) and got.ratio_max == pytest.approx(ratio.max())
    assert got.ratio_mean == pytest.approx(ratio.mean(), rel=1e-12)
    surr = np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.2) * adv)
    assert got.objective == pytest.approx(surr.mean(), rel=1e-10)
    assert got.approx_kl >= 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clipped_surrogate_ratio_is_exp_within_a_few_ulp(dtype):
    """The kernel's vectorised exp (Cody-Waite + Taylor) against NumPy's exp, over the whole
    range down to subnormal results, reading r back through ratio_min/ratio_max."""
    hi = 88.7 if dtype == np.float32 else 709.7
    lo = -103.0 if dtype == np.float32 else -744.0
    xs = np.concatenate([np.linspace(lo, hi, 4001), np.linspace(-1, 1, 1001), [0.0, 1e-30, -1e-30]]).astype(dtype)
    got = np.array([kernels.clipped_surrogate(np.array([x]), np.zeros(1, dtype), np.zeros(1, dtype), 0.2).ratio_max
                    for x in xs]).astype(dtype)
    want = np.exp(xs.astype(np.float64)).astype(dtype)  # correctly rounded to within 1 ulp of dtype
    ulp = np.spacing(np.abs(want)).astype(np.float64)
    err_ulp = np.abs(got.astype(np.float64) - want.astype(np.float64)) / ulp
    assert err_ulp.max() <= 4, f"max error {err_ulp.max()} ulp at x={xs[np.argmax(err_ulp)]}"
