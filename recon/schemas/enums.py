"""Closed vocabularies of the public API. A test keeps `MethodName` equal to the engine registry."""

from enum import StrEnum


class MethodName(StrEnum):
    """Reconstruction method: `nap` (spatial adversaries, default) or a baseline."""

    NAP = "nap"
    NEURAL_PULL = "neural-pull"
    IGR = "igr"


class PresetName(StrEnum):
    """Speed/quality trade-off; `auto` picks by device (GPU: paper, CPU: balanced)."""

    FAST = "fast"
    BALANCED = "balanced"
    PAPER = "paper"
    AUTO = "auto"


class SurfaceKind(StrEnum):
    """`closed`: watertight (closed against the box where a scan is open); `trimmed`: the parts
    no input point supports removed, open where the scan is, not watertight."""

    CLOSED = "closed"
    TRIMMED = "trimmed"


class UpAxis(StrEnum):
    """The input's up axis (the GLB is always written Y-up, as glTF requires)."""

    Y = "y"
    Z = "z"


class LengthUnit(StrEnum):
    """The input's length unit (the GLB is always written in metres, as glTF requires)."""

    M = "m"
    CM = "cm"
    MM = "mm"
    IN = "in"
    FT = "ft"


class UseNormals(StrEnum):
    """Whether the input's own normals are used: `auto` when they agree with the fitted field."""

    AUTO = "auto"
    YES = "yes"
    NO = "no"


class DeviceName(StrEnum):
    """Where the engine trains; `auto` uses CUDA when present."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class MeshFormat(StrEnum):
    """Downloadable mesh encodings. GLB is always produced."""

    GLB = "glb"
    PLY = "ply"
    OBJ = "obj"
    STL = "stl"

    @property
    def media_type(self) -> str:
        """The Content-Type a download of this format is served with."""
        return MESH_MEDIA_TYPES[self]


MESH_MEDIA_TYPES: dict[MeshFormat, str] = {
    MeshFormat.GLB: "model/gltf-binary",
    MeshFormat.PLY: "application/x-ply",
    MeshFormat.OBJ: "model/obj",
    MeshFormat.STL: "model/stl",
}
"""Media type of each mesh format (the engine keeps its own copy; a test keeps them equal)."""


class JobStatus(StrEnum):
    """Lifecycle of a reconstruction job; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
