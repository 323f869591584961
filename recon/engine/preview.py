"""A PNG preview of a mesh from a fixed camera, drawn in software (no display, no GPU needed).

Each job's list entry shows this picture, so it is made on the worker right after the mesh:
the mesh is drawn in the GLB's frame (metres, Y-up, recon.engine.formats.frame) so it stands
upright however the input was oriented, seen from the front-right and above with an
orthographic camera fitted to its bounding sphere (`preview_camera`, public so that a test can
project the mesh the same way), shaded with one directional light plus ambient in linear light,
with the mesh's vertex colours when it has them. The background is transparent; the image is
drawn at a multiple of its size and averaged down, which smooths its edges.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

import numpy as np
import trimesh
from PIL import Image
from trimesh.visual import ColorVisuals

from recon.engine.config import FrameConfig
from recon.engine.formats.frame import glb_transform
from recon.engine.formats.srgb import linear_to_srgb, srgb_to_linear
from recon.engine.rasterise import DEFAULT_CHUNK_FRAGMENTS, rasterise


@dataclass(frozen=True)
class PreviewConfig:
    """How the preview is framed, lit and sized."""

    size: int = 512
    """Width and height of the PNG in pixels."""
    supersampling: int = 2
    """Pixels drawn per output pixel along each axis, averaged down (smooth edges)."""
    azimuth_deg: float = 35.0
    """The camera's direction, turned this far from the front (+Z) towards the right (+X)."""
    elevation_deg: float = 25.0
    """The camera's height above the horizontal plane, in degrees."""
    margin: float = 0.05
    """Empty border around the bounding sphere, as a share of its radius."""
    ambient: float = 0.2
    """Light reaching every visible point, whatever its orientation."""
    diffuse: float = 0.85
    """Strength of the directional light (Lambert's cosine law)."""
    light: tuple[float, float, float] = (-0.5, 0.6, 0.6)
    """The light's direction in camera axes (right, up, towards the viewer): upper left, front."""
    neutral_colour: float = 0.6
    """Linear grey of a mesh without vertex colours (a little darker than the GLB's material,
    so that lit faces keep their shading instead of clipping to white)."""
    chunk_fragments: int = DEFAULT_CHUNK_FRAGMENTS
    """Candidate pixels the rasteriser expands at once (bounds its memory)."""


