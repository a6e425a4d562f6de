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

Where the work runs: conjugate gradient over the native Fisher operator (``kernels.conjugate_gradient``
on ``native.fisher_operator``: the whole solve in C++, no Python per iteration), then the
scaling to the KL radius and the backtracking line search in NumPy (:func:`trpo_step` below: one
forward pass of the policy MLP per try), held to the literal float64 ``oracle.trpo_step``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from refrl import kernels, native
from refrl._checks import as_array, as_float_array, check_bool, check_finite, check_fits, check_scalar, fmt_shape
from refrl._types import TrpoStepResult
from refrl.algos.base import (
    OnPolicyAlgorithm,
    explained_variance,
    fit_value_minibatches,
)
from refrl.config import NPGConfig, TRPOConfig
from refrl.distributed import SerialComm
from refrl.optim import Adam
from refrl.policy import ActorCritic

__all__ = ["NPG", "TRPO", "step_direction", "trpo_step"]

_SERIAL = SerialComm()


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
        self.critic_optimizer = Adam(p.value_params, p.value_grads, lr=self.config.scheduled("learning_rate", 1.0), eps=1e-5)
        self.last_step: TrpoStepResult | None = None
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
        b_val, b_ret = self._gathered(b_val, b_ret)
        log.record("train/explained_variance", explained_variance(b_val, b_ret, np.ones_like(b_ret)))
        log.record("train/learning_rate", self.critic_optimizer.lr)
        log.record("train/n_updates", self.n_updates)
        if policy.log_std is not None:
            log.record("train/std", float(np.exp(policy.log_std.astype(np.float64)).mean()))

    def policy_step(self, obs: np.ndarray, actions: np.ndarray, adv: np.ndarray) -> TrpoStepResult:
        """The natural-gradient step on one batch, in place on ``policy.policy_params``.

        Parameters
        ----------
        obs : ndarray [B, *obs_shape]; actions : ndarray [B, ...]; adv : ndarray [B]
            The batch (real transitions only) and its (normalised) advantages.

        Returns
        -------
        TrpoStepResult.  When ``accepted`` is False, ``policy.policy_params`` is bit-identical
        to its value on entry.
        """
        cfg = self.config
        g, logp_old = self.policy_gradient(obs, actions, adv)
        return trpo_step(
            self.policy, obs, actions, logp_old, adv, g, max_kl=cfg.max_kl, cg_iters=cfg.cg_iters,
            cg_damping=cfg.cg_damping, cg_tol=cfg.cg_tol, subsample=cfg.fvp_subsample, line_search=self.line_search,
            line_search_shrink=getattr(cfg, "line_search_shrink", 0.8),
            line_search_max_iter=getattr(cfg, "line_search_max_iter", 1), comm=self.comm,
        )  # fmt: skip

    def policy_gradient(self, obs: np.ndarray, actions: np.ndarray, adv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """g = ∇_θ L^CPI(θ)|θold = (1/B) Σ_t ∇_θ log π_θ(a_t|s_t) Â_t (the vanilla policy gradient);
        with several ranks over all of them, Σ_r B_r g_r / Σ_r B_r (one allreduce).

        Returns ``(g [n_policy_params], logp_old [B])`` at the current θ.
        """
        policy = self.policy
        logp_old, _, _, cache = policy.evaluate(obs, actions)
        ddist = policy.dist.log_prob_grad(cache["dist_params"], cache["actions"])
        ddist *= (np.asarray(adv, dtype=np.float64) / adv.shape[0]).astype(ddist.dtype)[:, None]  # r = 1
        g = np.zeros(policy.n_policy_params, dtype=policy.dtype)
        policy.backward_dist_params(cache, ddist, out=g)
        self._average_gradient(g, adv.shape[0])
        return g, logp_old

    def fit_value(self, obs: np.ndarray, returns: np.ndarray) -> float:
        """``n_critic_updates`` epochs of Adam on minibatches of ½-free MSE (V(s) − R)²; mean loss."""
        cfg = self.config
        self.critic_optimizer.lr = cfg.scheduled("learning_rate", self.progress_remaining, anneal=cfg.anneal_lr)
        return fit_value_minibatches(self.policy, self.critic_optimizer, obs, returns, n_epochs=cfg.n_critic_updates,
                                     batch_size=cfg.batch_size, max_grad_norm=cfg.max_grad_norm, rng=self.rng,
                                     comm=self.comm)

    # ------------------------------------------------------------------ checkpoint extras
    def _optimizers(self) -> dict[str, Adam]:
        return {"optim": self.critic_optimizer}  # the policy takes natural steps: no optimiser state

    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"n_updates": self.n_updates}

    def _load_extra_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.n_updates = int(meta.get("n_updates", 0))


