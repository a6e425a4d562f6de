"""Training health checks and the memory estimate of a configuration (docs/reliability.md).

The on-policy loop (refrl.algos.base) calls :func:`rollout_problem` after each rollout and its
advantages, and :func:`update_problem` after each update; each returns None or one sentence naming
what is wrong. The loop then restores the agent to its last healthy update and raises
:class:`TrainingDiverged` with that sentence and :func:`likely_cause`. The checks are a few vector
reductions per update (never per minibatch).

Thresholds (all off with ``health_check=False``):

* non-finite: any NaN/inf in the rollout's rewards, values, returns or advantages, in the parameters,
  in the normalisation statistics, an infinite ``train/*`` metric, or a NaN loss or gradient norm;
* overflow scale: |reward|, |value|, |return| or |advantage| above :func:`overflow_scale`
  (√(largest float of the dtype) / 10⁴: 1.8e15 in float32, 1.3e150 in float64), beyond which the
  squares summed over a minibatch (value loss, Adam's second moment, advantage variance) overflow;
* exploding: the L2 norm of all parameters above ``max_param_norm`` (1e4 by default; a trained
  CartPole or MuJoCo network is 20-300), or a value prediction above :data:`VALUE_SCALE_FACTOR` times
  the largest discounted return the rewards seen so far allow, max|r| / (1 − γ) (γ < 1 only);
* unchanged: an update after which every parameter is bit-identical is reported with a
  ``RuntimeWarning`` (once per agent), not an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["LARGE_REWARD", "TrainingDiverged", "VALUE_SCALE_FACTOR", "check_memory", "likely_cause",
           "max_abs", "memory_estimate", "overflow_scale", "rollout_problem", "statistics_problem", "update_problem"]

#: a value prediction this many times the largest possible discounted return is a diverged critic
VALUE_SCALE_FACTOR = 100.0
#: rewards this large make the reward scale, not the learning rate, the likely cause of a divergence
LARGE_REWARD = 1e6


class TrainingDiverged(RuntimeError):
    """Training stopped because the update diverged (non-finite or exploding quantities).

    The message names the quantity and the likely cause; ``update`` and ``num_timesteps`` say where.
    The agent has been restored to the state after its last healthy update.
    """

    def __init__(self, message: str, *, update: int, num_timesteps: int) -> None:
        super().__init__(message)
        self.update = update
        self.num_timesteps = num_timesteps


def overflow_scale(dtype: Any) -> float:
    """The magnitude beyond which squares summed over a batch overflow ``dtype``: √max / 10⁴."""
    return math.sqrt(float(np.finfo(dtype).max)) / 1e4


def max_abs(x: np.ndarray) -> float:
    """max |x| in float64 (NaN if any entry is NaN; 0 for an empty array)."""
    if x.size == 0:
        return 0.0
    return float(max(-float(np.min(x)), float(np.max(x))))


def rollout_problem(arrays: dict[str, np.ndarray], dtype: Any, *, max_reward_seen: float, gamma: float) -> str | None:
    """What is wrong with a rollout before the update: ``arrays`` maps "rewards", "values",
    "returns", "advantages" to the buffer's arrays. None when healthy."""
    limit = overflow_scale(dtype)
    for name, x in arrays.items():
        m = max_abs(x)
        if not math.isfinite(m):
            return f"the rollout's {name} contain NaN or inf"
        if m > limit:
            return (f"the rollout's {name} reach {m:.3g}, beyond the {np.dtype(dtype).name} overflow scale "
                    f"{limit:.3g} (their squares overflow)")
    if gamma < 1.0 and "values" in arrays:
        bound = VALUE_SCALE_FACTOR * (max_reward_seen / (1.0 - gamma) + 1.0)
        v = max_abs(arrays["values"])
        if v > bound:
            return (f"the value predictions reach {v:.3g}, more than {VALUE_SCALE_FACTOR:g}x the largest "
                    f"discounted return the rewards allow ({bound / VALUE_SCALE_FACTOR:.3g})")
    return None


def update_problem(params: np.ndarray, metrics: dict[str, Any], *, max_param_norm: float | None) -> str | None:
    """What is wrong after an update: the parameters (flat) and the ``train/*`` metrics stored so
    far (``Logger.pending``). None when healthy."""
    for key in ("train/grad_norm", "train/loss", "train/policy_loss", "train/value_loss"):
        v = metrics.get(key)
        if isinstance(v, float) and (math.isinf(v) or (math.isnan(v) and key != "train/value_loss")):
            what = "gradient norm" if key == "train/grad_norm" else key[len("train/"):].replace("_", " ")
            return f"the {what} is {v}"
    for key, v in metrics.items():
        if key.startswith("train/") and isinstance(v, float) and math.isinf(v):
            return f"{key} is {v}"
    sq = float(np.dot(params, params)) if params.dtype == np.float64 else float(
        np.dot(params.astype(np.float64), params.astype(np.float64)))
    norm = math.sqrt(sq) if sq >= 0 else math.nan
    if not math.isfinite(norm):
        return "the parameters contain NaN or inf"
    if max_param_norm is not None and norm > max_param_norm:
        return f"the parameter norm {norm:.3g} exceeds max_param_norm={max_param_norm}"
    return None


