"""The training progress bar: tqdm when installed (the ``progress`` extra), else a status line."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """tqdm progress bar when tqdm is installed; otherwise a status line on stderr every 2 s.

    ``Progress(total, initial, enabled)``; ``update(n, fps, ep_rew)`` after every iteration with
    the step count reached, the steps per second and the mean episode return (None before the
    first episode ends); ``close()`` at the end.  Nothing is shown when ``enabled`` is False.
    """

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.total, self.bar, self.enabled, self._last = total, None, enabled, 0.0
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:  # optional dependency (refrl[progress])
            return
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=0.5)

    def update(self, n: int, fps: float, ep_rew: float | None) -> None:
        rew = "n/a" if ep_rew is None else f"{ep_rew:.1f}"
        if self.bar is not None:
            self.bar.set_postfix_str(f"sps={fps:.0f} ep_rew_mean={rew}", refresh=False)
            self.bar.update(min(n, self.total) - self.bar.n)  # redraws at most every mininterval
        elif self.enabled and (time.monotonic() - self._last > 2.0 or n >= self.total):
            self._last = time.monotonic()
            print(f"{min(n, self.total)}/{self.total} steps | {fps:.0f} steps/s | ep_rew_mean {rew}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
