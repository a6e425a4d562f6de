"""A small averaged metrics store (Spinning Up's EpochLogger, SB3's metric names).

``store(**scalars)`` is called once per minibatch (or per rollout); ``dump(step)`` writes the
means since the last dump to the terminal table and to ``metrics.csv``, and returns them.
``record(key, value)`` sets a value that is not averaged (``time/fps``, ``train/ratio_max``).
Keys are SB3's namespaces: ``rollout/``, ``time/``, ``train/``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

from refrl.serialization import write_text_atomic

__all__ = ["Logger"]


class Logger:
    """Averages stored scalars; dumps them as a table and as CSV rows.

    Parameters
    ----------
    folder : path or None
        Where ``metrics.csv`` goes (None: no file).
    verbose : int
        0: silent; 1: print the table at every dump.
    append : bool
        Continue an existing ``metrics.csv`` (``--resume``) instead of starting a new one.
    resume_step : int or None
        With ``append``: first drop the rows after this step (those of updates whose checkpoint was
        lost), so that every step appears once and in order after a resume.
    """

    def __init__(self, folder: str | os.PathLike | None = None, *, verbose: int = 0, append: bool = False,
                 resume_step: int | None = None, stream: IO[str] | None = None) -> None:
        self.verbose = verbose
        self.stream = stream
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self._values: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.csv_path: Path | None = None
        self._keys: list[str] = []
        #: further writers of each dumped row (``write(row)``; refrl.tensorboard.TensorBoardOutput)
        self.outputs: list[Any] = []
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.csv_path = Path(folder) / "metrics.csv"
            if append and self.csv_path.exists():
                with self.csv_path.open(newline="") as fh:
                    self._keys = next(csv.reader(fh), [])
                if resume_step is not None:
                    self._truncate(resume_step)
            elif self.csv_path.exists():
                self.csv_path.unlink()

    def _rows(self) -> list[dict[str, str]]:
        assert self.csv_path is not None
        with self.csv_path.open(newline="") as fh:
            return list(csv.DictReader(fh))

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        assert self.csv_path is not None
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, fieldnames=self._keys, restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        write_text_atomic(self.csv_path, text.getvalue())

    def _truncate(self, step: int) -> None:
        """Keep the rows up to ``step``, in order, once each (a row cut short by a crash is dropped)."""
        kept, last = [], -1
        for row in self._rows():
            try:
                s = int(row.get("time/total_timesteps") or "")
            except ValueError:
                continue
            if last < s <= step and None not in row.values():
                kept.append(row)
                last = s
        self._rewrite(kept)

    def store(self, **scalars: float) -> None:
        """Accumulate scalars; ``dump`` reports their mean."""
        for k, v in scalars.items():
            self._sums[k] += float(v)
            self._counts[k] += 1

    def record(self, key: str, value: Any) -> None:
        """Set a value reported as is (the last one wins)."""
        self._values[key] = value

    def pending(self) -> dict[str, Any]:
        """The values ``dump`` would report now (means of the stored scalars, recorded values), without clearing."""
        row: dict[str, Any] = {k: self._sums[k] / self._counts[k] for k in self._sums}
        row.update(self._values)
        return row

    def dump(self, step: int) -> dict[str, Any]:
        """Write the means since the last dump (and ``time/total_timesteps`` = step); clear."""
        row: dict[str, Any] = {k: self._sums[k] / self._counts[k] for k in self._sums}
        row.update(self._values)
        row["time/total_timesteps"] = int(step)
        self._sums.clear()
        self._counts.clear()
        self._values.clear()
        self.history.append(row)
        if self.csv_path is not None:
            self._write_csv(row)
        for output in self.outputs:
            output.write(row)
        if self.verbose:
            self._print(row)
        return row

    def _write_csv(self, row: dict[str, Any]) -> None:
        assert self.csv_path is not None
        new = [k for k in sorted(row) if k not in self._keys]
        if new:  # a key appeared: rewrite the file with the wider header (as SB3's CSVOutputFormat)
            old_rows = self._rows() if self.csv_path.exists() and self._keys else []
            self._keys = self._keys + new
            self._rewrite(old_rows)
        with self.csv_path.open("a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self._keys).writerow({k: row.get(k, "") for k in self._keys})

    def _print(self, row: dict[str, Any]) -> None:
        out = self.stream or sys.stdout
        lines = []
        groups: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for k in sorted(row):
            head, _, tail = k.partition("/")
            groups[head].append((tail or head, row[k]))
        for head, items in groups.items():
            lines.append(f"| {head + '/':<24}|{'':>14}|")
            for name, v in items:
                lines.append(f"|    {name:<21}| {_fmt(v):<13}|")
        bar = "-" * max(len(s) for s in lines)
        print("\n".join([bar, *lines, bar]), file=out, flush=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != 0 and math.isfinite(v) and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3g}"
        return f"{v:.4g}"
    return str(v)
