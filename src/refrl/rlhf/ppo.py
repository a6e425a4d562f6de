"""Token-level PPO against a learned reward model with a KL penalty to the reference policy.

The RLHF objective (Ziegler et al. 2019, eq. 2; Stiennon et al. 2020; Ouyang et al. 2022, eq. 2)::

    maximise_θ  E_{x, y∼π_θ(·|x)} [ R_φ(x, y) − β · log(π_θ(y|x) / π_ref(y|x)) ]

is an episodic RL problem over tokens: state s_t (prompt and prefix), action y_t, and the
per-token reward

    r_t = −β (log π_θold(y_t|s_t) − log π_ref(y_t|s_t))   + [t = L−1] · R_φ(x, y)

whose sum over t is the sequence reward above (the log-ratio of a sequence is the sum of its
per-token log-ratios). Each iteration: sample B responses from π_θold, compute r_t, values
V_ψ(s_t), GAE over the L tokens (refrl.kernels.gae: the episode terminates after the last
token, γ = 1 by default), then several epochs of minibatch updates of the clipped surrogate
(refrl.kernels.clipped_surrogate) and of the value head's squared error, with Adam.

This KL is to the *fixed* reference π_ref and enters as reward shaping. It is not the KL between
successive policies π_θold → π_θ that TRPO constrains and PPO's clip limits (logged separately
as ``train/approx_kl``). See docs/rlhf.md.

β is fixed, or adapted by the proportional controller of Ziegler et al. (2019), as in
openai/lm-human-preferences ``train_policy.py``::

    e = clip(KL / KL_target − 1, −0.2, 0.2),      β ← β · (1 + e · n_steps / horizon)

with KL the batch mean of the sequence KL and n_steps = responses per iteration.

Hand gradient of the value head loss (checked by finite differences)::

    loss_V = ½ mean_i (V_ψ(s_i) − R̂_i)²,    ∂loss_V/∂V_i = (V_i − R̂_i) / B
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from refrl import kernels
from refrl.distributions import Categorical
from refrl.nn import MLP
from refrl.optim import Adam, clip_grad_norm_
from refrl.rlhf.policy import TokenPolicy, entropy_and_grad_logits, log_softmax, per_token_kl
from refrl.rlhf.reward_model import RewardModel
from refrl.rlhf.task import gold_reward, response_stats

__all__ = [
    "RLHFPPO",
    "AdaptiveKLController",
    "FixedKLController",
    "RLHFPPOConfig",
    "evaluate_policy",
    "policy_loss_grad_logits",
    "value_loss_and_grad",
]


@dataclass(frozen=True)
class RLHFPPOConfig:
    """Hyperparameters of token-level RLHF-PPO (names follow SB3 / TRL where they exist)."""

    iterations: int = 100
    """PPO iterations (one rollout of ``batch_size`` responses, then ``n_epochs`` of updates)."""
    batch_size: int = 64
    """Responses sampled per iteration (lm-human-preferences: 64)."""
    n_epochs: int = 4
    """Passes over each rollout."""
    n_minibatches: int = 4
    """Minibatches per epoch (over the batch_size·L tokens)."""
    learning_rate: float = 1e-3
    """Adam step size of the policy and of the value head."""
    clip_range: float = 0.2
    """ε of the clipped surrogate."""
    gamma: float = 1.0
    """Discount over tokens (1: the episode is the response)."""
    gae_lambda: float = 0.95
    """GAE λ."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient (0 in RLHF practice: the KL penalty keeps entropy up)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip of each network."""
    kl_coef: float = 0.1
    """β: initial (adaptive) or fixed KL penalty coefficient; 0 removes the penalty."""
    adaptive_kl: bool = False
    """Adapt β with the Ziegler et al. (2019) controller toward ``kl_target``."""
    kl_target: float = 2.0
    """Target sequence KL to π_ref in nats (adaptive controller only)."""
    kl_horizon: float = 640.0
    """Controller horizon in responses (K_β = batch_size / horizon per iteration)."""
    value_hidden: tuple[int, ...] = (64,)
    """Hidden widths of the value head MLP (same input s_t as the policy)."""
    normalize_advantage: bool = True
    """Whiten advantages over each rollout (Ziegler et al. whiten per minibatch; same idea)."""

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "n_epochs", "n_minibatches"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"RLHFPPOConfig: {name!r} must be an integer >= 1, got {v!r}")
        if not self.value_hidden or any(not isinstance(h, int) or h < 1 for h in self.value_hidden):
            raise ValueError(f"RLHFPPOConfig: 'value_hidden' must be positive integers, got {self.value_hidden!r}")
        positive = ("learning_rate", "clip_range", "max_grad_norm", "kl_target", "kl_horizon")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"RLHFPPOConfig: {name!r} must be a finite number > 0, got {v!r}")
        for name in ("gamma", "gae_lambda"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"RLHFPPOConfig: {name!r} must be in [0, 1], got {v}")
        for name in ("kl_coef", "ent_coef"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"RLHFPPOConfig: {name!r} must be finite and >= 0, got {v}")
        if self.adaptive_kl and self.kl_coef == 0:
            raise ValueError("RLHFPPOConfig: the adaptive controller multiplies 'kl_coef'; it must be > 0")


