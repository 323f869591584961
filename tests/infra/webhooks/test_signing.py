"""Webhook signatures: what the service sends verifies, and any change to body, time or
secret does not."""

import hashlib
import hmac

from recon.infra.webhooks.signing import (
    DELIVERY_ID_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signed_headers,
    verify_signature,
)

SECRET = "whsec-test-0123456789abcdef"
BODY = b'{"id":"abc","status":"succeeded"}'
NOW = 1_750_000_000


def test_signed_headers_round_trip() -> None:
    headers = signed_headers(SECRET, BODY, delivery_id="abc-7", event="job.succeeded",
                             timestamp=NOW)
    assert headers[DELIVERY_ID_HEADER] == "abc-7" and headers[EVENT_HEADER] == "job.succeeded"
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    assert verify_signature(SECRET, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER],
                            now=NOW + 10)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    headers = signed_headers(SECRET, BODY, delivery_id="d", event="job.failed", timestamp=NOW)
    assert headers[SIGNATURE_HEADER] == f"v1={expected}"


def test_tampering_is_detected() -> None:
    headers = signed_headers(SECRET, BODY, delivery_id="d", event="job.failed", timestamp=NOW)
    stamp, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert not verify_signature(SECRET, BODY.replace(b"succeeded", b"failed"), stamp, sig, now=NOW)
    assert not verify_signature(SECRET, BODY, str(NOW + 1), sig, now=NOW)
    assert not verify_signature("another-secret-0123456789", BODY, stamp, sig, now=NOW)
    assert not verify_signature(SECRET, BODY, stamp, sig.replace("v1=", "v0="), now=NOW)
    assert not verify_signature(SECRET, BODY, "not-a-number", sig, now=NOW)


def test_old_and_future_timestamps_are_refused() -> None:
    headers = signed_headers(SECRET, BODY, delivery_id="d", event="job.canceled", timestamp=NOW)
    stamp, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert verify_signature(SECRET, BODY, stamp, sig, tolerance_s=300, now=NOW + 300)
    assert not verify_signature(SECRET, BODY, stamp, sig, tolerance_s=300, now=NOW + 301)
    assert not verify_signature(SECRET, BODY, stamp, sig, tolerance_s=300, now=NOW - 301)


def test_any_of_several_signatures_may_match() -> None:
    headers = signed_headers(SECRET, BODY, delivery_id="d", event="job.failed", timestamp=NOW)
    rotated = f"v1={'0' * 64}, {headers[SIGNATURE_HEADER]}"
    assert verify_signature(SECRET, BODY, str(NOW), rotated, now=NOW)
