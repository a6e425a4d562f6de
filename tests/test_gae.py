"""refrl.kernels.gae against its oracle and the special cases of GAE (Schulman et al. 2016)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from helpers import assert_close, assert_matches_oracle
from refrl import kernels, oracle
from strategies import st_rollouts, st_unit

ONE_EPISODE = {  # one env, terminates at the last step
    "rewards": np.array([[1.0], [2.0], [3.0]]),
    "values": np.array([[0.5], [0.25], [-1.0]]),
    "next_values": np.array([[0.25], [-1.0], [7.0]]),
    "terminated": np.array([[False], [False], [True]]),
    "truncated": np.array([[False], [False], [False]]),
}


def _tolerances(batch):
    """float64: round-off only. float32: error grows with the length of the λ-trace."""
    dtype = batch["rewards"].dtype
    if dtype == np.float64:
        return {"rtol": 1e-12, "atol": 1e-11}
    T = batch["rewards"].shape[0]
    scale = 1.0 + max(float(np.abs(batch[k]).max()) for k in ("rewards", "values", "next_values"))
    return {"rtol": 1e-5, "atol": 4 * T * scale * np.finfo(np.float32).eps}


@given(batch=st_rollouts(max_N=20), gamma=st_unit(), lam=st_unit())  # N up to 20: blocks of 8, 4 and 1 env
@example(batch=ONE_EPISODE, gamma=0.99, lam=1.0)
@example(batch=ONE_EPISODE, gamma=0.99, lam=0.0)
def test_gae_matches_oracle(batch, gamma, lam):
    got = kernels.gae(**batch, gamma=gamma, lam=lam)
    want = oracle.gae(**batch, gamma=gamma, lam=lam)
    assert got.advantages.dtype == batch["rewards"].dtype
    assert got.returns.dtype == batch["rewards"].dtype
    assert got.advantages.shape == batch["rewards"].shape
    assert_matches_oracle(got, want, **_tolerances(batch))


@given(batch=st_rollouts(dtype=np.float64), gamma=st_unit(), lam=st_unit())
def test_gae_float32_matches_float64(batch, gamma, lam):
    want = kernels.gae(**batch, gamma=gamma, lam=lam)
    batch32 = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in batch.items()}
    got = kernels.gae(**batch32, gamma=gamma, lam=lam)
    assert got.advantages.dtype == np.float32
    tol = _tolerances(batch32)
    assert_close(got.advantages, want.advantages, rtol=tol["rtol"], atol=tol["atol"] * 2, name="advantages")


def _discounted_sum(x, gamma):
    return sum(gamma**k * xk for k, xk in enumerate(x))


@given(
    rewards=st.lists(st.floats(-10, 10), min_size=1, max_size=30),
    gamma=st_unit(),
    truncated_at_end=st.booleans(),
    bootstrap=st.floats(-10, 10),
)
def test_gae_lambda_one_is_monte_carlo(rewards, gamma, truncated_at_end, bootstrap):
    """λ = 1: A_t = Σ_k γ^k r_{t+k} (+ γ^{T−t} V(s'_{T−1}) if truncated) − V(s_t)."""
    T = len(rewards)
    values = np.linspace(-1.0, 1.0, T)
    next_values = np.append(values[1:], bootstrap)
    terminated = np.zeros(T, dtype=bool)
    truncated = np.zeros(T, dtype=bool)
    (truncated if truncated_at_end else terminated)[-1] = True
    got = kernels.gae(
        np.array(rewards)[:, None], values[:, None], next_values[:, None], terminated[:, None], truncated[:, None],
        gamma, 1.0,
    )
    for t in range(T):
        mc = _discounted_sum(rewards[t:], gamma)
        if truncated_at_end:
            mc += gamma ** (T - t) * bootstrap
        assert got.advantages[t, 0] == pytest.approx(mc - values[t], rel=1e-9, abs=1e-9)
        assert got.returns[t, 0] == pytest.approx(mc, rel=1e-9, abs=1e-9)


@given(batch=st_rollouts(dtype=np.float64), gamma=st_unit())
def test_gae_lambda_zero_is_td_residual(batch, gamma):
    got = kernels.gae(**batch, gamma=gamma, lam=0.0)
    not_term = ~batch["terminated"]
    delta = batch["rewards"] + gamma * np.where(not_term, batch["next_values"], 0.0) - batch["values"]
    assert_close(got.advantages, delta, rtol=1e-12, atol=1e-12, name="advantages")


def test_gae_truncation_bootstraps_termination_does_not():
    r, v, v_next = np.array([[1.0]]), np.array([[0.0]]), np.array([[10.0]])
    yes, no = np.array([[True]]), np.array([[False]])
    truncated = kernels.gae(r, v, v_next, no, yes, gamma=0.9, lam=0.95)
    terminated = kernels.gae(r, v, v_next, yes, no, gamma=0.9, lam=0.95)
    assert truncated.advantages[0, 0] == pytest.approx(1.0 + 0.9 * 10.0)
    assert terminated.advantages[0, 0] == pytest.approx(1.0)


def test_gae_both_episode_ends_cut_the_trace():
    # env 0 truncated at t=0, env 1 terminated at t=0, env 2 continues; step 1 identical for all
    r = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    v = np.zeros((2, 3))
    v_next = np.array([[2.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    term = np.array([[False, True, False], [False, False, False]])
    trunc = np.array([[True, False, False], [False, False, False]])
    got = kernels.gae(r, v, v_next, term, trunc, gamma=0.5, lam=1.0)
    assert got.advantages[0].tolist() == pytest.approx([0.5 * 2.0, 0.0, 0.5 * 5.0])


def test_gae_terminal_step_never_reads_next_value():
    """V(s'_t) after a terminal step may be anything (e.g. NaN): it is not read."""
    r = np.array([[1.0], [1.0]])
    v = np.zeros((2, 1))
    v_next = np.array([[np.nan], [np.inf]])
    term = np.array([[True], [True]])
    got = kernels.gae(r, v, v_next, term, np.zeros((2, 1), bool), gamma=0.99, lam=0.95)
    assert got.advantages.tolist() == [[1.0], [1.0]]


def test_gae_returns_are_advantages_plus_values(rng):
    T, N = 17, 3
    args = [rng.normal(size=(T, N)) for _ in range(3)]
    got = kernels.gae(*args, rng.random((T, N)) < 0.1, rng.random((T, N)) < 0.1, gamma=0.99, lam=0.95)
    np.testing.assert_array_equal(got.returns, got.advantages + args[1])


def test_gae_accepts_numeric_flags_and_noncontiguous_inputs(rng):
    T, N = 9, 4
    r, v, vn = (rng.normal(size=(N, T)).T for _ in range(3))  # transposed views: not C-contiguous
    assert not r.flags.c_contiguous
    term = rng.random((T, N)) < 0.2
    trunc = rng.random((T, N)) < 0.2
    want = oracle.gae(r, v, vn, term, trunc, 0.9, 0.8)
    for flags in [(term, trunc), (term.astype(np.int64), trunc.astype(np.float32)), (term[:, ::1], trunc.T.copy().T)]:
        got = kernels.gae(r, v, vn, *flags, gamma=0.9, lam=0.8)
        assert_matches_oracle(got, want, rtol=1e-12, atol=1e-12)


def test_gae_values_are_converted_to_the_rewards_dtype(rng):
    r = rng.normal(size=(5, 2)).astype(np.float32)
    got = kernels.gae(r, rng.normal(size=(5, 2)), rng.normal(size=(5, 2)), np.zeros((5, 2), bool),
                      np.zeros((5, 2), bool), 0.99, 0.95)
    assert got.advantages.dtype == np.float32 and got.returns.dtype == np.float32


def test_gae_empty_rollout_gives_empty_results():
    empty = np.zeros((0, 3))
    got = kernels.gae(empty, empty, empty, empty.astype(bool), empty.astype(bool), 0.99, 0.95)
    assert got.advantages.shape == (0, 3)
