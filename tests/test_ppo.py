"""PPO: determinism, save/load, resume, truncation bootstrapping end to end, the options
(KL penalty, value clipping, target KL, normalisation) and every bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

import refrl
from refrl.algos import get_algorithm, load
from refrl.algos.base import explained_variance
from refrl.config import PPOConfig, tuned_defaults
from refrl.serialization import load_checkpoint, save_checkpoint

SMALL = dict(n_envs=2, n_steps=64, batch_size=32, n_epochs=2)


def _strip_time(rows):
    return [{k: v for k, v in r.items() if not k.startswith("time/") or k == "time/total_timesteps"} for r in rows]


# ---------------------------------------------------------------------------- determinism
def test_ppo_same_seed_identical_metrics_and_params():
    a = refrl.PPO("CartPole-v1", seed=3, **SMALL).learn(600)
    b = refrl.PPO("CartPole-v1", seed=3, **SMALL).learn(600)
    assert _strip_time(a.logger.history) == _strip_time(b.logger.history)
    np.testing.assert_array_equal(a.policy.params, b.policy.params)
    c = refrl.PPO("CartPole-v1", seed=4, **SMALL).learn(600)
    assert not np.array_equal(a.policy.params, c.policy.params)


def test_ppo_logs_sb3_metrics():
    agent = refrl.PPO("CartPole-v1", seed=0, **SMALL).learn(300)
    row = agent.logger.history[-1]
    for key in ("train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl", "train/clip_fraction",
                "train/ratio_max", "train/explained_variance", "train/learning_rate", "time/fps",
                "rollout/ep_rew_mean", "rollout/ep_len_mean", "time/total_timesteps"):
        assert key in row, key
        assert np.isfinite(row[key]), key
    assert row["train/ratio_max"] >= 1.0
    assert row["train/learning_rate"] == pytest.approx(3e-4)


def test_ppo_first_minibatch_ratio_is_one():
    """'37 details' debugging check: before any step, π_θ = π_old, so r = 1 and KL = 0."""
    agent = refrl.PPO("CartPole-v1", seed=0, n_envs=1, n_steps=64, batch_size=64, n_epochs=1)
    agent.num_timesteps += agent.collect_rollouts()
    agent.compute_advantages()
    b = agent.flat_batch()
    logp, _, values, _ = agent.policy.evaluate(b.obs, b.actions)
    np.testing.assert_allclose(logp, b.logp, rtol=0, atol=1e-6)
    np.testing.assert_allclose(values, b.values, rtol=0, atol=1e-6)


def test_ppo_timesteps_count_real_transitions_only():
    agent = refrl.PPO("CartPole-v1", seed=0, n_envs=1, n_steps=256, batch_size=64, n_epochs=1)
    n_real = agent.collect_rollouts()
    n_reset = int((~agent.buffer.valid).sum())
    assert n_reset > 0  # CartPole episodes under a random policy are short
    assert n_real == 256 - n_reset
    agent.learn(256)  # the first rollout has fewer than 256 real transitions: a second one runs
    assert agent.iteration == 2 and agent.num_timesteps >= 256


def test_ppo_lr_annealing_reaches_zero_linearly():
    agent = refrl.PPO("CartPole-v1", seed=0, anneal_lr=True, learning_rate=1e-3, **SMALL).learn(1000)
    lrs = [r["train/learning_rate"] for r in agent.logger.history]
    steps = [r["time/total_timesteps"] for r in agent.logger.history]
    for lr, s in zip(lrs, steps):
        assert lr == pytest.approx(1e-3 * max(0.0, 1 - s / 1000))


# ---------------------------------------------------------------------------- truncation, end to end
class ConstantRewardEnv(gym.Env):
    """Constant observation, reward 1, never terminates: with γ the true value is 1/(1 − γ)."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 1.0, False, False, {}


