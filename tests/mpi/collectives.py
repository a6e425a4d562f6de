"""Run under mpirun (2 or 3 ranks): each collective of refrl.distributed against one process on all data.

Every rank builds the whole data set from the same seed, keeps its own uneven share, and
compares the collective's result with the one-process value computed on the concatenation.
Prints ``OK rank r`` on success; any failed check raises (and ends the job non-zero).
"""

import numpy as np

from refrl import distributed
from refrl.normalization import RewardNormalizer, RunningMeanStd
from common import rel

RTOL = 1e-10

comm = distributed.world()
K, r = comm.size, comm.rank
assert isinstance(comm, distributed.MPIComm) and K in (2, 3), (type(comm).__name__, K)


# ---- uneven shares: rank r holds rows bounds[r]:bounds[r+1]
sizes = {2: [600, 400], 3: [611, 1, 388]}[K]
bounds = np.concatenate([[0], np.cumsum(sizes)])
lo, hi = bounds[r], bounds[r + 1]
data_rng = np.random.default_rng(2024)

# ---- broadcast_: bit-identical to rank 0's array, float64 and float32, in place on a slice
for dtype in (np.float64, np.float32):
    expected = np.random.default_rng(0).standard_normal(1413).astype(dtype)
    big = np.random.default_rng(100 + r).standard_normal(1500).astype(dtype)  # differs per rank
    view = big[50:50 + 1413]
    if r == 0:
        view[:] = expected
    out = comm.broadcast_(view)
    assert out is view
    assert view.tobytes() == expected.tobytes(), f"broadcast {dtype}: rank {r} differs from rank 0"
    assert np.array_equal(big[:50], np.random.default_rng(100 + r).standard_normal(1500).astype(dtype)[:50])
    comm.check_identical(view, "broadcast array")

# ---- weighted_mean: sum_r W_r g_r / sum_r W_r == the weighted mean over the concatenated samples
n_all, dim = int(bounds[-1]), 257
per_sample = data_rng.normal(0.3, 2.0, (n_all, dim))
weights = data_rng.random(n_all) * (data_rng.random(n_all) > 0.2)  # some rows weigh 0
ref = (weights[:, None] * per_sample).sum(0) / weights.sum()
w_r = float(weights[lo:hi].sum())
g_r = (weights[lo:hi, None] * per_sample[lo:hi]).sum(0) / w_r if w_r > 0 else np.zeros(dim)
res = comm.weighted_mean(g_r, w_r)
assert res.mean.dtype == np.float64 and res.mean.shape == (dim,)
assert rel(res.mean, ref) <= RTOL, ("weighted_mean", rel(res.mean, ref))
assert abs(res.weight - weights.sum()) <= RTOL * weights.sum()
comm.check_identical(res.mean, "weighted mean")
plain = comm.sum(g_r) / K  # the anchors' plain average: not the global gradient with uneven shares
assert rel(plain, ref) > 1e-3, "uneven shares should make the plain average differ"
# a rank without real data (weight 0) contributes nothing
res0 = comm.weighted_mean(g_r if r != 0 else np.full(dim, 1e6), w_r if r != 0 else 0.0)
ref0 = (weights[bounds[1]:, None] * per_sample[bounds[1]:]).sum(0) / weights[bounds[1]:].sum()
assert rel(res0.mean, ref0) <= RTOL
# every rank without data: weight 0 everywhere, zeros, the same skip decision on all ranks
empty = comm.weighted_mean(np.ones(4), 0.0)
assert empty.weight == 0.0 and not empty.mean.any()
# float32 gradients are summed in float64 and returned in float32
res32 = comm.weighted_mean(g_r.astype(np.float32), w_r)
assert res32.mean.dtype == np.float32 and rel(res32.mean, ref) <= 1e-6

