"""Speck removal: tiny separate pieces go, comparable separate objects stay."""

import numpy as np
import trimesh

from recon.engine.mesh_cleanup import drop_specks


def _scene(*pieces: trimesh.Trimesh) -> trimesh.Trimesh:
    return trimesh.util.concatenate(list(pieces))


def test_specks_are_removed_and_the_rest_stays_watertight():
    body = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    speck = trimesh.creation.icosphere(subdivisions=1, radius=0.004)
    speck.apply_translation([0.45, 0.0, 0.0])
    mesh = _scene(body, speck)
    assert len(mesh.split(only_watertight=False)) == 2
    assert drop_specks(mesh, 1e-3) == 1
    assert len(mesh.faces) == len(body.faces)
    assert len(mesh.vertices) == len(body.vertices)
    assert mesh.is_watertight
    assert np.isclose(mesh.area, body.area)


def test_a_second_object_of_real_size_is_kept():
    first = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    second = trimesh.creation.icosphere(subdivisions=2, radius=0.05)  # 1.6% of the area
    second.apply_translation([0.0, 0.0, 0.6])
    mesh = _scene(first, second)
    assert drop_specks(mesh, 1e-3) == 0
    assert len(mesh.faces) == len(first.faces) + len(second.faces)


def test_zero_share_keeps_everything():
    mesh = _scene(trimesh.creation.icosphere(radius=0.4),
                  trimesh.creation.icosphere(subdivisions=1, radius=0.001))
    assert drop_specks(mesh, 0.0) == 0
    assert len(mesh.split(only_watertight=False)) == 2