def test_ppo_truncation_bootstrapping_learns_infinite_horizon_value():
    """TimeLimit(5) cuts an endless task.  Bootstrapping the truncated steps from V(final obs)
    makes the value converge to 1/(1−γ) = 10; treating truncation as termination would give the
    average of the truncated returns, (1 + 1.9 + 2.71 + 3.44 + 4.10)/5 ≈ 2.6."""
    venv = gym.vector.SyncVectorEnv([lambda: TimeLimit(ConstantRewardEnv(), 5) for _ in range(4)])
    agent = refrl.PPO(venv, seed=0, n_envs=4, n_steps=32, batch_size=64, n_epochs=10, gamma=0.9,
                      gae_lambda=0.95, learning_rate=3e-3, vf_coef=1.0)
    agent.learn(12_000)
    v = agent.policy.predict_values(np.zeros((1, 1), np.float32))[0]
    assert v == pytest.approx(10.0, abs=0.5)


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "options",
    [
        dict(objective="kl_penalty", kl_target=0.01),
        dict(clip_range_vf=0.2),
        dict(target_kl=1e-5, n_epochs=10),
        dict(normalize_obs=True, normalize_reward=True),
        dict(normalize_advantage=False, max_grad_norm=None, ortho_init=False, anneal_clip_range=True),
        dict(dtype="float64", ent_coef=0.01),
    ],
)
def test_ppo_options_train_and_log(options):
    agent = refrl.PPO("CartPole-v1", seed=0, **{**SMALL, **options}).learn(400)
    cfg = agent.config
    rows = agent.logger.history
    assert len(rows) == agent.iteration >= 2
    assert np.isfinite(agent.policy.params).all()
    assert agent.policy.params.dtype == np.dtype(options.get("dtype", "float32"))
    beta = cfg.kl_coef
    for row in rows:
        # the logged statistics are what their definitions allow
        assert row["train/value_loss"] > 0 and row["train/approx_kl"] >= 0  # k3 is ≥ 0 per sample
        assert 0 <= row["train/clip_fraction"] <= 1
        assert 0 < row["train/ratio_min"] <= 1 <= row["train/ratio_max"]
        assert 0 < row["train/entropy"] <= np.log(2) + 1e-6 and row["train/entropy_loss"] == -row["train/entropy"]
        assert row["train/explained_variance"] <= 1
        assert row["train/grad_norm"] > 0
        # loss = −L + c1·L^VF − c2·H (+ β·KL for the penalty, whose per-minibatch KL is not logged)
        total = row["train/policy_loss"] + cfg.vf_coef * row["train/value_loss"] - cfg.ent_coef * row["train/entropy"]
        if cfg.objective == "kl_penalty":
            assert row["train/loss"] >= total - 1e-9  # β·KL ≥ 0
            # the adaptive rule, replayed from the logged mean KL of this update (β before the update: beta)
            d = row["train/kl"]
            assert d >= 0
            beta = beta / 2 if d < cfg.kl_target / 1.5 else (beta * 2 if d > 1.5 * cfg.kl_target else beta)
            assert row["train/kl_coef"] == beta
        else:
            assert row["train/loss"] == pytest.approx(total, rel=1e-12, abs=1e-12)
        epochs = row["train/n_epochs"]
        if cfg.target_kl is not None:  # 1e-5 is tiny: the update must stop before 10 epochs
            assert 1 <= epochs < 10
            # every step taken had approx_kl ≤ 1.5·target_kl (checked before the step), so their mean has too
            assert row["train/approx_kl"] <= 1.5 * cfg.target_kl
        else:
            assert epochs == cfg.n_epochs
    if cfg.anneal_clip_range:
        for row in rows:
            frac = 1 - row["time/total_timesteps"] / 400  # progress remaining after this update's rollout
            assert row["train/clip_range"] == pytest.approx(max(cfg.clip_range * frac, 1e-8))
    else:
        assert all(row["train/clip_range"] == cfg.clip_range for row in rows)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(clip_range_vf=0.2),
        dict(normalize_advantage=False),
        dict(objective="kl_penalty"),
        dict(dtype="float64", ent_coef=0.01),
    ],
)
def test_ppo_first_step_statistics_at_theta_old(options):
    """One epoch, one minibatch: the only step is taken at θ = θ_old, so r = 1 everywhere.  Then
    L^CLIP = L^KLPEN = Ê[Â] (0 once Â is normalised), the clip fraction and approx KL are 0, and the
    clipped and unclipped value losses are both Ê[(V_old − R)²] = Ê[Â²] (raw GAE advantages)."""
    agent = refrl.PPO("CartPole-v1", seed=0, n_envs=2, n_steps=64, batch_size=128, n_epochs=1, **options)
    agent.learn(1)  # one rollout, one update
    row = agent.logger.history[-1]
    b = agent.flat_batch()
    w = b.weights.astype(np.float64)
    adv = b.advantages.astype(np.float64)
    mean_adv = np.dot(w, adv) / w.sum()
    assert row["train/policy_loss"] == pytest.approx(0.0 if agent.config.normalize_advantage else -mean_adv, abs=1e-6)
    assert row["train/value_loss"] == pytest.approx(np.dot(w, adv**2) / w.sum(), rel=1e-5)
    assert row["train/clip_fraction"] == 0.0
    assert row["train/approx_kl"] == pytest.approx(0.0, abs=1e-7)
    assert row["train/ratio_min"] == pytest.approx(1.0, abs=1e-6)
    assert row["train/ratio_max"] == pytest.approx(1.0, abs=1e-6)
    assert row["train/n_updates"] == 1


