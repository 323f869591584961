"""Engine configuration: frozen dataclasses, every field documented, no magic numbers elsewhere.

Presets (`recon.engine.presets.build_config`) fill these in; the pipeline reads them. Lengths are
in the normalised frame (the input's bounding box mapped to a cube of side `unit_cube_side`)
unless a field says otherwise.
"""

from dataclasses import dataclass, field
from typing import Any

from recon.engine.formats.frame import UNITS_IN_METRES, UP_AXES


@dataclass(frozen=True)
class OutlierConfig:
    """Thresholds of the stray-point tests (recon.engine.outliers)."""

    neighbours: int = 16
    """Neighbours of each point in both tests (fewer when the cloud is smaller)."""
    isolation_ratio: float = 3.0
    """A point is isolated when its mean neighbour distance exceeds this many times ..."""
    isolation_quantile: float = 0.1
    """... this quantile of its neighbours' own mean neighbour distances, ..."""
    global_isolation_ratio: float = 10.0
    """... or this many times the median over the whole cloud (strays so many that their
    neighbours are mostly other strays)."""
    plane_sigmas: float = 4.0
    """A point is off the surface when its distance to its neighbours' best-fit plane exceeds this
    many times their root-mean-square distance to it ..."""
    plane_spacings: float = 0.75
    """... and this many times the local spacing (the neighbours' median mean neighbour distance),
    so a clean, sparse cloud whose neighbours fit a plane almost exactly keeps its points."""
    min_points: int = 64
    """Smaller clouds are left as they are: too few points to tell a stray from a feature."""
    chunk: int = 131_072
    """Points per batch of the neighbourhood computations (bounds memory on large clouds)."""


@dataclass(frozen=True)
class NormalConfig:
    """Normal estimation and orientation from the points (recon.engine.normals)."""

    neighbours: int = 10
    """Neighbours of each point: its plane fit, the orientation graph and the local spacing."""
    chunk: int = 131_072
    """Points per batch of the neighbourhood computations (bounds memory on large clouds)."""


@dataclass(frozen=True)
class PreparationConfig:
    """Normalisation, kNN scales and query sampling (docs/ENGINE.md, Preparation)."""

    unit_cube_side: float = 1.0
    """Longest side of the input's bounding box after normalisation."""
    remove_outliers: bool = True
    """Drop stray points before fitting (and say how many); the box is then the inliers'."""
    outliers: OutlierConfig = field(default_factory=OutlierConfig)
    """Thresholds of the stray-point tests."""
    normals: NormalConfig = field(default_factory=NormalConfig)
    """Estimated normals (for the sign prior) and local spacing (for trimming)."""
    knn_k: int = 50
    """sigma_p is the distance from p to its K-th nearest neighbour (capped at N - 1)."""
    sigma_floor: float = 1e-4
    """Lower bound on sigma_p so duplicated or clustered points never give a zero scale."""
    spread_base: float = 0.25
    """Query spread s = spread_base * sqrt(N / spread_reference_points), clipped below."""
    spread_reference_points: int = 20_000
    """Point count at which the query spread equals `spread_base`."""
    spread_min: float = 0.02
    """Lower clip of the query spread s."""
    spread_max: float = 8.0
    """Upper clip of the query spread s (reached at 20 million points). sigma_p shrinks as
    1/sqrt(N) on a surface, so s * sigma_p, the width of the query band, stays the same at every
    size below the clip; a clip at 1 narrowed the band 2.5-fold at 2,000,000 points, into the depth
    noise, and a fused bunny scan came out at CD1 x100 0.45 instead of 0.28."""
    far_query_share: float = 0.1
    """Fraction of the pool drawn uniformly in the cube of half-side `far_query_extent` instead
    of around the points: they pin the field far from the data, where Neural-Pull's narrow query
    band leaves it free to grow spurious sheets on sparse scans."""
    far_query_extent: float = 0.55
    """Half-side of the cube the far queries are drawn in, in units of `unit_cube_side` (the
    normalised cube plus a margin)."""
    total_queries: int = 1_000_000
    """Target number of training queries in the pool (bounded for huge clouds)."""
    min_queries_per_point: int = 1
    """Each (possibly subsampled) input point gets at least this many queries."""
    knn_chunk: int = 65_536
    """Points per cKDTree query chunk (bounds peak memory of the kNN step)."""


