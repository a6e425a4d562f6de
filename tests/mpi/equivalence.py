"""Run under mpirun (2 or 3 ranks), float64: K ranks compute the update of one process on all their data.

Each rank collects its own rollout (its own episodes) and then drops a different number of its
transitions (the last rank keeps only three), so the ranks hold uneven amounts of real data and
most of the last rank's minibatches are empty.  After the distributed update, every rank gathers
all ranks' data and builds the one-process reference (``distributed=False``) on the
concatenation: the same update must come out to <= 1e-10 relative.

* PPO ``train()`` (clipped objective; the adaptive-KL objective with a ``target_kl`` early stop):
  the reference holds the ranks' rollouts stacked along time and is given the union of the ranks'
  minibatches (its permutation is built from the ranks' recorded ones, its minibatch K times
  larger); parameters, Adam moments, last gradient, β, the statistics.
* VPG ``train()`` (full batch, advantages normalised over all ranks, several Adam steps).
* TRPO/NPG: the gradient, the CG solution, the step (size, KL, gain, accept decision) and a
  rejected step; the critic's minibatch fit with uneven batches.

Prints ``OK rank r of K`` when every check passed.
"""

import numpy as np

from refrl import PPO, TRPO, VPG, distributed
from refrl.algos.base import fit_value_minibatches
from refrl.algos.trpo import step_direction, trpo_step
from common import rel

RTOL = 1e-10
comm = distributed.world()
K, r = comm.size, comm.rank
assert isinstance(comm, distributed.MPIComm) and K in (2, 3), (type(comm).__name__, K)


def close(name, a, b, tol=RTOL, scale=None):
    err = rel(a, b, scale)
    assert err <= tol, f"rank {r}: {name} differs from the one-process value by {err:.3g} relative"


class Recorder:
    """The agent's rng with every permutation recorded (the reference replays their union)."""

    def __init__(self, rng):
        self.rng, self.perms = rng, []

    def permutation(self, n):
        p = self.rng.permutation(n)
        self.perms.append(p)
        return p


class Replay:
    def __init__(self, perms):
        self.perms = list(perms)

    def permutation(self, n):
        p = self.perms.pop(0)
        assert p.size == n
        return p


def make_uneven(agent):
    """Drop real transitions: rank r the first 5·r slots, the last rank all but three."""
    valid = agent.buffer.valid.reshape(-1)
    if r == K - 1:
        keep = np.flatnonzero(valid)[:3]
        valid[:] = False
        valid[keep] = True
    else:
        valid[: 5 * r] = False
    agent.buffer.advantages.reshape(-1)[~valid] = 0.0


FIELDS = ("obs", "actions", "logp", "values", "advantages", "returns", "valid")


def stacked_buffer(agent, ref):
    """The ranks' buffers [T, N] stacked along time into ref's [K·T, N] (rank-major flat index)."""
    for name in FIELDS:
        mine = getattr(agent.buffer, name)
        every = comm.gather(np.ascontiguousarray(mine, dtype=np.float64))  # [K, T, N, ...]
        getattr(ref.buffer, name)[...] = every.reshape(getattr(ref.buffer, name).shape).astype(mine.dtype)


def union_permutations(perms, B, M):
    """One-process permutation whose j-th minibatch (size K·M) is the union of the ranks' j-th."""
    every = comm.gather(np.array(perms, dtype=np.float64)).astype(np.int64)  # [K, E, B]
    out = []
    for e in range(every.shape[1]):
        out.append(np.concatenate([every[q, e, j:j + M] + q * B for j in range(0, B, M) for q in range(K)]))
    return out


def identical_everywhere(name, x):
    comm.check_identical(np.ascontiguousarray(x), name)


