"""Signing a webhook, and checking one the way a receiver does.

Every delivery carries::

    Recon-Delivery-Id: <id>           the same on every attempt of one job's final event
    Recon-Event: job.succeeded | job.failed | job.canceled
    Recon-Timestamp: <unix seconds>   when this attempt was signed
    Recon-Signature: v1=<hex>         HMAC-SHA256(secret, "<timestamp>." + body)

Signing the timestamp with the body lets a receiver refuse replays of an old delivery
(`verify_signature`'s tolerance); the README's receiver snippet is this function.
"""

from __future__ import annotations

import hashlib
import hmac
import time

DELIVERY_ID_HEADER = "Recon-Delivery-Id"
EVENT_HEADER = "Recon-Event"
TIMESTAMP_HEADER = "Recon-Timestamp"
SIGNATURE_HEADER = "Recon-Signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300
"""How old (or how far ahead) a receiver accepts a signed timestamp by default."""


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under `secret`."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: bytes, *, delivery_id: str, event: str, timestamp: int | None = None
) -> dict[str, str]:
    """The headers of one delivery attempt of `body` (signed now unless `timestamp` is given)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        DELIVERY_ID_HEADER: delivery_id,
        EVENT_HEADER: event,
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={signature(secret, body, stamp)}",
    }


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature_header: str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver does: True when `signature_header` signs `body` and `timestamp` with
    `secret`, and the timestamp is within `tolerance_s` of `now` (default: the clock).

    `body` must be the raw request bytes (parse the JSON after checking). The header may hold
    several comma-separated ``v1=`` values (a receiver rotating secrets checks each).
    """
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_s:
        return False
    expected = signature(secret, body, stamp)
    candidates = [part.strip() for part in signature_header.split(",")]
    return any(
        hmac.compare_digest(value, expected)
        for version, _, value in (c.partition("=") for c in candidates)
        if version == SIGNATURE_VERSION
    )
