"""Trust Region Policy Optimization (Schulman et al. 2015, arXiv:1502.05477) and the natural
policy gradient (Kakade 2001) as the same step without the line search.

One update (the paper's "practical algorithm", §6 and Appendix C; Spinning Up's pseudocode)::

    L(θ)   = Ê_t[ π_θ(a_t|s_t) / π_θold(a_t|s_t) · Â_t ]          surrogate L^CPI (eq. 14)
    g      = ∇_θ L(θ)|θold = Ê_t[ ∇ log π_θ(a_t|s_t) Â_t ]          = the vanilla policy gradient
    F      = ∇²_θ D̄_KL(θold, θ)|θold                                Fisher = Hessian of the mean KL
    s      ≈ (F + λI)⁻¹ g                                           cg_iters of conjugate gradient
    β      = √(2δ / sᵀ(F + λI)s)                                    step to the KL radius δ (App. C)
    θ      = θold + α^j β s,   j = 0, 1, ..., line_search_max_iter − 1
             first j with  D̄_KL(θold, θ) ≤ δ  and  L(θ) > L(θold)   (exact mean KL on the batch)
    no such j  ->  θ = θold exactly (bit-identical)
    NPG: θ = θold + β s  (no line search)

D̄_KL(θold, θ) = Ê_s[KL(π_θold(·|s) ‖ π_θ(·|s))] over the batch's real transitions (NEXT_STEP
reset slots excluded).  Â_t is GAE(γ, λ), normalised over the batch when ``normalize_advantage``
(as sb3-contrib).  The value function is fitted separately by Adam on minibatches of the
returns (``n_critic_updates`` epochs), as sb3-contrib, OpenAI Baselines and Spinning Up do.

Where the work runs: with ``use_native_step=True`` (the default) everything after the policy
gradient g — CG over the native Fisher operator, the scaling to the KL radius and the whole
backtracking line search with the exact mean KL and surrogate — is one call of
``kernels.trpo_step`` (cpp/include/refrl/trpo_step.hpp; no Python per CG iteration or per try,
GIL released).  ``use_native_step=False`` keeps the NumPy line search (``step_direction`` +
``try_step`` below: native CG, then one NumPy forward pass of the policy MLP per try); both paths
make the same decisions (tests/test_trpo_step.py).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import numpy as np

from refrl import kernels
from refrl.algos.base import (
    OnPolicyAlgorithm,
    explained_variance,
    fit_value_minibatches,
)
from refrl.config import NPGConfig, TRPOConfig
from refrl.optim import Adam

__all__ = ["NPG", "TRPO", "PolicyStepInfo"]


class PolicyStepInfo(NamedTuple):
    """Diagnostics of one natural-gradient / TRPO policy step (all floats are float64)."""

    accepted: bool  # θ moved (False: θ is bit-identical to θ_old)
    kl: float  # exact mean KL(π_old ‖ π_θ) on the batch after the step (0 when rejected)
    surrogate_gain: float  # actual L(θ) − L(θ_old) (0 when rejected)
    expected_gain: float  # first-order prediction gᵀΔθ of the accepted (or last tried) step
    backtracks: int  # number of times the step was shrunk before acceptance (max_iter if rejected)
    step_fraction: float  # α^j of the accepted step (0 when rejected)
    cg_iterations: int
    cg_residual: float  # ‖r‖ of the CG solve
    grad_norm: float  # ‖g‖
    quadratic_kl: float  # ½ βs ᵀ(F + λI) βs = δ by construction (check of the scaling)
    surrogate_old: float  # L(θ_old) = Ê[Â]


class NPG(OnPolicyAlgorithm):
    """Natural policy gradient (Kakade 2001; TRPO without the line search, as Spinning Up).

    ``refrl.NPG(env, seed=0, **hyperparameters)``; hyperparameters are the fields of
    :class:`refrl.config.NPGConfig` (max_kl, cg_iters, cg_damping, n_critic_updates, ...).
    """

    config_class: ClassVar[type[NPGConfig]] = NPGConfig
    algo_name: ClassVar[str] = "npg"
    config: NPGConfig
    line_search: ClassVar[bool] = False

    def _setup(self) -> None:
        p = self.policy
        self.critic_optimizer = Adam(p.value_params, p.value_grads, lr=self.config.learning_rate, eps=1e-5)
        self.last_step: PolicyStepInfo | None = None
        self.n_updates = 0

    # ------------------------------------------------------------------ one update
    def train(self) -> None:
        """Collected rollout -> normalised advantages -> natural/TRPO policy step -> critic epochs."""
        cfg, policy, log = self.config, self.policy, self.logger
        # flatten to b_*, real transitions only; advantages normalised over the whole batch (sb3-contrib)
        b = self.real_transitions(cfg.normalize_advantage)
        if b is None:
            return
        b_obs, b_actions, b_adv, b_ret, b_val = b.obs, b.actions, b.advantages, b.returns, b.values

        # policy: natural gradient step (+ line search for TRPO)
        info = self.policy_step(b_obs, b_actions, b_adv)
        self.last_step = info

        # value function: n_critic_updates epochs of Adam on minibatches of (s, R)
        value_loss = self.fit_value(b_obs, b_ret)
        self.n_updates += 1

        log.record("train/kl", info.kl)
        log.record("train/surrogate_gain", info.surrogate_gain)
        log.record("train/expected_improvement", info.expected_gain)
        log.record("train/line_search_backtracks", info.backtracks)
        log.record("train/step_accepted", float(info.accepted))
        log.record("train/step_fraction", info.step_fraction)
        log.record("train/cg_iterations", info.cg_iterations)
        log.record("train/cg_residual", info.cg_residual)
        log.record("train/grad_norm", info.grad_norm)
        log.record("train/policy_objective", info.surrogate_old + info.surrogate_gain)
        log.record("train/value_loss", value_loss)
        log.record("train/explained_variance", explained_variance(b_val, b_ret, np.ones_like(b_ret)))
        log.record("train/learning_rate", self.critic_optimizer.lr)
        log.record("train/n_updates", self.n_updates)
        if policy.log_std is not None:
            log.record("train/std", float(np.exp(policy.log_std.astype(np.float64)).mean()))

    def policy_step(self, obs: np.ndarray, actions: np.ndarray, adv: np.ndarray) -> PolicyStepInfo:
        """The natural-gradient step on one batch, in place on ``policy.policy_params``.

        Parameters
        ----------
        obs : ndarray [B, *obs_shape]; actions : ndarray [B, ...]; adv : ndarray [B]
            The batch (real transitions only) and its (normalised) advantages.

        Returns
        -------
        PolicyStepInfo.  When ``accepted`` is False, ``policy.policy_params`` is bit-identical
        to its value on entry.
        """
        cfg, policy = self.config, self.policy
        dist = policy.dist
        theta = policy.policy_params  # view: writing it moves the policy
        theta_old = theta.copy()
        B = adv.shape[0]
        adv64 = np.asarray(adv, dtype=np.float64)

        # θ_old: distribution parameters, log π_θold(a|s) and the policy gradient g = ∇L(θ_old)
        g, dist_old, logp_old, acts = self.policy_gradient(obs, actions, adv)
        logp_old = logp_old.astype(np.float64)
        surr_old = float(adv64.mean())  # L(θ_old): every ratio is 1
        grad_norm = float(np.linalg.norm(g.astype(np.float64)))
        no_step = PolicyStepInfo(False, 0.0, 0.0, 0.0, 0, 0.0, 0, 0.0, grad_norm, 0.0, surr_old)
        if not math.isfinite(grad_norm) or grad_norm == 0.0:
            return no_step  # nothing to follow; θ untouched

        if cfg.use_native_step:  # CG, scaling and line search in one native call
            r = kernels.trpo_step(
                policy, obs, actions, logp_old, adv, g, max_kl=cfg.max_kl, cg_iters=cfg.cg_iters,
                cg_damping=cfg.cg_damping, cg_tol=cfg.cg_tol, subsample=cfg.fvp_subsample,
                line_search_shrink=getattr(cfg, "line_search_shrink", 0.8),
                line_search_max_iter=getattr(cfg, "line_search_max_iter", 1), line_search=self.line_search,
            )  # fmt: skip
            if r.accepted:
                theta[...] = r.theta
            # (rejected: θ was never written, it is θ_old bit for bit)
            return PolicyStepInfo(r.accepted, r.kl, r.surrogate_gain, r.expected_gain, r.backtracks, r.step_fraction,
                                  r.cg_iterations, r.cg_residual, grad_norm, r.quadratic_kl, surr_old)  # fmt: skip

        # s ≈ (F + λI)⁻¹ g: the whole CG solve runs natively on the native Fisher operator
        cg, fvp = self.step_direction(obs, g)
        s = cg.x.astype(np.float64)
        sFs = float(np.dot(s, fvp(cg.x).astype(np.float64)))  # sᵀ(F + λI)s
        if not (math.isfinite(sFs) and sFs > 0.0):
            return no_step._replace(cg_iterations=cg.iterations, cg_residual=cg.residual_norm)
        beta = math.sqrt(2.0 * cfg.max_kl / sFs)  # scale to the KL radius: ½ (βs)ᵀF(βs) = δ
        full_step = beta * s
        expected_full = float(np.dot(g.astype(np.float64), full_step))  # gᵀΔθ (first order)

        def try_step(frac: float) -> tuple[float, float]:
            """θ ← θ_old + frac·βs; return (exact mean KL(π_old ‖ π_θ), L(θ) − L(θ_old))."""
            np.add(theta_old, (frac * full_step).astype(policy.dtype), out=theta)
            try:
                dp = policy.dist_params(obs)
            except ValueError:  # the step overflowed the network: reject this try
                return math.inf, math.nan
            with np.errstate(over="ignore", invalid="ignore"):
                kl = float(dist.kl(dist_old, dp).mean())  # the same reduction as ActorCritic.kl
                ratio = np.exp(dist.log_prob(dp, acts).astype(np.float64) - logp_old)
                return kl, float(np.dot(ratio, adv64)) / B - surr_old

        base = dict(cg_iterations=cg.iterations, cg_residual=cg.residual_norm, grad_norm=grad_norm,
                    quadratic_kl=0.5 * beta * beta * sFs, surrogate_old=surr_old)
        if not self.line_search:  # NPG: take the full step (unless it is not finite)
            kl, gain = try_step(1.0)
            if math.isfinite(kl) and math.isfinite(gain):
                return PolicyStepInfo(True, kl, gain, expected_full, 0, 1.0, **base)
            theta[...] = theta_old
            return PolicyStepInfo(False, 0.0, 0.0, expected_full, 0, 0.0, **base)

        # backtracking line search: first α^j with exact mean KL ≤ δ and L improved
        frac = 1.0
        for j in range(cfg.line_search_max_iter):
            kl, gain = try_step(frac)
            if math.isfinite(kl) and math.isfinite(gain) and kl <= cfg.max_kl and gain > 0.0:
                return PolicyStepInfo(True, kl, gain, frac * expected_full, j, frac, **base)
            frac *= cfg.line_search_shrink
        theta[...] = theta_old  # (critical!) rejected: restore θ_old bit for bit
        return PolicyStepInfo(False, 0.0, 0.0, frac / cfg.line_search_shrink * expected_full,
                              cfg.line_search_max_iter, 0.0, **base)

    def policy_gradient(self, obs: np.ndarray, actions: np.ndarray, adv: np.ndarray):
        """g = ∇_θ L^CPI(θ)|θold = (1/B) Σ_t ∇_θ log π_θ(a_t|s_t) Â_t (the vanilla policy gradient).

        Returns ``(g [n_policy_params], dist_old [B, P], logp_old [B], actions)`` at the current θ,
        ``actions`` in the distribution's layout (for ``dist.log_prob``).
        """
        policy = self.policy
        logp_old, _, _, cache = policy.evaluate(obs, actions)
        dist_old = cache["dist_params"].copy()
        acts = cache["actions"]
        ddist = policy.dist.log_prob_grad(dist_old, acts)
        ddist *= (np.asarray(adv, dtype=np.float64) / adv.shape[0]).astype(ddist.dtype)[:, None]  # r = 1
        g = np.zeros(policy.n_policy_params, dtype=policy.dtype)
        policy.backward_dist_params(cache, ddist, out=g)
        return g, dist_old, logp_old, acts

    def step_direction(self, obs: np.ndarray, g: np.ndarray):
        """s ≈ (F + cg_damping·I)⁻¹ g by ``cg_iters`` of CG over the native Fisher operator at the
        current θ (the whole solve in C++).  Returns ``(CGResult, operator)``."""
        cfg = self.config
        fvp = self.policy.fisher_operator(obs, damping=cfg.cg_damping, subsample=cfg.fvp_subsample)
        return kernels.conjugate_gradient(fvp, g, iters=cfg.cg_iters, tol=cfg.cg_tol), fvp

    def fit_value(self, obs: np.ndarray, returns: np.ndarray) -> float:
        """``n_critic_updates`` epochs of Adam on minibatches of ½-free MSE (V(s) − R)²; mean loss."""
        cfg = self.config
        self.critic_optimizer.lr = cfg.learning_rate * (self.progress_remaining if cfg.anneal_lr else 1.0)
        return fit_value_minibatches(self.policy, self.critic_optimizer, obs, returns, n_epochs=cfg.n_critic_updates,
                                     batch_size=cfg.batch_size, max_grad_norm=cfg.max_grad_norm, rng=self.rng)

    # ------------------------------------------------------------------ checkpoint extras
    def _optimizers(self) -> dict[str, Adam]:
        return {"optim": self.critic_optimizer}  # the policy takes natural steps: no optimiser state

    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"n_updates": self.n_updates}

    def _load_extra_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.n_updates = int(meta.get("n_updates", 0))


class TRPO(NPG):
    """Trust Region Policy Optimization: the natural step with a backtracking line search that
    accepts only a step whose exact mean KL on the batch is ≤ max_kl and whose surrogate improved.

    ``refrl.TRPO(env, seed=0, **hyperparameters)``; hyperparameters are the fields of
    :class:`refrl.config.TRPOConfig` (max_kl, cg_iters, cg_damping, line_search_shrink,
    line_search_max_iter, n_critic_updates; sb3-contrib calls max_kl ``target_kl``: the crosswalk
    is in docs/api.md).
    """

    config_class: ClassVar[type[TRPOConfig]] = TRPOConfig
    algo_name: ClassVar[str] = "trpo"
    config: TRPOConfig
    line_search: ClassVar[bool] = True
