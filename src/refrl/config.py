"""Hyperparameters of every algorithm: frozen dataclasses, validated before any work starts.

:class:`OnPolicyConfig` holds what all on-policy algorithms share; :class:`PPOConfig`,
:class:`VPGConfig`, :class:`NPGConfig` and :class:`TRPOConfig` (an NPGConfig with the line
search's two fields) add each algorithm's own.  Names follow Stable-Baselines3 where SB3 has the
same meaning (n_steps, batch_size, n_epochs, gamma, gae_lambda, clip_range, clip_range_vf,
ent_coef, vf_coef, max_grad_norm, target_kl, learning_rate, normalize_advantage, n_envs); the
crosswalk to SB3, sb3-contrib, Spinning Up, CleanRL and the papers is in docs/api.md.  PPO's
defaults are SB3's (stable_baselines3/ppo/ppo.py).  Every code-level optimisation studied by
Engstrom et al. (2020), "Implementation Matters in Deep Policy Gradients", has its own switch:
``normalize_advantage``, ``clip_range_vf`` (value clipping), ``normalize_obs``,
``normalize_reward`` (reward scaling), ``ortho_init``, ``anneal_lr`` and ``max_grad_norm``.

Per-environment tuned defaults (:data:`TUNED`) are copied from RL Baselines3 Zoo,
``hyperparams/ppo.yml`` (DLR-RM/rl-baselines3-zoo at commit 208b6fdf3a9a), with the
deviations listed next to each entry (refrl has no gSDE).  One exception: Hopper uses CleanRL's
published settings (:data:`CLEANRL_MUJOCO`), since the zoo's (:data:`ZOO_HOPPER`) were measured to
stand still on Hopper-v5 in both refrl and SB3.

Each field's documentation is in its ``metadata["doc"]`` (shown by ``refrl train --help-params``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

#: A hyperparameter that may vary over training: a number, or a function of ``progress_remaining``
#: (1 at the start of training, 0 at the end; Stable-Baselines3's convention) returning it.
Schedule = Union[float, Callable[[float], float]]

__all__ = [
    "CLEANRL_MUJOCO", "TUNED", "ZOO_HOPPER", "NPGConfig", "OnPolicyConfig", "PPOConfig", "Schedule", "TRPOConfig",
    "VPGConfig", "from_policy_kwargs", "tuned_defaults",
]


def _f(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _activation_name(fn: Any) -> str:
    """``activation_fn`` of SB3's policy_kwargs -> refrl's activation name: "tanh"/"relu", or a class or
    function of that name (``torch.nn.Tanh``, ``torch.nn.ReLU``; torch itself is never imported)."""
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", None)
    if isinstance(name, str) and name.lower() in ("tanh", "relu"):
        return name.lower()
    raise ValueError(f"policy_kwargs: activation_fn must be tanh or relu (a name, or torch.nn.Tanh / torch.nn.ReLU), "
                     f"got {fn!r}")


def from_policy_kwargs(policy_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """SB3's ``policy_kwargs`` of an MlpPolicy as refrl hyperparameters: ``net_arch`` (a list for both
    networks, or ``dict(pi=[...], vf=[...])``), ``activation_fn`` (-> ``activation``), ``ortho_init``,
    ``log_std_init``.  Any other key raises TypeError naming it."""
    if policy_kwargs is None:
        return {}
    if not isinstance(policy_kwargs, Mapping):
        raise TypeError(f"policy_kwargs: expected a dict, got {type(policy_kwargs).__name__}")
    known = ("net_arch", "activation_fn", "ortho_init", "log_std_init")
    unknown = sorted(set(policy_kwargs) - set(known))
    if unknown:
        raise TypeError(f"policy_kwargs: unsupported key(s) {unknown}; refrl's MlpPolicy takes {', '.join(known)}")
    out = {k: v for k, v in policy_kwargs.items() if k != "activation_fn"}
    if "activation_fn" in policy_kwargs:
        out["activation"] = _activation_name(policy_kwargs["activation_fn"])
    return out


@dataclass(frozen=True)
class OnPolicyConfig:
    """Settings shared by every on-policy algorithm (collection, GAE, network, normalisation)."""

    algo: ClassVar[str] = "on_policy"

    n_envs: int = _f(1, "number of parallel environments N (a rollout is n_steps x n_envs transitions)")
    n_steps: int = _f(2048, "steps per environment per rollout T")
    gamma: float = _f(0.99, "discount factor γ in [0, 1]")
    gae_lambda: float = _f(0.95, "GAE λ in [0, 1] (1: Monte-Carlo advantage, 0: TD residual)")
    learning_rate: Schedule = _f(3e-4, "Adam step size (> 0), or a function of progress_remaining (1 -> 0) giving it")
    anneal_lr: bool = _f(False, "anneal the learning rate linearly to 0 over training (code-level optimisation)")
    normalize_advantage: bool = _f(True, "normalise advantages per minibatch (weighted mean/std; code-level optimisation)")
    max_grad_norm: float | None = _f(0.5, "clip the global gradient norm to this (None: no clipping)")
    normalize_obs: bool = _f(False, "normalise observations with running statistics (gymnasium NormalizeObservation)")
    normalize_reward: bool = _f(False, "scale rewards by the running std of the discounted return (gymnasium NormalizeReward)")
    clip_obs: float = _f(10.0, "clip normalised observations to ±clip_obs (only with normalize_obs)")
    clip_reward: float = _f(10.0, "clip scaled rewards to ±clip_reward (only with normalize_reward)")
    net_arch: tuple[int, ...] = _f((64, 64), "hidden layer sizes of the policy MLP, and of the value MLP unless "
                                   "vf_net_arch is set (dict(pi=[...], vf=[...]) sets both)")
    vf_net_arch: tuple[int, ...] | None = _f(None, "hidden layer sizes of the value MLP (None: the same as net_arch)")
    activation: str = _f("tanh", "hidden activation: tanh or relu")
    ortho_init: bool = _f(True, "orthogonal initialisation (gains √2 hidden, 0.01 policy head, 1 value head)")
    log_std_init: float = _f(0.0, "initial log std of the Gaussian policy (Box actions)")
    dtype: str = _f("float32", "floating point type of the networks and buffers: float32 or float64")
    vectorization_mode: str = _f("auto", "auto | vector_entry_point | sync | async (see refrl.rollout.make_vec_env)")
    stats_window: int = _f(100, "episodes averaged in rollout/ep_rew_mean and rollout/ep_len_mean")
    health_check: bool = _f(True, "stop with refrl.TrainingDiverged on non-finite or exploding losses, gradients, "
                            "parameters, values or statistics (docs/reliability.md)")
    max_param_norm: float | None = _f(1e4, "health check: the L2 norm of all parameters above this is a divergence "
                                      "(None: no limit)")
    max_memory_gb: float = _f(8.0, "refuse hyperparameters whose estimated memory exceeds this many GiB "
                              "(refrl.health.memory_estimate)")

    # ---- derived sizes
    @property
    def rollout_size(self) -> int:
        """Transitions (slots) per rollout: n_steps * n_envs."""
        return self.n_steps * self.n_envs

    # ---- validation
    #: the fields that may be a schedule (a callable of progress_remaining) instead of a number
    schedule_fields: ClassVar[tuple[str, ...]] = ("learning_rate",)

    def __post_init__(self) -> None:
        if isinstance(self.net_arch, Mapping):  # SB3's dict(pi=[...], vf=[...])
            arch = dict(self.net_arch)
            if set(arch) != {"pi", "vf"}:
                raise ValueError(f"net_arch: a dict must have exactly the keys 'pi' and 'vf', got {sorted(arch)}")
            if self.vf_net_arch is not None:
                raise ValueError("vf_net_arch: given together with net_arch=dict(pi=..., vf=...); give one of them")
            object.__setattr__(self, "net_arch", arch["pi"])
            object.__setattr__(self, "vf_net_arch", arch["vf"])
        for name in ("net_arch", "vf_net_arch"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        self._validate()

    def _validate(self) -> None:
        self._check_int("n_envs", 1)
        self._check_int("n_steps", 1)
        self._check_int("stats_window", 1)
        self._check_real("gamma", 0.0, 1.0)
        self._check_real("gae_lambda", 0.0, 1.0)
        self._check_schedule("learning_rate", "anneal_lr")
        self._check_real("max_grad_norm", 0.0, None, open_low=True, optional=True)
        self._check_real("clip_obs", 0.0, None, open_low=True)
        self._check_real("clip_reward", 0.0, None, open_low=True)
        self._check_real("log_std_init", None, None)
        self._check_real("max_param_norm", 0.0, None, open_low=True, optional=True)
        self._check_real("max_memory_gb", 0.0, None, open_low=True)
        for name in ("anneal_lr", "normalize_advantage", "normalize_obs", "normalize_reward", "ortho_init",
                     "health_check"):
            self._check_bool(name)
        for name in ("net_arch", "vf_net_arch"):
            arch = getattr(self, name)
            if arch is None and name == "vf_net_arch":
                continue
            if not isinstance(arch, tuple) or not all(_is_int(h) and h > 0 for h in arch):
                raise ValueError(f"{name}: expected a sequence of positive integers, got {arch!r}")
        self._check_choice("activation", ("tanh", "relu"))
        self._check_choice("dtype", ("float32", "float64"))
        self._check_choice("vectorization_mode", ("auto", "vector_entry_point", "sync", "async"))

    def _check_int(self, name: str, low: int) -> None:
        v = getattr(self, name)
        if not _is_int(v):
            raise TypeError(f"{name}: expected an integer, got {type(v).__name__} {v!r}")
        if v < low:
            raise ValueError(f"{name}: must be >= {low}, got {v}")

    def _check_real(self, name: str, low, high, *, open_low: bool = False, optional: bool = False) -> None:
        v = getattr(self, name)
        if v is None and optional:
            return
        if not _is_real(v):
            raise (TypeError if not isinstance(v, (int, float)) or isinstance(v, bool) else ValueError)(
                f"{name}: expected a finite number{' or None' if optional else ''}, got {v!r}"
            )
        if low is not None and (v < low or (open_low and v == low)):
            raise ValueError(f"{name}: must be {'>' if open_low else '>='} {low}, got {v}")
        if high is not None and v > high:
            raise ValueError(f"{name}: must be <= {high}, got {v}")

    def _check_schedule(self, name: str, anneal_flag: str | None) -> None:
        """A number > 0, or a callable of progress_remaining whose value at the start (1.0) is one."""
        v = getattr(self, name)
        if not callable(v):
            self._check_real(name, 0.0, None, open_low=True)
            return
        if anneal_flag is not None and getattr(self, anneal_flag) is True:
            raise ValueError(f"{anneal_flag}: {name} is already a schedule; put the annealing in the schedule "
                             f"(refrl.optim.linear_schedule) and leave {anneal_flag}=False")
        start = self.scheduled(name, 1.0)
        if start <= 0:
            raise ValueError(f"{name}: the schedule must be > 0 at the start of training, got {start} at "
                             "progress_remaining=1.0")

    def scheduled(self, name: str, progress_remaining: float, *, anneal: bool = False) -> float:
        """The value of hyperparameter ``name`` at ``progress_remaining`` (1 -> 0): ``schedule(progress_remaining)``
        for a callable, else the number (times ``progress_remaining`` when ``anneal``)."""
        v = getattr(self, name)
        if not callable(v):
            return float(v) * (progress_remaining if anneal else 1.0)
        x = v(progress_remaining)
        if not isinstance(x, numbers.Real) or isinstance(x, bool) or not math.isfinite(x) or x < 0:
            raise ValueError(f"{name}: the schedule returned {x!r} at progress_remaining={progress_remaining} "
                             "(expected a finite number >= 0)")
        return float(x)

    def _check_bool(self, name: str) -> None:
        v = getattr(self, name)
        if not isinstance(v, bool):
            raise TypeError(f"{name}: expected True or False, got {v!r}")

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        v = getattr(self, name)
        if v not in choices:
            raise ValueError(f"{name}: expected one of {choices}, got {v!r}")

    # ---- construction and (de)serialisation
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_kwargs(cls, **kwargs: Any):
        """Build from keyword arguments; unknown names raise ``TypeError`` listing the valid ones."""
        unknown = sorted(set(kwargs) - set(cls.field_names()))
        if unknown:
            raise TypeError(
                f"{cls.algo}: unknown hyperparameter(s) {unknown}; valid names: {', '.join(cls.field_names())}"
            )
        ints = {f.name for f in dataclasses.fields(cls) if f.type in ("int",)}
        floats = {f.name for f in dataclasses.fields(cls) if f.type in ("float", "float | None", "Schedule")}
        clean = {}
        for k, v in kwargs.items():
            # JSON and the command line give 3 for 3.0 and 1e5 for 100000: accept the exact ones.
            if k in floats and _is_int(v):
                v = float(v)
            elif k in ints and isinstance(v, float) and v.is_integer():
                v = int(v)
            clean[k] = v
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-able values.  A schedule is written as its value at the start of
        training, ``schedule(1.0)`` (refrl never pickles a function); :meth:`schedules` names them."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["net_arch"] = list(self.net_arch)
        if self.vf_net_arch is not None:
            d["vf_net_arch"] = list(self.vf_net_arch)
        for name in self.schedules():
            d[name] = self.scheduled(name, 1.0)
        return d

    def schedules(self) -> list[str]:
        """The names of the fields that hold a schedule (a callable) rather than a number."""
        return [name for name in self.schedule_fields if callable(getattr(self, name))]

    @classmethod
    def field_docs(cls) -> dict[str, tuple[Any, str]]:
        return {f.name: (f.default, f.metadata.get("doc", "")) for f in dataclasses.fields(cls)}

    @classmethod
    def parameters_doc(cls) -> str:
        """The hyperparameters as a numpydoc section (name, type, default, meaning), from the fields."""
        lines = [f"Hyperparameters (keyword arguments; the fields of refrl.config.{cls.__name__})",
                 "-" * 60]
        for f in dataclasses.fields(cls):
            lines.append(f"{f.name} : {f.type}, default {f.default!r}")
            lines.append(f"    {f.metadata.get('doc', '')}")
        return "\n".join(lines)


@dataclass(frozen=True)
class PPOConfig(OnPolicyConfig):
    """PPO (Schulman et al. 2017): clipped surrogate, or the adaptive KL penalty of its §4."""

    algo: ClassVar[str] = "ppo"
    schedule_fields: ClassVar[tuple[str, ...]] = ("learning_rate", "clip_range")

    batch_size: int = _f(64, "minibatch size M; must divide n_steps * n_envs and be > 1")
    n_epochs: int = _f(10, "passes K over the rollout per update")
    clip_range: Schedule = _f(0.2, "ε of the clipped surrogate (> 0), or a function of progress_remaining giving it")
    anneal_clip_range: bool = _f(False, "anneal clip_range linearly to 0 (RL Zoo's lin_0.2)")
    clip_range_vf: float | None = _f(None, "clip the value change to ±clip_range_vf (None: no value clipping)")
    ent_coef: float = _f(0.0, "entropy bonus coefficient c2 (>= 0)")
    vf_coef: float = _f(0.5, "value loss coefficient c1 (>= 0)")
    target_kl: float | None = _f(None, "stop the update early when approx KL > 1.5 * target_kl (None: never)")
    objective: str = _f("clip", "clip (L^CLIP) or kl_penalty (L^KLPEN, PPO paper §4)")
    kl_coef: float = _f(1.0, "initial β of the KL penalty (objective=kl_penalty)")
    kl_target: float = _f(0.01, "d_targ of the adaptive KL penalty (objective=kl_penalty)")
    kl_adaptive: bool = _f(True, "adapt β after each update: halve if KL < d_targ/1.5, double if KL > 1.5 d_targ")

    def _validate(self) -> None:
        super()._validate()
        self._check_int("batch_size", 2)
        self._check_int("n_epochs", 1)
        if self.rollout_size % self.batch_size != 0:
            raise ValueError(
                f"batch_size: must divide the rollout n_steps * n_envs = {self.n_steps} * {self.n_envs} = "
                f"{self.rollout_size}, got {self.batch_size}"
            )
        self._check_bool("anneal_clip_range")
        self._check_schedule("clip_range", "anneal_clip_range")
        self._check_real("clip_range_vf", 0.0, None, open_low=True, optional=True)
        self._check_real("ent_coef", 0.0, None)
        self._check_real("vf_coef", 0.0, None)
        self._check_real("target_kl", 0.0, None, open_low=True, optional=True)
        self._check_bool("kl_adaptive")
        self._check_choice("objective", ("clip", "kl_penalty"))
        self._check_real("kl_coef", 0.0, None)
        self._check_real("kl_target", 0.0, None, open_low=True)

    @property
    def n_minibatches(self) -> int:
        return self.rollout_size // self.batch_size


@dataclass(frozen=True)
class VPGConfig(OnPolicyConfig):
    """VPG: REINFORCE (Williams 1992) with an optional learned baseline and GAE advantages."""

    algo: ClassVar[str] = "vpg"

    learning_rate: Schedule = _f(3e-4, "Adam step size of the policy (> 0), or a function of progress_remaining "
                                 "giving it")
    gae_lambda: float = _f(1.0, "GAE λ with a baseline (1: G_t − V(s_t), REINFORCE with baseline); ignored without one")
    normalize_advantage: bool = _f(False, "standardise advantages over the batch (False: the literal estimator)")
    max_grad_norm: float | None = _f(None, "clip the policy (and value) gradient norm (None: no clipping)")
    use_baseline: bool = _f(True, "learn V(s) and use it as the baseline (False: plain REINFORCE with Monte-Carlo returns)")
    n_epochs: int = _f(1, "full-batch policy gradient steps per rollout (1: vanilla; more = a more aggressive step)")
    ent_coef: float = _f(0.0, "entropy bonus coefficient (>= 0)")
    vf_learning_rate: float = _f(1e-3, "Adam step size of the value function (> 0)")
    n_critic_updates: int = _f(10, "epochs of Adam minibatch steps on the value function per rollout (>= 0)")
    batch_size: int = _f(128, "minibatch size of the value-function updates")

    def _validate(self) -> None:
        super()._validate()
        self._check_bool("use_baseline")
        self._check_int("n_epochs", 1)
        self._check_real("ent_coef", 0.0, None)
        self._check_real("vf_learning_rate", 0.0, None, open_low=True)
        self._check_int("n_critic_updates", 0)
        self._check_int("batch_size", 1)


@dataclass(frozen=True)
class NPGConfig(OnPolicyConfig):
    """NPG (Kakade 2001): the step (F + λI)⁻¹g scaled to the KL radius, no line search."""

    algo: ClassVar[str] = "npg"

    learning_rate: Schedule = _f(1e-3, "Adam step size of the value function (the policy takes natural steps), or a "
                                 "function of progress_remaining giving it")
    max_grad_norm: float | None = _f(None, "clip the value-function gradient norm to this (None: no clipping, as sb3-contrib)")
    batch_size: int = _f(128, "minibatch size of the value-function (critic) updates")
    n_critic_updates: int = _f(10, "epochs of Adam minibatch steps on the value function per update (>= 0)")
    max_kl: float = _f(0.01, "trust-region radius δ: mean KL(π_old ‖ π_new) allowed per update (> 0)")
    cg_iters: int = _f(10, "conjugate-gradient iterations for (F + cg_damping·I) s = g (>= 1)")
    cg_damping: float = _f(0.1, "damping λ added to the Fisher matrix (>= 0)")
    cg_tol: float = _f(1e-10, "CG stops early when rᵀr <= cg_tol (>= 0)")
    fvp_subsample: int = _f(1, "use every k-th observation in the Fisher-vector product (sb3-contrib sub_sampling_factor)")

    def _validate(self) -> None:
        super()._validate()
        self._check_int("batch_size", 1)
        self._check_int("n_critic_updates", 0)
        self._check_real("max_kl", 0.0, None, open_low=True)
        self._check_int("cg_iters", 1)
        self._check_real("cg_damping", 0.0, None)
        self._check_real("cg_tol", 0.0, None)
        self._check_int("fvp_subsample", 1)


@dataclass(frozen=True)
class TRPOConfig(NPGConfig):
    """TRPO (Schulman et al. 2015): the natural step, then a backtracking line search on the exact
    KL and the surrogate."""

    algo: ClassVar[str] = "trpo"

    line_search_shrink: float = _f(0.8, "backtracking factor α in (0, 1): the step is multiplied by α per try")
    line_search_max_iter: int = _f(10, "tries of the backtracking line search (>= 1)")

    def _validate(self) -> None:
        super()._validate()
        v = self.line_search_shrink
        self._check_real("line_search_shrink", None, None)
        if not 0.0 < v < 1.0:
            raise ValueError(f"line_search_shrink: must be in the open interval (0, 1), got {v}")
        self._check_int("line_search_max_iter", 1)


# --------------------------------------------------------------------------------------
# Per-environment tuned defaults.  Source: RL Baselines3 Zoo, hyperparams/ppo.yml at commit
# 208b6fdf3a9a ("# Tuned" entries).  Zoo's ``lin_X`` means X annealed linearly to 0
# (anneal_lr / anneal_clip_range here); ``normalize: true`` is VecNormalize on observations
# and rewards (normalize_obs + normalize_reward here).  "steps" is the zoo's n_timesteps.
_ZOO_MUJOCO_POLICY = dict(log_std_init=-2.0, ortho_init=False, activation="relu", net_arch=(256, 256))

#: The zoo's tuned Hopper entry (hyperparams/ppo.yml, Hopper-v4 "# Tuned"; 1e6 steps).
ZOO_HOPPER: dict[str, Any] = dict(
    normalize_obs=True, normalize_reward=True, n_envs=1, batch_size=32, n_steps=512, gamma=0.999,
    learning_rate=9.80828e-05, ent_coef=0.00229519, clip_range=0.2, n_epochs=5, gae_lambda=0.99,
    max_grad_norm=0.7, vf_coef=0.835671, **_ZOO_MUJOCO_POLICY,
)

#: CleanRL's ppo_continuous_action.py (vwxyzjn/cleanrl) on top of SB3's PPO defaults, which it
#: otherwise shares (1 env x 2048 steps, 32 minibatches = batch 64, 10 epochs, lr 3e-4, γ 0.99,
#: λ 0.95, clip 0.2, ent 0, vf 0.5, max_grad_norm 0.5, (64, 64) tanh, orthogonal init):
#: NormalizeObservation + clip ±10, NormalizeReward(γ) + clip ±10, lr annealed, value clipping 0.2.
CLEANRL_MUJOCO: dict[str, Any] = dict(normalize_obs=True, normalize_reward=True, anneal_lr=True, clip_range_vf=0.2)

TUNED: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        # zoo: n_envs 8, n_steps 32, batch 256, λ 0.8, γ 0.98, 20 epochs, ent 0, lr lin_0.001, clip lin_0.2
        "CartPole-v1": dict(
            steps=100_000, n_envs=8, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
            ent_coef=0.0, learning_rate=1e-3, anneal_lr=True, clip_range=0.2, anneal_clip_range=True,
        ),
        # zoo: 4 envs, n_steps 1024, λ 0.95, γ 0.9, 10 epochs, lr 1e-3, clip 0.2, use_sde True.
        # Deviation: refrl has no gSDE (state-independent log std instead).
        "Pendulum-v1": dict(
            steps=100_000, n_envs=4, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
            learning_rate=1e-3, clip_range=0.2,
        ),
        # zoo: normalize, 16 envs, n_steps 256, λ 0.94, γ 0.99, 4 epochs, ent 0 (1e6 steps)
        "Acrobot-v1": dict(
            steps=1_000_000, normalize_obs=True, normalize_reward=True, n_envs=16, n_steps=256,
            gae_lambda=0.94, gamma=0.99, n_epochs=4, ent_coef=0.0,
        ),
        # zoo: normalize, 16 envs, n_steps 16, λ 0.98, γ 0.99, 4 epochs, ent 0 (1e6 steps)
        "MountainCar-v0": dict(
            steps=1_000_000, normalize_obs=True, normalize_reward=True, n_envs=16, n_steps=16,
            gae_lambda=0.98, gamma=0.99, n_epochs=4, ent_coef=0.0,
        ),
        # Hopper-v4 / v5: CleanRL's ppo_continuous_action.py settings (CLEANRL_MUJOCO), not the zoo's:
        # the zoo's tuned Hopper entry (ZOO_HOPPER, tuned on v3) learns to stand still on v5 in
        # both refrl and SB3 (eval ~1000 at 1M steps; docs/benchmarks.md, Hopper-v5)
        **{f"Hopper-v{v}": dict(steps=1_000_000, **CLEANRL_MUJOCO) for v in (4, 5)},
        # zoo HalfCheetah-v4 (tuned), used for v4 and v5
        **{
            f"HalfCheetah-v{v}": dict(
                steps=1_000_000, normalize_obs=True, normalize_reward=True, n_envs=1, batch_size=64, n_steps=512,
                gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762, clip_range=0.1, n_epochs=20,
                gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096, **_ZOO_MUJOCO_POLICY,
            )
            for v in (4, 5)
        },
        # zoo Walker2d-v4 (tuned), used for v4 and v5
        **{
            f"Walker2d-v{v}": dict(
                steps=1_000_000, normalize_obs=True, normalize_reward=True, n_envs=1, batch_size=32, n_steps=512,
                gamma=0.99, learning_rate=5.05041e-05, ent_coef=0.000585045, clip_range=0.1, n_epochs=20,
                gae_lambda=0.95, max_grad_norm=1.0, vf_coef=0.871923, **_ZOO_MUJOCO_POLICY,
            )
            for v in (4, 5)
        },
    },
}


# TRPO (and NPG, which shares its fields): RL Baselines3 Zoo hyperparams/trpo.yml ("# Tuned").
# Zoo's batch_size is the critic minibatch; Pendulum's gSDE is left out (refrl has none).
TUNED["trpo"] = {
    # zoo: 2 envs, n_steps 512, batch 512, cg_damping 1e-3, λ 0.98, γ 0.99, lr 1e-3, 20 critic epochs
    "CartPole-v1": dict(
        steps=100_000, n_envs=2, n_steps=512, batch_size=512, cg_damping=1e-3, gae_lambda=0.98, gamma=0.99,
        learning_rate=1e-3, n_critic_updates=20,
    ),
    # zoo: 2 envs, n_steps 1024, γ 0.9, 15 critic epochs, use_sde True (deviation: no gSDE)
    "Pendulum-v1": dict(steps=100_000, n_envs=2, n_steps=1024, gamma=0.9, n_critic_updates=15),
}
TUNED["npg"] = TUNED["trpo"]


def tuned_defaults(algo: str, env_id: str) -> dict[str, Any]:
    """The tuned hyperparameters for ``env_id`` (without ``steps``), or {} if none are published."""
    entry = dict(TUNED.get(algo, {}).get(env_id, {}))
    entry.pop("steps", None)
    return entry


def tuned_steps(algo: str, env_id: str) -> int | None:
    """The zoo's training budget (n_timesteps) for ``env_id``, if it has one."""
    return TUNED.get(algo, {}).get(env_id, {}).get("steps")