def test_ppo_adaptive_kl_rule():
    """β halves when KL < d_targ/1.5 and doubles when KL > 1.5 d_targ (PPO paper §4)."""
    agent = refrl.PPO("CartPole-v1", seed=0, objective="kl_penalty", kl_target=1e-9, learning_rate=1e-3, **SMALL)
    agent.learn(128)
    assert agent.kl_coef == 2.0**agent.iteration  # any update moves the policy by more than 1.5e-9
    agent = refrl.PPO("CartPole-v1", seed=0, objective="kl_penalty", kl_target=10.0, **SMALL)
    agent.learn(128)
    assert agent.kl_coef == 0.5**agent.iteration
    agent = refrl.PPO("CartPole-v1", seed=0, objective="kl_penalty", kl_target=1e-9, kl_adaptive=False, **SMALL)
    agent.learn(128)
    assert agent.kl_coef == 1.0


def test_ppo_continuous_actions_pendulum_runs():
    agent = refrl.PPO("Pendulum-v1", seed=0, n_envs=2, n_steps=64, batch_size=64, n_epochs=2).learn(256)
    assert "train/std" in agent.logger.history[-1]
    action, _ = agent.predict(np.zeros(3, np.float32), deterministic=False)
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0  # clipped to the Box bounds


def test_explained_variance_weighted():
    r = np.array([1.0, 2.0, 3.0, 100.0])
    v = np.array([1.0, 2.0, 3.0, -50.0])
    assert explained_variance(v, r, np.array([1.0, 1.0, 1.0, 0.0])) == pytest.approx(1.0)
    assert explained_variance(v, r, np.ones(4)) < 0


# ---------------------------------------------------------------------------- save / load / resume
def test_ppo_save_load_identical_actions(tmp_path):
    agent = refrl.PPO("CartPole-v1", seed=0, **SMALL).learn(500)
    path = agent.save(tmp_path / "m.npz")
    loaded = refrl.PPO.load(path)
    obs = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    np.testing.assert_array_equal(agent.policy.params, loaded.policy.params)
    np.testing.assert_array_equal(agent.optimizer.m, loaded.optimizer.m)
    assert loaded.optimizer.t == agent.optimizer.t
    assert loaded.num_timesteps == agent.num_timesteps
    assert loaded.config == agent.config
    # the same rng state: identical stochastic actions too
    np.testing.assert_array_equal(agent.predict(obs, deterministic=False)[0], loaded.predict(obs, deterministic=False)[0])
    assert isinstance(load(path), refrl.PPO)  # the registry-dispatching loader


def test_ppo_save_load_restores_normalisation(tmp_path):
    agent = refrl.PPO("Pendulum-v1", seed=0, normalize_obs=True, normalize_reward=True, n_envs=2, n_steps=64,
                      batch_size=64, n_epochs=1).learn(256)
    loaded = refrl.PPO.load(agent.save(tmp_path / "m"))
    np.testing.assert_array_equal(agent.obs_rms.mean, loaded.obs_rms.mean)
    np.testing.assert_array_equal(agent.obs_rms.var, loaded.obs_rms.var)
    assert agent.obs_rms.count == loaded.obs_rms.count
    assert agent.return_rms.var == loaded.return_rms.var
    obs = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


def test_ppo_resume_continues_schedule_and_optimizer(tmp_path):
    agent = refrl.PPO("CartPole-v1", seed=0, anneal_lr=True, **SMALL)
    agent.learn(1000, callback=lambda a: a.num_timesteps < 400)  # stop early, as Ctrl-C would
    steps, t = agent.num_timesteps, agent.optimizer.t
    loaded = refrl.PPO.load(agent.save(tmp_path / "ckpt"))
    assert loaded.total_timesteps == 1000 and loaded.num_timesteps == steps
    loaded.learn(1000 - steps, reset_num_timesteps=False)
    assert loaded.num_timesteps >= 1000
    assert loaded.optimizer.t > t
    # the LR schedule continued over the original budget
    first = loaded.logger.history[0]
    assert first["train/learning_rate"] == pytest.approx(3e-4 * (1 - first["time/total_timesteps"] / 1000))


def test_checkpoint_is_atomic_and_pickle_free(tmp_path):
    p = save_checkpoint(tmp_path / "c.npz", {"a": np.arange(3.0)}, {"x": 1})
    assert [f.name for f in tmp_path.iterdir()] == ["c.npz"]  # no temporary left behind
    arrays, meta = load_checkpoint(p)
    assert meta["x"] == 1 and arrays["a"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(TypeError, match="arrays"):
        save_checkpoint(tmp_path / "d.npz", {"o": np.array([{}], dtype=object)}, {})
    np.save(tmp_path / "evil.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "evil.npz", obj=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a readable refrl checkpoint|not a refrl checkpoint"):
        load_checkpoint(tmp_path / "evil.npz")


def test_load_rejects_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        refrl.PPO.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="path"):
        refrl.PPO.load(tmp_path / "junk.npz")
    p = save_checkpoint(tmp_path / "other.npz", {}, {"algo": "trpo"})
    with pytest.raises(ValueError, match="not 'ppo'"):
        refrl.PPO.load(p)


