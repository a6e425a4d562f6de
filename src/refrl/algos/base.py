"""OnPolicyAlgorithm: what PPO, TRPO, NPG and VPG share.

One iteration of :meth:`OnPolicyAlgorithm.learn`::

    collect_rollouts()        n_steps x n_envs slots into the time-major buffer (refrl.rollout)
    compute_advantages()      GAE through refrl.kernels.gae; reset slots get A = 0, R = V
    train()                   the algorithm's update (abstract: PPO, TRPO, ... implement it)
    callback + log            the callbacks' on_update_end, then one metrics row (rollout/*, time/*
                              here; train/* stored by train(); whatever the callbacks recorded)

Callbacks (refrl.callbacks, SB3's structure) are called around and inside the collection: on_rollout_start,
on_step once per vector step that holds a transition (from the collector's loop; nothing is called there
without a callback),
on_rollout_end, then on_update_end after the update.

Extension points for a new algorithm (see algos/ppo.py for a complete example):

* ``config_class``: a frozen dataclass deriving from :class:`refrl.config.OnPolicyConfig`
  (the keyword arguments of the constructor are its fields); ``algo_name``: registry name.
* ``_setup()``: build optimisers etc. after the policy exists (called from ``__init__`` and
  from ``load``).
* ``train()``: one update from ``self.buffer`` (advantages/returns filled); use
  ``self.flat_batch()`` for the ``b_*`` arrays, ``self.progress_remaining`` for schedules,
  ``self.rng`` for shuffling and ``self.logger.store/record`` for ``train/*`` metrics.
* ``_optimizers() -> {prefix: Adam}``: the optimisers whose state a checkpoint keeps; ``save``
  writes each one's moments as the arrays ``<prefix>/m``, ``<prefix>/v`` and its scalars (t, lr,
  betas, eps) under ``meta["extra"][<prefix>]``, and ``load`` restores them.
* ``_extra_state() -> (arrays, meta)`` and ``_load_extra_state(arrays, meta)``: whatever else the
  algorithm needs in a checkpoint besides the policy, optimisers, normalisation and rng state
  (adaptive coefficients, update counters).  Arrays must be numeric; meta JSON-able.

:func:`fit_value_minibatches` is the critic fit of the full-batch algorithms (VPG, TRPO/NPG).

Checkpoint format: refrl.serialization (one .npz with a JSON ``__meta__``, no pickle).
Loading a checkpoint whatever algorithm wrote it is ``refrl.algos.load`` (the registry).
Around the loop, in their own modules below this one: the progress bar (refrl.progress), BLAS
thread control (refrl.threads) and evaluation (refrl.evaluation).  The layers: docs/design.md.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Optional, Union

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from refrl import health, kernels, native
from refrl.callbacks import BaseCallback, make_callback
from refrl.config import OnPolicyConfig, from_policy_kwargs
from refrl.distributed import SerialComm, rank_seed, rank_seed_sequence, world
from refrl.evaluation import evaluate_policy
from refrl.health import TrainingDiverged
from refrl.logger import Logger
from refrl.optim import Adam, clip_grad_norm_
from refrl.policy import ActorCritic
from refrl.progress import Progress
from refrl.normalization import EPSILON, RewardNormalizer, RunningMeanStd
from refrl.rollout import RolloutBuffer, RolloutCollector, make_vec_env
from refrl.serialization import CheckpointError, load_checkpoint, save_checkpoint
from refrl.tensorboard import TensorBoardOutput, require_writer, run_folder
from refrl.threads import blas_threads

if TYPE_CHECKING:
    from typing_extensions import Self

# evaluate_policy lives in refrl.evaluation; importing it from here keeps working.
__all__ = ["OnPolicyAlgorithm", "RolloutBatch", "TrainingDiverged", "evaluate_policy", "explained_variance",
           "fit_value_minibatches"]

#: What ``learn(callback=...)`` takes: a BaseCallback, a list of callbacks, or a function agent -> bool | None.
Callback = Union[BaseCallback, Sequence[Union[BaseCallback, Callable[[Any], Optional[bool]]]],
                 Callable[[Any], Optional[bool]]]

#: The policy names of Stable-Baselines3 (the first positional argument of SB3's constructors).
MLP_POLICY = "MlpPolicy"
_OTHER_SB3_POLICIES = ("CnnPolicy", "MultiInputPolicy")
_SERIAL = SerialComm()


class RolloutBatch(NamedTuple):
    """The rollout flattened to ``[T*N]`` (views of the buffer; ``b_`` arrays in CleanRL's naming)."""

    obs: np.ndarray  # [B, *obs_shape]
    actions: np.ndarray  # [B, *act_shape]
    logp: np.ndarray  # [B]
    values: np.ndarray  # [B]
    advantages: np.ndarray  # [B]
    returns: np.ndarray  # [B]
    weights: np.ndarray  # [B] 1 for real transitions, 0 for NEXT_STEP reset slots


def explained_variance(values: np.ndarray, returns: np.ndarray, weights: np.ndarray) -> float:
    """1 − Var_w[R − V] / Var_w[R] (weighted); NaN when Var_w[R] = 0 (as SB3's explained_variance)."""
    w = weights.astype(np.float64)
    sw = w.sum()
    if sw <= 0:
        return float("nan")
    r = returns.astype(np.float64)
    d = r - values
    var_r = np.dot(w, (r - np.dot(w, r) / sw) ** 2) / sw
    var_d = np.dot(w, (d - np.dot(w, d) / sw) ** 2) / sw
    return float("nan") if var_r == 0 else float(1.0 - var_d / var_r)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def _policy_and_env(policy: Any, env: Any) -> Any:
    """The environment of refrl's ``PPO(env)`` or of SB3's ``PPO("MlpPolicy", env)``."""
    sb3_names = (MLP_POLICY, *_OTHER_SB3_POLICIES)
    if policy is None:  # PPO(env=...)
        if env is None:
            raise TypeError("env: required (an env id, a gymnasium.Env or a VectorEnv)")
        return env
    if env is None:
        if isinstance(policy, str) and policy in sb3_names:
            raise TypeError(f"env: {policy!r} names a policy; pass the environment after it: PPO({policy!r}, env)")
        return policy
    if policy == MLP_POLICY:
        return env
    if isinstance(policy, str) and policy in _OTHER_SB3_POLICIES:
        raise ValueError(f"policy: {policy!r} is not available in refrl; its one policy is 'MlpPolicy' (separate "
                         "MLP actor and critic; flatten image or Dict observations to a Box first)")
    raise ValueError(f"policy: expected 'MlpPolicy' (or the env alone: PPO(env)), got {policy!r}")


class OnPolicyAlgorithm:
    """Base of the on-policy algorithms: collection, GAE, learn loop, predict, save/load.

    Parameters
    ----------
    env : str, gymnasium.Env or gymnasium VectorEnv
        An environment id (built with ``gymnasium.make_vec``), one environment (n_envs must
        be 1) or a vector environment in NEXT_STEP autoreset mode (n_envs is taken from it).
        SB3's form ``PPO("MlpPolicy", env, ...)`` is accepted too ("MlpPolicy" is the only policy).
    seed : int
        Seeds the network initialisation, the action sampling and minibatch shuffling (one
        ``np.random.Generator`` each, spawned from ``SeedSequence(seed)``) and the first
        environment reset.  Same seed, same machine: same numbers.
    verbose : int
        1 prints the metrics table after every update.
    env_kwargs : dict, optional
        Passed to ``gymnasium.make_vec`` (ignored when ``env`` is already built).
    policy_kwargs : dict, optional
        SB3's MlpPolicy options: ``net_arch`` (a list for both networks or ``dict(pi=[...],
        vf=[...])``), ``activation_fn`` (tanh or relu, by name or as ``torch.nn.Tanh``/``ReLU``),
        ``ortho_init``, ``log_std_init`` (the hyperparameters of the same meaning).
    tensorboard_log : path, optional
        Write TensorBoard event files of the metrics under this folder, one subfolder per run
        (``<tb_log_name>_<N>``, as SB3; needs ``refrl[tensorboard]``).  Not saved in a checkpoint:
        set the attribute again on a loaded agent.
    distributed : bool or None
        Data-parallel training over MPI ranks (docs/distributed.md): None (default) joins the
        ranks when an MPI launcher started several processes, False trains this process alone,
        True asks for MPI.  ``self.comm`` is the communicator; with one process every
        synchronisation point is the identity and the run is exactly the one-process run.
    **hyperparameters
        Fields of ``config_class`` (SB3 names).  Unknown names raise ``TypeError``; invalid
        values ``ValueError``/``TypeError`` naming the field, before anything else is built.
    """

    config_class: ClassVar[type[OnPolicyConfig]] = OnPolicyConfig
    algo_name: ClassVar[str] = "on_policy"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Append the hyperparameter list (from ``config_class``: names, defaults, meaning) to the
        class docstring, so that ``help(refrl.PPO)`` shows them and cannot go stale."""
        super().__init_subclass__(**kwargs)
        head = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        cls.__doc__ = f"{head}\n\n{cls.config_class.parameters_doc()}"

    def __init__(
        self,
        policy: str | gym.Env | VectorEnv | None = None,
        env: str | gym.Env | VectorEnv | None = None,
        *,
        seed: int = 0,
        verbose: int = 0,
        env_kwargs: dict[str, Any] | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | Path | None = None,
        distributed: bool | None = None,
        **hyperparameters: Any,
    ) -> None:
        self.comm = world(distributed)
        self._check_same_start(policy, env, seed, env_kwargs, policy_kwargs, hyperparameters)
        env = _policy_and_env(policy, env)
        for key, value in from_policy_kwargs(policy_kwargs).items():
            if key in hyperparameters:
                raise TypeError(f"policy_kwargs: {key!r} is also given as a hyperparameter; give it once")
            hyperparameters[key] = value
        if isinstance(env, VectorEnv):
            hyperparameters.setdefault("n_envs", env.num_envs)  # as SB3, the VectorEnv decides
            if hyperparameters["n_envs"] != env.num_envs:
                raise ValueError(f"n_envs: the VectorEnv has {env.num_envs} envs but n_envs={hyperparameters['n_envs']}")
        self.config = self.config_class.from_kwargs(**hyperparameters)  # validates before any work
        self.seed = _check_seed(seed)
        with self.comm.guard():  # rank 0 alone writes TensorBoard files; a missing writer there stops every rank
            if tensorboard_log is not None and self.comm.is_root:
                require_writer()  # the missing extra is named now, not at learn()
        self.tensorboard_log = tensorboard_log
        cfg = self.config
        health.check_memory(cfg, obs_dim=1, act_dim=1)  # what the spaces cannot make smaller, before any env
        self.env_kwargs = dict(env_kwargs or {})
        self.env_id = env if isinstance(env, str) else getattr(getattr(env, "spec", None), "id", None)
        with self.comm.guard():  # an env that fails to build on one rank stops every rank
            self.env = make_vec_env(env, cfg.n_envs, vectorization_mode=cfg.vectorization_mode,
                                    env_kwargs=self.env_kwargs)
        if self.comm.is_distributed and cfg.vectorization_mode == "async" and self.comm.is_root:
            warnings.warn("vectorization_mode='async' under MPI forks subprocesses from MPI ranks, which can hang "
                          "some MPI transports; the ranks are the parallelism (use 'auto' or 'sync')",
                          RuntimeWarning, stacklevel=2)
        self.observation_space = self.env.single_observation_space
        if cfg.normalize_obs:  # what the policy sees (the space gymnasium's NormalizeObservation declares)
            if not isinstance(self.observation_space, gym.spaces.Box):
                self.env.close()
                raise ValueError(f"normalize_obs: observation normalisation needs a Box observation space, got "
                                 f"{self.observation_space!r} (its one-hot / bit encoding is already in [0, 1])")
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, self.observation_space.shape, np.float32)
        self.action_space = self.env.single_action_space
        try:
            health.check_memory(cfg, obs_dim=gym.spaces.flatdim(self.observation_space),
                                act_dim=gym.spaces.flatdim(self.action_space))
        except ValueError:
            self.env.close()
            raise
        init_seq, act_seq = np.random.SeedSequence(self.seed).spawn(2)
        self.policy = ActorCritic(
            self.observation_space, self.action_space, net_arch=cfg.net_arch, vf_net_arch=cfg.vf_net_arch,
            activation=cfg.activation,
            ortho_init=cfg.ortho_init, log_std_init=cfg.log_std_init, dtype=np.dtype(cfg.dtype),
            rng=np.random.default_rng(init_seq),
        )
        self.rng = np.random.default_rng(rank_seed_sequence(act_seq, self.comm.rank, self.comm.size))  # per rank
        # observation / reward normalisation (refrl.normalization): statistics frozen within a rollout,
        # updated from its raw observations and rewards once it is complete (every rank's, merged exactly)
        self._obs_rms = RunningMeanStd(self.observation_space.shape) if cfg.normalize_obs else None
        self._reward_normalizer = (RewardNormalizer(cfg.n_envs, cfg.gamma, clip=cfg.clip_reward, epsilon=EPSILON)
                                   if cfg.normalize_reward else None)
        self.buffer = RolloutBuffer.allocate(cfg.n_steps, cfg.n_envs, self.observation_space, self.action_space, cfg.dtype,
                                             raw_obs=cfg.normalize_obs)
        self.collector: RolloutCollector | None = None
        self.logger = Logger(verbose=verbose if self.comm.is_root else 0)  # rank 0 alone reports
        self.num_timesteps = 0
        self.total_timesteps = 0
        self.iteration = 0
        self.progress_remaining = 1.0
        self.max_abs_reward = 0.0  # the largest |reward| seen in a rollout (the health guard's reward scale)
        self._warned_unchanged = False
        self._episode_window: tuple[np.ndarray, np.ndarray] | None = None  # all ranks' episodes (MPI)
        self._rollout_steps = 0  # this rank's real transitions so far in a rollout with a callback
        self._setup()
        self._synchronise()

    # ------------------------------------------------------------------ hooks for subclasses
    def _setup(self) -> None:
        """Build optimisers and other state that depends on the policy (override)."""

    def train(self) -> None:
        """One update from the filled buffer (override)."""
        raise NotImplementedError

    def _optimizers(self) -> dict[str, Adam]:
        """The optimisers to checkpoint, by array prefix ("optim", "critic_optim"; override)."""
        return {}

    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and JSON metadata to save besides policy/optimisers/normalisation/rng (override)."""
        return {}, {}

    def _load_extra_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore what ``_extra_state`` saved (override)."""

    # ------------------------------------------------------------------ data-parallel (refrl.distributed)
    def _check_same_start(self, policy, env, seed, env_kwargs, policy_kwargs, hyperparameters: dict[str, Any]) -> None:
        """Every rank must be started with the same algorithm, env, seed and hyperparameters
        (compared by hash before anything is validated or built, so that no rank can fail alone)."""
        def name(e):
            return e if e is None or isinstance(e, str) else getattr(getattr(e, "spec", None), "id", None)

        self.comm.check_config({"algo": self.algo_name, "policy": name(policy), "env": name(env), "seed": seed,
                                "env_kwargs": env_kwargs or {}, "policy_kwargs": policy_kwargs or {},
                                "hyperparameters": hyperparameters})

    def _synchronise(self) -> None:
        """Parameters and optimiser moments <- rank 0's (after construction and after load).  From
        then on every rank applies the same averaged steps, so they stay identical without syncing."""
        self.comm.broadcast_(self.policy.params)
        for optimizer in self._optimizers().values():
            self.comm.broadcast_(optimizer.m)
            self.comm.broadcast_(optimizer.v)

    def _gathered(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every rank's 1-D arrays concatenated in rank order (one process: the arrays themselves)."""
        if not self.comm.is_distributed:
            return arrays
        return tuple(self.comm.concat(np.asarray(a, dtype=np.float64).reshape(-1)) for a in arrays)

    def _average_gradient(self, grads: np.ndarray, weight: float, stats: np.ndarray | None = None):
        """Σ_r W_r g_r / Σ_r W_r over the ranks in place on ``grads`` (and the minibatch's weighted-mean
        ``stats`` in the same allreduce), before clipping and the optimiser step; returns
        ``(Σ_r W_r, stats)``.  One process: nothing changes."""
        return self.comm.average_(grads, weight, stats)

    # ------------------------------------------------------------------ the iteration
    def collect_rollouts(self, callback: BaseCallback | None = None) -> int | None:
        """Fill ``self.buffer``; return the number of real transitions collected.

        With a ``callback``, its ``on_step`` is called after every vector step, with ``num_timesteps``
        counting the real transitions so far; when it returns False the rollout stops there, None is
        returned and the episodes are cut (the next rollout resets the env).  The policy acts on
        observations normalised with the statistics as they were before this rollout; collection is
        local to the rank (no collective call: ``update_normalization`` merges the statistics after it)."""
        if self.collector is None:
            # First reset: the seed itself; after a load/resume a different but fixed one.
            reset_seed = self.seed if self.num_timesteps == 0 else self.seed + 7919 * (self.iteration + 1)
            reset_seed = rank_seed(reset_seed, self.comm.rank, self.comm.size)  # never the same episodes on two ranks
            self.collector = self._new_collector(reset_seed)
        if callback is None:
            return self.collector.collect(self.rng)
        start, ranks = self.num_timesteps, self.comm.size
        self._rollout_steps = 0

        def on_step(n_real: int, step_locals: dict[str, Any]) -> bool:
            self._rollout_steps = n_real
            self.num_timesteps = start + ranks * n_real  # several ranks: this rank's steps stand for each rank's
            step_locals["self"] = self
            callback.update_locals(step_locals)
            return callback.on_step()

        n = self.collector.collect(self.rng, on_step)
        if n is None:
            self.collector = None
        return n

    def _new_collector(self, seed: int | None) -> RolloutCollector:
        """A collector on new episodes (env reset): the reward normaliser's running returns restart too."""
        if self._reward_normalizer is not None:
            self._reward_normalizer.accumulated[:] = 0.0
        return RolloutCollector(self.env, self.policy, self.buffer, seed=seed, stats_window=self.config.stats_window,
                                obs_filter=None if self._obs_rms is None else self.normalize_obs)

    def update_normalization(self) -> None:
        """The normalisation statistics updated from the rollout just collected, one call each (every
        rank's data merged exactly through ``self.comm``: one collective), and its rewards scaled."""
        buf, comm = self.buffer, self.comm
        # reset slots (their observation is the previous episode's final one) weigh 0; a NaN or inf
        # makes the statistics non-finite, which the health guard reports (never a raise between collectives)
        if self._obs_rms is not None:
            self._obs_rms.update(buf.raw_obs, buf.valid, comm=comm, check_finite=False)
        if self._reward_normalizer is not None:
            scaled = self._reward_normalizer(buf.raw_rewards, buf.terminated, buf.valid, comm=comm, check_finite=False)
            np.multiply(scaled, buf.valid, out=buf.rewards, casting="unsafe")

    def _warm_up_normalization(self) -> None:
        """With observation normalisation and no statistics yet (a new agent), one warm-up rollout before
        the first update: collected with the identity normalisation, used only for the statistics, and
        counted in ``num_timesteps`` (it is environment interaction; callbacks do not see it); see
        docs/design.md."""
        with self.comm.guard():
            n_real = self.collect_rollouts()
        self.update_normalization()
        self.num_timesteps += self.comm.sum_int(n_real)

    def _stop_mid_rollout(self, rollout_start: int, n_real: int | None) -> None:
        """A callback's ``on_step`` stopped training during the rollout (on one rank or several): the
        rollout is dropped and its episodes are cut on every rank; ``num_timesteps`` counts the steps
        every rank took (with one process: the steps up to the stop, as ``collect_rollouts`` left it)."""
        steps = self._rollout_steps if n_real is None else n_real
        self.num_timesteps = rollout_start + self.comm.sum_int(steps)
        self.collector = None

    def compute_advantages(self) -> None:
        """GAE (refrl.kernels.gae) into ``buffer.advantages`` / ``buffer.returns``.

        NEXT_STEP reset slots are not transitions: their advantage is set to 0 and their
        return to their value, so that they are inert even before their weight 0 applies.
        """
        buf, cfg = self.buffer, self.config
        adv, ret = kernels.gae(buf.rewards, buf.values, buf.next_values, buf.terminated, buf.truncated,
                               cfg.gamma, cfg.gae_lambda)
        np.multiply(adv, buf.valid, out=buf.advantages)
        np.copyto(buf.returns, np.where(buf.valid, ret, buf.values))

    def flat_batch(self) -> RolloutBatch:
        """The buffer as ``[T*N]`` arrays (views, no copies; weights as the policy dtype)."""
        buf = self.buffer
        B = buf.n_steps * buf.n_envs
        return RolloutBatch(
            obs=buf.obs.reshape(B, *buf.obs.shape[2:]),
            actions=buf.actions.reshape(B, *buf.actions.shape[2:]),
            logp=buf.logp.reshape(B),
            values=buf.values.reshape(B),
            advantages=buf.advantages.reshape(B),
            returns=buf.returns.reshape(B),
            weights=buf.valid.reshape(B).astype(buf.logp.dtype),
        )

    def real_transitions(self, normalize_advantage: bool) -> RolloutBatch | None:
        """The flat batch restricted to real transitions (NEXT_STEP reset slots dropped, so they are
        in no mean), advantages standardised over it when asked (torch's unbiased std, as
        sb3-contrib's TRPO); None when the rollout holds no real transition.  For the full-batch
        algorithms (TRPO/NPG, VPG); PPO keeps the weights and normalises per minibatch instead."""
        b = self.flat_batch()
        idx = np.flatnonzero(b.weights > 0)
        n_real = self.comm.sum_int(idx.size)  # over all ranks
        if n_real == 0:
            return None
        if not self.comm.all(idx.size > 0):  # (n_steps >= 2 guarantees real transitions on every rank)
            raise self.comm.synchronised(ValueError(
                "n_steps: a rank collected no real transition (every slot a reset step); with several MPI "
                "ranks the full-batch algorithms need n_steps >= 2"))
        adv = b.advantages[idx]
        if normalize_advantage and n_real > 1:
            (every,) = self._gathered(adv)  # the statistics of all ranks' advantages
            adv = ((adv - every.mean()) / (every.std(ddof=1) + 1e-8)).astype(adv.dtype, copy=False)
        return RolloutBatch(obs=b.obs[idx], actions=b.actions[idx], logp=b.logp[idx], values=b.values[idx],
                            advantages=adv, returns=b.returns[idx], weights=b.weights[idx])

    def learn(
        self,
        total_timesteps: int,
        callback: Callback | None = None,
        progress_bar: bool = False,
        log_interval: int = 1,
        reset_num_timesteps: bool = True,
        tb_log_name: str | None = None,
    ) -> Self:
        """Train for ``total_timesteps`` real transitions (reset slots are not counted); returns self.

        ``callback``: a :class:`refrl.callbacks.BaseCallback` (SB3's hooks: ``_on_step`` after every
        vector step that holds a transition, returning False stops training at once), a list of them, or a function
        ``agent -> bool | None`` called after every iteration (rollout + update), returning
        ``False`` to stop after it.  Values the callbacks record (``self.logger.record``) are in
        the metrics row of the update they belong to.  ``progress_bar`` uses tqdm when installed (``refrl[progress]``),
        otherwise prints a status line every 2 s.  With ``reset_num_timesteps=False`` training
        continues the step count and the learning-rate schedule (SB3 semantics: the budget is
        ``num_timesteps + total_timesteps``).  With ``tensorboard_log`` set, the metrics also go to
        ``tensorboard_log/<tb_log_name>_<N>`` (default name: the class name, ``PPO``): a new folder
        for a fresh run, the newest one when ``reset_num_timesteps=False`` (refrl.tensorboard).
        """
        if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, (int, np.integer)):
            raise TypeError(f"total_timesteps: expected an integer, got {total_timesteps!r}")
        if total_timesteps < 1:
            raise ValueError(f"total_timesteps: must be >= 1, got {total_timesteps}")
        if isinstance(log_interval, bool) or not isinstance(log_interval, int) or log_interval < 1:
            raise ValueError(f"log_interval: expected an integer >= 1, got {log_interval!r}")
        callbacks = make_callback(callback)  # TypeError naming callback, before any work
        if reset_num_timesteps:
            self.num_timesteps, self.iteration = 0, 0
            self.total_timesteps = int(total_timesteps)
            if self.collector is not None:  # a fresh run: new episodes (seeded only once, as SB3)
                self.collector = self._new_collector(None)
        else:
            self.total_timesteps = self.num_timesteps + int(total_timesteps)
        tensorboard = None
        with self.comm.guard():  # rank 0 alone writes the event files; its failure stops every rank
            if self.tensorboard_log is not None and self.comm.is_root:
                folder = run_folder(self.tensorboard_log, tb_log_name or type(self).__name__, new=reset_num_timesteps)
                purge_step = None if reset_num_timesteps else self.num_timesteps + 1
                tensorboard = TensorBoardOutput(folder, purge_step=purge_step)
        if tensorboard is None:
            return self._learn_loop(callbacks, progress_bar, log_interval)
        self.logger.outputs.append(tensorboard)
        try:
            return self._learn_loop(callbacks, progress_bar, log_interval)
        finally:
            self.logger.outputs.remove(tensorboard)
            tensorboard.close()

    def _learn_loop(self, callback: BaseCallback | None, progress_bar: bool, log_interval: int) -> Self:
        # Under MPI the callbacks may differ between ranks (an evaluation on rank 0 alone): every call of
        # theirs sits in a guarded region, and each decision to stop is agreed (comm.any) by every rank.
        with self.comm.guard():
            if callback is not None:
                callback.init_callback(self)
                callback.on_training_start({"self": self, "total_timesteps": self.total_timesteps}, {})
        start_time, start_steps = time.perf_counter(), self.num_timesteps
        root = self.comm.is_root  # rank 0 alone shows progress
        progress = Progress(self.total_timesteps, self.num_timesteps, progress_bar and root,
                            heartbeat=self.logger.verbose > 0 and root)
        guard = self.config.health_check
        with blas_threads(), contextlib.ExitStack() as stack, self.comm.abort_on_error():
            stack.callback(progress.close)
            while self.num_timesteps < self.total_timesteps:
                healthy = self._healthy_state() if guard else None
                if self._obs_rms is not None and self._obs_rms.count == 0:
                    progress.phase("collecting the normalisation warm-up rollout")
                    self._warm_up_normalization()
                    if guard:  # before the next rollout acts on them
                        self._check_statistics(healthy)
                progress.phase(f"collecting rollout {self.iteration + 1}")
                rollout_start = self.num_timesteps
                with self.comm.guard():  # an env or callback that fails on one rank stops every rank with its error
                    if callback is not None:
                        callback.on_rollout_start()
                    n_real = self.collect_rollouts(callback)
                if self.comm.any(n_real is None):  # a callback's on_step stopped training (on any rank)
                    self._stop_mid_rollout(rollout_start, n_real)  # no update on a partial rollout
                    break
                self.update_normalization()
                self.num_timesteps = rollout_start + self.comm.sum_int(n_real)  # over all ranks: schedules agree
                # SB3's convention: schedules see the progress after this rollout's steps.
                self.progress_remaining = max(0.0, 1.0 - self.num_timesteps / self.total_timesteps)
                for name in self.config.schedules():  # a bad schedule value: ValueError naming it, not a divergence
                    self.config.scheduled(name, self.progress_remaining)
                self.compute_advantages()
                if guard:
                    self._check_rollout(healthy)
                with self.comm.guard():
                    if callback is not None:
                        callback.on_rollout_end()
                progress.phase(f"update {self.iteration + 1}")
                try:
                    self.train()
                except ValueError as exc:  # a non-finite value the update's own checks met
                    if not guard or self.comm.is_distributed:  # (several ranks: met mid-update, cannot agree)
                        raise
                    self._diverged(healthy, f"a non-finite value stopped the update ({exc})", exc)
                if guard:
                    self._check_update(healthy)
                self.comm.check_identical(self.policy.params, "the policy parameters after the update")
                self.iteration += 1
                elapsed = max(time.perf_counter() - start_time, 1e-9)
                fps = (self.num_timesteps - start_steps) / elapsed
                self._gather_episodes()
                ep_rew = self.ep_rew_mean
                progress.update(self.num_timesteps, fps, ep_rew)
                with self.comm.guard():  # e.g. rank 0 failing to write a checkpoint or an event file stops every rank
                    stop = callback is not None and not callback.on_update_end()  # before the row: records go in it
                    if self.iteration % log_interval == 0:
                        if ep_rew is not None:
                            self.logger.record("rollout/ep_rew_mean", ep_rew)
                            self.logger.record("rollout/ep_len_mean", self._ep_len_mean())
                        self.logger.record("time/fps", fps)
                        self.logger.record("time/iterations", self.iteration)
                        self.logger.record("time/time_elapsed", elapsed)
                        self.logger.dump(self.num_timesteps)
                if self.comm.any(stop):  # one rank asks (a callback, a signal): every rank stops here
                    break
        with self.comm.guard():
            if callback is not None:
                callback.on_training_end()
        return self

    # ------------------------------------------------------------------ the health guard (refrl.health)
    def _healthy_state(self) -> dict[str, Any]:
        """What a divergence restores: parameters, optimiser state, normalisation statistics, the
        algorithm's extra state and the step counters (copies; a few vectors per update)."""
        state: dict[str, Any] = {"params": self.policy.params.copy(), "num_timesteps": self.num_timesteps,
                                 "iteration": self.iteration, "extra": self._extra_state(),
                                 "optim": {p: (o.m.copy(), o.v.copy(), o.t) for p, o in self._optimizers().items()}}
        for name, rms in (("obs_rms", self.obs_rms), ("return_rms", self.return_rms)):
            if rms is not None:
                state[name] = (np.copy(rms.mean), np.copy(rms.var), rms.count)
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        self.policy.params[...] = state["params"]
        self.num_timesteps, self.iteration = state["num_timesteps"], state["iteration"]
        for prefix, optimizer in self._optimizers().items():
            m, v, t = state["optim"][prefix]
            optimizer.m[...], optimizer.v[...], optimizer.t = m, v, t
        for name, rms in (("obs_rms", self.obs_rms), ("return_rms", self.return_rms)):
            if rms is not None:
                rms.mean, rms.var, rms.count = state[name]
        self._load_extra_state(*state["extra"])

    def _diverged(self, healthy: dict[str, Any], problem: str, cause_exc: BaseException | None = None) -> None:
        """Restore the last healthy update and raise TrainingDiverged naming ``problem`` and its likely cause."""
        rms = self.obs_rms
        max_obs = None if rms is None else health.max_abs(np.asarray(rms.mean))
        cause = health.likely_cause(problem, config=self.config, max_reward_seen=self.max_abs_reward,
                                    max_obs_seen=max_obs)
        update, steps = self.iteration + 1, self.num_timesteps
        self._restore(healthy)
        raise self.comm.synchronised(TrainingDiverged(
            f"{self.algo_name.upper()} diverged in update {update} (at {steps} steps): {problem}. Likely cause: "
            f"{cause}. The agent holds its last healthy parameters ({self.num_timesteps} steps); "
            "health_check=False turns the check off",
            update=update, num_timesteps=self.num_timesteps,
        )) from cause_exc

    def _check_statistics(self, healthy: dict[str, Any]) -> None:
        """The warm-up rollout's statistics, checked on every rank before a policy acts on them."""
        problem = self.comm.agree(health.statistics_problem({"obs_rms": self.obs_rms, "return_rms": self.return_rms}))
        if problem is not None:
            self._diverged(healthy, problem)

    def _check_rollout(self, healthy: dict[str, Any]) -> None:
        buf = self.buffer
        self.max_abs_reward = max(self.max_abs_reward, health.max_abs(buf.rewards))
        problem = health.statistics_problem({"obs_rms": self.obs_rms, "return_rms": self.return_rms})
        problem = problem or health.rollout_problem(
            {"rewards": buf.rewards, "values": buf.values, "returns": buf.returns, "advantages": buf.advantages},
            buf.rewards.dtype, max_reward_seen=self.max_abs_reward, gamma=self.config.gamma)
        problem = self.comm.agree(problem)  # a problem on any rank stops every rank
        if problem is not None:
            self._diverged(healthy, problem)

    def _check_update(self, healthy: dict[str, Any]) -> None:
        params = self.policy.params
        problem = self.comm.agree(
            health.update_problem(params, self.logger.pending(), max_param_norm=self.config.max_param_norm))
        if problem is not None:
            self._diverged(healthy, problem)
        annealed_to_zero = any(o.lr == 0.0 for o in self._optimizers().values())  # anneal_lr's last update
        if (not self._warned_unchanged and not annealed_to_zero and self.comm.is_root
                and np.array_equal(params, healthy["params"])):
            self._warned_unchanged = True
            warnings.warn(
                f"{self.algo_name.upper()}: update {self.iteration + 1} left every parameter bit-identical "
                "(zero gradients: constant rewards, or steps below the parameters' float resolution; "
                "reported once)", RuntimeWarning, stacklevel=3)

    @property
    def ep_rew_mean(self) -> float | None:
        """Mean raw return of the last ``stats_window`` finished episodes (None before the first);
        with several ranks, of every rank's last ``stats_window`` episodes (as of the last iteration)."""
        if self.comm.is_distributed:
            window = self._episode_window
            return None if window is None or window[0].size == 0 else float(np.mean(window[0]))
        if self.collector is None or not self.collector.episodes.returns:
            return None
        return float(np.mean(self.collector.episodes.returns))

    def _ep_len_mean(self) -> float:
        lengths = self.collector.episodes.lengths if self._episode_window is None else self._episode_window[1]
        return float(np.mean(lengths))

    def _gather_episodes(self) -> None:
        """Several ranks: every rank's recent episodes (returns, lengths), for the rollout statistics."""
        if self.comm.is_distributed:
            episodes = self.collector.episodes
            self._episode_window = self._gathered(np.array(episodes.returns), np.array(episodes.lengths))

    # ------------------------------------------------------------------ acting
    @property
    def obs_rms(self) -> RunningMeanStd | None:
        """The running observation statistics (refrl.normalization; None without normalize_obs)."""
        return self._obs_rms

    @property
    def return_rms(self) -> RunningMeanStd | None:
        """The running discounted-return statistics (None without normalize_reward)."""
        return None if self._reward_normalizer is None else self._reward_normalizer.return_rms

    def normalize_obs(self, obs: np.ndarray) -> np.ndarray:
        """The observation normalisation of training, in the policy dtype (statistics not updated):
        ``clip((obs − mean) / √(var + ε), ±clip_obs)``; ``obs`` unchanged without normalize_obs."""
        if self._obs_rms is None:
            return obs
        return self._obs_rms.normalize(obs, clip=self.config.clip_obs, epsilon=EPSILON, dtype=self.policy.dtype)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = False, rng: np.random.Generator | None = None) -> tuple[np.ndarray, Any]:
        """Action(s) for raw environment observation(s), as SB3: ``(action, state)``.

        ``observation`` is one observation (``observation_space.shape``) or a batch ``[B, *shape]`` (a
        Dict space: a dict of them), as the environment gives it; observation normalisation is applied
        with the saved statistics; Box actions are clipped to the bounds.  Actions are sampled unless
        ``deterministic=True`` (SB3's default); stochastic actions use ``rng`` (default: the agent's).
        ``state`` and ``episode_start`` are SB3's recurrent-policy arguments: the MLP policy has no
        state, ``state`` is returned as given (None).
        """
        o, single = self.policy.obs_batch(observation)  # Discrete, MultiDiscrete, MultiBinary, Dict: encoded by the policy
        shape = self.observation_space.shape
        if not single and shape is not None and o.shape[1:] != shape:
            batch = f"(B, {', '.join(map(str, shape))})" if shape else "(B,)"
            raise ValueError(f"predict: 'obs' must have shape {shape} or {batch}, got {o.shape}")
        actions, _, _ = native.act(self.policy, self.normalize_obs(o), rng or self.rng, deterministic=deterministic)
        actions = self.policy.clip_actions(actions)
        return (actions[0] if single else actions), state

    # ------------------------------------------------------------------ the environment
    def get_env(self) -> VectorEnv:
        """The vector environment training collects from (raw observations and rewards: the agent normalises)."""
        return self.env

    def set_env(self, env: str | gym.Env | VectorEnv, force_reset: bool = True) -> None:
        """Collect from ``env`` from now on (SB3's set_env).  Its spaces and number of environments
        must be the agent's; an env id or a gymnasium.Env is vectorised as in the constructor; the
        running normalisation statistics (the agent's) carry over.  The next rollout starts new episodes
        (``force_reset`` is accepted for SB3 scripts: refrl always resets).  The old env is not closed."""
        cfg = self.config
        n_envs = env.num_envs if isinstance(env, VectorEnv) else cfg.n_envs
        if n_envs != cfg.n_envs:
            raise ValueError(f"env: has {n_envs} envs but the agent was built for n_envs={cfg.n_envs}")
        new = make_vec_env(env, n_envs, vectorization_mode=cfg.vectorization_mode, env_kwargs=self.env_kwargs)
        raw_space = self.env.single_observation_space  # the env's own (the policy's, unless normalize_obs)
        if new.single_observation_space != raw_space or new.single_action_space != self.action_space:
            if new is not env:
                new.close()
            raise ValueError(f"env: its spaces {new.single_observation_space} -> {new.single_action_space} are not "
                             f"the agent's {raw_space} -> {self.action_space}")
        self.env = new  # the normalisation statistics are the agent's: they carry over as they are
        self.env_id = env if isinstance(env, str) else getattr(getattr(env, "spec", None), "id", None)
        self.collector = None

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write a checkpoint (``.npz`` + JSON, atomic, no pickle): policy, optimiser, normalisation
        statistics, rng state, step counters and the full configuration.  Returns the path.

        With several MPI ranks, rank 0 alone writes (the state is the same on every rank but the
        rng's); the other ranks return the path without writing."""
        if not self.comm.is_root:
            path = Path(path)
            return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
        arrays: dict[str, np.ndarray] = {f"policy/{k}": np.asarray(v) for k, v in self.policy.state_dict().items()}
        for name, rms in (("obs_rms", self.obs_rms), ("return_rms", self.return_rms)):
            if rms is not None:
                if not (np.isfinite(rms.mean).all() and np.isfinite(rms.var).all() and math.isfinite(rms.count)):
                    raise ValueError(f"save: the normalisation statistics {name} hold NaN or inf (inputs too large "
                                     "to normalise); refusing to write a checkpoint whose policy would be blind")
                arrays.update({f"{name}/{k}": v for k, v in rms.state_dict().items()})  # mean, var, count (float64)
        extra_meta: dict[str, Any] = {}
        for prefix, optimizer in self._optimizers().items():
            state = optimizer.state_dict()
            arrays[f"{prefix}/m"], arrays[f"{prefix}/v"] = state.pop("m"), state.pop("v")
            extra_meta[prefix] = {k: float(v) for k, v in state.items()}  # t, lr, beta1, beta2, eps
        algo_arrays, algo_meta = self._extra_state()
        arrays.update(algo_arrays)
        extra_meta.update(algo_meta)
        meta = {
            "algo": self.algo_name,
            "config": self.config.to_dict(),
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
            "total_timesteps": self.total_timesteps,
            "iteration": self.iteration,
            "policy": self.policy.config(),
            "rng_state": self.rng.bit_generator.state,
            "extra": extra_meta,
        }
        if self.config.schedules():  # a function is not saved (no pickle): its start value is, and its name here
            meta["schedules"] = self.config.schedules()
        return save_checkpoint(path, arrays, meta)

    @classmethod
    def load(cls, path: str | Path, env: str | gym.Env | VectorEnv | None = None, *, verbose: int = 0,
             custom_objects: dict[str, Any] | None = None, distributed: bool | None = None) -> Self:
        """Rebuild an agent from ``save``: same configuration, parameters, optimiser state,
        normalisation statistics, rng state and step counters.  ``env`` defaults to the saved id.
        ``custom_objects`` replaces saved hyperparameters (as SB3's: e.g. a learning-rate schedule,
        which a checkpoint holds as its start value only).
        The checkpoint must be this algorithm's (``refrl.algos.load`` reads any)."""
        arrays, meta = load_checkpoint(path)
        if meta.get("algo") != cls.algo_name:
            raise ValueError(f"path: checkpoint is for {meta.get('algo')!r}, not {cls.algo_name!r}; use refrl.algos.load")
        return cls.from_checkpoint(arrays, meta, env, verbose=verbose, path=path, custom_objects=custom_objects,
                                   distributed=distributed)

    @classmethod
    def from_checkpoint(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any],
                        env: str | gym.Env | VectorEnv | None = None, *, verbose: int = 0,
                        path: str | Path = "checkpoint", custom_objects: dict[str, Any] | None = None,
                        distributed: bool | None = None) -> Self:
        """Rebuild an agent of this class from the ``(arrays, meta)`` of
        ``refrl.serialization.load_checkpoint`` (what ``load`` does after reading the file).
        ``path`` names the file in a :class:`CheckpointError` (a missing or invalid entry).
        Under MPI every rank loads the same file; rank 0's parameters and optimiser state are then
        broadcast, and ranks other than 0 draw actions from their own stream."""
        check_checkpoint_meta(path, meta)
        if env is None:
            env = meta.get("env_id")
            if env is None:
                raise ValueError("env: the checkpoint was trained on an env without an id; pass env=...")
        config = dict(meta["config"])
        config.pop("use_native_step", None)  # retired TRPO/NPG option of older checkpoints (one step path now)
        custom = dict(custom_objects or {})
        unknown = sorted(set(custom) - set(cls.config_class.field_names()))
        if unknown:
            raise TypeError(f"custom_objects: unknown hyperparameter(s) {unknown}")
        lost = [name for name in meta.get("schedules") or [] if name not in custom]
        if lost:
            warnings.warn(f"{cls.algo_name.upper()}.load: {', '.join(lost)} was a schedule when saved; the checkpoint "
                          f"holds its start value ({', '.join(f'{n}={config[n]}' for n in lost)}), used as a constant "
                          "now; pass custom_objects={name: schedule} to train on with the schedule",
                          UserWarning, stacklevel=3)
        config.update(custom)
        agent = cls(env, seed=meta["seed"], verbose=verbose, env_kwargs=meta.get("env_kwargs") or {},
                    distributed=distributed, **config)
        if agent.policy.config() != meta["policy"]:
            raise ValueError(
                f"env: its spaces do not match the checkpoint's policy "
                f"(saved {meta['policy']['observation_space']} -> {meta['policy']['action_space']})"
            )
        # Everything this agent saves is required (optimiser state included): a file missing any of it is refused.
        required = [f"policy/{k}" for k in agent.policy.state_dict()] + list(agent._extra_state()[0])
        required += [f"{prefix}/{k}" for prefix in agent._optimizers() for k in ("m", "v")]
        required += [f"{name}/{k}" for name, rms in (("obs_rms", agent.obs_rms), ("return_rms", agent.return_rms))
                     if rms is not None for k in ("mean", "var", "count")]
        missing = [k for k in required if k not in arrays]
        if missing:
            raise CheckpointError(path, f"damaged: missing array(s) {', '.join(missing)}")
        for k in required:
            if k.startswith(("obs_rms/", "return_rms/")) and not np.isfinite(arrays[k]).all():
                raise CheckpointError(path, f"invalid: the normalisation statistics {k} hold NaN or inf")
        try:
            agent.policy.load_state_dict({k[len("policy/"):]: v for k, v in arrays.items() if k.startswith("policy/")})
            for name, rms in (("obs_rms", agent.obs_rms), ("return_rms", agent.return_rms)):
                if rms is not None:  # the same keys and meaning as gymnasium's statistics in older checkpoints
                    rms.load_state_dict({k: arrays[f"{name}/{k}"] for k in ("mean", "var", "count")})
            agent.rng.bit_generator.state = meta["rng_state"]
            agent.num_timesteps = int(meta["num_timesteps"])
            agent.total_timesteps = int(meta["total_timesteps"])
            agent.iteration = int(meta["iteration"])
            if agent.total_timesteps:
                agent.progress_remaining = max(0.0, 1.0 - agent.num_timesteps / agent.total_timesteps)
            extra = meta.get("extra") or {}
            for prefix, optimizer in agent._optimizers().items():
                optimizer.load_state_dict({"m": arrays[f"{prefix}/m"], "v": arrays[f"{prefix}/v"], **extra.get(prefix, {})})
            agent._load_extra_state(arrays, extra)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(path, f"damaged: {type(exc).__name__}: {exc}") from None
        agent._after_load()
        return agent

    def _after_load(self) -> None:
        """Several ranks: rank 0's state everywhere; the checkpoint holds one rng state (rank 0's), so
        every other rank continues from its own stream of (seed, iteration)."""
        if self.comm.rank > 0:
            resumed = np.random.SeedSequence([self.seed, self.iteration])
            self.rng = np.random.default_rng(rank_seed_sequence(resumed, self.comm.rank, self.comm.size))
        self._synchronise()

    def close(self) -> None:
        self.env.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self.env_id!r}, seed={self.seed}, num_timesteps={self.num_timesteps})"


