"""The Celery message: a task name and ids only, never data.

The worker reads everything else from the job store and object storage.
"""

from pydantic import BaseModel

RECONSTRUCT_TASK_NAME = "recon.reconstruct"


class ReconstructTaskPayload(BaseModel):
    job_id: str
    tenant: str
