"""Publishing jobs to the Celery broker by task name (the API never imports the task code).

The message carries ids only (`ReconstructTaskPayload`); the worker reads everything else
from the job store.
"""

from typing import Any

from api_schemas import RECONSTRUCT_TASK_NAME, ReconstructTaskPayload
from service.settings import Settings

BROKER_PING_TIMEOUT_S = 2.0


class QueueUnavailable(Exception):
    """The broker did not accept the message or does not answer."""


class JobQueue:
    """Sends reconstruction tasks and reports on the broker's queue."""

    def __init__(self, celery_app: Any, queue_name: str) -> None:
        self.celery = celery_app
        self.queue_name = queue_name

    @classmethod
    def from_settings(cls, settings: Settings) -> "JobQueue":
        """A queue publishing through `worker.celery_app.create_celery_app(settings)`."""
        from worker.celery_app import create_celery_app

        return cls(create_celery_app(settings), settings.celery_queue)

    def enqueue(self, job_id: str, tenant: str) -> None:
        """Publish one reconstruction task; raises `QueueUnavailable` when the broker refuses."""
        payload = ReconstructTaskPayload(job_id=job_id, tenant=tenant)
        try:
            self.celery.send_task(
                RECONSTRUCT_TASK_NAME, kwargs=payload.model_dump(), queue=self.queue_name
            )
        except Exception as exc:  # kombu/redis raise many types; all mean "not published"
            raise QueueUnavailable(f"could not publish job {job_id}: {exc}") from exc

    def ping(self) -> None:
        """Raise `QueueUnavailable` unless a broker connection can be opened now."""
        try:
            with self.celery.connection_for_write() as connection:
                connection.ensure_connection(
                    max_retries=1, interval_start=0, timeout=BROKER_PING_TIMEOUT_S
                )
        except Exception as exc:
            raise QueueUnavailable(f"broker unreachable: {exc}") from exc

    def depth(self) -> int:
        """Messages waiting in the reconstruction queue; raises `QueueUnavailable`."""
        try:
            with self.celery.connection_for_read() as connection:
                connection.ensure_connection(
                    max_retries=1, interval_start=0, timeout=BROKER_PING_TIMEOUT_S
                )
                # Not passive: declaring is idempotent and answers 0 for a queue never used.
                declared = connection.default_channel.queue_declare(queue=self.queue_name)
                return int(declared.message_count)
        except Exception as exc:
            raise QueueUnavailable(f"broker unreachable: {exc}") from exc
