"""The webhook dispatcher: sends each final job's webhook, retrying with backoff for a while.

Every worker process runs one as a daemon thread (from Celery's ``worker_ready`` signal, like
the reaper), apart from the job runs, so a slow or dead receiver never holds up a job. Each
pass claims the webhooks that are due in the outbox (`recon.infra.webhooks.outbox`; the claim
keeps other dispatchers off them while this one sends), sends a few at once and records each
attempt:

- a 2xx answer: ``delivered``;
- the URL rule refuses the URL or a redirect (`recon.infra.webhooks.url_policy`): ``failed``
  at once, retrying cannot help;
- anything else (an error status, no answer, a name that does not resolve): due again after
  1, 2, 4 ... s (at most `MAX_BACKOFF_S`), until `Settings.webhook_retry_window_s` after the
  job finished; then ``failed`` with the last error.

The first attempt is always made, however late. Every attempt carries the same delivery id
and body (the job view without its `callback` member, which the attempts themselves change),
signed afresh with the current time.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import redis
from celery.signals import worker_ready, worker_shutdown

from recon.infra.job_record import JobRecord
from recon.infra.job_store import JobStore
from recon.infra.job_views import to_job_public
from recon.infra.settings import Settings
from recon.infra.webhooks import (
    DeliveryOutcome,
    WebhookOutbox,
    deliver,
    parse_allowed_hosts,
    signed_headers,
)

logger = logging.getLogger(__name__)

CONCURRENT_DELIVERIES = 4
"""Webhooks one dispatcher sends at once (and claims per pass)."""

MAX_BACKOFF_S = 300.0
"""Longest wait between two attempts of one webhook."""

CLAIM_MARGIN_S = 30.0
"""Added to the longest an attempt can take, so a claim outlives the attempt it covers."""


class DispatcherHost(Protocol):
    """What the dispatcher uses of the worker's Celery app (`ReconCelery`)."""

    @property
    def recon_settings(self) -> Settings: ...

    @property
    def job_store(self) -> JobStore: ...


def backoff_s(attempt: int) -> float:
    """The wait after failed attempt number `attempt` (1, 2, 4 ... s, at most 300 s)."""
    return min(2.0 ** min(attempt - 1, 16), MAX_BACKOFF_S)


def claim_timeout_s(settings: Settings) -> float:
    """How long a claim lasts: every hop's connect, send and read timeouts, plus a margin."""
    hops = settings.webhook_max_redirects + 1
    return hops * 3 * settings.webhook_timeout_s + CLAIM_MARGIN_S


def webhook_body(record: JobRecord) -> bytes:
    """The JSON body: the job view as GET returns it, without `callback`."""
    return to_job_public(record).model_dump_json(exclude={"callback"}).encode()


def send(settings: Settings, record: JobRecord, url: str, delivery_id: str) -> DeliveryOutcome:
    """One attempt of the job's webhook, signed now."""
    if settings.webhook_secret is None:
        return DeliveryOutcome("retry", "the worker has no RECON_WEBHOOK_SECRET to sign with")
    body = webhook_body(record)
    headers = signed_headers(
        settings.webhook_secret.get_secret_value(), body,
        delivery_id=delivery_id, event=f"job.{record.status.value}",
    )
    return deliver(
        url, body, headers,
        allowed_hosts=parse_allowed_hosts(settings.callback_allowed_host_list),
        timeout_s=settings.webhook_timeout_s,
        max_redirects=settings.webhook_max_redirects,
    )


