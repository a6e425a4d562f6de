"""PPO for language-model post-training, in miniature (docs/rlhf.md).

    task.py          toy language task: vocabulary, prompts, the documented writer, the hidden gold reward
    policy.py        autoregressive token policy (refrl.nn.MLP over a context window), exact per-token KL
    sft.py           supervised fine-tuning of π_ref by maximum likelihood
    reward_model.py  preference pairs over π_ref samples, Bradley–Terry reward model R_φ
    ppo.py           token-level PPO with the per-token KL penalty to π_ref, adaptive KL controller
    sweep.py         over-optimisation: proxy and gold reward against √KL
    pipeline.py      the stages as functions, their checkpoints
    cli.py           ``refrl rlhf sft | reward | ppo | sweep``

Example::

    import numpy as np
    from refrl.rlhf import ToyTask, SFTConfig, RewardConfig, RLHFPPO, RLHFPPOConfig
    from refrl.rlhf import build_reference, build_reward_model

    rng = np.random.default_rng(0)
    ref, _, _ = build_reference(ToyTask(), SFTConfig(), rng)
    rm, _, summary = build_reward_model(ref, RewardConfig(), rng)
    algo = RLHFPPO(ref, rm, RLHFPPOConfig(kl_coef=0.1), seed=0)
    history = algo.learn()      # per-iteration metrics: rlhf/proxy_reward, rlhf/gold_reward, rlhf/kl_exact, ...
"""

from refrl.rlhf.pipeline import RewardConfig, SFTConfig, build_reference, build_reward_model
from refrl.rlhf.policy import TokenPolicy, per_token_kl
from refrl.rlhf.ppo import AdaptiveKLController, RLHFPPO, RLHFPPOConfig, evaluate_policy
from refrl.rlhf.reward_model import RewardModel, bradley_terry_loss
from refrl.rlhf.sweep import run_sweep
from refrl.rlhf.task import ToyTask, generate_demonstrations, gold_reward

__all__ = [
    "RLHFPPO",
    "AdaptiveKLController",
    "RLHFPPOConfig",
    "RewardConfig",
    "RewardModel",
    "SFTConfig",
    "TokenPolicy",
    "ToyTask",
    "bradley_terry_loss",
    "build_reference",
    "build_reward_model",
    "evaluate_policy",
    "generate_demonstrations",
    "gold_reward",
    "per_token_kl",
    "run_sweep",
]
