"""`refrl selfcheck`: one line per kernel, exit code 0 on a correct build, 1 when a kernel is off."""

from __future__ import annotations

import io

import numpy as np

from refrl import cli, kernels, selfcheck


def test_selfcheck_passes_and_reports_each_kernel(capsys):
    assert cli.main(["selfcheck", "--seed", "3", "--trials", "3"]) == 0
    out = capsys.readouterr().out
    for name, _ in selfcheck.CHECKS:
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert " ok " in line and "float64" in line
    assert "all kernels match their oracles" in out


def test_selfcheck_fails_when_a_kernel_is_wrong(monkeypatch):
    real_gae = kernels.gae

    def off_by_a_little(*args, **kwargs):
        adv, ret = real_gae(*args, **kwargs)
        return kernels.GAEResult(adv + 1e-3, ret)

    monkeypatch.setattr(kernels, "gae", off_by_a_little)
    out = io.StringIO()
    assert selfcheck.run_selfcheck(seed=0, trials=2, out=out) == 1
    gae_line = next(ln for ln in out.getvalue().splitlines() if ln.startswith("gae "))
    assert "FAIL" in gae_line
    assert "1 kernel(s) FAILED" in out.getvalue()


def test_selfcheck_reports_a_crashing_check(monkeypatch):
    def broken(rng, trials):
        raise RuntimeError("no such kernel")

    monkeypatch.setattr(selfcheck, "CHECKS", [*selfcheck.CHECKS, ("broken", broken)])
    out = io.StringIO()
    assert selfcheck.run_selfcheck(seed=0, trials=1, out=out) == 1
    assert "broken                   ERROR RuntimeError: no such kernel" in out.getvalue()


def test_selfcheck_nan_is_a_failure():
    assert selfcheck._err(np.array([np.nan]), np.array([1.0])) == np.inf


def test_selfcheck_passes_on_the_baseline_kernels_too():
    """The portable (generic) variant of every kernel, forced with REFRL_KERNEL_ISA=baseline and
    reported by _core.KERNEL_ISA. The choice is made once per process, hence the subprocess."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "REFRL_KERNEL_ISA": "baseline"}
    code = "import sys; from refrl import _core, selfcheck; print(_core.KERNEL_ISA); sys.exit(selfcheck.run_selfcheck(1, 3))"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == "generic"
    assert "all kernels match their oracles" in proc.stdout
