"""API keys: parsing `RECON_API_KEYS`, hashing, and constant-time lookup of a request's tenant.

Only SHA-256 digests of the keys are kept in memory. A lookup hashes the presented key and
compares it with every stored digest using `hmac.compare_digest`, without stopping at the first
match, so timing reveals neither which key nor how much of it matched.
"""

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from recon.infra.storage.keys import is_valid_tenant

BEARER_PREFIX = "bearer "
API_KEY_HEADER = "x-api-key"
MIN_KEY_CHARS = 16
LOCAL_TENANT = "local"


class MissingApiKeys(RuntimeError):
    """The API would start without any key: refuse rather than serve unauthenticated."""


class InvalidApiKeys(ValueError):
    """`RECON_API_KEYS` is malformed (bad tenant name, short or repeated key)."""


def hash_key(key: str) -> bytes:
    """The SHA-256 digest stored in place of an API key."""
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True)
class ApiKeyRing:
    """Digests of the configured API keys, each mapped to its tenant."""

    entries: tuple[tuple[bytes, str], ...]

    @classmethod
    def from_spec(cls, spec: str) -> "ApiKeyRing":
        """Parse ``"tenant1:key1,tenant2:key2"``; raises `InvalidApiKeys` on a bad entry."""
        entries: list[tuple[bytes, str]] = []
        for item in filter(None, (part.strip() for part in spec.split(","))):
            tenant, sep, key = item.partition(":")
            tenant, key = tenant.strip(), key.strip()
            if not sep or not is_valid_tenant(tenant):
                raise InvalidApiKeys(
                    "RECON_API_KEYS entries look like tenant:key, with a tenant of letters, "
                    "digits, '_' or '-'"
                )
            if len(key) < MIN_KEY_CHARS:
                raise InvalidApiKeys(
                    f"the key of tenant {tenant!r} is shorter than {MIN_KEY_CHARS} characters"
                )
            digest = hash_key(key)
            if any(hmac.compare_digest(digest, known) for known, _ in entries):
                raise InvalidApiKeys(f"the key of tenant {tenant!r} is used twice")
            entries.append((digest, tenant))
        return cls(tuple(entries))

    def __len__(self) -> int:
        return len(self.entries)

    def tenant_for(self, key: str) -> str | None:
        """The tenant owning `key`, or None; compares against every digest in constant time."""
        digest = hash_key(key)
        found: str | None = None
        for known, tenant in self.entries:
            if hmac.compare_digest(digest, known):
                found = tenant
        return found


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key of a request: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith(BEARER_PREFIX):
        return authorization[len(BEARER_PREFIX) :].strip() or None
    return headers.get(API_KEY_HEADER, "").strip() or None


def local_key_spec(key: str) -> str:
    """The `RECON_API_KEYS` value giving `key` to the embedded default's tenant."""
    return f"{LOCAL_TENANT}:{key}"
