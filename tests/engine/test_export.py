"""Mesh exporters: every format round-trips through trimesh; GLB carries normals and material, is
in metres and Y-up; support values travel; survey coordinates keep millimetres in every format."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import trimesh

from recon.engine.config import FrameConfig
from recon.engine.export import MEDIA_TYPES, MESH_EXPORTERS, export_mesh
from recon.engine.formats.ply import read_ply
from recon.engine.support import SUPPORT_ATTRIBUTE
from tests.engine.glb_reading import glb_geometry


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


@pytest.mark.parametrize(("frame", "expected"), [
    (FrameConfig(), (1.0, 2.0, 3.0)),
    (FrameConfig(units="mm"), (0.001, 0.002, 0.003)),
    (FrameConfig(up_axis="z"), (1.0, 3.0, -2.0)),
    (FrameConfig(up_axis="z", units="ft"), (0.3048, 0.9144, -0.6096)),
])
def test_glb_is_in_metres_and_y_up(torus, frame, expected) -> None:
    mesh = torus.copy()
    mesh.vertices[0] = (1.0, 2.0, 3.0)  # a known point
    glb = glb_geometry(export_mesh(mesh, "glb", frame))
    np.testing.assert_allclose(glb.vertices[0], expected, rtol=1e-6, atol=1e-7)
    # a rotation, never a mirror: the torus keeps its outward winding (a positive volume)
    metres = {None: 1.0, "mm": 0.001, "ft": 0.3048}[frame.units]
    assert glb_geometry(export_mesh(torus, "glb", frame)).volume == pytest.approx(
        torus.volume * metres**3, rel=1e-4)
    # PLY stays in the input's frame and units
    ply = trimesh.load(io.BytesIO(export_mesh(mesh, "ply", frame)), file_type="ply",
                       process=False)
    np.testing.assert_allclose(ply.vertices[0], (1.0, 2.0, 3.0))


def test_support_values_travel_in_ply_and_glb(torus) -> None:
    mesh = torus.copy()
    values = np.linspace(0, 9, len(mesh.vertices)).astype(np.float32)
    mesh.vertex_attributes[SUPPORT_ATTRIBUTE] = values
    vertex = read_ply(export_mesh(mesh, "ply"))["vertex"].properties
    np.testing.assert_array_equal(vertex[SUPPORT_ATTRIBUTE], values)
    glb = glb_geometry(export_mesh(mesh, "glb"))
    np.testing.assert_array_equal(glb.vertex_attributes["_SUPPORT"].reshape(-1), values)


@pytest.mark.parametrize("fmt", ["glb", "ply", "obj", "stl"])
def test_survey_coordinates_keep_millimetres(torus, fmt) -> None:
    offset = np.array([512_345.678, 5_412_345.678, 312.345])  # UTM metres
    mesh = trimesh.Trimesh(torus.vertices * 10 + offset, torus.faces, process=False)
    blob = export_mesh(mesh, fmt)
    if fmt == "glb":
        loaded = glb_geometry(blob)
    else:
        options = {"merge_tex": True, "merge_norm": True} if fmt == "obj" else {}
        loaded = trimesh.load(io.BytesIO(blob), file_type=fmt, force="mesh", process=False,
                              **options)
    if fmt == "stl":  # STL stores triangles: compare corner by corner
        got, want = np.asarray(loaded.triangles), np.asarray(mesh.triangles)
    else:
        got, want = np.asarray(loaded.vertices), np.asarray(mesh.vertices)
    assert np.abs(got - want).max() < 1e-3


def test_small_coordinates_keep_compact_files(torus) -> None:
    assert b"property float x" in export_mesh(torus, "ply")[:500]
    assert export_mesh(torus, "stl")[:5] != b"solid"  # binary
