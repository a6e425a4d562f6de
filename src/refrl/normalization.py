"""Running normalisation statistics that refrl owns: exact, float64, updated once per rollout.

:class:`RunningMeanStd` keeps ``(count, mean, var)`` of everything it has seen and merges a new
batch with the parallel formula of Chan, Golub & LeVeque (1979).  For two sets A and B with
counts n_A, n_B, means μ_A, μ_B and population variances σ²_A, σ²_B (M2 = n σ², the sum of
squared deviations)::

    n  = n_A + n_B
    δ  = μ_B − μ_A
    μ  = μ_A + δ n_B / n
    M2 = M2_A + M2_B + δ² n_A n_B / n,      σ² = M2 / n

which is exact: the merged statistics are those of the concatenated data, in any order and any
grouping, up to rounding.  Counts may be weighted (a weight 0 removes a row: the rollout
buffer's reset slots).  Across MPI ranks each rank's batch moments are gathered (one collective)
and merged in rank order, so every rank holds bit-identical statistics equal to those of all
ranks' data concatenated.  Unlike summing (count, Σx, Σx²), this never subtracts two large sums
(no cancellation when the mean is large against the spread).

:class:`RewardNormalizer` is gymnasium's ``NormalizeReward`` applied to a whole rollout: the
per-environment discounted-return accumulator, its running variance, and the division of each
reward by √(var + ε), then the clip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refrl.distributed import SerialComm

__all__ = ["EPSILON", "RewardNormalizer", "RunningMeanStd", "batch_moments", "merge_moments"]

#: ε under the square root of every normalisation: x / √(var + ε) (gymnasium's, SB3's and Baselines' value)
EPSILON = 1e-8


def merge_moments(
    count_a: float, mean_a: np.ndarray, var_a: np.ndarray, count_b: float, mean_b: np.ndarray, var_b: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Chan et al.'s parallel merge of ``(count, mean, population var)`` of two sets (module docstring)."""
    if count_b == 0:
        return count_a, mean_a, var_a
    if count_a == 0:
        return count_b, mean_b, var_b
    n = count_a + count_b
    with np.errstate(over="ignore", invalid="ignore"):  # overflowed statistics stay inf (the health guard reports them)
        delta = mean_b - mean_a
        mean = mean_a + delta * (count_b / n)
        m2 = var_a * count_a + var_b * count_b + np.square(delta) * (count_a * count_b / n)
        return n, mean, m2 / n


def batch_moments(
    batch: np.ndarray, weights: np.ndarray | None, shape: tuple[int, ...], *, check_finite: bool = True,
) -> tuple[float, np.ndarray, np.ndarray]:
    """``(Σ w_i, Σ w_i x_i / Σ w_i, Σ w_i (x_i − μ)² / Σ w_i)`` over the leading axes of ``batch``, in float64.

    ``batch`` has shape ``(*lead, *shape)``; ``weights`` is None (every row weighs 1), a bool mask
    of shape ``lead`` (the valid rows) or non-negative float weights of shape ``lead``.  Two passes
    (mean, then squared deviations from it).  A batch without weight gives count 0.  A NaN or
    infinity in a row that counts raises ``ValueError``, or with ``check_finite=False`` makes the
    moments non-finite (the training path: its health guard reports them, on every rank alike).
    """
    x = np.asarray(batch)
    if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
        raise TypeError(f"batch: expected a numeric array, got dtype {x.dtype}")
    nd = len(shape)
    if x.ndim < nd + 1 or (nd and x.shape[x.ndim - nd:] != shape):
        raise ValueError(f"batch: expected shape (*lead, {', '.join(map(str, shape))}) with at least one leading "
                         f"axis, got {x.shape}")
    lead = x.shape[: x.ndim - nd]
    x = x.reshape(-1, *shape).astype(np.float64, copy=False)
    if weights is None:
        rows, w = x, None
    else:
        wts = np.asarray(weights)
        if wts.shape != lead:
            raise ValueError(f"weights: expected shape {lead} (the leading axes of batch), got {wts.shape}")
        wts = wts.reshape(-1)
        if wts.dtype == np.bool_:
            rows, w = x[wts], None
        elif wts.dtype.kind in "fiu":
            wts = wts.astype(np.float64, copy=False)
            if not np.all(np.isfinite(wts)) or np.any(wts < 0):
                raise ValueError("weights: must be finite and >= 0")
            rows, w = x, wts
        else:
            raise TypeError(f"weights: expected a bool mask or float weights, got dtype {wts.dtype}")
    if check_finite and not np.all(np.isfinite(rows if w is None else rows[w > 0])):
        raise ValueError("batch: contains NaN or infinity (in a row that counts)")
    with np.errstate(over="ignore", invalid="ignore"):  # data too large to square: inf statistics, not a warning
        return _moments(rows, w, shape)


