"""Native fused acting path (_core.ActNetF32/F64 behind refrl.native.act) vs ActorCritic.act, the NumPy path (oracle).

Same random stream, same actions, log-probabilities and values to rounding, in float32 and
float64, for Discrete / Box / MultiDiscrete / MultiBinary actions (the last two: the native
forward pass, then the distribution's NumPy sampling); the stored log π(a|s) equals what
``evaluate`` recomputes (PPO's first-minibatch ratio is 1); bad arguments raise named errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refrl import _core, native
from refrl.policy import ActorCritic

ACTION_SPACES = {
    "discrete": spaces.Discrete(4),
    "discrete_start": spaces.Discrete(3, start=-1),
    "box": spaces.Box(-1.0, 1.0, (2,)),
    "box2d": spaces.Box(-1.0, 1.0, (3, 1)),
    "multidiscrete": spaces.MultiDiscrete([2, 3]),
    "multibinary": spaces.MultiBinary(3),
    "multibinary2d": spaces.MultiBinary([2, 2]),
}


def _tol(dtype):
    return (1e-12, 1e-12) if np.dtype(dtype) == np.float64 else (2e-5, 2e-5)


def _assert_close(a, b, dtype, what):
    rtol, atol = _tol(dtype)
    scale = max(1.0, float(np.abs(np.asarray(b, dtype=np.float64)).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, err_msg=what)


@st.composite
def act_case(draw):
    kind = draw(st.sampled_from(sorted(ACTION_SPACES)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    obs_dim = draw(st.integers(1, 5))
    # widths up to 70 cross the 64-byte padding of the SIMD tanh in both dtypes
    net_arch = tuple(draw(st.lists(st.integers(1, 70), min_size=0, max_size=2)))
    activation = draw(st.sampled_from(["tanh", "relu"]))
    B = draw(st.integers(1, 17))
    ac = ActorCritic(
        spaces.Box(-np.inf, np.inf, (obs_dim,)), ACTION_SPACES[kind], net_arch=net_arch, activation=activation,
        dtype=dtype, rng=np.random.default_rng(draw(st.integers(0, 3))),
    )
    scale = draw(st.sampled_from([None, 0.3, 1.0]))  # None: the initialisation as is
    if scale is not None:
        ac.params[...] = np.random.default_rng(draw(st.integers(0, 2**16))).uniform(-scale, scale, ac.params.size)
    if ac.log_std is not None:
        ac.log_std[...] = draw(arrays(np.float64, ac.log_std.size, elements=st.floats(-25.0, 3.0, width=64)))
    obs = draw(arrays(np.float64, (B, obs_dim), elements=st.floats(-3, 3, width=64)))
    seed = draw(st.integers(0, 2**32 - 1))
    deterministic = draw(st.booleans())
    return ac, obs, seed, deterministic


@given(act_case())
def test_native_act_matches_numpy_act(case):
    ac, obs, seed, deterministic = case
    rng_n, rng_p = np.random.default_rng(seed), np.random.default_rng(seed)
    ac.native_act = True
    a_n, logp_n, v_n = native.act(ac, obs, rng_n, deterministic=deterministic)
    a_p, logp_p, v_p = ac.act(obs, rng_p, deterministic=deterministic)
    assert rng_n.bit_generator.state == rng_p.bit_generator.state  # the same random numbers were drawn
    assert a_n.shape == a_p.shape and a_n.dtype == a_p.dtype
    assert logp_n.dtype == logp_p.dtype == ac.dtype and v_n.dtype == v_p.dtype == ac.dtype
    if a_p.dtype.kind in "iu":
        np.testing.assert_array_equal(a_n, a_p)
    else:
        _assert_close(a_n, a_p, ac.dtype, "actions")
    _assert_close(logp_n, logp_p, ac.dtype, "logp")
    _assert_close(v_n, v_p, ac.dtype, "values")
    # what the rollout stores is what the update recomputes: ratio 1 on the first minibatch.
    # (Not for a Gaussian with tiny σ: a = μ + σε, rounded, then cannot hold ε to full precision,
    # for the NumPy path just the same.)
    logp_e, _, v_e, _ = ac.evaluate(obs, a_n)
    if ac.log_std is None or ac.log_std.min() >= -1.0:
        _assert_close(logp_n, logp_e, ac.dtype, "logp vs evaluate")
    _assert_close(v_n, v_e, ac.dtype, "values vs evaluate")


@given(act_case(), st.booleans())
def test_act_and_clip_is_act_then_clip_actions(case, use_native):
    """The collector's fused call: the same draws and values as ``act`` followed by ``clip_actions``
    (the clip done in C++ on the native Gaussian path), with log σ up to 3 so that clipping bites."""
    ac, obs, seed, _ = case
    ac.native_act = use_native and ac.dtype == np.float32
    rng_f, rng_r = np.random.default_rng(seed), np.random.default_rng(seed)
    a_f, env_f, logp_f, v_f = native.act_and_clip(ac, obs, rng_f)
    a_r, logp_r, v_r = native.act(ac, obs, rng_r)
    env_r = ac.clip_actions(a_r)
    assert rng_f.bit_generator.state == rng_r.bit_generator.state
    for got, want in ((a_f, a_r), (env_f, env_r), (logp_f, logp_r), (v_f, v_r)):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)  # one code path each: bit-identical
    if ac.log_std is not None:
        space = ac.action_space
        assert (env_f >= space.low).all() and (env_f <= space.high).all()


def test_act_gaussian_clip_bounds_errors_are_named():
    pi, vf = [3, 4, 2], [3, 4, 1]
    n_pi = 3 * 4 + 4 + 4 * 2 + 2
    g = _core.ActNetF32(pi, vf, n_pi + 2)
    th, x, eps = np.zeros(g.n_params, np.float32), np.zeros((2, 3), np.float32), np.zeros((2, 2))
    lo, hi = np.full(2, -1.0, np.float32), np.full(2, 1.0, np.float32)
    with pytest.raises(ValueError, match="'low' and 'high' go together"):
        g.act_gaussian(th, x, eps, -20.0, 2.0, lo, None)
    with pytest.raises(ValueError, match="'high' must be an array of the net's dtype"):
        g.act_gaussian(th, x, eps, -20.0, 2.0, lo, hi.astype(np.float64))
    with pytest.raises(ValueError, match=r"'low' must be a C-contiguous array of shape \(2,\)"):
        g.act_gaussian(th, x, eps, -20.0, 2.0, np.zeros(3, np.float32), hi)
    eps[0, 0] = 1e3  # a = 1000 on one entry: clipped to 1 for the env, kept for the update
    a, logp, v, a_env = g.act_gaussian(th, x, eps, -20.0, 2.0, lo, hi)
    assert a[0, 0] == 1e3 and a_env[0, 0] == 1.0
    np.testing.assert_array_equal(a_env, np.minimum(np.maximum(a, lo), hi))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
@pytest.mark.parametrize(
    ("net_arch", "n_actions"),
    # every path of act.hpp's affine_row: blocks of 64 floats / 32 doubles, a remainder of <= 4
    # outputs (dot products: the heads) and a longer one (the plain loop)
    [((33, 64), 5), ((64, 64), 2), ((70,), 3), ((130, 66), 6), ((32,), 4)],
)
def test_native_forward_every_isa_matches_numpy(dtype, isa, net_arch, n_actions):
    if not _core.isa_supported(isa):
        pytest.skip(f"{isa} not supported here")
    ac = ActorCritic(spaces.Box(-1, 1, (7,)), spaces.Discrete(n_actions), net_arch=net_arch, dtype=dtype,
                     rng=np.random.default_rng(0))
    ac.params[...] = np.random.default_rng(1).uniform(-0.5, 0.5, ac.params.size)
    cls = _core.ActNetF32 if dtype == np.float32 else _core.ActNetF64
    net = cls(list(ac.pi.sizes), list(ac.vf.sizes), ac.n_policy_params, "tanh", isa=isa)
    assert net.isa == isa and net.n_params == ac.params.size
    x = np.random.default_rng(2).standard_normal((9, 7)).astype(dtype)
    out, v = net.forward(ac.params, x)
    _assert_close(out, ac.pi(x), dtype, "policy output")
    _assert_close(v, ac.vf(x)[:, 0], dtype, "values")


def test_native_act_discrete_observations_one_hot():
    ac = ActorCritic(spaces.Discrete(6, start=1), spaces.Discrete(2), net_arch=(8,), rng=np.random.default_rng(0))
    obs = np.array([1, 6, 3])
    ac.native_act = True
    a_n, logp_n, v_n = native.act(ac, obs, np.random.default_rng(3))
    a_p, logp_p, v_p = ac.act(obs, np.random.default_rng(3))
    np.testing.assert_array_equal(a_n, a_p)
    _assert_close(logp_n, logp_p, np.float32, "logp")
    _assert_close(v_n, v_p, np.float32, "values")


@pytest.mark.parametrize(
    "obs_space, obs",
    [
        (spaces.MultiDiscrete([3, 2]), np.array([[0, 1], [2, 0]])),
        (spaces.MultiBinary(3), np.array([[0, 1, 1], [1, 0, 0]], dtype=np.int8)),
        (spaces.Dict({"k": spaces.Discrete(3), "x": spaces.Box(-1, 1, (2,))}),
         {"k": np.array([2, 0]), "x": np.array([[0.5, -0.5], [0.1, 0.2]], dtype=np.float32)}),
    ],
)
def test_native_act_encodes_the_other_observation_spaces_as_numpy(obs_space, obs):
    ac = ActorCritic(obs_space, spaces.MultiBinary(2), net_arch=(8,), rng=np.random.default_rng(0))
    ac.params[...] = np.random.default_rng(1).uniform(-0.5, 0.5, ac.params.size)
    for deterministic in (False, True):
        a_n, logp_n, v_n = native.act(ac, obs, np.random.default_rng(3), deterministic)
        a_p, logp_p, v_p = ac.act(obs, np.random.default_rng(3), deterministic)
        np.testing.assert_array_equal(a_n, a_p)
        _assert_close(logp_n, logp_p, np.float32, "logp")
        _assert_close(v_n, v_p, np.float32, "values")


def test_native_act_falls_back_to_numpy_sampling_for_a_distribution_it_does_not_know():
    """A distribution without a native sampler (here a subclass the acting network does not
    recognise): the native forward pass, then the distribution's own NumPy sampling."""
    from refrl.distributions import Bernoulli

    class OtherBits(Bernoulli):
        pass

    ac = ActorCritic(spaces.Box(-1, 1, (3,)), spaces.MultiBinary(4), net_arch=(8,), rng=np.random.default_rng(0))
    ac.params[...] = np.random.default_rng(1).uniform(-0.5, 0.5, ac.params.size)
    ac.dist = OtherBits(4)
    obs = np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)
    net = native._acting_network(ac)
    assert not (net.categorical or net.gaussian or net.bernoulli)
    rng_n, rng_p = np.random.default_rng(3), np.random.default_rng(3)
    a_n, logp_n, v_n = native.act(ac, obs, rng_n)
    a_p, logp_p, v_p = ac.act(obs, rng_p)
    assert rng_n.bit_generator.state == rng_p.bit_generator.state
    np.testing.assert_array_equal(a_n, a_p)
    _assert_close(logp_n, logp_p, np.float32, "logp")
    _assert_close(v_n, v_p, np.float32, "values")


