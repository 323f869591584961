"""The preview PNG of a finished mesh, made so that it can never fail its job.

The picture is a convenience for the job list: when it cannot be drawn (a mesh with nothing
to see, a bug in the rasteriser, memory) the job still succeeds with its meshes, and says
why it has no picture in its warnings.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded

if TYPE_CHECKING:
    import trimesh

    from recon.engine.config import FrameConfig

logger = logging.getLogger(__name__)

PNG_MEDIA_TYPE = "image/png"


def preview_png(mesh: trimesh.Trimesh, frame: FrameConfig, job_id: str
                ) -> tuple[bytes | None, list[str]]:
    """The PNG's bytes and no warning, or None and a warning for the user."""
    from recon.engine.preview import render_preview

    try:
        return render_preview(mesh, frame), []
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        logger.warning("job %s: no preview image", job_id, exc_info=True)
        return None, [f"no preview image was made ({type(exc).__name__}: {exc})"]
