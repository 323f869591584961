"""`recon submit`, `status`, `download`, `cancel` and `jobs`: the service from a shell.

Results go to stdout (a job id, a status block, or the service's JSON with `--json`), so a
script can capture them; progress, retries and errors go to stderr. An error ends the command
with the API's message and code, `recon: <message> (<code>)`, and an exit status that says
what kind of failure it was (`EXIT_*`).
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from recon.client.client import DEFAULT_URL, KEY_ENV, URL_ENV, Client
from recon.client.display import (
    finished_text,
    job_line,
    progress_state,
    status_block,
)
from recon.client.errors import (
    ConnectionFailed,
    JobCanceledError,
    JobFailedError,
    ReconError,
    WaitTimedOut,
)
from recon.client.retry import RetryNotice, RetryPolicy
from recon.progress import open_progress
from recon.schemas import JobPublic, JobStatus, MeshFormat, MethodName, PresetName

EXIT_JOB_FAILED = 1
"""The job failed or was canceled."""
EXIT_USAGE = 2
"""Bad options, no API key, or a local file that cannot be read or written."""
EXIT_API_ERROR = 3
"""The service refused the request (its code says why)."""
EXIT_CONNECTION = 4
"""The service could not be reached, even after retries."""
EXIT_TIMEOUT = 5
"""`--timeout` passed before the job ended (the job goes on)."""
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line the commands cannot run (exit status `EXIT_USAGE`)."""


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--url", default=os.environ.get(URL_ENV) or DEFAULT_URL,
                        help=f"the service (default: ${URL_ENV}, else {DEFAULT_URL})")
    parser.add_argument("--key", default=os.environ.get(KEY_ENV),
                        help=f"the API key (default: ${KEY_ENV}, which keeps it out of the "
                        "process list)")
    parser.add_argument("--retries", type=int, default=RetryPolicy.retries, metavar="N",
                        help="retries of a request the service turns away for now (429, 503) "
                        f"or a broken connection (default {RetryPolicy.retries})")
    return parser


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=[f.value for f in MeshFormat], default=None,
                        help="mesh format (default: the output's suffix, else glb)")


def _submit_parser() -> argparse.ArgumentParser:
    parser = _common(argparse.ArgumentParser(
        prog="recon submit", description="Submit a point cloud; print the job id."))
    parser.add_argument("input", type=Path, help="point cloud (.ply, .xyz, .pts, .npy, .las, .laz)")
    parser.add_argument("--method", choices=[m.value for m in MethodName],
                        help="reconstruction method (default: the service's, nap)")
    parser.add_argument("--preset", choices=[p.value for p in PresetName],
                        help="speed against quality (default: the service's, auto)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="any other parameter (VALUE read as JSON when it parses, e.g. "
                        "max_iterations=500 or formats='[\"glb\",\"ply\"]'); repeatable")
    parser.add_argument("--ground-truth", type=Path, metavar="FILE",
                        help="reference mesh or points for metrics")
    parser.add_argument("--idempotency-key", metavar="KEY",
                        help="reuse to make a repeated submit return the same job (default: a "
                        "new key per command)")
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="with --wait: give up after this many seconds (the job goes on)")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="download the mesh here once it succeeded (implies --wait)")
    _format_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--json", action="store_true", help="print the job's JSON, not its id")
    return parser


def _id_parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = _common(argparse.ArgumentParser(prog=f"recon {name}", description=description))
    parser.add_argument("id", help="the job id")
    return parser


def _status_parser() -> argparse.ArgumentParser:
    parser = _id_parser("status", "Show a job: status, progress, error, mesh facts.")
    parser.add_argument("--json", action="store_true", help="print the service's JSON")
    return parser


def _download_parser() -> argparse.ArgumentParser:
    parser = _id_parser("download", "Download a succeeded job's mesh.")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                        help="the mesh file")
    _format_option(parser)
    return parser


def _cancel_parser() -> argparse.ArgumentParser:
    return _id_parser("cancel", "Cancel a job (at once when queued, within seconds when running).")


def _jobs_parser() -> argparse.ArgumentParser:
    parser = _common(argparse.ArgumentParser(prog="recon jobs",
                                             description="List your jobs, newest first."))
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="how many (default 20)")
    parser.add_argument("--json", action="store_true", help="print the service's JSON")
    return parser


