"""Where the benchmark data lives and how one regime's input and ground truth are loaded.

The bunny ships in ``bench/data`` (bench/data/README.md), already in the unit-cube frame that the
ground-truth metrics use, so numbers computed on it are comparable with the literature; other
shapes (``python -m bench.make_data``) and larger data come from a folder given with ``--data``.
"""

from dataclasses import dataclass
from pathlib import Path

from recon.engine.formats.ground_truth import GroundTruth, load_ground_truth
from recon.engine.formats.pointcloud import PointCloud, load_point_cloud

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository root (bench/ lives directly under it)."""
DEFAULT_DATA_DIR = REPO_ROOT / "bench" / "data"
"""The data shipped with the repository (the bunny)."""
DEFAULT_SHAPE = "bunny"
"""The shape benchmarked unless --shape names another folder of the data folder."""
REGIMES = ("sparse", "sparse_noisy", "dense")
"""Input regimes shipped with the data (see the data README)."""
POINTS_FILE = "points.ply"
"""Input points without normals."""
POINTS_NORMALS_FILE = "points_normals.ply"
"""The same points with the clean normals (only the "given normals" Poisson row uses it)."""
GROUND_TRUTH_FILE = "gt_samples_100k.ply"
"""100k area-uniform samples of the ground-truth mesh with outward normals."""


@dataclass(frozen=True)
class BenchCase:
    """One regime of one shape: the paths the runner needs."""

    shape: str
    regime: str
    points_path: Path
    points_normals_path: Path
    ground_truth_path: Path

    def load_points(self, *, with_normals: bool = False) -> PointCloud:
        """The input cloud, with the clean normals only when asked for."""
        path = self.points_normals_path if with_normals else self.points_path
        return load_point_cloud(path)

    def load_ground_truth(self) -> GroundTruth:
        """The ground-truth samples (points and normals)."""
        return load_ground_truth(self.ground_truth_path)


def bench_case(data_dir: Path, regime: str, shape: str = DEFAULT_SHAPE) -> BenchCase:
    """Paths of one regime, checked to exist.

    Raises
    ------
    FileNotFoundError
        With the missing path, when the data folder is incomplete.
    """
    shape_dir = Path(data_dir) / shape
    case = BenchCase(
        shape=shape,
        regime=regime,
        points_path=shape_dir / regime / POINTS_FILE,
        points_normals_path=shape_dir / regime / POINTS_NORMALS_FILE,
        ground_truth_path=shape_dir / GROUND_TRUTH_FILE,
    )
    for path in (case.points_path, case.points_normals_path, case.ground_truth_path):
        if not path.is_file():
            raise FileNotFoundError(f"benchmark data missing: {path} (use --data DIR)")
    return case