@dataclass(frozen=True)
class NetworkConfig:
    """The SDF MLP (defaults: the paper's 8x256 ReLU, skip at layer 4, weight norm, sphere init)."""

    hidden_layers: int = 8
    """Number of hidden layers."""
    hidden_width: int = 256
    """Units per hidden layer."""
    skip_layers: tuple[int, ...] = (4,)
    """Hidden layers whose input is concatenated with the network input (scaled by 1/sqrt(2))."""
    activation: str = "relu"
    """"relu" (Neural-Pull, NAP) or "softplus" (IGR, and every method under `balanced`)."""
    softplus_beta: float = 100.0
    """Beta of the softplus activation."""
    init_radius: float = 0.5
    """Geometric initialisation: the initial zero level set is a sphere of this radius."""
    init_output_std: float = 1e-5
    """Standard deviation of the output layer's weights around the geometric-init mean."""
    weight_norm: bool = True
    """Reparametrise every linear layer as W = g * v / |v| (row-wise)."""


@dataclass(frozen=True)
class TrainingConfig:
    """The optimisation loop (recon.engine.training)."""

    max_iterations: int = 40_000
    """Upper bound on optimiser steps."""
    batch_size: int = 5000
    """Queries per step."""
    learning_rate: float = 1e-3
    """Peak Adam learning rate."""
    min_learning_rate_factor: float = 0.0
    """The cosine schedule decays to peak * this factor at max_iterations."""
    warmup_iterations: int = 1000
    """Linear learning-rate warm-up length (capped at a tenth of max_iterations)."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam's moment decay rates."""
    time_budget_s: float | None = None
    """Stop training after this many seconds (the cosine schedule is stretched to fit it), for
    clouds of up to budget_reference_points points; larger clouds see budget_growth_cap."""
    budget_reference_points: int = 1000
    """Cloud size up to which time_budget_s applies unchanged."""
    budget_growth_cap: float = 1.0
    """Larger clouds train longer (time budget and max_iterations alike), by (points /
    budget_reference_points) ** (1/3) up to this factor: a denser scan carries more detail to
    fit (bunny, 20,000 noisy points, `fast`: CD1 x100 0.37 after 35 s, 0.31 after 90 s). 1 keeps
    both fixed."""
    max_time_budget_s: float | None = None
    """Ceiling on the grown budget: the worker sets it from the job's time limit, build_config to
    the budget asked for, which then stays exact while the step cap grows."""
    plateau_window: int = 500
    """Steps per window when comparing mean losses for early stopping; 0 disables it."""
    plateau_min_iterations: int = 2000
    """Never stop on a plateau before this many steps."""
    plateau_min_progress: float = 0.75
    """Nor before this share of the schedule: at a high learning rate the loss stalls on its own
    step noise (bunny dense, `fast`, seed 0, 75-87 it/s: a plateau allowed from the start stopped
    after 20 s at CD1 x100 0.51, from half-way at 0.40; from 0.75 it stopped at 0.296, and the
    whole budget gave 0.284)."""
    plateau_rel_tol: float = 0.002
    """Plateau when the mean loss improved by less than this fraction over the last window."""
    cancel_check_every: int = 1
    """Steps between calls of the cancellation check (the check must be cheap, e.g. an Event)."""
    progress_interval_s: float = 0.5
    """Seconds between on_step callbacks (the first and last step always report)."""
    matmul_precision: str = "fp32"
    """"fp32" or "bf16" (autocast of the hidden matmuls; CPUs with AMX, recent GPUs)."""
    full_precision_tail: float = 0.25
    """With bf16, the last fraction of steps (or time budget) runs in fp32 to polish the surface."""
    num_threads: int | None = None
    """torch intra-op threads on CPU (None: leave torch's default)."""


