"""Run under mpirun with a mode: one rank raises; every rank must exit non-zero, promptly.

``guard``: the error is raised inside a guarded region; the failing rank re-raises its own
error, the others raise RemoteRankError naming it.  ``unguarded``: the error escapes outside any
guarded region while the other ranks wait in a collective; the excepthook aborts the job.
"""

import sys
import time

import numpy as np

from refrl import distributed

mode = sys.argv[1]
comm = distributed.world()
bad = comm.size - 1
if mode == "guard":
    try:
        with comm.guard():
            if comm.rank == bad:
                raise ValueError("environment step failed: observation has NaN")
            time.sleep(0.2)  # the healthy ranks arrive first and wait at the status check
    except distributed.RemoteRankError as exc:
        assert exc.rank == bad, exc.rank
        print(f"rank {comm.rank} saw: {exc}", flush=True)
        raise
elif mode == "unguarded":
    if comm.rank == bad:
        raise ValueError("gradient is NaN in train()")
    comm.sum(np.zeros(8))  # the healthy ranks wait here forever without the abort
else:
    raise SystemExit(f"unknown mode {mode!r}")
print(f"UNREACHED rank {comm.rank}", flush=True)
