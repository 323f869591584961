"""The method and preset registries match the public API's lists; presets are well-formed."""

import dataclasses

import pytest

from recon.engine.config import SURFACES, MeshingConfig
from recon.engine.methods import METHODS, get_method, method_names
from recon.engine.presets import PRESET_NAMES, PRESETS, Preset, build_config
from recon.engine.training import scaled_to_cloud
from recon.schemas import MethodName, PresetName, ReconstructionParams, SurfaceKind


def test_registry_names_equal_the_public_method_list():
    assert method_names() == [member.value for member in MethodName]


def test_preset_names_equal_the_public_preset_list():
    assert list(PRESET_NAMES) == [member.value for member in PresetName]


def test_surface_kinds_equal_the_public_list_and_defaults_agree():
    assert list(SURFACES) == [member.value for member in SurfaceKind]
    assert ReconstructionParams().surface.value == MeshingConfig().surface
    assert f"default {MeshingConfig().trim_distance:g})" in (
        ReconstructionParams.model_fields["trim_distance"].description or "")
    with pytest.raises(ValueError, match="valid: closed, trimmed"):
        build_config("nap", "fast", device="cpu", surface="open")


def test_each_preset_is_one_frozen_documented_object():
    assert dataclass_fields_documented(Preset)
    for name, preset in PRESETS.items():
        assert preset.name == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            preset.smooth = not preset.smooth  # type: ignore[misc]
        with pytest.raises(TypeError):
            preset.method_configs["nap"] = None  # type: ignore[index]
        for method, config in preset.method_configs.items():
            assert isinstance(config, get_method(method).config_type)


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
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_build_config_for_every_method_and_preset(method, preset):
    config = build_config(method, preset, device="cpu", seed=5, resolution=64,
                          max_iterations=10, time_budget_s=3.0)
    assert config.method == method and config.seed == 5
    assert config.meshing.resolution == 64 and config.training.max_iterations == 10
    assert config.training.time_budget_s == 3.0
    smooth = method == "igr" or config.preset == "balanced"
    assert config.network.activation == ("softplus" if smooth else "relu")
    assert isinstance(config.method_config, get_method(method).config_type)


def test_paper_preset_is_the_published_setting():
    config = build_config("nap", "paper", device="cpu")
    assert (config.network.hidden_layers, config.network.hidden_width) == (8, 256)
    assert config.network.skip_layers == (4,)
    assert config.training.batch_size == 5000 and config.training.max_iterations == 40_000
    assert config.meshing.resolution == 256
    assert config.method_config.rho_factor == 0.01


def test_an_explicit_time_budget_or_step_count_is_kept_whatever_the_cloud_size():
    own = build_config("nap", "fast", device="cpu").training
    assert own.budget_growth_cap > 1.0
    explicit = build_config("nap", "fast", device="cpu", time_budget_s=20.0).training
    # A budget alone is a ceiling: the preset's step cap still applies and grows with the cloud,
    # the budget does not.
    assert (explicit.time_budget_s, explicit.max_iterations) == (20.0, own.max_iterations)
    grown = scaled_to_cloud(explicit, 20_000)
    assert grown.time_budget_s == 20.0 and grown.max_iterations > own.max_iterations
    explicit = build_config("nap", "fast", device="cpu", max_iterations=700).training
    assert (explicit.max_iterations, explicit.budget_growth_cap) == (700, 1.0)
    both = build_config("nap", "fast", device="cpu", max_iterations=700, time_budget_s=20.0)
    assert (both.training.max_iterations, both.training.time_budget_s) == (700, 20.0)


def test_auto_is_balanced_on_cpu():
    assert build_config("nap", "auto", device="cpu").preset == "balanced"


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu sse2 avx2 avx512f avx512bw", "fp32"),  # AVX-512 without BF16 emulates bf16: slower
    ("fpu sse2 avx512f avx512_bf16 avx512_vnni", "bf16"),  # AMD Zen 4, Intel Cooper Lake
    ("fpu sse2 avx512f amx_bf16 amx_tile", "bf16"),  # Intel Sapphire Rapids
])
@pytest.mark.parametrize("preset", ["fast", "balanced", "paper"])
def test_cpu_presets_use_bf16_only_with_bf16_instructions(tmp_path, monkeypatch, flags, expected,
                                                          preset):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr("recon.engine.device.CPU_FLAGS_FILE", cpuinfo)
    assert build_config("nap", preset, device="cpu").training.matmul_precision == expected


def test_unreadable_cpu_flags_fall_back_to_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr("recon.engine.device.CPU_FLAGS_FILE", tmp_path / "missing")
    assert build_config("nap", "fast", device="cpu").training.matmul_precision == "fp32"