# ---------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(batch_size=100), ValueError, "batch_size: must divide the rollout"),
        (dict(batch_size=1, n_steps=64), ValueError, "batch_size: must be >= 2"),
        (dict(learning_rate=-1e-3), ValueError, "learning_rate: must be > 0"),
        (dict(learning_rate=float("nan")), ValueError, "learning_rate"),
        (dict(gamma=1.5), ValueError, "gamma: must be <= 1"),
        (dict(gae_lambda=-0.1), ValueError, "gae_lambda"),
        (dict(n_epochs=0), ValueError, "n_epochs: must be >= 1"),
        (dict(n_steps=2.5), TypeError, "n_steps: expected an integer"),
        (dict(clip_range=0.0), ValueError, "clip_range: must be > 0"),
        (dict(clip_range_vf=-1.0), ValueError, "clip_range_vf"),
        (dict(ent_coef=-0.1), ValueError, "ent_coef"),
        (dict(target_kl=0.0), ValueError, "target_kl"),
        (dict(max_grad_norm=0.0), ValueError, "max_grad_norm"),
        (dict(net_arch=(64, 0)), ValueError, "net_arch"),
        (dict(activation="gelu"), ValueError, "activation"),
        (dict(dtype="float16"), ValueError, "dtype"),
        (dict(objective="trust_region"), ValueError, "objective"),
        (dict(normalize_obs="yes"), TypeError, "normalize_obs"),
        (dict(n_envs=0), ValueError, "n_envs"),
        (dict(learning_rat=1e-3), TypeError, "unknown hyperparameter.*learning_rat"),
    ],
)
def test_ppo_rejects_bad_hyperparameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        refrl.PPO("CartPole-v1", **kwargs)


def test_ppo_validates_before_building_the_env():
    # an invalid hyperparameter is reported even with an unknown env: nothing was built
    with pytest.raises(ValueError, match="gamma"):
        refrl.PPO("NoSuchEnv-v0", gamma=2.0)


def test_ppo_rejects_bad_env_and_seed():
    with pytest.raises(ValueError, match="env: unknown gymnasium environment id 'CartPole-v9'"):
        refrl.PPO("CartPole-v9")
    with pytest.raises(ValueError, match="seed"):
        refrl.PPO("CartPole-v1", seed=-1)
    with pytest.raises(ValueError, match="seed"):
        refrl.PPO("CartPole-v1", seed=1.5)


def test_ppo_rejects_bad_learn_and_predict_args():
    agent = refrl.PPO("CartPole-v1", **SMALL)
    with pytest.raises(ValueError, match="total_timesteps"):
        agent.learn(0)
    with pytest.raises(TypeError, match="total_timesteps"):
        agent.learn(1e4)
    with pytest.raises(TypeError, match="callback"):
        agent.learn(100, callback=3)
    with pytest.raises(ValueError, match="predict: 'obs' must have shape"):
        agent.predict(np.zeros(5))
    with pytest.raises(ValueError, match="obs"):
        agent.predict(np.full(4, np.nan))


def test_config_roundtrip_and_tuned_defaults_are_valid():
    cfg = PPOConfig.from_kwargs(**tuned_defaults("ppo", "CartPole-v1"))
    assert cfg.n_envs == 8 and cfg.batch_size == 256 and cfg.anneal_lr
    assert PPOConfig.from_kwargs(**cfg.to_dict()) == cfg
    from refrl.config import TUNED

    for env_id in TUNED["ppo"]:
        PPOConfig.from_kwargs(**tuned_defaults("ppo", env_id))  # every published entry validates
    assert tuned_defaults("ppo", "NoSuchEnv-v0") == {}


def test_registry_rejects_unknown_algorithm():
    assert get_algorithm("ppo") is refrl.PPO
    with pytest.raises(ValueError, match="algorithm: unknown 'ppg'"):
        get_algorithm("ppg")


def test_ppo_async_vector_env_matches_sync():
    """AsyncVectorEnv (one subprocess per env) gives exactly the transitions of SyncVectorEnv."""
    kw = dict(seed=0, n_envs=2, n_steps=32, batch_size=64, n_epochs=1)
    a = refrl.PPO("CartPole-v1", vectorization_mode="async", **kw).learn(200)
    b = refrl.PPO("CartPole-v1", vectorization_mode="sync", **kw).learn(200)
    a.close()
    np.testing.assert_array_equal(a.policy.params, b.policy.params)
    assert a.num_timesteps == b.num_timesteps
