"""Reading our GLB files back with trimesh, for the tests."""

import io

import trimesh


def glb_geometry(blob: bytes) -> trimesh.Trimesh:
    """The GLB's one mesh with its node transform applied, vertex colours and custom attributes
    kept (without its material, trimesh reads COLOR_0 as vertex colours)."""
    scene = trimesh.load(io.BytesIO(blob), file_type="glb", process=False, skip_materials=True)
    node = scene.graph.nodes_geometry[0]
    transform, name = scene.graph[node]
    mesh = scene.geometry[name].copy()
    mesh.apply_transform(transform)
    return mesh
