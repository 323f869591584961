"""The Celery application: broker wiring and the reliability settings of DESIGN.md section 7.

The API process uses this app only to publish `RECONSTRUCT_TASK_NAME` messages; the worker
process runs the task from `worker.tasks`. Importing this module must never import torch: the
API image has none, and a prefork worker must not initialise CUDA before it forks its children.

Reliability, in Celery terms:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only when the
  task returns, so a worker that dies mid-job leaves the message to be delivered again.
- ``worker_prefetch_multiplier = 1``: a busy worker holds no queued jobs another one could run.
- ``worker_cancel_long_running_tasks_on_connection_loss``: after a broker outage the running
  job is cancelled and redelivered rather than finished by a worker whose ack would be lost.
- ``visibility_timeout`` above the hard time limit: Redis never redelivers a message whose job
  is still legitimately running. Faster recovery from a dead worker comes from the heartbeat
  reaper (`worker.reaper`), and the per-job lease (`worker.tasks`) makes duplicates harmless.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from celery import Celery

from api_schemas import RECONSTRUCT_TASK_NAME

if TYPE_CHECKING:
    from service.job_store import JobStore
    from service.settings import Settings
    from service.storage import ObjectStorage

BROKER_CONNECT_RETRY_S = 2.0
"""Pause between broker (re)connection attempts of a publisher (seconds)."""

BROKER_SOCKET_TIMEOUT_S = 5.0
"""How long opening a broker connection may take before it counts as down (seconds)."""

BROKER_HEALTH_CHECK_S = 25
"""Idle broker connections are pinged this often, so a dead link is noticed (seconds)."""

POOL_PROCESS_START_TIMEOUT_S = 120.0
"""How long a new pool process may take to start: it imports torch before its first job."""

BROKER_PUBLISH_RETRIES = 3
"""How often `send_task` retries publishing before the API answers 503."""


class ReconCelery(Celery):
    """A Celery app that carries the process's one `Settings` and the clients built from it.

    The job store and storage are created lazily, once per process, after a prefork worker
    has forked its children, so no socket is shared between processes.
    """

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recon_settings = settings

    @cached_property
    def job_store(self) -> JobStore:
        from service.job_store import JobStore

        return JobStore.from_settings(self.recon_settings)

    @cached_property
    def storage(self) -> ObjectStorage:
        from service.storage import build_storage

        return build_storage(self.recon_settings)


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for `settings` (a plain dict so tests can inspect it).

    `Settings` already guarantees soft limit < hard limit < visibility timeout.
    """
    return {
        "broker_url": settings.effective_broker_url,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_acks_on_failure_or_timeout": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_proc_alive_timeout": POOL_PROCESS_START_TIMEOUT_S,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_S,
            "health_check_interval": BROKER_HEALTH_CHECK_S,
        },
        "task_soft_time_limit": settings.job_soft_time_limit_s,
        "task_time_limit": settings.job_hard_time_limit_s,
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


def create_celery_app(settings: Settings) -> ReconCelery:
    """Build the Celery app for one process from its settings.

    Parameters
    ----------
    settings : Settings
        The process's settings; ``redis_url`` is the broker, the time limits bound each job.

    Returns
    -------
    ReconCelery
        A Celery app whose ``recon_settings``, ``job_store`` and ``storage`` the task uses.
    """
    from worker import reaper

    app = ReconCelery(settings, main="recon", include=["worker.tasks"])
    app.conf.update(celery_config(settings))
    reaper.install()
    return app
