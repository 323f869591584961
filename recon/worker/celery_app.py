"""The worker's Celery application: the broker wiring plus the consumer's reliability settings.

The worker process runs the task from `recon.worker.tasks`; publishers (the API, the reaper) use
`recon.infra.task_queue`, whose `broker_config` this app starts from. Importing this module
must never import torch: a prefork worker must not initialise CUDA before it forks its children.
The rules behind these settings are in docs/ARCHITECTURE.md (Reliability). In Celery terms:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only when the
  task returns, so a worker that dies mid-job leaves the message to be delivered again.
- ``worker_prefetch_multiplier = 1``: a busy worker holds no queued jobs another one could run.
- ``worker_cancel_long_running_tasks_on_connection_loss``: after a broker outage the running
  job is cancelled and redelivered rather than finished by a worker whose ack would be lost.
- ``visibility_timeout`` above the hard time limit: Redis never redelivers a message whose job
  is still legitimately running. Faster recovery from a dead worker comes from the heartbeat
  reaper (`recon.worker.reaper`), and the per-job lease (`recon.worker.job_run`) makes
  duplicates harmless.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from celery import Celery

from recon.infra.job_store import JobStore
from recon.infra.settings import Settings
from recon.infra.storage import ObjectStorage, build_storage
from recon.infra.task_queue import JobQueue, broker_config
from recon.worker import reaper

POOL_PROCESS_START_TIMEOUT_S = 120.0
"""How long a new pool process may take to start: it imports torch before its first job."""


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
        return JobStore.from_settings(self.recon_settings)

    @cached_property
    def storage(self) -> ObjectStorage:
        return build_storage(self.recon_settings)

    @cached_property
    def job_queue(self) -> JobQueue:
        """Publishes through this app, so a re-sent task takes this worker's broker connection."""
        return JobQueue(self, self.recon_settings.celery_queue)


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for `settings` (a plain dict so tests can inspect it).

    `Settings` already guarantees soft limit < hard limit < visibility timeout.
    """
    return {
        **broker_config(settings),
        "task_acks_late": True,
        "task_acks_on_failure_or_timeout": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_proc_alive_timeout": POOL_PROCESS_START_TIMEOUT_S,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_soft_time_limit": settings.job_soft_time_limit_s,
        "task_time_limit": settings.job_hard_time_limit_s,
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
    app = ReconCelery(settings, main="recon", include=["recon.worker.tasks"])
    app.conf.update(celery_config(settings))
    reaper.install(app)
    return app
