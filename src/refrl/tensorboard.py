"""TensorBoard event files of the training metrics, as Stable-Baselines3 writes them.

``tensorboard_log=DIR`` gives each ``learn()`` call of a fresh run its own folder
``DIR/<tb_log_name>_<N>`` (N one more than the highest already there, so ``PPO_1``, ``PPO_2``, ...);
``learn(reset_num_timesteps=False)`` continues the newest one (TensorBoard drops its events after
the step the run continues from, so a run resumed from an older checkpoint shows each step once).
Every row the logger dumps becomes one scalar per metric under its SB3 name
(``rollout/ep_rew_mean``, ``train/approx_kl``, ``time/fps``, ...) at step ``time/total_timesteps``,
which itself is the step and not a scalar (as in SB3).  The writer is tensorboardX
(``pip install 'refrl[tensorboard]'``, no PyTorch or TensorFlow needed).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path
from typing import Any

__all__ = ["TensorBoardOutput", "latest_run_id", "require_writer", "run_folder"]

#: the column that is the step of every scalar (not written as a scalar itself)
STEP_KEY = "time/total_timesteps"

# tensorboardX names an event file by the second and the host only: a writer opened in the same
# second in the same folder (a continued run) would overwrite the first file.  The suffix (the
# time in ns, the pid, a counter) makes each name unique and keeps the names in the order the
# files were opened, which is the order TensorBoard reads them in.
_writer_ids = itertools.count(1)


def latest_run_id(log_dir: str | os.PathLike, name: str) -> int:
    """The highest N of the folders ``log_dir/<name>_<N>`` (0 when there is none)."""
    pattern = re.compile(rf"{re.escape(name)}_(\d+)")
    folder = Path(log_dir)
    if not folder.is_dir():
        return 0
    ids = [int(m.group(1)) for p in folder.iterdir() if p.is_dir() and (m := pattern.fullmatch(p.name))]
    return max(ids, default=0)


def run_folder(log_dir: str | os.PathLike, name: str, *, new: bool) -> Path:
    """``log_dir/<name>_<N>``: a new folder (N = latest + 1, created here so that two processes
    starting together get different ones), or the newest one when ``new`` is False (a continued run)."""
    if not name or os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(f"tb_log_name: expected a folder name without a path separator, got {name!r}")
    n = latest_run_id(log_dir, name)
    if not new and n > 0:
        return Path(log_dir) / f"{name}_{n}"
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    while True:
        n += 1
        folder = Path(log_dir) / f"{name}_{n}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder


def require_writer():
    """tensorboardX's ``SummaryWriter``; an ImportError naming the extra when it is not installed."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError("tensorboard_log: writing TensorBoard event files needs tensorboardX; install it with: "
                          "pip install 'refrl[tensorboard]'") from None
    return SummaryWriter


class TensorBoardOutput:
    """Writes each dumped row as TensorBoard scalars (one event file in ``folder``)."""

    def __init__(self, folder: str | os.PathLike, *, purge_step: int | None = None) -> None:
        """``purge_step``: a continued run's first new step; TensorBoard then drops the folder's
        older events from that step on (those of updates lost with a newer checkpoint)."""
        SummaryWriter = require_writer()  # noqa: N806 (the library's class)
        self.folder = Path(folder)
        self._writer = SummaryWriter(logdir=str(self.folder), purge_step=purge_step,
                                     filename_suffix=f".{time.time_ns()}.{os.getpid()}.{next(_writer_ids)}")

    def write(self, row: dict[str, Any]) -> None:
        """One scalar per numeric metric of ``row`` at step ``row['time/total_timesteps']``, then flush."""
        step = int(row[STEP_KEY])
        for key in sorted(row):
            value = row[key]
            # NaN is written as NaN, as in the CSV
            if key == STEP_KEY or isinstance(value, str) or not _is_number(value):
                continue
            self._writer.add_scalar(key, float(value), global_step=step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
