"""blas_threads: BLAS limited to REFRL_BLAS_THREADS inside the block (default 1), left alone with 0."""

from __future__ import annotations

import sys

import numpy as np  # noqa: F401  (loads the BLAS that threadpoolctl controls)
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from refrl.threads import blas_threads


def _blas_threads_now() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    if not _blas_threads_now():
        pytest.skip("no BLAS library visible to threadpoolctl")
    with threadpool_limits(limits=2, user_api="blas"):
        if set(_blas_threads_now()) != {2}:
            pytest.skip("this BLAS cannot run 2 threads")
        yield


def test_blas_threads_default_is_one_and_is_restored(monkeypatch, two_blas_threads):
    monkeypatch.delenv("REFRL_BLAS_THREADS", raising=False)
    with blas_threads():
        assert set(_blas_threads_now()) == {1}
    assert set(_blas_threads_now()) == {2}


def test_blas_threads_follows_the_environment_and_zero_leaves_blas_alone(monkeypatch, two_blas_threads):
    monkeypatch.setenv("REFRL_BLAS_THREADS", "0")
    with blas_threads():
        assert set(_blas_threads_now()) == {2}
    monkeypatch.setenv("REFRL_BLAS_THREADS", "1")
    with blas_threads():
        assert set(_blas_threads_now()) == {1}


def test_the_command_line_defaults_blas_to_one_thread_before_numpy_loads():
    import os
    import subprocess

    code = ("import os, sys; from refrl.threads import default_blas_to_one_thread; "
            "os.environ['MKL_NUM_THREADS'] = '3'; default_blas_to_one_thread(); "
            "print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS']); "
            "import numpy; os.environ.pop('OMP_NUM_THREADS'); default_blas_to_one_thread(); "
            "print('OMP_NUM_THREADS' in os.environ, 'numpy' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "1", "3", "False", "True"]  # the user's choice kept; after NumPy: untouched
