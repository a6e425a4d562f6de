"""Speed of refrl's compiled kernels against their oracles and the best plain-NumPy code.

Run:  python benchmarks/kernels.py            (about half a minute; prints a Markdown report)

Everything is measured in one run, as ratios, because the machine is shared and noisy:
each figure is the best (minimum) over many rounds of a short timed loop, with the
functions being compared timed interleaved, round by round. Oracles are timed once.
Targets: at T=2048, N=8 GAE ≥ 10× the best NumPy formulation and ≥ 25 % of
the memory bandwidth of a plain NumPy copy of the same bytes; at 65,536 samples the clipped
surrogate with gradient and statistics ≥ 3× the NumPy expression.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from refrl import _core, kernels, oracle


def _loops_for(fn: Callable[[], object], min_time: float) -> int:
    fn()  # warm up
    loops = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - t0 >= min_time:
            return loops
        loops *= 2


def best_times(fns: dict[str, Callable[[], object]], repeats: int, min_time: float = 0.005) -> dict[str, float]:
    """Seconds per call of each function: the minimum over ``repeats`` rounds of the mean of a
    loop of >= min_time. The functions are timed interleaved, round by round, so that a burst
    of load from other processes hits all of them alike; short loops and the minimum over many
    rounds keep preempted rounds out of the figure."""
    loops = {name: _loops_for(fn, min_time) for name, fn in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            n = loops[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
    return best


def once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# GAE


def gae_numpy(rewards, values, next_values, terminated, truncated, gamma, lam):
    """The best plain-NumPy GAE: whole-array δ and trace coefficients, then one loop over T
    with vector operations over the N envs (CleanRL's loop, with the two flags kept apart)."""
    delta = rewards + gamma * np.where(terminated, 0.0, next_values).astype(rewards.dtype) - values
    coef = (gamma * lam) * ~(terminated | truncated)
    adv = np.empty_like(rewards)
    last = np.zeros(rewards.shape[1], dtype=rewards.dtype)
    for t in range(rewards.shape[0] - 1, -1, -1):
        last = delta[t] + coef[t] * last
        adv[t] = last
    return adv, adv + values


def bench_gae(T: int, N: int, dtype, rng, repeats: int) -> dict:
    r, v, vn = (rng.normal(size=(T, N)).astype(dtype) for _ in range(3))
    term = rng.random((T, N)) < 0.01
    trunc = rng.random((T, N)) < 0.005
    args = (r, v, vn, term, trunc, 0.99, 0.95)
    got = kernels.gae(*args)
    np_adv, _ = gae_numpy(*args)
    tol = 1e-9 if dtype == np.float64 else 1e-3
    assert np.allclose(got.advantages, np_adv, rtol=tol, atol=tol), "NumPy formulation disagrees"
    raw = getattr(_core, f"gae_{kernels._SUFFIX[np.dtype(dtype)]}")
    t8, u8 = term.view(np.uint8), trunc.view(np.uint8)
    itemsize = np.dtype(dtype).itemsize
    moved = T * N * (3 * itemsize + 2 * 1 + 2 * itemsize)  # read r, V, V', 2 flag bytes; write A, ret
    src = np.ones(moved // 2, dtype=np.uint8)
    dst = np.empty_like(src)
    res = best_times(
        {
            "kernel": lambda: kernels.gae(*args),
            "raw _core call": lambda: raw(r, v, vn, t8, u8, 0.99, 0.95),
            "numpy": lambda: gae_numpy(*args),
            "copy of the same bytes": lambda: np.copyto(dst, src),  # reads + writes `moved` bytes
        },
        repeats,
    )
    res["oracle"] = once(lambda: oracle.gae(*args))
    res["bytes"] = moved
    return res


# ---------------------------------------------------------------------------------------------
# clipped surrogate


def surrogate_numpy(logp, logp_old, adv, eps):
    """The NumPy expression: objective, gradient with respect to logp, and the statistics."""
    log_ratio = logp - logp_old
    ratio = np.exp(log_ratio)
    surr1 = ratio * adv
    surr2 = np.clip(ratio, 1 - eps, 1 + eps) * adv
    objective = np.minimum(surr1, surr2).mean()
    grad = np.where(surr1 <= surr2, surr1, 0) / len(logp)
    clip_fraction = (np.abs(ratio - 1) > eps).mean()
    approx_kl = ((ratio - 1) - log_ratio).mean()
    return objective, grad, clip_fraction, approx_kl, ratio.min(), ratio.mean(), ratio.max()


def bench_surrogate(B: int, dtype, rng, repeats: int) -> dict:
    logp_old = rng.normal(-1.0, 0.5, size=B).astype(dtype)
    logp = (logp_old + rng.normal(0, 0.2, size=B)).astype(dtype)
    adv = rng.normal(size=B).astype(dtype)
    got = kernels.clipped_surrogate(logp, logp_old, adv, 0.2)
    want = surrogate_numpy(logp, logp_old, adv, 0.2)
    assert abs(got.objective - want[0]) < 1e-4 and abs(got.approx_kl - want[3]) < 1e-4, "NumPy expression disagrees"
    mask = rng.random(B) < 0.9
    res = best_times(
        {
            "kernel": lambda: kernels.clipped_surrogate(logp, logp_old, adv, 0.2),
            "kernel, bool mask": lambda: kernels.clipped_surrogate(logp, logp_old, adv, 0.2, mask),
            "numpy": lambda: surrogate_numpy(logp, logp_old, adv, 0.2),
        },
        repeats,
    )
    res["oracle"] = once(lambda: oracle.clipped_surrogate(logp, logp_old, adv, 0.2))
    return res


# ---------------------------------------------------------------------------------------------
# conjugate gradient


def cg_numpy(A, b, iters, tol=1e-10):
    """The usual NumPy CG (OpenAI baselines' cg.py) with a matrix-vector product."""
    x = np.zeros_like(b)
    r = b.copy()
    p = b.copy()
    rr = r @ r
    for _ in range(iters):
        z = A @ p
        alpha = rr / (p @ z)
        x += alpha * p
        r -= alpha * z
        rr_new = r @ r
        if rr_new <= tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def bench_cg(n: int, iters: int, rng, repeats: int) -> dict:
    M = rng.normal(size=(n, n)) / np.sqrt(n)
    A = M @ M.T + np.eye(n)
    b = rng.normal(size=n)
    op = _core.DenseOperatorF64(A)
    got = kernels.conjugate_gradient(op, b, iters=iters)
    assert np.allclose(got.x, cg_numpy(A, b, iters), rtol=1e-8, atol=1e-10)
    res = best_times(
        {
            "kernel, native operator": lambda: kernels.conjugate_gradient(op, b, iters=iters),
            "kernel, Python callable": lambda: kernels.conjugate_gradient(lambda v: A @ v, b, iters=iters),
            "numpy": lambda: cg_numpy(A, b, iters),
        },
        repeats,
    )
    res["oracle"] = once(lambda: oracle.conjugate_gradient(A, b, iters=iters))
    return res


def _us(t: float) -> str:
    return f"{t * 1e6:,.1f} µs" if t < 0.1 else f"{t * 1e3:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"# refrl kernel benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} cpus, best of {args.repeats} interleaved rounds\n")

    T, N = 2048, 8
    print(f"## GAE, T={T}, N={N}\n")
    print("| dtype | kernel | raw _core call | best NumPy | oracle | kernel vs NumPy | kernel vs oracle "
          "| kernel bandwidth | copy bandwidth | kernel / copy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dtype in (np.float32, np.float64):
        res = bench_gae(T, N, dtype, rng, args.repeats)
        bw_k = res["bytes"] / res["kernel"] / 1e9
        bw_c = res["bytes"] / res["copy of the same bytes"] / 1e9
        print(f"| {np.dtype(dtype).name} | {_us(res['kernel'])} | {_us(res['raw _core call'])} | {_us(res['numpy'])} "
              f"| {_us(res['oracle'])} | {res['numpy'] / res['kernel']:.0f}× | {res['oracle'] / res['kernel']:,.0f}× "
              f"| {bw_k:.1f} GB/s | {bw_c:.1f} GB/s | {bw_k / bw_c:.0%} |")

    B = 65536
    print(f"\n## Clipped surrogate with gradient and statistics, B={B}\n")
    print("| dtype | kernel | kernel, bool mask | NumPy expression | oracle | kernel vs NumPy | kernel vs oracle |")
    print("|---|---|---|---|---|---|---|")
    for dtype in (np.float32, np.float64):
        res = bench_surrogate(B, dtype, rng, args.repeats)
        print(f"| {np.dtype(dtype).name} | {_us(res['kernel'])} | {_us(res['kernel, bool mask'])} | {_us(res['numpy'])} "
              f"| {_us(res['oracle'])} | {res['numpy'] / res['kernel']:.1f}× | {res['oracle'] / res['kernel']:,.0f}× |")

    print("\n## Conjugate gradient, dense SPD matrix, 10 iterations, float64\n")
    print("| n | native operator | Python callable | NumPy CG | oracle | native vs NumPy | callable vs NumPy |")
    print("|---|---|---|---|---|---|---|")
    for n in (64, 512):
        res = bench_cg(n, 10, rng, args.repeats)
        print(f"| {n} | {_us(res['kernel, native operator'])} | {_us(res['kernel, Python callable'])} "
              f"| {_us(res['numpy'])} | {_us(res['oracle'])} | {res['numpy'] / res['kernel, native operator']:.1f}× "
              f"| {res['numpy'] / res['kernel, Python callable']:.1f}× |")


if __name__ == "__main__":
    main()
