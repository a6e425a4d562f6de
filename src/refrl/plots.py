"""``refrl plot``: learning curves of run directories and of run groups (one run per seed).

A DIR is a run (it holds ``metrics.csv``) or a run group (``DIR/seed_S/metrics.csv``, written by
``refrl train --seeds``).  A group is drawn as the mean over its seeds and a band
(:func:`seed_statistics`); matplotlib is the optional extra ``refrl[plot]``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["BANDS", "moving_average", "plot_runs", "read_metrics", "run_group", "seed_statistics"]


def read_metrics(run_dir: Path) -> dict[str, list[float]]:
    import csv

    path = run_dir / "metrics.csv" if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise ValueError(f"plot: no metrics.csv in {str(run_dir)!r}")
    cols: dict[str, list[float]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            for k, v in row.items():
                cols.setdefault(k, []).append(float(v) if v not in ("", None) else math.nan)
    return cols


#: axis labels for the common metrics (any other key: its name after the namespace, "explained variance")
_LABELS = {"time/total_timesteps": "environment steps", "rollout/ep_rew_mean": "mean episode return",
           "rollout/ep_len_mean": "mean episode length", "time/iterations": "updates"}
BANDS = ("std", "minmax", "none")


def run_group(path: Path) -> list[Path]:
    """The run directories ``path`` stands for: itself (it holds metrics.csv) or its seeds
    (``path/seed_S/metrics.csv``, in the order of S; any other subfolder with a metrics.csv too)."""
    if (path / "metrics.csv").is_file() or path.suffix == ".csv":
        return [path]
    runs = [d.parent for d in path.glob("*/metrics.csv")]
    if not runs:
        raise ValueError(f"plot: no metrics.csv in {str(path)!r} nor in its subfolders (seed_S/)")

    def order(d: Path):
        tail = d.name.rpartition("_")[2]
        return (0, int(tail), d.name) if tail.isdigit() else (1, 0, d.name)

    return sorted(runs, key=order)


def moving_average(y, window: int):
    """Trailing mean over the last ``window`` points (fewer at the start): point i averages y[i-w+1..i]."""
    import numpy as np

    y = np.asarray(y, dtype=np.float64)
    c = np.cumsum(np.insert(y, 0, 0.0))
    i = np.arange(1, y.size + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def seed_statistics(curves: list[tuple[Any, Any]], *, band: str, smooth: int = 1):
    """Mean and band of several seeds' curves ``(x, y)`` on one step grid.

    Each curve drops its NaN points (no episode finished yet), is smoothed by
    :func:`moving_average` when ``smooth > 1``, and is interpolated linearly onto the grid: every x
    of any seed inside the range that all seeds cover (no extrapolation).  ``band``: ``std`` is
    the mean ± the sample standard deviation over seeds (ddof = 1), ``minmax`` the lowest and the
    highest seed, ``none`` no band; one seed has no band.  Returns (grid, mean, low, high)."""
    import numpy as np

    if band not in BANDS:
        raise ValueError(f"--band: expected one of {', '.join(BANDS)}, got {band!r}")
    clean = []
    for x, y in curves:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        if x.size == 0:
            continue
        order = np.argsort(x, kind="stable")
        clean.append((x[order], moving_average(y[order], smooth) if smooth > 1 else y[order]))
    if not clean:
        return (np.empty(0),) * 4
    lo, hi = max(x[0] for x, _ in clean), min(x[-1] for x, _ in clean)
    grid = np.unique(np.concatenate([x[(x >= lo) & (x <= hi)] for x, _ in clean]))
    ys = np.stack([np.interp(grid, x, y) for x, y in clean])
    mean = ys.mean(axis=0)
    if len(clean) == 1 or band == "none":
        return grid, mean, mean, mean
    if band == "std":
        sd = ys.std(axis=0, ddof=1)
        return grid, mean, mean - sd, mean + sd
    return grid, mean, ys.min(axis=0), ys.max(axis=0)


def _curve_label(path: Path) -> str:
    """A DIR's legend label: its folder name (``group/seed_0`` for one seed of a group)."""
    path = path.resolve()
    return f"{path.parent.name}/{path.name}" if path.name.startswith("seed_") else path.name