SURFACES = ("closed", "trimmed")
"""What `MeshingConfig.surface` may be."""


@dataclass(frozen=True)
class MeshingConfig:
    """Marching cubes over the padded box (recon.engine.meshing)."""

    resolution: int = 256
    """Grid points per axis of the fine grid."""
    padding: float = 0.1
    """Margin around the unit cube, as a fraction of its side, included in the grid."""
    iso_level: float = 0.0
    """Level set extracted by marching cubes."""
    chunk_points: int = 131_072
    """Grid points evaluated per network call (bounds peak memory)."""
    coarse_to_fine_min_resolution: int = 128
    """At or above this resolution the grid is evaluated coarse-to-fine."""
    min_piece_area_share: float = 1e-3
    """Separate pieces with less area than this share of the largest piece are dropped (specks
    around single noisy points); 0 keeps everything."""
    coarse_factor: int = 16
    """Coarsest node stride of coarse-to-fine (a power of two); it halves per level down to 1."""
    surface: str = "closed"
    """"closed": the zero level set closed against the box, watertight; "trimmed": the parts no
    input point supports removed (recon.engine.trimming), open where the scan is."""
    trim_distance: float = 1.5
    """`trimmed` keeps a face when its corners lie within this many local point spacings (mean
    distance to the `NormalConfig.neighbours` nearest points) of an input point. On the raw
    bunny scan bun000, 1 opens holes inside the data (input-to-mesh p95 0.43% of the diagonal
    against 0.37%) and 2 leaves a rim past its edge (1% of the area farther than 2% of the
    diagonal from every point, 0.2% at 1.5)."""
    target_faces: int | None = None
    """Decimate the final mesh to about this many faces (recon.engine.decimation); None keeps
    marching cubes' own density."""
    band_cells: float = 1.0
    """At each level, cells whose |sdf| comes within this many of their diagonals are refined.
    Every point of a cell lies within half a diagonal of a corner, so 0.5 suffices for an exact
    SDF; 1 covers fitted fields with gradient norms up to 2 (1.5 gave the same signs on the bench
    network with a third more evaluations)."""

    def __post_init__(self) -> None:
        if self.target_faces is not None and self.target_faces < 4:
            raise ValueError(f"target_faces must be at least 4, got {self.target_faces}")
        if self.surface not in SURFACES:
            raise ValueError(f"unknown surface {self.surface!r}; valid: {', '.join(SURFACES)}")
        factor = self.coarse_factor
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"coarse_factor must be a power of two, got {factor}")


@dataclass(frozen=True)
class SignPriorConfig:
    """When and how hard the field is held to a side of the surface (recon.engine.methods.
    sign_prior). It stays off while the field keeps the sign its initialisation gave it, as on
    every closed shape measured, and turns on when an open scan's field turns unsigned."""

    enabled: bool = True
    """Watch the field's sign (and enforce it when lost)."""
    min_points: int = 5000
    """Smaller clouds are not watched: their estimated orientations are unreliable (1,000-point
    clouds had 6-42% of normals flipped), and sparse uniform samples keep their sign anyway."""
    check_from: float = 0.3
    """First check at this share of training. Earlier, a closed shape's field is still forming
    and often crosses at under half the points (a 50,000-point fused scan of the dragon: 0.31-0.69
    up to 0.38 of training, 0.80 and more from 0.42); an open scan's has lost its sign by then
    (the raw scan bun000: 0.33 at 0.3, 0.04 from 0.5)."""
    check_every: float = 0.04
    """Later checks every this share of training."""
    check_points: int = 2000
    """Input points probed at each check (an even stride through the cloud, no random draw)."""
    offset: float = 2.0
    """Probes sit this many local spacings to either side of a point, along its normal."""
    min_fitted_share: float = 0.5
    """A check counts once the field is near zero (within the offset) at this share of points..."""
    min_crossing_share: float = 0.5
    """... and the field's sign differs between the two probes at fewer than this share of them
    (the fused dragon: 0.60 at the least from 0.3 of training; the closed bunny 0.96)."""
    max_negative_share: float = 0.12
    """... and the field is negative at under this share of a lattice over the points' box. Open
    sheets that lost their sign: 0.003-0.085 at the checks that count (raw scans bun000, bun045;
    the wave sheet of tests/engine/test_open_surfaces.py); closed fused scans 0.15-0.28 from the
    first check, even a 2,000,000-point one whose probes cross at under half the points."""
    lattice_size: int = 24
    """Lattice nodes per axis of that box."""
    unsigned_checks: int = 2
    """Consecutive counting checks that turn the prior on (it then stays on)."""
    weight: float = 3.0
    """Weight of the penalty mean(relu(-f(p + d n)) + relu(f(p - d n))) added to the loss. Where
    the estimated normals or thin parts leave the penalty unmet it pulls against the fit: on the
    raw scan bun000 (`fast`, seed 0) 10 gave input-to-mesh p95 0.57% of the diagonal, 3 0.33% and
    1 0.24-0.29%, but 1 once left a separate closed piece with 4% of the area."""
    batch_size: int = 2000
    """Points per step in the penalty."""


