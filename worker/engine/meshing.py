"""Mesh extraction: evaluate the SDF on a grid over the padded box and run marching cubes at the
iso level. At high resolutions the grid is filled coarse-to-fine: a coarse grid is evaluated first
and only coarse cells near the zero level set are evaluated at the fine spacing; every other fine
node takes its coarse cell's mean value, whose sign is the cell's sign, so marching cubes sees the
same sign pattern (and hence the same surface) as a dense evaluation.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from skimage.measure import marching_cubes

from worker.engine.config import MeshingConfig
from worker.engine.errors import EmptySurface, ReconstructionCanceled
from worker.engine.model import SdfNetwork


@dataclass(frozen=True)
class Grid:
    """Axis-aligned grid of `resolution`^3 nodes from `origin` with node spacing `spacing`."""

    origin: float
    spacing: float
    resolution: int

    def coordinates(self, index: np.ndarray) -> np.ndarray:
        """(n, 3) integer node indices -> (n, 3) float32 positions."""
        return (self.origin + index * self.spacing).astype(np.float32)


@dataclass(frozen=True)
class ExtractedMesh:
    """A mesh in the normalised frame plus how it was made."""

    mesh: trimesh.Trimesh
    """Outward-oriented triangle mesh (normalised frame)."""
    watertight: bool
    """Every edge shared by exactly two faces."""
    evaluated_points: int
    """Network evaluations spent on the grid."""


def padded_grid(config: MeshingConfig, cube_side: float, resolution: int) -> Grid:
    """The grid over [-h, h]^3 with h = cube_side * (1/2 + padding)."""
    half = cube_side * (0.5 + config.padding)
    return Grid(origin=-half, spacing=2 * half / (resolution - 1), resolution=resolution)


CancelCheck = Callable[[], bool] | None
"""Called between chunks so a cancel lands within one chunk's evaluation time."""


@torch.inference_mode()
def evaluate(
    network: SdfNetwork,
    positions: np.ndarray,
    chunk: int,
    device: torch.device,
    should_cancel: CancelCheck = None,
) -> np.ndarray:
    """f at (n, 3) positions in chunks; returns (n,) float32."""
    values = np.empty(len(positions), dtype=np.float32)
    for start in range(0, len(positions), chunk):
        if should_cancel is not None and should_cancel():
            raise ReconstructionCanceled("reconstruction canceled")
        batch = torch.as_tensor(positions[start : start + chunk], device=device)
        values[start : start + len(batch)] = network(batch).float().cpu().numpy()
    return values


