"""The method registry matches the public API's method list; presets are well-formed."""

import pytest

from api_schemas import MethodName
from worker.engine.methods import METHODS, get_method, method_names
from worker.engine.presets import PRESETS, build_config


def test_registry_names_equal_the_public_method_list():
    assert method_names() == [member.value for member in MethodName]


def test_every_method_declares_its_config_type():
    for name, method_class in METHODS.items():
        assert method_class.name == name
        assert dataclass_fields_documented(method_class.config_type)


def dataclass_fields_documented(config_type) -> bool:
    import dataclasses
    import inspect

    source = "".join(
        inspect.getsource(cls) for cls in config_type.__mro__ if dataclasses.is_dataclass(cls)
    )
    return all(f'{field.name}:' in source for field in dataclasses.fields(config_type))


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="nap, neural-pull, igr"):
        get_method("poisson")
    with pytest.raises(ValueError, match="fast, balanced, paper, auto"):
        build_config("nap", "ultra")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        build_config("nap", "fast", device="tpu")


@pytest.mark.parametrize("method", [m.value for m in MethodName])
@pytest.mark.parametrize("preset", PRESETS)
def test_build_config_for_every_method_and_preset(method, preset):
    config = build_config(method, preset, device="cpu", seed=5, resolution=64,
                          max_iterations=10, time_budget_s=3.0)
    assert config.method == method and config.seed == 5
    assert config.meshing.resolution == 64 and config.training.max_iterations == 10
    assert config.training.time_budget_s == 3.0
    assert config.network.activation == ("softplus" if method == "igr" else "relu")
    assert isinstance(config.method_config, get_method(method).config_type)


def test_paper_preset_is_the_published_setting():
    config = build_config("nap", "paper", device="cpu")
    assert (config.network.hidden_layers, config.network.hidden_width) == (8, 256)
    assert config.network.skip_layers == (4,)
    assert config.training.batch_size == 5000 and config.training.max_iterations == 40_000
    assert config.meshing.resolution == 256
    assert config.method_config.rho_factor == 0.01


def test_auto_is_balanced_on_cpu():
    assert build_config("nap", "auto", device="cpu").preset == "balanced"
