"""Checkpoints: the version-1 layout written by hand loads into every algorithm (optimiser state, counters,
rng), the writer keeps that layout, the loaders dispatch by algorithm, and gym spaces round-trip through JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium import spaces

import refrl
import refrl.algos
from refrl.algos.base import OnPolicyAlgorithm
from refrl.serialization import load_checkpoint, save_checkpoint, space_from_dict, space_to_dict

SMALL = dict(n_envs=1, n_steps=64, n_critic_updates=1)


def _adam_meta(t: int, lr: float) -> dict:
    return {"t": float(t), "lr": lr, "beta1": 0.85, "beta2": 0.995, "eps": 2e-5}


def _legacy_checkpoint(path, algo: str, optimizers: dict[str, int], extra: dict) -> dict:
    """A checkpoint in the version-1 layout, written key by key (not by ``save``): policy/params,
    ``<prefix>/m``, ``<prefix>/v`` per optimiser, their scalars in meta["extra"][prefix].
    ``optimizers`` maps each prefix to its parameter count.  Returns what was written."""
    template = refrl.algos.get_algorithm(algo)("CartPole-v1", seed=0, **({"batch_size": 32} if algo == "ppo" else SMALL))
    n = template.policy.params.size
    rng = np.random.default_rng(7)
    arrays = {"policy/params": rng.standard_normal(n).astype(np.float32)}
    meta_extra = dict(extra)
    for i, (prefix, size) in enumerate(optimizers.items()):
        arrays[f"{prefix}/m"] = rng.standard_normal(size).astype(np.float32)
        arrays[f"{prefix}/v"] = rng.random(size).astype(np.float32)
        meta_extra[prefix] = _adam_meta(t=11 + i, lr=1.5e-4 * (i + 1))
    rng_state = np.random.default_rng(99).bit_generator.state
    meta = {
        "algo": algo, "config": template.config.to_dict(), "env_id": "CartPole-v1", "env_kwargs": {}, "seed": 3,
        "num_timesteps": 640, "total_timesteps": 1280, "iteration": 10, "policy": template.policy.config(),
        "rng_state": rng_state, "extra": meta_extra,
    }
    template.close()
    save_checkpoint(path, arrays, json.loads(json.dumps(meta)))
    return {"arrays": arrays, "meta": meta}


def _optimizer_of(agent, prefix: str):
    return {"ppo": {"optim": "optimizer"}, "trpo": {"optim": "critic_optimizer"}, "npg": {"optim": "critic_optimizer"},
            "vpg": {"optim": "optimizer", "critic_optim": "critic_optimizer"}}[agent.algo_name][prefix]


@pytest.mark.parametrize(
    ("algo", "prefixes", "extra"),
    [
        ("ppo", ("optim",), {"kl_coef": 0.25, "n_updates": 40}),
        ("trpo", ("optim",), {"n_updates": 10}),  # the critic's optimiser, under the prefix "optim"
        ("npg", ("optim",), {"n_updates": 10}),
        ("vpg", ("optim", "critic_optim"), {"n_updates": 10}),
    ],
)
def test_version1_checkpoint_written_by_hand_loads_with_optimiser_state(tmp_path, algo, prefixes, extra):
    cls = refrl.algos.get_algorithm(algo)
    probe = cls("CartPole-v1", seed=0, **({"batch_size": 32} if algo == "ppo" else SMALL))
    sizes = {p: getattr(probe, _optimizer_of(probe, p)).params.size for p in prefixes}
    probe.close()
    written = _legacy_checkpoint(tmp_path / "legacy.npz", algo, sizes, extra)
    arrays, meta = written["arrays"], written["meta"]

    for agent in (cls.load(tmp_path / "legacy.npz"), refrl.algos.load(tmp_path / "legacy.npz")):
        assert type(agent) is cls
        np.testing.assert_array_equal(agent.policy.params, arrays["policy/params"])
        for prefix in prefixes:
            opt = getattr(agent, _optimizer_of(agent, prefix))
            np.testing.assert_array_equal(opt.m, arrays[f"{prefix}/m"])
            np.testing.assert_array_equal(opt.v, arrays[f"{prefix}/v"])
            want = meta["extra"][prefix]
            assert (opt.t, opt.lr, opt.betas, opt.eps) == (int(want["t"]), want["lr"], (want["beta1"], want["beta2"]), want["eps"])
        assert agent.n_updates == extra["n_updates"]
        if algo == "ppo":
            assert agent.kl_coef == extra["kl_coef"]
        assert (agent.seed, agent.num_timesteps, agent.total_timesteps, agent.iteration) == (3, 640, 1280, 10)
        assert agent.progress_remaining == pytest.approx(0.5)
        assert agent.rng.bit_generator.state == meta["rng_state"]
        agent.close()


@pytest.mark.parametrize("algo", ["ppo", "trpo", "npg", "vpg"])
def test_save_writes_the_version1_layout_and_round_trips_the_optimisers(tmp_path, algo):
    cls = refrl.algos.get_algorithm(algo)
    kw = {"n_steps": 64, "batch_size": 32, "n_epochs": 1} if algo == "ppo" else SMALL
    agent = cls("CartPole-v1", seed=1, **kw).learn(128)
    arrays, meta = load_checkpoint(agent.save(tmp_path / "c.npz"))
    prefixes = ("optim", "critic_optim") if algo == "vpg" else ("optim",)
    assert sorted(arrays) == sorted(["policy/params", *(f"{p}/{k}" for p in prefixes for k in ("m", "v"))])
    assert sorted(meta["extra"]) == sorted([*prefixes, "n_updates", *(["kl_coef"] if algo == "ppo" else [])])
    for prefix in prefixes:
        opt = getattr(agent, _optimizer_of(agent, prefix))
        assert opt.t > 0
        np.testing.assert_array_equal(arrays[f"{prefix}/m"], opt.m)
        np.testing.assert_array_equal(arrays[f"{prefix}/v"], opt.v)
        assert meta["extra"][prefix] == {"t": float(opt.t), "lr": opt.lr, "beta1": opt.betas[0], "beta2": opt.betas[1],
                                         "eps": opt.eps}
    agent.close()


def test_loaders_dispatch_by_algorithm_and_the_base_class_points_to_the_registry(tmp_path):
    agent = refrl.TRPO("CartPole-v1", seed=0, **SMALL).learn(64)
    path = agent.save(tmp_path / "t.npz")
    assert type(refrl.algos.load(path)) is refrl.TRPO
    with pytest.raises(ValueError, match="not 'on_policy'; use refrl.algos.load"):
        OnPolicyAlgorithm.load(path)
    with pytest.raises(ValueError, match="not 'npg'"):
        refrl.NPG.load(path)
    save_checkpoint(tmp_path / "odd.npz", {}, {"algo": "sac"})
    with pytest.raises(ValueError, match="algorithm: unknown 'sac'"):
        refrl.algos.load(tmp_path / "odd.npz")
    agent.close()


@pytest.mark.parametrize(
    "space",
    [
        spaces.Discrete(5, start=2),
        spaces.MultiDiscrete([2, 4]),
        spaces.MultiDiscrete([3, 3], start=[1, -1]),
        spaces.Box(-np.inf, 1.0, (2, 2)),
        spaces.Box(np.array([-1.0, 0.0]), np.array([2.0, 0.5]), dtype=np.float64),
        spaces.MultiBinary(3),
        spaces.MultiBinary([2, 3]),
        spaces.Dict({"b": spaces.Discrete(3), "a": spaces.Box(-1, 1, (2,))}),
        spaces.Dict([("z", spaces.MultiBinary(2)), ("a", spaces.MultiDiscrete([2, 3]))]),  # not sorted
    ],
)
def test_spaces_round_trip_through_json(space):
    back = space_from_dict(json.loads(json.dumps(space_to_dict(space))))
    assert back == space
    if isinstance(space, spaces.Dict):  # the entries keep their order (the network input's layout)
        assert list(back.spaces) == list(space.spaces)


def test_unsupported_spaces_are_rejected_by_name():
    with pytest.raises(ValueError, match="space_to_dict: unsupported 'space'"):
        space_to_dict(spaces.Tuple([spaces.Discrete(2)]))
    with pytest.raises(ValueError, match="space_from_dict: unsupported space type 'Tuple'"):
        space_from_dict({"type": "Tuple"})
