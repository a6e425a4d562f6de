"""Vanilla policy gradient: REINFORCE (Williams 1992), with or without a learned value baseline,
optionally with GAE advantages (Schulman et al. 2016).

One update per rollout (Spinning Up's VPG; Sutton & Barto 2018, §13.3-13.4)::

    without a baseline:  Â_t = G_t = Σ_k γ^k r_{t+k}           (Monte Carlo return; V ≡ 0)
    with a baseline:     Â_t = GAE(γ, λ) with the learned V    (λ = 1: G_t − V(s_t))
    ĝ = Ê_t[ ∇_θ log π_θ(a_t|s_t) Â_t ]                         (policy gradient theorem)
    θ ← θ + Adam(ĝ)   for n_epochs full-batch steps (1: the plain REINFORCE step)
    V fitted by Adam on minibatches of (s_t, R_t), n_critic_updates epochs (baseline only)

Nothing limits how far one step moves the policy: a large ``learning_rate`` (or several epochs
on the same batch) can take a destructive step from which the policy never recovers — the
motivation of TRPO's trust region (docs/trpo.md reproduces it).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refrl import kernels
from refrl.algos.base import (
    OnPolicyAlgorithm,
    explained_variance,
    fit_value_minibatches,
)
from refrl.config import VPGConfig
from refrl.optim import Adam, clip_grad_norm_

__all__ = ["VPG"]


class VPG(OnPolicyAlgorithm):
    """Vanilla policy gradient (REINFORCE, optional learned baseline and GAE).

    ``refrl.VPG(env, seed=0, **hyperparameters)``; hyperparameters are the fields of
    :class:`refrl.config.VPGConfig`.  ``use_baseline=False`` gives Williams' REINFORCE with the
    discounted return G_t as the weight of ∇ log π (truncated episodes bootstrap from 0: there is no V).
    """

    config_class: ClassVar[type[VPGConfig]] = VPGConfig
    algo_name: ClassVar[str] = "vpg"
    config: VPGConfig

    def _setup(self) -> None:
        p, cfg = self.policy, self.config
        self.optimizer = Adam(p.policy_params, p.policy_grads, lr=cfg.scheduled("learning_rate", 1.0), eps=1e-5)
        self.critic_optimizer = Adam(p.value_params, p.value_grads, lr=cfg.vf_learning_rate, eps=1e-5)
        self.n_updates = 0

    def compute_advantages(self) -> None:
        """With a baseline: GAE as the other algorithms.  Without: Â_t = G_t (V ≡ 0, λ = 1)."""
        if self.config.use_baseline:
            super().compute_advantages()
            return
        buf = self.buffer
        zeros = np.zeros_like(buf.values)
        adv, _ = kernels.gae(buf.rewards, zeros, zeros, buf.terminated, buf.truncated, self.config.gamma, 1.0)
        np.multiply(adv, buf.valid, out=buf.advantages)
        np.copyto(buf.returns, buf.advantages)  # G_t (the value net is not used)

    def train(self) -> None:
        """REINFORCE step(s) on the whole batch, then the baseline's epochs; log ``train/*``."""
        cfg, policy, opt, log = self.config, self.policy, self.optimizer, self.logger
        frac = self.progress_remaining if cfg.anneal_lr else 1.0
        opt.lr = cfg.scheduled("learning_rate", self.progress_remaining, anneal=cfg.anneal_lr)
        self.critic_optimizer.lr = cfg.vf_learning_rate * frac

        # flatten; keep real transitions only
        b = self.real_transitions(cfg.normalize_advantage)
        if b is None:
            return
        b_obs, b_actions, b_adv, b_ret, b_val = b.obs, b.actions, b.advantages, b.returns, b.values
        B = b_adv.size

        # policy: maximise L^PG(θ) = Ê[log π_θ(a|s) Â] (+ c·H) by n_epochs full-batch Adam steps
        b_dist_old = None
        for _epoch in range(cfg.n_epochs):
            logp, ent, _, cache = policy.evaluate(b_obs, b_actions)
            if b_dist_old is None:
                b_dist_old = cache["dist_params"].copy()
            objective = float(np.dot(logp.astype(np.float64), b_adv)) / B
            policy.policy_grads.fill(0)
            dentropy = np.full(B, -cfg.ent_coef / B) if cfg.ent_coef else None
            policy.backward(cache, dlogp=-(b_adv / B), dentropy=dentropy)  # loss = −L^PG − c·H
            # Σ_r B_r g_r / Σ_r B_r and the statistics over all ranks (one allreduce)
            _, stats = self._average_gradient(policy.policy_grads, B, np.array([objective, float(ent.mean())]))
            objective, mean_entropy = float(stats[0]), float(stats[1])
            if cfg.max_grad_norm is not None:
                grad_norm = clip_grad_norm_(policy.policy_grads, cfg.max_grad_norm)
            else:
                grad_norm = float(np.linalg.norm(policy.policy_grads.astype(np.float64)))
            opt.step()
            log.store(**{"train/policy_loss": -objective, "train/entropy": mean_entropy, "train/grad_norm": grad_norm})
        kl = policy.kl(b_obs, b_dist_old)  # how far this update moved the policy (exact mean KL)
        kl = float(self.comm.weighted_mean(np.array([kl]), B).mean[0])  # over all ranks

        # baseline: n_critic_updates epochs of Adam on minibatches of (V(s) − R)²
        value_loss = float("nan")
        if cfg.use_baseline and cfg.n_critic_updates > 0:
            value_loss = fit_value_minibatches(policy, self.critic_optimizer, b_obs, b_ret, n_epochs=cfg.n_critic_updates,
                                               batch_size=cfg.batch_size, max_grad_norm=cfg.max_grad_norm, rng=self.rng,
                                               comm=self.comm)
            b_val, b_ret = self._gathered(b_val, b_ret)
            log.record("train/explained_variance", explained_variance(b_val, b_ret, np.ones_like(b_ret)))
        self.n_updates += 1
        log.record("train/kl", kl)
        log.record("train/value_loss", value_loss)
        log.record("train/learning_rate", opt.lr)
        log.record("train/n_updates", self.n_updates)
        if policy.log_std is not None:
            log.record("train/std", float(np.exp(policy.log_std.astype(np.float64)).mean()))

    # ------------------------------------------------------------------ checkpoint extras
    def _optimizers(self) -> dict[str, Adam]:
        return {"optim": self.optimizer, "critic_optim": self.critic_optimizer}

    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"n_updates": self.n_updates}

    def _load_extra_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.n_updates = int(meta.get("n_updates", 0))