def _axis_label(key: str) -> str:
    return _LABELS.get(key, key.rpartition("/")[2].replace("_", " "))


def _run_title(dirs: list[Path]) -> str | None:
    """'PPO on CartPole-v1' when every run has the same algorithm and env in its config.json."""
    seen = set()
    for d in dirs:
        cfg = d / "config.json"
        if not cfg.is_file():
            return None
        doc = json.loads(cfg.read_text())
        seen.add((str(doc.get("algo", "")).upper(), str(doc.get("env_id", "")).rpartition(":")[2]))
    if len(seen) != 1:
        return None if len({env for _, env in seen}) != 1 else next(iter(seen))[1]
    algo, env = next(iter(seen))
    return f"{algo} on {env}"


def plot_runs(dirs: list[str], *, output: str, x: str, ys: list[str], band: str = "std", smooth: int = 1,
              title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
              labels: list[str] | None = None) -> int:
    """``refrl plot``: one curve per DIR -- a run, or a run group whose seeds give the mean and a band
    (:func:`seed_statistics`) -- one panel per metric in ``ys``; PNG, PDF or SVG by the extension."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import EngFormatter
    except ImportError:
        print("refrl plot: matplotlib is not installed; install it with: pip install 'refrl[plot]'", file=sys.stderr)
        return 1
    if band not in BANDS:
        raise ValueError(f"--band: expected one of {', '.join(BANDS)}, got {band!r}")
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
        raise ValueError(f"--smooth: must be an integer >= 1 (updates averaged), got {smooth!r}")
    if labels is not None and len(labels) != len(dirs):
        raise ValueError(f"--labels: one label per DIR ({len(dirs)}), got {len(labels)}")
    groups = {d: run_group(Path(d)) for d in dirs}
    data = {d: [read_metrics(r) for r in runs] for d, runs in groups.items()}
    for d, runs in groups.items():
        for run, cols in zip(runs, data[d]):
            for key in (x, *ys):
                if key not in cols:
                    raise ValueError(f"plot: {str(run)!r} has no column {key!r}; columns: {', '.join(sorted(cols))}")
    if labels is None:
        labels = [_curve_label(Path(d)) for d in dirs]
        if len(set(labels)) < len(labels):  # two groups' seed_0, or two runs named alike: their paths
            labels = [str(d) for d in dirs]
    n_seeds = {len(runs) for runs in groups.values()}
    banded = band != "none" and max(n_seeds) > 1
    fig, axes = plt.subplots(1, len(ys), figsize=(5.0 * len(ys), 3.6), squeeze=False)
    for k, (ax, y) in enumerate(zip(axes[0], ys)):
        for i, (d, cols_list) in enumerate(data.items()):
            grid, mean, low, high = seed_statistics([(c[x], c[y]) for c in cols_list], band=band, smooth=smooth)
            name = labels[i]
            n = len(cols_list)
            line, = ax.plot(grid, mean, lw=1.6, label=f"{name} ({n} seeds)" if n > 1 else name)
            if n > 1 and band != "none":
                ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, lw=0)
        ax.set_xlabel(xlabel or _axis_label(x))
        ax.set_ylabel(ylabel or _axis_label(y))
        if x == "time/total_timesteps":
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.25, lw=0.6)
        ax.spines[["top", "right"]].set_visible(False)
        if k > 0:  # one legend for the figure, in its first panel
            continue
        notes = []
        if banded:
            notes.append("mean ± 1 std over seeds" if band == "std" else "mean, min–max over seeds")
        if smooth > 1:
            notes.append(f"moving average of {smooth} updates")
        ax.legend(fontsize="small", frameon=False, title="; ".join(notes) or None, title_fontsize="small")
    all_runs = [r for runs in groups.values() for r in runs]
    heading = title if title is not None else _run_title(all_runs)
    if heading:
        fig.suptitle(heading)
    fig.tight_layout()
    fig.savefig(output, dpi=150)
    plt.close(fig)
    print(f"refrl plot: wrote {output}")
    return 0