@dataclass(frozen=True)
class FrameConfig:
    """The input's frame. GLB is written in metres and Y-up, as glTF requires (a Z-up input maps
    (x, y, z) to (x, z, -y): a rotation, never a mirror); PLY, OBJ and STL keep the input's frame
    and units."""

    up_axis: str = "y"
    """The input's up axis: "y" (nothing rotates) or "z"."""
    units: str | None = None
    """The input's unit, a key of UNITS_IN_METRES; None: not given, read as metres."""
    millimetre_hint_diagonal: float = 100.0
    """Without `units`, a cloud whose bounding-box diagonal exceeds this gets a warning that it
    is probably in millimetres (a 10 cm object in mm would open 100 m wide)."""

    def __post_init__(self) -> None:
        if self.up_axis not in UP_AXES:
            raise ValueError(f"unknown up axis {self.up_axis!r}; valid: {', '.join(UP_AXES)}")
        if self.units is not None and self.units not in UNITS_IN_METRES:
            raise ValueError(f"unknown units {self.units!r}; valid: "
                             f"{', '.join(UNITS_IN_METRES)}")


@dataclass(frozen=True)
class ColourConfig:
    """How mesh vertices take the input's colours (recon.engine.colours)."""

    neighbours: int = 4
    """Input points averaged per vertex, weighted by inverse distance (1: the nearest point's)."""
    min_distance: float = 1e-6
    """Distances are floored at this share of the largest, so a vertex on a point takes mostly
    its colour without dividing by zero."""


USE_NORMALS = ("auto", "yes", "no")
"""Whether a run uses the input's own normals (recon.engine.methods.input_normals)."""


@dataclass(frozen=True)
class InputNormalConfig:
    """How Neural-Pull and NAP use the input's own normals (recon.engine.methods.input_normals)."""

    decide_at: float = 0.1
    """With "auto", the share of training after which agreement with the field is measured."""
    min_agreement: float = 0.5
    """Mean cosine between grad f and the normals at which "auto" uses them (consistent normals
    agree at 0.9 and more once the field has taken shape, flipped ones at -0.9)."""
    check_points: int = 2000
    """Points where the agreement is measured (an even stride through the cloud)."""
    weight: float = 0.1
    """Weight of mean(1 - cos(grad f(p), n_p)) added to the loss. On the 1,000-point bunny with
    its true normals (NAP, `fast`'s network, 1,000 steps), CD1 x100 0.797 without them, 0.751 at
    0.1 and 0.765 at 0.3; 1 held the pull back (1.15). sparse_noisy: 0.850 against 0.801."""
    batch_size: int = 500
    """Points per step in the alignment term (2,000 cost 2.5 times the step for the same fit as
    500 or 200)."""


