"""The one translation from public parameters to an engine config."""

from recon.engine.config import MeshingConfig
from recon.infra.settings import Settings
from recon.schemas import ReconstructionParams
from recon.worker.engine_params import engine_config_for, engine_time_limit_s


def test_client_choices_reach_the_engine_config() -> None:
    params = ReconstructionParams(method="neural-pull", preset="fast", seed=7, resolution=48,
                                  max_iterations=123)
    config = engine_config_for(params, Settings(worker_device="cpu", worker_concurrency=1))
    assert (config.method, config.preset, config.seed, config.device) == (
        "neural-pull", "fast", 7, "cpu")
    assert config.meshing.resolution == 48 and config.training.max_iterations == 123
    assert config.training.num_threads is not None and config.training.num_threads >= 1
    assert config.meshing.surface == "closed"


def test_surface_and_trim_distance_reach_the_meshing_config() -> None:
    params = ReconstructionParams(surface="trimmed", trim_distance=3.0)
    config = engine_config_for(params, Settings(worker_device="cpu"))
    assert (config.meshing.surface, config.meshing.trim_distance) == ("trimmed", 3.0)
    default = engine_config_for(ReconstructionParams(surface="trimmed"), Settings())
    assert default.meshing.trim_distance == MeshingConfig().trim_distance


def test_output_options_reach_the_config() -> None:
    params = ReconstructionParams(target_faces=5000, up_axis="z", units="mm", use_normals="no")
    config = engine_config_for(params, Settings(worker_device="cpu"))
    assert config.meshing.target_faces == 5000
    assert (config.frame.up_axis, config.frame.units) == ("z", "mm")
    assert config.use_normals == "no"
    default = engine_config_for(ReconstructionParams(), Settings(worker_device="cpu"))
    assert default.meshing.target_faces is None
    assert (default.frame.up_axis, default.frame.units) == ("y", None)
    assert default.use_normals == "auto"


def test_the_whole_run_fits_the_soft_time_limit() -> None:
    """The engine gets the soft limit less the upload reserve (10 s here) and less what the run
    already spent; training, grown or not, never gets more than that."""
    settings = Settings(worker_device="cpu", job_soft_time_limit_s=40, job_hard_time_limit_s=50,
                        broker_visibility_timeout_s=60)
    paper = engine_config_for(ReconstructionParams(preset="paper"), settings)
    fast = engine_config_for(ReconstructionParams(preset="fast"), settings, elapsed_s=5.0)
    assert paper.time_limit_s == engine_time_limit_s(settings) == 30.0
    assert fast.time_limit_s == engine_time_limit_s(settings, 5.0) == 25.0
    assert paper.training.time_budget_s == 30.0
    assert fast.training.time_budget_s is not None and fast.training.time_budget_s <= 25.0
    assert paper.training.max_time_budget_s == 30.0 and fast.training.max_time_budget_s == 25.0


def test_concurrent_jobs_share_the_cores() -> None:
    one = engine_config_for(ReconstructionParams(), Settings(worker_device="cpu"))
    many = engine_config_for(ReconstructionParams(),
                             Settings(worker_device="cpu", worker_concurrency=64))
    assert many.training.num_threads == 1
    assert one.training.num_threads is not None and one.training.num_threads >= 1
