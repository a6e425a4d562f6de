"""Stable-Baselines3's calling conventions: the policy argument, predict, n_envs from a VectorEnv,
get_env/set_env, policy_kwargs (separate pi/vf sizes), schedules, the generated help; named errors."""

from __future__ import annotations

import dataclasses
import inspect
import pydoc
import warnings

import gymnasium as gym
import numpy as np
import pytest

import refrl
from refrl.optim import linear_schedule
from refrl.policy import ActorCritic
from refrl.serialization import load_checkpoint, save_checkpoint

SMALL = dict(n_steps=64, batch_size=32, n_epochs=1)
ALGOS = [refrl.PPO, refrl.TRPO, refrl.NPG, refrl.VPG]


# ---------------------------------------------------------------------------- the policy argument
def test_mlp_policy_first_is_the_same_agent():
    a = refrl.PPO("MlpPolicy", "CartPole-v1", seed=1, **SMALL)
    b = refrl.PPO("CartPole-v1", seed=1, **SMALL)
    np.testing.assert_array_equal(a.policy.params, b.policy.params)
    env = gym.make("CartPole-v1")
    assert refrl.TRPO("MlpPolicy", env, n_steps=64).env_id == "CartPole-v1"


@pytest.mark.parametrize("policy, exc, match", [
    ("CnnPolicy", ValueError, "policy: 'CnnPolicy' is not available in refrl"),
    ("MultiInputPolicy", ValueError, "policy: 'MultiInputPolicy'"),
    ("MyPolicy", ValueError, "policy: expected 'MlpPolicy'"),
    (object, ValueError, "policy: expected 'MlpPolicy'"),
])
def test_other_policies_are_refused_by_name(policy, exc, match):
    with pytest.raises(exc, match=match):
        refrl.PPO(policy, "CartPole-v1")


def test_keyword_forms():
    a = refrl.PPO(env="CartPole-v1", seed=1, **SMALL)
    b = refrl.PPO(policy="MlpPolicy", env="CartPole-v1", seed=1, **SMALL)
    np.testing.assert_array_equal(a.policy.params, b.policy.params)
    with pytest.raises(TypeError, match="env: required"):
        refrl.PPO()


def test_a_policy_name_without_an_env_is_named():
    with pytest.raises(TypeError, match="env: 'MlpPolicy' names a policy"):
        refrl.PPO("MlpPolicy")


# ---------------------------------------------------------------------------- predict
def test_predict_signature_and_default_is_stochastic():
    sig = inspect.signature(refrl.PPO.predict)
    assert list(sig.parameters)[1:5] == ["observation", "state", "episode_start", "deterministic"]
    assert sig.parameters["deterministic"].default is False
    agent = refrl.PPO("Pendulum-v1", seed=0, **SMALL)
    obs = np.zeros((16, 3), np.float32)
    a1, state = agent.predict(obs)
    a2, _ = agent.predict(obs)
    assert state is None and not np.array_equal(a1, a2)  # sampled
    d1, _ = agent.predict(obs, deterministic=True)
    np.testing.assert_array_equal(d1, agent.predict(obs, deterministic=True)[0])
    marker = object()
    assert agent.predict(obs[0], state=marker, episode_start=np.array([True]))[1] is marker  # SB3 passes it through


# ---------------------------------------------------------------------------- the environment
def test_n_envs_is_taken_from_a_vector_env():
    venv = gym.make_vec("CartPole-v1", num_envs=4, vectorization_mode="sync")
    agent = refrl.PPO(venv, seed=0, n_steps=32, batch_size=32)
    assert agent.config.n_envs == 4 and agent.buffer.n_envs == 4 and agent.get_env() is venv
    agent.learn(256)
    with pytest.raises(ValueError, match="n_envs: the VectorEnv has 4 envs but n_envs=2"):
        refrl.PPO(venv, n_envs=2, n_steps=32, batch_size=32)
    venv.close()