@dataclass(frozen=True)
class PreviewCamera:
    """An orthographic camera: GLB-frame points -> pixel positions (x right, y down) and depth.

    Attributes
    ----------
    centre : (3,) the point seen at the image centre (metres, GLB frame)
    right, up, forward : (3,) unit axes of the image and the viewing direction
    half_width : metres from the centre to each edge of the image
    size : the image's width and height in pixels
    """

    centre: np.ndarray
    right: np.ndarray
    up: np.ndarray
    forward: np.ndarray
    half_width: float
    size: int

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3) GLB-frame points -> (n, 2) pixel positions and (n,) depths (nearer: smaller)."""
        offsets = np.asarray(points, dtype=np.float64) - self.centre
        scale = self.size / (2.0 * self.half_width)
        x = self.size / 2.0 + offsets @ self.right * scale
        y = self.size / 2.0 - offsets @ self.up * scale
        return np.stack([x, y], axis=1), offsets @ self.forward

    def scaled(self, factor: int) -> PreviewCamera:
        """The same view drawn with `factor` times as many pixels along each axis."""
        return replace(self, size=self.size * factor)


class NothingToDraw(ValueError):
    """The mesh has no triangle the camera can see (no faces, or all of them degenerate)."""


def preview_camera(points: np.ndarray, config: PreviewConfig | None = None) -> PreviewCamera:
    """The preview's camera for a mesh whose vertices (GLB frame) are `points`.

    It looks at the centre of their bounding box, from `config`'s fixed direction, and sees
    the sphere around that box (radius half its diagonal) with `config.margin` to spare.
    """
    config = config or PreviewConfig()
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0:
        raise NothingToDraw("the mesh has no vertices to draw")
    low, high = points.min(axis=0), points.max(axis=0)
    radius = float(np.linalg.norm(high - low)) / 2.0
    if not math.isfinite(radius) or radius <= 0.0:
        raise NothingToDraw("the mesh's vertices are all at one point (or not finite)")
    azimuth, elevation = math.radians(config.azimuth_deg), math.radians(config.elevation_deg)
    towards_viewer = np.array([math.sin(azimuth) * math.cos(elevation), math.sin(elevation),
                               math.cos(azimuth) * math.cos(elevation)])
    forward = -towards_viewer
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    return PreviewCamera(centre=(low + high) / 2.0, right=right, up=np.cross(right, forward),
                         forward=forward, half_width=radius * (1.0 + config.margin),
                         size=config.size)


def render_preview(mesh: trimesh.Trimesh, frame: FrameConfig | None = None,
                   config: PreviewConfig | None = None) -> bytes:
    """The mesh (input coordinates, in `frame`) drawn as an RGBA PNG; see the module docstring.

    Raises
    ------
    NothingToDraw
        The mesh has no faces, its vertices are all at one point, or no face covers a pixel.
    """
    config = config or PreviewConfig()
    frame = frame or FrameConfig()
    if len(mesh.faces) == 0:
        raise NothingToDraw("the mesh has no faces to draw")
    transform = glb_transform(frame.up_axis, frame.units)
    vertices = np.asarray(mesh.vertices, dtype=np.float64) @ transform.T
    camera = preview_camera(vertices, config).scaled(config.supersampling)
    xy, depth = camera.project(vertices)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    coverage = rasterise(xy, depth, faces, camera.size, camera.size, config.chunk_fragments)
    if not coverage.mask.any():
        raise NothingToDraw("no face of the mesh covers a pixel (all are degenerate)")
    normals = np.asarray(mesh.vertex_normals, dtype=np.float64) @ transform.T
    rgba = _shade(coverage.face, coverage.weights, faces, normals, _albedo(mesh, config),
                  camera, config)
    return _png(_downsampled(rgba, config.supersampling))


def _albedo(mesh: trimesh.Trimesh, config: PreviewConfig) -> np.ndarray:
    """(m, 3) linear colour of each vertex: its own when the mesh has vertex colours."""
    visual = mesh.visual
    if isinstance(visual, ColorVisuals) and visual.kind == "vertex":
        return srgb_to_linear(np.asarray(visual.vertex_colors)[:, :3] / 255.0)
    return np.full((len(mesh.vertices), 3), config.neutral_colour)


def _shade(face: np.ndarray, weights: np.ndarray, faces: np.ndarray, normals: np.ndarray,
           albedo: np.ndarray, camera: PreviewCamera, config: PreviewConfig) -> np.ndarray:
    """(h, w, 4) float RGBA in 0-1: Lambert plus ambient, interpolated normals and colours."""
    covered = face >= 0
    corners = faces[face[covered]]  # (k, 3) vertex indices of the face each pixel sees
    w = weights[covered][:, :, None]
    normal = (normals[corners] * w).sum(axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    facing = normal @ -camera.forward
    normal[facing < 0] *= -1.0  # the inside of an open mesh is lit like its outside
    light = np.asarray(config.light, dtype=np.float64)
    light = light[0] * camera.right + light[1] * camera.up - light[2] * camera.forward
    light /= np.linalg.norm(light)
    intensity = config.ambient + config.diffuse * np.clip(normal @ light, 0.0, None)
    colour = (albedo[corners] * w).sum(axis=1) * intensity[:, None]
    rgba = np.zeros((*face.shape, 4))
    rgba[covered, :3] = linear_to_srgb(colour)
    rgba[covered, 3] = 1.0
    return rgba


def _downsampled(rgba: np.ndarray, factor: int) -> np.ndarray:
    """(h/f, w/f, 4) uint8: each block's mean coverage, and its covered pixels' mean colour."""
    h, w = rgba.shape[0] // factor, rgba.shape[1] // factor
    blocks = rgba.reshape(h, factor, w, factor, 4)
    alpha = blocks[..., 3].mean(axis=(1, 3))
    colour = (blocks[..., :3] * blocks[..., 3:]).mean(axis=(1, 3))
    colour /= np.maximum(alpha, 1e-12)[..., None]
    out = np.concatenate([colour, alpha[..., None]], axis=2)
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


def _png(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG")
    return buffer.getvalue()
