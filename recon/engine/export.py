"""Mesh exporters keyed by format name: GLB (default), PLY, OBJ, STL.

Every exporter takes a ``trimesh.Trimesh`` and returns the file's bytes. GLB carries vertex
normals and a neutral grey PBR material, so glTF viewers shade it instead of drawing it black;
the material is double-sided when the mesh is open (a trimmed scan), so the sheet stays visible
from behind, where viewers would otherwise cull it.
"""

from __future__ import annotations

from collections.abc import Callable

import trimesh
from trimesh.exchange.gltf import export_glb
from trimesh.exchange.obj import export_obj
from trimesh.exchange.ply import export_ply
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

#: Base colour of the GLB material, RGBA in 0..1 (a light neutral grey).
GLB_BASE_COLOR = (0.8, 0.8, 0.8, 1.0)

#: Metallic factor of the GLB material (0: a dielectric, like plaster).
GLB_METALLIC = 0.0

#: Roughness factor of the GLB material (high: matte, no mirror highlights).
GLB_ROUGHNESS = 0.8

MEDIA_TYPES: dict[str, str] = {
    "glb": "model/gltf-binary",
    "ply": "application/x-ply",
    "obj": "model/obj",
    "stl": "model/stl",
}


def _export_glb(mesh: trimesh.Trimesh) -> bytes:
    material = PBRMaterial(
        name="recon-grey",
        baseColorFactor=list(GLB_BASE_COLOR),
        metallicFactor=GLB_METALLIC,
        roughnessFactor=GLB_ROUGHNESS,
        doubleSided=not mesh.is_watertight,
    )
    shaded = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False,
                             vertex_normals=mesh.vertex_normals)
    shaded.visual = TextureVisuals(material=material)
    return export_glb(trimesh.Scene(shaded), include_normals=True)


def _export_ply(mesh: trimesh.Trimesh) -> bytes:
    return export_ply(mesh, encoding="binary", vertex_normal=True, include_attributes=False)


def _export_obj(mesh: trimesh.Trimesh) -> bytes:
    text = export_obj(mesh, include_normals=True, include_color=False, include_texture=False,
                      write_texture=False)
    return text.encode("utf-8")


def _export_stl(mesh: trimesh.Trimesh) -> bytes:
    return trimesh.exchange.stl.export_stl(mesh)


MESH_EXPORTERS: dict[str, Callable[[trimesh.Trimesh], bytes]] = {
    "glb": _export_glb,
    "ply": _export_ply,
    "obj": _export_obj,
    "stl": _export_stl,
}


def export_mesh(mesh: trimesh.Trimesh, fmt: str) -> bytes:
    """Serialise a mesh.

    Parameters
    ----------
    mesh : the triangle mesh (input coordinates)
    fmt : a key of MESH_EXPORTERS (case-insensitive, a leading dot is ignored)

    Raises
    ------
    ValueError
        Unknown format; the message lists the valid ones.
    """
    key = fmt.lower().lstrip(".")
    if key not in MESH_EXPORTERS:
        raise ValueError(f"unknown mesh format {fmt!r}; valid formats: "
                         f"{', '.join(sorted(MESH_EXPORTERS))}")
    return MESH_EXPORTERS[key](mesh)
