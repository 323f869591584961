"""Checking an upload before anything is stored or queued: params, file type, full parse.

The parse uses the engine's torch-free readers (`recon.engine.formats`), so the API rejects
exactly what the worker could not read, with the engine's own message, and never imports torch.
"""

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from recon.api.errors import BadRequest, Unprocessable, UnsupportedMediaType
from recon.engine.formats import (
    SNIFF_BYTES,
    SUFFIX_ALIASES,
    SUPPORTED_GROUND_TRUTH_FORMATS,
    SUPPORTED_POINT_FORMATS,
    InvalidGroundTruth,
    InvalidPointCloud,
    PointCloud,
    foreign_content,
    load_ground_truth,
    load_point_cloud,
    magic_format,
    sniff_format,
)
from recon.schemas import ReconstructionParams


def parse_params(raw: str | None) -> ReconstructionParams:
    """The `params` form field as `ReconstructionParams` (defaults when absent).

    Raises `BadRequest` for malformed JSON (nesting too deep for the parser included: the
    field may hold 64 KiB of brackets) and `Unprocessable` (with pydantic's error list as
    detail) for values out of range or unknown names.
    """
    if raw is None or not raw.strip():
        return ReconstructionParams.model_validate({})
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"params is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="malformed_params",
        ) from exc
    except RecursionError as exc:
        raise BadRequest(
            "params is nested too deeply to be read; it is a flat JSON object",
            code="malformed_params",
        ) from exc
    try:
        return ReconstructionParams.model_validate(data)
    except ValidationError as exc:
        # An echoed input of 1e400 is inf: kept as the text "Infinity", or the answer could
        # not be written as JSON at all.
        detail: list[dict[str, Any]] = json.loads(exc.json(include_url=False), parse_constant=str)
        raise Unprocessable(
            "params has invalid values", code="invalid_params", detail=detail
        ) from exc


def _suffix(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    suffix = filename.rsplit(".", 1)[1].lower()
    return SUFFIX_ALIASES.get(suffix, suffix)


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(SNIFF_BYTES)


def _refuse_foreign(head: bytes, supported: tuple[str, ...]) -> None:
    what = foreign_content(head)
    if what is not None:
        raise UnsupportedMediaType(
            f"the file is {what}, not a supported type ({', '.join(supported)})",
            code="unsupported_file_type",
            detail={"supported": list(supported)},
        )


def detect_format(path: Path, filename: str | None, supported: tuple[str, ...]) -> str:
    """The file's format: its magic bytes first, then its suffix, then a text sniff.

    Raises `UnsupportedMediaType` when the content is a known non-point-cloud type (an image,
    an archive) or when neither the name nor the content names a format in `supported`.
    """
    head = _head(path)
    _refuse_foreign(head, supported)
    magic = magic_format(head)
    if magic in supported:
        return magic
    suffix = _suffix(filename)
    if suffix in supported:
        return suffix
    try:
        sniffed = sniff_format(head)
    except InvalidPointCloud:
        sniffed = ""
    if sniffed in supported:
        return sniffed
    named = f"'.{suffix}' files" if suffix else "this content"
    raise UnsupportedMediaType(
        f"{named} cannot be read; supported types: {', '.join(supported)}",
        code="unsupported_file_type",
        detail={"supported": list(supported)},
    )


def validate_point_cloud(
    path: Path, filename: str | None, *, max_points: int, seed: int
) -> tuple[str, PointCloud]:
    """Detect the format and fully parse the cloud; return ``(format, cloud)``.

    A cloud over `max_points` is subsampled with `seed`, the job's own, so the warning saying
    so is the one the worker gives when it loads the same file.

    Raises `Unprocessable` with the engine's message for an unreadable or invalid cloud
    (empty, truncated, NaN coordinates, too few points) and `UnsupportedMediaType` for
    files of another type.
    """
    if path.stat().st_size == 0:
        raise Unprocessable("the uploaded file is empty", code=InvalidPointCloud.code)
    fmt = detect_format(path, filename, SUPPORTED_POINT_FORMATS)
    try:
        return fmt, load_point_cloud(path, format=fmt, max_points=max_points, seed=seed)
    except InvalidPointCloud as exc:
        raise Unprocessable(exc.message, code=exc.code) from exc


def validate_ground_truth(path: Path, filename: str | None) -> str:
    """Detect the ground truth's format and parse it; return the format.

    Raises `Unprocessable` (code ``invalid_ground_truth``) or `UnsupportedMediaType`.
    """
    if path.stat().st_size == 0:
        raise Unprocessable("the ground-truth file is empty", code=InvalidGroundTruth.code)
    fmt = detect_format(path, filename, SUPPORTED_GROUND_TRUTH_FORMATS)
    try:
        load_ground_truth(path, format=fmt)
    except InvalidGroundTruth as exc:
        raise Unprocessable(exc.message, code=exc.code) from exc
    return fmt
