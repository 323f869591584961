"""`reconstruct`: a point cloud in, a mesh (watertight, or trimmed to the data) and its metrics out.

Stages: prepare (deduplicate, drop stray points, normalise, estimate normals, sample queries),
train, mesh (trim for `surface: trimmed`, decimate for `target_faces`, then each vertex's support
and, when the input has colours, its colour), metrics. Every random draw comes from generators
seeded by `config.seed`; the global torch/numpy RNG state is not touched, and the torch thread
count is restored on exit.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import trimesh
from trimesh.visual import ColorVisuals

from recon import __version__
from recon.engine import metrics as engine_metrics
from recon.engine.colours import vertex_colours
from recon.engine.config import ReconstructionConfig
from recon.engine.decimation import DecimationReport, decimate
from recon.engine.formats.ground_truth import GroundTruth
from recon.engine.formats.pointcloud import PointCloud
from recon.engine.meshing import extract_mesh
from recon.engine.methods import Method, TrainingData, get_method
from recon.engine.model import SdfNetwork
from recon.engine.normalization import UnitCubeTransform, fit_unit_cube
from recon.engine.normals import OrientedNormals, local_spacing, orient_normals
from recon.engine.outliers import find_outliers
from recon.engine.sampling import deduplicate, sample_queries
from recon.engine.support import SUPPORT_ATTRIBUTE, support_summary, vertex_support
from recon.engine.time_plan import TimePlan, capped_training, seconds_per_evaluation
from recon.engine.training import StepReport, TrainingOutcome, scaled_to_cloud, train
from recon.engine.trimming import trim_unsupported


@dataclass(frozen=True)
class Progress:
    """A progress event: stage ("prepare"|"train"|"mesh"|"metrics"), step/total, loss, seconds,
    and the share of the stage done when it is not step/total (a time-capped training run)."""

    stage: str
    step: int
    total: int
    loss: float | None
    elapsed_s: float
    fraction: float | None = None


@dataclass
class ReconstructionResult:
    """The mesh in input coordinates, JSON-serialisable metrics, and warnings for the user."""

    mesh: trimesh.Trimesh
    metrics: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Prepared:
    data: TrainingData
    transform: UnitCubeTransform
    warnings: list[str]
    points: np.ndarray
    """The kept input points, input frame (where the colours sit)."""
    colours: np.ndarray | None
    """Their colours, when the input has colours."""
    outliers_removed: int = 0


@contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def prepare(cloud: PointCloud, config: ReconstructionConfig, needs_queries: bool) -> _Prepared:
    """Deduplicate, drop stray points, normalise the inliers' box and (for query-based methods)
    sample the query pool."""
    warnings = list(cloud.warnings)
    kept = deduplicate(cloud.points)
    removed = len(cloud.points) - len(kept)
    if removed:
        warnings.append(f"removed {removed} duplicate points")
    outliers = 0
    if config.preparation.remove_outliers:
        stray = find_outliers(cloud.points[kept], config.preparation.outliers).outliers
        outliers = int(stray.sum())
        if outliers:
            kept = kept[~stray]
            warnings.append(f"removed {outliers} stray points ({outliers / len(stray):.2%} of the "
                            "cloud) lying apart from the surface before fitting")
    points = cloud.points[kept]
    normals = None if cloud.normals is None else cloud.normals[kept]
    colours = None if cloud.colours is None else cloud.colours[kept]
    transform = fit_unit_cube(points, config.preparation.unit_cube_side)
    unit = transform.apply(points)
    rng = np.random.default_rng(config.seed)
    pool = sample_queries(unit, config.preparation, rng) if needs_queries else None
    estimated = None
    if needs_queries and _watches_sign(config, len(unit)):
        estimated = orient_normals(unit, config.preparation.normals)
    return _Prepared(TrainingData(unit, normals, pool, estimated), transform, warnings, points,
                     colours, outliers)


def _watches_sign(config: ReconstructionConfig, points: int) -> bool:
    """Whether the method's sign prior will watch this cloud (it needs estimated normals)."""
    sign = getattr(config.method_config, "sign", None)
    return sign is not None and sign.enabled and points >= sign.min_points


