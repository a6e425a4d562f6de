"""The training progress bar: tqdm when installed (the ``progress`` extra), else a status line."""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["Progress"]


class Progress:
    """tqdm progress bar when tqdm is installed; otherwise a status line on stderr every 2 s.

    ``Progress(total, initial, enabled, heartbeat=False)``; ``update(n, fps, ep_rew)`` after every
    iteration with the step count reached, the steps per second and the mean episode return (None
    before the first episode ends); ``phase(name)`` when a long piece of work starts (collecting a
    rollout, an update); ``close()`` at the end.  Nothing is shown when ``enabled`` is False.

    Heartbeat (``enabled`` or ``heartbeat``): when one phase lasts longer than ``HEARTBEAT_S``
    (30 s), a background thread prints ``refrl: still in <phase> after N s`` every ``HEARTBEAT_S``,
    so that a huge rollout (n_envs, n_steps) or update (n_epochs) shows it is alive.
    """

    HEARTBEAT_S = 30.0

    def __init__(self, total: int, initial: int, enabled: bool, heartbeat: bool = False) -> None:
        self.total, self.bar, self.enabled, self._last = total, None, enabled, 0.0
        self._phase, self._since, self._stop = "", time.monotonic(), threading.Event()
        self._thread = None
        if enabled or heartbeat:
            self._thread = threading.Thread(target=self._beat, name="refrl-heartbeat", daemon=True)
            self._thread.start()
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

    def phase(self, name: str) -> None:
        """A new phase of work starts (the heartbeat names it)."""
        self._phase, self._since = name, time.monotonic()

    def _beat(self) -> None:
        interval = self.HEARTBEAT_S
        while not self._stop.wait(interval):
            phase, elapsed = self._phase, time.monotonic() - self._since
            if phase and elapsed >= interval:
                msg = f"refrl: still in {phase} after {elapsed:.0f} s"
                if self.bar is not None:
                    self.bar.write(msg, file=sys.stderr)
                else:
                    print(msg, file=sys.stderr, flush=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.bar is not None:
            self.bar.close()