def _param_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def request_params(args: argparse.Namespace) -> dict[str, Any] | None:
    """The `params` of a submission: `--param` entries, then `--method` and `--preset`."""
    params: dict[str, Any] = {}
    for entry in args.param:
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param expects KEY=VALUE, got {entry!r}")
        params[name.strip()] = _param_value(value)
    for name in ("method", "preset"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    return params or None


def mesh_format(args: argparse.Namespace) -> str:
    """`--format`, else the output file's suffix when it names a format, else glb."""
    if args.format:
        return str(args.format)
    suffix = args.output.suffix.lower().lstrip(".")
    return suffix if suffix in {f.value for f in MeshFormat} else MeshFormat.GLB.value


def _say(text: str) -> None:
    sys.stderr.write(f"recon: {text}\n")
    sys.stderr.flush()


def _print_job(job: JobPublic, as_json: bool) -> None:
    sys.stdout.write((job.model_dump_json(indent=2) if as_json else job.id) + "\n")
    sys.stdout.flush()


def _wait(client: Client, job: JobPublic, args: argparse.Namespace) -> JobPublic:
    display = None if args.quiet else open_progress()
    try:
        return client.wait(job.id, timeout=args.timeout, on_progress=None if display is None
                           else lambda seen: display.update(progress_state(seen)))
    finally:
        if display is not None:
            display.close()


def submit_command(client: Client, args: argparse.Namespace) -> int:
    if not args.input.is_file():
        raise UsageError(f"no such file: {args.input}")
    if args.output is not None and not args.output.parent.is_dir():  # known before the run
        raise UsageError(f"no such folder for the mesh: {args.output.parent}")
    job = client.submit(args.input, request_params(args), ground_truth=args.ground_truth,
                        idempotency_key=args.idempotency_key)
    if not (args.wait or args.output):
        _print_job(job, args.json)
        return 0
    if not args.json:
        _print_job(job, False)  # the id first, so a log has it even if the wait is cut short
    try:
        done = _wait(client, job, args)
    except KeyboardInterrupt:
        _say(f"interrupted; job {job.id} goes on (`recon cancel {job.id}` stops it)")
        return EXIT_INTERRUPTED
    _say(finished_text(done))
    if args.output is not None:
        client.download(done.id, args.output, mesh_format(args))
        _say(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    if args.json:
        _print_job(done, True)
    return 0


def status_command(client: Client, args: argparse.Namespace) -> int:
    job = client.get(args.id)
    sys.stdout.write((job.model_dump_json(indent=2) if args.json else status_block(job)) + "\n")
    return 0


def download_command(client: Client, args: argparse.Namespace) -> int:
    client.download(args.id, args.output, mesh_format(args))
    _say(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


def cancel_command(client: Client, args: argparse.Namespace) -> int:
    job = client.cancel(args.id)
    state = "canceled" if job.status is JobStatus.CANCELED else "cancel requested"
    sys.stdout.write(f"{job.id} {state}\n")
    return 0


def jobs_command(client: Client, args: argparse.Namespace) -> int:
    page = client.list(limit=args.limit)
    if args.json:
        sys.stdout.write(page.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.writelines(job_line(job) + "\n" for job in page.items)
    return 0


COMMANDS = {
    "submit": (_submit_parser, submit_command),
    "status": (_status_parser, status_command),
    "download": (_download_parser, download_command),
    "cancel": (_cancel_parser, cancel_command),
    "jobs": (_jobs_parser, jobs_command),
}


def _report_retry(notice: RetryNotice) -> None:
    error = notice.error
    code = f" ({error.code})" if isinstance(error, ReconError) else ""
    _say(f"{error}{code}; retrying in {notice.wait_s:.1f} s "
         f"(retry {notice.attempt} of {notice.retries})")


def _failure(error: ReconError) -> int:
    """Say what went wrong on stderr; the exit status for it."""
    if isinstance(error, JobFailedError):
        _say(f"job {error.job.id} failed: {error} ({error.code})")
        return EXIT_JOB_FAILED
    if isinstance(error, JobCanceledError):
        _say(f"job {error.job.id} was canceled")
        return EXIT_JOB_FAILED
    _say(f"{error} ({error.code})")
    if isinstance(error, WaitTimedOut):
        return EXIT_TIMEOUT
    return EXIT_CONNECTION if isinstance(error, ConnectionFailed) else EXIT_API_ERROR


def main(argv: list[str] | None = None) -> int:
    """Entry point; argv[0] is the command name (`submit`, `status`, ...)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        _say(f"expected one of: {', '.join(COMMANDS)}")
        return EXIT_USAGE
    make_parser, command = COMMANDS[argv[0]]
    try:
        args = make_parser().parse_args(argv[1:])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not args.key:
        _say(f"no API key: pass --key or set {KEY_ENV}")
        return EXIT_USAGE
    try:
        with Client(args.url, args.key, retries=args.retries, on_retry=_report_retry) as client:
            return command(client, args)
    except ReconError as error:
        return _failure(error)
    except (UsageError, OSError) as error:
        _say(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
