"""Unit tests of the miniature RLHF pieces: task and gold reward, exact and sampled KL,
every hand gradient against central finite differences (float64), controllers, errors, checkpoints."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from helpers import numerical_grad, rel_error
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refrl.nn import MLP
from refrl.rlhf.pipeline import load_reference, load_reward_model, save_reference, save_reward_model
from refrl.rlhf.policy import (
    TokenPolicy,
    entropy_and_grad_logits,
    log_softmax,
    per_token_kl,
    sft_loss_and_grad_logits,
)
from refrl.rlhf.ppo import (
    AdaptiveKLController,
    RLHFPPOConfig,
    evaluate_policy,
    policy_loss_grad_logits,
    value_loss_and_grad,
)
from refrl.rlhf.reward_model import (
    RewardModel,
    bradley_terry_loss,
    reward_features,
    sample_preference_pairs,
)
from refrl.rlhf.task import ToyTask, generate_demonstrations, gold_reward, response_stats

TASK = ToyTask()
# vocabulary of the default task: cat dog owl | pie tea jam | sun rain fog | the and very
CAT, DOG, OWL, PIE, TEA, RAIN, THE, AND, VERY = 0, 1, 2, 3, 4, 7, 9, 10, 11
# a tiny task whose responses can be enumerated: V = 3, L = 3 -> 27 responses per prompt
TINY = ToyTask(n_topics=2, words_per_topic=1, n_filler=1, response_length=3, p_topic=0.4, p_off=0.2)


# ------------------------------------------------------------------------------- task, gold reward
@pytest.mark.parametrize(
    ("response", "want"),
    [
        ([CAT, DOG, THE, CAT, THE, OWL, AND, VERY], 3 + 0.5 * 4),  # varied, four mentions: the best kind
        ([CAT] * 8, 1 + 0.5 * 4 - 3 - 7),  # stutter and stuffing
        ([CAT, DOG, OWL] * 2 + [CAT, DOG], 3 + 0.5 * 4 - 3),  # keyword stuffing without repeats
        ([PIE, THE, RAIN, AND, THE, THE, VERY, TEA], -0.5 * 3 - 1),  # off topic, one stutter
    ],
)
def test_gold_reward_worked_examples(response, want):
    got = gold_reward(TASK, np.array([0]), np.array([response]))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(want)


def test_demonstrations_follow_the_documented_writer(rng):
    prompts, responses = generate_demonstrations(TASK, 20000, rng)
    s = response_stats(TASK, prompts, responses)
    L = TASK.response_length
    # topic words at ~p_topic per position (a redrawn repeat shifts it a little), repeats rare
    assert abs(s["n_topic"].mean() / L - TASK.p_topic) < 0.03
    assert s["n_repeat"].mean() < 0.4
    # the region where the gold reward falls (n_topic > 5) is rarely visited by the writer
    assert (s["n_topic"] > 5).mean() < 0.03
    assert np.bincount(prompts, minlength=3).min() > 6000


def test_task_rejects_bad_configuration_and_batches():
    with pytest.raises(ValueError, match="n_topics"):
        ToyTask(n_topics=0)
    with pytest.raises(ValueError, match="p_topic"):
        ToyTask(p_topic=0.95, p_off=0.1)
    with pytest.raises(ValueError, match="'responses'"):
        gold_reward(TASK, np.array([0]), np.zeros((1, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="'responses'"):
        gold_reward(TASK, np.array([0]), np.full((1, 8), 99))
    with pytest.raises(ValueError, match="'prompts'"):
        gold_reward(TASK, np.array([7]), np.zeros((1, 8), dtype=np.int64))
    policy = TokenPolicy(TASK, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="'prompts'"):
        policy.sample(np.array([-1]), np.random.default_rng(0))  # negative ids must not wrap around
    with pytest.raises(ValueError, match="'prompts'"):
        policy.sample(np.array([0.5]), np.random.default_rng(0))


# --------------------------------------------------------------------------------------------- KL
def _kl_literal(logp, logq):
    """Σ_v p_v (log p_v − log q_v), one row at a time: the definition, no vectorisation."""
    out = np.zeros(logp.shape[0])
    for i in range(logp.shape[0]):
        for v in range(logp.shape[1]):
            p = math.exp(logp[i, v])
            out[i] += p * (logp[i, v] - logq[i, v])
    return out


@given(
    zp=arrays(np.float64, (6, 5), elements=st.floats(-8, 8)),
    zq=arrays(np.float64, (6, 5), elements=st.floats(-8, 8)),
)
def test_per_token_kl_matches_brute_force_sum_over_vocabulary(zp, zq):
    lp, lq = log_softmax(zp), log_softmax(zq)
    got = per_token_kl(lp, lq)
    np.testing.assert_allclose(got, _kl_literal(lp, lq), rtol=1e-10, atol=1e-12)
    assert (got >= -1e-12).all()
    np.testing.assert_allclose(per_token_kl(lp, lp), 0.0, atol=1e-15)


def _tiny_policies(seed: int):
    rng = np.random.default_rng(seed)
    pi = TokenPolicy(TINY, context=2, hidden=(8,), rng=rng, output_gain=1.5)
    ref = TokenPolicy(TINY, context=2, hidden=(8,), rng=rng, output_gain=1.5)
    return pi, ref


def _exact_sequence_kl(pi, ref, prompt: int) -> float:
    """KL[π(·|x) ‖ π_ref(·|x)] by enumerating all V^L responses."""
    ys = np.array(list(itertools.product(range(TINY.vocab_size), repeat=TINY.response_length)))
    xs = np.full(len(ys), prompt)
    lp, lq = pi.sequence_log_prob(xs, ys), ref.sequence_log_prob(xs, ys)
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12)  # a normalised distribution over responses
    return float(np.sum(np.exp(lp) * (lp - lq)))


def test_exact_and_sampled_sequence_kl_estimators_have_the_enumerated_mean():
    pi, ref = _tiny_policies(3)
    exact = np.mean([_exact_sequence_kl(pi, ref, x) for x in range(TINY.n_topics)])
    assert exact > 0.05  # the two policies really differ
    rng = np.random.default_rng(4)
    n = 40000
    prompts = TINY.sample_prompts(n, rng)
    ys, obs, lp_all = pi.sample(prompts, rng)
    lq_all = ref.log_probs_all(obs)
    per_pos = per_token_kl(lp_all, lq_all).sum(axis=0)  # Σ_t KL_t(s_t), exact over the vocabulary
    k1 = (np.take_along_axis(lp_all - lq_all, ys.T[..., None], axis=2)[..., 0]).sum(axis=0)
    # the sampled log-ratio equals the sequence log-ratio computed independently
    np.testing.assert_allclose(k1, pi.sequence_log_prob(prompts, ys) - ref.sequence_log_prob(prompts, ys), atol=1e-10)
    for est in (per_pos, k1):
        se = est.std() / math.sqrt(n)
        assert abs(est.mean() - exact) < 4 * se + 1e-3, (est.mean(), exact, se)
    assert per_pos.std() < k1.std()  # summing the exact per-token KL removes the vocabulary noise
    # evaluate_policy reports the same two estimates
    e = evaluate_policy(pi, ref, RewardModel(TINY, hidden=(4,), rng=rng), 20000, np.random.default_rng(5))
    assert abs(e["kl_exact"] - exact) < 0.03 * exact + 0.01
    assert abs(e["kl_sampled"] - exact) < 0.1 * exact + 0.02


def test_sampling_matches_teacher_forced_log_probs(rng):
    policy = TokenPolicy(TASK, rng=rng, output_gain=1.0)
    prompts = TASK.sample_prompts(50, rng)
    ys, obs, lp_all = policy.sample(prompts, rng)
    np.testing.assert_array_equal(obs, policy.observe_all(prompts, ys))
    sampled = np.take_along_axis(lp_all, ys.T[..., None], axis=2)[..., 0].sum(axis=0)
    np.testing.assert_allclose(sampled, policy.sequence_log_prob(prompts, ys), atol=1e-12)
    # the frequency of a token at t = 0 approaches its probability
    rng2 = np.random.default_rng(0)
    x = np.zeros(20000, dtype=np.int64)
    ys2, _, lp2 = policy.sample(x, rng2)
    freq = np.bincount(ys2[:, 0], minlength=TASK.vocab_size) / x.size
    np.testing.assert_allclose(freq, np.exp(lp2[0, 0]), atol=0.015)


# ------------------------------------------------------------------------- hand gradients vs FD
def test_bradley_terry_grad_matches_finite_differences(rng):
    r_w, r_l = rng.normal(size=7) * 2, rng.normal(size=7) * 2
    _, d_w, d_l = bradley_terry_loss(r_w, r_l)
    num_w = numerical_grad(lambda x: bradley_terry_loss(x, r_l)[0], r_w.copy())
    num_l = numerical_grad(lambda x: bradley_terry_loss(r_w, x)[0], r_l.copy())
    assert rel_error(d_w, num_w) < 1e-7
    assert rel_error(d_l, num_l) < 1e-7
    # the loss is −log σ(Δ): at Δ = 0 it is log 2, and it is stable for huge margins
    assert bradley_terry_loss(np.zeros(1), np.zeros(1))[0] == pytest.approx(math.log(2))
    loss, dw, _ = bradley_terry_loss(np.array([-800.0]), np.array([800.0]))
    assert loss == pytest.approx(1600.0)
    assert dw[0] == pytest.approx(-1.0)


def test_bradley_terry_grad_through_reward_model_matches_finite_differences(rng):
    model = RewardModel(TASK, hidden=(5,), rng=rng)
    ref = TokenPolicy(TASK, rng=rng, output_gain=1.0)
    pairs = sample_preference_pairs(TASK, ref, 6, rng)

    def loss_of_params(_theta):
        r_w, _ = model.forward(pairs.prompts, pairs.chosen)
        r_l, _ = model.forward(pairs.prompts, pairs.rejected)
        return bradley_terry_loss(r_w, r_l)[0]

    r_w, c_w = model.forward(pairs.prompts, pairs.chosen)
    r_l, c_l = model.forward(pairs.prompts, pairs.rejected)
    _, d_w, d_l = bradley_terry_loss(r_w, r_l)
    model.net.zero_grad()
    model.backward(d_w, c_w)
    model.backward(d_l, c_l)
    num = numerical_grad(loss_of_params, model.net.params, h=1e-5)
    assert rel_error(model.net.grads, num) < 1e-6


def test_sft_cross_entropy_grad_matches_finite_differences(rng):
    policy = TokenPolicy(TASK, hidden=(4,), rng=rng, output_gain=1.0)
    prompts, responses = generate_demonstrations(TASK, 3, rng)
    x = policy.observe_all(prompts, responses).reshape(-1, policy.obs_dim)
    targets = responses.T.reshape(-1)
    # w.r.t. the logits
    z = rng.normal(size=(5, TASK.vocab_size))
    a = rng.integers(0, TASK.vocab_size, 5)
    _, dz = sft_loss_and_grad_logits(z, a)
    assert rel_error(dz, numerical_grad(lambda zz: sft_loss_and_grad_logits(zz, a)[0], z)) < 1e-7
    # through the MLP
    logits, cache = policy.logits(x)
    _, dz = sft_loss_and_grad_logits(logits, targets)
    policy.zero_grad()
    policy.net.backward(dz, cache)
    num = numerical_grad(lambda _t: sft_loss_and_grad_logits(policy.logits(x)[0], targets)[0], policy.params)
    assert rel_error(policy.grads, num) < 1e-6


def test_entropy_grad_matches_finite_differences(rng):
    z = rng.normal(size=(4, 6)) * 2
    H, dH = entropy_and_grad_logits(z)
    np.testing.assert_allclose(H, -(np.exp(log_softmax(z)) * log_softmax(z)).sum(axis=1))
    for i in range(4):
        num = numerical_grad(lambda zz, i=i: entropy_and_grad_logits(zz)[0][i], z)
        assert rel_error(dH[i], num[i]) < 1e-7
        assert np.abs(np.delete(num, i, axis=0)).max() < 1e-9


def test_value_loss_grad_matches_finite_differences(rng):
    value = MLP((7, 4, 1), dtype=np.float64, rng=rng)
    x = rng.normal(size=(9, 7))
    ret = rng.normal(size=9)
    v, cache = value.forward(x)
    _, dv = value_loss_and_grad(v[:, 0], ret)
    value.zero_grad()
    value.backward(dv[:, None], cache)
    num = numerical_grad(lambda _t: value_loss_and_grad(value.forward(x)[0][:, 0], ret)[0], value.params)
    assert rel_error(value.grads, num) < 1e-6


def test_clipped_surrogate_grad_through_logits_matches_finite_differences(rng):
    B, V, eps = 12, 5, 0.2
    z = rng.normal(size=(B, V))
    a = rng.integers(0, V, B)
    logp = np.take_along_axis(log_softmax(z), a[:, None], axis=1)[:, 0]
    logp_old = logp + rng.uniform(-0.5, 0.5, B)
    ratio = np.exp(logp - logp_old)
    assert np.min(np.abs(np.abs(ratio - 1) - eps)) > 1e-3  # away from the kinks of the min/clip
    adv = rng.normal(size=B)
    sur, dz = policy_loss_grad_logits(z, a, logp_old, adv, eps)
    assert 0 < sur.clip_fraction < 1  # both branches are exercised
    num = numerical_grad(lambda zz: -policy_loss_grad_logits(zz, a, logp_old, adv, eps)[0].objective, z)
    assert rel_error(dz, num) < 1e-6


# ------------------------------------------------------------------------------ controller, config
def test_adaptive_kl_controller_follows_ziegler_update():
    ctl = AdaptiveKLController(0.2, target=6.0, horizon=10000)
    # KL = 9: e = clip(9/6 − 1, ±0.2) = 0.2;  β ← 0.2 (1 + 0.2 · 256/10000)
    assert ctl.update(9.0, 256) == pytest.approx(0.2 * (1 + 0.2 * 256 / 10000))
    b = ctl.value
    # KL = 5.4: e = −0.1
    assert ctl.update(5.4, 256) == pytest.approx(b * (1 - 0.1 * 256 / 10000))
    with pytest.raises(ValueError, match="target"):
        AdaptiveKLController(0.1, target=0.0, horizon=10)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="clip_range"):
        RLHFPPOConfig(clip_range=0.0)
    with pytest.raises(ValueError, match="iterations"):
        RLHFPPOConfig(iterations=2.5)
    with pytest.raises(ValueError, match="kl_coef"):
        RLHFPPOConfig(kl_coef=-1.0)
    with pytest.raises(ValueError, match="kl_coef"):
        RLHFPPOConfig(kl_coef=0.0, adaptive_kl=True)
    with pytest.raises(ValueError, match="r_chosen"):
        bradley_terry_loss(np.zeros(3), np.zeros(4))


# ------------------------------------------------------------------------------------- checkpoints
def test_checkpoints_round_trip_without_pickle(tmp_path, rng):
    policy = TokenPolicy(TASK, rng=rng, output_gain=1.0)
    model = RewardModel(TASK, rng=rng)
    model.gain, model.bias = 1.7, -0.3
    p1 = save_reference(tmp_path / "sft", policy)
    p2 = save_reward_model(tmp_path / "rm.npz", model)
    assert p1.name == "sft.npz"
    assert not list(tmp_path.glob(".*tmp*"))
    with np.load(p1, allow_pickle=False) as data:  # readable without pickle
        assert "policy/params" in data.files
    policy2, model2 = load_reference(p1), load_reward_model(p2)
    prompts, ys = generate_demonstrations(TASK, 20, rng)
    np.testing.assert_array_equal(policy2.sequence_log_prob(prompts, ys), policy.sequence_log_prob(prompts, ys))
    np.testing.assert_array_equal(model2(prompts, ys), model(prompts, ys))
    with pytest.raises(ValueError, match="not an rlhf SFT"):
        load_reference(p2)


def test_reward_features_layout():
    y = np.array([[CAT, CAT, THE, PIE, DOG, THE, THE, AND]])
    f = reward_features(TASK, np.array([0]), y)
    P, V, L = 3, TASK.vocab_size, 8
    assert f.shape == (1, P + V + P * V + 2)
    assert f[0, :P].tolist() == [1, 0, 0]
    assert f[0, P + CAT] == pytest.approx(2 / L)
    assert f[0, P + V + 0 * V + CAT] == pytest.approx(2 / L)
    assert f[0, P + V + 1 * V + CAT] == 0
    assert f[0, -2] == pytest.approx(2 / (L - 1))  # two stutters
    assert f[0, -1] == pytest.approx(5 / L)  # cat the pie dog and


def test_reward_model_normalisation_has_zero_mean_unit_std(rng):
    model = RewardModel(TASK, hidden=(8,), rng=rng)
    prompts, ys = generate_demonstrations(TASK, 500, rng)
    raw, _ = model.forward(prompts, ys)
    model.normalise(prompts, ys)
    r = model(prompts, ys)
    assert abs(r.mean()) < 1e-12
    assert r.std() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(r, (raw - raw.mean()) / raw.std(), rtol=1e-10, atol=1e-12)
