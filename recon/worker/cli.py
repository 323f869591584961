"""`recon worker`: start one Celery worker that runs reconstruction jobs (production process).

Run one worker per GPU (``CUDA_VISIBLE_DEVICES=i recon worker --device cuda``) and as many as you
like on as many machines as you like: they share only Redis and object storage. Options override
the matching ``RECON_`` variables (``RECON_WORKER_CONCURRENCY``, ``RECON_WORKER_DEVICE``,
``RECON_LOG_LEVEL``); everything else comes from the environment.

``recon worker --healthcheck`` asks the broker whether a worker on this host answers a ping and
exits 0 or 1 (the container health check).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING

from recon.engine.runtime import configure_process

if TYPE_CHECKING:
    from celery import Celery

    from recon.infra.settings import Settings

HEALTHCHECK_TIMEOUT_S = 5.0
"""How long `--healthcheck` waits for the local worker's pong (seconds)."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
"""One log line format for the worker's own loggers (Celery's are configured by Celery)."""


def build_parser() -> argparse.ArgumentParser:
    """The `recon worker` argument parser."""
    parser = argparse.ArgumentParser(
        prog="recon worker",
        description="Start a Celery worker that runs reconstruction jobs (one per GPU).",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None,
        help="worker processes (default RECON_WORKER_CONCURRENCY, 1); use 1 per GPU",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default=None,
        help="engine device (default RECON_WORKER_DEVICE, auto)",
    )
    parser.add_argument(
        "--loglevel", choices=("debug", "info", "warning", "error", "critical"), default=None,
        help="log level (default RECON_LOG_LEVEL, info)",
    )
    parser.add_argument(
        "--healthcheck", action="store_true",
        help="exit 0 if a worker on this host answers a broker ping, else 1",
    )
    return parser


def node_name() -> str:
    """A node name unique per process, so several workers may share one host."""
    return f"recon-{os.getpid()}@{socket.gethostname()}"


def worker_argv(settings: Settings) -> list[str]:
    """The Celery worker command line for `settings`."""
    return [
        "worker",
        "--queues", settings.celery_queue,
        "--concurrency", str(settings.worker_concurrency),
        "--loglevel", settings.log_level.upper(),
        "--pool", "prefork",
        "--hostname", node_name(),
        "--without-gossip",
        "--without-mingle",
    ]


def healthcheck(app: Celery) -> int:
    """0 when a worker on this host answers a ping through the broker, else 1."""
    suffix = f"@{socket.gethostname()}"
    replies = app.control.ping(timeout=HEALTHCHECK_TIMEOUT_S)
    alive = any(name.endswith(suffix) for reply in replies for name in reply)
    return 0 if alive else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of `recon worker` (``argv`` may start with the word "worker")."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["worker"]:
        args_in = args_in[1:]
    args = build_parser().parse_args(args_in)
    configure_process()  # the pool processes inherit it before they load torch

    from recon.infra.settings import Settings
    from recon.worker.celery_app import create_celery_app

    overrides = {
        "worker_concurrency": args.concurrency,
        "worker_device": args.device,
        "log_level": args.loglevel,
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    app = create_celery_app(settings)
    if args.healthcheck:
        return healthcheck(app)
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    app.worker_main(worker_argv(settings))
    return 0
