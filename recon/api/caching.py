"""HTTP caching of a job's unchanging artefacts: a private max-age and an ETag per answer.

A run writes each object once, under its own prefix, and a job's upload never changes, so the
object's key plus the request's options identify the bytes of an answer: the ETag is a hash of
them, and a browser revalidating with If-None-Match gets 304 before storage is read. `private`
keeps shared caches out: every answer needs the caller's API key.
"""

import hashlib

ARTEFACT_MAX_AGE_S = 3600
"""How long a browser may reuse a preview or input answer without asking again."""


def cache_headers(*identity: str) -> dict[str, str]:
    """Cache-Control and a strong ETag for the answer identified by `identity`."""
    digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:32]
    return {"Cache-Control": f"private, max-age={ARTEFACT_MAX_AGE_S}", "ETag": f'"{digest}"'}


def is_fresh(if_none_match: str | None, etag: str) -> bool:
    """True when the client's If-None-Match names `etag` (or `*`): answer 304."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
