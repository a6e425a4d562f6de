"""Learning curves of PPO with observation + reward normalisation, one JSON line per (env, seed).

Runs ``refrl.PPO(env, seed, **tuned_defaults("ppo", env), normalize_obs=True,
normalize_reward=True).learn(steps)`` for each seed and records, after every update, the step count
and ``ep_rew_mean`` (the mean raw return of the last 100 training episodes), then the return of the
final policy over 10 deterministic evaluation episodes (seeded 10_000 + i) and the process CPU time.
Only the public API is used, so the same script measures any version of refrl: run it once in an
environment with each version installed and compare the lines (``--label`` tags them).

    python benchmarks/normalization_learning.py --env Pendulum-v1 --steps 100000 --seeds 0 1 2 --label new
    python benchmarks/normalization_learning.py --env Hopper-v5 --steps 200000 --seeds 0 1 2 --label new
    python benchmarks/normalization_learning.py --summary runs.jsonl     # a table per env and label
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import refrl  # noqa: E402
from refrl.config import tuned_defaults  # noqa: E402
from refrl.evaluation import evaluate_policy  # noqa: E402


def run(env_id: str, seed: int, steps: int) -> dict:
    params = {**tuned_defaults("ppo", env_id), "normalize_obs": True, "normalize_reward": True}
    curve: list[tuple[int, float | None]] = []

    def record(agent) -> None:
        curve.append((agent.num_timesteps, agent.ep_rew_mean))

    c0, t0 = time.process_time(), time.perf_counter()
    agent = refrl.PPO(env_id, seed=seed, **params).learn(steps, callback=record)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    returns = evaluate_policy(agent, n_episodes=10, seed=10_000)
    agent.close()
    return {"env": env_id, "seed": seed, "steps": agent.num_timesteps, "eval_mean": float(np.mean(returns)),
            "eval_std": float(np.std(returns)), "final_ep_rew_mean": curve[-1][1], "cpu_s": cpu, "wall_s": wall,
            "cpu_sps": agent.num_timesteps / cpu, "params": {k: (list(v) if isinstance(v, tuple) else v)
                                                              for k, v in params.items()}, "curve": curve}


def curve_mean(curve: list, frac: float = 0.5) -> float:
    """Mean ep_rew_mean over the last ``frac`` of the updates (a steadier figure than the last one)."""
    vals = [v for _, v in curve[int(len(curve) * (1 - frac)):] if v is not None]
    return float(np.mean(vals)) if vals else float("nan")


def summary(paths: list[str]) -> None:
    rows = [json.loads(line) for p in paths for line in open(p) if line.strip()]
    print("| env | label | seeds | steps | eval per seed | eval mean ± sd | ep_rew_mean, 2nd half (mean) | CPU SPS (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for env in sorted({r["env"] for r in rows}):
        for label in sorted({r["label"] for r in rows if r["env"] == env}):
            rs = sorted((r for r in rows if r["env"] == env and r["label"] == label), key=lambda r: r["seed"])
            ev = np.array([r["eval_mean"] for r in rs])
            print(f"| {env} | {label} | {' '.join(str(r['seed']) for r in rs)} | {rs[0]['steps']} | "
                  f"{' '.join(f'{e:.0f}' for e in ev)} | {ev.mean():.0f} ± {ev.std(ddof=1) if len(ev) > 1 else 0:.0f} | "
                  f"{np.mean([curve_mean(r['curve']) for r in rs]):.0f} | "
                  f"{np.median([r['cpu_sps'] for r in rs]):.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", nargs="+", metavar="JSONL", help="print the table of these result files and exit")
    ap.add_argument("--env")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--label", default="")
    ap.add_argument("--out", help="append the JSON lines to this file (default: stdout only)")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return 0
    if not args.env or not args.steps:
        ap.error("--env and --steps are required (or --summary)")
    for seed in args.seeds:
        row = {"label": args.label, "refrl": refrl.__file__, **run(args.env, seed, args.steps)}
        line = json.dumps(row)
        print(f"{args.label} {args.env} seed {seed}: eval {row['eval_mean']:.1f} ± {row['eval_std']:.1f}, "
              f"ep_rew_mean {row['final_ep_rew_mean']}, {row['cpu_sps']:.0f} steps per CPU second", flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
