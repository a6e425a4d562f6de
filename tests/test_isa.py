"""The one instruction-set dispatch of the compiled core (cpp/include/refrl/isa.hpp): the variant
every kernel runs is _core.KERNEL_ISA, and REFRL_KERNEL_ISA lowers it for all of them at once.
(Each kernel against its oracle in the portable variant: tests/test_selfcheck.py; the native MLP in
every variant: tests/test_fisher.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from refrl import _core

NAMES = ("generic", "avx2", "avx512")
SUPPORTED = [name for name in NAMES if _core.isa_supported(name)]


def _run(code: str, env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "REFRL_KERNEL_ISA"}
    if env_value is not None:
        env["REFRL_KERNEL_ISA"] = env_value
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_kernel_isa_is_the_best_supported_variant():
    assert _core.isa_supported("generic")
    assert _core.KERNEL_ISA in NAMES
    if "REFRL_KERNEL_ISA" not in os.environ:
        assert _core.KERNEL_ISA == SUPPORTED[-1]
    with pytest.raises(ValueError, match="'name'"):
        _core.isa_supported("sse9")


REPORT = (
    "import numpy as np; from refrl import _core; "
    "op = _core.FisherOperatorF64(np.zeros(43), [4, 5, 3], 'tanh', 'categorical', np.zeros((3, 4))); "
    "net = _core.ActNetF32([4, 5, 3], [4, 5, 1], 43, 'tanh'); "
    "mb = _core.MlpBatchF32(np.zeros(43, np.float32), [4, 5, 3], 'tanh', np.zeros((3, 4), np.float32)); "
    "print(_core.KERNEL_ISA, op.isa, net.isa, mb.isa)"
)


@pytest.mark.parametrize("value", ["baseline", "generic", "avx2", "avx512", "no-such-isa"])
def test_refrl_kernel_isa_lowers_every_kernel_at_once(value):
    """The variable caps the variant of every kernel (unknown values are ignored); the native MLP,
    acting network and Fisher operator pick the same one by default."""
    best = SUPPORTED[-1]
    want = {"baseline": "generic", "no-such-isa": best}.get(value, value)
    if NAMES.index(want) > NAMES.index(best):
        want = best
    assert _run(REPORT, value).split() == [want] * 4
