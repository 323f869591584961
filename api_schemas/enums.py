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
