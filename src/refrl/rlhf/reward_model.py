"""Preference data and a Bradley–Terry reward model R_φ (manual gradients).

Preference pairs (:func:`sample_preference_pairs`). Two responses y_a, y_b are sampled from the
*reference policy* π_ref(·|x) for the same prompt x; a simulated labeller prefers y_a with the
Bradley–Terry probability of the hidden gold reward g:

    P(y_a ≻ y_b | x) = σ((g(x, y_a) − g(x, y_b)) / τ),       σ(u) = 1 / (1 + e^{−u})

(τ = ``label_temperature``: the labeller's noise). The reward model sees only (x, y_chosen,
y_rejected) triples — never g — and so learns g only where π_ref puts mass.

Reward model. R_φ(x, y) = a·MLP_φ(f(x, y)) + b over hand-chosen response features

    f(x, y) = [ onehot(x) | c(y)/L | vec(onehot(x) c(y)ᵀ)/L | n_repeat(y)/(L−1) | n_types(y)/L ]

with c(y) the bag-of-words token counts [V], n_repeat the number of t with y_t = y_{t−1}, and
n_types the number of distinct tokens. These features can express every term of the gold reward
(topic-word counts through the prompt × count products, stutter through n_repeat, variety
through n_types); nothing the gold function uses is hidden from the model. What the model lacks
is *data* off the reference distribution. (a, b) is fitted after training so that R_φ has mean 0
and standard deviation 1 under π_ref ("reward normalisation", Ziegler et al. 2019).

Bradley–Terry loss (Bradley & Terry 1952; Christiano et al. 2017; Ouyang et al. 2022, eq. 1),
with r_w = R_φ(x, y_chosen), r_l = R_φ(x, y_rejected), Δ = r_w − r_l, over a batch of B pairs:

    loss = −(1/B) Σ log σ(Δ) = (1/B) Σ softplus(−Δ)
    ∂loss/∂r_w = −σ(−Δ)/B,      ∂loss/∂r_l = +σ(−Δ)/B

checked against central finite differences in tests/test_rlhf.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refrl.nn import MLP
from refrl.optim import Adam
from refrl.rlhf.task import ToyTask, gold_reward

__all__ = [
    "PreferencePairs",
    "RewardModel",
    "bradley_terry_loss",
    "preference_accuracy",
    "reward_features",
    "sample_preference_pairs",
    "train_reward_model",
]


def _sigmoid(u: np.ndarray) -> np.ndarray:
    """σ(u) without overflow for large |u|."""
    out = np.empty_like(u, dtype=np.float64)
    pos = u >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-u[pos]))
    e = np.exp(u[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def bradley_terry_loss(r_chosen: np.ndarray, r_rejected: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Bradley–Terry negative log-likelihood and its gradients (module docstring).

    Parameters
    ----------
    r_chosen, r_rejected : ndarray, shape [B], float
        Rewards of the preferred and the other response of each pair.

    Returns
    -------
    loss : float, −mean log σ(r_chosen − r_rejected)
    d_chosen, d_rejected : ndarray [B], ∂loss/∂r_chosen and ∂loss/∂r_rejected
    """
    r_w = np.asarray(r_chosen, dtype=np.float64)
    r_l = np.asarray(r_rejected, dtype=np.float64)
    if r_w.ndim != 1 or r_w.shape != r_l.shape or r_w.size == 0:
        raise ValueError(
            f"bradley_terry_loss: 'r_chosen' {r_w.shape} and 'r_rejected' {r_l.shape} must be equal non-empty 1-D"
        )
    B = r_w.size
    delta = r_w - r_l
    loss = float(np.logaddexp(0.0, -delta).mean())  # softplus(−Δ) = −log σ(Δ)
    g = _sigmoid(-delta) / B
    return loss, -g, g


def reward_features(task: ToyTask, prompts: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """f(x, y), float64 [B, P + V + P·V + 2] (module docstring)."""
    prompts, responses = task.check_batch(prompts, responses, "reward_features")
    B, L, V, P = responses.shape[0], task.response_length, task.vocab_size, task.n_topics
    counts = np.zeros((B, V))
    np.add.at(counts, (np.repeat(np.arange(B), L), responses.ravel()), 1.0)
    onehot = np.zeros((B, P))
    onehot[np.arange(B), prompts] = 1.0
    cross = (onehot[:, :, None] * counts[:, None, :]).reshape(B, P * V)
    n_repeat = (responses[:, 1:] == responses[:, :-1]).sum(axis=1) / (L - 1)
    n_types = (counts > 0).sum(axis=1) / L
    return np.concatenate([onehot, counts / L, cross / L, n_repeat[:, None], n_types[:, None]], axis=1)


class RewardModel:
    """R_φ(x, y) = gain·MLP_φ(f(x, y)) + bias (module docstring)."""

    def __init__(
        self,
        task: ToyTask,
        *,
        hidden: tuple[int, ...] = (64,),
        activation: str = "tanh",
        dtype: type = np.float64,
        rng: np.random.Generator | None,
        init: bool = True,
    ) -> None:
        self.task = task
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        P, V = task.n_topics, task.vocab_size
        self.feature_dim = P + V + P * V + 2
        self.net = MLP((self.feature_dim, *self.hidden, 1), activation, dtype=dtype, rng=rng, init=init)
        self.gain = 1.0
        self.bias = 0.0

    def config(self) -> dict:
        return {"hidden": list(self.hidden), "activation": self.activation, "dtype": self.net.dtype.name}

    def forward(self, prompts: np.ndarray, responses: np.ndarray) -> tuple[np.ndarray, list]:
        """Raw (unnormalised) MLP_φ(f(x, y)) [B] and the cache for :meth:`backward`."""
        y, cache = self.net.forward(reward_features(self.task, prompts, responses))
        return y[:, 0].astype(np.float64), cache

    def backward(self, d_raw: np.ndarray, cache: list) -> None:
        """Accumulate ∂loss/∂φ given ∂loss/∂(raw reward) [B]."""
        self.net.backward(np.asarray(d_raw)[:, None], cache, need_dx=False)

    def __call__(self, prompts: np.ndarray, responses: np.ndarray) -> np.ndarray:
        """The normalised proxy reward R_φ(x, y), float64 [B]."""
        raw, _ = self.forward(prompts, responses)
        return self.gain * raw + self.bias

    def normalise(self, prompts: np.ndarray, responses: np.ndarray) -> None:
        """Set (gain, bias) so that R_φ has mean 0 and std 1 on the given (reference) samples."""
        raw, _ = self.forward(prompts, responses)
        std = float(raw.std())
        self.gain = 1.0 / std if std > 0 else 1.0
        self.bias = -float(raw.mean()) * self.gain

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"params": self.net.params.copy(), "gain": np.array(self.gain), "bias": np.array(self.bias)}

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        self.net.set_params(np.asarray(d["params"], dtype=self.net.dtype))
        self.gain = float(d["gain"])
        self.bias = float(d["bias"])