# ---------------------------------------------------------------------------------------- PPO
def check_ppo(**extra):
    T, N, M = 16, 2, 8
    hp = dict(n_steps=T, n_envs=N, batch_size=M, n_epochs=4, dtype="float64", max_grad_norm=0.5, **extra)
    agent = PPO("CartPole-v1", seed=11, **hp)
    agent.collect_rollouts()
    agent.compute_advantages()
    make_uneven(agent)
    theta0 = agent.policy.params.copy()
    agent.rng = Recorder(agent.rng)
    agent.train()
    mine = agent.logger.pending()

    ref = PPO("CartPole-v1", seed=11, distributed=False, **{**hp, "n_steps": K * T, "batch_size": K * M})
    assert isinstance(ref.comm, distributed.SerialComm)
    ref.policy.params[...] = theta0
    stacked_buffer(agent, ref)
    ref.rng = Replay(union_permutations(agent.rng.perms, T * N, M))
    ref.train()
    want = ref.logger.pending()

    what = extra.get("objective", "clip")
    close(f"PPO ({what}) parameters", agent.policy.params, ref.policy.params)
    close(f"PPO ({what}) last gradient", agent.policy.grads, ref.policy.grads)
    close(f"PPO ({what}) Adam m", agent.optimizer.m, ref.optimizer.m)
    close(f"PPO ({what}) Adam v", agent.optimizer.v, ref.optimizer.v)
    assert agent.optimizer.t == ref.optimizer.t and agent.n_updates == ref.n_updates, (agent.n_updates, ref.n_updates)
    close(f"PPO ({what}) kl_coef", agent.kl_coef, ref.kl_coef)
    for key in ("train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl", "train/clip_fraction",
                "train/grad_norm", "train/explained_variance", "train/ratio_max", "train/ratio_min"):
        close(f"PPO ({what}) {key}", mine[key], want[key], 1e-9)
    assert mine["train/n_epochs"] == want["train/n_epochs"]
    identical_everywhere("PPO parameters", agent.policy.params)
    identical_everywhere("PPO Adam state", np.concatenate([agent.optimizer.m, agent.optimizer.v]))
    agent.close()
    ref.close()
    return want


stats = check_ppo(normalize_advantage=True)
assert stats["train/n_epochs"] == 4
# adaptive KL with an early stop: a large step size makes the KL cross 1.5·target_kl mid-update
stats = check_ppo(objective="kl_penalty", learning_rate=0.02, target_kl=0.002, normalize_advantage=False)
assert stats["train/n_epochs"] < 4, "the early stop did not trigger: the test would not test it"


# ---------------------------------------------------------------------------------------- VPG
T, N = 32, 2
hp = dict(n_steps=T, n_envs=N, n_epochs=3, dtype="float64", normalize_advantage=True, n_critic_updates=0,
          learning_rate=0.01, ent_coef=0.01)
agent = VPG("CartPole-v1", seed=5, **hp)
agent.collect_rollouts()
agent.compute_advantages()
make_uneven(agent)
theta0 = agent.policy.params.copy()
agent.train()
ref = VPG("CartPole-v1", seed=5, distributed=False, **{**hp, "n_steps": K * T})
ref.policy.params[...] = theta0
stacked_buffer(agent, ref)
ref.train()
close("VPG parameters", agent.policy.params, ref.policy.params)
close("VPG Adam m", agent.optimizer.m, ref.optimizer.m)
close("VPG Adam v", agent.optimizer.v, ref.optimizer.v)
for key in ("train/policy_loss", "train/entropy", "train/kl", "train/grad_norm"):
    close(f"VPG {key}", agent.logger.pending()[key], ref.logger.pending()[key], 1e-9)
identical_everywhere("VPG parameters", agent.policy.params)
agent.close()
ref.close()


