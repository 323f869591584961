"""The GLB frame: metres and +Y up, reached from the input's own up axis and units.

glTF fixes its frame while clients upload in theirs; the mesh export, the preview camera and the
API's display points all convert with these functions, so a mesh and the points it was made
from overlay exactly in a viewer. Kept torch-free (numpy only) because the API uses it too.
"""

from __future__ import annotations

import numpy as np

UNITS_IN_METRES: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254,
                                     "ft": 0.3048}
"""The input units a client may name, and their length in metres."""
UP_AXES = ("y", "z")
"""The input up axes a client may name."""

Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""(x, y, z) -> (x, z, -y): a rotation (determinant +1), so faces keep their winding."""


def glb_transform(up_axis: str = "y", units: str | None = None) -> np.ndarray:
    """The 3x3 linear map from input coordinates to the GLB's metres, Y-up.

    Parameters
    ----------
    up_axis : one of UP_AXES
    units : a key of UNITS_IN_METRES; None reads as metres
    """
    if up_axis not in UP_AXES:
        raise ValueError(f"unknown up axis {up_axis!r}; valid: {', '.join(UP_AXES)}")
    if units is not None and units not in UNITS_IN_METRES:
        raise ValueError(f"unknown units {units!r}; valid: {', '.join(UNITS_IN_METRES)}")
    rotation = Z_UP_TO_Y_UP if up_axis == "z" else np.eye(3)
    return rotation * UNITS_IN_METRES[units or "m"]


def to_glb_frame(points: np.ndarray, up_axis: str = "y", units: str | None = None) -> np.ndarray:
    """(n, 3) input coordinates -> (n, 3) float64 GLB coordinates (metres, Y-up)."""
    return np.asarray(points, dtype=np.float64) @ glb_transform(up_axis, units).T


def node_translation(coordinates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split GLB coordinates into float32 offsets and the float64 node translation they follow.

    The translation is the bounding box's centre: float32 offsets from it keep survey
    coordinates to well under a millimetre, where float32 absolute values would not.

    Returns
    -------
    offsets : (n, 3) float32, `coordinates` minus the translation
    translation : (3,) float64
    """
    coordinates = np.asarray(coordinates, dtype=np.float64)
    translation = (coordinates.min(axis=0) + coordinates.max(axis=0)) / 2.0
    return (coordinates - translation).astype(np.float32), translation
