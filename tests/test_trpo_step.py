"""algos/trpo.py ``trpo_step``, the one TRPO / NPG policy step (native CG over the native Fisher
operator, then the step scaling and the backtracking line search in NumPy), held to the literal
float64 oracle (oracle.trpo_step), plus its guarantees (KL ≤ δ and improvement on acceptance,
θ_old bit for bit on rejection) and its argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from refrl import oracle
from refrl.algos.trpo import TRPO, trpo_step
from refrl.policy import ActorCritic


def _action_space(kind: str, k: int):
    if kind == "discrete":
        return spaces.Discrete(k + 1)
    if kind == "box":
        return spaces.Box(-1.0, 1.0, (k,))
    if kind == "multibinary":
        return spaces.MultiBinary(k)
    return spaces.MultiDiscrete([k + 1, 2, 3][: max(1, k)])


def _problem(kind, k, obs_dim, net_arch, activation, dtype, B, seed, g_sign=1.0, zero_rows=0):
    """A policy with order-1 weights, a batch sampled from it, advantages and g = ±∇L(θ_old)."""
    rng = np.random.default_rng(seed)
    pol = ActorCritic(spaces.Box(-np.inf, np.inf, (obs_dim,)), _action_space(kind, k), net_arch=net_arch,
                      activation=activation, dtype=dtype, rng=rng)  # fmt: skip
    pol.policy_params[...] = rng.uniform(-1.0, 1.0, pol.n_policy_params).astype(dtype)
    if pol.log_std is not None:
        pol.log_std[...] = rng.uniform(-1.0, 0.5, pol.log_std.size).astype(dtype)
    obs = rng.uniform(-2.0, 2.0, (B, obs_dim)).astype(dtype)
    actions, _, _ = pol.act(obs, rng)
    adv = rng.standard_normal(B)
    weights = np.ones(B)
    weights[rng.permutation(B)[:zero_rows]] = 0.0
    logp_old, _, _, cache = pol.evaluate(obs, actions)
    ddist = pol.dist.log_prob_grad(cache["dist_params"], cache["actions"])
    ddist *= (g_sign * weights * adv / weights.sum()).astype(ddist.dtype)[:, None]
    g = np.zeros(pol.n_policy_params, dtype=dtype)
    pol.backward_dist_params(cache, ddist, out=g)
    return pol, obs, actions, logp_old, adv.astype(dtype), weights, g


@st.composite
def trpo_case(draw, dtype=np.float64):
    kind = draw(st.sampled_from(["discrete", "box", "multidiscrete", "multibinary"]))
    k = draw(st.integers(1, 3))
    obs_dim = draw(st.integers(1, 4))
    net_arch = tuple(draw(st.lists(st.integers(1, 6), min_size=0, max_size=2)))
    activation = draw(st.sampled_from(["tanh", "relu"]))
    B = draw(st.integers(2, 24))
    zero_rows = draw(st.integers(0, B - 1))
    g_sign = draw(st.sampled_from([1.0, 1.0, -1.0]))  # -∇L: every try lowers L (rejections)
    seed = draw(st.integers(0, 2**31 - 1))
    problem = _problem(kind, k, obs_dim, net_arch, activation, dtype, B, seed, g_sign, zero_rows)
    hp = {
        "max_kl": draw(st.sampled_from([1e-4, 1e-3, 1e-2, 0.05, 0.3, 2.0])),
        "cg_iters": draw(st.integers(1, 12)),
        "cg_damping": draw(st.sampled_from([1e-3, 1e-2, 0.1, 1.0])),
        "line_search_shrink": draw(st.sampled_from([0.3, 0.5, 0.8])),
        "line_search_max_iter": draw(st.integers(1, 10)),
        "subsample": draw(st.integers(1, 3)),
        "line_search": draw(st.sampled_from([True, True, False])),
    }
    return problem, hp


def _event(message: str) -> None:
    if currently_in_test_context():  # hypothesis statistics, when run under @given
        event(message)


def _step(pol, obs, actions, logp_old, adv, g, **hp):
    """algos/trpo.py trpo_step with the oracle's keyword names (``subsample`` as is)."""
    return trpo_step(pol, obs, actions, logp_old, adv, g, **hp)


