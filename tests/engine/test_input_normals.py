"""The input's own normals: "auto" uses consistent ones (the fit gets closer) and ignores flipped
ones (the run is then exactly the one without them); "yes" and "no" force the choice."""

import pytest

from recon.engine.formats.ground_truth import load_ground_truth
from recon.engine.formats.pointcloud import PointCloud, load_point_cloud
from recon.engine.pipeline import reconstruct
from tests.data import BUNNY


@pytest.fixture(scope="module")
def bunny() -> PointCloud:
    return load_point_cloud(BUNNY / "sparse_noisy" / "points_normals.ply")


@pytest.fixture
def config(tiny_config, tweak):
    return tweak(tiny_config, training={"max_iterations": 600})


def cd1(result) -> float:
    return result.metrics["ground_truth"]["cd1_x100"]


def test_auto_uses_consistent_normals_and_the_fit_gets_closer(bunny, config, tweak) -> None:
    truth = load_ground_truth(BUNNY / "gt_samples_10k.ply")
    used = reconstruct(bunny, config, ground_truth=truth)
    without = reconstruct(bunny, tweak(config, use_normals="no"), ground_truth=truth)
    assert used.metrics["run"]["input_normals"] == "used"
    assert used.metrics["run"]["normal_agreement"] >= 0.5
    assert without.metrics["run"]["input_normals"] == "ignored"
    assert cd1(used) < 0.97 * cd1(without)


def test_auto_ignores_flipped_normals(bunny, config, tweak) -> None:
    truth = load_ground_truth(BUNNY / "gt_samples_10k.ply")
    flipped = PointCloud(points=bunny.points, normals=-bunny.normals)
    result = reconstruct(flipped, config, ground_truth=truth)
    assert result.metrics["run"]["input_normals"] == "ignored"
    assert result.metrics["run"]["normal_agreement"] < -0.5
    without = reconstruct(flipped, tweak(config, use_normals="no"), ground_truth=truth)
    assert cd1(result) == cd1(without)  # ignored means exactly the run without them


def test_yes_uses_them_from_the_start_and_clouds_without_normals_say_so(bunny, config,
                                                                          tweak) -> None:
    forced = reconstruct(bunny, tweak(config, use_normals="yes"))
    assert forced.metrics["run"]["input_normals"] == "used"
    assert forced.metrics["run"]["normal_agreement"] is None  # never measured
    plain = reconstruct(PointCloud(points=bunny.points), config)
    assert plain.metrics["run"]["input_normals"] == "not given"


def test_an_unknown_choice_is_refused(config, tweak) -> None:
    with pytest.raises(ValueError, match="unknown use_normals 'maybe'; valid: auto, yes, no"):
        tweak(config, use_normals="maybe")
