"""The toy language task: vocabulary, prompts, a demonstration generator and the hidden gold reward.

A *prompt* is a topic id ``x`` in ``{0, ..., n_topics-1}``. A *response* is a fixed-length
sequence ``y = (y_0, ..., y_{L-1})`` of tokens (no end-of-sequence token: every response has
exactly ``response_length`` tokens, as in the fixed-length generation of Ziegler et al. 2019,
so nothing is ever padded). The vocabulary has three kinds of words:

* topic words: each topic owns ``words_per_topic`` words (``animals: cat dog owl`` ...);
* off-topic words: the topic words of the *other* topics;
* filler words (``the and very``), neutral everywhere.

Demonstrations (the supervised corpus, :func:`generate_demonstrations`) are written by a documented
random "writer": at each position it picks a word of the prompt's topic with probability
``p_topic``, a word of another topic with probability ``p_off`` and a filler word otherwise, and it
avoids saying the same word twice in a row (it redraws a repeat with probability ``p_avoid_repeat``).

The gold reward (:func:`gold_reward`) is the "human" judgement the reward model never sees::

    gold(x, y) = n_distinct                 # distinct topic words used (variety)
               + 0.5 * min(n_topic, 4)      # on-topic mentions help, up to four of them
               - 1.0 * max(0, n_topic - 5)  # keyword stuffing: beyond five mentions it hurts
               - 1.0 * n_repeat             # stutter: the same word at t-1 and t
               - 0.5 * n_off                # words of another topic

where ``n_topic`` counts positions holding a word of the prompt's topic. It is monotone in
``n_topic`` on the range the writer covers (``n_topic ~ Binomial(L, p_topic)``, rarely above 5) and
decreasing beyond it. That is the point of the miniature: a reward model fitted to preferences
between reference samples sees "more topic words is better" almost everywhere it has data, and an
optimiser that pushes the count past the data (keyword stuffing, repetition) is rewarded by the
proxy and penalised by the gold function. The gold function is deliberately simple and
documented; see docs/rlhf.md for what this does and does not show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

_TOPIC_NAMES = ("animals", "food", "weather", "music", "sport")
_TOPIC_WORDS = (
    ("cat", "dog", "owl", "fox"),
    ("pie", "tea", "jam", "egg"),
    ("sun", "rain", "fog", "snow"),
    ("drum", "harp", "horn", "lute"),
    ("golf", "polo", "judo", "ski"),
)
_FILLER_WORDS = ("the", "and", "very", "so", "a", "of")


@dataclass(frozen=True)
class ToyTask:
    """Sizes and the demonstration writer's probabilities of the toy language task."""

    n_topics: int = 3
    """Number of prompts (topics), 1..5."""
    words_per_topic: int = 3
    """Topic words per topic, 1..4."""
    n_filler: int = 3
    """Filler words, 1..6."""
    response_length: int = 8
    """L: tokens per response (fixed; no end-of-sequence token, no padding)."""
    p_topic: float = 0.35
    """Writer: probability of a word of the prompt's topic at each position."""
    p_off: float = 0.1
    """Writer: probability of a word of another topic at each position."""
    p_avoid_repeat: float = 0.9
    """Writer: probability of redrawing a word equal to the previous one."""

    def __post_init__(self) -> None:
        if not 1 <= self.n_topics <= len(_TOPIC_NAMES):
            raise ValueError(f"ToyTask: 'n_topics' must be in 1..{len(_TOPIC_NAMES)}, got {self.n_topics}")
        if not 1 <= self.words_per_topic <= len(_TOPIC_WORDS[0]):
            raise ValueError(f"ToyTask: 'words_per_topic' must be in 1..4, got {self.words_per_topic}")
        if not 1 <= self.n_filler <= len(_FILLER_WORDS):
            raise ValueError(f"ToyTask: 'n_filler' must be in 1..{len(_FILLER_WORDS)}, got {self.n_filler}")
        if self.response_length < 2:
            raise ValueError(f"ToyTask: 'response_length' must be >= 2, got {self.response_length}")
        for name in ("p_topic", "p_off", "p_avoid_repeat"):
            p = getattr(self, name)
            if not (0.0 <= p <= 1.0):
                raise ValueError(f"ToyTask: {name!r} must be in [0, 1], got {p}")
        if self.p_topic + self.p_off > 1.0:
            raise ValueError(f"ToyTask: 'p_topic' + 'p_off' must be <= 1, got {self.p_topic + self.p_off}")
        if self.n_topics == 1 and self.p_off > 0:
            raise ValueError("ToyTask: 'p_off' must be 0 when there is a single topic (no off-topic words)")

    # -- vocabulary ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """V: topic words of all topics, then filler words."""
        return self.n_topics * self.words_per_topic + self.n_filler

    @property
    def vocab(self) -> tuple[str, ...]:
        words = [w for t in range(self.n_topics) for w in _TOPIC_WORDS[t][: self.words_per_topic]]
        return tuple(words) + _FILLER_WORDS[: self.n_filler]

    @property
    def topic_names(self) -> tuple[str, ...]:
        return _TOPIC_NAMES[: self.n_topics]

    def topic_of_token(self) -> np.ndarray:
        """int array [V]: the topic a token belongs to, or -1 for filler words."""
        out = np.full(self.vocab_size, -1, dtype=np.int64)
        out[: self.n_topics * self.words_per_topic] = np.repeat(np.arange(self.n_topics), self.words_per_topic)
        return out

    def topic_tokens(self, topic: int) -> np.ndarray:
        k = self.words_per_topic
        return np.arange(topic * k, (topic + 1) * k)

    def decode(self, prompt: int, response: np.ndarray) -> str:
        """Human-readable ``"animals: cat the dog ..."``."""
        return f"{self.topic_names[int(prompt)]}: " + " ".join(self.vocab[int(t)] for t in response)

    def config(self) -> dict:
        return asdict(self)

    # -- inputs -------------------------------------------------------------------------------
    def check_batch(self, prompts: np.ndarray, responses: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
        """Validate ``prompts`` int [B] and ``responses`` int [B, L]; raise naming the argument."""
        prompts = np.asarray(prompts)
        responses = np.asarray(responses)
        if prompts.ndim != 1 or not np.issubdtype(prompts.dtype, np.integer):
            raise ValueError(f"{where}: 'prompts' must be a 1-D integer array [B], got {prompts.dtype} {prompts.shape}")
        if responses.shape != (prompts.shape[0], self.response_length) or not np.issubdtype(
            responses.dtype, np.integer
        ):
            raise ValueError(
                f"{where}: 'responses' must be an integer array of shape (B, L)=({prompts.shape[0]}, "
                f"{self.response_length}), got {responses.dtype} {responses.shape}"
            )
        if prompts.size and (prompts.min() < 0 or prompts.max() >= self.n_topics):
            raise ValueError(
                f"{where}: 'prompts' must lie in [0, {self.n_topics}), got [{prompts.min()}, {prompts.max()}]"
            )
        if responses.size and (responses.min() < 0 or responses.max() >= self.vocab_size):
            raise ValueError(f"{where}: 'responses' tokens must lie in [0, {self.vocab_size}), got "
                             f"[{responses.min()}, {responses.max()}]")
        return prompts.astype(np.int64, copy=False), responses.astype(np.int64, copy=False)

    def sample_prompts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.n_topics, size=n)


