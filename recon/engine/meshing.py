"""Mesh extraction: evaluate the SDF on a grid over the padded box and run marching cubes at the
iso level. At high resolutions the grid is filled coarse-to-fine: a coarse grid is evaluated first,
then only cells near the zero level set are subdivided, level by level, down to the fine spacing;
every other fine node takes the mean value of the cell that stopped being refined, whose sign is
the cell's sign, so marching cubes sees the same sign pattern (and hence the same surface) as a
dense evaluation.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from skimage.measure import marching_cubes

from recon.engine.config import MeshingConfig
from recon.engine.errors import EmptySurface, ReconstructionCanceled
from recon.engine.mesh_cleanup import drop_specks
from recon.engine.model import SdfNetwork


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
    specks_removed: int = 0
    """Tiny separate pieces dropped (recon.engine.mesh_cleanup)."""


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
    """Fine-grid values, evaluating the network only near the surface (see module docstring).

    The node stride halves from `coarse_factor` down to 1. At each stride, a cell is refined when
    its parent was and its corner values come within `band_cells` of its own diagonal of the iso
    level (for a 1-Lipschitz field, a cell whose corners are all farther away cannot hold the
    surface); the band therefore narrows with the cells, so evaluations concentrate at the surface.
    """
    r, level = grid.resolution, config.iso_level
    field = _SparseField(network, grid, config.chunk_points, device, should_cancel)
    stride = config.coarse_factor
    nodes = _lattice(r, stride)
    field.evaluate(np.ones((len(nodes),) * 3, dtype=bool), nodes)
    active = np.ones((len(nodes) - 1,) * 3, dtype=bool)
    while stride > 1:
        corners = _cell_corners(field.volume[np.ix_(nodes, nodes, nodes)])
        low, high = np.minimum.reduce(corners), np.maximum.reduce(corners)
        band = config.band_cells * stride * grid.spacing * np.sqrt(3.0)
        near = active & (low - level <= band) & (high - level >= -band)
        field.fill(active & ~near, np.mean(corners, axis=0), nodes)
        finer = _lattice(r, stride // 2)
        field.evaluate(_nodes_in_cells(near, nodes, finer), finer)
        active = _children_of(near, nodes, finer)
        nodes, stride = finer, stride // 2
    return field.volume, field.count


class _SparseField:
    """The fine grid's values as coarse-to-fine fills them in, and which nodes were evaluated."""

    def __init__(self, network: SdfNetwork, grid: Grid, chunk: int, device: torch.device,
                 should_cancel: CancelCheck) -> None:
        self.network, self.grid, self.chunk = network, grid, chunk
        self.device, self.should_cancel = device, should_cancel
        r = grid.resolution
        # NaN marks a node neither evaluated nor filled; march_volume rejects it, so none slips.
        self.volume = np.full((r, r, r), np.nan, dtype=np.float32)
        self.evaluated = np.zeros((r, r, r), dtype=bool)
        self.count = 0

    def evaluate(self, wanted: np.ndarray, lattice: np.ndarray) -> None:
        """Evaluate the network at the `wanted` nodes of a lattice not evaluated before."""
        index = lattice[np.argwhere(wanted)]
        index = index[~self.evaluated[tuple(index.T)]]
        if len(index):
            values = evaluate(self.network, self.grid.coordinates(index), self.chunk,
                              self.device, self.should_cancel)
            self.volume[tuple(index.T)] = values
            self.evaluated[tuple(index.T)] = True
            self.count += len(index)

    def fill(self, settled: np.ndarray, value: np.ndarray, nodes: np.ndarray) -> None:
        """Give every fine node inside a settled cell (one not refined) that cell's mean value.

        Settled cells keep one sign throughout, so marching cubes sees the dense grid's sign
        pattern; evaluated nodes keep their values (a sign-changing edge joins evaluated nodes).
        """
        if not settled.any():
            return
        cell = _cell_of(nodes, np.arange(self.grid.resolution))
        mask = _expand(settled, (cell,)) & ~self.evaluated
        self.volume[mask] = _expand(value, (cell,))[mask]


def _lattice(r: int, stride: int) -> np.ndarray:
    """Node indices along one axis at `stride`: its multiples, plus the last node r - 1."""
    return np.unique(np.minimum(np.arange(0, r - 1 + stride, stride), r - 1))


