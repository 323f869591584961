"""Mesh extraction: watertight outward sphere at init, coarse-to-fine equals dense, empty field."""

import dataclasses

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from recon.engine.config import MeshingConfig, NetworkConfig
from recon.engine.errors import EmptySurface, ReconstructionCanceled
from recon.engine.meshing import Grid, extract_mesh, march_volume, padded_grid
from recon.engine.model import SdfNetwork

CPU = torch.device("cpu")
# Wide enough for the geometric init to be close to its sphere.
NETWORK = NetworkConfig(hidden_layers=3, hidden_width=128, skip_layers=(2,), init_radius=0.3)


def _network(config: NetworkConfig = NETWORK) -> SdfNetwork:
    return SdfNetwork(config, generator=torch.Generator().manual_seed(0))


def test_initial_sphere_is_watertight_and_outward():
    network = _network()
    result = extract_mesh(network, MeshingConfig(resolution=40), device=CPU)
    assert result.watertight
    assert result.mesh.volume > 0
    assert result.evaluated_points == 40**3
    # Face normals point away from the centre.
    outward = (result.mesh.face_normals * result.mesh.triangles_center).sum(axis=1)
    assert (outward > 0).mean() > 0.99
    # The zero level set agrees with the field: f ~ 0 at the vertices.
    with torch.no_grad():
        values = network(torch.as_tensor(result.mesh.vertices, dtype=torch.float32))
    assert values.abs().max().item() < 0.02


@pytest.mark.parametrize(("resolution", "coarse_factor", "share"),
                         [(65, 4, 0.3), (64, 16, 0.3), (129, 16, 0.15), (100, 8, 0.2)])
def test_coarse_to_fine_gives_the_dense_surface_with_fewer_evaluations(
    resolution, coarse_factor, share
):
    """One to four levels of refinement, with grids whose last cell is cut short (64, 100)."""
    network = _network()
    config = MeshingConfig(resolution=resolution, coarse_factor=coarse_factor, chunk_points=20_000)
    dense = extract_mesh(network, config, device=CPU, coarse_to_fine=False)
    sparse = extract_mesh(network, config, device=CPU, coarse_to_fine=True)
    assert sparse.evaluated_points < share * dense.evaluated_points
    assert len(sparse.mesh.faces) == len(dense.mesh.faces)
    distance, _ = cKDTree(dense.mesh.vertices).query(sparse.mesh.vertices)
    assert distance.max() < 1e-6
    assert sparse.watertight


def test_coarse_factor_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        MeshingConfig(coarse_factor=6)


def test_coarse_to_fine_is_used_from_its_threshold():
    network = _network()
    config = MeshingConfig(resolution=49, coarse_to_fine_min_resolution=48, coarse_factor=4)
    result = extract_mesh(network, config, device=CPU)
    assert result.evaluated_points < 49**3


def test_no_zero_crossing_raises_empty_surface():
    network = _network(dataclasses.replace(NETWORK, init_radius=5.0))
    with pytest.raises(EmptySurface):
        extract_mesh(network, MeshingConfig(resolution=24), device=CPU)


def test_grid_covers_the_padded_box():
    network = _network(dataclasses.replace(NETWORK, init_radius=0.75))
    result = extract_mesh(network, MeshingConfig(resolution=32, padding=0.1), device=CPU)
    assert np.abs(result.mesh.vertices).max() <= 0.6 + 1e-6


@pytest.mark.parametrize("coarse_to_fine", [False, True])
def test_cancel_during_meshing_stops_after_the_current_chunk(coarse_to_fine):
    checks = []

    def should_cancel() -> bool:
        checks.append(1)
        return len(checks) > 2

    config = MeshingConfig(resolution=48, chunk_points=4096)
    with pytest.raises(ReconstructionCanceled):
        extract_mesh(_network(), config, device=CPU, coarse_to_fine=coarse_to_fine,
                     should_cancel=should_cancel)
    assert len(checks) == 3


