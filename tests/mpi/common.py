"""What the scripts run under mpirun share (they import it from their own folder)."""

import numpy as np


def rel(a, b, scale=None):
    """max |a − b| / max |b| (or / ``scale``, for a quantity that is 0 up to rounding); 0 for empty arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not a.size:
        return 0.0
    s = float(np.max(np.abs(b))) if scale is None else scale
    return float(np.max(np.abs(a - b))) / max(s, 1e-300)
