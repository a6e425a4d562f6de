"""An autoregressive token policy built from refrl's MLP, and the exact per-token KL.

The "language model" reads a fixed context window: at position t its input is

    s_t = [ onehot(x) | onehot(y_{t-K}) | ... | onehot(y_{t-1}) | onehot(t) ]

(prompt one-hot [P], the K previous tokens one-hot over V+1 symbols where symbol V stands for
"before the start", and the position one-hot [L]), and it outputs logits over the V tokens:

    π_θ(· | s_t) = softmax(MLP_θ(s_t)).

Because the policy only sees the window, the observation s_t (a function of x and y_{<t}) is the
state of a token-level MDP: the action is y_t, the transition appends it. A response is sampled
token by token; its log-probability is log π_θ(y | x) = Σ_t log π_θ(y_t | s_t).

Hand gradients (checked against central finite differences in tests/test_rlhf.py), with
p = softmax(z) and a the chosen token::

    ∂ log p_a / ∂z = onehot(a) − p
    ∂ H / ∂z       = −p ⊙ (log p + H),      H = −Σ_v p_v log p_v
"""

from __future__ import annotations

import numpy as np

from refrl.distributions import Categorical
from refrl.nn import MLP
from refrl.rlhf.task import ToyTask

__all__ = ["TokenPolicy", "log_softmax", "per_token_kl", "sft_loss_and_grad_logits"]


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis [..., V]: ``Categorical.log_probs`` on the rows."""
    z = np.asarray(z)
    return Categorical(z.shape[-1]).log_probs(z.reshape(-1, z.shape[-1])).reshape(z.shape)


def per_token_kl(logp: np.ndarray, logq: np.ndarray) -> np.ndarray:
    """Exact KL(p ‖ q) = Σ_v p_v (log p_v − log q_v) over the last (vocabulary) axis.

    ``logp``, ``logq``: log-probabilities [..., V] (full distributions, e.g. ``log_softmax``
    outputs). Used per position for KL[π_θ(·|s_t) ‖ π_ref(·|s_t)]; by the chain rule the sequence
    KL is KL[π_θ(·|x) ‖ π_ref(·|x)] = E_{y∼π_θ}[Σ_t KL_t(s_t)].
    """
    logp = np.asarray(logp)
    logq = np.asarray(logq)
    if logp.shape != logq.shape:
        raise ValueError(f"per_token_kl: 'logp' {logp.shape} and 'logq' {logq.shape} must have the same shape")
    p = np.exp(logp)
    # 0·log 0 = 0: where p underflows to 0 the term vanishes even if log q is very negative
    return np.sum(np.where(p > 0, p * (logp - logq), 0.0), axis=-1)


def sft_loss_and_grad_logits(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Supervised fine-tuning (maximum likelihood) loss and its gradient w.r.t. the logits.

    loss = −(1/B) Σ_i log softmax(z_i)[a_i];  ∂loss/∂z_i = (softmax(z_i) − onehot(a_i)) / B.

    ``logits`` float [B, V], ``targets`` int [B].
    """
    B = logits.shape[0]
    lp = log_softmax(logits)
    loss = -float(lp[np.arange(B), targets].mean())
    d = np.exp(lp)
    d[np.arange(B), targets] -= 1.0
    return loss, d / B


