"""One delivery attempt against real HTTP servers on loopback: delivered, retried, and every
way of reaching a non-allow-listed address refused before a connection is made."""

import json

from recon.infra.webhooks import deliver, parse_allowed_hosts
from recon.infra.webhooks.delivery import DeliveryOutcome
from tests.conftest import free_port
from tests.infra.webhooks.receiver import Receiver

BODY = json.dumps({"id": "abc", "status": "succeeded"}).encode()
HEADERS = {"Content-Type": "application/json", "Recon-Delivery-Id": "abc-9"}
LOOPBACK = parse_allowed_hosts(["127.0.0.1"])
LOCALHOST_ONLY = parse_allowed_hosts(["localhost"])


def send(url: str, allowed: frozenset[str], max_redirects: int = 3) -> DeliveryOutcome:
    return deliver(url, BODY, HEADERS, allowed_hosts=allowed, timeout_s=5,
                   max_redirects=max_redirects)


def test_an_allow_listed_receiver_gets_the_body_and_headers() -> None:
    with Receiver() as receiver:
        outcome = send(receiver.url("/hook?x=1"), LOOPBACK)
        assert (outcome.result, outcome.status_code) == ("delivered", 200)
        [request] = receiver.received
        assert request.path == "/hook?x=1" and request.body == BODY
        assert request.headers["recon-delivery-id"] == "abc-9"
        assert request.headers["host"] == f"127.0.0.1:{receiver.port}"


def test_an_error_status_or_no_server_means_retry() -> None:
    with Receiver(answers=[(500, {})]) as receiver:
        outcome = send(receiver.url(), LOOPBACK)
        assert (outcome.result, outcome.detail) == ("retry", "callback_url: HTTP 500")
    closed = send(f"http://127.0.0.1:{free_port()}/hook", LOOPBACK)
    assert closed.result == "retry" and "ConnectError" in closed.detail


def test_a_redirect_between_allow_listed_hosts_reposts_the_same_body() -> None:
    with Receiver() as target, Receiver() as first:
        first.answers.append((307, {"Location": target.url("/moved")}))
        outcome = send(first.url(host="localhost"), parse_allowed_hosts(["localhost", "127.0.0.1"]))
        assert outcome.result == "delivered"
        assert [r.body for r in first.received + target.received] == [BODY, BODY]
        assert target.received[0].headers["recon-delivery-id"] == "abc-9"


def test_a_redirect_to_a_loopback_host_that_is_not_allow_listed_is_refused() -> None:
    for scheme in ("http", "https"):  # http fails the scheme rule, https the address rule
        with Receiver() as internal, Receiver() as first:
            location = f"{scheme}://127.0.0.1:{internal.port}/admin"
            first.answers.append((307, {"Location": location}))
            outcome = send(first.url(host="localhost"), LOCALHOST_ONLY)
            assert outcome.result == "refused", outcome
            assert outcome.detail.startswith("redirect 1")
            assert len(first.received) == 1
            assert internal.connections == 0 and internal.received == []


def test_a_name_resolving_to_loopback_is_refused_at_connect_time() -> None:
    with Receiver() as receiver:
        outcome = send(f"https://localhost:{receiver.port}/hook", frozenset())
        assert outcome.result == "refused" and "loopback" in outcome.detail
        assert outcome.address in ("127.0.0.1", "::1")
        assert receiver.connections == 0


def test_too_many_redirects_means_retry() -> None:
    with Receiver() as receiver:
        receiver.answers.extend([(302, {"Location": "/again"})] * 3)
        outcome = send(receiver.url(), LOOPBACK, max_redirects=2)
        assert outcome.result == "retry" and "more than 2 redirects" in outcome.detail
        assert len(receiver.received) == 3
