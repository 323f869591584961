"""The `recon` console script: one entry point for the engine, API, worker and embedded stack.

Imports are lazy so that `recon reconstruct` never loads FastAPI or Celery, `recon api` never
loads torch, and the client commands load neither.
"""

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "reconstruct": ("recon.engine.cli", "main"),
    "example": ("recon.engine.cli", "main"),
    "serve": ("recon.embedded.serve", "main"),
    "api": ("recon.api.cli", "main"),
    "worker": ("recon.worker.cli", "main"),
    "submit": ("recon.client.cli", "main"),
    "status": ("recon.client.cli", "main"),
    "download": ("recon.client.cli", "main"),
    "cancel": ("recon.client.cli", "main"),
    "jobs": ("recon.client.cli", "main"),
}

USAGE = """usage: recon COMMAND [options]

commands:
  reconstruct  fit a mesh to a point cloud file (engine only, no servers)
  example      write a synthetic example point cloud (sphere, torus)
  serve        embedded default: API + private Redis + one worker, local storage
  api          the HTTP API alone (production)
  worker       a Celery worker alone (production)

client of a running service (RECON_URL, RECON_API_KEY):
  submit       submit a point cloud; --wait follows it, -o downloads the mesh
  status       show a job
  download     download a job's mesh
  cancel       cancel a job
  jobs         list your jobs

Run `recon COMMAND --help` for a command's options.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    command = args[0]
    if command not in COMMANDS:
        sys.stderr.write(f"recon: unknown command {command!r}\n\n{USAGE}")
        return 2
    module_name, function_name = COMMANDS[command]
    run = getattr(importlib.import_module(module_name), function_name)
    return int(run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