def reconstruct(
    cloud: PointCloud,
    config: ReconstructionConfig,
    *,
    ground_truth: GroundTruth | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> ReconstructionResult:
    """Fit `config.method` to `cloud` and extract the mesh (see the module docstring).

    Raises
    ------
    ReconstructionCanceled, Diverged, EmptySurface
        Typed, final engine errors.
    """
    with _torch_threads(config.training.num_threads):
        return _Run(config, on_progress).run(cloud, ground_truth, should_cancel)


def _spacing(estimated: OrientedNormals | None, points: np.ndarray,
             config: ReconstructionConfig) -> np.ndarray:
    """Local point spacing: the one the normals were estimated with, or computed now."""
    if estimated is not None:
        return estimated.spacing
    return local_spacing(points, config.preparation.normals)


class _Run:
    """One reconstruction: stage timings and progress reporting around the four stages."""

    def __init__(
        self, config: ReconstructionConfig, on_progress: Callable[[Progress], None] | None
    ) -> None:
        self.config = config
        self.on_progress = on_progress
        self.seconds: dict[str, float] = {}
        self.start = time.perf_counter()
        self.device = torch.device(config.device)
        self.resolution = config.meshing.resolution
        """The mesh resolution used (lowered by the time plan when time ran short)."""

    def _emit(self, stage: str, step: int, total: int, loss: float | None = None,
              fraction: float | None = None) -> None:
        if self.on_progress is not None:
            elapsed = time.perf_counter() - self.start
            self.on_progress(Progress(stage, step, total, loss, elapsed, fraction))

    def run(self, cloud, ground_truth, should_cancel) -> ReconstructionResult:
        method_class = get_method(self.config.method)
        self._emit("prepare", 0, 1)
        t0 = time.perf_counter()
        prepared = prepare(cloud, self.config, method_class.needs_queries)
        network, method = self._build(method_class, prepared.data)
        self.seconds["prepare"] = time.perf_counter() - t0

        def on_step(report: StepReport) -> None:
            self._emit("train", report.step, report.total, report.loss, report.fraction)

        t0 = time.perf_counter()
        training = scaled_to_cloud(self.config.training, len(prepared.data.points))
        plan = self._time_plan(network)
        if plan is not None:
            training = capped_training(training, plan.training_cap(self.config.meshing.resolution))
        outcome = train(network, method, training, on_step=on_step, should_cancel=should_cancel)
        self.seconds["train"] = time.perf_counter() - t0
        self._emit("mesh", 0, 1)
        t0 = time.perf_counter()
        self.resolution = self.config.meshing.resolution
        if plan is not None:
            self.resolution = plan.fitting_resolution(self.resolution)
            if self.resolution < self.config.meshing.resolution:
                prepared.warnings.append(
                    f"meshed at resolution {self.resolution} instead of "
                    f"{self.config.meshing.resolution} to finish within the time limit")
        extracted = extract_mesh(network, self.config.meshing, device=self.device,
                                 cube_side=self.config.preparation.unit_cube_side,
                                 resolution=self.resolution, should_cancel=should_cancel)
        mesh, surface, decimation = self._finish_mesh(extracted.mesh, extracted.watertight,
                                                      prepared)
        self.seconds["mesh"] = time.perf_counter() - t0
        self._emit("metrics", 0, 1)
        t0 = time.perf_counter()
        metrics = self._metrics(mesh, cloud, ground_truth, outcome, prepared,
                                extracted.specks_removed)
        metrics["surface"] = surface
        metrics["support"] = support_summary(
            mesh, np.asarray(mesh.vertex_attributes[SUPPORT_ATTRIBUTE]))
        metrics["decimation"] = None if decimation is None else decimation.as_metrics()
        warnings = prepared.warnings
        metrics["frame"] = self._frame(cloud, warnings)
        metrics["colours"] = {"present": cloud.colours is not None,
                              "used": prepared.colours is not None,
                              "neighbours": self.config.colours.neighbours}
        metrics["run"].update(method.facts())
        self._emit("metrics", 1, 1)
        if surface["kind"] == "closed" and not surface["watertight"]:
            warnings.append("the extracted mesh is not watertight")
        return ReconstructionResult(mesh=mesh, metrics=metrics, warnings=warnings)

    def _time_plan(self, network: SdfNetwork) -> TimePlan | None:
        """The whole-run time plan when the config sets a limit (measured on this network)."""
        if self.config.time_limit_s is None:
            return None
        return TimePlan(self.config.time_limit_s, self.start,
                        seconds_per_evaluation(network, self.device))

    def _finish_mesh(self, mesh: trimesh.Trimesh, watertight: bool, prepared: _Prepared
                     ) -> tuple[trimesh.Trimesh, dict[str, Any], DecimationReport | None]:
        """Trim and decimate the extracted mesh (normalised frame), give each vertex its support,
        map it back to the input frame and colour it from the input's colours."""
        data = prepared.data
        spacing = _spacing(data.estimated, data.points, self.config)
        surface = self._finish_surface(mesh, watertight, data.points, spacing)
        decimation = None
        if self.config.meshing.target_faces is not None:
            mesh, decimation = decimate(mesh, self.config.meshing.target_faces, self.config.seed)
            surface["watertight"] = bool(mesh.is_watertight)
        support = vertex_support(mesh.vertices, data.points, spacing)
        mesh.vertices = prepared.transform.invert(mesh.vertices)
        mesh.vertex_attributes[SUPPORT_ATTRIBUTE] = support
        if prepared.colours is not None:
            colours = vertex_colours(mesh.vertices, prepared.points, prepared.colours,
                                     self.config.colours)
            mesh.visual = ColorVisuals(mesh, vertex_colors=np.round(colours * 255).astype(np.uint8))
        return mesh, surface, decimation

    def _frame(self, cloud: PointCloud, warnings: list[str]) -> dict[str, Any]:
        """The input's frame as the metrics report it; a warning when a unit-less cloud looks
        like millimetres."""
        frame = self.config.frame
        diagonal = float(np.linalg.norm(np.ptp(cloud.points, axis=0)))
        if frame.units is None and diagonal > frame.millimetre_hint_diagonal:
            warnings.append(
                f"the cloud is {diagonal:.4g} units across; read as metres that is "
                f"{diagonal:.4g} m, so it is probably in millimetres: set units to 'mm' (or the "
                "unit it is in) so the GLB opens at its real size")
        return {"up_axis": frame.up_axis, "units": frame.units or "m",
                "units_given": frame.units is not None,
                "glb": "metres, Y-up (glTF); PLY, OBJ and STL in the input's frame and units"}

    def _finish_surface(self, mesh: trimesh.Trimesh, watertight: bool, points: np.ndarray,
                        spacing: np.ndarray) -> dict[str, Any]:
        """Trim the mesh (normalised frame) when `surface` is "trimmed"; say what it is."""
        meshing = self.config.meshing
        if meshing.surface != "trimmed":
            return {"kind": "closed", "watertight": watertight}
        report = trim_unsupported(mesh, points, spacing, meshing.trim_distance,
                                  meshing.min_piece_area_share)
        return {
            "kind": "trimmed",
            "watertight": bool(mesh.is_watertight),
            "trim_distance": meshing.trim_distance,
            "removed_area_share": report.removed_area_share,
        }

    def _build(self, method_class: type[Method], data: TrainingData) -> tuple[SdfNetwork, Method]:
        init = torch.Generator().manual_seed(self.config.seed)
        network = SdfNetwork(self.config.network, generator=init).to(self.device)
        draws = torch.Generator(device=self.device).manual_seed(self.config.seed)
        return network, method_class(self.config, data, self.device, draws)

    def _metrics(self, mesh, cloud, ground_truth, outcome: TrainingOutcome, prepared,
                 specks_removed: int) -> dict:
        result: dict[str, Any] = {
            "fit_to_input": engine_metrics.fit_to_input_metrics(mesh, cloud.points),
            "mesh": engine_metrics.mesh_facts(mesh),
        }
        if ground_truth is not None:
            result["ground_truth"] = engine_metrics.ground_truth_metrics(
                mesh, ground_truth, n_samples=self.config.metrics_samples, seed=self.config.seed
            )
        self.seconds["metrics"] = time.perf_counter() - self.start - sum(self.seconds.values())
        result["run"] = self._run_facts(outcome, prepared, specks_removed)
        return result

    def _run_facts(self, outcome: TrainingOutcome, prepared: _Prepared,
                   specks_removed: int) -> dict:
        config = self.config
        pool = prepared.data.pool
        return {
            "engine_version": __version__,
            "method": config.method,
            "preset": config.preset,
            "device": config.device,
            "precision": config.training.matmul_precision,
            "threads": torch.get_num_threads(),
            "seed": config.seed,
            "iterations": outcome.iterations,
            "iterations_per_second": outcome.iterations_per_second,
            "seconds_total": time.perf_counter() - self.start,
            "seconds_by_stage": dict(self.seconds),
            "final_losses": outcome.final_losses,
            "stop_reason": outcome.stop_reason,
            "time_budget_s": outcome.time_budget_s,
            "resolution": self.resolution,
            "points": int(len(prepared.data.points)),
            "outliers_removed": prepared.outliers_removed,
            "specks_removed": specks_removed,
            "queries": int(len(pool.queries)) if pool is not None else 0,
        }
