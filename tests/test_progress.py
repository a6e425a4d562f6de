"""Progress: tqdm when installed, else a status line on stderr (first update, then every 2 s, and the last)."""

from __future__ import annotations

import sys
import types

import pytest

from refrl.progress import Progress


@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm.auto raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_disabled_progress_prints_nothing(no_tqdm, capsys):
    p = Progress(100, 0, enabled=False)
    p.update(50, 10.0, 1.0)
    p.update(100, 10.0, 1.0)
    p.close()
    assert capsys.readouterr() == ("", "")


def test_without_tqdm_a_status_line_on_stderr(no_tqdm, capsys):
    p = Progress(100, 0, enabled=True)
    p.update(40, 1234.4, None)
    p.update(60, 1000.0, 5.0)  # within 2 s of the last line: silent
    p.update(130, 999.6, 21.25)  # the end (clamped to the total): always shown
    p.close()
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "40/100 steps | 1234 steps/s | ep_rew_mean n/a",
        "100/100 steps | 1000 steps/s | ep_rew_mean 21.2",
    ]


def test_with_tqdm_the_bar_follows_the_step_count(monkeypatch):
    bars = []

    class FakeBar:
        def __init__(self, total, initial, **kwargs):
            self.total, self.n, self.postfix, self.closed = total, initial, None, False
            bars.append(self)

        def set_postfix_str(self, s, refresh=True):
            self.postfix = s

        def update(self, k):
            self.n += k

        def close(self):
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeBar
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    p = Progress(100, 20, enabled=True)
    p.update(64, 512.0, -3.0)
    assert (bars[0].total, bars[0].n, bars[0].postfix) == (100, 64, "sps=512 ep_rew_mean=-3.0")
    p.update(128, 500.0, None)
    assert bars[0].n == 100 and bars[0].postfix == "sps=500 ep_rew_mean=n/a"
    p.close()
    assert bars[0].closed
