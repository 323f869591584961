"""Whether a cloud spreads in at least two directions, as any surface's samples do.

Distinct points can still all lie on one line (a scan of a cable, a misexported column copied
three times); no surface can be fitted to them. Planar clouds (a wall) are fine. The test is
scale-free: the second principal spread against the first.
"""

from __future__ import annotations

import numpy as np

#: A cloud whose second principal spread is at most this fraction of the first is a line.
COLLINEAR_TOLERANCE = 1e-6

COLLINEAR_MESSAGE = ("all points lie on one line; a surface needs points spread in at least two "
                     "directions")


def degenerate_reason(points: np.ndarray) -> str | None:
    """Why the (n, 3) finite points cannot hold a surface, or None when they can."""
    scale = float(np.abs(points).max()) if len(points) else 0.0
    if scale == 0.0:
        return "all points are the same point; a surface needs points spread in two directions"
    scaled = points / scale  # in [-1, 1]: the moments below cannot overflow
    centred = scaled - scaled.mean(axis=0)
    spreads = np.sqrt(np.clip(np.linalg.eigvalsh(centred.T @ centred), 0.0, None))
    if spreads[2] == 0.0:
        return "all points are the same point; a surface needs points spread in two directions"
    if spreads[1] <= COLLINEAR_TOLERANCE * spreads[2]:
        return COLLINEAR_MESSAGE
    return None
