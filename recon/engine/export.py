"""Mesh exporters keyed by format name: GLB (default), PLY, OBJ, STL.

`export_mesh` takes a ``trimesh.Trimesh`` in input coordinates, with optional vertex colours
(its vertex visual) and per-vertex `support` (its vertex attribute), and returns the file's bytes.

- GLB (recon.engine.formats.gltf) is in metres and Y-up, as glTF requires, converted with the
  input's `FrameConfig` (recon.engine.formats.frame); it carries normals, COLOR_0 in linear
  light under a white material (a neutral grey one without colours), support as `_SUPPORT`,
  and is double-sided when the mesh is open.
- PLY, OBJ and STL keep the input's frame and units. PLY carries normals, colours and support;
  OBJ carries normals and colours (the common `v x y z r g b` extension).
- Survey coordinates keep their precision: PLY vertices are float64, OBJ has 17 digits and STL
  is written as ASCII with 17 digits once float32 would lose it (the largest coordinate beyond
  FLOAT32_SAFE_DIAGONALS diagonals); GLB stores float32 offsets from a float64 node translation.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import trimesh
from trimesh.visual import ColorVisuals

from recon.engine.config import FrameConfig
from recon.engine.formats.frame import glb_transform, node_translation
from recon.engine.formats.gltf import GlbMaterial, GlbMesh, write_glb
from recon.engine.formats.ply import write_ply
from recon.engine.formats.srgb import srgb_to_linear
from recon.engine.support import SUPPORT_ATTRIBUTE

GREY = GlbMaterial(base_colour=(0.8, 0.8, 0.8, 1.0), metallic=0.0, roughness=0.8,
                   double_sided=False)
"""The GLB material without vertex colours: a matte light grey dielectric, like plaster."""
WHITE = GlbMaterial(base_colour=(1.0, 1.0, 1.0, 1.0), metallic=0.0, roughness=0.8,
                    double_sided=False)
"""With vertex colours: white, so COLOR_0 (which multiplies the base colour) shows as it is."""

FLOAT32_SAFE_DIAGONALS = 8.0
"""Below this many bounding-box diagonals from the origin float32's step is under a millionth of
the diagonal; farther out, PLY, OBJ and STL switch to full precision."""

MEDIA_TYPES: dict[str, str] = {
    "glb": "model/gltf-binary",
    "ply": "application/x-ply",
    "obj": "model/obj",
    "stl": "model/stl",
}

def _colours(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """(m, 4) uint8 sRGBA vertex colours, or None when the mesh has none."""
    visual = mesh.visual
    if not isinstance(visual, ColorVisuals) or visual.kind != "vertex":
        return None
    return np.asarray(visual.vertex_colors, dtype=np.uint8)


def _support(mesh: trimesh.Trimesh) -> np.ndarray | None:
    values = mesh.vertex_attributes.get(SUPPORT_ATTRIBUTE)
    return None if values is None else np.asarray(values, dtype=np.float32)


def needs_double(vertices: np.ndarray) -> bool:
    """Whether float32 would lose detail (see FLOAT32_SAFE_DIAGONALS)."""
    diagonal = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))
    return float(np.abs(vertices).max()) > FLOAT32_SAFE_DIAGONALS * max(diagonal, 1e-300)


def _export_glb(mesh: trimesh.Trimesh, frame: FrameConfig) -> bytes:
    transform = glb_transform(frame.up_axis, frame.units)
    positions, translation = node_translation(np.asarray(mesh.vertices) @ transform.T)
    normals = np.asarray(mesh.vertex_normals) @ (transform.T / np.linalg.norm(transform[0]))
    colours = _colours(mesh)
    material = WHITE if colours is not None else GREY
    material = GlbMaterial(material.base_colour, material.metallic, material.roughness,
                           double_sided=not mesh.is_watertight)
    linear = None
    if colours is not None:
        linear = np.concatenate([srgb_to_linear(colours[:, :3] / 255.0),
                                 colours[:, 3:] / 255.0], axis=1)
    support = _support(mesh)
    return write_glb(GlbMesh(
        positions=positions, faces=np.asarray(mesh.faces),
        normals=normals.astype(np.float32), translation=translation, material=material,
        colours=None if linear is None else linear.astype(np.float32),
        extras={} if support is None else {"_" + SUPPORT_ATTRIBUTE.upper(): support}))


def _export_ply(mesh: trimesh.Trimesh, frame: FrameConfig) -> bytes:
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    coordinate = np.float64 if needs_double(vertices) else np.float32
    normals = np.asarray(mesh.vertex_normals, dtype=np.float32)
    vertex: dict[str, np.ndarray] = {
        name: vertices[:, i].astype(coordinate) for i, name in enumerate("xyz")}
    vertex |= {name: normals[:, i] for i, name in enumerate(("nx", "ny", "nz"))}
    colours = _colours(mesh)
    if colours is not None:
        vertex |= {name: colours[:, i]
                   for i, name in enumerate(("red", "green", "blue", "alpha"))}
    support = _support(mesh)
    if support is not None:
        vertex[SUPPORT_ATTRIBUTE] = support
    faces = np.asarray(mesh.faces, dtype=np.int32)
    return write_ply({"vertex": vertex, "face": {"vertex_indices": faces}})


def _rows(table: np.ndarray, fmt: str) -> str:
    buffer = io.StringIO()
    np.savetxt(buffer, table, fmt=fmt)
    return buffer.getvalue()


def _export_obj(mesh: trimesh.Trimesh, frame: FrameConfig) -> bytes:
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    digits = 17 if needs_double(vertices) else 9
    colours = _colours(mesh)
    columns = [vertices] if colours is None else [vertices, colours[:, :3] / 255.0]
    table = np.concatenate(columns, axis=1)
    row = "v " + " ".join([f"%.{digits}g"] * 3 + ["%.4f"] * (table.shape[1] - 3))
    faces = np.repeat(np.asarray(mesh.faces, dtype=np.int64) + 1, 2, axis=1)
    text = ("# recon mesh\n" + _rows(table, row)
            + _rows(np.asarray(mesh.vertex_normals), "vn %.6f %.6f %.6f")
            + _rows(faces, "f %d//%d %d//%d %d//%d"))
    return text.encode("ascii")


def _export_stl(mesh: trimesh.Trimesh, frame: FrameConfig) -> bytes:
    if not needs_double(np.asarray(mesh.vertices)):
        return trimesh.exchange.stl.export_stl(mesh)
    table = np.concatenate([np.asarray(mesh.face_normals),
                            np.asarray(mesh.triangles, dtype=np.float64).reshape(-1, 9)], axis=1)
    facet = ("facet normal %.6e %.6e %.6e\nouter loop\n"
             + "vertex %.17g %.17g %.17g\n" * 3 + "endloop\nendfacet")
    return ("solid recon\n" + _rows(table, facet) + "endsolid recon\n").encode("ascii")


MESH_EXPORTERS: dict[str, Callable[[trimesh.Trimesh, FrameConfig], bytes]] = {
    "glb": _export_glb,
    "ply": _export_ply,
    "obj": _export_obj,
    "stl": _export_stl,
}


def export_mesh(mesh: trimesh.Trimesh, fmt: str, frame: FrameConfig | None = None) -> bytes:
    """Serialise a mesh (input coordinates; see the module docstring for what each carries).

    Parameters
    ----------
    mesh : the triangle mesh
    fmt : a key of MESH_EXPORTERS (case-insensitive, a leading dot is ignored)
    frame : the input's up axis and units (the GLB is converted from them); default Y-up metres

    Raises
    ------
    ValueError
        Unknown format; the message lists the valid ones.
    """
    key = fmt.lower().lstrip(".")
    if key not in MESH_EXPORTERS:
        raise ValueError(f"unknown mesh format {fmt!r}; valid formats: "
                         f"{', '.join(sorted(MESH_EXPORTERS))}")
    return MESH_EXPORTERS[key](mesh, frame or FrameConfig())