@dataclass(frozen=True)
class PreferencePairs:
    """B labelled pairs: prompts [B], chosen [B, L], rejected [B, L], gold rewards of both [B]."""

    prompts: np.ndarray
    chosen: np.ndarray
    rejected: np.ndarray
    gold_chosen: np.ndarray
    gold_rejected: np.ndarray

    def __len__(self) -> int:
        return int(self.prompts.shape[0])

    def subset(self, idx: np.ndarray) -> PreferencePairs:
        return PreferencePairs(self.prompts[idx], self.chosen[idx], self.rejected[idx],
                               self.gold_chosen[idx], self.gold_rejected[idx])


def sample_preference_pairs(
    task: ToyTask, policy, n: int, rng: np.random.Generator, *, label_temperature: float = 1.0
) -> PreferencePairs:
    """n pairs of responses of ``policy`` (π_ref), labelled by the noisy Bradley–Terry labeller."""
    if n < 1:
        raise ValueError(f"sample_preference_pairs: 'n' must be >= 1, got {n}")
    if not label_temperature > 0:
        raise ValueError(f"sample_preference_pairs: 'label_temperature' must be > 0, got {label_temperature}")
    prompts = task.sample_prompts(n, rng)
    y_a, _, _ = policy.sample(prompts, rng)
    y_b, _, _ = policy.sample(prompts, rng)
    g_a = gold_reward(task, prompts, y_a)
    g_b = gold_reward(task, prompts, y_b)
    a_wins = rng.random(n) < _sigmoid((g_a - g_b) / label_temperature)
    chosen = np.where(a_wins[:, None], y_a, y_b)
    rejected = np.where(a_wins[:, None], y_b, y_a)
    return PreferencePairs(prompts, chosen, rejected, np.where(a_wins, g_a, g_b), np.where(a_wins, g_b, g_a))


def preference_accuracy(model: RewardModel, pairs: PreferencePairs) -> dict[str, float]:
    """Held-out accuracy: how often R_φ ranks the labelled-chosen response higher (ties count 1/2),
    and the same against the noise-free gold ordering (pairs with equal gold reward left out)."""
    r_w = model(pairs.prompts, pairs.chosen)
    r_l = model(pairs.prompts, pairs.rejected)
    acc = float(np.mean((r_w > r_l) + 0.5 * (r_w == r_l)))
    dg = pairs.gold_chosen - pairs.gold_rejected
    strict = dg != 0
    acc_gold = float(np.mean((np.sign(r_w - r_l) == np.sign(dg))[strict])) if strict.any() else float("nan")
    return {"accuracy": acc, "accuracy_vs_gold": acc_gold}


def train_reward_model(
    model: RewardModel,
    train: PreferencePairs,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    rng: np.random.Generator,
    callback=None,
) -> list[dict[str, float]]:
    """Minimise the Bradley–Terry loss with Adam over minibatches; returns per-epoch metrics.

    ``callback(epoch, metrics)`` is called after each epoch (progress bars, logging).
    """
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(
            f"train_reward_model: 'epochs' ({epochs}), 'batch_size' ({batch_size}) and 'learning_rate' "
            f"({learning_rate}) must be positive"
        )
    opt = Adam(model.net.params, model.net.grads, lr=learning_rate)
    # features do not change during training: compute them once
    f_w = reward_features(model.task, train.prompts, train.chosen)
    f_l = reward_features(model.task, train.prompts, train.rejected)
    n = len(train)
    history = []
    for epoch in range(epochs):
        perm = rng.permutation(n)
        losses, accs = [], []
        for start in range(0, n, batch_size):
            mb = perm[start : start + batch_size]
            y_w, c_w = model.net.forward(f_w[mb])
            y_l, c_l = model.net.forward(f_l[mb])
            loss, d_w, d_l = bradley_terry_loss(y_w[:, 0], y_l[:, 0])
            model.net.zero_grad()
            model.net.backward(d_w[:, None], c_w, need_dx=False)
            model.net.backward(d_l[:, None], c_l, need_dx=False)
            opt.step()
            losses.append(loss)
            accs.append(float(np.mean(y_w[:, 0] > y_l[:, 0])))
        m = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "train_accuracy": float(np.mean(accs))}
        history.append(m)
        if callback is not None:
            callback(epoch, m)
    return history
