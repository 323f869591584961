"""The worker's Celery app carries the reliability settings (docs/ARCHITECTURE.md) and no torch."""

import os
import subprocess
import sys

from recon.infra.settings import Settings
from recon.schemas import RECONSTRUCT_TASK_NAME
from recon.worker.celery_app import create_celery_app
from recon.worker.cli import build_parser, worker_argv
from recon.worker.tasks import backoff_s


def test_reliability_settings(worker_settings: Settings) -> None:
    conf = create_celery_app(worker_settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    # A broker blip must not kill running jobs (their state is fenced in the job store).
    assert not conf.worker_cancel_long_running_tasks_on_connection_loss
    assert conf.task_soft_time_limit == worker_settings.job_soft_time_limit_s
    assert conf.task_time_limit == worker_settings.job_hard_time_limit_s
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert visibility == worker_settings.broker_visibility_timeout_s > conf.task_time_limit
    assert conf.task_routes[RECONSTRUCT_TASK_NAME]["queue"] == worker_settings.celery_queue
    assert conf.broker_url == worker_settings.redis_url and conf.task_ignore_result


def test_app_and_task_modules_do_not_import_torch() -> None:
    code = (
        "import sys; from recon.infra.settings import Settings; "
        "from recon.worker.celery_app import create_celery_app; "
        "app = create_celery_app(Settings()); app.loader.import_default_modules(); "
        "import recon.worker.tasks, recon.worker.reaper, recon.worker.cli, recon.embedded.serve; "
        "assert 'recon.reconstruct' in app.tasks; "
        "print(sorted(m for m in ('torch', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_worker_command_line(worker_settings: Settings) -> None:
    argv = worker_argv(worker_settings)
    assert argv[0] == "worker" and argv[argv.index("--queues") + 1] == worker_settings.celery_queue
    assert argv[argv.index("--pool") + 1] == "prefork"
    options = build_parser().parse_args(["--concurrency", "2", "--device", "cpu"])
    assert (options.concurrency, options.device) == (2, "cpu")


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    delays = [backoff_s(retry, cap_s=10.0) for retry in (1, 2, 3, 4, 5, 6)]
    assert 1.0 <= delays[0] <= 2.0 and 2.0 <= delays[1] <= 4.0
    assert all(5.0 <= d <= 10.0 for d in delays[3:])
    assert len({backoff_s(3, 10.0) for _ in range(5)}) > 1


def test_clients_are_rebuilt_in_a_forked_process(worker_settings: Settings) -> None:
    """The main process may build clients (reaper, hard time-limit failure) before the pool
    forks again; a forked child must build its own instead of sharing the parent's sockets."""
    app = create_celery_app(worker_settings)
    parent = (app.storage, app.job_store, app.job_queue)
    assert (app.storage, app.job_store, app.job_queue) == parent  # cached within a process
    pid = os.fork()
    if pid == 0:  # the child reports by exit status only
        fresh = all(a is not b for a, b in zip((app.storage, app.job_store, app.job_queue),
                                               parent, strict=True))
        os._exit(0 if fresh else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
