"""Run under mpirun (2 or 3 ranks): real training runs keep every rank's parameters bit-identical.

PPO (with a target_kl early stop), TRPO, NPG and VPG train a few updates on their own per-rank
episodes (float32, the default).  Checked on every rank: parameters and optimiser moments have the
same bytes on all ranks, the ranks collected different episodes, num_timesteps is the sum of the
ranks' real transitions, and ep_rew_mean is the same number everywhere.  Prints ``OK rank r of K``.
"""

import numpy as np

from refrl import NPG, PPO, TRPO, VPG, distributed

comm = distributed.world()
K, r = comm.size, comm.rank
assert isinstance(comm, distributed.MPIComm) and K in (2, 3)

RUNS = [
    (PPO, "CartPole-v1", dict(n_steps=64, n_envs=2, batch_size=32, n_epochs=4, target_kl=0.01), 3000),
    (PPO, "Pendulum-v1", dict(n_steps=64, n_envs=2, batch_size=32, n_epochs=2, objective="kl_penalty"), 1200),
    (TRPO, "Pendulum-v1", dict(n_steps=128, n_envs=2, batch_size=64), 1500),
    (NPG, "CartPole-v1", dict(n_steps=64, n_envs=2, batch_size=32), 1200),
    (VPG, "CartPole-v1", dict(n_steps=64, n_envs=2, batch_size=32, n_epochs=2), 1200),
]
for cls, env_id, hp, steps in RUNS:
    name = f"{cls.__name__} on {env_id}"
    mine = []

    def count(agent):
        mine.append(int(agent.buffer.valid.sum()))

    agent = cls(env_id, seed=7, **hp).learn(steps // 2 * K, callback=count)  # (steps: the 2-rank budget)
    assert agent.comm is comm and agent.iteration >= 3, (name, agent.iteration)
    comm.check_identical(agent.policy.params, f"{name}: parameters")
    for prefix, opt in agent._optimizers().items():
        comm.check_identical(np.concatenate([opt.m, opt.v, [opt.t]]), f"{name}: {prefix} state")
    comm.check_identical(np.array([agent.num_timesteps, agent.ep_rew_mean or 0.0, getattr(agent, "kl_coef", 0.0)]),
                         f"{name}: counters and statistics")
    assert agent.num_timesteps == comm.sum_int(sum(mine)), (name, agent.num_timesteps)
    digests = comm.gather(np.frombuffer(agent.buffer.obs.tobytes()[:4096].ljust(4096, b"\0"), dtype=np.float64).copy())
    assert all(not np.array_equal(digests[0], digests[q]) for q in range(1, K)), f"{name}: two ranks saw the same episodes"
    agent.close()

print(f"OK rank {r} of {K}", flush=True)
