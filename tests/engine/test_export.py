"""Mesh exporters: every format round-trips through trimesh; GLB carries normals and material."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import trimesh

from recon.engine.export import MEDIA_TYPES, MESH_EXPORTERS, export_mesh


@pytest.fixture
def torus() -> trimesh.Trimesh:
    return trimesh.creation.torus(major_radius=1.0, minor_radius=0.3)


def _glb_json(blob: bytes) -> dict:
    magic, version, length = struct.unpack_from("<4sII", blob, 0)
    assert magic == b"glTF" and version == 2 and length == len(blob)
    chunk_length, chunk_type = struct.unpack_from("<I4s", blob, 12)
    assert chunk_type == b"JSON"
    return json.loads(blob[20:20 + chunk_length])


def test_exporter_table_and_media_types() -> None:
    assert set(MESH_EXPORTERS) == {"glb", "ply", "obj", "stl"} == set(MEDIA_TYPES)
    assert MEDIA_TYPES["glb"] == "model/gltf-binary"


@pytest.mark.parametrize("fmt", ["glb", "ply", "obj", "stl"])
def test_round_trip_through_trimesh(torus, fmt) -> None:
    blob = export_mesh(torus, fmt)
    assert isinstance(blob, bytes)
    options = {"merge_tex": True, "merge_norm": True} if fmt == "obj" else {}
    loaded = trimesh.load(io.BytesIO(blob), file_type=fmt, force="mesh", **options)
    assert len(loaded.faces) == len(torus.faces)
    assert len(loaded.vertices) == len(torus.vertices)
    assert loaded.is_watertight
    assert loaded.volume == pytest.approx(torus.volume, rel=1e-5)
    np.testing.assert_allclose(loaded.bounds, torus.bounds, atol=1e-5)


def test_glb_has_normals_and_a_neutral_grey_material(torus) -> None:
    document = _glb_json(export_mesh(torus, "glb"))
    primitive = document["meshes"][0]["primitives"][0]
    assert {"POSITION", "NORMAL"} <= set(primitive["attributes"])
    material = document["materials"][primitive["material"]]["pbrMetallicRoughness"]
    assert material["metallicFactor"] == 0.0
    assert material["roughnessFactor"] == pytest.approx(0.8)
    assert material["baseColorFactor"] == pytest.approx([0.8, 0.8, 0.8, 1.0])


def test_glb_of_an_open_mesh_is_double_sided(torus) -> None:
    closed = _glb_json(export_mesh(torus, "glb"))["materials"][0]
    assert not closed.get("doubleSided", False)
    sheet = torus.copy()
    sheet.update_faces(sheet.triangles_center[:, 2] > 0)  # the upper half: open
    opened = _glb_json(export_mesh(sheet, "glb"))["materials"][0]
    assert opened["doubleSided"] is True


def test_ply_export_keeps_vertex_normals(torus) -> None:
    assert b"property float nx" in export_mesh(torus, "ply")[:1000]


def test_format_names_are_case_insensitive(torus) -> None:
    assert export_mesh(torus, ".STL") == export_mesh(torus, "stl")


def test_unknown_format_lists_the_valid_ones(torus) -> None:
    with pytest.raises(ValueError, match="unknown mesh format 'fbx'; valid formats: glb, obj, "
                                         "ply, stl"):
        export_mesh(torus, "fbx")
