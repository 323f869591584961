"""Pictures of meshes and point clouds for reports and the README (matplotlib, no screen needed).

Each panel is drawn from the same viewpoint with flat Lambert shading, so reconstructions of one
input can be compared side by side; open sheets are lit from both sides.
"""

from pathlib import Path

import numpy as np
import trimesh

MAX_PANEL_FACES = 60_000
"""Meshes are decimated by face subsampling above this, to keep drawing time bounded."""


def _view_rotation(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Rotation taking world coordinates to (right, up, toward the viewer)."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    forward = -np.array([np.cos(e) * np.sin(a), np.sin(e), np.cos(e) * np.cos(a)])
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward])


Panel = tuple[str, trimesh.Trimesh | np.ndarray, float]
"""A title, a mesh or (n, 3) points, and the azimuth (degrees) it is seen from."""


def render_panels(panels: list[Panel], path: Path, *, elevation_deg: float = 10.0,
                  panel_inches: float = 3.2) -> Path:
    """Draw the panels in a row and save a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    figure, axes = plt.subplots(1, len(panels), figsize=(panel_inches * len(panels), panel_inches),
                                squeeze=False)
    all_points = [np.asarray(item.vertices if isinstance(item, trimesh.Trimesh) else item)
                  for _, item, _ in panels]
    centre = np.concatenate(all_points).mean(axis=0)
    extent = float(max(np.ptp(p, axis=0).max() for p in all_points))
    light = np.array([0.3, 0.5, 1.0]) / np.linalg.norm([0.3, 0.5, 1.0])
    for axis, (title, item, azimuth) in zip(axes[0], panels, strict=True):
        rotation = _view_rotation(azimuth, elevation_deg)
        axis.set_title(title, fontsize=9)
        axis.set_aspect("equal")
        axis.axis("off")
        half = 0.55 * extent
        axis.set_xlim(-half, half)
        axis.set_ylim(-half, half)
        if isinstance(item, trimesh.Trimesh):
            faces = np.asarray(item.faces)
            if len(faces) > MAX_PANEL_FACES:
                faces = faces[np.random.default_rng(0).choice(len(faces), MAX_PANEL_FACES,
                                                              replace=False)]
            corners = (np.asarray(item.vertices)[faces] - centre) @ rotation.T
            normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
            normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
            shade = 0.15 + 0.85 * np.abs(normals @ light)
            order = np.argsort(corners[:, :, 2].mean(axis=1))  # far to near
            colours = np.repeat(shade[order, None], 3, axis=1) * [0.85, 0.82, 0.78]
            axis.add_collection(PolyCollection(corners[order, :, :2], facecolors=colours,
                                               edgecolors=colours, linewidths=0.2))
        else:
            points = (np.asarray(item) - centre) @ rotation.T
            order = np.argsort(points[:, 2])
            axis.scatter(points[order, 0], points[order, 1], s=0.05, c="0.3", linewidths=0)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
