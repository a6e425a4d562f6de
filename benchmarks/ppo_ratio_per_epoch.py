"""How far past the clip range does r_t = π_θ/π_old go as PPO runs more epochs on one batch?

The source text's second exercise: each minibatch step respects the clip only for samples whose
ratio is already outside [1−ε, 1+ε] *and* on the side the advantage favours (their gradient is
0); every other sample keeps pushing θ, and θ is shared, so the ratios of the clipped samples keep
moving with it.  This script measures max_t r_t after each epoch of real updates.

    python benchmarks/ppo_ratio_per_epoch.py -o docs/figures/ppo_ratio_per_epoch.png
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import refrl  # noqa: E402


def measure(n_epochs: int, steps: int, seed: int, lr: float) -> list[list[float]]:
    """Per update, the max ratio reached in each epoch (CartPole-v1, 4 envs x 128, batch 128)."""
    agent = refrl.PPO("CartPole-v1", seed=seed, n_envs=4, n_steps=128, batch_size=128, n_epochs=n_epochs,
                      learning_rate=lr, clip_range=0.2)
    per_update: list[list[float]] = []
    agent.learn(steps, callback=lambda a: per_update.append(list(a.last_epoch_ratio_max)))
    return per_update


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--output", default="docs/figures/ppo_ratio_per_epoch.png")
    ap.add_argument("--epochs", type=int, nargs="+", default=[4, 10, 30])
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    results = {k: measure(k, args.steps, args.seed, args.lr) for k in args.epochs}
    summary = {}
    for k, ups in results.items():
        arr = np.array(ups)  # [updates, epochs]
        summary[k] = {"median_max_ratio_last_epoch": float(np.median(arr[:, -1])),
                      "max_ratio_overall": float(arr.max()),
                      "median_by_epoch": np.median(arr, axis=0).round(3).tolist()}
        print(f"K={k:>3}: median over updates of max r after the last epoch = {summary[k]['median_max_ratio_last_epoch']:.3f}; "
              f"largest seen {summary[k]['max_ratio_overall']:.3f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, ups in results.items():
        arr = np.array(ups)
        ep = np.arange(1, k + 1)
        ax.plot(ep, np.median(arr, axis=0), marker="o", ms=3, label=f"K = {k} epochs (median over {len(ups)} updates)")
        ax.fill_between(ep, np.percentile(arr, 10, axis=0), np.percentile(arr, 90, axis=0), alpha=0.15)
    ax.axhline(1.2, color="k", ls="--", lw=1, label="1 + ε (ε = 0.2)")
    ax.set_xlabel("epoch over the same rollout")
    ax.set_ylabel("max ratio π_θ/π_old in the epoch")
    ax.set_title(f"PPO on CartPole-v1 (seed {args.seed}, lr {args.lr:g}, batch 128 of 512)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    fig.savefig(args.output, dpi=120)
    with open(os.path.splitext(args.output)[0] + ".json", "w") as fh:
        json.dump(summary, fh, indent=1)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
