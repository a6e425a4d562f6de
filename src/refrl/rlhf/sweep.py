"""The over-optimisation experiment: proxy and gold reward against √KL(π_θ ‖ π_ref).

Gao, Schulman & Hilton (2022), "Scaling Laws for Reward Model Overoptimization", measure the gold
reward of RL policies as a function of d = √KL(π ‖ π_init) and fit R_RL(d) = d(α − β log d): the
proxy reward keeps rising while the gold reward rises, peaks and falls. Here each run is token-level
PPO from the same π_ref against the same R_φ, with a decreasing fixed β (or an increasing KL target
for the adaptive controller). Every ``eval_every`` iterations the policy is evaluated on fresh
samples (exact KL over the vocabulary at visited states, proxy and gold reward), so each run
traces a path in the (√KL, reward) plane; its end point is the run's result.
"""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from refrl.rlhf.policy import TokenPolicy
from refrl.rlhf.ppo import RLHFPPO, RLHFPPOConfig, evaluate_policy
from refrl.rlhf.reward_model import RewardModel

__all__ = ["CSV_FIELDS", "plot_sweep", "run_sweep", "write_csv"]

CSV_FIELDS = ("run", "mode", "kl_coef_init", "kl_target", "seed", "iteration", "kl_coef", "kl_exact", "sqrt_kl",
              "kl_sampled", "proxy_reward", "gold_reward", "entropy", "n_topic", "n_repeat", "final")


def run_sweep(
    ref: TokenPolicy,
    reward_model: RewardModel,
    base: RLHFPPOConfig,
    *,
    kl_coefs: tuple[float, ...] = (),
    kl_targets: tuple[float, ...] = (),
    seeds: tuple[int, ...] = (0,),
    eval_every: int = 10,
    eval_n: int = 512,
    callback=None,
) -> list[dict]:
    """PPO runs from π_ref, one per (β or KL target, seed); returns the evaluation rows (CSV_FIELDS).

    ``kl_coefs``: fixed-β runs; ``kl_targets``: adaptive-controller runs starting from ``base.kl_coef``.
    ``callback(row)`` is called after each evaluation.
    """
    if not kl_coefs and not kl_targets:
        raise ValueError("run_sweep: give at least one of 'kl_coefs' or 'kl_targets'")
    if eval_every < 1 or eval_n < 1:
        raise ValueError(f"run_sweep: 'eval_every' ({eval_every}) and 'eval_n' ({eval_n}) must be >= 1")
    if any(b < 0 for b in kl_coefs) or any(t <= 0 for t in kl_targets):
        raise ValueError(f"run_sweep: 'kl_coefs' must be >= 0 and 'kl_targets' > 0, got {kl_coefs}, {kl_targets}")
    runs = [("fixed", replace(base, kl_coef=float(b), adaptive_kl=False)) for b in kl_coefs]
    runs += [("adaptive", replace(base, kl_target=float(t), adaptive_kl=True)) for t in kl_targets]
    rows: list[dict] = []
    run_id = 0
    for mode, cfg in runs:
        for seed in seeds:
            algo = RLHFPPO(ref, reward_model, cfg, seed=seed)
            eval_rng = np.random.default_rng([seed, 7919])  # evaluation samples independent of training

            def evaluate(final: bool, algo=algo, cfg=cfg, mode=mode, seed=seed, run_id=run_id, eval_rng=eval_rng):
                e = evaluate_policy(algo.policy, algo.ref, reward_model, eval_n, eval_rng)
                row = {"run": run_id, "mode": mode, "kl_coef_init": cfg.kl_coef,
                       "kl_target": cfg.kl_target if mode == "adaptive" else "", "seed": seed,
                       "iteration": algo.iteration, "kl_coef": algo.kl_ctl.value,
                       "sqrt_kl": float(np.sqrt(max(e["kl_exact"], 0.0))), "final": int(final), **e}
                rows.append(row)
                if callback is not None:
                    callback(row)

            evaluate(False)
            for it in range(cfg.iterations):
                algo.step()
                if (it + 1) % eval_every == 0 or it + 1 == cfg.iterations:
                    evaluate(it + 1 == cfg.iterations)
            run_id += 1
    return rows


def write_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write the sweep rows to ``path`` atomically (temporary file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    return path


def plot_sweep(rows: list[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Proxy and gold reward against √KL (two panels), one path per run, end points joined.

    Needs matplotlib (``pip install 'refrl[plot]'``); raises ImportError with that hint otherwise.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting the sweep needs matplotlib: pip install 'refrl[plot]' "
                          "(the CSV was written without it)") from exc
    path = Path(path)
    runs = sorted({r["run"] for r in rows})
    ref_rows = [r for r in rows if r["iteration"] == 0]
    gold0 = float(np.mean([r["gold_reward"] for r in ref_rows])) if ref_rows else 0.0
    proxy0 = float(np.mean([r["proxy_reward"] for r in ref_rows])) if ref_rows else 0.0
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    cmap = plt.get_cmap("viridis")
    finals = []
    labelled: set = set()
    for i, run in enumerate(runs):
        rr = sorted((r for r in rows if r["run"] == run), key=lambda r: r["iteration"])
        x = [r["sqrt_kl"] for r in rr]
        c = cmap(i / max(1, len(runs) - 1))
        lab = (f"β={rr[0]['kl_coef_init']:g}" if rr[0]["mode"] == "fixed" else f"KL target {rr[0]['kl_target']:g}")
        if lab in labelled:  # one legend entry per setting, not per seed
            lab = None
        labelled.add(lab)
        axes[0].plot(x, [r["proxy_reward"] - proxy0 for r in rr], color=c, lw=1, alpha=0.7, label=lab)
        axes[1].plot(x, [r["gold_reward"] - gold0 for r in rr], color=c, lw=1, alpha=0.7)
        finals.append(rr[-1])
    finals.sort(key=lambda r: r["sqrt_kl"])
    for ax, key, base in ((axes[0], "proxy_reward", proxy0), (axes[1], "gold_reward", gold0)):
        ax.plot([r["sqrt_kl"] for r in finals], [r[key] - base for r in finals], "ko-", ms=4, lw=1.5,
                label="end of each run")
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.set_xlabel("√KL(π_θ ‖ π_ref)  [√nats]")
    axes[0].set_ylabel("proxy reward R_φ − R_φ(π_ref)  [RM units]")
    axes[1].set_ylabel("gold reward − gold(π_ref)")
    axes[0].set_title("proxy (what PPO optimises)")
    axes[1].set_title("gold (what we wanted)")
    axes[0].legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    if path.suffix.lower() == ".png":  # a 128-colour palette keeps the committed figure small
        from PIL import Image  # a dependency of matplotlib

        with Image.open(tmp) as im:
            im.convert("RGB").quantize(128).save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)
    return path
