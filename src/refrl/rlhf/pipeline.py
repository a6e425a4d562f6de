"""The three stages of the miniature RLHF pipeline as functions, and their checkpoint files.

    1. SFT:     demonstrations (task.generate_demonstrations) -> π_ref            (build_reference)
    2. Reward:  preference pairs over samples of π_ref        -> R_φ              (build_reward_model)
    3. PPO:     π_θ ← π_ref, maximise R_φ − β KL(π_θ ‖ π_ref) -> π_θ              (ppo.RLHFPPO)

Checkpoints are refrl checkpoints (``refrl.serialization``: one ``.npz`` with a JSON document,
written atomically, read without pickle); each carries the task's configuration so a later stage
can rebuild everything from the file alone.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from refrl.rlhf.policy import TokenPolicy
from refrl.rlhf.reward_model import (
    RewardModel,
    preference_accuracy,
    sample_preference_pairs,
    train_reward_model,
)
from refrl.rlhf.sft import sft_nll, train_sft
from refrl.rlhf.task import ToyTask, generate_demonstrations, gold_reward
from refrl.serialization import load_checkpoint, save_checkpoint

__all__ = [
    "RewardConfig",
    "SFTConfig",
    "build_reference",
    "build_reward_model",
    "load_ppo_policy",
    "load_reference",
    "load_reward_model",
    "save_ppo",
    "save_reference",
    "save_reward_model",
]


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning of π_ref on the writer's demonstrations."""

    n_demos: int = 4000
    """Demonstrations (prompt, response) in the training corpus."""
    n_val: int = 1000
    """Held-out demonstrations for the validation NLL."""
    epochs: int = 15
    """Passes over the corpus."""
    batch_size: int = 64
    """Sequences per minibatch."""
    learning_rate: float = 3e-3
    """Adam step size."""
    context: int = 3
    """K: previous tokens the policy sees."""
    hidden: tuple[int, ...] = (64,)
    """Hidden widths of the policy MLP."""

    def __post_init__(self) -> None:
        for name in ("n_demos", "n_val", "epochs", "batch_size", "context"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SFTConfig: {name!r} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"SFTConfig: 'learning_rate' must be > 0, got {self.learning_rate}")


@dataclass(frozen=True)
class RewardConfig:
    """Bradley–Terry reward model on preferences over samples of π_ref."""

    n_pairs: int = 4000
    """Labelled training pairs."""
    n_test_pairs: int = 2000
    """Held-out labelled pairs (accuracy)."""
    label_temperature: float = 1.0
    """τ of the simulated labeller: P(a ≻ b) = σ((g_a − g_b)/τ)."""
    epochs: int = 30
    """Passes over the training pairs."""
    batch_size: int = 128
    """Pairs per minibatch."""
    learning_rate: float = 3e-3
    """Adam step size."""
    hidden: tuple[int, ...] = (64,)
    """Hidden widths of the reward MLP."""
    n_normalise: int = 4096
    """Samples of π_ref used to normalise R_φ to mean 0, std 1."""

    def __post_init__(self) -> None:
        for name in ("n_pairs", "n_test_pairs", "epochs", "batch_size", "n_normalise"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RewardConfig: {name!r} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "label_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RewardConfig: {name!r} must be > 0, got {getattr(self, name)}")