def _near_boundary(trace, max_kl, rtol, line_search=True) -> bool:
    """True if a decision of the oracle's line search is within round-off of its threshold
    (KL vs δ, or the gain vs 0 on the scale of a gain, ~ √KL for order-1 advantages)."""
    if not line_search:
        return False  # NPG: the only test is finiteness
    return any(abs(kl - max_kl) <= rtol * max_kl or abs(gain) <= rtol * (1e-12 + math.sqrt(abs(kl))) for _, kl, gain in trace)


def _check_against_oracle(problem, hp, rtol):
    pol, obs, actions, logp_old, adv, weights, g = problem
    theta_old = pol.policy_params.copy()
    used = weights != 0
    got = _step(pol, obs[used], actions[used], logp_old[used], adv[used], g, **hp)
    assert got.theta.tobytes() == pol.policy_params.tobytes()  # the step is written into the policy
    pol.policy_params[...] = theta_old  # the oracle starts from θ_old
    trace: list = []
    want = oracle.trpo_step(pol, obs, actions, logp_old, adv, g, weights=weights, trace=trace, **hp)
    # Two CGs that stop with residuals r1, r2 both solve (F + λI)s = g − r, so their directions
    # differ by at most (‖r1‖ + ‖r2‖)/λ: on ill-conditioned F (small λ) round-off alone moves
    # the truncated solution that much (seen: 1e-3 of the step at λ = 1e-3). That bound, relative
    # to ‖s‖, widens the comparison of θ, KL and gain below; the line search itself is exact.

    def fvp(v):
        return oracle.fisher_vector_product(pol, obs[used], v, damping=hp["cg_damping"], subsample=hp["subsample"])

    s_norm = float(np.linalg.norm(oracle.conjugate_gradient(fvp, g, iters=hp["cg_iters"]).x))
    slack = (got.cg_residual + want.cg_residual) / (hp["cg_damping"] * s_norm) if s_norm > 0 else 0.0
    tol = 100 * rtol + 4.0 * slack  # relative, on the step and on the KL / gain of the same try
    # guarantees of the step, whatever the oracle says
    if got.accepted:
        if hp["line_search"]:
            assert got.kl <= hp["max_kl"] and got.surrogate_gain > 0.0
        # the KL recomputed independently by ActorCritic.kl (NumPy)
        old_dp = pol.dist_params(obs[used])
        pol.policy_params[...] = got.theta
        atol = 1e-12 if np.dtype(pol.dtype) == np.float64 else 1e-6  # float32 NumPy KL: cancellation ~1e-7/term
        assert pol.kl(obs[used], old_dp) == pytest.approx(got.kl, rel=10 * rtol, abs=atol)
        pol.policy_params[...] = theta_old
    else:
        assert got.theta.tobytes() == theta_old.tobytes()  # θ_old bit for bit
        assert got.kl == 0.0 and got.surrogate_gain == 0.0
    assert got.status == want.status or _near_boundary(trace, hp["max_kl"], 1e3 * rtol + 4.0 * tol, hp["line_search"])
    if np.dtype(pol.dtype) == np.float64:  # rᵀr ≤ cg_tol may be crossed one iteration apart
        assert abs(got.cg_iterations - want.cg_iterations) <= 1
    assert got.surrogate_old == pytest.approx(want.surrogate_old, rel=rtol, abs=rtol)
    if want.status in ("accepted", "rejected"):
        assert got.quadratic_kl == pytest.approx(hp["max_kl"], rel=1e-9)
    _event(f"oracle: {want.status}, line_search={hp['line_search']}")
    if _near_boundary(trace, hp["max_kl"], 1e3 * rtol + 4.0 * tol, hp["line_search"]):
        _event("near the KL/improvement boundary: decision not compared")
        return  # the decision may differ by round-off; the guarantees above still hold
    assert (got.accepted, got.backtracks) == (want.accepted, want.backtracks)
    step = np.linalg.norm(want.theta - theta_old) + 1e-30
    assert np.linalg.norm(got.theta - want.theta) <= tol * step + 1e-300
    if got.accepted:
        assert got.step_fraction == want.step_fraction
        assert got.kl == pytest.approx(want.kl, rel=2 * tol, abs=1e-14)
        assert got.surrogate_gain == pytest.approx(want.surrogate_gain, rel=2 * tol, abs=1e-14)
        assert got.expected_gain == pytest.approx(want.expected_gain, rel=2 * tol, abs=1e-14)


