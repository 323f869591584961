"""Named presets: `fast`, `balanced`, `paper`, and `auto` (paper on CUDA, balanced on CPU).

Each preset is one frozen `Preset` holding every config section it sets, so a preset is read in
one place. `build_config` is the one function that turns (method, preset, device, seed,
overrides) into a `ReconstructionConfig`. Why each preset is what it is, with the measurements,
is in docs/ENGINE.md; the current figures are in bench/RESULTS.md.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from recon.engine.config import (
    FrameConfig,
    MeshingConfig,
    MethodConfig,
    NapConfig,
    NetworkConfig,
    PreparationConfig,
    ReconstructionConfig,
    TrainingConfig,
)
from recon.engine.device import fast_bf16, resolve_device
from recon.engine.methods import get_method
from recon.engine.runtime import cpu_count


@dataclass(frozen=True)
class Preset:
    """A named trade-off between time and quality: every config section it sets."""

    name: str
    """Registry name (the public `preset` parameter)."""
    network: NetworkConfig
    """The SDF network; its activation is the method's unless `smooth`."""
    training: TrainingConfig
    """The optimisation loop (step cap, batch, learning rate, time budget)."""
    meshing: MeshingConfig
    """Mesh extraction (resolution)."""
    preparation: PreparationConfig = field(default_factory=PreparationConfig)
    """Query sampling."""
    method_configs: Mapping[str, MethodConfig] = field(default_factory=dict)
    """Method configs by method name; a method not listed gets its config type's defaults."""
    smooth: bool = False
    """Every method trains a softplus network (beta 100, IGR's): a smooth field fits less of a
    noisy scan's noise."""
    fp32_on_cuda: bool = False
    """Keep fp32 matmuls on CUDA even where bf16 is fast (the published setting)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "method_configs", MappingProxyType(dict(self.method_configs)))


FAST = Preset(
    name="fast",
    network=NetworkConfig(hidden_layers=6, hidden_width=128, skip_layers=(3,)),
    training=TrainingConfig(
        max_iterations=3000, batch_size=2000, learning_rate=3e-3, warmup_iterations=100,
        time_budget_s=35.0, budget_growth_cap=3.0, plateau_window=250,
        plateau_min_iterations=1500,
    ),
    meshing=MeshingConfig(resolution=128),
    method_configs={"nap": NapConfig(adversarial_pass="linearised", warmup_fraction=0.1)},
)
"""Seconds to a minute on two CPU cores: a 6x128 ReLU network, 35 s or 3,000 steps."""

BALANCED = Preset(
    name="balanced",
    network=NetworkConfig(hidden_layers=4, hidden_width=128, skip_layers=(2,)),
    training=TrainingConfig(
        max_iterations=2500, batch_size=5000, learning_rate=4e-3, warmup_iterations=200,
        time_budget_s=260.0, budget_growth_cap=3.0, plateau_window=500,
        plateau_min_iterations=4000,
    ),
    meshing=MeshingConfig(resolution=256),
    method_configs={"nap": NapConfig(adversarial_pass="linearised", warmup_fraction=0.1)},
    smooth=True,
)
"""The CPU default: a 4x128 softplus network, 2,500 steps within 260 s, a 256^3 mesh."""

PAPER = Preset(
    name="paper",
    network=NetworkConfig(),
    training=TrainingConfig(max_iterations=40_000, batch_size=5000, warmup_iterations=1000),
    meshing=MeshingConfig(resolution=256),
    preparation=PreparationConfig(far_query_share=0.0),
    fp32_on_cuda=True,
)
"""The published Neural-Pull/NAP setting, sampler included: 8x256, 40,000 steps (a GPU's)."""

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (FAST, BALANCED, PAPER)}
"""The concrete presets by name."""

PRESET_NAMES = (*PRESETS, "auto")
"""Every name `build_config` accepts; `auto` is `paper` on CUDA and `balanced` on CPU."""


def resolve_preset(name: str, device: str) -> Preset:
    """The preset called `name` on the resolved `device` ("cpu" or "cuda").

    Raises
    ------
    ValueError
        On an unknown name (the message lists the valid ones).
    """
    if name == "auto":
        name = "paper" if device == "cuda" else "balanced"
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESET_NAMES)}")
    return PRESETS[name]


def build_config(
    method: str = "nap",
    preset: str = "auto",
    *,
    device: str = "auto",
    seed: int = 0,
    resolution: int | None = None,
    max_iterations: int | None = None,
    time_budget_s: float | None = None,
    surface: str = "closed",
    trim_distance: float | None = None,
    target_faces: int | None = None,
    up_axis: str = "y",
    units: str | None = None,
    use_normals: str = "auto",
) -> ReconstructionConfig:
    """The engine config for a method and preset.

    Raises
    ------
    ValueError
        On an unknown method, preset, device, surface, up axis, unit or use_normals (the message
        lists the valid names).
    """
    method_class = get_method(method)
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESET_NAMES)}")
    device = resolve_device(device)
    chosen = resolve_preset(preset, device)
    bf16 = fast_bf16(device) and not (chosen.fp32_on_cuda and device == "cuda")
    network = dataclasses.replace(
        chosen.network, activation="softplus" if chosen.smooth else method_class.activation)
    training = dataclasses.replace(
        chosen.training,
        matmul_precision="bf16" if bf16 else "fp32",
        num_threads=cpu_count() if device == "cpu" else None,
    )
    # A step count or budget asked for is kept exactly, whatever the cloud size. A budget is a
    # ceiling, not a target: the preset's step cap (grown with the cloud) still ends training,
    # since steps past it fit a noisy scan's noise and gain nothing on a clean one
    # (docs/ENGINE.md); an explicit step count lifts it.
    if time_budget_s is not None:
        training = dataclasses.replace(
            training, time_budget_s=time_budget_s, max_time_budget_s=time_budget_s)
    if max_iterations is not None:
        training = dataclasses.replace(training, max_iterations=max_iterations,
                                       budget_growth_cap=1.0)
    meshing = dataclasses.replace(chosen.meshing, surface=surface, target_faces=target_faces)
    if resolution is not None:
        meshing = dataclasses.replace(meshing, resolution=resolution)
    if trim_distance is not None:
        meshing = dataclasses.replace(meshing, trim_distance=trim_distance)
    method_config = chosen.method_configs.get(method) or method_class.config_type()
    return ReconstructionConfig(
        method=method, method_config=method_config, preset=chosen.name, device=device,
        seed=seed, preparation=chosen.preparation, network=network, training=training,
        meshing=meshing, frame=FrameConfig(up_axis=up_axis, units=units),
        use_normals=use_normals,
    )
