"""Run under mpirun (2 or 3 ranks) with a mode: refrl's own normalisation merged exactly across ranks.

``train OUT``: PPO on CartPole-v1 (episodes of different lengths per rank: uneven numbers of real
transitions) and TRPO on Pendulum-v1, float64, with normalize_obs and normalize_reward.  Every
rollout's raw observations and rewards (the warm-up rollout's included) are recorded on each rank
as ``update_normalization`` sees them.  Checked on every rank after training:

- obs_rms and return_rms hold the same bytes on every rank, and so do the parameters;
- they equal, to <= 1e-10 relative, the mean and population variance computed in one pass over
  the concatenation of all ranks' raw observations over valid slots, and of all ranks' discounted
  returns (the recurrence R <- gamma R (1 - terminated) + r per env, over valid slots);
  the counts are exactly the number of those rows.

Rank 0 saves each model to OUT (the test loads it in one process) with the statistics and the
deterministic actions on fixed probe observations (``expected_*.npz``).

``bad VALUE AT``: rank K-1's env returns an observation filled with VALUE (``nan``, or ``1e300``:
finite, but its square overflows the variance) at its AT-th step (normalize_obs, health check on);
every rank must stop with an error (the test checks which, with a timeout against a deadlock).

Prints ``OK rank r of K`` on success; any failed check raises (and ends the job non-zero).
"""

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
from mpi4py import MPI

from refrl import PPO, TRPO, distributed
from common import rel

RTOL = 1e-10
comm = distributed.world()
K, r = comm.size, comm.rank
assert isinstance(comm, distributed.MPIComm) and K in (2, 3), (type(comm).__name__, K)


def record(agent):
    """Wrap the agent's update_normalization: keep each rollout's raw data, as the update sees it."""
    rollouts, update = [], agent.update_normalization

    def recording_update():
        buf = agent.buffer
        rollouts.append((buf.raw_obs[buf.valid].copy(), np.asarray(buf.raw_rewards, dtype=np.float64).copy(),
                         buf.terminated.copy(), buf.valid.copy()))
        update()

    agent.update_normalization = recording_update
    return rollouts


def discounted_returns(rollouts, gamma, n_envs):
    """The reward normaliser's oracle: the per-env discounted return after every valid step."""
    acc, out = np.zeros(n_envs), []
    for _, rewards, terminated, valid in rollouts:
        for t in range(rewards.shape[0]):
            acc = np.where(valid[t], gamma * acc * (1.0 - terminated[t].astype(np.float64)) + rewards[t], acc)
            out.append(acc[valid[t]])
    return np.concatenate(out)


def check_statistics(name, agent, rollouts):
    cfg = agent.config
    obs_rms, ret_rms = agent.obs_rms, agent.return_rms
    for what, rms in (("obs_rms", obs_rms), ("return_rms", ret_rms)):  # (a) bit-identical on every rank
        comm.check_identical(np.concatenate([rms.mean.ravel(), rms.var.ravel(), [rms.count]]), f"{name}: {what}")
    comm.check_identical(agent.policy.params, f"{name}: parameters")  # (c)
    assert agent.policy.params.dtype == np.float64

    # (b) one process on the concatenation of every rank's data
    everyone = MPI.COMM_WORLD.allgather((np.concatenate([o for o, *_ in rollouts]),
                                         discounted_returns(rollouts, cfg.gamma, cfg.n_envs)))
    n_mine = [len(o) for o, _ in everyone]
    if name.startswith("PPO"):
        assert len(set(n_mine)) > 1, f"{name}: expected uneven real transitions per rank, got {n_mine}"
    obs = np.concatenate([o for o, _ in everyone])
    ret = np.concatenate([g for _, g in everyone])
    assert obs_rms.count == len(obs) and ret_rms.count == len(ret), (obs_rms.count, len(obs), ret_rms.count)
    errors = {"obs mean": rel(obs_rms.mean, obs.mean(axis=0)), "obs var": rel(obs_rms.var, obs.var(axis=0)),
              "return mean": rel(ret_rms.mean, ret.mean()), "return var": rel(ret_rms.var, ret.var())}
    assert max(errors.values()) <= RTOL, (name, errors)
    print(f"rank {r}: {name}: {len(rollouts)} rollouts, real transitions per rank {n_mine}, "
          f"max relative error {max(errors.values()):.2e}", flush=True)


def train(out):
    common = dict(seed=5, dtype="float64", normalize_obs=True, normalize_reward=True)
    runs = [
        ("PPO on CartPole-v1", PPO, "CartPole-v1", dict(n_steps=64, n_envs=2, batch_size=64, n_epochs=2), 256 * 5),
        ("TRPO on Pendulum-v1", TRPO, "Pendulum-v1", dict(n_steps=128, n_envs=2, batch_size=128), 256 * 4),
    ]
    probe_rng = np.random.default_rng(0)
    for name, cls, env_id, hp, steps in runs:
        agent = cls(env_id, **common, **hp)
        rollouts = record(agent)
        agent.learn(steps * K)
        assert agent.iteration >= 3 and len(rollouts) == agent.iteration + 1, (name, agent.iteration, len(rollouts))
        check_statistics(name, agent, rollouts)
        tag = cls.__name__.lower()
        path = agent.save(out / f"{tag}.npz")  # rank 0 writes
        if comm.is_root:
            probe = np.asarray(agent.obs_rms.mean + probe_rng.normal(0, 2, (64, *agent.obs_rms.shape))
                               * agent.obs_rms.std, dtype=np.float64)
            actions, _ = agent.predict(probe, deterministic=True)
            np.savez(out / f"expected_{tag}.npz", probe=probe, actions=actions,
                     obs_mean=agent.obs_rms.mean, obs_var=agent.obs_rms.var, obs_count=agent.obs_rms.count,
                     ret_mean=agent.return_rms.mean, ret_var=agent.return_rms.var, ret_count=agent.return_rms.count)
        comm.sum(np.zeros(1))  # every rank waits for rank 0's files
        assert path.is_file()
        agent.close()


class BadObservation(gym.Wrapper):
    """The last rank's env returns an observation filled with ``value`` at its ``at``-th step (the others never do)."""

    def __init__(self, env, value, at):
        super().__init__(env)
        self.value, self.at, self.steps = value, at, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if r == K - 1 and self.steps == self.at:
            obs = np.full_like(obs, self.value)
        return obs, reward, terminated, truncated, info


def bad(value, at):
    gym.register("BadPendulum-v0", entry_point=lambda **kw: BadObservation(gym.make("Pendulum-v1", **kw), value, at),
                 max_episode_steps=200)
    agent = PPO("BadPendulum-v0", seed=3, n_steps=64, n_envs=1, batch_size=64, n_epochs=1, normalize_obs=True)
    try:
        agent.learn(64 * 6 * K)
    except Exception as exc:
        print(f"rank {r} stopped: {type(exc).__name__}: {exc}", flush=True)
        raise
    print(f"UNREACHED rank {r}", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "train":
        train(Path(sys.argv[2]))
    elif mode == "bad":
        bad(float(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(f"OK rank {r} of {K}", flush=True)