def test_a_field_that_is_exactly_zero_on_nodes_still_gives_a_watertight_mesh():
    """A sphere of radius 5 centred on a node passes exactly through 30 nodes: marching cubes
    stacks vertices there, and the zero-area faces they leave must not break the surface."""
    axis = np.arange(21)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    volume = (np.sqrt((x - 10) ** 2 + (y - 10) ** 2 + (z - 10) ** 2) - 5).astype(np.float32)
    assert (volume == 0).sum() > 0
    mesh = march_volume(volume, Grid(origin=0.0, spacing=1.0, resolution=21), 0.0)
    assert mesh.is_watertight
    assert mesh.area_faces.min() > 0
    assert len(mesh.split(only_watertight=False)) == 1


class _SteepSphereAndBlob(torch.nn.Module):
    """1.5 x the distance to a bumpy sphere and to a small ball: gradient norms up to 2, the most
    the default refinement band is meant to cover. The ball sits at the centre of one coarse cell
    of the test grid, with every corner of that cell outside it."""

    def __init__(self, blob_centre: float, blob_radius: float) -> None:
        super().__init__()
        self.centre, self.radius = blob_centre, blob_radius

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        bumps = 0.015 * torch.sin(15 * points[:, 0]) * torch.sin(15 * points[:, 1])
        sphere = points.norm(dim=1) - 0.3 - bumps
        blob = (points - self.centre).norm(dim=1) - self.radius
        return 1.5 * torch.minimum(sphere, blob)


@pytest.mark.parametrize(("band_cells", "same_surface"), [(1.0, True), (0.2, False)])
def test_coarse_to_fine_keeps_every_piece_of_a_field_steeper_than_a_distance(band_cells,
                                                                             same_surface):
    config = MeshingConfig(resolution=129, coarse_factor=16, chunk_points=50_000,
                           band_cells=band_cells)
    grid = padded_grid(config, 1.0, config.resolution)
    coarse_cell = 16 * grid.spacing
    network = _SteepSphereAndBlob(blob_centre=grid.origin + (6 * 16 + 8) * grid.spacing,
                                  blob_radius=0.25 * np.sqrt(3) * coarse_cell)
    dense = extract_mesh(network, config, device=CPU, coarse_to_fine=False)
    sparse = extract_mesh(network, config, device=CPU, coarse_to_fine=True)
    assert sparse.evaluated_points < 0.15 * dense.evaluated_points
    assert (len(sparse.mesh.faces) == len(dense.mesh.faces)) is same_surface
    if same_surface:  # a band below half a diagonal loses the ball; the default keeps it
        distance, _ = cKDTree(dense.mesh.vertices).query(sparse.mesh.vertices)
        assert distance.max() < 1e-6


def test_a_field_inside_at_a_wall_is_closed_one_cell_inside_the_box():
    """An open scan's signed field: inside below a plane, through the whole box. The mesh is
    the plane closed against the walls: watertight, every vertex inside the box."""
    grid = Grid(origin=-1.0, spacing=2.0 / 31, resolution=32)
    axis = grid.origin + np.arange(32) * grid.spacing
    volume = np.broadcast_to(axis[None, None, :] - 0.1, (32, 32, 32)).astype(np.float32)
    mesh = march_volume(volume.copy(), grid, 0.0)
    assert mesh.is_watertight
    assert np.abs(mesh.vertices).max() < 1.0
    assert np.isclose(mesh.vertices[:, 2].max(), 0.1, atol=1e-5)  # the plane itself stays


def test_close_at_box_leaves_a_field_outside_at_the_walls_untouched():
    from recon.engine.meshing import close_at_box

    axis = np.linspace(-1, 1, 16)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    volume = (np.sqrt(x**2 + y**2 + z**2) - 0.5).astype(np.float32)
    assert close_at_box(volume, 0.0, axis[1] - axis[0]) is volume