def config_dict(cfg) -> dict:
    """asdict with tuples as lists (JSON)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


# ---------------------------------------------------------------------------------------------- SFT
def build_reference(task: ToyTask, cfg: SFTConfig, rng: np.random.Generator, callback=None):
    """Generate the corpus, train π_ref by maximum likelihood. Returns (policy, per-epoch history, summary)."""
    prompts, responses = generate_demonstrations(task, cfg.n_demos, rng)
    val_p, val_r = generate_demonstrations(task, cfg.n_val, rng)
    policy = TokenPolicy(task, context=cfg.context, hidden=cfg.hidden, rng=rng)
    history = train_sft(policy, prompts, responses, epochs=cfg.epochs, batch_size=cfg.batch_size,
                        learning_rate=cfg.learning_rate, rng=rng, callback=callback)
    samples_p = task.sample_prompts(2000, rng)
    samples_y, _, _ = policy.sample(samples_p, rng)
    summary = {
        "train_nll": history[-1]["nll"],
        "val_nll": sft_nll(policy, val_p, val_r),
        "demo_gold_reward": float(gold_reward(task, val_p, val_r).mean()),
        "ref_gold_reward": float(gold_reward(task, samples_p, samples_y).mean()),
    }
    return policy, history, summary


def save_reference(path: str | os.PathLike, policy: TokenPolicy, meta: dict | None = None) -> Path:
    doc = {"algorithm": "rlhf-sft", "task": policy.task.config(), "policy": policy.config(), **(meta or {})}
    return save_checkpoint(path, {"policy/params": policy.params.copy()}, doc)


def load_reference(path: str | os.PathLike) -> TokenPolicy:
    arrays, meta = load_checkpoint(path)
    if meta.get("algorithm") != "rlhf-sft":
        raise ValueError(f"path: {str(path)!r} is not an rlhf SFT checkpoint (algorithm={meta.get('algorithm')!r})")
    task = ToyTask(**meta["task"])
    pc = meta["policy"]
    policy = TokenPolicy(task, context=pc["context"], hidden=tuple(pc["hidden"]), activation=pc["activation"],
                         dtype=np.dtype(pc["dtype"]), rng=np.random.default_rng(0))
    policy.load_state_dict({"params": arrays["policy/params"]})
    return policy


# ------------------------------------------------------------------------------------------ reward
def build_reward_model(ref: TokenPolicy, cfg: RewardConfig, rng: np.random.Generator, callback=None):
    """Label pairs of π_ref samples with the noisy gold labeller, fit R_φ, normalise it under π_ref.

    Returns (model, history, summary) with the held-out accuracy against the noisy labels, against
    the noise-free gold ordering, and the Bayes accuracy of the noisy labels (the ceiling).
    """
    task = ref.task
    train = sample_preference_pairs(task, ref, cfg.n_pairs, rng, label_temperature=cfg.label_temperature)
    test = sample_preference_pairs(task, ref, cfg.n_test_pairs, rng, label_temperature=cfg.label_temperature)
    model = RewardModel(task, hidden=cfg.hidden, rng=rng)
    history = train_reward_model(model, train, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                 learning_rate=cfg.learning_rate, rng=rng, callback=callback)
    norm_p = task.sample_prompts(cfg.n_normalise, rng)
    norm_y, _, _ = ref.sample(norm_p, rng)
    model.normalise(norm_p, norm_y)
    acc = preference_accuracy(model, test)
    dg = (test.gold_chosen - test.gold_rejected) / cfg.label_temperature
    p = 1.0 / (1.0 + np.exp(-np.abs(dg)))
    summary = {
        "test_accuracy": acc["accuracy"],
        "test_accuracy_vs_gold": acc["accuracy_vs_gold"],
        "bayes_accuracy": float(p.mean()),
        "train_loss": history[-1]["loss"],
    }
    return model, history, summary


def save_reward_model(path: str | os.PathLike, model: RewardModel, meta: dict | None = None) -> Path:
    doc = {"algorithm": "rlhf-reward", "task": model.task.config(), "reward_model": model.config(),
           "gain": model.gain, "bias": model.bias, **(meta or {})}
    return save_checkpoint(path, {"reward_model/params": model.net.params.copy()}, doc)


def load_reward_model(path: str | os.PathLike) -> RewardModel:
    arrays, meta = load_checkpoint(path)
    if meta.get("algorithm") != "rlhf-reward":
        raise ValueError(f"path: {str(path)!r} is not an rlhf reward-model checkpoint "
                         f"(algorithm={meta.get('algorithm')!r})")
    task = ToyTask(**meta["task"])
    rc = meta["reward_model"]
    model = RewardModel(task, hidden=tuple(rc["hidden"]), activation=rc["activation"], dtype=np.dtype(rc["dtype"]),
                        rng=None, init=False)
    model.load_state_dict({"params": arrays["reward_model/params"], "gain": meta["gain"], "bias": meta["bias"]})
    return model


# --------------------------------------------------------------------------------------------- PPO
def save_ppo(path: str | os.PathLike, algo, meta: dict | None = None) -> Path:
    """π_θ, the value head, β and the Adam moments of an RLHFPPO run (π_ref is in the SFT file)."""
    doc = {"algorithm": "rlhf-ppo", "task": algo.task.config(), "policy": algo.policy.config(),
           "ppo": algo.config_dict(), "iteration": algo.iteration, "kl_coef": algo.kl_ctl.value, **(meta or {})}
    arrays = {"policy/params": algo.policy.params.copy(), "value/params": algo.value.params.copy(),
              "ref/params": algo.ref.params.copy()}
    for name, opt in (("pi", algo.pi_opt), ("v", algo.v_opt)):
        for k, v in opt.state_dict().items():
            if isinstance(v, np.ndarray):
                arrays[f"optim/{name}/{k}"] = v
    return save_checkpoint(path, arrays, doc)


def load_ppo_policy(path: str | os.PathLike) -> tuple[TokenPolicy, TokenPolicy]:
    """(π_θ, π_ref) from an ``rlhf ppo`` checkpoint."""
    arrays, meta = load_checkpoint(path)
    if meta.get("algorithm") != "rlhf-ppo":
        raise ValueError(f"path: {str(path)!r} is not an rlhf PPO checkpoint (algorithm={meta.get('algorithm')!r})")
    task = ToyTask(**meta["task"])
    pc = meta["policy"]
    out = []
    for key in ("policy/params", "ref/params"):
        pol = TokenPolicy(task, context=pc["context"], hidden=tuple(pc["hidden"]), activation=pc["activation"],
                          dtype=np.dtype(pc["dtype"]), rng=np.random.default_rng(0))
        pol.load_state_dict({"params": arrays[key]})
        out.append(pol)
    return out[0], out[1]
