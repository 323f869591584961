"""The Celery message: a task name and ids only, never data (the worker reads the rest from the job store)."""

from pydantic import BaseModel

RECONSTRUCT_TASK_NAME = "recon.reconstruct"


class ReconstructTaskPayload(BaseModel):
    job_id: str
    tenant: str
