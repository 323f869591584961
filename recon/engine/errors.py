"""Typed engine errors. Each carries a stable `code` that becomes the failed job's error code.

All of them are final: retrying the same input gives the same failure.
"""


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "engine_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidPointCloud(EngineError):
    """The input is not a usable point cloud (bad header, counts, NaNs, too few points, ...)."""

    code = "invalid_point_cloud"


class InvalidGroundTruth(EngineError):
    """The ground-truth file cannot be read as a mesh or point set."""

    code = "invalid_ground_truth"


class EmptySurface(EngineError):
    """The fitted field has no zero level set inside the box."""

    code = "empty_surface"


class Diverged(EngineError):
    """Training produced non-finite losses or parameters."""

    code = "diverged"


class ReconstructionCanceled(EngineError):
    """The caller's cancellation check returned true."""

    code = "canceled"
