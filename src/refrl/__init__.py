"""refrl: the PPO/TRPO family in NumPy with a small, proven C++ core.

Public API (Stable-Baselines3 habits)::

    import refrl
    agent = refrl.PPO("CartPole-v1", seed=0)
    agent.learn(total_timesteps=100_000)
    mean, std = refrl.evaluate_policy(agent, n_eval_episodes=10)   # on a fresh env of the same id

``refrl.PPO("MlpPolicy", env, ...)`` (SB3's form) is accepted too; ``refrl.callbacks`` holds SB3's
callback classes (EvalCallback, CheckpointCallback, ...).

``refrl.kernels`` is the checked Python face of the compiled core;
``refrl.oracle`` holds the same computations as literal loops.
``refrl.get_include()`` and ``refrl.get_cmake_dir()`` locate the installed C++ headers and
CMake package config (``find_package(refrl CONFIG REQUIRED)`` -> ``refrl::headers``).
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING


from refrl._paths import get_cmake_dir, get_include

__version__ = "0.1.0"

if TYPE_CHECKING:  # the lazy names below, for type checkers (nothing is imported at run time)
    from refrl import callbacks, kernels, oracle
    from refrl.algos.ppo import PPO
    from refrl.algos.trpo import NPG, TRPO
    from refrl.algos.vpg import VPG
    from refrl.evaluation import evaluate_policy
    from refrl.health import TrainingDiverged
    from refrl.serialization import CheckpointError

# Algorithms are imported lazily so that `import refrl` stays cheap and
# `refrl.kernels` can be used on its own by tools that embed it.
_LAZY = {
    "PPO": "refrl.algos.ppo",
    "TRPO": "refrl.algos.trpo",
    "NPG": "refrl.algos.trpo",
    "VPG": "refrl.algos.vpg",
    "CheckpointError": "refrl.serialization",
    "TrainingDiverged": "refrl.health",
    "evaluate_policy": "refrl.evaluation",
}

__all__ = ["PPO", "TRPO", "NPG", "VPG", "CheckpointError", "TrainingDiverged", "callbacks", "evaluate_policy",
           "kernels", "oracle", "get_include", "get_cmake_dir", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(_import_module(_LAZY[name]), name)
    if name in ("kernels", "oracle", "callbacks"):
        return _import_module(f"refrl.{name}")
    raise AttributeError(f"module 'refrl' has no attribute {name!r}")