def dense_volume(
    network: SdfNetwork,
    grid: Grid,
    chunk: int,
    device: torch.device,
    should_cancel: CancelCheck = None,
) -> tuple[np.ndarray, int]:
    """f on every node of `grid`, slab by slab; returns (r, r, r) float32 and the count."""
    r = grid.resolution
    volume = np.empty((r, r, r), dtype=np.float32)
    yz = np.stack(np.meshgrid(np.arange(r), np.arange(r), indexing="ij"), -1).reshape(-1, 2)
    slabs = max(1, chunk // (r * r))
    for x0 in range(0, r, slabs):
        xs = np.arange(x0, min(x0 + slabs, r))
        index = np.concatenate([np.repeat(xs, len(yz))[:, None], np.tile(yz, (len(xs), 1))], 1)
        values = evaluate(network, grid.coordinates(index), chunk, device, should_cancel)
        volume[xs[0] : xs[-1] + 1] = values.reshape(len(xs), r, r)
    return volume, r**3


def coarse_to_fine_volume(
    network: SdfNetwork,
    grid: Grid,
    config: MeshingConfig,
    device: torch.device,
    should_cancel: CancelCheck = None,
) -> tuple[np.ndarray, int]:
    """Fine-grid values, evaluating the network only near the surface (see module docstring)."""
    factor, r = config.coarse_factor, grid.resolution
    cells = -(-(r - 1) // factor)
    # Coarse nodes sit on fine nodes; the last one is clamped to the grid's end.
    coarse_index = np.minimum(np.arange(cells + 1) * factor, r - 1)
    cx, cy, cz = np.meshgrid(coarse_index, coarse_index, coarse_index, indexing="ij")
    index = np.stack([cx, cy, cz], -1).reshape(-1, 3)
    coarse = evaluate(network, grid.coordinates(index), config.chunk_points, device, should_cancel)
    coarse = coarse.reshape(cells + 1, cells + 1, cells + 1)
    corners = [
        coarse[i : i + cells, j : j + cells, k : k + cells]
        for i in (0, 1) for j in (0, 1) for k in (0, 1)
    ]
    low, high = np.minimum.reduce(corners), np.maximum.reduce(corners)
    band = config.band_cells * factor * grid.spacing * np.sqrt(3.0)
    level = config.iso_level
    near = (low - level <= band) & (high - level >= -band)
    node_cell = np.minimum(np.arange(r) // factor, cells - 1)
    volume = (sum(corners) / len(corners))[np.ix_(node_cell, node_cell, node_cell)]
    fine_nodes = _nodes_of_cells(near, node_cell, factor, r)
    positions = grid.coordinates(fine_nodes)
    volume[tuple(fine_nodes.T)] = evaluate(
        network, positions, config.chunk_points, device, should_cancel
    )
    return volume, len(index) + len(fine_nodes)


def _nodes_of_cells(near: np.ndarray, node_cell: np.ndarray, factor: int, r: int) -> np.ndarray:
    """(n, 3) indices of the fine nodes lying in (or on the boundary of) a `near` coarse cell."""
    nodes = np.arange(r)
    # A node on a coarse boundary also belongs to the previous cell.
    previous = np.where((nodes % factor == 0) & (nodes > 0), nodes // factor - 1, node_cell)
    mask = np.zeros((r, r, r), dtype=bool)
    for ax in (node_cell, previous):
        for ay in (node_cell, previous):
            for az in (node_cell, previous):
                mask |= near[np.ix_(ax, ay, az)]
    return np.argwhere(mask)


def extract_mesh(
    network: SdfNetwork,
    config: MeshingConfig,
    *,
    device: torch.device,
    cube_side: float = 1.0,
    resolution: int | None = None,
    coarse_to_fine: bool | None = None,
    should_cancel: CancelCheck = None,
) -> ExtractedMesh:
    """Marching cubes of f at `config.iso_level` over the padded box (normalised frame).

    Parameters
    ----------
    network : SdfNetwork
    config : MeshingConfig
    device : torch.device
    cube_side : float
        Side of the normalised cube the network was trained in.
    resolution : int, optional
        Overrides `config.resolution`.
    coarse_to_fine : bool, optional
        Force (True) or forbid (False) coarse-to-fine; default by `coarse_to_fine_min_resolution`.
    should_cancel : callable, optional
        Checked between evaluation chunks; raises ReconstructionCanceled when it returns true.

    Raises
    ------
    EmptySurface
        When the field does not cross the iso level inside the box.
    """
    resolution = resolution or config.resolution
    grid = padded_grid(config, cube_side, resolution)
    if coarse_to_fine is None:
        coarse_to_fine = resolution >= config.coarse_to_fine_min_resolution
    was_training = network.training
    network.eval()
    try:
        if coarse_to_fine:
            volume, count = coarse_to_fine_volume(network, grid, config, device, should_cancel)
        else:
            volume, count = dense_volume(
                network, grid, config.chunk_points, device, should_cancel
            )
    finally:
        network.train(was_training)
    return ExtractedMesh(*_march(volume, grid, config.iso_level), evaluated_points=count)


def _march(volume: np.ndarray, grid: Grid, level: float) -> tuple[trimesh.Trimesh, bool]:
    if not np.isfinite(volume).all():
        raise EmptySurface("the fitted field has non-finite values on the grid")
    if volume.min() >= level or volume.max() <= level:
        raise EmptySurface("the fitted field has no zero level set inside the box")
    # f < 0 inside: "ascent" makes marching cubes wind faces outward.
    verts, faces, _, _ = marching_cubes(
        volume, level=level, spacing=(grid.spacing,) * 3, gradient_direction="ascent"
    )
    mesh = trimesh.Trimesh(verts + grid.origin, faces, process=True)
    watertight = bool(mesh.is_watertight)
    if watertight and mesh.volume < 0:
        mesh.invert()
    return mesh, watertight