def _cell_corners(values: np.ndarray) -> list[np.ndarray]:
    """The 8 corner values of every cell of a node array, each of shape (n - 1,) * 3."""
    c = values.shape[0] - 1
    return [values[i : i + c, j : j + c, k : k + c] for i in (0, 1) for j in (0, 1) for k in (0, 1)]


def _cell_of(nodes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Index of the cell (between consecutive `nodes`) holding each position, ends clamped."""
    return np.clip(np.searchsorted(nodes, positions, side="right") - 1, 0, len(nodes) - 2)


def _expand(cells: np.ndarray, indices: tuple[np.ndarray, ...]) -> np.ndarray:
    """out[i, j, k] = OR of cells[a[i], b[j], c[k]] over every choice of a, b, c from `indices`;
    with one index array simply cells[a[i], a[j], a[k]] (values too, not only masks).

    Taken one axis at a time (OR distributes over the axes), so only the last step makes a
    full-size array, where an np.ix_ per combination would make eight.
    """
    out = cells
    for axis in range(3):
        taken = [np.take(out, index, axis=axis) for index in indices]
        out = np.logical_or.reduce(taken) if len(taken) > 1 else taken[0]
    return out


def _nodes_in_cells(cells: np.ndarray, nodes: np.ndarray, finer: np.ndarray) -> np.ndarray:
    """Mask over the `finer` lattice of the nodes lying in (or on the boundary of) `cells`."""
    cell = _cell_of(nodes, finer)
    # A node on a cell boundary also belongs to the cell just before it (ends clamp to themselves).
    previous = _cell_of(nodes, finer - 0.5)
    return _expand(cells, (cell, previous))


def _children_of(cells: np.ndarray, nodes: np.ndarray, finer: np.ndarray) -> np.ndarray:
    """Mask over the `finer` lattice's cells of those inside one of `cells`."""
    parent = _cell_of(nodes, finer[:-1])
    return _expand(cells, (parent,))


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
    """Marching cubes of f at `config.iso_level` over the padded box (normalised frame), with
    specks (pieces under `config.min_piece_area_share` of the largest one's area) dropped.

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
    mesh = march_volume(volume, grid, config.iso_level)
    specks = drop_specks(mesh, config.min_piece_area_share)
    watertight = bool(mesh.is_watertight)
    if watertight and mesh.volume < 0:
        mesh.invert()
    return ExtractedMesh(mesh, watertight, evaluated_points=count, specks_removed=specks)


def close_at_box(volume: np.ndarray, level: float, spacing: float) -> np.ndarray:
    """`volume` with its outer nodes raised a cell's length above `level` where they were not.

    A closed shape's field is outside at the box's walls already, and nothing changes. An open
    scan's signed field is inside over part of a wall; raised there, the surface closes one cell
    inside the box instead of ending at the wall, so the mesh is watertight.
    """
    shell = np.ones(volume.shape, dtype=bool)
    shell[1:-1, 1:-1, 1:-1] = False
    low = shell & (volume <= level)
    if not low.any():
        return volume
    closed = volume.copy()
    closed[low] = level + spacing
    return closed


def march_volume(volume: np.ndarray, grid: Grid, level: float) -> trimesh.Trimesh:
    """The iso surface of a node volume, closed against the box (close_at_box) and free of
    degenerate faces (not yet oriented or cleaned).

    Raises
    ------
    EmptySurface
        On non-finite values or when the volume does not cross `level`.
    """
    if not np.isfinite(volume).all():
        raise EmptySurface("the fitted field has non-finite values on the grid")
    if volume.min() >= level or volume.max() <= level:
        raise EmptySurface("the fitted field has no zero level set inside the box")
    volume = close_at_box(volume, level, grid.spacing)
    # f < 0 inside: "ascent" makes marching cubes wind faces outward.
    verts, faces, _, _ = marching_cubes(
        volume, level=level, spacing=(grid.spacing,) * 3, gradient_direction="ascent"
    )
    mesh = trimesh.Trimesh(verts + grid.origin, faces, process=True)
    # Where f passes through a node at (or within rounding of) the level, marching cubes puts
    # several vertices on that node; merged, they leave zero-area faces whose doubled edges
    # break watertightness. Dropping them leaves the closed surface around them intact.
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    return mesh
