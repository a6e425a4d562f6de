"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347).

Maximise, over K epochs of shuffled minibatches of one rollout (eq. 7, 9 of the paper)::

    r_t(θ) = π_θ(a_t|s_t) / π_θold(a_t|s_t)
    L^CLIP(θ) = Ê_t[ min(r_t Â_t, clip(r_t, 1−ε, 1+ε) Â_t) ]               (objective="clip")
    L^KLPEN(θ) = Ê_t[ r_t Â_t − β KL[π_θold(·|s_t), π_θ(·|s_t)] ]             (objective="kl_penalty", §4)
    L^VF(θ) = Ê_t[ (V_θ(s_t) − R_t)² ]      (or ppo2/CleanRL's max form with clip_range_vf)
    loss = −L + c1 · L^VF − c2 · Ê[H(π_θ(·|s_t))]

Â_t is GAE(γ, λ) (Schulman et al. 2016) and R_t = Â_t + V_old(s_t).  Ê is a weighted mean:
NEXT_STEP reset slots have weight 0 (refrl.rollout).  Each term and its gradient is a function
of refrl.losses; docs/math.md maps them to the paper, their oracles and tests.  Implementation details follow the
strong implementations ("The 37 Implementation Details of PPO", Huang et al. 2022; SB3's
ppo.py), each with its own switch (Engstrom et al. 2020): per-minibatch advantage
normalisation, value clipping (clip_range_vf), global gradient clipping, Adam ε = 1e-5,
linear LR annealing, early stop at 1.5·target_kl (checked before the step, as SB3).

Adaptive KL (§4): after each update, with d = Ê[KL[π_old, π_θ]]: if d < d_targ/1.5, β ← β/2;
if d > 1.5·d_targ, β ← 2β.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refrl import losses
from refrl.algos.base import OnPolicyAlgorithm, explained_variance
from refrl.config import PPOConfig
from refrl.optim import Adam, clip_grad_norm_

__all__ = ["PPO"]


class PPO(OnPolicyAlgorithm):
    """PPO with the clipped surrogate (default) or the adaptive KL penalty.

    ``refrl.PPO(env, seed=0, **hyperparameters)``; hyperparameters are the fields of
    :class:`refrl.config.PPOConfig` (SB3 names and defaults).
    """

    config_class: ClassVar[type[PPOConfig]] = PPOConfig
    algo_name: ClassVar[str] = "ppo"
    config: PPOConfig

    def _setup(self) -> None:
        self.optimizer = Adam(self.policy.params, self.policy.grads, lr=self.config.scheduled("learning_rate", 1.0), eps=1e-5)
        self.kl_coef = float(self.config.kl_coef)  # β of L^KLPEN (adapted when kl_adaptive)
        self.n_updates = 0  # gradient steps taken so far
        self.last_epoch_ratio_max: list[float] = []  # max r_t seen in each epoch of the last update

    def train(self) -> None:
        """One PPO update: K epochs x minibatches over the rollout, then log ``train/*``."""
        cfg, policy, opt, log = self.config, self.policy, self.optimizer, self.logger
        # schedules (SB3 convention: progress_remaining goes 1 -> 0)
        frac = self.progress_remaining
        opt.lr = cfg.scheduled("learning_rate", frac, anneal=cfg.anneal_lr)
        clip_eps = cfg.scheduled("clip_range", frac, anneal=cfg.anneal_clip_range)
        clip_eps = max(clip_eps, 1e-8)  # the last update of an annealed run sees ε → 0

        # flatten the rollout to b_* arrays ([T*N]); reset slots carry weight 0
        b = self.flat_batch()
        B, M = b.logp.shape[0], cfg.batch_size
        objective, backward_kl, b_dist_old = self._policy_objective(b.obs, clip_eps)
        ratio_max, ratio_min, stop, epochs_done = 0.0, np.inf, False, 0
        self.last_epoch_ratio_max = []

        for _epoch in range(cfg.n_epochs):
            # shuffle once per epoch; minibatches are then contiguous slices (views, no gathers).
            # x.take(perm, axis=0) = x[perm], several times faster for 2-D arrays
            perm = self.rng.permutation(B)
            e_obs, e_actions = b.obs.take(perm, axis=0), b.actions.take(perm, axis=0)
            e_w, e_adv = b.weights.take(perm), b.advantages.take(perm)
            e_logp, e_ret, e_v = b.logp.take(perm), b.returns.take(perm), b.values.take(perm)
            e_dist_old = b_dist_old.take(perm, axis=0)
            # (Σw, Σw Â, Σw Â²) of each minibatch (the rows of [B/M, M]) over all ranks, in one
            # reduction: the advantage normalisation's statistics and the same skips everywhere
            my_moments = losses.advantage_moments(e_adv.reshape(-1, M), e_w.reshape(-1, M))
            moments = self.comm.sum(my_moments)
            epoch_ratio_max = 0.0
            for i_mb, start in enumerate(range(0, B, M)):
                if moments[i_mb, 0] == 0:  # only reset slots: nothing to learn from
                    continue
                mb = slice(start, start + M)
                mb_w = e_w[mb]
                mb_adv = e_adv[mb]
                if cfg.normalize_advantage:  # over this minibatch, all ranks' shares of it
                    mb_adv = losses.normalize_advantages(mb_adv, mb_w, moments[i_mb])
                w_sum = float(my_moments[i_mb, 0])  # this rank's share of the minibatch

                if w_sum > 0:
                    logp, ent, values, cache = policy.evaluate(e_obs[mb], e_actions[mb])
                    pg = objective(logp, e_logp[mb], mb_adv, mb_w, cache["dist_params"], e_dist_old[mb])
                    v_loss, dvalues = losses.value_loss(values, e_v[mb], e_ret[mb], mb_w, cfg.clip_range_vf)
                    entropy, dentropy = losses.entropy_bonus(ent, mb_w, cfg.ent_coef)
                    # backward: loss = −L + c1·L^VF − c2·Ê[H]
                    # (L^KLPEN's −β·KL term also reaches the distribution parameters directly)
                    policy.backward(cache, dlogp=-pg.grad_logp, dentropy=None if dentropy is None else -dentropy,
                                    dvalues=cfg.vf_coef * dvalues, accumulate=False)
                    backward_kl(cache, pg)
                    kl_k1 = float(np.dot(mb_w, e_logp[mb] - logp)) / w_sum
                    stats = np.array([pg.approx_kl, pg.surrogate, v_loss, entropy, kl_k1, pg.clip_fraction, pg.kl])
                else:  # this rank holds no real sample of the minibatch: it contributes nothing
                    policy.grads.fill(0)
                    stats = np.zeros(7)
                # Σ_r W_r g_r / Σ_r W_r and the minibatch statistics over all ranks (one allreduce)
                _, stats = self._average_gradient(policy.grads, w_sum, stats)
                approx_kl, surrogate, v_loss, entropy, kl_k1, clip_fraction, kl = stats.tolist()
                if cfg.target_kl is not None and approx_kl > 1.5 * cfg.target_kl:
                    stop = True  # early stop before this step (SB3)
                    break
                if cfg.max_grad_norm is not None:
                    grad_norm = clip_grad_norm_(policy.grads, cfg.max_grad_norm)
                else:
                    grad_norm = float(np.linalg.norm(policy.grads.astype(np.float64)))
                opt.step()
                self.n_updates += 1

                log.store(**{"train/policy_loss": -surrogate, "train/value_loss": v_loss, "train/entropy": entropy,
                             "train/entropy_loss": -entropy, "train/approx_kl": approx_kl, "train/approx_kl_k1": kl_k1,
                             "train/clip_fraction": clip_fraction, "train/grad_norm": grad_norm,
                             "train/loss": -surrogate + cfg.vf_coef * v_loss - cfg.ent_coef * entropy + self.kl_coef * kl})
                if w_sum > 0:
                    epoch_ratio_max = max(epoch_ratio_max, pg.ratio_max)
                    ratio_min = min(ratio_min, pg.ratio_min)
            self.last_epoch_ratio_max.append(epoch_ratio_max)
            epochs_done += 1
            if stop:
                break
        # the ratio statistics over all ranks (one allreduce of the maxima)
        maxima = self.comm.max(np.array([-ratio_min, *self.last_epoch_ratio_max]))
        ratio_min, self.last_epoch_ratio_max = -float(maxima[0]), [float(x) for x in maxima[1:]]
        ratio_max = max([ratio_max, *self.last_epoch_ratio_max])

        if cfg.objective == "kl_penalty":
            self._adapt_kl_coef(b, b_dist_old)
        log.record("train/ratio_max", ratio_max)
        log.record("train/ratio_min", float(ratio_min) if np.isfinite(ratio_min) else 1.0)
        log.record("train/explained_variance", explained_variance(*self._gathered(b.values, b.returns, b.weights)))
        log.record("train/learning_rate", opt.lr)
        log.record("train/clip_range", clip_eps)
        log.record("train/n_updates", self.n_updates)
        log.record("train/n_epochs", epochs_done)
        if policy.log_std is not None:
            log.record("train/std", float(np.exp(policy.log_std.astype(np.float64)).mean()))

    def _policy_objective(self, obs: np.ndarray, clip_eps: float):
        """The policy objective of this update, chosen once: L^CLIP (eq. 7) or L^KLPEN with the current β (§4).

        Returns ``objective(logp, logp_old, advantages, weights, dist_params, dist_params_old)``, the step
        that adds the −β·KL term's gradient (nothing for L^CLIP), and π_old's distribution parameters
        over the rollout (an empty placeholder for L^CLIP, which needs none).
        """
        policy, beta = self.policy, self.kl_coef
        if self.config.objective == "clip":
            def clip(logp, logp_old, adv, w, _dist_params, _dist_params_old):
                return losses.clipped_surrogate_objective(logp, logp_old, adv, w, clip_eps)

            return clip, lambda cache, pg: None, np.empty((obs.shape[0], 0), policy.dtype)

        def kl_penalty(logp, logp_old, adv, w, dist_params, dist_params_old):
            return losses.kl_penalty_objective(logp, logp_old, adv, w, clip_eps, beta=beta, dist=policy.dist,
                                               dist_params_old=dist_params_old, dist_params=dist_params)

        def backward_kl(cache, pg):
            policy.backward_dist_params(cache, -pg.grad_dist_params)

        return kl_penalty, backward_kl, policy.dist_params(obs)

    def _adapt_kl_coef(self, b, b_dist_old: np.ndarray) -> None:
        """Adaptive β (§4), from the exact mean KL d over the rollout after the update:
        β ← β/2 if d < d_targ/1.5, β ← 2β if d > 1.5·d_targ."""
        cfg = self.config
        d = self._weighted_mean(self.policy.dist.kl(b_dist_old, self.policy.dist_params(b.obs)), b.weights)
        d = float(self.comm.weighted_mean(np.array([d]), float(b.weights.sum())).mean[0])  # over all ranks
        if cfg.kl_adaptive:
            if d < cfg.kl_target / 1.5:
                self.kl_coef /= 2.0
            elif d > cfg.kl_target * 1.5:
                self.kl_coef *= 2.0
        self.logger.record("train/kl", d)
        self.logger.record("train/kl_coef", self.kl_coef)

    @staticmethod
    def _weighted_mean(x: np.ndarray, w: np.ndarray) -> float:
        return float(np.dot(w.astype(np.float64), x)) / float(w.sum())

    # ------------------------------------------------------------------ checkpoint extras
    def _optimizers(self) -> dict[str, Adam]:
        return {"optim": self.optimizer}

    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"kl_coef": self.kl_coef, "n_updates": self.n_updates}

    def _load_extra_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.kl_coef = float(meta.get("kl_coef", self.config.kl_coef))
        self.n_updates = int(meta.get("n_updates", 0))
