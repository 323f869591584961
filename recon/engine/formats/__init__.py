"""Reading and validating point clouds and ground truths, and writing the uploaded points for
display: numpy and trimesh only, never torch.

The API parses every upload with these readers before it queues a job, so it rejects exactly
what the worker could not read, with the same message; this is the only part of the engine the
API imports (tests/test_architecture.py enforces it).
"""

from recon.engine.errors import InvalidGroundTruth, InvalidPointCloud
from recon.engine.formats.display import (
    DisplayPoints,
    load_display_points,
    points_glb,
    points_ply,
)
from recon.engine.formats.ground_truth import (
    SUPPORTED_GROUND_TRUTH_FORMATS,
    GroundTruth,
    load_ground_truth,
)
from recon.engine.formats.pointcloud import (
    SNIFF_BYTES,
    SUFFIX_ALIASES,
    SUPPORTED_POINT_FORMATS,
    PointCloud,
    foreign_content,
    load_point_cloud,
    magic_format,
    sniff_format,
)

__all__ = [
    "DisplayPoints",
    "SNIFF_BYTES",
    "SUFFIX_ALIASES",
    "SUPPORTED_GROUND_TRUTH_FORMATS",
    "SUPPORTED_POINT_FORMATS",
    "GroundTruth",
    "InvalidGroundTruth",
    "InvalidPointCloud",
    "PointCloud",
    "foreign_content",
    "load_display_points",
    "load_ground_truth",
    "load_point_cloud",
    "magic_format",
    "points_glb",
    "points_ply",
    "sniff_format",
]
