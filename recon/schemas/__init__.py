"""The wire contract shared by the HTTP API, the infrastructure and the worker (pydantic only)."""

from recon.schemas.enums import (
    DeviceName,
    JobStatus,
    LengthUnit,
    MeshFormat,
    MethodName,
    PresetName,
    SurfaceKind,
    UpAxis,
    UseNormals,
)
from recon.schemas.errors import ErrorBody, ErrorDetail
from recon.schemas.jobs import JobError, JobLinks, JobProgress, JobPublic, JobsPublic
from recon.schemas.params import PARAMS_EXAMPLES, ReconstructionParams
from recon.schemas.tasks import RECONSTRUCT_TASK_NAME, ReconstructTaskPayload

__all__ = [
    "PARAMS_EXAMPLES",
    "RECONSTRUCT_TASK_NAME",
    "DeviceName",
    "ErrorBody",
    "ErrorDetail",
    "JobError",
    "JobLinks",
    "JobProgress",
    "JobPublic",
    "JobStatus",
    "JobsPublic",
    "LengthUnit",
    "MeshFormat",
    "MethodName",
    "PresetName",
    "ReconstructTaskPayload",
    "ReconstructionParams",
    "SurfaceKind",
    "UpAxis",
    "UseNormals",
]
