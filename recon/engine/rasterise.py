"""A z-buffered triangle rasteriser in numpy: which face each pixel sees, and where on it.

The worker draws a preview of every mesh on machines without a display or a GPU, so the
rasteriser is plain numpy: each triangle's bounding box is expanded into candidate pixels (a
chunk of triangles at a time, so memory stays bounded whatever the mesh), the pixel centres
inside the triangle are kept with their barycentric weights and depth, and the nearest
fragment per pixel wins. Shading is the caller's (recon.engine.preview).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_CHUNK_FRAGMENTS = 1 << 18
"""Candidate pixels expanded at once: about 60 MB of temporaries (a 200,000-face mesh drawn at
1024 x 1024 peaks near 110 MB with the depth buffer); larger chunks are no faster."""
MIN_DOUBLE_AREA = 1e-12
"""Triangles with a smaller doubled pixel area are edge-on or degenerate: they cover nothing."""


@dataclass(frozen=True)
class Coverage:
    """The visible surface per pixel of a height x width image (row 0 at the top).

    Attributes
    ----------
    face : (h, w) int64, the index of the face seen at each pixel, -1 where none
    weights : (h, w, 3) float64, barycentric weights of its three vertices (0 where none)
    """

    face: np.ndarray
    weights: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(h, w) bool, True where a face covers the pixel centre."""
        return self.face >= 0


def rasterise(xy: np.ndarray, depth: np.ndarray, faces: np.ndarray, width: int, height: int,
              chunk_fragments: int = DEFAULT_CHUNK_FRAGMENTS) -> Coverage:
    """Rasterise triangles, nearest (smallest depth) first.

    Parameters
    ----------
    xy : (n, 3) or (n, 2) float vertex positions in pixels (x right, y down; pixel (i, j)
         has its centre at (i + 0.5, j + 0.5)); only the first two columns are read
    depth : (n,) float distance of each vertex from the viewer
    faces : (f, 3) integer vertex indices
    width, height : the image's size in pixels
    chunk_fragments : candidate pixels processed at once
    """
    corners = np.asarray(xy, dtype=np.float64)[:, :2][faces]  # (f, 3, 2)
    x, y = corners[..., 0], corners[..., 1]
    double_area = ((x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0])
                   - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0]))
    x0 = np.clip(np.ceil(x.min(axis=1) - 0.5), 0, width).astype(np.int64)
    x1 = np.clip(np.floor(x.max(axis=1) - 0.5), -1, width - 1).astype(np.int64)
    y0 = np.clip(np.ceil(y.min(axis=1) - 0.5), 0, height).astype(np.int64)
    y1 = np.clip(np.floor(y.max(axis=1) - 0.5), -1, height - 1).astype(np.int64)
    box_w, box_h = x1 - x0 + 1, y1 - y0 + 1
    drawn = np.flatnonzero((np.abs(double_area) > MIN_DOUBLE_AREA) & (box_w > 0) & (box_h > 0))
    buffer = _DepthBuffer(width * height)
    counts = box_w[drawn] * box_h[drawn]
    for part in _chunks(counts, chunk_fragments):
        index = drawn[part]
        _draw(buffer, index, corners[index], double_area[index],
              np.asarray(depth, dtype=np.float64)[faces[index]],
              x0[index], y0[index], box_w[index], counts[part], width)
    return Coverage(face=buffer.face.reshape(height, width),
                    weights=buffer.weights.reshape(height, width, 3))


class _DepthBuffer:
    """The nearest fragment so far per pixel (flat arrays)."""

    def __init__(self, pixels: int) -> None:
        self.depth = np.full(pixels, np.inf)
        self.face = np.full(pixels, -1, dtype=np.int64)
        self.weights = np.zeros((pixels, 3))

    def merge(self, pixel: np.ndarray, depth: np.ndarray, face: np.ndarray,
              weights: np.ndarray) -> None:
        """Keep, per pixel, the nearest of these fragments and what the buffer holds."""
        order = np.lexsort((depth, pixel))
        pixel = pixel[order]
        first = np.ones(len(pixel), dtype=bool)
        first[1:] = pixel[1:] != pixel[:-1]
        nearest = order[first]
        pixel = pixel[first]
        closer = depth[nearest] < self.depth[pixel]
        pixel, nearest = pixel[closer], nearest[closer]
        self.depth[pixel] = depth[nearest]
        self.face[pixel] = face[nearest]
        self.weights[pixel] = weights[nearest]


def _chunks(counts: np.ndarray, budget: int) -> list[slice]:
    """Consecutive runs of triangles whose candidate pixels add up to about `budget` each."""
    ends = np.cumsum(counts)
    parts, start, done = [], 0, 0
    while start < len(counts):
        stop = max(int(np.searchsorted(ends, done + budget, side="right")), start + 1)
        parts.append(slice(start, stop))
        done, start = int(ends[stop - 1]), stop
    return parts


def _draw(buffer: _DepthBuffer, face: np.ndarray, corners: np.ndarray, double_area: np.ndarray,
          depth: np.ndarray, x0: np.ndarray, y0: np.ndarray, box_w: np.ndarray,
          counts: np.ndarray, width: int) -> None:
    """Expand each triangle's box into pixels, keep the covered ones, merge them by depth."""
    owner = np.repeat(np.arange(len(face)), counts)
    local = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    px = x0[owner] + local % box_w[owner]
    py = y0[owner] + local // box_w[owner]
    cx, cy = px + 0.5, py + 0.5
    tx, ty = corners[owner, :, 0], corners[owner, :, 1]
    weights = np.empty((len(owner), 3))
    for k in range(3):  # the weight of corner k is the area opposite it over the whole
        a, b = (k + 1) % 3, (k + 2) % 3
        weights[:, k] = ((tx[:, a] - cx) * (ty[:, b] - cy)
                         - (tx[:, b] - cx) * (ty[:, a] - cy)) / double_area[owner]
    inside = np.flatnonzero((weights >= 0.0).all(axis=1))
    owner, weights = owner[inside], weights[inside]
    pixel = py[inside] * width + px[inside]
    fragment_depth = np.einsum("nk,nk->n", weights, depth[owner])
    buffer.merge(pixel, fragment_depth, face[owner], weights)
