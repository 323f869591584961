"""JobQueue publishes ids-only messages by task name to the real Redis broker."""

import base64
import json

import pytest
import redis

from recon.infra.settings import Settings
from recon.infra.task_queue import JobQueue, QueueUnavailable
from recon.schemas import RECONSTRUCT_TASK_NAME


def test_enqueue_sends_the_task_by_name_with_ids_only(
    settings: Settings, redis_client: redis.Redis
) -> None:
    queue = JobQueue.from_settings(settings)
    assert queue.depth() == 0
    queue.enqueue("a" * 32, "acme")
    assert queue.depth() == 1
    message = json.loads(redis_client.lindex(settings.celery_queue, 0))
    assert message["headers"]["task"] == RECONSTRUCT_TASK_NAME
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == [] and kwargs == {"job_id": "a" * 32, "tenant": "acme"}


def test_unreachable_broker_raises_queue_unavailable(settings: Settings) -> None:
    down = JobQueue.from_settings(
        Settings(**{**settings.model_dump(), "broker_url": "redis://127.0.0.1:9/0"})
    )
    with pytest.raises(QueueUnavailable):
        down.ping()
    with pytest.raises(QueueUnavailable):
        down.depth()