# ---------------------------------------------------------------------------------------- TRPO
# Conjugate gradient amplifies rounding: on batches where it needs all 10 iterations, one process on
# the same data merely summed in another order differs by up to ~1e-7 after 10 steps (measured), so
# these cases are ones where CG converges in a few iterations; every Fisher-vector product itself
# agrees to rounding in any case.
def check_trpo(env_id, net):
    T, N = 32, 2
    hp = dict(n_steps=T, n_envs=N, dtype="float64", max_kl=0.01, cg_iters=10, cg_damping=0.1, **net)
    agent = TRPO(env_id, seed=3, **hp)
    agent.collect_rollouts()
    agent.compute_advantages()
    make_uneven(agent)
    theta0 = agent.policy.params.copy()
    ref = TRPO(env_id, seed=3, distributed=False, **{**hp, "n_steps": K * T})
    ref.policy.params[...] = theta0
    stacked_buffer(agent, ref)

    b, rb = agent.real_transitions(True), ref.real_transitions(True)
    sizes = comm.gather(np.array([float(b.advantages.size)]))[:, 0]
    assert len(set(sizes.tolist())) == K and sizes[-1] == 3, sizes  # uneven shares
    lo = int(sizes[:r].sum())
    close("normalised advantages", b.advantages, rb.advantages[lo:lo + b.advantages.size])

    g, _ = agent.policy_gradient(b.obs, b.actions, b.advantages)
    g_ref, _ = ref.policy_gradient(rb.obs, rb.actions, rb.advantages)
    close("TRPO gradient", g, g_ref)
    cg, _ = step_direction(agent.policy, b.obs, g, cg_iters=10, cg_damping=0.1, cg_tol=1e-10, comm=comm)
    cg_ref, _ = step_direction(ref.policy, rb.obs, g_ref, cg_iters=10, cg_damping=0.1, cg_tol=1e-10)
    close("CG solution", cg.x, cg_ref.x)
    assert cg.iterations == cg_ref.iterations, (cg.iterations, cg_ref.iterations)
    identical_everywhere("CG solution", cg.x)

    info = agent.policy_step(b.obs, b.actions, b.advantages)
    want = ref.policy_step(rb.obs, rb.actions, rb.advantages)
    assert info.accepted == want.accepted and info.status == want.status, (info.status, want.status)
    assert info.backtracks == want.backtracks and info.cg_iterations == want.cg_iterations
    close("TRPO step", agent.policy.params - theta0, ref.policy.params - theta0)
    for field in ("kl", "surrogate_gain", "expected_gain", "step_fraction", "cg_residual", "quadratic_kl", "grad_norm"):
        close(f"TRPO {field}", getattr(info, field), getattr(want, field))
    close("TRPO surrogate_old", info.surrogate_old, want.surrogate_old, scale=1.0)  # mean of normalised Â: 0
    identical_everywhere("TRPO parameters", agent.policy.params)

    # a step against the gradient is rejected everywhere, θ kept bit for bit
    theta1 = agent.policy.params.copy()
    g, logp_old = agent.policy_gradient(b.obs, b.actions, b.advantages)
    bad = trpo_step(agent.policy, b.obs, b.actions, logp_old, b.advantages, -g, max_kl=0.01, comm=comm)
    g_ref, logp_ref = ref.policy_gradient(rb.obs, rb.actions, rb.advantages)
    bad_ref = trpo_step(ref.policy, rb.obs, rb.actions, logp_ref, rb.advantages, -g_ref, max_kl=0.01)
    assert bad.status == bad_ref.status == "rejected", (bad.status, bad_ref.status)
    assert agent.policy.params.tobytes() == theta1.tobytes()

    # the critic's minibatches with uneven batches (B_r real samples, minibatches of 8 per rank)
    Mc = 8
    recorder = Recorder(np.random.default_rng(100 + r))
    loss = fit_value_minibatches(agent.policy, agent.critic_optimizer, b.obs, b.returns, n_epochs=2, batch_size=Mc,
                                 max_grad_norm=0.5, rng=recorder, comm=comm)
    every_obs = comm.concat(b.obs.reshape(-1)).reshape(-1, b.obs.shape[1])
    every_ret = comm.concat(b.returns)
    ref.policy.params[...] = theta1
    perms = [comm.concat(p.astype(np.float64)).astype(np.int64) for p in recorder.perms]
    n_mb = int(max(-(-s // Mc) for s in sizes))
    ref_losses = []
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    for p in perms:  # one epoch: step j trains on the union of the ranks' j-th minibatches (rank q's from its own perm)
        for j in range(n_mb):
            idx = np.concatenate([starts[q] + p[starts[q]:starts[q + 1]][j * Mc:(j + 1) * Mc] for q in range(K)])
            ref_losses.append(fit_value_minibatches(ref.policy, ref.critic_optimizer, every_obs[idx], every_ret[idx],
                                                    n_epochs=1, batch_size=idx.size, max_grad_norm=0.5,
                                                    rng=np.random.default_rng(0)))
    close("critic parameters", agent.policy.value_params, ref.policy.value_params)
    close("critic Adam v", agent.critic_optimizer.v, ref.critic_optimizer.v)
    close("critic loss", loss, float(np.mean(ref_losses)))
    identical_everywhere("critic parameters", agent.policy.value_params)
    agent.close()
    ref.close()



for env_id, net in (("CartPole-v1", {}), ("Pendulum-v1", {"net_arch": [8]})):
    check_trpo(env_id, net)

print(f"OK rank {r} of {K}", flush=True)
