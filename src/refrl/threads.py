"""BLAS thread control.

refrl's matrices are small (64-256 wide): BLAS threads only add synchronisation.  Measured on a
shared 2-core machine, a (64, 64) MLP forward+backward on 256 samples took 1.9-2.6 ms with
OpenBLAS's default 2 threads and 0.15-0.48 ms with one.  ``OnPolicyAlgorithm.learn`` therefore
runs inside :func:`blas_threads`, and the command line calls :func:`default_blas_to_one_thread`
before NumPy loads.  This module imports no NumPy.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["blas_threads", "default_blas_to_one_thread"]

_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def default_blas_to_one_thread() -> None:
    """Set OPENBLAS/OMP/MKL_NUM_THREADS to 1 unless the user set them; only before NumPy is
    imported (BLAS reads them when it loads), a no-op afterwards."""
    if "numpy" not in sys.modules:
        for var in _BLAS_THREAD_VARIABLES:
            os.environ.setdefault(var, "1")


@contextlib.contextmanager
def blas_threads() -> Iterator[None]:
    """Limit BLAS to REFRL_BLAS_THREADS threads (default 1; 0 leaves it alone) inside the block.

    Uses threadpoolctl when installed; otherwise set OPENBLAS_NUM_THREADS=1 before importing
    NumPy (the refrl command line does).
    """
    n = int(os.environ.get("REFRL_BLAS_THREADS", "1"))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if n <= 0 or threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield
