"""A mesh's silhouette drawn independently of recon.engine.rasterise, for the preview tests.

Each projected triangle is filled with scikit-image's polygon scan (pixel centres inside), and
the silhouette is their union: no depth is needed to know which pixels the mesh covers.
"""

import numpy as np

from recon.engine.preview import PreviewCamera


def projected_silhouette(vertices: np.ndarray, faces: np.ndarray,
                         camera: PreviewCamera) -> np.ndarray:
    """(size, size) bool: the pixels whose centre lies in some triangle of the mesh.

    Parameters
    ----------
    vertices : (n, 3) float, GLB frame (the frame the preview is drawn in)
    faces : (f, 3) integer vertex indices
    camera : the preview's camera
    """
    from skimage.draw import polygon

    xy, _ = camera.project(vertices)
    mask = np.zeros((camera.size, camera.size), dtype=bool)
    for triangle in xy[np.asarray(faces)]:  # rows and columns of pixel centres
        rows, cols = polygon(triangle[:, 1] - 0.5, triangle[:, 0] - 0.5, shape=mask.shape)
        mask[rows, cols] = True
    return mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks."""
    return float((a & b).sum() / (a | b).sum())