@given(trpo_case())
def test_trpo_step_matches_oracle(case):
    problem, hp = case
    _check_against_oracle(problem, hp, rtol=1e-8)


@settings(max_examples=25)
@given(trpo_case(dtype=np.float32))
def test_trpo_step_float32_matches_float64_oracle(case):
    problem, hp = case
    hp["cg_damping"] = max(hp["cg_damping"], 0.1)  # float32 CG on a badly conditioned F drifts
    _check_against_oracle(problem, hp, rtol=2e-4)


@pytest.mark.parametrize("kind", ["discrete", "box", "multidiscrete", "multibinary"])
def test_trpo_step_rejected_step_returns_theta_old_bit_identical(kind):
    pol, obs, actions, logp_old, adv, _weights, g = _problem(kind, 2, 3, (8,), "tanh", np.float32, 64, 1, g_sign=-1.0)
    theta_old = pol.policy_params.copy()
    r = trpo_step(pol, obs, actions, logp_old, adv, g, max_kl=1e-3, line_search_max_iter=4)
    assert not r.accepted and r.status == "rejected" and r.backtracks == 4
    assert r.theta.tobytes() == theta_old.tobytes()
    assert pol.policy_params.tobytes() == theta_old.tobytes()  # θ_old restored bit for bit
    assert not np.shares_memory(r.theta, pol.policy_params)
    # the same batch with +g is accepted, inside the trust region
    r = trpo_step(pol, obs, actions, logp_old, adv, -g, max_kl=1e-3, line_search_max_iter=4)
    assert r.accepted and 0.0 < r.kl <= 1e-3 and r.surrogate_gain > 0.0
    assert r.theta.tobytes() == pol.policy_params.tobytes()


def test_trpo_step_npg_takes_the_full_step():
    pol, obs, actions, logp_old, adv, _weights, g = _problem("box", 2, 3, (8,), "tanh", np.float64, 64, 2)
    theta_old = pol.policy_params.copy()
    r = trpo_step(pol, obs, actions, logp_old, adv, g, max_kl=0.05, line_search=False)
    pol.policy_params[...] = theta_old
    want = oracle.trpo_step(pol, obs, actions, logp_old, adv, g, max_kl=0.05, line_search=False)
    assert r.accepted and r.backtracks == 0 and r.step_fraction == 1.0
    np.testing.assert_allclose(r.theta, want.theta, rtol=1e-9, atol=1e-12)
    assert 0.25 * 0.05 < r.kl < 4 * 0.05  # the quadratic model's KL radius, roughly


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
@pytest.mark.parametrize("max_kl", [0.01, 0.2])
def test_trpo_policy_step_on_a_real_batch_matches_oracle(env_id, max_kl):
    """TRPO.policy_step on a real CartPole/Pendulum batch (float64) is trpo_step with the config's
    values: the oracle's decision and θ, and the same θ as calling trpo_step directly."""
    agent = TRPO(env_id, seed=5, n_envs=2, n_steps=64, net_arch=(16,), dtype="float64", max_kl=max_kl,
                 line_search_max_iter=3)  # fmt: skip
    agent.collect_rollouts()
    agent.compute_advantages()
    b = agent.flat_batch()
    idx = np.flatnonzero(b.weights > 0)
    obs, actions, adv = b.obs[idx], b.actions[idx], b.advantages[idx]
    adv = (adv - adv.mean()) / adv.std(ddof=1)
    pol, cfg = agent.policy, agent.config
    theta_old = pol.policy_params.copy()
    g, logp_old = agent.policy_gradient(obs, actions, adv)
    info = agent.policy_step(obs, actions, adv)
    assert info.theta.tobytes() == pol.policy_params.tobytes()
    pol.policy_params[...] = theta_old
    hp = dict(max_kl=max_kl, cg_iters=cfg.cg_iters, cg_damping=cfg.cg_damping, cg_tol=cfg.cg_tol,
              line_search_shrink=cfg.line_search_shrink, line_search_max_iter=cfg.line_search_max_iter,
              subsample=cfg.fvp_subsample, line_search=True)  # fmt: skip
    assert _step(pol, obs, actions, logp_old, adv, g, **hp).theta.tobytes() == info.theta.tobytes()
    pol.policy_params[...] = theta_old
    _check_against_oracle((pol, obs, actions, logp_old, adv, np.ones(adv.shape[0]), g), hp, rtol=1e-8)


