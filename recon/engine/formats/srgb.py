"""The sRGB <-> linear light conversions (IEC 61966-2-1) that glTF's COLOR_0 needs.

Torch- and scipy-free, so the API can write coloured GLB points with the same conversion the
mesh export uses.
"""

import numpy as np


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB values in 0-1 -> linear light in 0-1 (IEC 61966-2-1)."""
    srgb = np.asarray(srgb, dtype=np.float64)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light in 0-1 -> sRGB values in 0-1."""
    linear = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
