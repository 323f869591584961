"""A virtual range scanner: what a depth camera or structured-light scanner returns from a mesh.

Rays are cast from pinhole cameras placed around the object (trimesh ray casting, first hit). Each
return is moved along its ray by depth noise that grows with the square of the range and with the
grazing angle; returns at too grazing an angle are lost and a share of the rest drop out at
random; a fraction of stray points is added, half near the surface (0.5-5% of the diagonal away)
and half anywhere in the box. One view gives an open, partial surface; several views fused give
uneven density and holes where no camera saw. Everything is drawn from one seeded generator, so a
scan is a pure function of the mesh and its `ScannerConfig`.
"""

import math
from dataclasses import dataclass

import numpy as np
import trimesh

try:  # trimesh's pure-numpy caster tests every ray's whole bounding box and runs out of memory
    from trimesh.ray.ray_pyembree import RayMeshIntersector as EmbreeIntersector
except ImportError:  # embreex not installed
    EmbreeIntersector = None  # type: ignore[misc, assignment]


@dataclass(frozen=True)
class ScannerConfig:
    """How the virtual scanner sees the object; lengths are fractions of its bbox diagonal."""

    views: int = 4
    """Cameras, evenly spaced in azimuth around the object."""
    elevation_deg: float = 25.0
    """Camera elevation above the object's equator; views alternate above and below it."""
    distance: float = 1.6
    """Camera distance from the object's centre."""
    fov_deg: float = 45.0
    """Field of view of each camera (square image)."""
    points: int = 50_000
    """Returns kept after dropout, before stray points are added."""
    noise: float = 0.001
    """Depth noise sigma, along the ray, of the closest return hit head-on; it grows with the
    square of the range and with 1 / cos of the incidence angle ..."""
    max_noise: float = 0.005
    """... up to this sigma."""
    min_incidence_cos: float = 0.1
    """Returns hitting the surface more obliquely than this (cos of incidence) are lost."""
    dropout: float = 0.02
    """Share of the remaining returns dropped at random."""
    stray_fraction: float = 0.005
    """Stray points added, as a fraction of the returns."""
    stray_near_share: float = 0.5
    """Share of the stray points placed near the surface; the rest are uniform in the box."""
    stray_near_range: tuple[float, float] = (0.005, 0.05)
    """Distance range of the near-surface strays from the surface point they start from."""
    seed: int = 0
    """Seed of every random draw."""


@dataclass(frozen=True)
class Scan:
    """A scan and what the scanner knows about it.

    Attributes
    ----------
    points : (n, 3) float64
        The returns (with noise) followed by the stray points.
    surface_points : (n, 3) float64
        Where each return hit the mesh (NaN for stray points).
    stray : (n,) bool
        Which points are strays.
    view : (n,) int
        The camera of each return (-1 for strays).
    seen_faces : (k,) int
        Faces of the mesh hit by at least one kept return (the part the scanner saw).
    cameras : (views, 3) float64
        Camera positions.
    """

    points: np.ndarray
    surface_points: np.ndarray
    stray: np.ndarray
    view: np.ndarray
    seen_faces: np.ndarray
    cameras: np.ndarray


def camera_positions(centre: np.ndarray, diagonal: float, config: ScannerConfig) -> np.ndarray:
    """(views, 3) camera centres around `centre`, alternating above and below the equator."""
    azimuths = 2 * math.pi * np.arange(config.views) / config.views
    signs = np.where(np.arange(config.views) % 2 == 0, 1.0, -1.0)
    elevation = np.radians(config.elevation_deg) * signs
    directions = np.stack([np.cos(elevation) * np.cos(azimuths),
                           np.sin(elevation) * np.ones_like(azimuths),
                           np.cos(elevation) * np.sin(azimuths)], axis=1)
    return centre + config.distance * diagonal * directions


