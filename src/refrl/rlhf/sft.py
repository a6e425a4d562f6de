"""Supervised fine-tuning: the reference policy π_ref by maximum likelihood on the demonstrations.

    min_θ  −(1 / (N·L)) Σ_{(x, y)} Σ_t log π_θ(y_t | s_t)

with ∂/∂z_t = softmax(z_t) − onehot(y_t) per token (policy.sft_loss_and_grad_logits), then
backpropagation through the MLP and Adam.
"""

from __future__ import annotations

import numpy as np

from refrl.optim import Adam
from refrl.rlhf.policy import TokenPolicy, sft_loss_and_grad_logits

__all__ = ["sft_nll", "train_sft"]


def sft_nll(policy: TokenPolicy, prompts: np.ndarray, responses: np.ndarray) -> float:
    """Mean per-token negative log-likelihood (nats) of the responses under the policy."""
    obs = policy.observe_all(prompts, responses)  # [L, B, d]
    lp = policy.log_probs_all(obs)
    return -float(np.take_along_axis(lp, responses.T[..., None], axis=2).mean())


def train_sft(
    policy: TokenPolicy,
    prompts: np.ndarray,
    responses: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    rng: np.random.Generator,
    callback=None,
) -> list[dict[str, float]]:
    """Maximum-likelihood training of ``policy`` on (prompts [N], responses [N, L]).

    Minibatches are ``batch_size`` whole sequences (all their L tokens). Returns per-epoch
    metrics; ``callback(epoch, metrics)`` is called after each epoch.
    """
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(
            f"train_sft: 'epochs' ({epochs}), 'batch_size' ({batch_size}) and 'learning_rate' "
            f"({learning_rate}) must be positive"
        )
    obs = policy.observe_all(prompts, responses)  # [L, N, d]
    _, N, d = obs.shape
    targets = np.asarray(responses, dtype=np.int64).T  # [L, N]
    opt = Adam(policy.params, policy.grads, lr=learning_rate)
    history = []
    for epoch in range(epochs):
        perm = rng.permutation(N)
        losses = []
        for start in range(0, N, batch_size):
            mb = perm[start : start + batch_size]
            x = obs[:, mb].reshape(-1, d)
            z, cache = policy.logits(x)
            loss, dz = sft_loss_and_grad_logits(z, targets[:, mb].reshape(-1))
            policy.zero_grad()
            policy.net.backward(dz, cache, need_dx=False)
            opt.step()
            losses.append(loss)
        m = {"epoch": epoch + 1, "nll": float(np.mean(losses))}
        history.append(m)
        if callback is not None:
            callback(epoch, m)
    return history

