"""The Python client of the recon service: submit, follow, download and manage jobs.

Synchronous, on httpx. Answers are the service's own `recon.schemas` models (`JobPublic`,
`JobsPublic`); failures are the typed errors of `recon.client.errors`, carrying the API's code
and message. Requests the service turns away for now (429, 503) and broken connections are
retried (`recon.client.retry`); a submission always carries an Idempotency-Key, so its retry
can never create a second job.

    with Client("http://127.0.0.1:8000", key) as client:
        job = client.submit("scan.ply", {"preset": "fast"})
        done = client.wait(job.id, on_progress=lambda j: print(j.progress.fraction))
        client.download(done.id, "scan.glb")
"""

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote

from recon.client.downloads import write_atomically
from recon.client.following import DEFAULT_POLL_INTERVAL_S, JobFollower, ProgressCallback
from recon.client.retry import RetryPolicy
from recon.client.transport import RetryCallback, Transport
from recon.schemas import JobPublic, JobsPublic, MeshFormat, ReconstructionParams

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "RECON_URL"
KEY_ENV = "RECON_API_KEY"
JOBS_PATH = "v1/reconstructions"
"""Relative, so that a service behind a path prefix (`https://host/recon`) keeps it."""
DEFAULT_TIMEOUT_S = 60.0
"""Longest silence within one request (connecting, reading, sending a chunk), not its total."""
UPLOAD_MEDIA_TYPE = "application/octet-stream"
DEFAULT_UPLOAD_NAME = "points"
"""The name of an upload given as bytes: the service tells the format from the content."""

Cloud = str | os.PathLike[str] | bytes
Params = ReconstructionParams | Mapping[str, Any]


def params_json(params: Params) -> str:
    """The `params` form field: the fields a model was given, or a mapping as it is.

    A mapping is not checked here, so the service's answer (a 422 naming the field) is the one
    truth even when it knows fields this client does not.
    """
    if isinstance(params, ReconstructionParams):
        return params.model_dump_json(exclude_unset=True)
    return json.dumps(dict(params))


def upload_part(source: Cloud, name: str | None, opened: ExitStack) -> tuple[str, Any, str]:
    """One multipart file: a path is opened (and closed with `opened`), bytes are sent as is."""
    if isinstance(source, bytes):
        return name or DEFAULT_UPLOAD_NAME, source, UPLOAD_MEDIA_TYPE
    path = Path(source)
    handle: BinaryIO = opened.enter_context(open(path, "rb"))
    return name or path.name, handle, UPLOAD_MEDIA_TYPE


class Client:
    """A connection to one recon service with one API key.

    `url` and `key` default to the `RECON_URL` and `RECON_API_KEY` environment variables.
    `timeout` bounds each wait for the service in seconds; `retries` is the number of retries
    (or a whole `RetryPolicy`); `on_retry` is told about each retry before its wait.
    """

    def __init__(self, url: str | None = None, key: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT_S, retries: int | RetryPolicy = RetryPolicy(),
                 on_retry: RetryCallback | None = None) -> None:
        policy = retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries=retries)
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.transport = Transport(self.url, key if key is not None else os.environ.get(KEY_ENV),
                                   timeout_s=timeout, policy=policy, on_retry=on_retry)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def submit(self, cloud: Cloud, params: Params | None = None, *,
               ground_truth: Cloud | None = None, idempotency_key: str | None = None,
               filename: str | None = None) -> JobPublic:
        """Upload a point cloud (a path or its bytes) and return the queued job.

        A retry re-sends the same request with the same Idempotency-Key (a new one per call
        unless given), which the service answers with the job it already created.
        """
        key = idempotency_key or uuid.uuid4().hex

        def files(opened: ExitStack) -> dict[str, Any]:
            parts = {"file": upload_part(cloud, filename, opened)}
            if ground_truth is not None:
                parts["ground_truth"] = upload_part(ground_truth, None, opened)
            return parts

        data = {} if params is None else {"params": params_json(params)}
        response = self.transport.request("POST", JOBS_PATH, files=files, data=data,
                                          headers={"Idempotency-Key": key})
        return JobPublic.model_validate_json(response.content)

    def get(self, job_id: str) -> JobPublic:
        """The job as it is now: status, progress, metrics, warnings, error, links."""
        return JobPublic.model_validate_json(
            self.transport.request("GET", job_path(job_id)).content)

    def wait(self, job_id: str, on_progress: ProgressCallback | None = None, *,
             timeout: float | None = None,
             poll_interval: float = DEFAULT_POLL_INTERVAL_S) -> JobPublic:
        """Follow the job until it ends; return it when it succeeded.

        `on_progress` gets every state seen (the final one included). Raises `JobFailedError`
        (with the job's error code and message), `JobCanceledError`, or `WaitTimedOut` after
        `timeout` seconds (the job goes on).
        """
        follower = JobFollower(self.transport, job_path(job_id), on_progress=on_progress,
                               timeout_s=timeout, poll_interval_s=poll_interval)
        return follower.run()

    def download(self, job_id: str, path: str | os.PathLike[str],
                 format: MeshFormat | str = MeshFormat.GLB) -> Path:
        """Write the job's mesh to `path` (complete or not at all); return the path.

        With S3 storage the service redirects to a presigned URL, which is fetched without the
        API key. A download that breaks starts again, from a fresh URL.
        """
        target = Path(path)
        query = {"format": MeshFormat(format).value}

        def fetch() -> None:
            response = self.transport.send("GET", f"{job_path(job_id)}/mesh", params=query,
                                           stream=True)
            if response.is_redirect:
                response.close()
                location = response.headers["Location"]
                response = self.transport.send("GET", str(response.url.join(location)),
                                               stream=True)
            try:
                write_atomically(response.iter_bytes(), target)
            finally:
                response.close()

        self.transport.retrying(fetch)
        return target

    def cancel(self, job_id: str) -> JobPublic:
        """Ask the job to stop: `canceled` at once when queued, soon after when running."""
        return JobPublic.model_validate_json(
            self.transport.request("POST", f"{job_path(job_id)}/cancel").content)

    def list(self, limit: int | None = None, cursor: str | None = None) -> JobsPublic:
        """One page of this key's jobs, newest first; `next_cursor` asks for the next."""
        query = {name: value for name, value in (("limit", limit), ("cursor", cursor))
                 if value is not None}
        return JobsPublic.model_validate_json(
            self.transport.request("GET", JOBS_PATH, params=query).content)

    def iter_jobs(self, page_size: int | None = None) -> Iterator[JobPublic]:
        """Every job of this key, newest first, page after page."""
        cursor = None
        while True:
            page = self.list(limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def delete(self, job_id: str) -> None:
        """Delete the job and its files (a running job is stopped first, by the service)."""
        self.transport.request("DELETE", job_path(job_id))


def job_path(job_id: str) -> str:
    """The job's path under the service; the id is quoted, so it can only name a job."""
    return f"{JOBS_PATH}/{quote(job_id, safe='')}"
