"""The uploaded points as a viewer shows them: a bounded, seeded subset, as GLB points or PLY.

A web page overlays a job's input on its mesh. Uploads can hold millions of points, more than
a browser draws smoothly, so the page gets a uniform random subset (the same one on every
request: the seed is fixed). The GLB is in the mesh GLB's frame (recon.engine.formats.frame,
with the same node-translation convention), so the two overlay exactly; the PLY keeps the
input's own frame and units. `DisplayPoints` also has a compact encoding, which the API keeps
in storage so that a large upload is parsed once, not on every request.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np

from recon.engine.formats.accumulate import subsample_rows
from recon.engine.formats.frame import node_translation, to_glb_frame
from recon.engine.formats.gltf import GlbMaterial, GlbMesh, write_glb
from recon.engine.formats.ply import write_ply
from recon.engine.formats.pointcloud import PointCloud, load_point_cloud
from recon.engine.formats.srgb import srgb_to_linear

DISPLAY_SEED = 0
"""Seed of every display subset: the same request always gets the same points."""
POINT_COLOUR = GlbMaterial(base_colour=(0.1, 0.45, 0.9, 1.0), metallic=0.0, roughness=1.0,
                           double_sided=True)
"""Points without colours: a blue that stands out against the mesh's grey."""
COLOURED_POINTS = GlbMaterial(base_colour=(1.0, 1.0, 1.0, 1.0), metallic=0.0, roughness=1.0,
                              double_sided=True)
"""Points with colours: white, so COLOR_0 (which multiplies the base colour) shows as it is."""


@dataclass(frozen=True)
class DisplayPoints:
    """Points in the input's frame, with their colours when the upload had them.

    Attributes
    ----------
    points : (n, 3) float64, input coordinates and units
    colours : (n, 3) uint8 sRGB, or None
    """

    points: np.ndarray
    colours: np.ndarray | None = None

    @classmethod
    def from_cloud(cls, cloud: PointCloud) -> DisplayPoints:
        """The points and colours of a loaded cloud (its normals are not shown)."""
        colours = None
        if cloud.colours is not None:
            colours = np.round(np.clip(cloud.colours, 0.0, 1.0) * 255.0).astype(np.uint8)
        return cls(np.asarray(cloud.points, dtype=np.float64), colours)

    def subset(self, max_points: int, seed: int = DISPLAY_SEED) -> DisplayPoints:
        """At most `max_points` of the points: a uniform random subset, in file order."""
        if len(self.points) <= max_points:
            return self
        rows = subsample_rows(len(self.points), max_points, seed)
        return DisplayPoints(self.points[rows],
                             None if self.colours is None else self.colours[rows])

    def encode(self) -> bytes:
        """A compact binary form (an uncompressed .npz) that `decode` reads back."""
        buffer = io.BytesIO()
        if self.colours is None:
            np.savez(buffer, points=self.points)
        else:
            np.savez(buffer, points=self.points, colours=self.colours)
        return buffer.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> DisplayPoints:
        """Read what `encode` wrote (no pickles are ever loaded); ValueError when malformed."""
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            points = np.asarray(archive["points"], dtype=np.float64)
            colours = archive["colours"] if "colours" in archive.files else None
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"display points of shape {points.shape}, not (n, 3)")
        if colours is not None and (colours.shape != points.shape or colours.dtype != np.uint8):
            raise ValueError(f"display colours of shape {colours.shape} for {len(points)} points")
        return cls(points, colours)


def load_display_points(source: str | os.PathLike | bytes, max_points: int) -> DisplayPoints:
    """Read an uploaded cloud keeping at most `max_points` (seeded with DISPLAY_SEED)."""
    return DisplayPoints.from_cloud(
        load_point_cloud(source, max_points=max_points, seed=DISPLAY_SEED))


def points_glb(display: DisplayPoints, up_axis: str = "y", units: str | None = None) -> bytes:
    """A GLB with one POINTS primitive in the mesh GLB's frame (metres, Y-up).

    Parameters
    ----------
    display : the points, in the input's frame
    up_axis, units : the input's frame, as given for the job (recon.engine.formats.frame)
    """
    positions, translation = node_translation(to_glb_frame(display.points, up_axis, units))
    colours = None
    if display.colours is not None:
        linear = srgb_to_linear(display.colours / 255.0)
        colours = np.concatenate([linear, np.ones((len(linear), 1))], axis=1).astype(np.float32)
    material = POINT_COLOUR if colours is None else COLOURED_POINTS
    return write_glb(GlbMesh(positions=positions, translation=translation, material=material,
                             colours=colours))


def points_ply(display: DisplayPoints) -> bytes:
    """A binary PLY of the points in the input's frame (float64, red/green/blue when coloured)."""
    vertex: dict[str, np.ndarray] = {name: display.points[:, i] for i, name in enumerate("xyz")}
    if display.colours is not None:
        vertex |= {name: display.colours[:, i]
                   for i, name in enumerate(("red", "green", "blue"))}
    return write_ply({"vertex": vertex})
