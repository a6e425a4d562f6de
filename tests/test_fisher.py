"""Fisher-vector product: native C++ (fisher.hpp / mlp.hpp) vs the NumPy path, the explicit
Fisher matrix, the finite-difference Hessian of the mean KL (TRPO's identity), symmetry / PSD,
conjugate gradient on the native operator, float32, the kernel variants, subsampling, errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from gymnasium import spaces
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refrl import _core, kernels, native, oracle
from refrl.nn import MLP
from refrl.policy import ActorCritic

ISAS = [isa for isa in ("generic", "avx2", "avx512") if _core.isa_supported(isa)]


def _action_space(kind: str, k: int):
    if kind == "discrete":
        return spaces.Discrete(k)
    if kind == "box":
        return spaces.Box(-1.0, 1.0, (k,))
    if kind == "multibinary":
        return spaces.MultiBinary(k)
    return spaces.MultiDiscrete([k, 2, 1][: max(1, k)])  # MultiDiscrete with 1..3 components


def _policy(kind, k, obs_dim, net_arch, activation="tanh", dtype=np.float64, seed=0) -> ActorCritic:
    return ActorCritic(
        spaces.Box(-np.inf, np.inf, (obs_dim,)),
        _action_space(kind, k),
        net_arch=net_arch,
        activation=activation,
        dtype=dtype,
        rng=np.random.default_rng(seed),
    )


def _f(dtype, lo, hi):
    return st.floats(lo, hi, width=32 if np.dtype(dtype) == np.float32 else 64)


@st.composite
def fisher_case(draw, dtype=np.float64, activations=("tanh", "relu"), max_B=8, max_width=6):
    """(policy with drawn θ, obs, v): every head, depth 0..2 hidden layers, widths 1..max_width."""
    kind = draw(st.sampled_from(["discrete", "box", "multidiscrete", "multibinary"]))
    k = draw(st.integers(1, 3))
    obs_dim = draw(st.integers(1, 4))
    net_arch = tuple(draw(st.lists(st.integers(1, max_width), min_size=0, max_size=2)))
    activation = draw(st.sampled_from(activations))
    pol = _policy(kind, k, obs_dim, net_arch, activation, dtype)
    n = pol.n_policy_params
    # weights of order 1 (the init's 0.01 policy head would hide most of the network)
    pol.policy_params[...] = draw(arrays(dtype, n, elements=_f(dtype, -1.5, 1.5)))
    if pol.log_std is not None:  # inside the log σ bounds (see test_..._clipped_log_std for outside)
        pol.log_std[...] = draw(arrays(dtype, pol.log_std.size, elements=_f(dtype, -1.0, 1.0)))
    B = draw(st.integers(1, max_B))
    obs = draw(arrays(dtype, (B, obs_dim), elements=_f(dtype, -3.0, 3.0)))
    v = draw(arrays(np.float64, n, elements=_f(np.float64, -2.0, 2.0)))
    return pol, obs, v


def _scale(x) -> float:
    return float(np.max(np.abs(x), initial=0.0)) + 1e-12


def _fv_atol(want, v) -> float:
    """Round-off in F·v is relative to the terms summed (J·v is of order ‖v‖ for the O(1)
    weights and inputs drawn here), not to the result, which can cancel to ~1e-17 (e.g. obs = 0,
    where M = diag(p) − ppᵀ annihilates the bias direction); a bug is off by far more."""
    return 1e-11 * (_scale(want) + float(np.max(np.abs(v), initial=0.0)))


# ------------------------------------------------------------------------------ vs oracles
@given(fisher_case(), st.integers(1, 3), st.sampled_from([0.0, 0.1]))
def test_fisher_vector_product_matches_oracle(case, subsample, damping):
    pol, obs, v = case
    got = native.fisher_operator(pol, obs, damping=damping, subsample=subsample)(v)
    want = oracle.fisher_vector_product(pol, obs, v, damping=damping, subsample=subsample)
    assert_close(got, want, rtol=1e-9, atol=_fv_atol(want, v), name="F v")


@given(fisher_case(max_B=5, max_width=4))
def test_fisher_vector_product_matches_explicit_fisher_matrix(case):
    pol, obs, v = case
    F = oracle.fisher_matrix(pol, obs)
    got = kernels.fisher_vector_product(pol, obs, v, damping=0.25)
    want = F @ v + 0.25 * v
    assert_close(got, want, rtol=1e-9, atol=_fv_atol(want, v), name="F v")


def _mean_kl_at(pol: ActorCritic, obs, old_dp, theta) -> float:
    saved = pol.policy_params.copy()
    pol.policy_params[...] = theta
    try:
        return pol.kl(obs, old_dp)
    finally:
        pol.policy_params[...] = saved


@settings(max_examples=25)
@given(fisher_case(activations=("tanh",), max_B=5), st.data())
def test_fisher_equals_finite_difference_hessian_of_mean_kl(case, data):
    """uᵀ F v = ∂²/∂a∂b  mean KL(π_θold ‖ π_{θold + a u + b v}) at 0 (TRPO, App. C): central
    mixed differences of the KL alone, independent of every hand-derived derivative."""
    pol, obs, v = case
    n = pol.n_policy_params
    u = data.draw(arrays(np.float64, n, elements=st.floats(-2.0, 2.0, width=64)))
    theta0 = pol.policy_params.copy()
    old_dp = pol.dist_params(obs)
    op = native.fisher_operator(pol, obs)
    eps = 1e-4
    for a, b in ((u, v), (v, v)):
        kl = [
            _mean_kl_at(pol, obs, old_dp, theta0 + eps * (sa * a + sb * b))
            for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1))
        ]
        fd = (kl[0] - kl[1] - kl[2] + kl[3]) / (4 * eps * eps)
        got = float(a @ op(b))
        assert abs(got - fd) <= 2e-5 * (abs(fd) + np.linalg.norm(a) * np.linalg.norm(b) * 1e-2) + 1e-6, (got, fd)


@given(fisher_case(max_B=5, max_width=4))
def test_fisher_is_symmetric_positive_semidefinite(case):
    pol, obs, v = case
    F = oracle.fisher_matrix(pol, obs)
    scale = _scale(F)
    assert_close(F, F.T, rtol=0, atol=1e-12 * scale, name="F - F^T")
    assert np.linalg.eigvalsh(F).min() >= -1e-10 * scale
    # the native operator: uᵀ(Fv) = vᵀ(Fu) and vᵀFv >= 0
    op = native.fisher_operator(pol, obs)
    u = np.roll(v, 1) - 0.5
    Fv, Fu = op(v), op(u)
    assert abs(u @ Fv - v @ Fu) <= 1e-10 * (1 + abs(u @ Fv))
    assert v @ Fv >= -1e-10 * (1 + np.abs(v).sum() ** 2 * scale)


@settings(max_examples=20)
@given(fisher_case(max_B=6, max_width=4), st.sampled_from([1e-2, 0.1, 1.0]), st.booleans())
def test_conjugate_gradient_with_native_fisher_operator_solves_damped_system(case, lam, damping_in_operator):
    """CG run entirely in C++ on the native operator solves (F + λI) x = g (np.linalg.solve)."""
    pol, obs, g = case
    n = pol.n_policy_params
    F = oracle.fisher_matrix(pol, obs)
    A = F + lam * np.eye(n)
    tol = 1e-24 * float(g @ g)  # relative to ‖g‖²: a tiny g (seen: 2e-16) is solved, not stopped at x = 0
    if damping_in_operator:
        res = kernels.conjugate_gradient(native.fisher_operator(pol, obs, damping=lam), g, iters=6 * n + 10, tol=tol)
    else:
        res = kernels.conjugate_gradient(native.fisher_operator(pol, obs), g, iters=6 * n + 10, tol=tol, damping=lam)
    want = np.linalg.solve(A, g)
    assert np.linalg.norm(A @ res.x - g) <= 1e-8 * np.linalg.norm(g) + 1e-12
    assert_close(res.x, want, rtol=1e-6, atol=1e-8 * _scale(want), name="x")


# ---------------------------------------------------------------------------------- float32
@given(fisher_case(dtype=np.float32), st.integers(1, 2))
def test_fisher_vector_product_float32_matches_float64_oracle(case, subsample):
    """float32 kernel vs the float64 oracle at the same (float32) θ and obs: stated tolerance
    1e-4 relative to the terms summed (products and sums in float32; see _fv_atol: F v itself
    can cancel to ~1e-17, e.g. at obs = 0, where float32 round-off of the terms is ~1e-8)."""
    pol, obs, v = case
    got = native.fisher_operator(pol, obs, subsample=subsample)(v.astype(np.float32))
    assert got.dtype == np.float32
    want = oracle.fisher_vector_product(pol, obs, v.astype(np.float32), subsample=subsample)
    scale = _scale(want) + float(np.max(np.abs(v), initial=0.0))
    assert_close(got, want, rtol=1e-4, atol=1e-4 * scale, name="F v (float32)")


# --------------------------------------------------------- realistic sizes, variants, options
@pytest.mark.parametrize("kind", ["discrete", "box", "multidiscrete", "multibinary"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fisher_64x64_policy_matches_oracle_on_every_kernel_variant(kind, dtype):
    """(64, 64) tanh policy, B = 301 (not a multiple of the 6-row block), obs_dim 17 (not a
    multiple of the vector width): every compiled variant (generic / AVX2 / AVX-512) agrees."""
    rng = np.random.default_rng(3)
    pol = _policy(kind, 3, 17, (64, 64), dtype=dtype, seed=1)
    pol.policy_params[...] += (0.3 * rng.standard_normal(pol.n_policy_params)).astype(dtype)
    obs = rng.standard_normal((301, 17)).astype(dtype)
    v = rng.standard_normal(pol.n_policy_params)
    want = oracle.fisher_vector_product(pol, obs, v.astype(dtype), damping=0.1)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for isa in ISAS:
        op = kernels.fisher_operator(pol, obs, damping=0.1, isa=isa)
        assert op.isa == isa
        got = op(v.astype(dtype))
        assert_close(got, want, rtol=tol, atol=tol * _scale(want), name=f"F v ({isa})")


def test_fisher_operator_honours_refrl_kernel_isa_baseline():
    """REFRL_KERNEL_ISA=baseline (the switch of every kernel) selects the portable variant, and
    _core.KERNEL_ISA reports it."""
    code = (
        "import numpy as np; from refrl import _core; "
        "op = _core.FisherOperatorF64(np.zeros(43), [4, 5, 3], 'tanh', 'categorical', np.zeros((3, 4))); "
        "print(op.isa, _core.KERNEL_ISA)"
    )
    env = {**os.environ, "REFRL_KERNEL_ISA": "baseline"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["generic", "generic"]


def test_fisher_operator_is_a_native_linear_operator_with_settable_damping(rng):
    pol = _policy("discrete", 3, 4, (8,))
    obs = rng.standard_normal((10, 4))
    op = native.fisher_operator(pol, obs)
    assert isinstance(op, _core.LinearOperatorF64)
    assert op.size == pol.n_policy_params and op.batch_size == 10 and op.n_obs == 10
    assert op.head == "categorical" and op.sizes == [4, 8, 3] and op.activation == "tanh"
    v = rng.standard_normal(op.size)
    Fv = op(v)
    op.damping = 0.5
    assert op.damping == 0.5
    assert_close(op(v), Fv + 0.5 * v, rtol=1e-12, atol=1e-14, name="damping")
    with pytest.raises(ValueError, match="damping"):
        op.damping = float("nan")


def test_fisher_operator_caches_theta_old(rng):
    """Built at θ_old: later parameter changes (the line search) do not affect the operator."""
    pol = _policy("box", 2, 3, (5,))
    obs = rng.standard_normal((6, 3))
    op = native.fisher_operator(pol, obs)
    v = rng.standard_normal(op.size)
    before = op(v)
    pol.params[...] += 0.5
    assert np.array_equal(op(v), before)
    assert not np.allclose(native.fisher_operator(pol, obs)(v), before)


@pytest.mark.parametrize("k", [1, 2, 5, 40, 2**62])
def test_fisher_subsample_uses_every_kth_observation(k, rng):
    pol = _policy("discrete", 3, 4, (16, 16))
    pol.policy_params[...] += 0.2 * rng.standard_normal(pol.n_policy_params)
    obs = rng.standard_normal((23, 4))
    v = rng.standard_normal(pol.n_policy_params)
    op = native.fisher_operator(pol, obs, subsample=k)
    assert op.batch_size == len(obs[::k]) and op.subsample == k
    assert np.array_equal(op(v), native.fisher_operator(pol, obs[::k])(v))


def test_fisher_clipped_log_std_has_zero_curvature(rng):
    """A log σ outside [LOG_STD_MIN, LOG_STD_MAX] is clipped inside the distribution, so the KL
    does not depend on it: its row of F is 0 (explicit matrix, native, and KL differences)."""
    pol = _policy("box", 2, 3, (4,))
    pol.policy_params[...] += 0.3 * rng.standard_normal(pol.n_policy_params)
    pol.log_std[...] = [3.0, -0.5]  # the first is above LOG_STD_MAX = 2
    obs = rng.standard_normal((5, 3))
    n = pol.n_policy_params
    e = np.zeros(n)
    e[n - 2] = 1.0  # the clipped log σ
    Fe = native.fisher_operator(pol, obs)(e)
    assert np.all(Fe == 0.0)
    assert np.all(oracle.fisher_matrix(pol, obs)[n - 2] == 0.0)
    e2 = np.zeros(n)
    e2[n - 1] = 1.0  # the free log σ: curvature 2
    assert native.fisher_operator(pol, obs)(e2)[n - 1] == pytest.approx(2.0)


def test_fisher_operator_concurrent_calls_are_safe(rng):
    """The GIL is released inside op(v); concurrent products on one operator stay correct."""
    pol = _policy("discrete", 4, 6, (32, 32))
    obs = rng.standard_normal((200, 6))
    op = native.fisher_operator(pol, obs)
    vs = [rng.standard_normal(op.size) for _ in range(4)]
    want = [op(v) for v in vs]
    errors = []

    def work(i):
        for _ in range(20):
            if not np.array_equal(op(vs[i]), want[i]):
                errors.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ------------------------------------------------------------------- the native MLP itself
@given(fisher_case(max_B=7), st.data())
def test_native_mlp_forward_jvp_vjp_match_nn(case, data):
    pol, obs, _ = case
    net: MLP = pol.pi
    x = pol.preprocess_obs(obs)
    v = data.draw(arrays(np.float64, net.params.size, elements=st.floats(-2, 2, width=64)))
    u = data.draw(arrays(np.float64, (x.shape[0], net.sizes[-1]), elements=st.floats(-2, 2, width=64)))
    y, cache = net.forward(x)
    g = np.zeros_like(net.params)
    net.backward(u, cache, out=g, need_dx=False)
    for isa in ISAS:
        mb = _core.MlpBatchF64(np.ascontiguousarray(net.params), list(net.sizes), net.activation, x, isa=isa)
        assert_close(mb.output(), y, rtol=1e-12, atol=1e-12, name=f"y ({isa})")
        assert_close(mb.jvp(v), net.jvp_from_cache(cache, v), rtol=1e-10, atol=1e-11, name=f"Jv ({isa})")
        assert_close(mb.vjp(u), g, rtol=1e-10, atol=1e-11, name=f"J^T u ({isa})")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_native_mlp_tanh_is_accurate_to_a_few_ulp(dtype):
    """mlp.hpp evaluates tanh with its own SIMD code (Cephes formulas): within 4 ulp of np.tanh
    over [-30, 30] incl. tiny values and the branch point 0.625, NaN and ±inf handled."""
    x = np.concatenate([np.linspace(-30, 30, 20001), np.geomspace(1e-12, 1, 2000), [0.625, -0.625, 0.0]])
    x = np.concatenate([x, -x]).astype(dtype)
    # y = 1 * tanh(1 * x + 0) + 0: sizes (1, 1, 1) with W1 = W2 = 1, b = 0
    theta = np.array([1, 0, 1, 0], dtype=dtype)
    Batch = _core.MlpBatchF64 if dtype == np.float64 else _core.MlpBatchF32
    want = np.tanh(x.astype(np.float64))
    eps = np.finfo(dtype).eps
    for isa in ISAS:
        got = Batch(theta, [1, 1, 1], "tanh", x[:, None], isa=isa).output()[:, 0]
        ulp = np.abs(got - want) / (eps * np.maximum(np.abs(want), np.finfo(dtype).tiny))
        assert ulp.max() <= 4.0, (isa, float(ulp.max()), x[np.argmax(ulp)])
        special = Batch(theta, [1, 1, 1], "tanh", np.array([[np.nan], [np.inf], [-np.inf]], dtype), isa=isa).output()
        assert np.isnan(special[0, 0]) and special[1, 0] == 1.0 and special[2, 0] == -1.0


# ----------------------------------------------------------------------------- bad inputs
@pytest.fixture
def small():
    pol = _policy("discrete", 3, 4, (5,))
    obs = np.random.default_rng(0).standard_normal((6, 4))
    return pol, obs, np.ones(pol.n_policy_params)


def test_fisher_vector_product_rejects_wrong_observation_shape(small):
    pol, obs, v = small
    with pytest.raises(ValueError, match="fisher_vector_product: .*'obs'"):
        kernels.fisher_vector_product(pol, obs[:, :3], v)
    with pytest.raises(ValueError, match="'obs'"):
        kernels.fisher_vector_product(pol, obs[0], v)
    with pytest.raises(ValueError, match="'obs'"):
        kernels.fisher_vector_product(pol, obs[:0], v)


def test_fisher_vector_product_rejects_wrong_v_length(small):
    pol, obs, v = small
    with pytest.raises(ValueError, match=r"fisher_vector_product: 'v' must have shape \(policy.n_policy_params,\)"):
        kernels.fisher_vector_product(pol, obs, v[:-1])


def test_fisher_vector_product_rejects_nan(small):
    pol, obs, v = small
    bad = v.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="'v' contains NaN"):
        kernels.fisher_vector_product(pol, obs, bad)
    bad_obs = obs.copy()
    bad_obs[1, 1] = np.inf
    with pytest.raises(ValueError, match="'obs' contains NaN"):
        kernels.fisher_vector_product(pol, bad_obs, v)
    pol.policy_params[0] = np.nan
    with pytest.raises(ValueError, match="'policy' parameters contain NaN"):
        kernels.fisher_vector_product(pol, obs, v)


def test_fisher_operator_rejects_overflowing_policy_output():
    pol = _policy("discrete", 3, 4, (5,), dtype=np.float32)
    pol.policy_params[...] = 3e38  # finite, but the logits overflow float32
    with pytest.raises(ValueError, match="overflowed"):
        native.fisher_operator(pol, np.ones((2, 4), dtype=np.float32))


def test_fisher_vector_product_rejects_bad_dtype_and_types(small):
    pol, obs, v = small
    with pytest.raises(TypeError, match="'v' must be a float32 or float64 array"):
        kernels.fisher_vector_product(pol, obs, np.ones(pol.n_policy_params, dtype=np.int64))
    with pytest.raises(TypeError, match="'policy'"):
        kernels.fisher_vector_product(object(), obs, v)
    with pytest.raises(TypeError, match="'obs'"):
        kernels.fisher_operator(pol, None)


def test_fisher_operator_rejects_bad_damping_and_subsample(small):
    pol, obs, v = small
    with pytest.raises(ValueError, match="'damping' must be >= 0"):
        kernels.fisher_vector_product(pol, obs, v, damping=-1.0)
    with pytest.raises(ValueError, match="'damping' must be finite"):
        native.fisher_operator(pol, obs, damping=float("nan"))
    with pytest.raises(ValueError, match="'subsample' must be >= 1"):
        native.fisher_operator(pol, obs, subsample=0)
    with pytest.raises(TypeError, match="'subsample' must be an integer"):
        native.fisher_operator(pol, obs, subsample=1.5)
    with pytest.raises(ValueError, match="'isa'"):
        kernels.fisher_operator(pol, obs, isa="sse9")


def test_native_fisher_operator_binding_validates_every_size():
    """Called directly (bypassing refrl.kernels), the binding still checks all sizes: nothing
    inconsistent reaches C++."""
    theta = np.zeros(MLP.num_params((4, 5, 3)))
    obs = np.zeros((6, 4))
    Op = _core.FisherOperatorF64
    Op(theta, [4, 5, 3], "tanh", "categorical", obs)  # consistent: fine
    cases = [
        ((theta[:-1], [4, 5, 3], "tanh", "categorical", obs), {}, "'theta'"),
        ((theta, [4, 5, 2], "tanh", "categorical", obs), {}, "'theta'"),
        ((theta, [4, 5, 3], "tanh", "gaussian", obs), {}, "'theta'"),  # log_std missing
        ((theta, [4, 5, 3], "tanh", "categorical", np.zeros((6, 5))), {}, "'obs'"),
        ((theta, [4, 5, 3], "tanh", "categorical", np.zeros((0, 4))), {}, "'obs'"),
        ((theta, [4, 5, 3], "tanh", "categorical", np.zeros(24)), {}, "'obs'"),
        ((theta, [4, 0, 3], "tanh", "categorical", obs), {}, "'sizes'"),
        ((theta, [4], "tanh", "categorical", obs), {}, "'sizes'"),
        ((theta, [4, 5, 3], "sigmoid", "categorical", obs), {}, "'activation'"),
        ((theta, [4, 5, 3], "tanh", "beta", obs), {}, "'head'"),
        ((theta, [4, 5, 3], "tanh", "multicategorical", obs), {"nvec": [2, 2]}, "'nvec'"),
        ((theta, [4, 5, 3], "tanh", "multicategorical", obs), {"nvec": [4, -1]}, "'nvec'"),
        ((theta, [4, 5, 3], "tanh", "categorical", obs), {"nvec": [3]}, "'nvec'"),
        ((theta, [4, 5, 3], "tanh", "categorical", obs), {"subsample": 0}, "'subsample'"),
        ((theta, [4, 5, 3], "tanh", "categorical", obs), {"damping": float("inf")}, "'damping'"),
        ((theta, [4, 5, 3], "tanh", "categorical", obs), {"isa": "neon"}, "'isa'"),
    ]
    for args, kw, name in cases:
        with pytest.raises(ValueError, match=name):
            Op(*args, **kw)
    with pytest.raises(TypeError):  # no silent dtype conversion
        Op(theta.astype(np.float32), [4, 5, 3], "tanh", "categorical", obs)
    op = Op(theta, [4, 5, 3], "tanh", "categorical", obs)
    with pytest.raises(ValueError, match="length"):
        op(np.zeros(theta.size + 1))


def test_fisher_operator_refuses_a_distribution_without_a_native_head():
    """No silent NumPy fallback: a distribution the native operator has no head for is named."""
    from refrl.distributions import Bernoulli

    class OtherBits(Bernoulli):
        pass

    pol = _policy("multibinary", 2, 3, (4,))
    pol.dist = OtherBits(2)
    with pytest.raises(ValueError, match="fisher_operator: .policy. has an unsupported action distribution"):
        native.fisher_operator(pol, np.zeros((2, 3)))
