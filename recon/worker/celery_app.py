"""The worker's Celery application: the broker wiring plus the consumer's reliability settings.

The worker process runs the task from `recon.worker.tasks`; publishers (the API, the reaper) use
`recon.infra.task_queue`, whose `broker_config` this app starts from. Importing this module
must never import torch: a prefork worker must not initialise CUDA before it forks its children.
The rules behind these settings are in docs/ARCHITECTURE.md (Reliability). In Celery terms:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only when the
  task returns, so a worker that dies mid-job leaves the message to be delivered again.
- ``worker_prefetch_multiplier = 1``: a busy worker holds no queued jobs another one could run.
- ``worker_cancel_long_running_tasks_on_connection_loss = False``: a broker blip does not kill
  running jobs. Job state lives in the job store, fenced by each run's token, so a run finishing
  after a reconnection records its end normally; should its ack be lost, the redelivered copy
  finds the job final and exits.
- ``visibility_timeout`` above the hard time limit: Redis never redelivers a message whose job
  is still legitimately running. Faster recovery from a dead worker comes from the heartbeat
  reaper (`recon.worker.reaper`), and the per-job lease (`recon.worker.job_run`) makes
  duplicates harmless.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Celery
from celery.signals import worker_shutting_down

from recon.infra.job_store import JobStore
from recon.infra.settings import Settings
from recon.infra.storage import ObjectStorage, build_storage
from recon.infra.task_queue import JobQueue, broker_config
from recon.worker import reaper, webhook_dispatcher

POOL_PROCESS_START_TIMEOUT_S = 120.0
"""How long a new pool process may take to start: it imports torch before its first job."""


DRAINING_FLAG_TTL_S = 3600.0
"""How long a shutting-down worker's draining flag lives (longer than any warm shutdown)."""

C = TypeVar("C")


class ReconCelery(Celery):
    """A Celery app that carries the process's one `Settings` and the clients built from it.

    The job store and storage clients are built lazily and per process id: a pool process
    forked after the main process built its own (the reaper, a hard time-limit failure) builds
    fresh ones instead of sharing the parent's sockets (boto3 clients are not fork-safe).
    """

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recon_settings = settings
        self._clients: dict[str, tuple[int, Any]] = {}

    def _per_process(self, name: str, build: Callable[[], C]) -> C:
        pid = os.getpid()
        cached = self._clients.get(name)
        if cached is None or cached[0] != pid:
            cached = (pid, build())
            self._clients[name] = cached
        client: C = cached[1]
        return client

    @property
    def job_store(self) -> JobStore:
        return self._per_process("job_store", lambda: JobStore.from_settings(self.recon_settings))

    @property
    def storage(self) -> ObjectStorage:
        return self._per_process("storage", lambda: build_storage(self.recon_settings))

    @property
    def job_queue(self) -> JobQueue:
        """Publishes through this app, so a re-sent task takes this worker's broker connection."""
        return self._per_process(
            "job_queue", lambda: JobQueue(self, self.recon_settings.celery_queue)
        )


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
        "worker_cancel_long_running_tasks_on_connection_loss": False,
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
    webhook_dispatcher.install(app)
    install_draining(app)
    return app


def install_draining(app: ReconCelery) -> None:
    """On shutdown (SIGTERM, SIGINT), flag the worker as draining in the job store.

    Its running jobs see the flag at their next heartbeat, stop and go back to the queue, so
    another worker takes them over at once instead of after the warm shutdown or the reaper.
    """

    def drain(sender: Any = None, **_: Any) -> None:
        if sender:
            try:
                app.job_store.set_draining(str(sender), DRAINING_FLAG_TTL_S)
            except Exception:  # the job store is down: the reaper recovers the jobs later
                pass

    worker_shutting_down.connect(drain, dispatch_uid=f"recon-drain-{id(app)}", weak=False)
