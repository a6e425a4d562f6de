"""Speed of every compiled kernel of two refrl installs (e.g. before and after a change), alternated.

Each install is a Python interpreter with refrl installed. For every repetition the two run one
after the other, each in its own process, timing the raw ``refrl._core`` calls on fixed inputs
(best of many short loops, microseconds per call): GAE, the clipped surrogate, Adam, the native
MLP's J v / Jᵀu, the Fisher operator, and the acting network's forward and sampling, in float32
and float64. Prints per kernel the best time over the repetitions of each install (the figure
least disturbed by other jobs on a shared machine), the medians, and new / base (< 1: the new
install is faster).

    python benchmarks/core_ab.py --base /tmp/basev/bin/python --new .venv/bin/python --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, time
import numpy as np
from refrl import _core

def best(fn, rounds=15, min_time=0.004):
    fn()
    loops = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(loops): fn()
        if time.perf_counter() - t0 >= min_time: break
        loops *= 2
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(loops): fn()
        out.append((time.perf_counter() - t0) / loops)
    return min(out) * 1e6

rng = np.random.default_rng(0)
res = {}
for dt, sfx in ((np.float32, "f32"), (np.float64, "f64")):
    T, N = 2048, 8
    r, v, vn = (rng.normal(size=(T, N)).astype(dt) for _ in range(3))
    term, trunc = ((rng.random((T, N)) < 0.02).astype(np.uint8) for _ in range(2))
    f = getattr(_core, "gae_" + sfx)
    res[f"gae {sfx} 2048x8"] = best(lambda: f(r, v, vn, term, trunc, 0.99, 0.95))
    for B in (256, 65536):
        lpo = rng.normal(-1, 0.5, size=B).astype(dt); lp = (lpo + rng.normal(0, 0.2, size=B)).astype(dt)
        adv = rng.normal(size=B).astype(dt); w = np.ones(B, dt)
        f = getattr(_core, "clipped_surrogate_" + sfx)
        res[f"surrogate {sfx} {B}"] = best(lambda: f(lp, lpo, adv, w, 0.2))
    n = 9000
    th, g, m = (rng.normal(size=n).astype(dt) for _ in range(3)); vv = rng.uniform(0, 1, size=n).astype(dt)
    f = getattr(_core, "adam_step_" + sfx)
    res[f"adam {sfx} {n}"] = best(lambda: f(th, g, m, vv, 5, 1e-4, 0.9, 0.999, 1e-5))
    sizes = [8, 64, 64, 4]
    P = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    theta = (rng.normal(size=P) * 0.3).astype(dt); x = rng.normal(size=(2048, 8)).astype(dt)
    op = getattr(_core, "FisherOperator" + sfx.upper())(theta, sizes, "tanh", "categorical", x, damping=0.1)
    vec = rng.normal(size=P).astype(dt)
    res[f"fisher F v {sfx} 2048 cat"] = best(lambda: op(vec), rounds=9)
    res[f"fisher build {sfx} 2048 cat"] = best(lambda: getattr(_core, "FisherOperator" + sfx.upper())(theta, sizes, "tanh", "categorical", x), rounds=9)
    pis, vfs = [4, 64, 64, 2], [4, 64, 64, 1]
    npi = sum(a * b + b for a, b in zip(pis[:-1], pis[1:])); nvf = sum(a * b + b for a, b in zip(vfs[:-1], vfs[1:]))
    th2 = (rng.normal(size=npi + nvf) * 0.3).astype(dt); obs = rng.normal(size=(8, 4)).astype(dt); u = rng.random(8)
    net = getattr(_core, "ActNet" + sfx.upper())(pis, vfs, npi, "tanh")
    res[f"act categorical {sfx} 8 envs"] = best(lambda: net.act_categorical(th2, obs, u))
    pis, vfs = [3, 64, 64, 1], [3, 64, 64, 1]
    npi = sum(a * b + b for a, b in zip(pis[:-1], pis[1:])); nvf = sum(a * b + b for a, b in zip(vfs[:-1], vfs[1:]))
    th3 = (rng.normal(size=npi + 1 + nvf) * 0.3).astype(dt); obs3 = rng.normal(size=(4, 3)).astype(dt)
    eps = rng.standard_normal((4, 1)); lo, hi = -2 * np.ones(1, dt), 2 * np.ones(1, dt)
    net3 = getattr(_core, "ActNet" + sfx.upper())(pis, vfs, npi + 1, "tanh")
    res[f"act gaussian {sfx} 4 envs"] = best(lambda: net3.act_gaussian(th3, obs3, eps, -20.0, 2.0, lo, hi))
print(json.dumps(res))
"""


def run(python: str) -> dict[str, float]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([python, "-c", CHILD], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="Python interpreter of the baseline install")
    ap.add_argument("--new", required=True, help="Python interpreter of the changed install")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    base, new = [], []
    for _ in range(args.reps):
        base.append(run(args.base))
        new.append(run(args.new))
    print("| kernel | base µs (best) | new µs (best) | new / base (best) | new / base (medians) |")
    print("|---|---|---|---|---|")
    for k in base[0]:
        bb, bn = min(b[k] for b in base), min(n[k] for n in new)
        mb, mn = statistics.median(b[k] for b in base), statistics.median(n[k] for n in new)
        print(f"| {k} | {bb:.1f} | {bn:.1f} | {bn / bb:.2f} | {mn / mb:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