def camera_rays(camera: np.ndarray, target: np.ndarray, config: ScannerConfig, side: int,
                rng: np.random.Generator) -> np.ndarray:
    """(side * side, 3) unit ray directions of a square pinhole image, jittered within pixels."""
    forward = target - camera
    forward /= np.linalg.norm(forward)
    up = np.array([0.0, 1.0, 0.0]) if abs(forward[1]) < 0.99 else np.array([1.0, 0.0, 0.0])
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half = math.tan(math.radians(config.fov_deg) / 2)
    pixel = (np.arange(side)[:, None] + rng.uniform(size=(side, side))) / side
    across = (2 * pixel - 1) * half
    down = (2 * ((np.arange(side)[None, :] + rng.uniform(size=(side, side))) / side) - 1) * half
    directions = (forward + across.reshape(-1, 1) * right + down.reshape(-1, 1) * up)
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def _cast(mesh: trimesh.Trimesh, origin: np.ndarray, directions: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First hits: (locations, ray index, face index), cast with Embree."""
    if EmbreeIntersector is None or not isinstance(mesh.ray, EmbreeIntersector):
        raise RuntimeError("the virtual scanner needs Embree: pip install embreex")
    origins = np.broadcast_to(origin, directions.shape)
    locations, rays, faces = mesh.ray.intersects_location(origins, directions,
                                                          multiple_hits=False)
    return np.asarray(locations, float), np.asarray(rays, int), np.asarray(faces, int)


def _view_returns(mesh, camera, centre, diagonal, config, side, rng):
    directions = camera_rays(camera, centre, config, side, rng)
    hits, rays, faces = _cast(mesh, camera, directions)
    ray_dirs = directions[rays]
    cos = np.abs(np.einsum("ij,ij->i", mesh.face_normals[faces], ray_dirs))
    keep = (cos >= config.min_incidence_cos) & (rng.uniform(size=len(hits)) >= config.dropout)
    return hits[keep], ray_dirs[keep], faces[keep], cos[keep]


def scan(mesh: trimesh.Trimesh, config: ScannerConfig) -> Scan:
    """Scan `mesh` with `config`'s cameras; see the module docstring."""
    rng = np.random.default_rng(config.seed)
    lo, hi = mesh.bounds
    centre, diagonal = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
    cameras = camera_positions(centre, diagonal, config)
    side = _image_side(mesh, cameras, centre, diagonal, config)
    parts = [_view_returns(mesh, camera, centre, diagonal, config, side, rng)
             for camera in cameras]
    hits = np.concatenate([p[0] for p in parts])
    directions = np.concatenate([p[1] for p in parts])
    faces = np.concatenate([p[2] for p in parts])
    cos = np.concatenate([p[3] for p in parts])
    view = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(parts)])
    if len(hits) > config.points:
        chosen = np.sort(rng.choice(len(hits), config.points, replace=False))
        hits, directions, faces, cos, view = (a[chosen] for a in (hits, directions, faces, cos,
                                                                   view))
    ranges = np.linalg.norm(hits - cameras[view], axis=1)
    growth = (ranges / ranges.min()) ** 2 / cos
    sigma = diagonal * np.minimum(config.noise * growth, config.max_noise)
    points = hits + directions * (sigma * rng.standard_normal(len(hits)))[:, None]
    strays = _strays(hits, mesh.face_normals[faces], lo, hi, diagonal, config, rng)
    count = len(strays)
    return Scan(
        points=np.concatenate([points, strays]),
        surface_points=np.concatenate([hits, np.full((count, 3), np.nan)]),
        stray=np.concatenate([np.zeros(len(points), bool), np.ones(count, bool)]),
        view=np.concatenate([view, np.full(count, -1)]),
        seen_faces=np.unique(faces),
        cameras=cameras,
    )


def _image_side(mesh, cameras, centre, diagonal, config) -> int:
    """Pixels per image side so that the views together return about `config.points` hits.

    A coarse probe image per view measures the share of rays that hit and are kept.
    """
    probe_side = 64
    rng = np.random.default_rng(config.seed + 1)
    kept = sum(len(_view_returns(mesh, camera, centre, diagonal, config, probe_side, rng)[0])
               for camera in cameras)
    per_ray = max(kept, 1) / (probe_side * probe_side)
    return max(8, math.ceil(math.sqrt(1.1 * config.points / per_ray)))


def _strays(hits: np.ndarray, normals: np.ndarray, lo: np.ndarray, hi: np.ndarray,
            diagonal: float, config: ScannerConfig, rng: np.random.Generator) -> np.ndarray:
    """Stray points: off a return along its surface normal (either side), and in the box."""
    total = round(config.stray_fraction * len(hits))
    near = round(config.stray_near_share * total)
    chosen = rng.integers(len(hits), size=near)
    start = hits[chosen]
    direction = normals[chosen] * rng.choice([-1.0, 1.0], size=near)[:, None]
    low, high = config.stray_near_range
    offset = rng.uniform(low, high, size=near) * diagonal
    margin = 0.1 * (hi - lo)
    anywhere = rng.uniform(lo - margin, hi + margin, size=(total - near, 3))
    return np.concatenate([start + direction * offset[:, None], anywhere])