def statistics_problem(stats: dict[str, Any]) -> str | None:
    """Non-finite normalisation statistics: ``stats`` maps "obs_rms" / "return_rms" to gymnasium's
    RunningMeanStd (or None)."""
    for name, rms in stats.items():
        if rms is None:
            continue
        for attr in ("mean", "var"):
            if not np.isfinite(getattr(rms, attr)).all():
                what = "observation" if name == "obs_rms" else "return"
                return f"the {what} normalisation statistics overflowed ({name}.{attr} holds NaN or inf)"
    return None


def likely_cause(problem: str, *, config: Any, max_reward_seen: float, max_obs_seen: float | None) -> str:
    """The likely cause of ``problem``, naming the setting to change."""
    if "observation normalisation" in problem:
        return (f"the observation scale (observations reach {max_obs_seen:.3g}): rescale them before "
                "normalize_obs, e.g. with gymnasium.wrappers.TransformObservation")
    from_rewards = any(f"the rollout's {k}" in problem for k in ("rewards", "returns", "advantages"))
    if from_rewards or max_reward_seen >= LARGE_REWARD:
        return (f"the reward scale (rewards reach {max_reward_seen:.3g}): rescale them (e.g. "
                "gymnasium.wrappers.TransformReward), set normalize_reward=True, or use dtype='float64'")
    coefs = [f"{k}={getattr(config, k):g}" for k in ("vf_coef", "ent_coef") if hasattr(config, k)]
    lr = config.learning_rate
    return (f"the learning rate (learning_rate={'a schedule' if callable(lr) else format(lr, 'g')})"
            + (f" or a loss coefficient ({', '.join(coefs)})" if coefs else "")
            + " is too large for this problem; lower it, or clip gradients with max_grad_norm")


# ---------------------------------------------------------------------------------------- memory
_SCALARS_PER_TRANSITION = 8  # logp, value, next value, reward, advantage, return, flags, weight
_BYTES_PER_ENV = 16 * 1024  # a gymnasium CartPole-v1 in a SyncVectorEnv, rounded up (measured ~6 KiB)


def _mlp_params(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def memory_estimate(config: Any, *, obs_dim: int, act_dim: int) -> dict[str, int]:
    """Estimated bytes of what training allocates, by the hyperparameter that decides it.

    ``"n_steps"``: the rollout buffer, n_steps · n_envs transitions of obs_dim + act_dim + 8 numbers,
    twice (the shuffled per-epoch copies); ``"net_arch"``: the policy and value MLPs, ×8 (parameters,
    gradients, Adam's two moments, the health guard's snapshot, the Fisher operator's copy and slack);
    ``"batch_size"`` (PPO; the whole rollout, counted under ``"n_steps"``, for the full-batch
    algorithms): the activations of one batch through both MLPs, ×4 (forward cache, backward);
    ``"n_envs"``: 16 KiB per environment.  A rough upper bound, not a measurement.
    """
    item = np.dtype(config.dtype).itemsize
    rollout = config.n_steps * config.n_envs
    hidden = list(config.net_arch)
    vf_hidden = hidden if getattr(config, "vf_net_arch", None) is None else list(config.vf_net_arch)
    n_params = _mlp_params([obs_dim, *hidden, act_dim]) + _mlp_params([obs_dim, *vf_hidden, 1])
    per_row = 4 * (2 * (obs_dim + act_dim + 1) + sum(hidden) + sum(vf_hidden)) * item  # both MLPs, forward and backward
    parts = {
        "n_steps": 2 * rollout * (obs_dim + act_dim + _SCALARS_PER_TRANSITION) * item,
        "net_arch": 8 * n_params * item,
        "n_envs": config.n_envs * _BYTES_PER_ENV,
    }
    if hasattr(config, "clip_range"):  # PPO: one minibatch at a time
        parts["batch_size"] = config.batch_size * per_row
    else:  # VPG, TRPO/NPG: the policy step runs the whole rollout through the network at once
        parts["n_steps"] += rollout * per_row
    return parts


def check_memory(config: Any, *, obs_dim: int, act_dim: int) -> None:
    """ValueError naming the hyperparameter whose allocation takes most of an estimate above
    ``config.max_memory_gb``."""
    parts = memory_estimate(config, obs_dim=obs_dim, act_dim=act_dim)
    total = sum(parts.values())
    limit = config.max_memory_gb * 2**30
    if total <= limit:
        return
    name, biggest = max(parts.items(), key=lambda kv: kv[1])
    detail = {"n_steps": f"n_steps * n_envs = {config.n_steps} * {config.n_envs} transitions",
              "net_arch": f"net_arch={list(config.net_arch)}",
              "batch_size": "the network's activations on one batch",
              "n_envs": f"n_envs={config.n_envs} environments"}[name]
    raise ValueError(
        f"{name}: training would need an estimated {total / 2**30:.1f} GiB ({total:,} bytes; {detail}: "
        f"{biggest:,} bytes), above the limit max_memory_gb={config.max_memory_gb}; lower {name}, or raise "
        "max_memory_gb if the machine has the memory"
    )
