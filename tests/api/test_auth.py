"""API keys: parsing, hashing only, constant-time comparison against every digest."""

import hmac

import pytest

from recon.api import auth
from recon.api.auth import ApiKeyRing, InvalidApiKeys, hash_key, presented_key

KEY_A = "a" * 8 + "-key-for-tenant-a"
KEY_B = "b" * 8 + "-key-for-tenant-b"


def test_parses_tenants_and_keys() -> None:
    ring = ApiKeyRing.from_spec(f" acme:{KEY_A} , globex:{KEY_B},")
    assert len(ring) == 2
    assert ring.tenant_for(KEY_A) == "acme"
    assert ring.tenant_for(KEY_B) == "globex"
    assert ring.tenant_for(KEY_A + "x") is None
    assert ring.tenant_for("") is None


def test_keeps_only_digests() -> None:
    ring = ApiKeyRing.from_spec(f"acme:{KEY_A}")
    assert KEY_A not in repr(ring)
    assert ring.entries == ((hash_key(KEY_A), "acme"),)


@pytest.mark.parametrize(
    "spec",
    [
        "acme",  # no key
        f"../x:{KEY_A}",  # tenant is not a safe name
        f"a cme:{KEY_A}",
        "acme:short",  # too short to be a secret
        f"acme:{KEY_A},globex:{KEY_A}",  # same key twice
    ],
)
def test_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(InvalidApiKeys):
        ApiKeyRing.from_spec(spec)


def test_compares_every_digest_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup uses hmac.compare_digest on digests and never stops at the first match."""
    keys = [f"tenant{i}:{'k' * 20}{i}" for i in range(5)]
    ring = ApiKeyRing.from_spec(",".join(keys))
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for presented in ("k" * 20 + "0", "k" * 20 + "4", "wrong-key-xxxxxxxxxxxx"):
        calls.clear()
        ring.tenant_for(presented)
        assert len(calls) == len(keys)
        assert all(len(a) == len(b) == 32 for a, b in calls)  # digests, not raw keys


def test_presented_key_from_either_header() -> None:
    assert presented_key({"authorization": f"Bearer {KEY_A}"}) == KEY_A
    assert presented_key({"authorization": f"bearer  {KEY_A} "}) == KEY_A
    assert presented_key({"x-api-key": KEY_B}) == KEY_B
    assert presented_key({"authorization": "Basic abc"}) is None
    assert presented_key({}) is None
