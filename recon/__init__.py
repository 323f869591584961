"""recon: point cloud in, watertight mesh out.

One package per part of the architecture (docs/ARCHITECTURE.md), dependencies pointing one way:

- `recon.schemas`: the wire contract (pydantic only), shared by everything below;
- `recon.infra`: settings, job record and store, object storage, publishing a task by name;
- `recon.api`: the HTTP app (FastAPI); `recon.worker`: the Celery app and task;
- `recon.engine`: the reconstruction library (torch), whose torch-free `recon.engine.formats`
  is the only part the API uses;
- `recon.embedded`: `recon serve`, the whole stack on one machine; `recon.cli`: the `recon` command.
"""

__version__ = "0.1.0"