def _solver_args(fn: str, policy: Any, cg_iters: Any, cg_damping: Any, cg_tol: Any, subsample: Any):
    """The conjugate-gradient hyperparameters, checked under the names the caller used."""
    if not isinstance(policy, ActorCritic):
        raise TypeError(f"{fn}: 'policy' must be a refrl.policy.ActorCritic, got {type(policy).__name__}")
    return (
        check_scalar("cg_iters", cg_iters, fn=fn, lo=0, integer=True),
        check_fits("cg_damping", check_scalar("cg_damping", cg_damping, fn=fn, lo=0.0), fn=fn, dtype=policy.dtype),
        check_scalar("cg_tol", cg_tol, fn=fn, lo=0.0),
        check_scalar("subsample", subsample, fn=fn, lo=1, integer=True),
    )


def step_direction(policy: Any, obs: np.ndarray, g: np.ndarray, *, cg_iters: int, cg_damping: float, cg_tol: float,
                   subsample: int = 1, comm: Any = None):
    """s ≈ (F + cg_damping·I)⁻¹ g by ``cg_iters`` of conjugate gradient over the native Fisher
    operator at the current θ (the whole solve in C++).  Returns ``(CGResult, operator)``.

    With several ranks (``comm``), F is the Fisher matrix of all ranks' batches,
    F v = Σ_r n_r F_r v / Σ_r n_r + λ v with F_r the native operator on rank r's n_r observations:
    one allreduce per product, inside the same conjugate gradient (run as a callable), so that
    every rank iterates on the same numbers."""
    cg_iters, cg_damping, cg_tol, subsample = _solver_args("step_direction", policy, cg_iters, cg_damping, cg_tol,
                                                           subsample)  # fmt: skip
    if comm is None or not comm.is_distributed:
        fvp = native.fisher_operator(policy, obs, damping=cg_damping, subsample=subsample)
    else:
        fvp = _global_fisher_operator(policy, obs, cg_damping, subsample, comm)
    return kernels.conjugate_gradient(fvp, g, iters=cg_iters, tol=cg_tol), fvp


def _global_fisher_operator(policy: Any, obs: np.ndarray, damping: float, subsample: int, comm: Any):
    """v -> Σ_r n_r F_r v / Σ_r n_r + λ v over the ranks (a collective: every rank calls it alike)."""
    local = native.fisher_operator(policy, obs, damping=0.0, subsample=subsample)
    n_local = float(local.batch_size)

    def fvp(v: np.ndarray) -> np.ndarray:
        out = np.array(local(v), dtype=v.dtype)
        comm.average_(out, n_local)
        out += damping * v
        return out

    return fvp


