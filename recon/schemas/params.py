"""Public, bounded reconstruction parameters (the `params` JSON part of an upload)."""

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from recon.schemas.enums import (
    LengthUnit,
    MeshFormat,
    MethodName,
    PresetName,
    SurfaceKind,
    UpAxis,
    UseNormals,
)

MAX_CALLBACK_URL_CHARS = 2048
"""Longest `callback_url` accepted (the common limit of browsers and proxies)."""

PARAMS_EXAMPLES: list[JsonValue] = [
    {"preset": "fast", "surface": "trimmed"},
    {"units": "mm", "up_axis": "z", "target_faces": 50_000, "formats": ["glb", "ply"]},
]
"""What a client typically sends: an open range scan, fast and trimmed; a millimetre, Z-up scan
for a web page, decimated (shown in the OpenAPI document)."""


class ReconstructionParams(BaseModel):
    """What a client may ask for. Translated into an engine config by one function in the worker."""

    model_config = ConfigDict(extra="forbid", frozen=True,
                              json_schema_extra={"examples": PARAMS_EXAMPLES})

    method: MethodName = Field(MethodName.NAP, description="Reconstruction method.")
    preset: PresetName = Field(PresetName.AUTO, description="Speed/quality preset.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Random seed; same seed, same mesh.")
    resolution: int | None = Field(
        None, ge=32, le=512, description="Marching-cubes grid resolution; default from preset."
    )
    max_iterations: int | None = Field(
        None, ge=10, le=100_000, description="Cap on training iterations; default from preset."
    )
    surface: SurfaceKind = Field(
        SurfaceKind.CLOSED,
        description="`closed`: a watertight mesh; `trimmed`: only the surface the input points "
        "support (open scans stay open, not watertight).",
    )
    trim_distance: float | None = Field(
        None, ge=0.5, le=20.0,
        description="With `trimmed`: keep surface within this many local point spacings of the "
        "input (default 1.5).",
    )
    target_faces: int | None = Field(
        None, ge=100, le=5_000_000,
        description="Decimate the mesh to about this many faces (a closed mesh stays closed; "
        "the metrics say how far the surface moved); default: marching cubes' own density.",
    )
    up_axis: UpAxis = Field(
        UpAxis.Y,
        description="The input's up axis. The GLB is written Y-up as glTF requires (a Z-up "
        "input maps (x, y, z) to (x, z, -y)); PLY, OBJ and STL keep the input's axes.",
    )
    units: LengthUnit | None = Field(
        None,
        description="The input's unit. The GLB is written in metres as glTF requires; PLY, OBJ "
        "and STL keep the input's units. Not given: metres, with a warning when the cloud is "
        "over 100 units across (probably millimetres).",
    )
    use_normals: UseNormals = Field(
        UseNormals.AUTO,
        description="The input's own normals, when it has them: `auto` uses them when they agree "
        "with the fitted field and ignores them otherwise (flipped or inconsistent), `yes` "
        "always, `no` never; `metrics.run.input_normals` says which.",
    )
    formats: list[MeshFormat] = Field(
        default_factory=lambda: [MeshFormat.GLB],
        description="Mesh formats to produce in addition to GLB, which is always produced.",
    )
    callback_url: str | None = Field(
        None, min_length=1, max_length=MAX_CALLBACK_URL_CHARS,
        description="Called (POST, the job view, signed) when the job succeeds, fails or is "
        "canceled. https only, to a public address, unless the operator allow-lists the host "
        "(RECON_CALLBACK_ALLOWED_HOSTS).",
    )

    @field_validator("formats")
    @classmethod
    def _always_glb(cls, formats: list[MeshFormat]) -> list[MeshFormat]:
        unique = list(dict.fromkeys([MeshFormat.GLB, *formats]))
        return unique

    @field_validator("callback_url")
    @classmethod
    def _absolute_http_url(cls, url: str | None) -> str | None:
        # Only the shape is checked here; the service's URL rule (scheme, allow-list, the
        # addresses the host resolves to) is applied at submission and at every send.
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("callback_url must be an absolute http(s) URL with a host")
        if any(ch.isspace() or not ch.isprintable() for ch in url):
            raise ValueError("callback_url must not contain spaces or control characters")
        return url