def _moments(rows: np.ndarray, w: np.ndarray | None, shape: tuple[int, ...]) -> tuple[float, np.ndarray, np.ndarray]:
    nd = len(shape)
    zeros = np.zeros(shape)
    if w is None:
        count = float(rows.shape[0])
        if count == 0:
            return 0.0, zeros, zeros
        mean = rows.mean(axis=0)
        var = np.square(rows - mean).mean(axis=0)
        return count, mean, var
    count = float(w.sum())
    if count == 0:
        return 0.0, zeros, zeros
    wx = w.reshape(-1, *([1] * nd))
    mean = (wx * rows).sum(axis=0) / count
    var = (wx * np.square(rows - mean)).sum(axis=0) / count
    return count, mean, var


class RunningMeanStd:
    """Running ``count``, ``mean`` and population ``var`` (float64) of arrays of shape ``shape``.

    Starts empty: ``count = 0``, ``mean = 0``, ``var = 1`` (so :meth:`normalize` is the identity
    up to ε before the first update).  gymnasium's RunningMeanStd starts from a pseudo-count of
    1e-4 at (0, 1); here the first update gives the batch's own statistics exactly.

    Parameters
    ----------
    shape : tuple of int
        Shape of one sample (``()`` for scalars such as returns).
    """

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        if not isinstance(shape, tuple) or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
            raise ValueError(f"shape: expected a tuple of non-negative ints, got {shape!r}")
        self.shape = tuple(int(d) for d in shape)
        self.count = 0.0
        self.mean = np.zeros(self.shape)
        self.var = np.ones(self.shape)

    @property
    def var(self) -> np.ndarray:
        """Population variance M2 / count (1 before the first update)."""
        return self._var

    @var.setter
    def var(self, value: np.ndarray) -> None:
        self._var = value
        self._denominator: tuple[float, np.ndarray] | None = None  # √(var + ε), cached per ε

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def merge(self, count: float, mean: np.ndarray, var: np.ndarray) -> RunningMeanStd:
        """Merge the moments of another set into these statistics (Chan et al.); returns self."""
        if self.count == 0:
            self.count, self.mean, self.var = float(count), np.array(mean, dtype=np.float64), np.array(var, dtype=np.float64)
            if count == 0:
                self.mean, self.var = np.zeros(self.shape), np.ones(self.shape)
            return self
        n, mean, var = merge_moments(self.count, self.mean, self.var, float(count), mean, var)
        self.count, self.mean, self.var = n, np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
        return self

    def update(self, batch: np.ndarray, weights: np.ndarray | None = None, comm: Any = None, *,
               check_finite: bool = True) -> RunningMeanStd:
        """Merge a whole rollout (every rank's, with ``comm``) into the statistics; returns self.

        ``batch``: ``(*lead, *shape)``, e.g. the buffer's ``[T, N, obs_dim]``; ``weights``: None, the
        ``[T, N]`` valid mask, or non-negative weights.  One vectorised pass per rank; with an MPI
        communicator the ranks' ``(count, mean, var)`` are gathered in one collective and merged in
        rank order, so every rank ends with the same statistics, those of the concatenated data.
        """
        count, mean, var = batch_moments(batch, weights, self.shape, check_finite=check_finite)
        comm = SerialComm() if comm is None else comm
        if comm.size > 1:
            rows = comm.gather(np.concatenate([[count], mean.reshape(-1), var.reshape(-1)]))
            d = mean.size
            count, mean, var = 0.0, np.zeros(self.shape), np.zeros(self.shape)
            for row in rows:
                count, mean, var = merge_moments(count, mean, var, float(row[0]), row[1:1 + d].reshape(self.shape),
                                                 row[1 + d:].reshape(self.shape))
        return self.merge(count, mean, var)

    def normalize(self, x: np.ndarray, clip: float | None = 10.0, epsilon: float = EPSILON,
                  dtype: Any = None) -> np.ndarray:
        """``clip((x − mean) / √(var + ε), −clip, clip)`` (gymnasium's NormalizeObservation + clip ±10).

        Computed in float64, returned in ``dtype`` (default: x's float dtype, float64 for integer input).
        """
        x = np.asarray(x)
        if self._denominator is None or self._denominator[0] != epsilon:
            self._denominator = (epsilon, np.sqrt(self.var + epsilon))  # the statistics are frozen between updates
        out = (x - self.mean) / self._denominator[1]
        if clip is not None:
            np.clip(out, -clip, clip, out=out)
        if dtype is None:
            dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return out.astype(dtype, copy=False)

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"mean", "var", "count"}`` float64 arrays (the checkpoint's ``obs_rms/*`` layout)."""
        return {"mean": np.array(self.mean, dtype=np.float64), "var": np.array(self.var, dtype=np.float64),
                "count": np.asarray(self.count, dtype=np.float64)}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> RunningMeanStd:
        """Restore from :meth:`state_dict` (or a checkpoint written from gymnasium's statistics)."""
        for key in ("mean", "var", "count"):
            if key not in state:
                raise KeyError(f"state: missing {key!r}")
        mean = np.asarray(state["mean"], dtype=np.float64)
        var = np.asarray(state["var"], dtype=np.float64)
        count = float(np.asarray(state["count"]))
        if mean.shape != self.shape or var.shape != self.shape:
            raise ValueError(f"state: mean/var must have shape {self.shape}, got {mean.shape} and {var.shape}")
        if not (np.isfinite(count) and count >= 0 and np.all(np.isfinite(mean)) and np.all(np.isfinite(var))
                and np.all(var >= 0)):
            raise ValueError("state: count, mean and var must be finite, count and var >= 0")
        self.count, self.mean, self.var = count, mean.copy(), var.copy()
        return self


class RewardNormalizer:
    """gymnasium's ``NormalizeReward`` (then ``ClipReward``) for a whole rollout at once.

    Per environment n the discounted-return accumulator runs, on every step that is a transition
    (``valid``; NEXT_STEP reset steps are skipped as gymnasium skips them)::

        R_n ← γ R_n (1 − terminated_{t,n}) + r_{t,n}

    The running variance of R over the rollout's valid steps (all ranks with ``comm``) is merged
    into ``return_rms`` once, then every reward is scaled: ``clip(r / √(var + ε), ±clip)``.  The
    accumulator carries over between rollouts, as gymnasium's does between steps; unlike the
    per-step wrapper, all rewards of a rollout are divided by the same (updated) variance.
    """

    def __init__(self, n_envs: int, gamma: float, *, clip: float | None = 10.0, epsilon: float = EPSILON) -> None:
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise ValueError(f"n_envs: expected an integer >= 1, got {n_envs!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma: expected a value in [0, 1], got {gamma!r}")
        self.gamma = float(gamma)
        self.clip = clip
        self.epsilon = float(epsilon)
        self.return_rms = RunningMeanStd(())
        self.accumulated = np.zeros(int(n_envs))  # the discounted return of each env so far

    def returns(self, rewards: np.ndarray, terminated: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """The accumulator's value after each step ``[T, N]`` (advances the accumulator)."""
        rewards = np.asarray(rewards, dtype=np.float64)
        n = self.accumulated.shape[0]
        for name, a in (("rewards", rewards), ("terminated", terminated), ("valid", valid)):
            if np.ndim(a) != 2 or np.shape(a)[1] != n or np.shape(a) != rewards.shape:
                raise ValueError(f"{name}: expected shape [T, {n}] like rewards, got {np.shape(a)}")
        keep = (self.gamma * (1.0 - np.asarray(terminated, dtype=np.float64))).T.tolist()
        valid_t = np.asarray(valid, dtype=bool).T.tolist()
        out = np.empty((n, rewards.shape[0]))
        # one scalar recurrence per env (Python floats: float64, the same rounding as NumPy's)
        for k, (r_k, keep_k, valid_k) in enumerate(zip(rewards.T.tolist(), keep, valid_t)):
            acc = float(self.accumulated[k])
            row = out[k]
            run = []
            for r, a, v in zip(r_k, keep_k, valid_k):
                if v:
                    acc = acc * a + r
                run.append(acc)
            row[:] = run
            self.accumulated[k] = acc
        return out.T.copy()

    def __call__(self, rewards: np.ndarray, terminated: np.ndarray, valid: np.ndarray, comm: Any = None, *,
                 check_finite: bool = True) -> np.ndarray:
        """Scaled and clipped rewards ``[T, N]`` (float64) of one rollout; updates the statistics."""
        ret = self.returns(rewards, terminated, valid)
        self.return_rms.update(ret, np.asarray(valid, dtype=bool), comm=comm, check_finite=check_finite)
        out = np.asarray(rewards, dtype=np.float64) / np.sqrt(self.return_rms.var + self.epsilon)
        if self.clip is not None:
            np.clip(out, -self.clip, self.clip, out=out)
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """``return_rms`` (mean, var, count) plus the per-env ``accumulated`` returns."""
        return {**self.return_rms.state_dict(), "accumulated": self.accumulated.copy()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> RewardNormalizer:
        self.return_rms.load_state_dict(state)
        if "accumulated" in state:
            acc = np.asarray(state["accumulated"], dtype=np.float64)
            if acc.shape != self.accumulated.shape:
                raise ValueError(f"state: 'accumulated' must have shape {self.accumulated.shape}, got {acc.shape}")
            self.accumulated = acc.copy()
        return self