@dataclass(frozen=True)
class NeuralPullConfig:
    """Neural-Pull: pull queries onto the surface along the normalised gradient."""

    gradient_eps: float = 1e-12
    """Added to |grad f| before normalising it."""
    sign: SignPriorConfig = field(default_factory=SignPriorConfig)
    """The sign prior that keeps an open scan's field signed."""
    input_normals: InputNormalConfig = field(default_factory=InputNormalConfig)
    """How the input's own normals are used, when it has them."""


@dataclass(frozen=True)
class NapConfig(NeuralPullConfig):
    """NAP: Neural-Pull plus one-step spatial adversaries mixed by learned loss weights."""

    rho_factor: float = 0.01
    """Adversarial radius rho_q = rho_factor * sigma of the query's target point."""
    adversarial_share: float = 1.0
    """Fraction of each batch that also gets an adversarial copy."""
    warmup_fraction: float = 0.0
    """First fraction of the steps (or time budget) trains Neural-Pull only."""
    second_order: str = "closed_form"
    """"closed_form" (reuses the clean pass; exact for ReLU, first order in f for softplus) or
    "autograd" (double backward, exact for any activation)."""
    adversarial_pass: str = "network"
    """How the adversarial query is evaluated: "network" (a second pass of f at q + delta, as
    published) or "linearised" (the clean pass moved by delta: exact for ReLU while q + delta stays
    in q's activation region, first order in f for softplus; costs no second pass)."""
    initial_weight: float = 1.0
    """Initial value of both uncertainty weights a and b."""


@dataclass(frozen=True)
class IgrConfig:
    """IGR: manifold, normal and eikonal terms."""

    normal_weight: float = 1.0
    """Weight of |grad f - n| on points with normals."""
    eikonal_weight: float = 0.1
    """Weight of (|grad f| - 1)^2 on samples."""
    local_sigma_k: int = 50
    """Gaussian samples around points use sigma = distance to this K-th neighbour."""
    uniform_share: float = 1.0 / 9.0
    """Eikonal samples drawn uniformly in the padded box, relative to the local ones."""
    box_padding: float = 0.1
    """Margin of the uniform-sample box, as a fraction of the unit-cube side."""


MethodConfig = NeuralPullConfig | NapConfig | IgrConfig


@dataclass(frozen=True)
class ReconstructionConfig:
    """Everything one reconstruction needs besides the point cloud."""

    method: str = "nap"
    """Registry name of the method ("nap", "neural-pull", "igr")."""
    method_config: Any = field(default_factory=NapConfig)
    """The method's own config (NapConfig, NeuralPullConfig or IgrConfig)."""
    preset: str = "custom"
    """Name of the preset that built this config (reported in the metrics)."""
    device: str = "cpu"
    """Resolved torch device ("cpu" or "cuda")."""
    seed: int = 0
    """Seed of every random draw (queries, batches, init); same seed, same mesh on one device."""
    preparation: PreparationConfig = field(default_factory=PreparationConfig)
    """Normalisation and query sampling."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    """The SDF network."""
    training: TrainingConfig = field(default_factory=TrainingConfig)
    """The optimisation loop."""
    meshing: MeshingConfig = field(default_factory=MeshingConfig)
    """Mesh extraction."""
    colours: ColourConfig = field(default_factory=ColourConfig)
    """Vertex colours, when the input has colours."""
    frame: FrameConfig = field(default_factory=FrameConfig)
    """The input's up axis and units (the GLB's frame follows from them)."""
    use_normals: str = "auto"
    """The input's own normals: "auto" (used when they agree with the fitted field), "yes" or
    "no" (recon.engine.methods.input_normals; IGR uses them unless "no")."""
    metrics_samples: int = 100_000
    """Surface samples per side for ground-truth metrics."""
    time_limit_s: float | None = None
    """The whole reconstruction (prepare to metrics) must end within this many seconds:
    training is capped and the mesh resolution lowered as needed (recon.engine.time_plan).
    None: no limit beyond the training budget."""

    def __post_init__(self) -> None:
        if self.use_normals not in USE_NORMALS:
            raise ValueError(f"unknown use_normals {self.use_normals!r}; valid: "
                             f"{', '.join(USE_NORMALS)}")
