"""The health guard (refrl.health): divergence stops training with refrl.TrainingDiverged naming what
went wrong and the likely cause, the agent restored to its last healthy update; an update that moves
no parameter at all is reported; normalisation statistics that overflow are never saved; hyperparameters
are checked against a memory estimate before anything is allocated (docs/reliability.md).

Each test failed on the code before the guard existed: a huge learning rate finished silently with a
collapsed policy, 1e30 rewards left TRPO/VPG bit-identical to their initialisation (PPO raised
``clip_grad_norm_``'s ValueError), 1e300 observations stored an infinite variance in the checkpoint,
``n_steps=1e9`` / ``net_arch=[1e5, 1e5]`` ended in a MemoryError traceback.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest

import refrl
from refrl.serialization import load_checkpoint, save_checkpoint

SMALL = dict(n_steps=64, net_arch=(8,))
PER_ALGO = {"PPO": dict(batch_size=32, n_epochs=2), "TRPO": dict(batch_size=32, n_critic_updates=2),
            "VPG": dict(batch_size=32, n_critic_updates=2)}


class ScaleReward(gym.RewardWrapper):
    """CartPole's reward times ``k`` (1e30: the reward scale the guard must name)."""

    def __init__(self, env: gym.Env, k: float) -> None:
        super().__init__(env)
        self.k = k

    def reward(self, reward):
        return reward * self.k


class ScaleObs(gym.ObservationWrapper):
    """CartPole's observation in float64 times ``k`` (1e300: its variance overflows)."""

    def __init__(self, env: gym.Env, k: float) -> None:
        super().__init__(env)
        self.k = k
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float64)

    def observation(self, obs):
        return obs.astype(np.float64) * self.k


def _agent(name, env="CartPole-v1", **kw):
    return getattr(refrl, name)(env, seed=0, **{**SMALL, **PER_ALGO[name], **kw})


class _Snapshots:
    """Callback keeping a copy of the parameters after every (healthy) update."""

    def __init__(self, agent) -> None:
        self.params = [agent.policy.params.copy()]

    def __call__(self, agent) -> None:
        self.params.append(agent.policy.params.copy())


@pytest.mark.parametrize("name", ["PPO", "TRPO", "VPG"])
def test_huge_learning_rate_raises_training_diverged_and_restores_the_last_healthy_update(name):
    agent = _agent(name, learning_rate=1000.0)
    snaps = _Snapshots(agent)
    with pytest.raises(refrl.TrainingDiverged, match="learning rate") as info:
        agent.learn(64 * 20, callback=snaps)
    assert isinstance(info.value, RuntimeError)
    assert "parameter" in str(info.value) or "value" in str(info.value)
    assert len(snaps.params) < 20, "the guard must stop the run, not let it finish"
    np.testing.assert_array_equal(agent.policy.params, snaps.params[-1])  # the last healthy update's values
    assert np.linalg.norm(agent.policy.params.astype(np.float64)) < 1e4


@pytest.mark.parametrize("name", ["PPO", "TRPO", "VPG"])
def test_1e30_rewards_raise_training_diverged_naming_the_reward_scale(name):
    agent = _agent(name, env=ScaleReward(gym.make("CartPole-v1"), 1e30))
    p0 = agent.policy.params.copy()
    with pytest.raises(refrl.TrainingDiverged, match="reward scale") as info:
        agent.learn(64 * 4)
    assert "clip_grad_norm_" not in str(info.value).split("(")[0]
    np.testing.assert_array_equal(agent.policy.params, p0)
    assert agent.num_timesteps == 0


def test_1e30_rewards_train_in_float64():
    """Not a false alarm: the same rewards are representable (and their squares too) in float64."""
    agent = _agent("VPG", env=ScaleReward(gym.make("CartPole-v1"), 1e30), dtype="float64")
    agent.learn(64 * 2)
    assert np.isfinite(agent.policy.params).all()


def test_health_check_false_switches_the_guard_off():
    agent = _agent("VPG", learning_rate=1000.0, health_check=False)
    agent.learn(64 * 3)  # diverges silently, as before the guard (the user's choice)
    assert np.linalg.norm(agent.policy.params.astype(np.float64)) > 1e4


