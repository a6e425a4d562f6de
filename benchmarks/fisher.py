"""Fisher-vector product: native C++ operator vs the NumPy path, and a 10-iteration CG solve.

(64, 64) tanh policy; Categorical head (obs 8, 4 actions, LunarLander-sized) and diagonal
Gaussian head (obs 17, 6 actions, HalfCheetah-sized); batches 256 and 2048; float32 (the
policy default) and float64. Times are the minimum over repeats of the mean per call (robust to
other processes on a shared machine: see best_time); ratios are NumPy time / native time from the same run.

  NumPy           per product: policy forward + R-operator J v (refrl.nn) + M (distributions)
                  + backward Jᵀ(·): what the Python API computes without a cache
  NumPy cached    forward once at θ_old, then per product J v from the cache + M + backward
                  (the fair baseline: the same caching as the native operator)
  native          native.fisher_operator(...) built once (forward pass, activations cached),
                  then op(v) per product (GIL released)
  CG10            kernels.conjugate_gradient(A, g, iters=10, tol=0, damping=0.1): NumPy cached
                  FVP as a Python callable vs the native operator (whole solve in C++);
                  the native figure includes building the operator, the NumPy one its forward.
  subsample=5     native operator on every 5th observation (OpenAI Baselines' TRPO setting)

Run:  python benchmarks/fisher.py                     (NumPy's BLAS with its default threads)
      OPENBLAS_NUM_THREADS=1 python benchmarks/fisher.py   (single-threaded BLAS; the native code
                                                           is single-threaded in both runs)
Options: --quick (fewer repeats), --dtype float32|float64|both, --isa generic|avx2|avx512 (force a
native kernel variant; generic = the baseline build for CPUs without AVX2)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from gymnasium import spaces

from refrl import _core, kernels, native
from refrl.policy import ActorCritic


def best_time(fn, repeat: int) -> float:
    """Per-call time in seconds: the minimum over `repeat` timed runs, each of as many calls as
    fill about 2 ms (one call if it takes longer). On a shared machine the minimum is the
    figure least disturbed by other processes, for the NumPy and the native path alike."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    number = max(1, int(2e-3 / max(once, 1e-7)))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def numpy_fvp(pol: ActorCritic, x: np.ndarray, damping: float, cache=None):
    """The NumPy Fisher-vector product through refrl.nn / refrl.distributions (cache optional)."""
    B = x.shape[0]
    if cache is None:

        def fvp(v):
            y, pi_cache = pol.pi.forward(x)
            dp = pol.dist_params_from_output(y)
            mjv = pol.dist.fisher_product(dp, pol.dist_params_jvp(pi_cache, v))
            mjv /= B
            out = np.zeros(pol.n_policy_params, dtype=pol.dtype)
            pol.backward_dist_params({"B": B, "pi": pi_cache}, mjv, out=out)
            return out + damping * v

        return fvp
    y, pi_cache = cache
    dp = pol.dist_params_from_output(y)
    c = {"B": B, "pi": pi_cache}

    def fvp_cached(v):
        mjv = pol.dist.fisher_product(dp, pol.dist_params_jvp(pi_cache, v))
        mjv /= B
        out = np.zeros(pol.n_policy_params, dtype=pol.dtype)
        pol.backward_dist_params(c, mjv, out=out)
        return out + damping * v

    return fvp_cached


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dtype", default="both", choices=["float32", "float64", "both"])
    ap.add_argument("--isa", default="auto", choices=["auto", "generic", "avx2", "avx512"],
                    help="native kernel variant (default: the best this CPU supports)")
    args = ap.parse_args()
    repeat = 5 if args.quick else 25
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [np.dtype(args.dtype).type]
    print(
        f"# {platform.processor() or platform.machine()}, numpy {np.__version__}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"native kernel variant: {_core.KERNEL_ISA if args.isa == 'auto' else args.isa}, cores: {os.cpu_count()}, "
        f"load average at start: {os.getloadavg()[0]:.1f}"
    )
    print(
        "| head | dtype | B | NumPy µs | NumPy cached µs | native µs | × vs NumPy | × vs cached "
        "| CG10 NumPy ms | CG10 native ms | × CG10 | subsample=5 µs | × from subsample |"
    )
    print("|" + "---|" * 13)
    rng = np.random.default_rng(0)
    damping = 0.1
    heads = [("Categorical", spaces.Discrete(4), 8), ("Gaussian", spaces.Box(-1, 1, (6,)), 17)]
    for name, act_space, obs_dim in heads:
        for dt in dtypes:
            pol = ActorCritic(
                spaces.Box(-np.inf, np.inf, (obs_dim,)), act_space, net_arch=(64, 64), dtype=dt, rng=rng
            )
            # move away from the init's tiny policy head so the numbers are generic
            pol.policy_params[...] += (0.1 * rng.standard_normal(pol.n_policy_params)).astype(dt)
            for B in (256, 2048):
                obs = rng.standard_normal((B, obs_dim)).astype(dt)
                x = pol.preprocess_obs(obs)
                v = rng.standard_normal(pol.n_policy_params).astype(dt)
                f_np = numpy_fvp(pol, x, damping)
                f_npc = numpy_fvp(pol, x, damping, cache=pol.pi.forward(x))
                op = native.fisher_operator(pol, obs, damping=damping, isa=args.isa)
                op5 = native.fisher_operator(pol, obs, damping=damping, subsample=5, isa=args.isa)
                # the three paths agree (sanity, not timing)
                ref = f_npc(v)
                tol = 1e-3 if dt == np.float32 else 1e-9
                assert np.allclose(op(v), ref, rtol=tol, atol=tol * np.abs(ref).max())
                t_np = best_time(lambda: f_np(v), repeat)
                t_npc = best_time(lambda: f_npc(v), repeat)
                t_nat = best_time(lambda: op(v), repeat)
                t_sub = best_time(lambda: op5(v), repeat)

                def cg_numpy():
                    f = numpy_fvp(pol, x, 0.0, cache=pol.pi.forward(x))
                    return kernels.conjugate_gradient(f, v, iters=10, tol=0.0, damping=damping)

                def cg_native():
                    o = native.fisher_operator(pol, obs, isa=args.isa)
                    return kernels.conjugate_gradient(o, v, iters=10, tol=0.0, damping=damping)

                r1, r2 = cg_numpy(), cg_native()
                assert r1.iterations == r2.iterations == 10
                assert np.allclose(r1.x, r2.x, rtol=10 * tol, atol=10 * tol * np.abs(r1.x).max())
                t_cg_np = best_time(cg_numpy, max(3, repeat // 3))
                t_cg_nat = best_time(cg_native, max(3, repeat // 3))
                print(
                    f"| {name} | {np.dtype(dt).name} | {B} | {t_np * 1e6:.0f} | {t_npc * 1e6:.0f} | {t_nat * 1e6:.0f} "
                    f"| {t_np / t_nat:.2f} | {t_npc / t_nat:.2f} | {t_cg_np * 1e3:.2f} | {t_cg_nat * 1e3:.2f} "
                    f"| {t_cg_np / t_cg_nat:.2f} | {t_sub * 1e6:.0f} | {t_nat / t_sub:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