def response_stats(task: ToyTask, prompts: np.ndarray, responses: np.ndarray) -> dict[str, np.ndarray]:
    """Counts the gold reward is made of, each int array [B].

    n_topic: positions holding a word of the prompt's topic; n_distinct: distinct such words;
    n_off: positions holding a word of another topic; n_repeat: t >= 1 with y_t == y_{t-1}.
    """
    prompts, responses = task.check_batch(prompts, responses, "response_stats")
    tok_topic = task.topic_of_token()[responses]  # [B, L]
    on = tok_topic == prompts[:, None]
    n_topic = on.sum(axis=1)
    n_off = ((tok_topic >= 0) & ~on).sum(axis=1)
    n_repeat = (responses[:, 1:] == responses[:, :-1]).sum(axis=1)
    V = task.vocab_size
    used = np.zeros((responses.shape[0], V), dtype=bool)
    np.put_along_axis(used, responses, True, axis=1)
    used &= task.topic_of_token()[None, :] == prompts[:, None]
    n_distinct = used.sum(axis=1)
    return {"n_topic": n_topic, "n_distinct": n_distinct, "n_off": n_off, "n_repeat": n_repeat}


def gold_reward(task: ToyTask, prompts: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """The hidden gold reward, float64 [B] (formula in the module docstring)."""
    s = response_stats(task, prompts, responses)
    n_topic = s["n_topic"].astype(np.float64)
    return (
        s["n_distinct"]
        + 0.5 * np.minimum(n_topic, 4.0)
        - 1.0 * np.maximum(0.0, n_topic - 5.0)
        - 1.0 * s["n_repeat"]
        - 0.5 * s["n_off"]
    ).astype(np.float64)


def generate_demonstrations(task: ToyTask, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The supervised corpus: ``n`` (prompt, response) pairs from the documented writer.

    Returns prompts int64 [n] and responses int64 [n, L].
    """
    if n < 1:
        raise ValueError(f"generate_demonstrations: 'n' must be >= 1, got {n}")
    L = task.response_length
    prompts = task.sample_prompts(n, rng)
    responses = np.empty((n, L), dtype=np.int64)

    def draw() -> np.ndarray:
        u = rng.random(n)
        kind = np.where(u < task.p_topic, 0, np.where(u < task.p_topic + task.p_off, 1, 2))
        out = np.empty(n, dtype=np.int64)
        # 0: a word of the prompt's topic
        idx = kind == 0
        out[idx] = prompts[idx] * task.words_per_topic + rng.integers(0, task.words_per_topic, idx.sum())
        # 1: a word of another topic (uniform over the other topics' words)
        idx = kind == 1
        if idx.any():
            other = (prompts[idx] + rng.integers(1, max(task.n_topics, 2), idx.sum())) % task.n_topics
            out[idx] = other * task.words_per_topic + rng.integers(0, task.words_per_topic, idx.sum())
        # 2: a filler word
        idx = kind == 2
        out[idx] = task.n_topics * task.words_per_topic + rng.integers(0, task.n_filler, idx.sum())
        return out

    for t in range(L):
        tok = draw()
        if t > 0:
            redo = (tok == responses[:, t - 1]) & (rng.random(n) < task.p_avoid_repeat)
            if redo.any():
                tok = np.where(redo, draw(), tok)
        responses[:, t] = tok
    return prompts, responses