# ------------------------------------------------------------------ argument checks
@pytest.fixture
def small():
    return _problem("discrete", 2, 3, (4,), "tanh", np.float64, 8, 0)


@pytest.mark.parametrize(
    "change, match",
    [
        # checked by trpo_step itself
        (lambda p: p.update(logp_old=p["logp_old"][:5]), "trpo_step: .*'logp_old'"),
        (lambda p: p.update(adv=np.full(8, np.nan)), "trpo_step: .*'adv'"),
        (lambda p: p.update(adv=p["adv"][:5]), "trpo_step: .*'adv'"),
        (lambda p: p.update(g=p["g"][:-1]), "trpo_step: .*'g'"),
        (lambda p: p.update(g=np.full_like(p["g"], np.inf)), "trpo_step: .*'g'"),
        (lambda p: p.update(max_kl=0.0), "trpo_step: .*'max_kl'"),
        (lambda p: p.update(max_kl=math.nan), "trpo_step: .*'max_kl'"),
        (lambda p: p.update(line_search_shrink=1.0), "trpo_step: .*'line_search_shrink'"),
        (lambda p: p.update(line_search_max_iter=0), "trpo_step: .*'line_search_max_iter'"),
        # the solver's arguments, under the names trpo_step takes them
        (lambda p: p.update(cg_iters=-1), "trpo_step: 'cg_iters'"),
        (lambda p: p.update(cg_damping=-0.1), "trpo_step: 'cg_damping'"),
        (lambda p: p.update(subsample=0), "trpo_step: 'subsample'"),
        # the batch, named by the callee (the policy)
        (lambda p: p.update(obs=p["obs"][:, :2]), "'obs'"),
        (lambda p: p.update(actions=p["actions"] + 7), "'actions'"),
    ],
)
def test_trpo_step_rejects_bad_arguments(small, change, match):
    pol, obs, actions, logp_old, adv, _weights, g = small
    theta_old = pol.policy_params.copy()
    p = {"obs": obs, "actions": actions, "logp_old": logp_old, "adv": adv, "g": g, "max_kl": 0.01}
    change(p)
    with pytest.raises((ValueError, TypeError), match=match):
        trpo_step(pol, **p)
    assert pol.policy_params.tobytes() == theta_old.tobytes()


def test_trpo_step_rejects_a_mistyped_line_search_flag(small):
    pol, obs, actions, logp_old, adv, _weights, g = small
    with pytest.raises(TypeError, match="trpo_step: 'line_search'"):
        trpo_step(pol, obs, actions, logp_old, adv, g, max_kl=0.01, line_search=1)
