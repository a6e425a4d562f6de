"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347).

Maximise, over K epochs of shuffled minibatches of one rollout (eq. 7, 9 of the paper)::

    r_t(θ) = π_θ(a_t|s_t) / π_θold(a_t|s_t)
    L^CLIP(θ) = Ê_t[ min(r_t Â_t, clip(r_t, 1−ε, 1+ε) Â_t) ]               (objective="clip")
    L^KLPEN(θ) = Ê_t[ r_t Â_t − β KL[π_θold(·|s_t), π_θ(·|s_t)] ]             (objective="kl_penalty", §4)
    loss = −L + c1 · Ê[(V_θ(s_t) − R_t)²] − c2 · Ê[H(π_θ(·|s_t))]

Â_t is GAE(γ, λ) (Schulman et al. 2016) and R_t = Â_t + V_old(s_t).  Ê is a weighted mean:
NEXT_STEP reset slots have weight 0 (refrl.rollout).  Implementation details follow the
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

from refrl import kernels
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
        self.optimizer = Adam(self.policy.params, self.policy.grads, lr=self.config.learning_rate, eps=1e-5)
        self.kl_coef = float(self.config.kl_coef)  # β of L^KLPEN (adapted when kl_adaptive)
        self.n_updates = 0  # gradient steps taken so far
        self.last_epoch_ratio_max: list[float] = []  # max r_t seen in each epoch of the last update

    def train(self) -> None:
        """One PPO update: K epochs x minibatches over the rollout, then log ``train/*``."""
        cfg, policy, opt, log = self.config, self.policy, self.optimizer, self.logger
        # schedules (SB3 convention: progress_remaining goes 1 -> 0)
        frac = self.progress_remaining
        opt.lr = cfg.learning_rate * (frac if cfg.anneal_lr else 1.0)
        clip_eps = cfg.clip_range * (frac if cfg.anneal_clip_range else 1.0)
        clip_eps = max(clip_eps, 1e-8)  # the last update of an annealed run sees ε → 0
        kl_pen = cfg.objective == "kl_penalty"

        # flatten the rollout to b_* arrays ([T*N]); reset slots carry weight 0
        b = self.flat_batch()
        B, M = b.logp.shape[0], cfg.batch_size
        b_dist_old = policy.dist_params(b.obs) if kl_pen else None
        b_obs, b_actions = b.obs, b.actions
        ratio_max, ratio_min, stop, epochs_done = 0.0, np.inf, False, 0
        self.last_epoch_ratio_max = []

        for _epoch in range(cfg.n_epochs):
            # shuffle once per epoch; minibatches are then contiguous slices (views, no gathers).
            # x.take(perm, axis=0) = x[perm], several times faster for 2-D arrays
            perm = self.rng.permutation(B)
            e_obs, e_actions = b_obs.take(perm, axis=0), b_actions.take(perm, axis=0)
            e_w, e_adv = b.weights.take(perm), b.advantages.take(perm)
            e_logp, e_ret, e_v = b.logp.take(perm), b.returns.take(perm), b.values.take(perm)
            e_dist_old = b_dist_old.take(perm, axis=0) if kl_pen else None
            # per-minibatch weight sums and advantage normalisation, for all minibatches at once
            # (rows of [B/M, M]; B is a multiple of M): the same statistics, fewer NumPy calls
            w_mb, adv_mb = e_w.reshape(-1, M), e_adv.reshape(-1, M)
            w_sums = w_mb.sum(axis=1, dtype=np.float64)
            if cfg.normalize_advantage:  # weighted, unbiased std as torch's .std() in SB3/CleanRL
                safe = np.maximum(w_sums, 1.0)[:, None]
                mean = (w_mb * adv_mb).sum(axis=1, dtype=np.float64)[:, None] / safe
                centred = adv_mb - mean
                var = (w_mb * centred * centred).sum(axis=1, dtype=np.float64)[:, None] / np.maximum(safe - 1.0, 1.0)
                e_adv = (centred / (np.sqrt(var) + 1e-8)).astype(e_adv.dtype).reshape(-1)
            epoch_ratio_max = 0.0
            for i_mb, start in enumerate(range(0, B, M)):
                mb = slice(start, start + M)
                mb_w = e_w[mb]
                w_sum = float(w_sums[i_mb])
                if w_sum == 0.0:  # only reset slots: nothing to learn from
                    continue
                mb_adv = e_adv[mb]

                logp, ent, values, cache = policy.evaluate(e_obs[mb], e_actions[mb])
                mb_logp_old = e_logp[mb]

                # policy objective and d objective / d logp
                if not kl_pen:
                    s = kernels.clipped_surrogate(logp, mb_logp_old, mb_adv, clip_eps, weights=mb_w)
                    objective, dlogp, clip_frac, approx_kl = s.objective, -s.grad_logp, s.clip_fraction, s.approx_kl
                    r_max, r_min = s.ratio_max, s.ratio_min
                else:
                    ratio = np.exp(logp - mb_logp_old)
                    objective = float(np.dot(mb_w, ratio * mb_adv)) / w_sum
                    dlogp = -(mb_w * ratio * mb_adv) / w_sum
                    clip_frac = float(np.dot(mb_w, np.abs(ratio - 1.0) > clip_eps)) / w_sum
                    approx_kl = float(np.dot(mb_w, (ratio - 1.0) - (logp - mb_logp_old))) / w_sum
                    used = ratio[mb_w > 0]
                    r_max, r_min = float(used.max()), float(used.min())
                approx_kl_k1 = float(np.dot(mb_w, mb_logp_old - logp)) / w_sum
                if cfg.target_kl is not None and approx_kl > 1.5 * cfg.target_kl:
                    stop = True  # early stop before this step (SB3)
                    break

                # value loss, optionally clipped around the rollout's values (ppo2/CleanRL's max form; SB3's
                # clip_range_vf keeps the clipped term alone)
                mb_ret, mb_v_old = e_ret[mb], e_v[mb]
                err = values - mb_ret
                if cfg.clip_range_vf is not None:
                    delta = values - mb_v_old
                    inside = np.abs(delta) <= cfg.clip_range_vf
                    err_clipped = mb_v_old + np.clip(delta, -cfg.clip_range_vf, cfg.clip_range_vf) - mb_ret
                    use_clipped = err_clipped**2 > err**2  # loss = max(unclipped², clipped²)
                    sq = np.where(use_clipped, err_clipped**2, err**2)
                    derr = np.where(use_clipped, err_clipped * inside, err)
                else:
                    sq, derr = err**2, err
                value_loss = float(np.dot(mb_w, sq)) / w_sum
                dvalues = (2.0 * cfg.vf_coef / w_sum) * mb_w * derr

                entropy = float(np.dot(mb_w, ent)) / w_sum
                dentropy = (-cfg.ent_coef / w_sum) * mb_w if cfg.ent_coef else None

                # backward: loss = −objective + c1·value_loss − c2·entropy (+ β·KL)
                policy.backward(cache, dlogp=dlogp, dentropy=dentropy, dvalues=dvalues, accumulate=False)
                kl_mean = 0.0
                if kl_pen:
                    mb_dist_old = e_dist_old[mb]
                    kl_i = policy.dist.kl(mb_dist_old, cache["dist_params"])
                    kl_mean = float(np.dot(mb_w, kl_i)) / w_sum
                    dkl = policy.dist.kl_grad(mb_dist_old, cache["dist_params"])
                    dkl *= (self.kl_coef / w_sum) * mb_w[:, None]
                    policy.backward_dist_params(cache, dkl)
                if cfg.max_grad_norm is not None:
                    grad_norm = clip_grad_norm_(policy.grads, cfg.max_grad_norm)
                else:
                    grad_norm = float(np.linalg.norm(policy.grads.astype(np.float64)))
                opt.step()
                self.n_updates += 1

                log.store(
                    **{
                        "train/policy_loss": -objective,
                        "train/value_loss": value_loss,
                        "train/entropy": entropy,
                        "train/entropy_loss": -entropy,
                        "train/approx_kl": approx_kl,
                        "train/approx_kl_k1": approx_kl_k1,
                        "train/clip_fraction": clip_frac,
                        "train/grad_norm": grad_norm,
                        "train/loss": -objective + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
                        + self.kl_coef * kl_mean,
                    }
                )
                epoch_ratio_max = max(epoch_ratio_max, r_max)
                ratio_min = min(ratio_min, r_min)
            self.last_epoch_ratio_max.append(epoch_ratio_max)
            ratio_max = max(ratio_max, epoch_ratio_max)
            epochs_done += 1
            if stop:
                break

        # adaptive KL coefficient (PPO paper §4), from the exact mean KL over the rollout
        if kl_pen:
            d = self._weighted_mean(policy.dist.kl(b_dist_old, policy.dist_params(b.obs)), b.weights)
            if cfg.kl_adaptive:
                if d < cfg.kl_target / 1.5:
                    self.kl_coef /= 2.0
                elif d > cfg.kl_target * 1.5:
                    self.kl_coef *= 2.0
            log.record("train/kl", d)
            log.record("train/kl_coef", self.kl_coef)

        log.record("train/ratio_max", ratio_max)
        log.record("train/ratio_min", float(ratio_min) if np.isfinite(ratio_min) else 1.0)
        log.record("train/explained_variance", explained_variance(b.values, b.returns, b.weights))
        log.record("train/learning_rate", opt.lr)
        log.record("train/clip_range", clip_eps)
        log.record("train/n_updates", self.n_updates)
        log.record("train/n_epochs", epochs_done)
        if policy.log_std is not None:
            log.record("train/std", float(np.exp(policy.log_std.astype(np.float64)).mean()))

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
