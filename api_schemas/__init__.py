"""The wire contract shared by the HTTP service and the Celery worker (pydantic only)."""

from api_schemas.enums import DeviceName, JobStatus, MeshFormat, MethodName, PresetName
from api_schemas.errors import ErrorBody, ErrorDetail
from api_schemas.jobs import JobError, JobLinks, JobProgress, JobPublic, JobsPublic
from api_schemas.params import ReconstructionParams
from api_schemas.tasks import RECONSTRUCT_TASK_NAME, ReconstructTaskPayload

__all__ = [
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
    "MeshFormat",
    "MethodName",
    "PresetName",
    "ReconstructTaskPayload",
    "ReconstructionParams",
]
