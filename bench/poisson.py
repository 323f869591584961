"""Classical baseline: screened Poisson surface reconstruction (Kazhdan & Hoppe 2013) via Open3D.

Two variants: normals estimated from the points (kNN PCA, then oriented consistently over a
tangent-plane graph, then flipped outward as a whole), and the clean normals shipped with the data
("poisson-normals"). Low-density vertices (extrapolated far from the samples) are trimmed at a low
quantile, as is usual for Poisson. Open3D is an optional extra (``pip install -e '.[bench]'``); on
Debian it needs the system library ``libusb-1.0-0``.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import trimesh

if TYPE_CHECKING:
    from recon.engine.formats.pointcloud import PointCloud

POISSON_METHODS = ("poisson", "poisson-normals")
"""Benchmark method names of the two Poisson variants."""
POISSON_PRESET = "default"
"""Preset label of Poisson rows (it has one setting)."""


@dataclass(frozen=True)
class PoissonConfig:
    """Screened Poisson settings (the common defaults of Open3D / PoissonRecon)."""

    depth: int = 8
    """Octree depth of the Poisson solve (grid 2^depth per axis)."""
    dense_depth: int = 9
    """Octree depth used from `dense_min_points` input points on."""
    dense_min_points: int = 10_000
    """Clouds with at least this many points use `dense_depth`."""
    normal_knn: int = 20
    """Neighbours of the PCA normal estimate."""
    orient_knn: int = 10
    """Neighbours of the tangent-plane graph used to orient normals consistently."""
    trim_quantile: float = 0.02
    """Vertices whose Poisson density is below this quantile are removed."""
    scale: float = 1.1
    """Ratio of the reconstruction cube to the samples' bounding cube."""


class PoissonUnavailable(RuntimeError):
    """Open3D cannot be imported (not installed, or a system library is missing)."""


def poisson_available() -> tuple[bool, str]:
    """Whether Open3D imports here, and why not when it does not."""
    try:
        import open3d  # noqa: F401
    except ImportError as error:
        return False, f"open3d unavailable: {error}"
    return True, ""


def _oriented_normals(o3d, cloud, config: PoissonConfig) -> None:
    """Estimate, orient consistently, then flip all normals outward if most point inward."""
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=config.normal_knn))
    cloud.orient_normals_consistent_tangent_plane(config.orient_knn)
    points = np.asarray(cloud.points)
    normals = np.asarray(cloud.normals)
    # Tangent-plane orientation is consistent only up to one global sign; pick the outward one.
    outward = np.einsum("ij,ij->i", normals, points - points.mean(axis=0))
    if np.median(outward) < 0:
        cloud.normals = o3d.utility.Vector3dVector(-normals)


def reconstruct_poisson(
    cloud: "PointCloud", config: PoissonConfig | None = None, *, use_given_normals: bool = False
) -> trimesh.Trimesh:
    """Screened Poisson mesh of a point cloud.

    Parameters
    ----------
    cloud : PointCloud
        Points (n, 3); with ``use_given_normals`` its normals (n, 3) are used as they are.
    config : PoissonConfig, optional
    use_given_normals : bool
        Use ``cloud.normals`` instead of estimating and orienting normals.

    Returns
    -------
    trimesh.Trimesh
        In the input's coordinates, density-trimmed (so usually not watertight).

    Raises
    ------
    PoissonUnavailable
        Open3D cannot be imported.
    ValueError
        ``use_given_normals`` without normals in the cloud.
    """
    config = config or PoissonConfig()
    ok, reason = poisson_available()
    if not ok:
        raise PoissonUnavailable(reason)
    import open3d as o3d

    o3d_cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.points))
    if use_given_normals:
        if cloud.normals is None:
            raise ValueError("poisson-normals needs a point cloud with normals")
        o3d_cloud.normals = o3d.utility.Vector3dVector(cloud.normals)
    else:
        _oriented_normals(o3d, o3d_cloud, config)
    dense = len(cloud.points) >= config.dense_min_points
    depth = config.dense_depth if dense else config.depth
    mesh, vertex_densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
        o3d_cloud, depth=depth, scale=config.scale
    )
    densities = np.asarray(vertex_densities)
    mesh.remove_vertices_by_mask(densities < np.quantile(densities, config.trim_quantile))
    return trimesh.Trimesh(
        vertices=np.asarray(mesh.vertices), faces=np.asarray(mesh.triangles), process=True
    )
