"""The algorithms: VPG, PPO, TRPO and NPG (TRPO without the line search).

``ALGORITHMS`` is the registry the command line (``refrl train ALGO ENV``) and
:func:`load` use: name -> "module:Class", imported lazily.  To add an algorithm, subclass
:class:`refrl.algos.base.OnPolicyAlgorithm` (set ``algo_name`` and ``config_class``,
implement ``train()``) and add one line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from refrl.serialization import CheckpointError, load_checkpoint

if TYPE_CHECKING:
    from refrl.algos.base import OnPolicyAlgorithm

__all__ = ["ALGORITHMS", "get_algorithm", "load"]

ALGORITHMS: dict[str, str] = {
    "ppo": "refrl.algos.ppo:PPO",
    "trpo": "refrl.algos.trpo:TRPO",
    "npg": "refrl.algos.trpo:NPG",
    "vpg": "refrl.algos.vpg:VPG",
}


def get_algorithm(name: str) -> type[OnPolicyAlgorithm]:
    """The algorithm class registered under ``name`` (ValueError listing the known names)."""
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm: unknown {name!r}; known: {', '.join(sorted(ALGORITHMS))}")
    module, _, cls = ALGORITHMS[name].partition(":")
    return getattr(import_module(module), cls)


def load(path, env=None, **kwargs) -> OnPolicyAlgorithm:
    """Load any refrl checkpoint, whichever algorithm wrote it (the class named by its ``algo``)."""
    arrays, meta = load_checkpoint(path)
    if not isinstance(meta.get("algo"), str):
        raise CheckpointError(path, "damaged: no 'algo' in its JSON document")
    return get_algorithm(meta["algo"]).from_checkpoint(arrays, meta, env, path=path, **kwargs)
