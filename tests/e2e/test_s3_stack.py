"""End to end with S3 storage (SeaweedFS on loopback): the mesh endpoint redirects to a
presigned URL that plain HTTP, without the API key, can follow; a tampered URL is refused."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from e2e_support import (
    BUNNY,
    FINAL,
    RUN_TIMEOUT_S,
    Stack,
    assert_close_to_bunny,
    load_glb,
    submit,
    watch,
)

pytestmark = pytest.mark.e2e


def tampered(url: str) -> str:
    """The same presigned URL with one character of its signature changed."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = query["X-Amz-Signature"]
    query["X-Amz-Signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_bunny_on_s3_downloads_through_a_presigned_redirect(s3_stack: Stack) -> None:
    with s3_stack.client() as client:
        created = submit(client, BUNNY / "sparse" / "points.ply")
        final = watch(client, created["id"], lambda v: v["status"] in FINAL, RUN_TIMEOUT_S,
                      s3_stack)
        assert final["status"] == "succeeded", final

        redirect = client.get(f"/reconstructions/{created['id']}/mesh", params={"format": "glb"},
                              follow_redirects=False)
        assert redirect.status_code == 307, redirect.text
        url = redirect.headers["Location"]
        endpoint = s3_stack.env["RECON_S3_ENDPOINT_URL"]
        assert url.startswith(endpoint) and "X-Amz-Signature" in url

        download = httpx.get(url, timeout=30)  # plain HTTP: no API key, no S3 credentials
        assert download.status_code == 200
        assert_close_to_bunny(load_glb(download.content))
        assert httpx.get(tampered(url), timeout=30).status_code == 403