class TokenPolicy:
    """π_θ(y_t | s_t) = softmax(MLP_θ(s_t)) over a fixed context window (module docstring).

    Parameters
    ----------
    task : ToyTask
    context : int
        K, the number of previous tokens the policy sees (>= 1).
    hidden : tuple of int
        Hidden layer widths of the MLP.
    dtype : np.float64 (default) or np.float32
    rng : np.random.Generator
        Initialisation only.
    output_gain : float
        Orthogonal gain of the logit layer (small: the initial policy is near uniform).
    """

    def __init__(
        self,
        task: ToyTask,
        *,
        context: int = 3,
        hidden: tuple[int, ...] = (64,),
        activation: str = "tanh",
        dtype: type = np.float64,
        rng: np.random.Generator,
        output_gain: float = 0.01,
    ) -> None:
        if int(context) < 1:
            raise ValueError(f"TokenPolicy: 'context' must be >= 1, got {context}")
        self.task = task
        self.context = int(context)
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        V, L, P = task.vocab_size, task.response_length, task.n_topics
        self.obs_dim = P + self.context * (V + 1) + L
        self.net = MLP((self.obs_dim, *self.hidden, V), activation, output_gain=output_gain, dtype=dtype, rng=rng)

    # -- parameters -----------------------------------------------------------------------------
    @property
    def params(self) -> np.ndarray:
        return self.net.params

    @property
    def grads(self) -> np.ndarray:
        return self.net.grads

    def zero_grad(self) -> None:
        self.net.zero_grad()

    def config(self) -> dict:
        return {"context": self.context, "hidden": list(self.hidden), "activation": self.activation,
                "dtype": self.net.dtype.name}

    def copy(self) -> TokenPolicy:
        """An independent policy with the same architecture and parameters (e.g. the frozen π_ref)."""
        new = TokenPolicy.__new__(TokenPolicy)
        new.task, new.context, new.hidden, new.activation = self.task, self.context, self.hidden, self.activation
        new.obs_dim = self.obs_dim
        new.net = MLP(self.net.sizes, self.activation, dtype=self.net.dtype, rng=None, init=False)
        new.net.set_params(self.net.params)
        return new

    # -- observations ---------------------------------------------------------------------------
    def observe(self, prompts: np.ndarray, responses: np.ndarray, t: int) -> np.ndarray:
        """s_t for a batch: float [B, obs_dim] from prompts [B] and responses[:, :t] (later columns ignored)."""
        V, L, P, K = self.task.vocab_size, self.task.response_length, self.task.n_topics, self.context
        B = prompts.shape[0]
        s = np.zeros((B, self.obs_dim), dtype=self.net.dtype)
        rows = np.arange(B)
        s[rows, prompts] = 1.0
        for k in range(K):  # slot k holds y_{t-K+k}
            j = t - K + k
            tok = responses[:, j] if j >= 0 else np.full(B, V)
            s[rows, P + k * (V + 1) + tok] = 1.0
        s[:, P + K * (V + 1) + t] = 1.0
        assert t < L
        return s

    def observe_all(self, prompts: np.ndarray, responses: np.ndarray) -> np.ndarray:
        """All observations of given responses (teacher forcing): float [L, B, obs_dim], time-major."""
        prompts, responses = self.task.check_batch(prompts, responses, "TokenPolicy.observe_all")
        return np.stack([self.observe(prompts, responses, t) for t in range(self.task.response_length)])

    # -- distributions --------------------------------------------------------------------------
    def logits(self, obs: np.ndarray) -> tuple[np.ndarray, list]:
        """z = MLP_θ(s): obs [B, obs_dim] -> logits [B, V] and the MLP cache."""
        return self.net.forward(obs)

    def log_probs_all(self, obs: np.ndarray) -> np.ndarray:
        """log π_θ(· | s) over the vocabulary: obs [..., obs_dim] -> [..., V]."""
        lead = obs.shape[:-1]
        z, _ = self.net.forward(obs.reshape(-1, self.obs_dim))
        return log_softmax(z).reshape(*lead, -1)

    def sample(self, prompts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample responses y ∼ π_θ(·|x) token by token (temperature 1, no top-k/top-p).

        Returns responses int64 [B, L], observations [L, B, obs_dim] and
        the full log-probabilities log π_θ(·|s_t) [L, B, V] at the visited states.
        """
        prompts = np.asarray(prompts)
        if prompts.ndim != 1 or not np.issubdtype(prompts.dtype, np.integer):
            raise ValueError(
                f"TokenPolicy.sample: 'prompts' must be a 1-D integer array, got {prompts.dtype} {prompts.shape}"
            )
        if prompts.size and (prompts.min() < 0 or prompts.max() >= self.task.n_topics):
            raise ValueError(f"TokenPolicy.sample: 'prompts' must lie in [0, {self.task.n_topics}), "
                             f"got [{prompts.min()}, {prompts.max()}]")
        prompts = prompts.astype(np.int64)
        B, L, V = prompts.shape[0], self.task.response_length, self.task.vocab_size
        responses = np.zeros((B, L), dtype=np.int64)
        obs = np.empty((L, B, self.obs_dim), dtype=self.net.dtype)
        logp_all = np.empty((L, B, V), dtype=self.net.dtype)
        for t in range(L):
            obs[t] = self.observe(prompts, responses, t)
            z, _ = self.net.forward(obs[t])
            logp_all[t] = log_softmax(z)
            # inverse-CDF sampling: one uniform per row, reproducible from rng
            cdf = np.cumsum(np.exp(logp_all[t].astype(np.float64)), axis=1)
            u = rng.random(B)[:, None] * cdf[:, -1:]
            responses[:, t] = np.minimum((cdf < u).sum(axis=1), V - 1)
        return responses, obs, logp_all

    def sequence_log_prob(self, prompts: np.ndarray, responses: np.ndarray) -> np.ndarray:
        """log π_θ(y | x) = Σ_t log π_θ(y_t | s_t), float [B]."""
        obs = self.observe_all(prompts, responses)
        lp = self.log_probs_all(obs)  # [L, B, V]
        return np.take_along_axis(lp, responses.T[..., None], axis=2)[..., 0].sum(axis=0)

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        return {"params": self.net.params.copy()}

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        self.net.set_params(np.asarray(d["params"], dtype=self.net.dtype))


def entropy_and_grad_logits(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H(z) = −Σ_v p_v log p_v per row and ∂H/∂z = −p ⊙ (log p + H); logits [B, V]
    (``Categorical.entropy`` and ``Categorical.entropy_grad``)."""
    dist = Categorical(logits.shape[-1])
    return dist.entropy(logits), dist.entropy_grad(logits)
