"""Job views returned by the API: one job (`JobPublic`) and a page of jobs (`JobsPublic`)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from recon.schemas.enums import JobStatus
from recon.schemas.params import ReconstructionParams


class JobProgress(BaseModel):
    """Where a running job is: stage (prepare, train, mesh, metrics, upload), step of total."""

    stage: str = "queued"
    step: int = 0
    total: int = 0
    fraction: float = Field(0.0, ge=0.0, le=1.0)
    loss: float | None = None
    eta_seconds: float | None = None


class JobError(BaseModel):
    """Why a job failed: a stable machine code and a sentence for people."""

    code: str
    message: str


class JobLinks(BaseModel):
    self: str
    mesh: str | None = None
    events: str
    cancel: str
    preview: str | None = Field(
        None, description="PNG picture of the mesh; set once the job succeeded (404 "
        "`preview_missing` when it could not be drawn: the job's warnings say why)."
    )
    input: str = Field(
        description="The uploaded points, subsampled for display (`?max_points=&format=glb|ply`)."
    )


class CallbackPublic(BaseModel):
    """The completion webhook of a job with a `callback_url`: where it goes and how it went."""

    url: str
    status: Literal["pending", "delivered", "failed"] = Field(
        description="`pending` until the receiver answers 2xx (`delivered`) or the retry "
        "window ends or the URL is refused at send time (`failed`)."
    )
    delivery_id: str | None = Field(
        None, description="The Recon-Delivery-Id header, the same on every retry; set once "
        "the job is final."
    )
    attempts: int = 0
    last_error: str | None = None
    delivered_at: datetime | None = None


class JobPublic(BaseModel):
    id: str
    status: JobStatus
    params: ReconstructionParams
    progress: JobProgress
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    metrics: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)
    error: JobError | None = None
    formats: list[str] = Field(default_factory=list, description="Mesh formats ready to download.")
    links: JobLinks
    callback: CallbackPublic | None = None


class JobsPublic(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None = None
