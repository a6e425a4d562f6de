"""Observations of a gymnasium space as the input of the policy's networks (SB3's ``preprocess_obs``).

Every supported observation space has a network input of ``dim`` floats per observation:

=================  ==========================================================  =================
space              network input                                               ``dim``
=================  ==========================================================  =================
Box                the observation, flattened                                  prod(shape)
Discrete(n)        one-hot of ``obs − start``                                  n
MultiDiscrete      one one-hot per component (``obs − start``), concatenated   Σ nvec
MultiBinary        the bits as floats, flattened                               prod(shape)
Dict               each entry's input above, concatenated in the space's order Σ of the entries
=================  ==========================================================  =================

A batch of raw observations is what a vector environment returns: an array ``[B, *shape]`` (a
mapping of such arrays for a Dict). The encoding happens inside the policy, so a saved model acts on
the raw observations of its environment. A Dict space also accepts its encoding ``[B, dim]`` (the
array the rollout buffer stores for it). Values outside the space (an index out of range, a bit
that is not 0 or 1, NaN in a Box) raise a ValueError naming ``'obs'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["ObservationEncoder"]

_KINDS = "Box, Discrete, MultiDiscrete, MultiBinary, or a Dict of these"


class ObservationEncoder:
    """Raw observations of ``space`` -> network input ``[B, dim]`` (see the module table).

    ``who`` prefixes the error messages (the caller's name).
    """

    def __init__(self, space: Any, who: str = "ActorCritic", *, _nested: bool = False) -> None:
        from gymnasium import spaces

        self.space = space
        self.who = who
        if isinstance(space, spaces.Box):
            self.kind, self.shape = "box", tuple(space.shape)
            self.dim = int(np.prod(self.shape))
        elif isinstance(space, spaces.Discrete):
            self.kind, self.shape = "discrete", ()
            self.dim = int(space.n)
            self.start = np.int64(space.start)
        elif isinstance(space, spaces.MultiDiscrete):
            self.kind, self.shape = "multidiscrete", tuple(space.shape)
            self.nvec = space.nvec.reshape(-1).astype(np.int64)
            self.start = np.asarray(space.start, dtype=np.int64).reshape(-1)
            self.offsets = np.concatenate([[0], np.cumsum(self.nvec)[:-1]]).astype(np.int64)
            self.dim = int(self.nvec.sum())
        elif isinstance(space, spaces.MultiBinary):
            self.kind, self.shape = "multibinary", tuple(int(k) for k in space.shape)
            self.dim = int(np.prod(self.shape))
        elif isinstance(space, spaces.Dict) and not _nested:
            self.kind, self.shape = "dict", None
            self.parts = [(key, ObservationEncoder(sub, who, _nested=True)) for key, sub in space.spaces.items()]
            self.dim = sum(enc.dim for _, enc in self.parts)
        else:  # ValueError for an unsupported space, as make_distribution does (the contract)
            where = "inside a Dict " if _nested else ""
            raise ValueError(
                f"{who}: unsupported 'observation_space' {where}{space!r} (supported: {_KINDS}; "
                "gymnasium's FlattenObservation wrapper turns other spaces into a Box)"
            )
        if self.dim < 1:
            raise ValueError(f"{who}: 'observation_space' has no dimensions: {space}")

    # ------------------------------------------------------------------------------ batches
    def as_batch(self, obs: Any) -> tuple[Any, bool]:
        """(a batch, whether ``obs`` was one observation): one observation gets a leading axis of 1."""
        if self.kind == "dict":
            if not isinstance(obs, Mapping):
                return np.asarray(obs), False  # an encoded batch (checked by encode)
            self._check_keys(obs)
            single = [enc.as_batch(obs[key])[1] for key, enc in self.parts]
            if all(single):
                return {key: np.asarray(obs[key])[None] for key, _ in self.parts}, True
            return obs, False
        o = np.asarray(obs)
        if o.shape == self.shape:
            return o[None], True
        return o, False

    def _check_keys(self, obs: Mapping) -> None:
        keys = [key for key, _ in self.parts]
        if set(obs) != set(keys):
            raise ValueError(f"{self.who}: 'obs' must have the keys {keys} of {self.space}, got {sorted(obs)}")

    def encode(self, obs: Any, dtype: np.dtype) -> np.ndarray:
        """The network input [B, dim] in ``dtype`` for a batch of raw observations."""
        if self.kind == "box":
            x = np.asarray(obs, dtype=dtype)
            if x.shape[1:] == self.shape and x.ndim == len(self.shape) + 1:
                x = x.reshape(x.shape[0], self.dim)
            elif x.ndim != 2 or x.shape[1] != self.dim:
                raise ValueError(f"{self.who}: 'obs' must have shape {self._batch_shape()} for {self.space}, got {x.shape}")
            if not np.isfinite(x).all():
                raise ValueError(f"{self.who}: 'obs' contains NaN or inf")
            return x
        if self.kind == "dict":
            if not isinstance(obs, Mapping):  # the encoding itself (the rollout buffer's form)
                x = np.asarray(obs, dtype=dtype)
                if x.ndim != 2 or x.shape[1] != self.dim:
                    raise ValueError(f"{self.who}: 'obs' for {self.space} must be a dict of batches, or its "
                                     f"encoding of shape (B, {self.dim}); got {type(obs).__name__} of shape {x.shape}")
                if not np.isfinite(x).all():
                    raise ValueError(f"{self.who}: 'obs' contains NaN or inf")
                return x
            self._check_keys(obs)
            xs = [enc.encode(obs[key], dtype) for key, enc in self.parts]
            if len({x.shape[0] for x in xs}) != 1:
                raise ValueError(f"{self.who}: the entries of 'obs' hold different batch sizes {[x.shape[0] for x in xs]}")
            return np.concatenate(xs, axis=1)
        o = self._integers(obs)
        B = o.shape[0]
        x = np.zeros((B, self.dim), dtype=dtype)
        if self.kind == "multibinary":
            if o.size and not ((o == 0) | (o == 1)).all():
                raise ValueError(f"{self.who}: 'obs' must be 0 or 1 for {self.space}")
            x[...] = o.reshape(B, self.dim)
            return x
        if self.kind == "discrete":
            idx = o - self.start
            if B and (idx.min() < 0 or idx.max() >= self.dim):
                raise ValueError(f"{self.who}: 'obs' out of range for {self.space}, got values in [{o.min()}, {o.max()}]")
            x[np.arange(B), idx] = 1
            return x
        idx = o.reshape(B, -1) - self.start  # multidiscrete: one one-hot per component
        if B and ((idx < 0) | (idx >= self.nvec)).any():
            raise ValueError(f"{self.who}: 'obs' out of range for {self.space}")
        x[np.arange(B)[:, None], self.offsets + idx] = 1
        return x

    def _batch_shape(self) -> str:
        return f"(B, {', '.join(map(str, self.shape))})" if self.shape else "(B,)"

    def _integers(self, obs: Any) -> np.ndarray:
        """``obs`` [B, *shape] as int64 (integral floats accepted: a float rollout buffer stores them)."""
        o = np.asarray(obs)
        if o.shape[1:] != self.shape or o.ndim != len(self.shape) + 1:
            raise ValueError(f"{self.who}: 'obs' must have shape {self._batch_shape()} for {self.space}, got {o.shape}")
        if o.dtype.kind == "f" and np.isfinite(o).all() and (o == np.round(o)).all():
            o = o.astype(np.int64)
        if o.dtype.kind not in "biu":
            raise TypeError(f"{self.who}: 'obs' must be integers for {self.space}, got dtype {o.dtype}")
        return o.astype(np.int64)
