"""ActorCritic: the whole loss chain vs finite differences (float64), layout, act/evaluate, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium import spaces
from helpers import assert_close, numerical_grad
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refrl import native
from refrl.distributions import Categorical, DiagGaussian, MultiCategorical
from refrl.policy import ActorCritic


def assert_grad_close(analytic, numeric, rtol=1e-5, atol=1e-7):
    """Hand-derived gradient vs central differences: rtol covers the O(h²) truncation, atol (scaled by
    the gradient's magnitude) the O(ε_mach·|f|/h) rounding that dominates on entries near 0."""
    scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
    assert_close(analytic, numeric, rtol=rtol, atol=atol * scale, name="gradient")


ACTION_SPACES = {
    "discrete": spaces.Discrete(3),
    "box": spaces.Box(-1.0, 1.0, (2,)),
    "box2d": spaces.Box(-1.0, 1.0, (2, 1)),
    "multidiscrete": spaces.MultiDiscrete([2, 3]),
    "multibinary": spaces.MultiBinary(3),
}


def _small_policy(kind: str, obs_dim: int, net_arch, activation="tanh", seed=0) -> ActorCritic:
    obs_space = spaces.Box(-np.inf, np.inf, (obs_dim,))
    return ActorCritic(
        obs_space,
        ACTION_SPACES[kind],
        net_arch=net_arch,
        activation=activation,
        log_std_init=-0.3,
        dtype=np.float64,
        rng=np.random.default_rng(seed),
    )


@st.composite
def policy_case(draw):
    kind = draw(st.sampled_from(sorted(ACTION_SPACES)))
    obs_dim = draw(st.integers(1, 3))
    net_arch = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
    B = draw(st.integers(1, 4))
    ac = _small_policy(kind, obs_dim, net_arch, seed=draw(st.integers(0, 3)))
    # larger-than-init weights so that every path carries signal (the policy head starts at gain 0.01)
    ac.params[...] = draw(arrays(np.float64, ac.params.size, elements=st.floats(-1.0, 1.0, width=64)))
    if ac.log_std is not None:
        ac.log_std[...] = draw(arrays(np.float64, ac.log_std.size, elements=st.floats(-1.0, 0.5, width=64)))
    obs = draw(arrays(np.float64, (B, obs_dim), elements=st.floats(-2, 2, width=64)))
    actions = ac.act(obs, np.random.default_rng(draw(st.integers(0, 2**16))))[0]
    coef = draw(arrays(np.float64, (3, B), elements=st.floats(-1, 1, width=64)))
    return ac, obs, actions, coef


@given(policy_case())
def test_actor_critic_backward_grad_matches_finite_differences(case):
    """loss = Σ_i c1_i log π(a_i|s_i) + c2_i H(π(·|s_i)) + c3_i V(s_i); backward(dlogp=c1, ...) = ∇_θ loss."""
    ac, obs, actions, (c1, c2, c3) = case

    def loss() -> float:
        logp, ent, v, _ = ac.evaluate(obs, actions)
        return float(c1 @ logp + c2 @ ent + c3 @ v)

    ac.zero_grad()
    _, _, _, cache = ac.evaluate(obs, actions)
    ac.backward(cache, dlogp=c1, dentropy=c2, dvalues=c3)
    assert_grad_close(ac.grads, numerical_grad(lambda _: loss(), ac.params))


@given(policy_case(), st.sampled_from(["all", "no_dlogp", "no_dvalues", "policy_only_entropy", "none"]))
def test_actor_critic_backward_overwrite_equals_zero_grad_then_backward(case, which):
    """accumulate=False (PPO's per-minibatch call) sets grads to this loss's gradient, every part
    it does not touch included: bit-identical to zero_grad() + backward."""
    ac, obs, actions, (c1, c2, c3) = case
    kw = {
        "all": dict(dlogp=c1, dentropy=c2, dvalues=c3),
        "no_dlogp": dict(dentropy=c2, dvalues=c3),
        "no_dvalues": dict(dlogp=c1, dentropy=c2),
        "policy_only_entropy": dict(dentropy=c2),
        "none": {},
    }[which]
    _, _, _, cache = ac.evaluate(obs, actions)
    ac.zero_grad()
    ac.backward(cache, **kw)
    ref = ac.grads.copy()
    ac.grads.fill(np.nan)
    ac.backward(cache, **kw, accumulate=False)
    np.testing.assert_array_equal(ac.grads, ref)


@given(policy_case())
def test_actor_critic_kl_gradient_through_backward_dist_params(case):
    """∇_θ mean_i KL(π_old ‖ π_θ) via dist.kl_grad + backward_dist_params, against FD of ac.kl."""
    ac, obs, actions, _ = case
    old = ac.dist_params(obs).copy()
    ac.params[: ac.n_policy_params] += 0.1 * np.sin(np.arange(ac.n_policy_params))  # move away from θ_old
    B = obs.shape[0]
    _, _, _, cache = ac.evaluate(obs, actions)
    out = np.zeros(ac.n_policy_params)
    ac.backward_dist_params(cache, ac.dist.kl_grad(old, cache["dist_params"]) / B, out=out)
    numeric = numerical_grad(lambda _: ac.kl(obs, old), ac.policy_params)
    assert_grad_close(out, numeric)
    assert not ac.grads.any()  # `out` was used, not grads


@given(policy_case(), st.data())
def test_actor_critic_dist_params_jvp_matches_finite_differences(case, data):
    ac, obs, _, _ = case
    v = data.draw(arrays(np.float64, ac.n_policy_params, elements=st.floats(-1, 1, width=64)))
    _, pi_cache = ac.pi.forward(ac.preprocess_obs(obs))
    jv = ac.dist_params_jvp(pi_cache, v)
    theta = ac.policy_params.copy()
    eps = 1e-6
    ac.policy_params[...] = theta + eps * v
    plus = ac.dist_params(obs).copy()
    ac.policy_params[...] = theta - eps * v
    minus = ac.dist_params(obs).copy()
    ac.policy_params[...] = theta
    assert_grad_close(jv, (plus - minus) / (2 * eps))


def test_actor_critic_flat_layout_policy_then_log_std_then_value():
    ac = ActorCritic(spaces.Box(-1, 1, (5,)), spaces.Box(-2, 2, (3,)), rng=np.random.default_rng(0))
    n_pi = (5 * 64 + 64) + (64 * 64 + 64) + (64 * 3 + 3)
    n_vf = (5 * 64 + 64) + (64 * 64 + 64) + (64 * 1 + 1)
    assert ac.n_policy_params == n_pi + 3 and ac.params.size == n_pi + 3 + n_vf
    assert ac.params.dtype == np.float32 and ac.grads.shape == ac.params.shape
    for view, base in [
        (ac.pi.params, ac.params),
        (ac.log_std, ac.params),
        (ac.vf.params, ac.params),
        (ac.policy_params, ac.params),
        (ac.value_params, ac.params),
        (ac.pi.grads, ac.grads),
        (ac.log_std_grad, ac.grads),
        (ac.vf.grads, ac.grads),
    ]:
        assert np.shares_memory(view, base)
    ac.params[n_pi : n_pi + 3] = [0.1, 0.2, 0.3]
    np.testing.assert_array_equal(ac.log_std, np.float32([0.1, 0.2, 0.3]))
    ac.params[n_pi + 3] = 7.0
    assert ac.vf.W[0][0, 0] == 7.0
    assert ac.policy_params.size + ac.value_params.size == ac.params.size


def test_actor_critic_init_gains_and_log_std():
    ac = ActorCritic(spaces.Box(-1, 1, (4,)), spaces.Box(-1, 1, (2,)), log_std_init=-0.5, dtype=np.float64,
                     rng=np.random.default_rng(0))
    W_pi, W_vf = ac.pi.W[-1], ac.vf.W[-1]
    np.testing.assert_allclose(W_pi.T @ W_pi, 0.01**2 * np.eye(2), atol=1e-12)
    np.testing.assert_allclose(W_vf.T @ W_vf, np.eye(1), atol=1e-12)
    np.testing.assert_allclose(ac.pi.W[0] @ ac.pi.W[0].T, 2.0 * np.eye(4), atol=1e-12)
    np.testing.assert_array_equal(ac.log_std, [-0.5, -0.5])


@pytest.mark.parametrize("kind", sorted(ACTION_SPACES))
def test_actor_critic_act_shapes_and_consistency_with_evaluate(kind):
    ac = _small_policy(kind, 3, (8,))
    obs = np.random.default_rng(0).standard_normal((5, 3))
    a, logp, v = ac.act(obs, np.random.default_rng(1))
    space = ACTION_SPACES[kind]
    assert a.shape == (5, *space.shape) and logp.shape == (5,) and v.shape == (5,)
    logp2, ent, v2, _ = ac.evaluate(obs, a)
    np.testing.assert_allclose(logp, logp2, rtol=1e-12)
    np.testing.assert_allclose(v, v2, rtol=1e-12)
    np.testing.assert_allclose(v, ac.predict_values(obs), rtol=1e-12)
    assert ent.shape == (5,)
    a_det, _, _ = ac.act(obs, np.random.default_rng(2), deterministic=True)
    a_det2, _, _ = ac.act(obs, np.random.default_rng(3), deterministic=True)
    np.testing.assert_array_equal(a_det, a_det2)
    if kind != "box" and kind != "box2d":
        assert a.dtype == (np.int8 if kind == "multibinary" else np.int64) and space.contains(a[0])


def test_actor_critic_box_actions_unclipped_log_prob_and_clip_for_env():
    space = spaces.Box(np.float32([-0.1, 0.0]), np.float32([0.1, 5.0]))
    ac = ActorCritic(spaces.Box(-1, 1, (2,)), space, log_std_init=1.0, dtype=np.float64, rng=np.random.default_rng(0))
    obs = np.zeros((200, 2))
    a, logp, _ = ac.act(obs, np.random.default_rng(0))
    assert (a[:, 0] > 0.1).any() and (a[:, 1] < 0.0).any()  # samples are not clipped
    clipped = ac.clip_actions(a)
    assert (clipped >= space.low).all() and (clipped <= space.high).all()
    assert all(space.contains(c.astype(np.float32)) for c in clipped[:10])
    np.testing.assert_allclose(ac.evaluate(obs, a)[0], logp)  # logp is of the unclipped sample
    assert not np.allclose(ac.evaluate(obs, clipped)[0], logp)
    d_ac = _small_policy("discrete", 2, (4,))
    acts = np.array([0, 2, 1])
    assert d_ac.clip_actions(acts) is acts


def test_actor_critic_discrete_observations_are_one_hot():
    ac = ActorCritic(spaces.Discrete(4), spaces.Discrete(2), net_arch=(8,), dtype=np.float64,
                     rng=np.random.default_rng(0))
    x = ac.preprocess_obs(np.array([0, 3, 1]))
    np.testing.assert_array_equal(x, np.eye(4)[[0, 3, 1]])
    a, logp, _v = ac.act(np.array([0, 3]), np.random.default_rng(0))
    assert a.shape == (2,) and logp.shape == (2,)
    np.testing.assert_array_equal(ac.preprocess_obs(np.array([3.0, 1.0])), x[1:])
    with pytest.raises(ValueError, match="'obs' out of range"):
        ac.act(np.array([4]), np.random.default_rng(0))
    with pytest.raises(TypeError, match="'obs' must be integers"):
        ac.act(np.array([0.5]), np.random.default_rng(0))


def test_actor_critic_kl_zero_at_own_params_and_positive_after_change():
    ac = _small_policy("box", 3, (8,))
    obs = np.random.default_rng(0).standard_normal((6, 3))
    old = ac.dist_params(obs).copy()
    assert ac.kl(obs, old) == pytest.approx(0.0, abs=1e-12)
    ac.log_std += 0.2
    assert ac.kl(obs, old) > 0.0
    with pytest.raises(ValueError, match="'old_dist_params'"):
        ac.kl(obs, old[:, :2])


def test_actor_critic_state_dict_and_config_round_trip():
    ac = ActorCritic(spaces.Box(-1, 1, (3,)), spaces.Box(-2, 2, (2,)), net_arch=(16, 8), activation="relu",
                     log_std_init=-1.0, rng=np.random.default_rng(0))
    ac.params += 0.01
    cfg = json.loads(json.dumps(ac.config()))
    clone = ActorCritic.from_config(cfg)
    clone.load_state_dict(ac.state_dict())
    obs = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(clone.dist_params(obs), ac.dist_params(obs))
    np.testing.assert_array_equal(clone.predict_values(obs), ac.predict_values(obs))
    assert clone.config() == ac.config()
    sd = ac.state_dict()
    sd["params"][0] = 99.0
    assert ac.params[0] != 99.0  # state_dict is a copy


def test_actor_critic_same_seed_same_parameters():
    make = lambda s: ActorCritic(spaces.Box(-1, 1, (4,)), spaces.Discrete(2), rng=np.random.default_rng(s))
    np.testing.assert_array_equal(make(3).params, make(3).params)
    assert not np.array_equal(make(3).params, make(4).params)


def test_actor_critic_distribution_types():
    assert isinstance(_small_policy("discrete", 2, ()).dist, Categorical)
    assert isinstance(_small_policy("box", 2, ()).dist, DiagGaussian)
    assert isinstance(_small_policy("multidiscrete", 2, ()).dist, MultiCategorical)
    assert _small_policy("discrete", 2, ()).log_std is None


def test_actor_critic_rejects_wrong_observation_shape():
    ac = _small_policy("discrete", 3, (4,))
    with pytest.raises(ValueError, match=r"'obs' must have shape \(B, 3\)"):
        ac.act(np.zeros(3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="'obs' must have shape"):
        ac.evaluate(np.zeros((2, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match="'obs' contains NaN"):
        ac.predict_values(np.array([[0.0, np.nan, 1.0]]))


def test_actor_critic_rejects_nan_parameters():
    ac = _small_policy("box", 3, (4,))
    ac.params[0] = np.nan
    with pytest.raises(ValueError, match="'params' contain NaN"):
        ac.act(np.ones((2, 3)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="'params' contain NaN"):
        ac.evaluate(np.ones((2, 3)), np.zeros((2, 2)))
    for use_native in (True, False):  # a NaN log σ alone must not yield NaN actions silently
        bad_std = _small_policy("box", 3, (4,))
        bad_std.native_act = use_native
        bad_std.log_std[0] = np.nan
        for deterministic in (False, True):
            with pytest.raises(ValueError, match="'params' contain NaN"):
                native.act(bad_std, np.ones((2, 3)), np.random.default_rng(0), deterministic=deterministic)
    good = _small_policy("box", 3, (4,))
    with pytest.raises(ValueError, match="'params' contain NaN"):
        good.load_state_dict({"params": ac.params.copy()})
    with pytest.raises(ValueError, match="'params' must have shape"):
        good.load_state_dict({"params": np.zeros(3)})


@pytest.mark.parametrize(
    "obs_space, act_space, name",
    [
        (spaces.Box(-1, 1, (2,)), spaces.Dict({"a": spaces.Discrete(2)}), "Dict"),
        (spaces.Box(-1, 1, (2,)), spaces.Tuple((spaces.Discrete(2),)), "Tuple"),
        (spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))), spaces.Discrete(2), "Tuple"),
        (spaces.Dict({"x": spaces.Dict({"y": spaces.Discrete(2)})}), spaces.Discrete(2), "inside a Dict"),
        (spaces.Dict({"x": spaces.Tuple((spaces.Discrete(2),))}), spaces.Discrete(2), "inside a Dict"),
    ],
)
def test_actor_critic_rejects_unsupported_space(obs_space, act_space, name):
    with pytest.raises(ValueError, match=name):
        ActorCritic(obs_space, act_space, rng=np.random.default_rng(0))


OBS_SPACES = {
    "discrete": spaces.Discrete(4, start=2),
    "multidiscrete": spaces.MultiDiscrete([2, 3], start=[0, -1]),
    "multibinary": spaces.MultiBinary([2, 2]),
    "dict": spaces.Dict({"pos": spaces.Discrete(3), "bits": spaces.MultiBinary(2), "x": spaces.Box(-1, 1, (2,))}),
}


def _literal_encoding(space, o) -> list[float]:
    """One observation's network input, written out from the space's definition (SB3's preprocess_obs)."""
    if isinstance(space, spaces.Discrete):
        return [1.0 if int(o) - int(space.start) == k else 0.0 for k in range(int(space.n))]
    if isinstance(space, spaces.MultiDiscrete):
        out = []
        for v, n, s in zip(np.ravel(o), space.nvec.ravel(), np.ravel(space.start), strict=True):
            out += [1.0 if int(v) - int(s) == k else 0.0 for k in range(int(n))]
        return out
    if isinstance(space, spaces.Dict):
        return [x for key, sub in space.spaces.items() for x in _literal_encoding(sub, o[key])]
    return [float(v) for v in np.ravel(o)]  # Box, MultiBinary


@pytest.mark.parametrize("kind", sorted(OBS_SPACES))
def test_actor_critic_encodes_observations_as_sb3(kind):
    """One-hot for Discrete / MultiDiscrete, bits for MultiBinary, entries concatenated in the Dict's
    order; a batch stacks the single observations; one observation is recognised as one."""
    space = OBS_SPACES[kind]
    space.seed(0)
    ac = ActorCritic(space, spaces.Discrete(2), net_arch=(8,), dtype=np.float64, rng=np.random.default_rng(0))
    samples = [space.sample() for _ in range(5)]
    expected = np.array([_literal_encoding(space, o) for o in samples])
    assert ac.obs_dim == expected.shape[1] == spaces.flatdim(space)
    if kind == "dict":
        batch = {key: np.stack([o[key] for o in samples]) for key in space.spaces}
    else:
        batch = np.stack([np.asarray(o) for o in samples])
    np.testing.assert_array_equal(ac.preprocess_obs(batch), expected)
    one, single = ac.obs_batch(samples[0])
    assert single and not ac.obs_batch(batch)[1]
    np.testing.assert_array_equal(ac.preprocess_obs(one), expected[:1])
    if kind == "dict":  # the encoding itself is accepted (the rollout buffer stores it)
        np.testing.assert_array_equal(ac.preprocess_obs(expected), expected)
    else:  # integral floats (a float rollout buffer) give the same input
        np.testing.assert_array_equal(ac.preprocess_obs(batch.astype(np.float32)), expected)
    a, logp, v = ac.act(batch, np.random.default_rng(0))
    assert a.shape == (5,) and logp.shape == v.shape == (5,)


def test_actor_critic_rejects_observations_outside_the_space():
    rng = np.random.default_rng(0)
    make = lambda space: ActorCritic(space, spaces.Discrete(2), net_arch=(4,), rng=rng)  # noqa: E731
    md = make(OBS_SPACES["multidiscrete"])
    with pytest.raises(ValueError, match="'obs' out of range"):
        md.preprocess_obs(np.array([[0, 2]]))  # start -1: values in [-1, 1]
    with pytest.raises(ValueError, match=r"'obs' must have shape \(B, 2\)"):
        md.preprocess_obs(np.array([[0, 1, 0]]))
    mb = make(OBS_SPACES["multibinary"])
    with pytest.raises(ValueError, match="'obs' must be 0 or 1"):
        mb.preprocess_obs(np.array([[[0, 2], [1, 1]]]))
    with pytest.raises(TypeError, match="'obs' must be integers"):
        mb.preprocess_obs(np.full((1, 2, 2), 0.5))
    d = make(OBS_SPACES["dict"])
    good = {"pos": np.array([0]), "bits": np.array([[0, 1]]), "x": np.array([[0.1, 0.2]])}
    with pytest.raises(ValueError, match="'obs' must have the keys"):
        d.preprocess_obs({"pos": good["pos"]})
    with pytest.raises(ValueError, match="different batch sizes"):
        d.preprocess_obs({**good, "pos": np.array([0, 1])})
    with pytest.raises(ValueError, match="'obs' contains NaN"):
        d.preprocess_obs({**good, "x": np.array([[np.nan, 0.0]])})
    with pytest.raises(ValueError, match=r"encoding of shape \(B, 7\)"):
        d.preprocess_obs(np.zeros((1, 6)))


@pytest.mark.parametrize("kind", sorted(OBS_SPACES))
def test_actor_critic_config_round_trips_the_new_spaces(kind):
    ac = ActorCritic(OBS_SPACES[kind], spaces.MultiBinary(3), net_arch=(8,), rng=np.random.default_rng(0))
    cfg = json.loads(json.dumps(ac.config()))
    clone = ActorCritic.from_config(cfg)
    assert clone.observation_space == ac.observation_space and clone.action_space == ac.action_space
    assert clone.config() == ac.config() and clone.obs_dim == ac.obs_dim


def test_actor_critic_backward_rejects_bad_gradient_shapes():
    ac = _small_policy("discrete", 2, (4,))
    _, _, _, cache = ac.evaluate(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="'dlogp' must have shape"):
        ac.backward(cache, dlogp=np.ones(2))
    with pytest.raises(ValueError, match="'dvalues' must have shape"):
        ac.backward(cache, dvalues=np.ones((3, 1)))
    with pytest.raises(ValueError, match="'actions'"):
        ac.evaluate(np.zeros((3, 2)), np.array([0, 1, 3]))


@pytest.mark.parametrize("kind", sorted(ACTION_SPACES))
def test_actor_critic_log_prob_and_evaluate_values_match_evaluate(kind):
    ac = _small_policy(kind, 3, (8,))
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((6, 3))
    a, _, _ = ac.act(obs, rng)
    logp, _, v, cache = ac.evaluate(obs, a)
    np.testing.assert_array_equal(ac.log_prob(obs, a), logp)
    v2, vcache = ac.evaluate_values(obs)
    np.testing.assert_array_equal(v2, v)
    dv = rng.standard_normal(6)
    ac.zero_grad()
    ac.backward(cache, dvalues=dv)
    want = ac.grads.copy()
    ac.zero_grad()
    ac.backward(vcache, dvalues=dv)
    np.testing.assert_array_equal(ac.grads, want)
    assert not ac.policy_grads.any() and ac.value_grads.any()
    with pytest.raises(ValueError, match="only 'dvalues'"):
        ac.backward(vcache, dlogp=dv)


@pytest.mark.parametrize("kind", sorted(ACTION_SPACES))
def test_actor_critic_float32_matches_float64(kind):
    """Same parameters in float32 and float64: outputs stay float32 and agree to float32 precision."""
    p64 = _small_policy(kind, 3, (16, 16))
    obs_space = spaces.Box(-np.inf, np.inf, (3,))
    p32 = ActorCritic(obs_space, ACTION_SPACES[kind], net_arch=(16, 16), dtype=np.float32, rng=np.random.default_rng(0))
    p32.params[...] = p64.params
    rng = np.random.default_rng(1)
    obs = rng.standard_normal((32, 3))
    a, _, _ = p64.act(obs, rng)
    g = rng.standard_normal((3, 32))
    outs = []
    for p in (p64, p32):
        logp, ent, v, cache = p.evaluate(obs, a)
        p.zero_grad()
        p.backward(cache, dlogp=g[0], dentropy=g[1], dvalues=g[2])
        outs.append((logp, ent, v, p.grads))
    for x64, x32 in zip(outs[0], outs[1], strict=True):
        assert x32.dtype == np.float32
        np.testing.assert_allclose(x32, x64, rtol=2e-4, atol=2e-5 * max(1.0, float(np.abs(x64).max())))