def test_set_env_swaps_the_env_and_keeps_training():
    agent = refrl.PPO("Pendulum-v1", seed=0, normalize_obs=True, **SMALL).learn(128)
    mean = agent.obs_rms.mean.copy()
    old = agent.get_env()
    new = gym.make("Pendulum-v1")
    agent.set_env(new)
    assert agent.get_env() is not old
    np.testing.assert_array_equal(agent.obs_rms.mean, mean)  # the statistics carried over
    agent.learn(128, reset_num_timesteps=False)
    assert agent.num_timesteps >= 256
    with pytest.raises(ValueError, match="env: its spaces"):
        agent.set_env(gym.make("MountainCarContinuous-v0"))
    with pytest.raises(ValueError, match="env: has 2 envs but the agent was built for n_envs=1"):
        agent.set_env(gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync"))


# ---------------------------------------------------------------------------- policy_kwargs
def test_policy_kwargs_set_the_networks():
    class ReLU:  # what torch.nn.ReLU is to refrl: a name (torch is never imported)
        pass

    agent = refrl.PPO("MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(
        net_arch=dict(pi=[16], vf=[32, 8]), activation_fn=ReLU, ortho_init=False, log_std_init=-1.0), **SMALL)
    p = agent.policy
    assert p.net_arch == (16,) and p.vf_net_arch == (32, 8) and p.activation == "relu" and not p.ortho_init
    assert p.n_policy_params == 4 * 16 + 16 + 16 * 2 + 2
    assert p.value_params.size == 4 * 32 + 32 + 32 * 8 + 8 + 8 + 1
    same = refrl.PPO("CartPole-v1", seed=0, policy_kwargs=dict(net_arch=[16, 16]), **SMALL).policy
    assert same.net_arch == same.vf_net_arch == (16, 16)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(policy_kwargs=dict(features_extractor_class=object)), TypeError, "policy_kwargs: unsupported key"),
    (dict(policy_kwargs=dict(activation_fn="gelu")), ValueError, "activation_fn must be tanh or relu"),
    (dict(policy_kwargs=dict(net_arch=[8]), net_arch=(8,)), TypeError, "policy_kwargs: 'net_arch' is also given"),
    (dict(policy_kwargs=dict(net_arch=dict(pi=[8]))), ValueError, "net_arch: a dict must have exactly"),
    (dict(policy_kwargs=dict(net_arch=dict(pi=[8], vf=[0]))), ValueError, "vf_net_arch"),
    (dict(policy_kwargs=[1]), TypeError, "policy_kwargs: expected a dict"),
])
def test_bad_policy_kwargs_are_named(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        refrl.PPO("CartPole-v1", **kwargs)


def test_separate_value_sizes_have_exact_gradients():
    """Finite differences (float64) of a policy and a value loss through the two-size layout."""
    space = gym.spaces.Box(-1, 1, (3,))
    p = ActorCritic(space, gym.spaces.Box(-1, 1, (2,)), net_arch=(5,), vf_net_arch=(4, 3), dtype=np.float64,
                    rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    obs, act = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    g_logp, g_v = rng.normal(size=6), rng.normal(size=6)

    def loss() -> float:
        logp, _, values, _ = p.evaluate(obs, act)
        return float(g_logp @ logp + g_v @ values)

    _, _, _, cache = p.evaluate(obs, act)
    p.zero_grad()
    p.backward(cache, dlogp=g_logp, dvalues=g_v)
    fd = np.zeros_like(p.params)
    for i in range(p.params.size):
        old = p.params[i]
        p.params[i] = old + 1e-6
        up = loss()
        p.params[i] = old - 1e-6
        fd[i] = (up - loss()) / 2e-6
        p.params[i] = old
    np.testing.assert_allclose(p.grads, fd, rtol=1e-6, atol=1e-8)


def test_separate_sizes_round_trip_and_old_checkpoints_still_load(tmp_path):
    agent = refrl.PPO("CartPole-v1", seed=0, net_arch={"pi": [8], "vf": [16]}, **SMALL).learn(64)
    loaded = refrl.PPO.load(agent.save(tmp_path / "two"))
    assert loaded.policy.vf_net_arch == (16,) and loaded.config == agent.config
    np.testing.assert_array_equal(loaded.policy.params, agent.policy.params)
    # a checkpoint written before vf_net_arch existed: no such key in its config or policy description
    path = refrl.PPO("CartPole-v1", seed=0, **SMALL).learn(64).save(tmp_path / "one")
    arrays, meta = load_checkpoint(path)
    del meta["config"]["vf_net_arch"]
    assert "vf_net_arch" not in meta["policy"]
    meta = {k: v for k, v in meta.items() if k not in ("format", "version", "arrays", "checksum")}
    old = refrl.PPO.load(save_checkpoint(tmp_path / "old", arrays, meta))
    assert old.policy.vf_net_arch == old.policy.net_arch == (64, 64)


# ---------------------------------------------------------------------------- schedules
def test_a_linear_schedule_is_anneal_lr_bit_for_bit():
    a = refrl.PPO("CartPole-v1", seed=0, learning_rate=linear_schedule(1e-3), clip_range=linear_schedule(0.2),
                  **SMALL).learn(640)
    b = refrl.PPO("CartPole-v1", seed=0, learning_rate=1e-3, anneal_lr=True, clip_range=0.2, anneal_clip_range=True,
                  **SMALL).learn(640)
    np.testing.assert_array_equal(a.policy.params, b.policy.params)


@pytest.mark.parametrize("cls", ALGOS)
def test_each_update_uses_the_schedule_at_its_progress(cls):
    seen = []

    def schedule(progress_remaining: float) -> float:
        seen.append(progress_remaining)
        return 1e-3 * (0.5 + progress_remaining)

    agent = cls("CartPole-v1", seed=0, learning_rate=schedule, n_steps=64, **({"batch_size": 32} if cls is refrl.PPO else {}))
    agent.learn(320)
    lrs = [row["train/learning_rate"] for row in agent.logger.history]
    steps = [row["time/total_timesteps"] for row in agent.logger.history]
    assert lrs == [1e-3 * (0.5 + max(0.0, 1 - s / 320)) for s in steps]
    assert seen[0] == 1.0  # checked at construction


def test_clip_range_schedule_is_logged():
    agent = refrl.PPO("CartPole-v1", seed=0, clip_range=lambda p: 0.1 + 0.1 * p, **SMALL).learn(256)
    rows = agent.logger.history
    assert [r["train/clip_range"] for r in rows] == [0.1 + 0.1 * max(0.0, 1 - r["time/total_timesteps"] / 256)
                                                      for r in rows]


@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=linear_schedule(1e-3), anneal_lr=True), "anneal_lr: learning_rate is already a schedule"),
    (dict(clip_range=linear_schedule(0.2), anneal_clip_range=True), "anneal_clip_range: clip_range is already"),
    (dict(learning_rate=lambda p: 0.0), "learning_rate: the schedule must be > 0 at the start"),
    (dict(learning_rate=lambda p: "fast"), "learning_rate: the schedule returned 'fast'"),
])
def test_bad_schedules_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        refrl.PPO("CartPole-v1", **kwargs)