def trpo_step(
    policy: Any, obs: np.ndarray, actions: np.ndarray, logp_old: np.ndarray, adv: np.ndarray, g: np.ndarray,
    *, max_kl: float, cg_iters: int = 10, cg_damping: float = 0.1, cg_tol: float = 1e-10, subsample: int = 1,
    line_search: bool = True, line_search_shrink: float = 0.8, line_search_max_iter: int = 10, comm: Any = None,
) -> TrpoStepResult:
    """One TRPO (``line_search=True``) or NPG policy step at θ_old = ``policy.policy_params``
    (TRPO §6 and Appendix C; Spinning Up's ``trpo``), written into ``policy.policy_params``.

    s ≈ (F + λI)⁻¹ g            ``cg_iters`` of CG over the native Fisher operator at θ_old
    β = √(2δ / sᵀ(F + λI)s)      ½ (βs)ᵀ(F + λI)(βs) = δ
    θ_j = θ_old + α^j β s        accept the first j with D̄_KL(θ_old, θ_j) ≤ δ and L(θ_j) > L(θ_old)
    NPG: θ = θ_old + β s         (accepted whenever its KL and gain are finite)

    ``obs``, ``actions``, ``logp_old`` [B] and ``adv`` [B] are the batch's real transitions;
    L(θ) = (1/B) Σ_b π_θ(a_b|s_b)/π_old(a_b|s_b) Â_b.  When the step is rejected θ is θ_old bit
    for bit.  The literal float64 reference is ``oracle.trpo_step``.

    With several MPI ranks (``comm``; ``g`` already averaged over them), the batch is the union of
    the ranks' batches: each Fisher-vector product (:func:`step_direction`) and each try's
    (mean KL, L(θ)) is reduced over the ranks, so every rank takes the same step and decision.
    """
    fn = "trpo_step"
    cg_iters, cg_damping, cg_tol, subsample = _solver_args(fn, policy, cg_iters, cg_damping, cg_tol, subsample)
    comm = _SERIAL if comm is None else comm
    dist = policy.dist
    theta = policy.policy_params  # view: writing it moves the policy
    theta_old = theta.copy()
    obs_shape = as_array(obs, "obs", fn).shape
    if len(obs_shape) < 1:
        raise ValueError(f"{fn}: 'obs' must hold a batch [B, ...], got shape {fmt_shape(obs_shape)}")
    B = obs_shape[0]
    adv, logp_old, g = (
        check_finite(as_float_array(x, name, fn=fn, shape=shape, shape_desc=desc), name, fn)
        for name, x, shape, desc in (("adv", adv, (B,), "(B,)"), ("logp_old", logp_old, (B,), "(B,)"),
                                     ("g", g, theta.shape, "(policy.n_policy_params,)"))
    )  # fmt: skip
    max_kl = check_scalar("max_kl", max_kl, fn=fn, lo=0.0, lo_open=True)
    line_search_shrink = check_scalar("line_search_shrink", line_search_shrink, fn=fn, lo=0.0, hi=1.0, lo_open=True,
                                      hi_open=True)  # fmt: skip
    line_search_max_iter = check_scalar("line_search_max_iter", line_search_max_iter, fn=fn, lo=1, integer=True)
    line_search = check_bool("line_search", line_search, fn=fn)
    adv64 = np.asarray(adv, dtype=np.float64)
    logp_old = np.asarray(logp_old, dtype=np.float64)
    surr_old = float(comm.weighted_mean(np.array([adv64.mean()]), B).mean[0])  # L(θ_old): every ratio is 1
    grad_norm = float(np.linalg.norm(g.astype(np.float64)))

    def result(status: str, cg=None, accepted=False, kl=0.0, gain=0.0, backtracks=0, expected=0.0, frac=0.0,
               qkl=0.0) -> TrpoStepResult:
        return TrpoStepResult(theta.copy(), kl, gain, backtracks, accepted, expected, frac,
                              0 if cg is None else cg.iterations, 0.0 if cg is None else cg.residual_norm,
                              qkl, surr_old, status, grad_norm)  # fmt: skip

    if not math.isfinite(grad_norm) or grad_norm == 0.0:
        return result("zero_gradient")  # nothing to follow; θ untouched

    cg, fvp = step_direction(policy, obs, g, cg_iters=cg_iters, cg_damping=cg_damping, cg_tol=cg_tol,
                             subsample=subsample, comm=comm)  # fmt: skip
    s = cg.x.astype(np.float64)
    sFs = float(np.dot(s, fvp(cg.x).astype(np.float64)))  # sᵀ(F + λI)s
    if not (math.isfinite(sFs) and sFs > 0.0):
        return result("bad_curvature", cg)
    beta = math.sqrt(2.0 * max_kl / sFs)  # scale to the KL radius: ½ (βs)ᵀF(βs) = δ
    full_step = beta * s
    expected_full = float(np.dot(g.astype(np.float64), full_step))  # gᵀΔθ (first order)
    qkl = 0.5 * beta * beta * sFs

    _, _, _, cache = policy.evaluate(obs, actions)  # π_old's parameters, the actions in the head's layout
    dist_old, acts = cache["dist_params"].copy(), cache["actions"]

    def try_step(frac: float) -> tuple[float, float]:
        """θ ← θ_old + frac·βs; return (exact mean KL(π_old ‖ π_θ), L(θ) − L(θ_old)) over all ranks."""
        np.add(theta_old, (frac * full_step).astype(policy.dtype), out=theta)
        try:
            dp = policy.dist_params(obs)
            with np.errstate(over="ignore", invalid="ignore"):
                kl = float(dist.kl(dist_old, dp).mean())  # the same reduction as ActorCritic.kl
                ratio = np.exp(dist.log_prob(dp, acts).astype(np.float64) - logp_old)
                surrogate = float(np.dot(ratio, adv64)) / B
        except ValueError:  # the step overflowed the network: reject this try
            kl, surrogate = math.inf, math.nan
        kl, surrogate = comm.weighted_mean(np.array([kl, surrogate]), B).mean  # one allreduce
        return float(kl), float(surrogate) - surr_old

    frac = 1.0
    tries = line_search_max_iter if line_search else 1
    for j in range(tries):
        kl, gain = try_step(frac)
        finite = math.isfinite(kl) and math.isfinite(gain)
        if (finite and kl <= max_kl and gain > 0.0) if line_search else finite:
            return result("accepted", cg, True, kl, gain, j, frac * expected_full, frac, qkl)
        frac *= line_search_shrink
    theta[...] = theta_old  # (critical!) rejected: restore θ_old bit for bit
    return result("rejected", cg, backtracks=tries if line_search else 0,
                  expected=frac / line_search_shrink * expected_full, qkl=qkl)


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
