"""Public, bounded reconstruction parameters (the `params` JSON part of an upload)."""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recon.schemas.enums import MeshFormat, MethodName, PresetName, SurfaceKind


class ReconstructionParams(BaseModel):
    """What a client may ask for. Translated into an engine config by one function in the worker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
    formats: list[MeshFormat] = Field(
        default_factory=lambda: [MeshFormat.GLB],
        description="Mesh formats to produce in addition to GLB, which is always produced.",
    )

    @field_validator("formats")
    @classmethod
    def _always_glb(cls, formats: list[MeshFormat]) -> list[MeshFormat]:
        unique = list(dict.fromkeys([MeshFormat.GLB, *formats]))
        return unique