# ---- sum, gather, concat, scalar decisions
stats = np.array([float(r), 1.0, 0.5 * r * r])
assert np.array_equal(comm.sum(stats), np.array([sum(range(K)), K, 0.5 * sum(i * i for i in range(K))]))
assert np.array_equal(comm.gather(stats)[:, 0], np.arange(K, dtype=np.float64))
cat = comm.concat(np.arange(lo, hi, dtype=np.float64))
assert np.array_equal(cat, np.arange(n_all, dtype=np.float64))
assert comm.any(r == K - 1) and not comm.any(False)
assert comm.all(True) and not comm.all(r != 0)
assert comm.sum_int(hi - lo) == n_all

# ---- RunningMeanStd merged across ranks == statistics of the concatenated valid rows
obs = data_rng.normal([1e3, -2.0, 0.0], [1.0, 3.0, 1e-3], (n_all, 4, 3))  # [T, N, d], large offset in dim 0
valid = data_rng.random((n_all, 4)) > 0.1
rms = RunningMeanStd((3,))
half = (lo + hi) // 2
rms.update(obs[lo:half], valid[lo:half], comm=comm)
rms.update(obs[half:hi], valid[half:hi], comm=comm)
rows = np.concatenate([obs[bounds[q]:(bounds[q] + bounds[q + 1]) // 2][valid[bounds[q]:(bounds[q] + bounds[q + 1]) // 2]]
                       for q in range(K)] + [obs[(bounds[q] + bounds[q + 1]) // 2:bounds[q + 1]]
                                             [valid[(bounds[q] + bounds[q + 1]) // 2:bounds[q + 1]]] for q in range(K)])
assert rms.count == valid.sum()
assert np.all(np.abs(rms.mean - rows.mean(0)) <= RTOL * np.abs(rows.mean(0)) + RTOL * rows.std(0)), ("rms mean",)
assert np.all(np.abs(rms.var - rows.var(0)) <= RTOL * rows.var(0)), ("rms var", rms.var, rows.var(0))
comm.check_identical(np.concatenate([[rms.count], rms.mean, rms.var]), "observation statistics")

# ---- RewardNormalizer: return statistics merged over ranks; each rank keeps its own accumulators
rew = data_rng.normal(1.0, 0.5, (n_all, 4))
term = data_rng.random((n_all, 4)) < 0.02
norm = RewardNormalizer(4, 0.99)
scaled = norm(rew[lo:hi], term[lo:hi], valid[lo:hi], comm=comm)
all_returns = np.concatenate([RewardNormalizer(4, 0.99).returns(rew[bounds[q]:bounds[q + 1]], term[bounds[q]:bounds[q + 1]],
                                                                 valid[bounds[q]:bounds[q + 1]])[valid[bounds[q]:bounds[q + 1]]]
                              for q in range(K)])
assert norm.return_rms.count == all_returns.size
assert abs(norm.return_rms.var - all_returns.var()) <= RTOL * all_returns.var()
assert np.array_equal(scaled, np.clip(rew[lo:hi] / np.sqrt(norm.return_rms.var + 1e-8), -10, 10))
comm.check_identical(norm.return_rms.var, "return statistics")

# ---- per-rank randomness: distinct env seeds and streams, identical initialisation stream
seeds = comm.gather(np.array([float(distributed.rank_seed(7, r, K))]))[:, 0]
assert len(set(seeds.tolist())) == K, seeds
draw = np.random.default_rng(distributed.rank_seed_sequence(7, r, K)).random(4)
draws = comm.gather(draw)
assert all(not np.array_equal(draws[0], draws[q]) for q in range(1, K))
init = np.random.default_rng(np.random.SeedSequence(7)).random(4)
comm.check_identical(init, "initialisation stream")

# ---- a guarded region that succeeds everywhere changes nothing
with comm.guard():
    local = float(r)
assert comm.sum(np.array([local]))[0] == sum(range(K))

# ---- check_identical detects a difference (on every rank)
try:
    comm.check_identical(np.array([float(r == K - 1)]), "probe")
except RuntimeError as exc:
    assert f"ranks [{K - 1}] differ" in str(exc), str(exc)
else:
    raise AssertionError("check_identical missed a difference")

print(f"OK rank {r} of {K}", flush=True)
