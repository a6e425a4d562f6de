"""VPG / REINFORCE: advantages without a baseline are the Monte-Carlo discounted returns, the
update follows the policy-gradient estimator exactly, the baseline is fitted, bad
hyperparameters are rejected, checkpoints round-trip."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import numerical_grad, rel_error

from refrl.algos import get_algorithm
from refrl.algos.vpg import VPG
from refrl.config import VPGConfig


def test_vpg_without_baseline_advantages_are_discounted_returns():
    agent = VPG("CartPole-v1", seed=0, n_envs=2, n_steps=200, use_baseline=False, gamma=0.9)
    agent.collect_rollouts()
    agent.compute_advantages()
    buf = agent.buffer
    T, N = buf.rewards.shape
    for n in range(N):  # literal G_t = r_t + γ G_{t+1}, restarted at every episode end
        G = 0.0
        for t in reversed(range(T)):
            if buf.terminated[t, n] or buf.truncated[t, n]:
                G = 0.0
            G = float(buf.rewards[t, n]) + 0.9 * G
            want = G if buf.valid[t, n] else 0.0
            assert buf.advantages[t, n] == pytest.approx(want, rel=1e-5, abs=1e-5)
            if not buf.valid[t, n]:
                G = 0.0
    assert np.array_equal(buf.returns, buf.advantages)


@pytest.mark.parametrize("use_baseline", [True, False])
def test_vpg_gradient_is_the_reinforce_estimator(use_baseline):
    """After one update, policy_grads = −∇_θ Ê[log π_θ(a|s) Â] at the pre-update θ (central FD)."""
    agent = VPG("Pendulum-v1", seed=2, n_envs=1, n_steps=64, net_arch=(8,), dtype="float64",
                use_baseline=use_baseline, n_critic_updates=1)
    agent.collect_rollouts()
    agent.compute_advantages()
    b = agent.flat_batch()
    idx = np.flatnonzero(b.weights > 0)
    obs, actions, adv = b.obs[idx], b.actions[idx], b.advantages[idx].copy()
    policy = agent.policy
    theta0 = policy.policy_params.copy()

    def objective(th):
        policy.policy_params[...] = th
        return float(np.mean(policy.log_prob(obs, actions) * adv))

    want = -numerical_grad(objective, theta0.copy())
    policy.policy_params[...] = theta0
    agent.train()
    # large returns (Pendulum, no baseline: |Â| ~ 50) make FD rounding ~1e-9 absolute: compare in norm
    assert np.linalg.norm(policy.policy_grads - want) < 1e-6 * np.linalg.norm(want)
    assert rel_error(policy.policy_grads[np.abs(want) > 1e-2], want[np.abs(want) > 1e-2]) < 1e-5
    assert not np.array_equal(policy.policy_params, theta0)
    row = agent.logger.dump(0)
    assert row["train/kl"] > 0.0


def test_vpg_baseline_is_fitted_and_unused_without_it():
    with_b = VPG("CartPole-v1", seed=0, n_envs=2, n_steps=128, n_critic_updates=5)
    v0 = with_b.policy.value_params.copy()
    with_b.learn(256)
    assert not np.array_equal(with_b.policy.value_params, v0)
    without = VPG("CartPole-v1", seed=0, n_envs=2, n_steps=128, use_baseline=False)
    v0 = without.policy.value_params.copy()
    without.learn(256)
    assert np.array_equal(without.policy.value_params, v0)


@pytest.mark.parametrize(
    ("kw", "name", "exc"),
    [
        (dict(learning_rate=0.0), "learning_rate", ValueError),
        (dict(n_epochs=0), "n_epochs", ValueError),
        (dict(vf_learning_rate=-1.0), "vf_learning_rate", ValueError),
        (dict(n_critic_updates=-1), "n_critic_updates", ValueError),
        (dict(ent_coef=-0.1), "ent_coef", ValueError),
        (dict(use_baseline="yes"), "use_baseline", TypeError),
        (dict(gae_lambda=1.5), "gae_lambda", ValueError),
    ],
)
def test_vpg_rejects_bad_hyperparameters(kw, name, exc):
    with pytest.raises(exc, match=name):
        VPGConfig(**kw)
    with pytest.raises(exc, match=name):
        VPG("NoSuchEnv-v0", **kw)


def test_vpg_registered_save_load_round_trip(tmp_path):
    assert get_algorithm("vpg") is VPG
    a = VPG("CartPole-v1", seed=4, n_envs=2, n_steps=64, n_epochs=2).learn(256)
    b = VPG("CartPole-v1", seed=4, n_envs=2, n_steps=64, n_epochs=2).learn(256)
    assert a.policy.params.tobytes() == b.policy.params.tobytes()
    c = VPG.load(a.save(tmp_path / "vpg.npz"))
    assert c.policy.params.tobytes() == a.policy.params.tobytes()
    for x, y in ((a.optimizer, c.optimizer), (a.critic_optimizer, c.critic_optimizer)):
        sx, sy = x.state_dict(), y.state_dict()
        assert np.array_equal(sx["m"], sy["m"]) and np.array_equal(sx["v"], sy["v"])