class AdaptiveKLController:
    """β ← β (1 + clip(KL/KL_target − 1, −0.2, 0.2) · n_steps / horizon)   (Ziegler et al. 2019)."""

    def __init__(self, init_kl_coef: float, target: float, horizon: float) -> None:
        if not (init_kl_coef > 0 and target > 0 and horizon > 0):
            raise ValueError(
                f"AdaptiveKLController: 'init_kl_coef' ({init_kl_coef}), 'target' ({target}) and 'horizon' "
                f"({horizon}) must be > 0"
            )
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        proportional_error = float(np.clip(current_kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + proportional_error * n_steps / self.horizon
        return self.value


class FixedKLController:
    """β constant."""

    def __init__(self, kl_coef: float) -> None:
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value


def value_loss_and_grad(values: np.ndarray, returns: np.ndarray) -> tuple[float, np.ndarray]:
    """loss_V = ½ mean (V − R̂)²  and  ∂loss_V/∂V = (V − R̂)/B."""
    diff = np.asarray(values, dtype=np.float64) - returns
    return 0.5 * float(np.mean(diff**2)), diff / diff.size


def policy_loss_grad_logits(
    logits: np.ndarray, actions: np.ndarray, logp_old: np.ndarray, advantages: np.ndarray, clip_range: float
):
    """The clipped surrogate at logits z [B, V] and ∂(−L^CLIP)/∂z [B, V].

    log π(a|s) = log softmax(z)[a]; refrl.kernels.clipped_surrogate gives g = ∂L^CLIP/∂log π(a|s),
    and ∂log π(a|s)/∂z = onehot(a) − softmax(z), so ∂(−L^CLIP)/∂z = −g (onehot(a) − p).
    Returns (SurrogateResult, dz).
    """
    lp_all = log_softmax(logits)
    logp = _take(lp_all, actions)
    sur = kernels.clipped_surrogate(logp, logp_old.astype(logp.dtype), advantages.astype(logp.dtype), clip_range)
    dz = np.exp(lp_all) * sur.grad_logp[:, None]
    dz[np.arange(actions.shape[0]), actions] -= sur.grad_logp
    return sur, dz


def _mean_entropy(logp_all: np.ndarray) -> float:
    """Mean over all positions of H(π(·|s)) from the full log-probabilities [..., V] (log p is a valid
    logit vector of p, so ``Categorical.entropy`` applies)."""
    V = logp_all.shape[-1]
    return float(Categorical(V).entropy(logp_all.reshape(-1, V)).mean())


def _take(logp_all: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """logp_all [..., V], actions [...] -> logp_all[..., a]."""
    return np.take_along_axis(logp_all, actions[..., None], axis=-1)[..., 0]


def evaluate_policy(
    policy: TokenPolicy, ref: TokenPolicy, reward_model: RewardModel, n: int, rng: np.random.Generator
) -> dict[str, float]:
    """Proxy and gold reward and KL to π_ref of ``n`` fresh samples of ``policy`` (no training).

    kl_exact = mean_i Σ_t KL[π_θ(·|s_t) ‖ π_ref(·|s_t)] (exact over the vocabulary at each visited
    state; an unbiased, low-variance estimate of the sequence KL), kl_sampled = mean_i Σ_t
    (log π_θ(y_t|s_t) − log π_ref(y_t|s_t)) (the k1 estimate; same mean, more variance).
    """
    task = policy.task
    prompts = task.sample_prompts(n, rng)
    responses, obs, logp_all = policy.sample(prompts, rng)
    ref_all = ref.log_probs_all(obs)
    acts = responses.T
    kl_tok = per_token_kl(logp_all, ref_all)  # [L, B]
    stats = response_stats(task, prompts, responses)
    return {
        "proxy_reward": float(reward_model(prompts, responses).mean()),
        "gold_reward": float(gold_reward(task, prompts, responses).mean()),
        "kl_exact": float(kl_tok.sum(axis=0).mean()),
        "kl_sampled": float((_take(logp_all, acts) - _take(ref_all, acts)).sum(axis=0).mean()),
        "entropy": _mean_entropy(logp_all),
        "n_topic": float(stats["n_topic"].mean()),
        "n_repeat": float(stats["n_repeat"].mean()),
    }


class RLHFPPO:
    """Token-level PPO of ``policy`` (initialised from π_ref) against ``reward_model``.

    Parameters
    ----------
    ref_policy : TokenPolicy
        π_ref (the SFT model); kept frozen. The trained policy starts as a copy of it.
    reward_model : RewardModel
        R_φ (normalised); frozen.
    config : RLHFPPOConfig
    seed : int
        Seeds the value head's initialisation and all sampling.
    """

    def __init__(self, ref_policy: TokenPolicy, reward_model: RewardModel, config: RLHFPPOConfig, *, seed: int = 0):
        self.config = config
        self.task = ref_policy.task
        self.ref = ref_policy.copy()
        self.policy = ref_policy.copy()
        self.reward_model = reward_model
        self.rng = np.random.default_rng(seed)
        dtype = self.policy.net.dtype
        # value head: V_ψ(s_t), output layer initialised small (near-zero values at the start)
        self.value = MLP((self.policy.obs_dim, *config.value_hidden, 1), "tanh", output_gain=0.01, dtype=dtype,
                         rng=self.rng)
        self.pi_opt = Adam(self.policy.params, self.policy.grads, lr=config.learning_rate)
        self.v_opt = Adam(self.value.params, self.value.grads, lr=config.learning_rate)
        if config.adaptive_kl:
            self.kl_ctl = AdaptiveKLController(config.kl_coef, config.kl_target, config.kl_horizon)
        else:
            self.kl_ctl = FixedKLController(config.kl_coef)
        self.iteration = 0

    # ------------------------------------------------------------------------------------------
    def rollout(self) -> dict[str, np.ndarray]:
        """Sample a batch from π_θold and build the per-token rewards and advantages."""
        cfg, task = self.config, self.task
        B, L = cfg.batch_size, task.response_length
        prompts = task.sample_prompts(B, self.rng)
        responses, obs, logp_all = self.policy.sample(prompts, self.rng)  # obs [L, B, d], logp_all [L, B, V]
        acts = responses.T  # [L, B] time-major
        ref_all = self.ref.log_probs_all(obs)
        logp_old = _take(logp_all, acts)
        logp_ref = _take(ref_all, acts)
        values = self.value.forward(obs.reshape(L * B, -1))[0].reshape(L, B).astype(np.float64)
        score = self.reward_model(prompts, responses)  # R_φ(x, y) [B]
        beta = self.kl_ctl.value
        # per-token reward: −β (log π_old − log π_ref), plus the score at the last token
        log_ratio = (logp_old - logp_ref).astype(np.float64)
        rewards = -beta * log_ratio
        rewards[-1] += score
        # the episode (response) terminates after its last token: no bootstrap there
        terminated = np.zeros((L, B), dtype=bool)
        terminated[-1] = True
        next_values = np.zeros_like(values)
        next_values[:-1] = values[1:]
        adv, ret = kernels.gae(rewards, values, next_values, terminated, np.zeros_like(terminated),
                               cfg.gamma, cfg.gae_lambda)
        kl_tok = per_token_kl(logp_all, ref_all)
        return {
            "prompts": prompts, "responses": responses, "obs": obs, "acts": acts, "logp_old": logp_old,
            "values": values, "advantages": adv, "returns": ret, "score": score, "log_ratio": log_ratio,
            "kl_exact_seq": kl_tok.sum(axis=0), "logp_all": logp_all,
        }

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """n_epochs × n_minibatches of clipped-surrogate and value steps on one rollout."""
        cfg = self.config
        L, B = batch["acts"].shape
        n_tok = L * B
        b_obs = batch["obs"].reshape(n_tok, -1)
        b_acts = batch["acts"].reshape(n_tok)
        b_logp_old = batch["logp_old"].reshape(n_tok)
        b_adv = batch["advantages"].reshape(n_tok)
        b_ret = batch["returns"].reshape(n_tok)
        if cfg.normalize_advantage:
            b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
        mb_size = max(1, n_tok // cfg.n_minibatches)
        log = {"policy_loss": [], "value_loss": [], "clip_fraction": [], "approx_kl": [], "entropy": []}
        for _ in range(cfg.n_epochs):
            perm = self.rng.permutation(n_tok)
            for start in range(0, n_tok, mb_size):
                mb = perm[start : start + mb_size]
                # policy: maximise L^CLIP (+ entropy bonus)
                z, cache = self.policy.logits(b_obs[mb])
                sur, dz = policy_loss_grad_logits(z, b_acts[mb], b_logp_old[mb], b_adv[mb], cfg.clip_range)
                H, dH = entropy_and_grad_logits(z)
                if cfg.ent_coef:
                    dz -= cfg.ent_coef * dH / mb.size
                self.policy.zero_grad()
                self.policy.net.backward(dz, cache, need_dx=False)
                clip_grad_norm_(self.policy.grads, cfg.max_grad_norm)
                self.pi_opt.step()
                # value head: minimise ½ (V − R̂)²
                v, vcache = self.value.forward(b_obs[mb])
                v_loss, dv = value_loss_and_grad(v[:, 0], b_ret[mb])
                self.value.zero_grad()
                self.value.backward(dv[:, None], vcache, need_dx=False)
                clip_grad_norm_(self.value.grads, cfg.max_grad_norm)
                self.v_opt.step()
                log["policy_loss"].append(-sur.objective)
                log["value_loss"].append(v_loss)
                log["clip_fraction"].append(sur.clip_fraction)
                log["approx_kl"].append(sur.approx_kl)
                log["entropy"].append(float(H.mean()))
        out = {f"train/{k}": float(np.mean(v)) for k, v in log.items()}
        y, yhat = batch["returns"].ravel(), batch["values"].ravel()
        var_y = float(np.var(y))
        out["train/explained_variance"] = float("nan") if var_y == 0 else 1.0 - float(np.var(y - yhat)) / var_y
        return out

    def step(self) -> dict[str, float]:
        """One iteration: rollout → GAE → update → β controller. Returns the iteration's metrics."""
        cfg = self.config
        beta = self.kl_ctl.value
        batch = self.rollout()
        task = self.task
        gold = gold_reward(task, batch["prompts"], batch["responses"])
        stats = response_stats(task, batch["prompts"], batch["responses"])
        lp = batch["logp_all"]
        metrics = {
            "iteration": self.iteration + 1,
            "episodes": (self.iteration + 1) * cfg.batch_size,
            "rlhf/beta": beta,
            "rlhf/proxy_reward": float(batch["score"].mean()),
            "rlhf/gold_reward": float(gold.mean()),
            "rlhf/kl_exact": float(batch["kl_exact_seq"].mean()),
            "rlhf/kl_sampled": float(batch["log_ratio"].sum(axis=0).mean()),
            "rlhf/non_score_reward": float(-beta * batch["log_ratio"].sum(axis=0).mean()),
            "rlhf/entropy": _mean_entropy(lp),
            "rlhf/n_topic": float(stats["n_topic"].mean()),
            "rlhf/n_repeat": float(stats["n_repeat"].mean()),
        }
        metrics.update(self.update(batch))
        # the controller sees the KL of the rollout that was just collected
        self.kl_ctl.update(metrics["rlhf/kl_exact"], cfg.batch_size)
        self.iteration += 1
        return metrics

    def learn(self, callback=None) -> list[dict[str, float]]:
        """Run ``config.iterations`` iterations; ``callback(metrics)`` after each. Returns the history."""
        history = []
        for _ in range(self.config.iterations - self.iteration):
            m = self.step()
            history.append(m)
            if callback is not None:
                callback(m)
        return history

    # ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        return {"policy": self.policy.params.copy(), "value": self.value.params.copy(),
                "kl_coef": np.array(self.kl_ctl.value), "iteration": np.array(self.iteration)}

    def config_dict(self) -> dict:
        d = asdict(self.config)
        d["value_hidden"] = list(d["value_hidden"])
        return d