def record_outcome(
    settings: Settings, outbox: WebhookOutbox, record: JobRecord, outcome: DeliveryOutcome
) -> str:
    """Write the attempt to the outbox; return what became of the webhook."""
    attempt = record.callback_attempts + 1
    if outcome.result == "delivered":
        outbox.delivered(record.id)
        return "delivered"
    if outcome.result == "refused":
        outbox.give_up(record.id, outcome.detail)
        return "failed"
    due = time.time() + backoff_s(attempt)
    finished = record.finished_at or time.time()
    if due > finished + settings.webhook_retry_window_s:
        window = f"{settings.webhook_retry_window_s:g} s"
        outbox.give_up(record.id, f"{outcome.detail} (gave up after {attempt} attempts; "
                                  f"webhooks are retried for {window} after the job ends)")
        return "failed"
    outbox.retry_at(record.id, due, outcome.detail)
    return "retry"


def attempt_delivery(settings: Settings, store: JobStore, outbox: WebhookOutbox,
                     job_id: str) -> str:
    """Send one claimed webhook and record the attempt; return what became of it."""
    record = store.get(job_id)
    url = None if record is None else record.callback_url
    if record is None or url is None or record.callback_status != "pending" \
            or record.callback_delivery_id is None:
        return "skipped"  # purged or settled since the claim
    outcome = send(settings, record, url, record.callback_delivery_id)
    became = record_outcome(settings, outbox, record, outcome)
    log = logger.info if outcome.result == "delivered" else logger.warning
    log("webhook %s (job %s, job.%s) attempt %d: %s -> %s%s",
        record.callback_delivery_id, job_id, record.status.value, record.callback_attempts + 1,
        outcome.detail, became, f" (address {outcome.address})" if outcome.address else "")
    return became


def dispatch_once(app: DispatcherHost) -> list[str]:
    """Claim the due webhooks and send them at once, each in a daemon thread (a process that
    exits does not wait for a slow receiver: the claim runs out and another worker retries);
    return the claimed job ids."""
    settings, store = app.recon_settings, app.job_store
    outbox = WebhookOutbox(store.redis, prefix=store.prefix)
    claimed = outbox.claim_due(CONCURRENT_DELIVERIES, claim_timeout_s(settings))

    def one(job_id: str) -> None:
        try:
            attempt_delivery(settings, store, outbox, job_id)
        except Exception:  # its claim runs out and the webhook is tried again
            logger.exception("webhook of job %s: attempt not recorded", job_id)

    senders = [threading.Thread(target=one, args=(job_id,), name="recon-webhook", daemon=True)
               for job_id in claimed]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    return claimed


class WebhookDispatcher:
    """A daemon thread running `dispatch_once` every `Settings.webhook_poll_interval_s` (at
    once again while it finds a full batch)."""

    def __init__(self, app: DispatcherHost) -> None:
        self.app = app
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="recon-webhooks", daemon=True)

    def start(self) -> WebhookDispatcher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def _run(self) -> None:
        interval = self.app.recon_settings.webhook_poll_interval_s
        claimed = 0
        while not self.stop_event.wait(0 if claimed >= CONCURRENT_DELIVERIES else interval):
            try:
                claimed = len(dispatch_once(self.app))
            except redis.RedisError as exc:
                logger.warning("webhooks: job store unreachable (%s)", exc)
                claimed = 0
            except Exception:
                logger.exception("webhooks: pass failed")
                claimed = 0


_dispatchers: dict[int, WebhookDispatcher] = {}


def install(app: DispatcherHost) -> None:
    """Run a dispatcher thread in `app`'s worker from ``worker_ready`` until
    ``worker_shutdown``. Idempotent per app; an app that only publishes never gets
    ``worker_ready``."""

    def start(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app and id(app) not in _dispatchers:
            _dispatchers[id(app)] = WebhookDispatcher(app).start()
            logger.info("webhook dispatcher started")

    def stop(**_: Any) -> None:
        dispatcher = _dispatchers.pop(id(app), None)
        if dispatcher is not None:
            dispatcher.stop()

    worker_ready.connect(start, dispatch_uid=f"recon-webhooks-start-{id(app)}", weak=False)
    worker_shutdown.connect(stop, dispatch_uid=f"recon-webhooks-stop-{id(app)}", weak=False)
