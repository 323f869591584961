"""Completion webhooks: the URL rule, signing, the outbox in Redis and one delivery attempt.

The worker's dispatcher (`recon.worker.webhook_dispatcher`) puts them together; the API uses
the URL rule at submission.
"""

from recon.infra.webhooks.delivery import DeliveryOutcome, deliver
from recon.infra.webhooks.outbox import WebhookOutbox, outbox_key
from recon.infra.webhooks.signing import signed_headers, verify_signature
from recon.infra.webhooks.url_policy import (
    CallbackHostUnresolved,
    CallbackUrlRefused,
    check_callback_url,
    parse_allowed_hosts,
)

__all__ = [
    "CallbackHostUnresolved",
    "CallbackUrlRefused",
    "DeliveryOutcome",
    "WebhookOutbox",
    "check_callback_url",
    "deliver",
    "outbox_key",
    "parse_allowed_hosts",
    "signed_headers",
    "verify_signature",
]
