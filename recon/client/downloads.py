"""Writing a download to its file all at once: a partial file is never left under its name.

The bytes go to a hidden temporary file beside the target, which is renamed over it only
once complete; on any failure it is removed and the target is as it was.
"""

import os
import uuid
from collections.abc import Iterable
from pathlib import Path


def write_atomically(chunks: Iterable[bytes], path: Path) -> int:
    """Write `chunks` to `path` through a temporary file; return the number of bytes."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    size = 0
    try:
        with open(partial, "xb") as out:
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size
