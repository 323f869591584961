"""Publishing reconstruction tasks by name, and the broker wiring publishers and workers share.

The API and the reaper publish through `JobQueue`; neither imports the task code. The message
carries ids only (`ReconstructTaskPayload`); the worker reads everything else from the job store.
The worker's Celery app (`recon.worker.celery_app`) starts from `broker_config` and adds what
only a consumer needs, so both sides always agree on the broker, queue and serialisation.
"""

from typing import Any

from celery import Celery

from recon.infra.settings import Settings
from recon.schemas import RECONSTRUCT_TASK_NAME, ReconstructTaskPayload

BROKER_PING_TIMEOUT_S = 2.0
"""How long `JobQueue.ping` and `JobQueue.depth` wait for a broker connection (seconds)."""

BROKER_CONNECT_RETRY_S = 2.0
"""Pause between broker (re)connection attempts of a publisher (seconds)."""

BROKER_SOCKET_TIMEOUT_S = 5.0
"""How long opening a broker connection, or waiting on one, may take before it counts as down
(seconds): a frozen Redis must not hang a publisher."""

BROKER_HEALTH_CHECK_S = 25
"""Idle broker connections are pinged this often, so a dead link is noticed (seconds)."""

BROKER_PUBLISH_RETRIES = 3
"""How often `send_task` retries publishing before the API answers 503."""


def broker_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration every process that talks to the broker uses.

    The Redis visibility timeout is the consumer's, but it lives here so that a publisher and a
    worker built from the same settings can never disagree on it.
    """
    return {
        "broker_url": settings.effective_broker_url,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_S,
            "socket_timeout": BROKER_SOCKET_TIMEOUT_S,
            "health_check_interval": BROKER_HEALTH_CHECK_S,
        },
        "task_default_queue": settings.celery_queue,
        "task_routes": {RECONSTRUCT_TASK_NAME: {"queue": settings.celery_queue}},
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": BROKER_PUBLISH_RETRIES,
            "interval_start": 0,
            "interval_step": BROKER_CONNECT_RETRY_S,
            "interval_max": BROKER_CONNECT_RETRY_S,
        },
    }


def publisher_app(settings: Settings) -> Celery:
    """A Celery app that only publishes: no tasks, no worker signals, not the current app."""
    app = Celery("recon", set_as_current=False)
    app.conf.update(broker_config(settings))
    return app


class QueueUnavailable(Exception):
    """The broker did not accept the message or does not answer."""


class JobQueue:
    """Sends reconstruction tasks and reports on the broker's queue."""

    def __init__(self, celery_app: Celery, queue_name: str) -> None:
        self.celery = celery_app
        self.queue_name = queue_name

    @classmethod
    def from_settings(cls, settings: Settings) -> "JobQueue":
        """A queue publishing through its own `publisher_app(settings)`."""
        return cls(publisher_app(settings), settings.celery_queue)

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
