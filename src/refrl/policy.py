"""Actor-critic: a policy MLP with an action-distribution head and a separate value MLP.

One flat parameter vector (and one flat gradient vector) with layout::

    [ policy MLP (obs_dim, *net_arch, head) | log_std (Box actions only, [d]) | value MLP (obs_dim, *vf_net_arch, 1) ]

so that ``params[:n_policy_params]`` is the policy θ that TRPO/NPG and the Fisher-vector
product work on, and ``params[n_policy_params:]`` the value function's parameters. Policy head
gain 0.01, value head gain 1, hidden gain √2, tanh, separate networks, state-independent
log σ initialised to ``log_std_init`` ("37 implementation details": core 2, 13; continuous 1–4).

Gradient chain used by ``backward`` (per sample i, loss ℓ = Σ_i [g^logp_i log π(a_i|s_i)
+ g^ent_i H(π(·|s_i)) + g^v_i V(s_i)], the g's being the caller's per-sample loss gradients)::

    ∂ℓ/∂(dist params)_i = g^logp_i ∂log π/∂params_i + g^ent_i ∂H/∂params_i
    ∂ℓ/∂θ_π   = MLP backward of the net-output part (logits or mean)
    ∂ℓ/∂log σ = Σ_i (log σ part)_i                         (log σ is shared by all states)
    ∂ℓ/∂θ_V   = MLP backward of g^v
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from refrl.distributions import DiagGaussian, Distribution, make_distribution
from refrl.nn import MLP
from refrl.serialization import space_from_dict, space_to_dict

__all__ = ["ActorCritic"]


class ActorCritic:
    """Separate policy and value MLPs over one flat parameter vector.

    Parameters
    ----------
    observation_space : gymnasium Box (flattened) or Discrete (one-hot)
    action_space : gymnasium Discrete, Box or 1-D MultiDiscrete
    net_arch : hidden sizes of the policy network, and of the value network unless vf_net_arch is given
        (default (64, 64))
    vf_net_arch : hidden sizes of the value network (None: net_arch)
    activation : "tanh" or "relu"
    ortho_init : orthogonal init (gains √2 / 0.01 / 1) if True, else PyTorch's Linear default
    log_std_init : initial log σ (Box actions)
    dtype : np.float32 or np.float64
    rng : np.random.Generator for the initialisation
    """

    def __init__(
        self,
        observation_space,
        action_space,
        *,
        net_arch: Sequence[int] = (64, 64),
        vf_net_arch: Sequence[int] | None = None,
        activation: str = "tanh",
        ortho_init: bool = True,
        log_std_init: float = 0.0,
        dtype: type | np.dtype = np.float32,
        rng: np.random.Generator,
    ) -> None:
        from gymnasium import spaces

        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"ActorCritic: 'rng' must be a numpy.random.Generator, got {type(rng).__name__}")
        if isinstance(observation_space, spaces.Box):
            self._obs_kind = "box"
            self.obs_dim = int(np.prod(observation_space.shape))
            if self.obs_dim < 1:
                raise ValueError(f"ActorCritic: 'observation_space' has no dimensions: {observation_space}")
        elif isinstance(observation_space, spaces.Discrete):
            self._obs_kind = "discrete"
            self.obs_dim = int(observation_space.n)
        else:  # ValueError for an unsupported space, as make_distribution does (the contract)
            raise ValueError(  # noqa: TRY004
                f"ActorCritic: unsupported 'observation_space' {observation_space!r} "
                "(supported: gymnasium.spaces.Box, Discrete)"
            )
        self.observation_space = observation_space
        self.action_space = action_space
        self.dist = make_distribution(action_space)  # ValueError naming the space if unsupported
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"ActorCritic: 'dtype' must be float32 or float64, got {dt}")
        self.dtype = dt
        net_arch = tuple(int(h) for h in net_arch)
        if any(h < 1 for h in net_arch):
            raise ValueError(f"ActorCritic: 'net_arch' entries must be >= 1, got {net_arch}")
        vf_net_arch = net_arch if vf_net_arch is None else tuple(int(h) for h in vf_net_arch)
        if any(h < 1 for h in vf_net_arch):
            raise ValueError(f"ActorCritic: 'vf_net_arch' entries must be >= 1, got {vf_net_arch}")
        self.net_arch = net_arch
        self.vf_net_arch = vf_net_arch
        self.activation = activation
        self.ortho_init = bool(ortho_init)
        self.log_std_init = float(log_std_init)
        if not math.isfinite(self.log_std_init):
            raise ValueError(f"ActorCritic: 'log_std_init' must be finite, got {log_std_init}")

        self._gaussian = isinstance(self.dist, DiagGaussian)
        head = self.dist.d if self._gaussian else self.dist.param_dim
        pi_sizes = (self.obs_dim, *net_arch, head)
        vf_sizes = (self.obs_dim, *vf_net_arch, 1)
        n_pi = MLP.num_params(pi_sizes)
        n_std = self.dist.d if self._gaussian else 0
        n_vf = MLP.num_params(vf_sizes)
        self.n_policy_params = n_pi + n_std
        self.params = np.zeros(n_pi + n_std + n_vf, dtype=dt)
        self.grads = np.zeros_like(self.params)
        self.policy_params = self.params[: self.n_policy_params]
        self.policy_grads = self.grads[: self.n_policy_params]
        self.value_params = self.params[self.n_policy_params :]
        self.value_grads = self.grads[self.n_policy_params :]
        kw = {"activation": activation, "ortho_init": ortho_init, "dtype": dt, "rng": rng}
        self.pi = MLP(pi_sizes, output_gain=0.01, params=self.params[:n_pi], grads=self.grads[:n_pi], **kw)
        self.log_std = self.params[n_pi : n_pi + n_std] if self._gaussian else None
        self.log_std_grad = self.grads[n_pi : n_pi + n_std] if self._gaussian else None
        if self.log_std is not None:
            self.log_std.fill(self.log_std_init)
        self.vf = MLP(vf_sizes, output_gain=1.0, params=self.value_params, grads=self.value_grads, **kw)
        #: Whether ``refrl.native.act`` (the rollout collector, ``predict``) acts through the fused
        #: native forward + sampling instead of this class's NumPy ``act``. Default: on for float32
        #: (the training dtype); float64 stays on the NumPy path, the verification oracle. Same
        #: random stream either way; results equal to rounding.
        self.native_act = dt == np.dtype(np.float32)
        if isinstance(action_space, spaces.Box):
            self._low = action_space.low.astype(dt).reshape(-1)
            self._high = action_space.high.astype(dt).reshape(-1)
            self._act_shape = tuple(action_space.shape)
        else:
            self._low = self._high = None
            self._act_shape = self.dist.action_shape

    # ------------------------------------------------------------------------------- inputs
    def preprocess_obs(self, obs: np.ndarray) -> np.ndarray:
        """Observations [B, *obs_shape] -> network input [B, obs_dim] in ``dtype`` (Box: flatten;
        Discrete: one-hot). Raises ValueError naming 'obs' on a wrong shape or non-finite values."""
        if self._obs_kind == "discrete":
            o = np.asarray(obs)
            if o.ndim != 1:
                raise ValueError(f"ActorCritic: 'obs' must have shape (B,) for a Discrete observation space, got {o.shape}")
            if o.dtype.kind == "f" and np.isfinite(o).all() and (o == np.round(o)).all():
                o = o.astype(np.int64)  # integral floats, e.g. from a float rollout buffer
            if o.dtype.kind not in "iu":
                raise TypeError(f"ActorCritic: 'obs' must be integers for a Discrete observation space, got {o.dtype}")
            idx = o.astype(np.int64) - int(self.observation_space.start)
            if o.size and (idx.min() < 0 or idx.max() >= self.obs_dim):
                raise ValueError(f"ActorCritic: 'obs' out of range for {self.observation_space}")
            x = np.zeros((o.shape[0], self.obs_dim), dtype=self.dtype)
            x[np.arange(o.shape[0]), idx] = 1
            return x
        x = np.asarray(obs, dtype=self.dtype)
        shape = self.observation_space.shape
        if x.shape[1:] == shape and x.ndim == len(shape) + 1:
            x = x.reshape(x.shape[0], self.obs_dim)
        elif x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(
                f"ActorCritic: 'obs' must have shape (B, {', '.join(map(str, shape))}) "
                f"for observation space {self.observation_space}, got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError("ActorCritic: 'obs' contains NaN or inf")
        return x

    def _check_out(self, y: np.ndarray, what: str) -> None:
        """Cheap guard on the network output; names the culprit when it is not finite."""
        if not np.isfinite(y).all():
            if not np.isfinite(self.params).all():
                raise ValueError(f"ActorCritic: 'params' contain NaN or inf ({what} is not finite)")
            raise ValueError(f"ActorCritic: {what} overflowed to NaN/inf (parameters or observations too large)")

    def dist_params_from_output(self, out: np.ndarray) -> np.ndarray:
        """Policy-network output [B, head] (logits; or the Gaussian mean) -> distribution parameters
        [B, param_dim] (the logits; or [mean | log_std], log σ being shared by all states)."""
        if not self._gaussian:
            return out
        B, d = out.shape
        dp = np.empty((B, 2 * d), dtype=out.dtype)
        dp[:, :d] = out
        dp[:, d:] = self.log_std
        return dp

    def _check_batch(self, name: str, g, B: int) -> np.ndarray | None:
        if g is None:
            return None
        g = np.asarray(g, dtype=self.dtype)
        if g.shape != (B,):
            raise ValueError(f"ActorCritic.backward: '{name}' must have shape ({B},), got {g.shape}")
        return g

    # -------------------------------------------------------------------------------- public
    def act(
        self, obs: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample a ~ π(·|s) (or the mode), with log π(a|s) and V(s), for a batch of observations.

        Returns actions ([B] int64 for Discrete, [B, K] for MultiDiscrete, [B, *box_shape] UNclipped
        for Box — pass them through ``clip_actions`` for ``env.step`` but keep them for the update),
        logp [B] and values [B].

        This is the NumPy reference; ``refrl.native.act`` runs the same computation (same random
        draws) in one native call and is what the rollout collector and ``predict`` use.
        """
        if self._gaussian and not np.isfinite(self.log_std).all():  # else NaN actions, silently
            raise ValueError("ActorCritic.act: 'params' contain NaN or inf (log_std is not finite)")
        x = self.preprocess_obs(obs)
        out = self.pi(x)
        self._check_out(out, "the policy output")
        dp = self.dist_params_from_output(out)
        a, logp = self.dist.sample_with_log_prob(dp, rng, deterministic)
        values = self.vf(x)[:, 0]
        if self._gaussian:
            a = a.reshape((a.shape[0], *self._act_shape))
        return a, logp, values

    def clip_actions(self, actions: np.ndarray) -> np.ndarray:
        """Clip Box actions to [low, high] for the environment (a copy); identity for other spaces."""
        if self._low is None:
            return actions
        a = np.asarray(actions)
        flat = a.reshape(a.shape[0], -1)
        # = np.clip(flat, low, high) (NaN stays NaN), as two ufunc calls: np.clip's Python
        # dispatch costs ~2 us, a tenth of a Pendulum step
        out = np.maximum(flat, self._low)
        np.minimum(out, self._high, out=out)
        return out.reshape(a.shape)

    def predict_values(self, obs: np.ndarray) -> np.ndarray:
        """V(s) for a batch, shape [B]."""
        v = self.vf(self.preprocess_obs(obs))
        self._check_out(v, "the value output")
        return v[:, 0]

    def dist_params(self, obs: np.ndarray) -> np.ndarray:
        """Distribution parameters at the current θ: logits [B, n] (Σ nvec for MultiDiscrete), or
        [mean | log_std] [B, 2d] for Box. Pass them back as ``old_dist_params`` to ``kl``."""
        out = self.pi(self.preprocess_obs(obs))
        self._check_out(out, "the policy output")
        return self.dist_params_from_output(out)

    def kl(self, obs: np.ndarray, old_dist_params: np.ndarray) -> float:
        """Mean over the batch of KL(π_old(·|s) ‖ π_θ(·|s))."""
        new = self.dist_params(obs)
        old = np.asarray(old_dist_params)
        if old.shape != new.shape:
            raise ValueError(f"ActorCritic.kl: 'old_dist_params' must have shape {new.shape}, got {old.shape}")
        return float(self.dist.kl(old, new).mean())

    def _check_actions(self, actions: np.ndarray, B: int, fn: str) -> np.ndarray:
        if not self._gaussian:
            return actions  # the distribution checks shape, integrality and range
        a = np.asarray(actions, dtype=self.dtype)
        if a.shape[0:1] != (B,) or a.size != B * self.dist.d:
            raise ValueError(
                f"ActorCritic.{fn}: 'actions' must have shape ({B}, {', '.join(map(str, self._act_shape))}), "
                f"got {a.shape}"
            )
        return a.reshape(B, self.dist.d)

    def evaluate(self, obs: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """log π(a|s), H(π(·|s)) and V(s) for a minibatch, plus the cache for ``backward``.

        Returns logp [B], entropy [B], values [B], cache (a dict; ``cache["dist_params"]`` holds the
        distribution parameters [B, param_dim] at the current θ, for KL terms).
        """
        x = self.preprocess_obs(obs)
        B = x.shape[0]
        out, pi_cache = self.pi.forward(x)
        self._check_out(out, "the policy output")
        dp = self.dist_params_from_output(out)
        actions = self._check_actions(actions, B, "evaluate")
        logp, ent, stash = self.dist.log_prob_entropy(dp, actions)
        v, vf_cache = self.vf.forward(x)
        self._check_out(v, "the value output")
        cache = {"B": B, "pi": pi_cache, "vf": vf_cache, "dist_params": dp, "actions": actions, "dist": stash}
        return logp, ent, v[:, 0], cache

    def log_prob(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """log π_θ(a|s) [B] only (policy network alone; e.g. the surrogate in TRPO's line search)."""
        x = self.preprocess_obs(obs)
        out = self.pi(x)
        self._check_out(out, "the policy output")
        return self.dist.log_prob(self.dist_params_from_output(out), self._check_actions(actions, x.shape[0], "log_prob"))

    def evaluate_values(self, obs: np.ndarray) -> tuple[np.ndarray, dict]:
        """V(s) [B] and a cache for ``backward(cache, dvalues=...)`` (value network alone: critic updates)."""
        x = self.preprocess_obs(obs)
        v, vf_cache = self.vf.forward(x)
        self._check_out(v, "the value output")
        return v[:, 0], {"B": x.shape[0], "pi": None, "vf": vf_cache, "dist_params": None, "actions": None}

    def backward(self, cache: dict, dlogp=None, dentropy=None, dvalues=None, *, accumulate: bool = True) -> None:
        """Accumulate ∂loss/∂θ into ``grads`` from per-sample loss gradients (None = 0).

        ``dlogp[i] = ∂loss/∂logp[i]``, ``dentropy[i] = ∂loss/∂entropy[i]``, ``dvalues[i] = ∂loss/∂values[i]``
        (include any 1/B of a mean in them). ``cache`` comes from ``evaluate`` at the current θ.
        ``accumulate=False`` sets ``grads`` to this loss's gradient instead (= ``zero_grad()`` first).
        """
        B = cache["B"]
        dlogp = self._check_batch("dlogp", dlogp, B)
        dentropy = self._check_batch("dentropy", dentropy, B)
        dvalues = self._check_batch("dvalues", dvalues, B)
        if cache["pi"] is None and (dlogp is not None or dentropy is not None):
            raise ValueError("ActorCritic.backward: 'cache' from evaluate_values supports only 'dvalues'")
        stash = cache.get("dist")
        if stash is None:  # a hand-built cache without the evaluate stash
            stash = (cache["dist_params"], cache["actions"])
            ddist = Distribution.params_grad_from_stash(self.dist, stash, dlogp, dentropy)
        else:  # log-softmax etc. computed once in evaluate (Categorical), reused here
            ddist = self.dist.params_grad_from_stash(stash, dlogp, dentropy)
        if ddist is not None:
            self.backward_dist_params(cache, ddist, accumulate=accumulate)
        elif not accumulate:
            self.policy_grads.fill(0)
        if dvalues is not None:
            self.vf.backward(dvalues[:, None], cache["vf"], need_dx=False, accumulate=accumulate)
        elif not accumulate:
            self.value_grads.fill(0)

    def backward_dist_params(
        self, cache: dict, ddist_params: np.ndarray, *, out: np.ndarray | None = None, accumulate: bool = True
    ) -> None:
        """Accumulate Jᵀ·ddist_params into the policy gradient (or into ``out``, length n_policy_params;
        ``accumulate=False``: overwrite it).

        ``ddist_params`` [B, param_dim] = ∂loss/∂(distribution parameters) per sample (e.g. a KL
        penalty's ``dist.kl_grad`` scaled by the caller). J is the Jacobian of the distribution
        parameters with respect to the policy parameters (MLP, then log σ shared over the batch).
        """
        B = cache["B"]
        if cache["pi"] is None:
            raise ValueError("ActorCritic.backward_dist_params: 'cache' must come from evaluate (it has no policy pass)")
        g = np.asarray(ddist_params, dtype=self.dtype)
        if g.shape != (B, self.dist.param_dim):
            raise ValueError(
                f"ActorCritic.backward_dist_params: 'ddist_params' must have shape ({B}, {self.dist.param_dim}), "
                f"got {g.shape}"
            )
        target = self.policy_grads if out is None else out
        if target.shape != (self.n_policy_params,):
            raise ValueError(f"ActorCritic.backward_dist_params: 'out' must have shape ({self.n_policy_params},)")
        n_pi = self.pi.params.size
        pi_out = None if out is None else target[:n_pi]  # None: the policy MLP's own grads (views kept)
        if self._gaussian:
            d = self.dist.d
            self.pi.backward(g[:, :d], cache["pi"], out=pi_out, need_dx=False, accumulate=accumulate)
            if accumulate:
                target[n_pi:] += g[:, d:].sum(axis=0)
            else:
                np.sum(g[:, d:], axis=0, out=target[n_pi:])
        else:
            self.pi.backward(g, cache["pi"], out=pi_out, need_dx=False, accumulate=accumulate)

    def dist_params_jvp(self, pi_cache: list, v: np.ndarray) -> np.ndarray:
        """J·v: directional derivative of the distribution parameters [B, param_dim] along a policy-
        parameter direction v (length n_policy_params), from the policy MLP's forward cache."""
        v = np.asarray(v, dtype=self.dtype)
        if v.shape != (self.n_policy_params,):
            raise ValueError(f"ActorCritic.dist_params_jvp: 'v' must have shape ({self.n_policy_params},), got {v.shape}")
        n_pi = self.pi.params.size
        jv = self.pi.jvp_from_cache(pi_cache, v[:n_pi])
        if not self._gaussian:
            return jv
        B, d = jv.shape
        out = np.empty((B, 2 * d), dtype=jv.dtype)
        out[:, :d] = jv
        out[:, d:] = v[n_pi:]
        return out

    def zero_grad(self) -> None:
        self.grads.fill(0)

    # ---------------------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        return {"params": self.params.copy()}

    def load_state_dict(self, d: dict) -> None:
        if "params" not in d:
            raise ValueError("ActorCritic.load_state_dict: missing key 'params'")
        p = np.asarray(d["params"])
        if p.shape != self.params.shape:
            raise ValueError(f"ActorCritic.load_state_dict: 'params' must have shape {self.params.shape}, got {p.shape}")
        if p.dtype.kind != "f":
            raise TypeError(f"ActorCritic.load_state_dict: 'params' must be floating point, got {p.dtype}")
        if not np.isfinite(p).all():
            raise ValueError("ActorCritic.load_state_dict: 'params' contain NaN or inf")
        self.params[...] = p

    def config(self) -> dict:
        """JSON-able description from which ``ActorCritic.from_config`` rebuilds the same structure
        (``vf_net_arch`` only when it differs from ``net_arch``: older checkpoints have no such key)."""
        config = {
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "net_arch": list(self.net_arch),
            "activation": self.activation,
            "ortho_init": self.ortho_init,
            "log_std_init": self.log_std_init,
            "dtype": self.dtype.name,
        }
        if self.vf_net_arch != self.net_arch:
            config["vf_net_arch"] = list(self.vf_net_arch)
        return config

    @classmethod
    def from_config(cls, config: dict, rng: np.random.Generator | None = None) -> ActorCritic:
        """Build from ``config()`` (parameters are freshly initialised: follow with load_state_dict)."""
        return cls(
            space_from_dict(config["observation_space"]),
            space_from_dict(config["action_space"]),
            net_arch=tuple(config["net_arch"]),
            vf_net_arch=config.get("vf_net_arch"),
            activation=config["activation"],
            ortho_init=config["ortho_init"],
            log_std_init=config["log_std_init"],
            dtype=np.dtype(config["dtype"]),
            rng=rng if rng is not None else np.random.default_rng(0),
        )

    def __repr__(self) -> str:
        return (
            f"ActorCritic(obs_dim={self.obs_dim}, dist={self.dist!r}, net_arch={self.net_arch}, "
            f"vf_net_arch={self.vf_net_arch}, "
            f"activation={self.activation!r}, dtype={self.dtype.name}, n_params={self.params.size})"
        )
