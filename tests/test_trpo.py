"""TRPO and NPG: the trust region holds on every update of real training runs (checked
independently of the line search), rejected steps leave θ bit-identical, the step direction
solves (F + λI) s = g, the CPI surrogate's gradient at θ_old is the vanilla policy gradient,
hyperparameters are validated, checkpoints round-trip."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from helpers import numerical_grad, rel_error

import refrl
from refrl import oracle
from refrl.algos import get_algorithm
from refrl.algos.trpo import NPG, TRPO, step_direction
from refrl.config import NPGConfig, TRPOConfig


def _record_steps(agent):
    """Wrap ``agent.policy_step`` to record, per update, θ_old, the old distribution parameters
    on the batch, the result and θ after the step — so the KL can be recomputed independently."""
    records = []
    inner = agent.policy_step

    def wrapped(obs, actions, adv):
        params_before = agent.policy.params.copy()
        dist_old = agent.policy.dist_params(obs).copy()  # π_θold on the batch, computed here
        info = inner(obs, actions, adv)
        records.append((obs.copy(), dist_old, params_before, agent.policy.params.copy(), info))
        return info

    agent.policy_step = wrapped
    return records


# ------------------------------------------------------------------ the trust region, in real runs
@pytest.mark.parametrize(
    ("env_id", "kw"),
    [
        # line_search_max_iter=1 and a large δ make rejections frequent (so both branches are seen)
        ("CartPole-v1", dict(line_search_max_iter=1, max_kl=0.05, cg_damping=1e-3)),
        ("CartPole-v1", dict(line_search_max_iter=2, line_search_shrink=0.5, max_kl=0.2, cg_damping=1e-3)),
        ("Pendulum-v1", dict(line_search_max_iter=1, max_kl=0.05, cg_damping=1e-3)),
        ("CartPole-v1", dict(dtype="float64", max_kl=0.01)),  # defaults otherwise
    ],
)
def test_trpo_every_accepted_step_within_max_kl_and_rejected_step_bit_identical(env_id, kw):
    agent = TRPO(env_id, seed=0, n_envs=2, n_steps=256, n_critic_updates=2, **kw)
    records = _record_steps(agent)
    agent.learn(2 * 256 * 16)
    assert len(records) >= 16  # reset slots are not counted as steps: a few more rollouts
    n_accepted = 0
    for obs, dist_old, before, after, info in records:
        if info.accepted:
            n_accepted += 1
            saved = agent.policy.params.copy()  # ActorCritic.kl at the params after the step
            agent.policy.params[...] = after
            kl_independent = agent.policy.kl(obs, dist_old)
            agent.policy.params[...] = saved
            assert kl_independent <= agent.config.max_kl, (kl_independent, info)
            assert kl_independent == pytest.approx(info.kl, rel=1e-3, abs=1e-9)
            assert info.surrogate_gain > 0.0
            assert not np.array_equal(before, after)
        else:
            assert before.tobytes() == after.tobytes()  # bit-identical, policy and value parts
            assert info.backtracks == agent.config.line_search_max_iter
    if kw.get("line_search_max_iter") is not None:
        assert 0 < n_accepted < len(records)  # both branches exercised in this run
    else:
        assert n_accepted >= len(records) // 2


def test_npg_takes_the_full_natural_step_every_update():
    # damping 1e-2: with 1e-3 the step follows near-null directions of F where the quadratic
    # model is poor (exact KL up to 4.5δ on one update of seed 1), which is what the line search is for
    agent = NPG("CartPole-v1", seed=1, n_envs=2, n_steps=256, n_critic_updates=2, dtype="float64", cg_damping=1e-2)
    records = _record_steps(agent)
    agent.learn(2 * 256 * 6)
    for obs, dist_old, before, after, info in records:
        assert info.accepted and info.backtracks == 0 and info.step_fraction == 1.0
        # the step is scaled so that its quadratic KL model equals δ: the exact KL is close to it
        assert info.quadratic_kl == pytest.approx(agent.config.max_kl, rel=1e-9)
        assert 0.25 * agent.config.max_kl < info.kl < 4.0 * agent.config.max_kl


# ------------------------------------------------------------------ the step direction
def _small_agent(env_id="CartPole-v1", **kw):
    agent = TRPO(env_id, seed=3, n_envs=1, n_steps=64, net_arch=(8,), dtype="float64", n_critic_updates=1, **kw)
    agent.collect_rollouts()
    agent.compute_advantages()
    b = agent.flat_batch()
    idx = np.flatnonzero(b.weights > 0)
    adv = b.advantages[idx]
    return agent, b.obs[idx], b.actions[idx], (adv - adv.mean()) / adv.std(ddof=1)


def _direction(agent, obs, g):
    cfg = agent.config
    return step_direction(agent.policy, obs, g, cg_iters=cfg.cg_iters, cg_damping=cfg.cg_damping, cg_tol=cfg.cg_tol,
                          subsample=cfg.fvp_subsample)  # fmt: skip


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
@pytest.mark.parametrize("damping", [0.1, 1e-2])
def test_trpo_step_direction_solves_damped_fisher_system(env_id, damping):
    agent, obs, actions, adv = _small_agent(env_id, cg_damping=damping, cg_iters=400, cg_tol=1e-24)
    g, _ = agent.policy_gradient(obs, actions, adv)
    cg, _ = _direction(agent, obs, g)
    F = oracle.fisher_matrix(agent.policy, obs)  # explicit per-sample JᵀMJ, independent of the C++
    A = F + damping * np.eye(F.shape[0])
    want = np.linalg.solve(A, g)
    assert rel_error(cg.x, want) < 1e-6
    # the reported residual is the true residual of the damped system (to rounding)
    assert np.linalg.norm(A @ cg.x - g) == pytest.approx(cg.residual_norm, abs=1e-9)


def test_trpo_default_cg_iterations_reduce_the_residual_and_report_it():
    agent, obs, actions, adv = _small_agent("CartPole-v1")  # cg_iters=10, damping 0.1 (paper/peers)
    g, _ = agent.policy_gradient(obs, actions, adv)
    cg, _ = _direction(agent, obs, g)
    A = oracle.fisher_matrix(agent.policy, obs) + 0.1 * np.eye(g.size)
    true_res = np.linalg.norm(A @ cg.x - g)
    assert cg.iterations <= 10
    assert true_res == pytest.approx(cg.residual_norm, rel=1e-4, abs=1e-10)
    assert true_res < 0.1 * np.linalg.norm(g)


# ------------------------------------------------------------------ surrogate = policy gradient at θ_old
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_cpi_surrogate_grad_at_theta_old_equals_vanilla_policy_gradient(env_id):
    agent, obs, actions, adv = _small_agent(env_id)
    policy = agent.policy
    theta = policy.policy_params
    theta_old = theta.copy()
    logp_old = policy.log_prob(obs, actions).copy()

    def surrogate_cpi(th):  # L^CPI(θ) = Ê[π_θ/π_θold · Â]
        theta[...] = th
        return float(np.mean(np.exp(policy.log_prob(obs, actions) - logp_old) * adv))

    def objective_pg(th):  # L^PG(θ) = Ê[log π_θ · Â] (REINFORCE)
        theta[...] = th
        return float(np.mean(policy.log_prob(obs, actions) * adv))

    d_cpi = numerical_grad(surrogate_cpi, theta_old.copy())
    d_pg = numerical_grad(objective_pg, theta_old.copy())
    theta[...] = theta_old
    g, _ = agent.policy_gradient(obs, actions, adv)
    assert rel_error(d_cpi, d_pg) < 1e-5  # elementwise; FD rounding ~1e-10 on entries ~1e-5
    assert rel_error(g, d_cpi) < 1e-5
    # first-order expansion: L(θ_old + εv) − L(θ_old) = ε gᵀv + O(ε²)
    v = np.random.default_rng(0).standard_normal(theta.size)
    for eps in (1e-3, 1e-4):
        gap = surrogate_cpi(theta_old + eps * v) - surrogate_cpi(theta_old) - eps * float(g @ v)
        assert abs(gap) < 50 * eps**2 * np.linalg.norm(v) ** 2
    theta[...] = theta_old


# ------------------------------------------------------------------ hyperparameters
@pytest.mark.parametrize(
    ("kw", "name"),
    [
        (dict(max_kl=0.0), "max_kl"),
        (dict(max_kl=-0.01), "max_kl"),
        (dict(max_kl=float("nan")), "max_kl"),
        (dict(cg_iters=0), "cg_iters"),
        (dict(line_search_shrink=0.0), "line_search_shrink"),
        (dict(line_search_shrink=1.0), "line_search_shrink"),
        (dict(line_search_shrink=1.5), "line_search_shrink"),
        (dict(line_search_max_iter=0), "line_search_max_iter"),
        (dict(cg_damping=-0.1), "cg_damping"),
        (dict(n_critic_updates=-1), "n_critic_updates"),
        (dict(fvp_subsample=0), "fvp_subsample"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_trpo_rejects_bad_hyperparameters(kw, name):
    with pytest.raises(ValueError, match=name):
        TRPOConfig(**kw)
    # raised by the constructor before any environment is built: an invalid env id is never reached
    with pytest.raises(ValueError, match=name):
        TRPO("NoSuchEnv-v0", **kw)


def test_trpo_rejects_wrong_types_and_unknown_names():
    with pytest.raises(TypeError, match="cg_iters"):
        TRPOConfig(cg_iters=2.5)
    with pytest.raises(TypeError, match="target_kl"):
        TRPO("CartPole-v1", target_kl=0.01)  # sb3-contrib's name: refrl calls it max_kl
    with pytest.raises(ValueError, match="max_kl"):
        NPGConfig(max_kl=0.0)
    with pytest.raises(TypeError, match="line_search_shrink"):
        NPG("CartPole-v1", line_search_shrink=0.5)  # NPG has no line search


# ------------------------------------------------------------------ API, logging, checkpoints
def test_trpo_logs_update_diagnostics_and_is_registered():
    assert get_algorithm("trpo") is refrl.TRPO and get_algorithm("npg") is refrl.NPG
    agent = TRPO("CartPole-v1", seed=0, n_envs=2, n_steps=128, n_critic_updates=1).learn(256)
    row = agent.logger.history[-1]
    for key in ("train/kl", "train/surrogate_gain", "train/expected_improvement", "train/line_search_backtracks",
                "train/step_accepted", "train/cg_iterations", "train/cg_residual", "train/value_loss",
                "train/explained_variance", "rollout/ep_rew_mean", "time/fps"):
        assert key in row, key
    assert 1 <= row["train/cg_iterations"] <= 10
    if row["train/step_accepted"]:
        assert 0 < row["train/kl"] <= 0.01


def test_trpo_same_seed_same_numbers_and_save_load_round_trip(tmp_path):
    kw = dict(n_envs=2, n_steps=128, n_critic_updates=2)
    a = TRPO("Pendulum-v1", seed=5, **kw).learn(512)
    b = TRPO("Pendulum-v1", seed=5, **kw).learn(512)
    assert a.policy.params.tobytes() == b.policy.params.tobytes()
    path = a.save(tmp_path / "trpo.npz")
    c = TRPO.load(path)
    assert c.policy.params.tobytes() == a.policy.params.tobytes()
    assert c.config == a.config and c.n_updates == a.n_updates
    st_a, st_c = a.critic_optimizer.state_dict(), c.critic_optimizer.state_dict()
    assert np.array_equal(st_a["m"], st_c["m"]) and np.array_equal(st_a["v"], st_c["v"])
    obs = np.zeros((3, 3), dtype=np.float32)
    assert np.array_equal(a.predict(obs, deterministic=True)[0], c.predict(obs, deterministic=True)[0])
    with pytest.raises(ValueError, match="trpo"):
        NPG.load(path)


def test_trpo_multidiscrete_actions_step_within_trust_region():
    from gymnasium.vector import SyncVectorEnv

    class TwoHeads(gym.Env):  # reward for matching a hidden target per component, episode of 8 steps
        observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        action_space = gym.spaces.MultiDiscrete([3, 2])

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            self.o = self.np_random.uniform(-1, 1, 2).astype(np.float32)
            return self.o, {}

        def step(self, a):
            self.t += 1
            r = float(a[0] == (self.o[0] > 0) + 1) + float(a[1] == (self.o[1] > 0))
            self.o = self.np_random.uniform(-1, 1, 2).astype(np.float32)
            return self.o, r, False, self.t >= 8, {}

    env = SyncVectorEnv([TwoHeads, TwoHeads], autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    agent = TRPO(env, seed=0, n_envs=2, n_steps=64, n_critic_updates=2)
    records = _record_steps(agent)
    agent.learn(2 * 64 * 4)
    for obs, dist_old, before, after, info in records:
        saved = agent.policy.params.copy()
        agent.policy.params[...] = after
        kl = agent.policy.kl(obs, dist_old)
        agent.policy.params[...] = saved
        assert kl <= agent.config.max_kl if info.accepted else before.tobytes() == after.tobytes()


def test_checkpoint_with_the_retired_use_native_step_option_still_loads(tmp_path):
    from refrl.serialization import load_checkpoint, save_checkpoint

    agent = TRPO("CartPole-v1", seed=0, n_envs=1, n_steps=32, batch_size=16, net_arch=(8,))
    path = agent.save(tmp_path / "trpo.npz")
    arrays, meta = load_checkpoint(path)
    meta["config"]["use_native_step"] = True  # written by refrl before the native step was retired
    save_checkpoint(path, arrays, meta)
    loaded = TRPO.load(path)
    np.testing.assert_array_equal(loaded.policy.policy_params, agent.policy.policy_params)
    assert "use_native_step" not in loaded.config.to_dict()
