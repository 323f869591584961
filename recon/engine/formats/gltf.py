"""A binary glTF 2.0 (GLB) writer for one mesh or one point cloud, with what viewers need.

Written here rather than through a general exporter because the details matter to users:
positions are float32 relative to the node's translation (float64 in the JSON), so survey
coordinates keep their millimetres; vertex colours go in COLOR_0 in linear light, as the
specification requires, under a white material that shows them; extra per-vertex values go in
custom attributes (names starting with an underscore, which viewers ignore and tools can read);
the material is double-sided when the mesh is open. Without faces the primitive is a point
cloud (mode POINTS), which is how the API serves the uploaded points beside the mesh; numpy
only, so the API can use it.
"""

import json
import struct
from dataclasses import dataclass, field

import numpy as np

GLB_MAGIC = 0x46546C67  # "glTF"
JSON_CHUNK = 0x4E4F534A  # "JSON"
BIN_CHUNK = 0x004E4942  # "BIN\0"
FLOAT, UNSIGNED_INT = 5126, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
POINTS, TRIANGLES = 0, 4


@dataclass(frozen=True)
class GlbMaterial:
    """A metallic-roughness material."""

    base_colour: tuple[float, float, float, float]
    metallic: float
    roughness: float
    double_sided: bool


@dataclass(frozen=True)
class GlbMesh:
    """One primitive to write: positions relative to `translation`, and per-vertex data.

    Attributes
    ----------
    positions : (m, 3) float32, relative to `translation`
    translation : (3,) float64, the node's translation
    faces : (f, 3) integer vertex indices, or None for a point cloud (mode POINTS)
    normals : (m, 3) float32 unit normals, or None
    colours : (m, 4) float32 linear RGBA in 0-1, or None
    extras : name (starting with "_") -> (m,) float32 per-vertex values
    """

    positions: np.ndarray
    translation: np.ndarray
    material: GlbMaterial
    faces: np.ndarray | None = None
    normals: np.ndarray | None = None
    colours: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class _Buffer:
    """The binary chunk being filled, with its buffer views and accessors."""

    def __init__(self) -> None:
        self.binary = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, array: np.ndarray, kind: str, component: int, target: int,
            bounds: bool = False) -> int:
        """Append `array` (4-byte aligned); return its accessor's index."""
        self.pad()
        data = np.ascontiguousarray(array).tobytes()
        self.views.append({"buffer": 0, "byteOffset": len(self.binary), "byteLength": len(data),
                           "target": target})
        self.binary.extend(data)
        accessor = {"bufferView": len(self.views) - 1, "componentType": component,
                    "count": len(array), "type": kind}
        if bounds and len(array):
            accessor["min"] = [float(v) for v in array.min(axis=0)]
            accessor["max"] = [float(v) for v in array.max(axis=0)]
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def pad(self) -> None:
        while len(self.binary) % 4:
            self.binary.append(0)


def _primitive(mesh: GlbMesh, buffer: _Buffer) -> dict:
    attributes = {"POSITION": buffer.add(mesh.positions.astype("<f4"), "VEC3", FLOAT,
                                         ARRAY_BUFFER, bounds=True)}
    if mesh.normals is not None:
        attributes["NORMAL"] = buffer.add(mesh.normals.astype("<f4"), "VEC3", FLOAT, ARRAY_BUFFER)
    if mesh.colours is not None:
        attributes["COLOR_0"] = buffer.add(mesh.colours.astype("<f4"), "VEC4", FLOAT,
                                           ARRAY_BUFFER)
    for name, values in mesh.extras.items():
        if not name.startswith("_"):
            raise ValueError(f"custom glTF attributes start with '_': {name!r}")
        attributes[name] = buffer.add(values.astype("<f4"), "SCALAR", FLOAT, ARRAY_BUFFER)
    primitive: dict = {"attributes": attributes, "material": 0, "mode": POINTS}
    if mesh.faces is not None:
        primitive["indices"] = buffer.add(mesh.faces.astype("<u4").reshape(-1), "SCALAR",
                                          UNSIGNED_INT, ELEMENT_ARRAY_BUFFER)
        primitive["mode"] = TRIANGLES
    return primitive


def write_glb(mesh: GlbMesh) -> bytes:
    """The GLB file's bytes."""
    buffer = _Buffer()
    primitive = _primitive(mesh, buffer)
    material = mesh.material
    document = {
        "asset": {"version": "2.0", "generator": "recon"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": [float(v) for v in mesh.translation]}],
        "meshes": [{"primitives": [primitive]}],
        "materials": [{
            "pbrMetallicRoughness": {"baseColorFactor": list(material.base_colour),
                                     "metallicFactor": material.metallic,
                                     "roughnessFactor": material.roughness},
            "doubleSided": material.double_sided,
        }],
        "accessors": buffer.accessors,
        "bufferViews": buffer.views,
        "buffers": [{"byteLength": len(buffer.binary)}],
    }
    buffer.pad()
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(buffer.binary)
    return (struct.pack("<III", GLB_MAGIC, 2, total)
            + struct.pack("<II", len(text), JSON_CHUNK) + text
            + struct.pack("<II", len(buffer.binary), BIN_CHUNK) + bytes(buffer.binary))
