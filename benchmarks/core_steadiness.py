"""How steadily this machine's cores run the same work: one PPO gradient step, timed step by step.

    python benchmarks/core_steadiness.py                  # one process alone, then 2 at once
    python benchmarks/core_steadiness.py --procs 1 2 4 --steps 6000
    python benchmarks/core_steadiness.py --work python      # the same with a plain Python loop

The work is fixed: the forward and backward pass of one PPO minibatch at RL Zoo's CartPole-v1 sizes
(256 observations of 4, two 64-64 tanh networks, float32, one BLAS thread), the same arrays every
step; ``--work python`` times a loop of 10,000 Python integer additions instead (no NumPy).  For
each process: the step time's 10th, 50th and 90th percentiles; "slow" = the share of
steps taking more than 1.3x the process's 10th percentile, and P(slow | slow) the chance that the
step after a slow one is slow too (runs of slow steps, not isolated ones).  With several processes
at once (started together, timed on the same monotonic clock): "any slow" = the share of the
common time during which at least one of them was inside a slow step.  Ranks in lockstep (one
allreduce per gradient step) advance at the pace of the slowest, so on a machine whose cores each
have slow spells of their own, they pay for every core's spells: the share "any slow" rather than
one core's "slow".  And for K processes against one alone (``--procs`` starting with 1): each
one's median step over the lone process's, and their summed throughput in units of the lone
process's, the most K learners in lockstep or not can get from these cores for this work.  On
dedicated, equal cores: about 1.00x each, K times the throughput, slow shares near 0.  Nothing here
asserts.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

SLOW = 1.3  # a step is slow above this multiple of the process's 10th percentile


def _gradient_step():
    """One PPO minibatch's forward and backward pass, on the same arrays every call."""
    import gymnasium as gym

    from refrl.policy import ActorCritic

    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    policy = ActorCritic(env.observation_space, env.action_space, rng=rng)
    obs = rng.standard_normal((256, 4)).astype(np.float32)
    actions = rng.integers(0, 2, 256)
    dlogp = rng.standard_normal(256).astype(np.float32) / 256
    dvalues = rng.standard_normal(256).astype(np.float32) / 256

    def step() -> None:
        _, _, _, cache = policy.evaluate(obs, actions)
        policy.backward(cache, dlogp=dlogp, dvalues=dvalues, accumulate=False)

    return step


def _python_loop():
    """A loop of plain Python integer additions (no NumPy, no vector instructions)."""
    def step() -> None:
        total = 0
        for i in range(10_000):
            total += i

    return step


WORK = {"gradient": _gradient_step, "python": _python_loop}


def worker(work: str, steps: int, start_at: float) -> None:
    """Time ``steps`` identical steps of ``work``; print the (start, end) of each as JSON."""
    step = WORK[work]()
    while time.time() < start_at:  # every process starts on the same second
        time.sleep(0.001)
    t = np.empty((steps, 2))
    for i in range(steps):
        t[i, 0] = time.monotonic()
        step()
        t[i, 1] = time.monotonic()
    print(json.dumps(t.tolist()))


def _slow_intervals(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = t[:, 1] - t[:, 0]
    slow = d > SLOW * np.percentile(d, 10)
    return slow, t[slow]


def _covered(intervals: list[np.ndarray], lo: float, hi: float) -> float:
    """Length of the union of the intervals, clipped to [lo, hi]."""
    iv = np.clip(np.concatenate(intervals), lo, hi)
    iv = iv[np.argsort(iv[:, 0])]
    total, end = 0.0, lo
    for a, b in iv:
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def report(times: list[np.ndarray], alone_p50: float | None) -> float:
    """Print the statistics of each process (and of their common time); return the median step of the first."""
    slow_iv = []
    for p, t in enumerate(times):
        d = (t[:, 1] - t[:, 0]) * 1e6
        slow, iv = _slow_intervals(t)
        slow_iv.append(iv)
        after = slow[1:][slow[:-1]]
        p_ss = f"{after.mean():.2f}" if after.size else "-"
        q10, q50, q90 = np.percentile(d, [10, 50, 90])
        print(f"    process {p}: step p10 {q10:6.0f} us  p50 {q50:6.0f}  p90 {q90:6.0f}   slow {slow.mean():5.1%}"
              f"   P(slow | slow) {p_ss}")
    p50s = [float(np.median(t[:, 1] - t[:, 0])) for t in times]
    if alone_p50 is not None and len(times) > 1:
        print(f"    median step vs one process alone: {' '.join(f'{x / alone_p50:.2f}x' for x in p50s)};"
              f" throughput {sum(alone_p50 / x for x in p50s):.2f}x one process's")
    if len(times) > 1:
        lo, hi = max(t[0, 0] for t in times), min(t[-1, 1] for t in times)
        if hi > lo:
            one = np.mean([_covered([iv], lo, hi) for iv in slow_iv]) / (hi - lo)
            anyone = _covered(slow_iv, lo, hi) / (hi - lo)
            print(f"    common {hi - lo:.1f} s: time inside a slow step, one process {one:.1%}, any process {anyone:.1%}")
    return p50s[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--work", choices=sorted(WORK), default="gradient",
                   help="gradient: one PPO minibatch step (default); python: a plain Python loop")
    p.add_argument("--worker", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        worker(args.work, args.steps, args.worker)
        return
    what = "PPO gradient steps (CartPole-v1 zoo sizes)" if args.work == "gradient" else "Python loops"
    print(f"{os.cpu_count()} cores; {args.steps} identical {what} per process")
    alone_p50 = None
    for k in args.procs:
        start_at = time.time() + 2.0
        cmd = [sys.executable, os.path.abspath(__file__), "--steps", str(args.steps), "--work", args.work,
               "--worker", str(start_at)]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
        times = [np.array(json.loads(proc.communicate()[0])) for proc in procs]
        print(f"  {k} process{'es' if k > 1 else ''} at once")
        p50 = report(times, alone_p50)
        if k == 1:
            alone_p50 = p50


if __name__ == "__main__":
    main()
