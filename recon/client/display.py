"""Jobs as text for people: the progress display's state, a status block, a listing line.

Kept apart from the commands so that what a person reads is decided in one place; programs
use `--json`, which prints the service's own JSON.
"""

from recon.progress import ProgressState, format_seconds
from recon.schemas import JobPublic, JobStatus


def progress_state(job: JobPublic) -> ProgressState:
    """What the progress display shows for `job`: its stage while running, else its status."""
    progress = job.progress
    stage = progress.stage if job.status is JobStatus.RUNNING else job.status.value
    return ProgressState(stage, progress.fraction, progress.step, progress.total, progress.loss,
                         progress.eta_seconds)


def run_seconds(job: JobPublic) -> float | None:
    """How long the job ran (start to end), when it has both."""
    if job.started_at is None or job.finished_at is None:
        return None
    return (job.finished_at - job.started_at).total_seconds()


def progress_text(job: JobPublic) -> str:
    """`train 40% (step 120/300, eta 12 s)` while running; the status alone otherwise."""
    if job.status is not JobStatus.RUNNING:
        return job.status.value
    progress = job.progress
    facts = [f"step {progress.step}/{progress.total}"] if progress.total else []
    if progress.eta_seconds is not None:
        facts.append(f"eta {format_seconds(progress.eta_seconds)}")
    inside = f" ({', '.join(facts)})" if facts else ""
    return f"running: {progress.stage} {100 * progress.fraction:.0f}%{inside}"


def status_block(job: JobPublic) -> str:
    """Several `name  value` lines describing one job (`recon status`)."""
    rows = [("id", job.id), ("status", progress_text(job)),
            ("method", f"{job.params.method.value}, preset {job.params.preset.value}"),
            ("created", job.created_at.isoformat(timespec="seconds"))]
    ran = run_seconds(job)
    if ran is not None:
        rows.append(("ran", format_seconds(ran)))
    if job.error is not None:
        rows.append(("error", f"{job.error.message} ({job.error.code})"))
    if job.formats:
        rows.append(("formats", ", ".join(job.formats)))
    rows.extend(("warning", warning) for warning in job.warnings)
    mesh = (job.metrics or {}).get("mesh")
    if isinstance(mesh, dict) and "faces" in mesh:
        closed = "watertight" if mesh.get("watertight") else "open"
        rows.append(("mesh", f"{mesh['faces']} faces, {closed}"))
    return "\n".join(f"{name:<9}{value}" for name, value in rows)


def job_line(job: JobPublic) -> str:
    """One line per job for `recon jobs`: id, status, progress, creation time."""
    created = job.created_at.isoformat(timespec="seconds")
    return f"{job.id}  {job.status.value:<9}  {100 * job.progress.fraction:3.0f}%  {created}"


def finished_text(job: JobPublic) -> str:
    """`job ID succeeded in 23 s` for the end of `recon submit --wait`."""
    ran = run_seconds(job)
    took = f" in {format_seconds(ran)}" if ran is not None else ""
    return f"job {job.id} {job.status.value}{took}"
