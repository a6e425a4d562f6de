"""Callbacks for ``learn(callback=...)``, with Stable-Baselines3's structure and names.

The order of the hooks in one ``learn`` call (as SB3's ``OnPolicyAlgorithm.learn``)::

    init_callback(model)
    on_training_start(locals, globals)
    every iteration:
        on_rollout_start()
        on_step()            once per vector step (after env.step) that holds a transition (with one
                             env: once per transition, as SB3); False stops training at once:
                             the partial rollout is discarded, no update is made, no row is logged
        on_rollout_end()
        (the update)
        on_update_end()      refrl's own hook, after the update, before its metrics row is written;
                             False stops training after this update
    on_training_end()

What a callback records through ``self.logger.record`` during an iteration lands in the metrics row
of that iteration's update (the row is written after ``on_update_end``).  ``learn`` also takes a list
of callbacks (a :class:`CallbackList`) or a plain function ``agent -> bool | None``, called at
``on_update_end`` (refrl's original hook).

Differences from SB3 (on purpose): checkpoints and best models are refrl's ``.npz`` files (with the
normalisation statistics inside, so ``save_vecnormalize`` has nothing more to write); evaluation
applies the model's own observation normalisation (no eval-env statistics to synchronise) and, by
default, seeds the evaluation episodes the same way at every evaluation (``seed``; None: SB3's
unseeded behaviour); the evaluation metrics join the row of the current update instead of
writing a row of their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from refrl.evaluation import evaluate_policy

if TYPE_CHECKING:
    from refrl.logger import Logger

#: The model a callback sees: a refrl algorithm (refrl.algos.base.OnPolicyAlgorithm, a layer above this one).
OnPolicyAlgorithm = Any

__all__ = [
    "BaseCallback", "CallbackList", "CheckpointCallback", "EvalCallback", "EveryNTimesteps", "FunctionCallback",
    "StopTrainingOnMaxEpisodes", "StopTrainingOnNoModelImprovement", "StopTrainingOnRewardThreshold",
    "make_callback",
]


def _check_positive_int(name: str, v: Any, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
    return int(v)


class BaseCallback:
    """Base class of the callbacks: override the ``_on_*`` methods you need (``_on_step`` always).

    Attributes: ``model`` (the algorithm), ``locals`` (the current step's ``new_obs``, ``actions``,
    ``rewards``, ``dones``, ``infos``, ``n_steps``, and ``self``: the model), ``globals``,
    ``n_calls`` (on_step calls so far), ``num_timesteps`` (the model's real transitions so far),
    ``logger`` (the model's), ``training_env`` (the model's vector env), ``parent`` (the
    :class:`EvalCallback` or :class:`EveryNTimesteps` that calls this one, if any).
    """

    def __init__(self, verbose: int = 0) -> None:
        self.verbose = verbose
        self.model: OnPolicyAlgorithm | None = None
        self.n_calls = 0
        self.num_timesteps = 0
        self.locals: dict[str, Any] = {}
        self.globals: dict[str, Any] = {}
        self.parent: BaseCallback | None = None

    @property
    def training_env(self) -> VectorEnv:
        return self._model().get_env()

    @property
    def logger(self) -> Logger:
        return self._model().logger

    def _model(self) -> OnPolicyAlgorithm:
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__}: not initialised (pass it to learn(callback=...))")
        return self.model

    # ---- called by learn (do not override; override the _on_* methods)
    def init_callback(self, model: OnPolicyAlgorithm) -> None:
        self.model = model
        self._init_callback()

    def on_training_start(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        self.locals, self.globals = locals_, globals_
        self.num_timesteps = self._model().num_timesteps
        self._on_training_start()

    def on_rollout_start(self) -> None:
        self._on_rollout_start()

    def on_step(self) -> bool:
        """One vector step was taken; False stops training."""
        self.n_calls += 1
        self.num_timesteps = self._model().num_timesteps
        return self._on_step() is not False

    def on_rollout_end(self) -> None:
        self._on_rollout_end()

    def on_update_end(self) -> bool:
        """The update was made (refrl's hook, before the update's metrics row is written); False stops training."""
        self.num_timesteps = self._model().num_timesteps
        return self._on_update_end() is not False

    def on_training_end(self) -> None:
        self._on_training_end()

    def update_locals(self, locals_: dict[str, Any]) -> None:
        self.locals.update(locals_)
        self.update_child_locals(locals_)

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        """Pass ``locals_`` on to the callbacks this one calls (override in containers)."""

    # ---- to override
    def _init_callback(self) -> None:
        pass

    def _on_training_start(self) -> None:
        pass

    def _on_rollout_start(self) -> None:
        pass

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        pass

    def _on_update_end(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        pass


class EventCallback(BaseCallback):
    """A callback that triggers a child callback on an event (``_on_event``); base of EvalCallback."""

    def __init__(self, callback: BaseCallback | None = None, verbose: int = 0) -> None:
        super().__init__(verbose=verbose)
        self.callback = callback
        if callback is not None:
            if not isinstance(callback, BaseCallback):
                raise TypeError(f"callback: expected a BaseCallback, got {type(callback).__name__}")
            callback.parent = self

    def init_callback(self, model: OnPolicyAlgorithm) -> None:
        super().init_callback(model)
        if self.callback is not None:
            self.callback.init_callback(model)

    def _on_training_start(self) -> None:
        if self.callback is not None:
            self.callback.on_training_start(self.locals, self.globals)

    def _on_event(self) -> bool:
        return self.callback.on_step() if self.callback is not None else True

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        if self.callback is not None:
            self.callback.update_locals(locals_)


class CallbackList(BaseCallback):
    """Several callbacks called in order; training stops when any of them asks (all are still called)."""

    def __init__(self, callbacks: Sequence[BaseCallback]) -> None:
        super().__init__()
        if isinstance(callbacks, BaseCallback) or not isinstance(callbacks, Sequence):
            raise TypeError(f"callbacks: expected a list of BaseCallback, got {type(callbacks).__name__}")
        for cb in callbacks:
            if not isinstance(cb, BaseCallback):
                raise TypeError(f"callbacks: expected BaseCallback items, got {type(cb).__name__}")
        self.callbacks = list(callbacks)

    def _init_callback(self) -> None:
        for cb in self.callbacks:
            cb.init_callback(self._model())

    def _on_training_start(self) -> None:
        for cb in self.callbacks:
            cb.on_training_start(self.locals, self.globals)

    def _on_rollout_start(self) -> None:
        for cb in self.callbacks:
            cb.on_rollout_start()

    def _on_step(self) -> bool:
        results = [cb.on_step() for cb in self.callbacks]
        return all(results)

    def _on_rollout_end(self) -> None:
        for cb in self.callbacks:
            cb.on_rollout_end()

    def _on_update_end(self) -> bool:
        results = [cb.on_update_end() for cb in self.callbacks]
        return all(results)

    def _on_training_end(self) -> None:
        for cb in self.callbacks:
            cb.on_training_end()

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.update_locals(locals_)


class FunctionCallback(BaseCallback):
    """A plain function ``agent -> bool | None`` called once per iteration, after the update
    (``on_update_end``); returning False stops training.  What ``learn`` makes of a function."""

    def __init__(self, fn: Callable[[Any], bool | None]) -> None:
        super().__init__()
        if not callable(fn):
            raise TypeError(f"callback: expected a callable agent -> bool | None, got {type(fn).__name__}")
        self.fn = fn

    def _on_update_end(self) -> bool:
        return self.fn(self._model()) is not False


def make_callback(callback: Any) -> BaseCallback | None:
    """What ``learn(callback=...)`` accepts -> one BaseCallback (or None): a BaseCallback, a list of
    BaseCallbacks and functions, or a function ``agent -> bool | None``."""
    if callback is None or isinstance(callback, BaseCallback):
        return callback
    if isinstance(callback, (list, tuple)):
        return CallbackList([make_callback(cb) for cb in callback])
    if callable(callback):
        return FunctionCallback(callback)
    raise TypeError(f"callback: expected a BaseCallback, a list of them, or a callable agent -> bool | None, "
                    f"got {type(callback).__name__}")


class CheckpointCallback(BaseCallback):
    """Save the model every ``save_freq`` calls of on_step (vector steps: ``save_freq * n_envs``
    transitions) to ``save_path/{name_prefix}_{num_timesteps}_steps.npz``.

    ``save_replay_buffer`` and ``save_vecnormalize`` are accepted for SB3 scripts: on-policy
    algorithms have no replay buffer, and refrl's checkpoint always holds the normalisation.
    """

    def __init__(self, save_freq: int, save_path: str | os.PathLike, name_prefix: str = "rl_model",
                 save_replay_buffer: bool = False, save_vecnormalize: bool = False, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.save_freq = _check_positive_int("save_freq", save_freq)
        self.save_path = Path(save_path)
        self.name_prefix = name_prefix

    def _init_callback(self) -> None:
        self.save_path.mkdir(parents=True, exist_ok=True)

    def _checkpoint_path(self) -> Path:
        return self.save_path / f"{self.name_prefix}_{self.num_timesteps}_steps.npz"

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            path = self._model().save(self._checkpoint_path())
            if self.verbose >= 2:
                print(f"Saving model checkpoint to {path}")
        return True


class StopTrainingOnRewardThreshold(BaseCallback):
    """Stop training once the mean evaluation return reaches ``reward_threshold``: give it to an
    EvalCallback as ``callback_on_new_best``."""

    def __init__(self, reward_threshold: float, verbose: int = 0) -> None:
        super().__init__(verbose=verbose)
        self.reward_threshold = float(reward_threshold)

    def _on_step(self) -> bool:
        if not isinstance(self.parent, EvalCallback):
            raise TypeError("StopTrainingOnRewardThreshold: must be given to an EvalCallback (callback_on_new_best)")
        continue_training = bool(self.parent.best_mean_reward < self.reward_threshold)
        if self.verbose >= 1 and not continue_training:
            print(f"Stopping training because the mean reward {self.parent.best_mean_reward:.2f} "
                  f"is above the threshold {self.reward_threshold}")
        return continue_training


class StopTrainingOnNoModelImprovement(BaseCallback):
    """Stop training when ``max_no_improvement_evals`` evaluations in a row did not improve the best
    mean return (after at least ``min_evals`` evaluations): give it to an EvalCallback as
    ``callback_after_eval``."""

    def __init__(self, max_no_improvement_evals: int, min_evals: int = 0, verbose: int = 0) -> None:
        super().__init__(verbose=verbose)
        self.max_no_improvement_evals = _check_positive_int("max_no_improvement_evals", max_no_improvement_evals, 0)
        self.min_evals = _check_positive_int("min_evals", min_evals, 0)
        self.last_best_mean_reward = -np.inf
        self.no_improvement_evals = 0

    def _on_step(self) -> bool:
        if not isinstance(self.parent, EvalCallback):
            raise TypeError("StopTrainingOnNoModelImprovement: must be given to an EvalCallback (callback_after_eval)")
        continue_training = True
        if self.n_calls > self.min_evals:
            if self.parent.best_mean_reward > self.last_best_mean_reward:
                self.no_improvement_evals = 0
            else:
                self.no_improvement_evals += 1
                if self.no_improvement_evals > self.max_no_improvement_evals:
                    continue_training = False
        self.last_best_mean_reward = self.parent.best_mean_reward
        if self.verbose >= 1 and not continue_training:
            print(f"Stopping training because there was no new best model in the last "
                  f"{self.no_improvement_evals:d} evaluations")
        return continue_training


class StopTrainingOnMaxEpisodes(BaseCallback):
    """Stop training after ``max_episodes`` finished episodes (summed over the environments)."""

    def __init__(self, max_episodes: int, verbose: int = 0) -> None:
        super().__init__(verbose=verbose)
        self.max_episodes = _check_positive_int("max_episodes", max_episodes)
        self.n_episodes = 0

    def _on_step(self) -> bool:
        self.n_episodes += int(np.sum(self.locals["dones"]))
        return self.n_episodes < self.max_episodes


class EveryNTimesteps(EventCallback):
    """Call ``callback`` every ``n_steps`` transitions (on the first step at or past each multiple)."""

    def __init__(self, n_steps: int, callback: BaseCallback) -> None:
        super().__init__(callback)
        self.n_steps = _check_positive_int("n_steps", n_steps)
        self.last_time_trigger = 0

    def _on_step(self) -> bool:
        if (self.num_timesteps - self.last_time_trigger) >= self.n_steps:
            self.last_time_trigger = self.num_timesteps
            return self._on_event()
        return True


class EvalCallback(EventCallback):
    """Evaluate the model every ``eval_freq`` calls of on_step on a separate ``eval_env``
    (``refrl.evaluate_policy``, ``n_eval_episodes`` episodes), record ``eval/mean_reward`` and
    ``eval/mean_ep_length``, save the best model to ``best_model_save_path/best_model.npz`` and
    every result to ``log_path/evaluations.npz`` (arrays ``timesteps``, ``results``, ``ep_lengths``).

    ``callback_on_new_best`` is called (its on_step) after an evaluation that improved the best mean
    return, ``callback_after_eval`` after every evaluation; either returning False stops training.
    ``seed`` seeds the evaluation episodes the same way at every evaluation (None: the env's own
    state, as SB3).  ``eval_env`` is an env id, a gymnasium.Env or a VectorEnv of raw observations.
    ``warn`` is accepted for SB3 scripts (SB3 warns about a missing Monitor wrapper; refrl
    evaluates raw rewards itself).  Under MPI each rank given the callback evaluates (the same
    parameters, the same episodes) and rank 0 alone writes the files and prints.
    """

    def __init__(self, eval_env: str | gym.Env | VectorEnv, callback_on_new_best: BaseCallback | None = None,
                 callback_after_eval: BaseCallback | None = None, n_eval_episodes: int = 5, eval_freq: int = 10000,
                 log_path: str | os.PathLike | None = None, best_model_save_path: str | os.PathLike | None = None,
                 deterministic: bool = True, render: bool = False, verbose: int = 1, warn: bool = True,
                 *, seed: int | None = 0) -> None:
        super().__init__(callback_after_eval, verbose=verbose)
        self.callback_on_new_best = callback_on_new_best
        if callback_on_new_best is not None:
            if not isinstance(callback_on_new_best, BaseCallback):
                raise TypeError(f"callback_on_new_best: expected a BaseCallback, got {type(callback_on_new_best).__name__}")
            callback_on_new_best.parent = self
        if isinstance(eval_env, str):
            eval_env = gym.make(eval_env)
        if not isinstance(eval_env, (gym.Env, VectorEnv)):
            raise TypeError(f"eval_env: expected an env id, a gymnasium.Env or a VectorEnv, got {type(eval_env).__name__}")
        self.eval_env = eval_env
        self.n_eval_episodes = _check_positive_int("n_eval_episodes", n_eval_episodes)
        self.eval_freq = _check_positive_int("eval_freq", eval_freq, 0)
        self.deterministic = bool(deterministic)
        self.render = bool(render)
        self.seed = seed
        self.best_model_save_path = None if best_model_save_path is None else Path(best_model_save_path)
        self.log_path = None if log_path is None else Path(log_path) / "evaluations.npz"
        self.best_mean_reward = -np.inf
        self.last_mean_reward = -np.inf
        self.evaluations_timesteps: list[int] = []
        self.evaluations_results: list[list[float]] = []
        self.evaluations_length: list[list[int]] = []

    def _init_callback(self) -> None:
        super()._init_callback()
        for folder in (self.best_model_save_path, None if self.log_path is None else self.log_path.parent):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.init_callback(self._model())

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            return self.evaluate()
        return True

    def evaluate(self) -> bool:
        """One evaluation now (what ``_on_step`` does every ``eval_freq`` calls); False: stop training."""
        model = self._model()
        rewards, lengths = evaluate_policy(model, self.eval_env, n_eval_episodes=self.n_eval_episodes,
                                           deterministic=self.deterministic, render=self.render,
                                           return_episode_rewards=True, seed=self.seed)
        self.evaluations_timesteps.append(self.num_timesteps)
        self.evaluations_results.append(rewards)
        self.evaluations_length.append(lengths)
        root = model.comm.is_root  # under MPI every rank evaluates the same parameters alike; rank 0 writes
        if self.log_path is not None and root:
            _savez_atomic(self.log_path, timesteps=np.asarray(self.evaluations_timesteps, dtype=np.int64),
                          results=np.asarray(self.evaluations_results, dtype=np.float64),
                          ep_lengths=np.asarray(self.evaluations_length, dtype=np.int64))
        mean_reward, std_reward = float(np.mean(rewards)), float(np.std(rewards))
        mean_length, std_length = float(np.mean(lengths)), float(np.std(lengths))
        self.last_mean_reward = mean_reward
        if self.verbose >= 1 and root:
            print(f"Eval num_timesteps={self.num_timesteps}, episode_reward={mean_reward:.2f} +/- {std_reward:.2f}")
            print(f"Episode length: {mean_length:.2f} +/- {std_length:.2f}")
        self.logger.record("eval/mean_reward", mean_reward)
        self.logger.record("eval/mean_ep_length", mean_length)
        continue_training = True
        if mean_reward > self.best_mean_reward:
            if self.verbose >= 1 and root:
                print("New best mean reward!")
            self.best_mean_reward = mean_reward
            if self.best_model_save_path is not None:
                model.save(self.best_model_save_path / "best_model.npz")
            if self.callback_on_new_best is not None:
                continue_training = self.callback_on_new_best.on_step()
        if self.callback is not None:
            continue_training = continue_training and self._on_event()
        return continue_training

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        super().update_child_locals(locals_)
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.update_locals(locals_)


def _savez_atomic(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` to a temporary beside ``path``, renamed over it (numeric arrays only: no pickle)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
