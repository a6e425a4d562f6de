"""The fused evaluate/backward path of the distributions (log_prob_entropy + params_grad_from_stash)
gives the same values as the separate methods, which are themselves checked by finite differences
in test_distributions.py."""

import numpy as np
import pytest

from refrl.distributions import Categorical, DiagGaussian, MultiCategorical


def _cases(rng):
    B = 7
    c = Categorical(4, start=2)
    yield c, rng.normal(size=(B, 4)) * 3, rng.integers(2, 6, size=B)
    g = DiagGaussian(3)
    yield g, rng.normal(size=(B, 6)), rng.normal(size=(B, 3))
    beyond = rng.normal(size=(B, 6))
    beyond[:3, 3:] = 3.0  # log σ above LOG_STD_MAX and below LOG_STD_MIN: the masked gradient
    beyond[3:5, 4] = -25.0
    yield g, beyond, rng.normal(size=(B, 3))
    m = MultiCategorical([3, 2])
    yield m, rng.normal(size=(B, 5)), np.stack([rng.integers(0, 3, B), rng.integers(0, 2, B)], axis=1)


@pytest.mark.parametrize("which", [(True, True), (True, False), (False, True), (False, False)])
def test_fused_matches_separate_methods(rng, which):
    use_dlogp, use_dent = which
    for dist, params, actions in _cases(rng):
        B = params.shape[0]
        dlogp = rng.normal(size=B) if use_dlogp else None
        dent = rng.normal(size=B) if use_dent else None
        logp, ent, stash = dist.log_prob_entropy(params, actions)
        np.testing.assert_allclose(logp, dist.log_prob(params, actions), rtol=0, atol=1e-12)
        np.testing.assert_allclose(ent, dist.entropy(params), rtol=0, atol=1e-12)
        got = dist.params_grad_from_stash(stash, dlogp, dent)
        if dlogp is None and dent is None:
            assert got is None
            continue
        want = np.zeros_like(params)
        if dlogp is not None:
            want += dist.log_prob_grad(params, actions) * dlogp[:, None]
        if dent is not None:
            want += dist.entropy_grad(params) * dent[:, None]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_fused_categorical_validates_actions():
    c = Categorical(3)
    with pytest.raises(ValueError, match="actions"):
        c.log_prob_entropy(np.zeros((2, 3)), np.array([0, 3]))