def check_checkpoint_meta(path, meta: dict[str, Any]) -> None:
    """The JSON document of an algorithm checkpoint has every key ``load`` reads, of the right type."""
    def is_count(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    checks = {"algo": lambda v: isinstance(v, str), "config": lambda v: isinstance(v, dict),
              "seed": lambda v: isinstance(v, int) and not isinstance(v, bool), "num_timesteps": is_count,
              "total_timesteps": is_count, "iteration": is_count, "policy": lambda v: isinstance(v, dict),
              "rng_state": lambda v: isinstance(v, dict)}
    for key, ok in checks.items():
        if key not in meta:
            raise CheckpointError(path, f"damaged: no {key!r} in its JSON document")
        if not ok(meta[key]):
            raise CheckpointError(path, f"damaged: {key!r} in its JSON document is invalid: {meta[key]!r:.80}")
    for key in ("extra", "env_kwargs"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise CheckpointError(path, f"damaged: {key!r} in its JSON document is not an object")
    schedules = meta.get("schedules")
    if schedules is not None and not (isinstance(schedules, list) and all(isinstance(n, str) and n in meta["config"]
                                                                        for n in schedules)):
        raise CheckpointError(path, f"damaged: 'schedules' in its JSON document is invalid: {schedules!r:.80}")


def fit_value_minibatches(policy, optimizer, obs: np.ndarray, returns: np.ndarray, *, n_epochs: int,
                          batch_size: int, max_grad_norm: float | None, rng: np.random.Generator,
                          comm: Any = None) -> float:
    """Fit the value network alone: ``n_epochs`` passes of Adam over shuffled minibatches of the
    squared error (V(s) − R)² (no ½), as the TRPO/VPG critics of the peers; returns the mean loss
    (NaN when no step was taken).  PPO fits V jointly with the policy instead.

    With several ranks (``comm``), each rank holds its own B_r samples and cuts its minibatches of
    ``batch_size``; every rank takes max_r ⌈B_r / batch_size⌉ steps per epoch (a rank whose samples
    ran out contributes an empty minibatch), each on the union of the ranks' minibatches: the
    gradient Σ_r n_r g_r / Σ_r n_r (one allreduce)."""
    comm = _SERIAL if comm is None else comm
    B = returns.shape[0]
    n_minibatches = comm.max_int(-(-B // batch_size))  # the same number of steps on every rank
    losses = []
    for _epoch in range(n_epochs):
        perm = rng.permutation(B)
        for i in range(n_minibatches):
            mb = perm[i * batch_size : (i + 1) * batch_size]  # empty on a rank whose samples ran out
            policy.value_grads.fill(0)
            loss = 0.0
            if mb.size:
                values, cache = policy.evaluate_values(obs[mb])
                err = values - returns[mb]
                loss = float(np.dot(err.astype(np.float64), err)) / mb.size
                policy.backward(cache, dvalues=(2.0 / mb.size) * err)
            _, stats = comm.average_(policy.value_grads, mb.size, np.array([loss]))
            losses.append(float(stats[0]))
            if max_grad_norm is not None:
                clip_grad_norm_(policy.value_grads, max_grad_norm)
            optimizer.step()
    return float(np.mean(losses)) if losses else float("nan")