def test_a_schedule_that_goes_bad_during_training_is_named():
    agent = refrl.PPO("CartPole-v1", seed=0, learning_rate=lambda p: 1e-3 if p == 1.0 else float("nan"), **SMALL)
    with pytest.raises(ValueError, match="learning_rate: the schedule returned nan"):
        agent.learn(128)


def test_a_schedule_is_saved_as_its_start_value_and_given_back_by_custom_objects(tmp_path):
    schedule = linear_schedule(1e-3)
    path = refrl.PPO("CartPole-v1", seed=0, learning_rate=schedule, **SMALL).learn(64).save(tmp_path / "m")
    _, meta = load_checkpoint(path)
    assert meta["config"]["learning_rate"] == 1e-3 and meta["schedules"] == ["learning_rate"]
    with pytest.warns(UserWarning, match="learning_rate was a schedule when saved.*custom_objects"):
        constant = refrl.PPO.load(path)
    assert constant.config.learning_rate == 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = refrl.PPO.load(path, custom_objects={"learning_rate": schedule})
    assert again.config.learning_rate is schedule
    with pytest.raises(TypeError, match="custom_objects: unknown"):
        refrl.PPO.load(path, custom_objects={"lr_schedule": schedule})


# ---------------------------------------------------------------------------- discoverability
@pytest.mark.parametrize("cls", ALGOS)
def test_help_lists_every_hyperparameter_with_its_default_and_meaning(cls):
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    doc = cls.__doc__
    for f in dataclasses.fields(cls.config_class):
        line = f"{f.name} : {f.type}, default {f.default!r}"
        assert line in doc and f.metadata["doc"] in doc, f.name
        assert f.name in text
    assert doc.count(", default ") == len(dataclasses.fields(cls.config_class))
    assert doc.startswith(inspect.cleandoc(inspect.getdoc(cls)).split("\n")[0])


@pytest.mark.parametrize("cls", ALGOS)
def test_learn_returns_the_agent_and_load_the_subclass(cls, tmp_path):
    agent = cls("CartPole-v1", seed=0, n_steps=64, **({"batch_size": 32} if cls is refrl.PPO else {}))
    assert agent.learn(64) is agent
    assert type(cls.load(agent.save(tmp_path / "m"))) is cls