def test_native_act_is_the_float32_default_and_sees_parameter_updates():
    ac = ActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(3), rng=np.random.default_rng(0))
    assert ac.native_act
    assert not ActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(3), dtype=np.float64,
                           rng=np.random.default_rng(0)).native_act
    obs = np.ones((2, 3), dtype=np.float32)
    _, _, v0 = native.act(ac, obs, np.random.default_rng(0))
    ac.value_params[-1] += 1.0  # the output bias of the value network: V shifts by exactly 1
    _, _, v1 = native.act(ac, obs, np.random.default_rng(0))
    np.testing.assert_allclose(v1 - v0, 1.0, rtol=1e-6)


def test_native_act_bad_inputs_raise_the_numpy_path_errors():
    ac = ActorCritic(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)), net_arch=(4,), rng=np.random.default_rng(0))
    assert ac.native_act
    with pytest.raises(ValueError, match=r"'obs' must have shape \(B, 3\)"):
        native.act(ac, np.zeros(3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="'obs' contains NaN"):
        native.act(ac, np.array([[0.0, np.nan, 1.0]], dtype=np.float32), np.random.default_rng(0))
    ac.params[0] = np.nan
    with pytest.raises(ValueError, match="'params' contain NaN or inf"):
        native.act(ac, np.ones((2, 3), dtype=np.float32), np.random.default_rng(0))


def test_native_actnet_argument_errors_are_named():
    pi, vf = [3, 4, 2], [3, 4, 1]
    n_pi = 3 * 4 + 4 + 4 * 2 + 2
    with pytest.raises(ValueError, match="'pi_sizes'"):
        _core.ActNetF32([3], vf, n_pi)
    with pytest.raises(ValueError, match="'vf_sizes'"):
        _core.ActNetF32(pi, [3, 0, 1], n_pi)
    with pytest.raises(ValueError, match=r"'vf_sizes'\[-1\] must be 1"):
        _core.ActNetF32(pi, [3, 4, 2], n_pi)
    with pytest.raises(ValueError, match=r"'vf_sizes'\[0\]"):
        _core.ActNetF32(pi, [2, 4, 1], n_pi)
    with pytest.raises(ValueError, match="'vf_offset'"):
        _core.ActNetF32(pi, vf, n_pi - 1)
    with pytest.raises(ValueError, match="'activation'"):
        _core.ActNetF32(pi, vf, n_pi, "sigmoid")
    with pytest.raises(ValueError, match="'isa'"):
        _core.ActNetF32(pi, vf, n_pi, "tanh", isa="sse9")
    net = _core.ActNetF32(pi, vf, n_pi)
    theta = np.zeros(net.n_params, dtype=np.float32)
    x = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="'theta' must be a 1-D array of length"):
        net.forward(theta[:-1], x)
    with pytest.raises(ValueError, match=r"'x' must have shape \(B, 3\)"):
        net.forward(theta, np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"'x' must have shape \(B, 3\)"):
        net.forward(theta, np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(TypeError):  # no silent dtype conversion of theta or x
        net.forward(theta.astype(np.float64), x)
    with pytest.raises(ValueError, match="'u' must have shape"):
        net.act_categorical(theta, x, np.zeros(3))
    with pytest.raises(ValueError, match="needs log_std"):
        net.act_gaussian(theta, x, np.zeros((2, 2)), -20.0, 2.0)
    g = _core.ActNetF64(pi, vf, n_pi + 2)  # room for log_std [2]
    th64 = np.zeros(g.n_params)
    with pytest.raises(ValueError, match="'eps' must have shape"):
        g.act_gaussian(th64, x.astype(np.float64), np.zeros((2, 3)), -20.0, 2.0)
    with pytest.raises(ValueError, match="'log_std_min'"):
        g.act_gaussian(th64, x.astype(np.float64), np.zeros((2, 2)), 2.0, -20.0)
    # a non-finite input or output is reported as None (the caller runs the NumPy path)
    assert net.forward(theta, np.full((1, 3), np.nan, dtype=np.float32)) is None
    out, v = net.forward(theta, x)
    assert out.shape == (2, 2) and v.shape == (2,) and not out.any() and not v.any()
