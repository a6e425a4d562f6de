"""Why the trust region matters, measured: vanilla policy gradient with an aggressive step
collapses on CartPole-v1 where TRPO and PPO, on the same budget and the same rollouts, do not.

    python benchmarks/vpg_collapse.py                          # 3 seeds, 100k steps each, table
    python benchmarks/vpg_collapse.py --plot docs/figures/vpg_collapse.png   # + learning curves (matplotlib)

Every method collects the same rollouts shape (2 envs x 512 steps = 1024 transitions per
update, γ 0.99) and trains for the same number of environment steps.  For every update the
script measures how far the policy moved: the exact mean KL(π_old ‖ π_new) over the update's
batch, recomputed here from the distribution parameters saved before the update (the same
measurement for every method, independent of any algorithm's own bookkeeping).

Reported per run: peak and final training return (mean of the last 100 episodes, the
``rollout/ep_rew_mean`` of every library), deterministic evaluation at the end (10 episodes
seeded 10_000 + i), the largest and the median per-update KL, and "collapsed" when the final
training return is below half of its peak.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

import refrl  # noqa: E402
from refrl.evaluation import episode_returns  # noqa: E402

ROLLOUT = dict(n_envs=2, n_steps=512, gamma=0.99)
METHODS: dict[str, tuple[str, dict]] = {
    # REINFORCE with a learned baseline (λ = 1), one Adam step per batch: only the step size differs
    "VPG lr 0.01": ("VPG", dict(learning_rate=0.01)),
    "VPG lr 0.03 (aggressive)": ("VPG", dict(learning_rate=0.03)),
    "VPG lr 0.1 (aggressive)": ("VPG", dict(learning_rate=0.1)),
    # TRPO: refrl defaults (δ = 0.01, 10 CG iterations, damping 0.1, 10 critic epochs)
    "TRPO δ=0.01": ("TRPO", dict()),
    # PPO: SB3 defaults except the rollout (clip 0.2, 10 epochs of minibatch 64, lr 3e-4)
    "PPO clip 0.2": ("PPO", dict()),
}


def run(algo: str, hp: dict, seed: int, steps: int) -> dict:
    agent = getattr(refrl, algo)("CartPole-v1", seed=seed, **ROLLOUT, **hp)
    kls: list[float] = []
    curve: list[tuple[int, float]] = []
    inner = agent.train

    def measured_train() -> None:  # exact mean KL of this update on its own batch
        b = agent.flat_batch()
        obs = b.obs[b.weights > 0]
        dist_old = agent.policy.dist_params(obs)
        inner()
        kls.append(agent.policy.kl(obs, dist_old))

    agent.train = measured_train

    def on_iteration(ag) -> None:
        if ag.ep_rew_mean is not None:
            curve.append((ag.num_timesteps, ag.ep_rew_mean))

    agent.learn(steps, callback=on_iteration)
    rets = np.array([r for _, r in curve])
    return {
        "curve": curve,
        "peak": float(rets.max()),
        "final": float(rets[-1]),
        "eval": float(episode_returns(agent, n_episodes=10, seed=10_000).mean()),
        "kl_max": float(np.max(kls)),
        "kl_median": float(np.median(kls)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--plot", default=None, help="write learning curves to this PNG (needs matplotlib)")
    args = ap.parse_args()
    print(f"# CartPole-v1, {args.steps} steps, rollouts of {ROLLOUT['n_envs']}x{ROLLOUT['n_steps']}, seeds {args.seeds}")
    print("| method | seed | peak train return | final train return | eval | collapsed | max KL/update | median KL/update |")
    print("|---|---|---|---|---|---|---|---|")
    results: dict[str, list[dict]] = {}
    for name in args.methods:
        algo, hp = METHODS[name]
        for seed in args.seeds:
            r = run(algo, hp, seed, args.steps)
            results.setdefault(name, []).append(r)
            collapsed = "yes" if r["final"] < 0.5 * r["peak"] else "no"
            print(f"| {name} | {seed} | {r['peak']:.0f} | {r['final']:.0f} | {r['eval']:.0f} | {collapsed} | "
                  f"{r['kl_max']:.3g} | {r['kl_median']:.3g} |", flush=True)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=100)
        colors = plt.cm.tab10.colors
        for i, (name, runs) in enumerate(results.items()):
            for j, r in enumerate(runs):
                x, y = zip(*r["curve"])
                ax.plot(np.array(x) / 1e3, y, color=colors[i], alpha=0.85, lw=1.3, label=name if j == 0 else None)
        ax.set_xlabel("environment steps (thousands)")
        ax.set_ylabel("training return (last 100 episodes)")
        ax.set_title(f"CartPole-v1: VPG with large steps collapses; TRPO / PPO do not ({len(args.seeds)} seeds each)")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
        fig.savefig(args.plot)
        try:  # a 64-colour palette keeps the committed PNG small (~20 kB instead of ~90 kB)
            from PIL import Image

            Image.open(args.plot).convert("RGB").quantize(colors=64).save(args.plot, optimize=True)
        except ImportError:
            pass
        print(f"# figure: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