def test_max_param_norm_is_the_documented_switchable_limit():
    agent = _agent("PPO", max_param_norm=1.0)  # the initial parameters are already larger
    with pytest.raises(refrl.TrainingDiverged, match=r"max_param_norm=1\.0"):
        agent.learn(64)
    _agent("PPO", max_param_norm=None).learn(64)  # None: no limit
    with pytest.raises(ValueError, match="max_param_norm"):
        _agent("PPO", max_param_norm=-1.0)


def test_an_update_that_changes_no_parameter_is_reported():
    """REINFORCE without a baseline on zero rewards: every gradient is 0, the update moves nothing."""
    agent = _agent("VPG", env=ScaleReward(gym.make("CartPole-v1"), 0.0), use_baseline=False)
    p0 = agent.policy.params.copy()
    with pytest.warns(RuntimeWarning, match="bit-identical"):
        agent.learn(64 * 2)
    np.testing.assert_array_equal(agent.policy.params, p0)


def test_a_healthy_run_raises_and_warns_nothing():
    agent = _agent("PPO")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agent.learn(64 * 3)


def test_1e300_observations_with_normalize_obs_stop_training_and_are_never_saved(tmp_path):
    agent = _agent("PPO", env=ScaleObs(gym.make("CartPole-v1"), 1e300), normalize_obs=True, dtype="float64")
    with pytest.raises(refrl.TrainingDiverged, match="observation normalisation"):
        agent.learn(64 * 2)
    assert np.isfinite(agent.obs_rms.var).all()  # restored to the last healthy statistics
    agent.save(tmp_path / "ok.npz")
    agent.obs_rms.var = np.full(4, np.inf)
    with pytest.raises(ValueError, match="obs_rms"):
        agent.save(tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()
    # a file that carries them anyway (written around save) is refused on load
    arrays, meta = load_checkpoint(tmp_path / "ok.npz")
    arrays["obs_rms/var"] = np.full(4, np.inf)
    save_checkpoint(tmp_path / "forged.npz", arrays, meta)
    with pytest.raises(refrl.CheckpointError, match="obs_rms"):
        refrl.PPO.load(tmp_path / "forged.npz", env=ScaleObs(gym.make("CartPole-v1"), 1.0))


def test_cli_keeps_the_last_healthy_checkpoint_and_exits_non_zero_with_one_line(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "refrl", "train", "vpg", "CartPole-v1", "--out", str(out), "--steps", "2000",
         "--no-progress", "--checkpoint-every", "64", "--set", "n_steps=64", "--set", "net_arch=[8]",
         "--set", "learning_rate=1000"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) <= 2 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("refrl train: training diverged:") and "learning rate" in lines[0]
    assert not (out / "model.npz").exists()
    ckpts = sorted((out / "checkpoints").glob("step_*.npz"))
    assert ckpts, proc.stderr
    agent = refrl.algos.load(ckpts[-1])  # the newest checkpoint verifies and is healthy
    assert np.linalg.norm(agent.policy.params.astype(np.float64)) < 1e4
    assert str(ckpts[-1]) in proc.stderr


# ------------------------------------------------------------------ memory estimate
@pytest.mark.parametrize(
    ("kw", "param"),
    [
        (dict(n_steps=10**9, batch_size=64), "n_steps"),
        (dict(n_steps=10**9, batch_size=10**9), "batch_size"),
        (dict(net_arch=[100_000, 100_000]), "net_arch"),
        (dict(n_envs=10**6, n_steps=1, batch_size=10**6), "n_envs"),
    ],
)
def test_hyperparameters_beyond_the_memory_estimate_are_refused_before_allocation(kw, param):
    with pytest.raises(ValueError, match=rf"^{param}: .*estimated [0-9.]+ GiB.*max_memory_gb=8\.0") as info:
        refrl.PPO("CartPole-v1", seed=0, **kw)
    assert "bytes" in str(info.value)


def test_the_memory_limit_can_be_raised():
    from refrl.health import memory_estimate

    cfg = refrl.PPO.config_class.from_kwargs(n_steps=10**9, batch_size=10**9, max_memory_gb=1e6)
    parts = memory_estimate(cfg, obs_dim=4, act_dim=1)
    assert 50 * 2**30 < sum(parts.values()) < 1e6 * 2**30  # rollout of 1e9 x (4 obs + 8 scalars) float32
    with pytest.raises(ValueError, match="max_memory_gb"):
        refrl.PPO("CartPole-v1", seed=0, max_memory_gb=0.0)
