"""Stage settings: what a campaign file's ``stages:`` entries may say, one model per stage.

Units are in the field names (``_ev``, ``_ev_per_a``, ``_k``, ``_fs``, ``_ps``) or the
descriptions; every model forbids unknown keys. The stage registry (:mod:`ctaflow.stages`) names
each stage's model; :class:`ctaflow.campaign.schema.CampaignSettings` collects them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ctaflow.engines.params import MinimumCheckParams, NEBParams, RelaxParams
from ctaflow.settings import Strict


class StageSettings(Strict):
    """Settings every stage has."""

    enabled: bool = Field(True, description="Whether this stage runs.")
    engine: str = Field(
        "labeller", description="Name of the engine (a key of `engines`) this stage runs on."
    )


class RelaxStageSettings(StageSettings, RelaxParams):
    """Relaxation of the input structure (positions, and the cell unless ``relax_cell`` is off);
    the relaxation parameters are :class:`~ctaflow.engines.params.RelaxParams`."""


class MDStageSettings(StageSettings):
    """Production MD protocol of the study: NPT at ``equilibrate_temperature_k`` for
    ``equilibrate_ps``, NPT cooling to each production temperature over ``cool_ps``, then NVT
    at that temperature for ``production_ps``. Study values: 600 K, 100 / 100 / 200 ps, 1 fs.

    Each run measures what it is for (issue #24): the equilibration is extended by further
    ``equilibrate_ps`` segments (at most ``equilibrate_extensions``) until its temperature and
    pressure running means are on target; the cooling segment is left out at the equilibration
    temperature; each production run is extended until the tracer MSD of the mobile species
    reaches ``msd_target_a2`` (default: the squared hop length, about one hop per ion) or
    ``max_production_ps``. A structure at rest starts at twice the target temperature (see
    :mod:`ctaflow.engines.md_start`). Segments shorter than a few thermostat times
    (``thermostat_damping_fs``, 1/``langevin_friction_per_ps``) or barostat times miss their
    targets: on the demo cell, 1.0 / 0.5 / 0.5 ps (equilibrate / cool / production) were the
    shortest that reached them."""

    supercell_min_width_a: float = Field(
        10.0, gt=0, description="Smallest distance between opposite cell faces, Å."
    )
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between stored frames.")
    equilibrate_temperature_k: float = Field(600.0, gt=0)
    equilibrate_ensemble: Literal["npt", "nvt"] = Field(
        "npt",
        description="Ensemble of the equilibration and cooling segments. nvt keeps the starting "
        "(relaxed) volume: for force fields trained without stresses or volume changes, whose "
        "barostat runs away (the production is NVT either way).",
    )
    equilibrate_ps: float = Field(100.0, gt=0, description="Each equilibration segment, ps.")
    equilibrate_extensions: int = Field(
        3,
        ge=0,
        description="Further equilibrate_ps segments while the running means are off target "
        "(0: one segment; its check is reported either way).",
    )
    cool_ps: float = Field(100.0, gt=0)
    production_ps: float = Field(
        200.0, gt=0, description="First production segment, and the shortest extension, ps."
    )
    max_production_ps: float = Field(
        1000.0, gt=0, description="Longest production run at one temperature (all segments), ps."
    )
    msd_target_a2: float | None = Field(
        None,
        gt=0,
        description="Tracer MSD (Å²) at which a production run stops; default: the squared "
        "hop length of each mobile species (shortest distance between its sites).",
    )
    temperatures_k: list[float] = Field(
        default_factory=lambda: [300.0],
        min_length=1,
        description="NVT production temperatures, K (three or more give an Arrhenius fit).",
    )
    pressure_gpa: float = Field(1e-4, description="NPT pressure, GPa (1e-4 GPa = 1 bar).")
    langevin_friction_per_ps: float = Field(10.0, gt=0, description="NVT Langevin friction.")
    thermostat_damping_fs: float = Field(100.0, gt=0, description="NPT thermostat time, fs.")
    barostat_damping_fs: float = Field(1000.0, gt=0, description="NPT barostat time, fs.")
    start_fmax_ev_per_a: float | None = Field(
        0.05,
        gt=0,
        description="Before the first segment, relax the positions of the MD cell (fixed cell) "
        "on the MD engine to this force criterion, eV/Å; None: start from the cell as built. "
        "A cell at rest starts at twice the target temperature, which is right only at a "
        "minimum: the demo's cell with two unrelaxed interstitials averaged 1,117 K in its "
        "first 1,000 K segment.",
    )
    start_max_steps: int = Field(300, gt=0, description="Optimiser steps of that relaxation.")
    seed: int = Field(0, description="Seed of velocities and stochastic forces.")

    @model_validator(mode="after")
    def _production_limit(self) -> MDStageSettings:
        if self.max_production_ps < self.production_ps:
            raise ValueError(
                f"max_production_ps ({self.max_production_ps:g}) is shorter than production_ps "
                f"({self.production_ps:g}); raise max_production_ps"
            )
        return self


class TransportStageSettings(Strict):
    """Diffusion and conductivity from the production trajectories (kinisi); only runs that
    pass the regime checks (MSD target, log-log slope 1, crystal intact, temperature on target)
    enter the Arrhenius fit (:func:`ctaflow.analysis.arrhenius.checked_arrhenius`)."""

    enabled: bool = True
    species: list[str] | None = Field(
        None, description="Ions analysed; default: species on sites with site_class 'mobile'."
    )
    by_site_class: bool = Field(True, description="Also analyse each site class separately.")
    fit_start_ps: float | None = Field(None, description="MSD fit window start, ps.")
    fit_end_ps: float | None = Field(None, description="MSD fit window end, ps.")
    collective: bool = Field(False, description="Also fit the charge (collective) diffusivity.")
    n_samples: int = Field(1000, ge=10, description="MCMC steps kept per walker.")
    n_walkers: int = Field(32, ge=4)
    min_msd_a2: float | None = Field(
        None,
        gt=0,
        description="MSD (Å²) the fit window must reach to count as transport; default: "
        "stages.md.msd_target_a2, else the squared hop length.",
    )
    slope_tolerance: float = Field(
        0.25, gt=0, lt=1, description="Allowed |log-log slope of the MSD − 1| in the fit window."
    )
    min_temperatures: int = Field(
        3, ge=2, description="Fewest passing temperatures for an Arrhenius fit."
    )
    seed: int = 0


class AmorphousStageSettings(StageSettings):
    """Melt–quench amorphous samples and the crystalline reference of every composition of the
    series (or of the structure alone without a series), all with one engine; ΔE(amorphous −
    crystalline) in meV/atom and formation energies from elemental references.

    Each composition: supercell → relaxation (the crystalline reference, cell + positions) →
    melt at ``melt_temperature_k`` for ``melt_ps`` (``melt_start: random``: one melt per sample,
    from its own random positions in the crystal's cell) → per sample (seed): hold for
    ``hold_ps``, quench to ``quench_end_temperature_k`` at ``quench_rate_k_per_ps`` (melt, hold
    and quench in ``ensemble``: NVT, or NPT at ``pressure_gpa``), relaxation
    of cell and positions. The study gives no melt–quench numbers; the defaults are common choices
    for oxides, not the study's."""

    supercell_min_width_a: float = Field(10.0, gt=0, description="Cell size, Å.")
    melt_temperature_k: float = Field(3000.0, gt=0, description="Melt and hold temperature, K.")
    melt_start: Literal["crystal", "random"] = Field(
        "crystal",
        description="crystal: one melt from the relaxed crystal, shared by the samples; random: "
        "every sample melts from its own random positions in the crystal's cell (no "
        "superheating of a perfect small cell; see ctaflow.structures.random_packing).",
    )
    random_min_distance_fraction: float = Field(
        0.7,
        gt=0,
        lt=1,
        description="random start: every pair at least this fraction of the crystal's shortest "
        "distance of that pair of elements.",
    )
    melt_ps: float = Field(
        5.0, gt=0, description="Melt (from the crystal: shared by the samples; random: each), ps."
    )
    hold_ps: float = Field(2.0, gt=0, description="Per-sample hold in the melt (decorrelates), ps.")
    quench_rate_k_per_ps: float = Field(100.0, gt=0, description="Cooling rate, K/ps.")
    quench_end_temperature_k: float = Field(300.0, gt=0, description="End of the quench, K.")
    ensemble: Literal["nvt", "npt"] = Field(
        "nvt",
        description="Ensemble of melt, hold and quench. nvt: in the crystal's cell (a liquid at "
        "the crystal's density is under pressure: 9-18 GPa for the demo's antiperovskites at "
        "2,500-3,000 K, which raises their melting point); npt: at ``pressure_gpa`` with "
        "``barostat`` (isotropic; Berendsen also replaces the Langevin thermostat), the "
        "liquid and the glass find their own density, and the campaign-trained model's "
        "labelling and exploration of the melt run NPT too.",
    )
    pressure_gpa: float = Field(0.0, description="Pressure of the npt melt–quench, GPa.")
    barostat: Literal["berendsen", "mtk"] = Field(
        "berendsen",
        description="npt integrator (MLIP engines): berendsen scales T and cell towards their "
        "targets without overshoot (a melt that starts in the crystal's cell at 9-18 GPa); "
        "mtk (Nose-Hoover chains, 1 ps barostat) swung the demo's liquids to 2-3x the "
        "crystal's volume within 1 ps (CHGNet, 0 GPa, 1,500-2,000 K, measured 2026-12-05).",
    )
    barostat_damping_fs: float = Field(200.0, gt=0, description="npt barostat time, fs.")
    n_samples: int = Field(3, ge=1, description="Independent samples per composition.")
    sample_retries: int = Field(
        1,
        ge=0,
        description="A sample whose glass fails a check (not melted, not amorphous, unstable, "
        "failed) is made again with a new seed (a new random start, or a new hold from the "
        "shared melt), up to this many times; every attempt is kept and reported.",
    )
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between stored frames.")
    langevin_friction_per_ps: float = Field(10.0, gt=0)
    network_species: list[str] | None = Field(
        None,
        description="Network formers for the melt check (e.g. [Si]); default: the elements on "
        "sites of class framework.",
    )
    min_msd_a2: float = Field(
        2.0, gt=0, description="Network-former MSD over melt + hold that counts as melted, Å²."
    )
    max_long_range_order: float = Field(
        0.25, gt=0, lt=1, description="Largest Bragg order parameter that counts as amorphous."
    )
    fmax_ev_per_a: float = Field(0.05, gt=0, description="Force criterion of the relaxations.")
    max_steps: int = Field(500, gt=0, description="Optimiser steps of each relaxation.")
    relax_cell: bool = Field(
        True,
        description="Relax the cells of the crystalline reference, the glasses and the solid "
        "elements (off: fixed cells, the glass at the crystal's density). The campaign-trained "
        "model needs stages.mlff.stress_weight > 0 for it.",
    )
    optimizer: Literal["FIRE", "BFGS", "LBFGS"] = "FIRE"
    cell_engine: str | None = Field(
        None,
        description="An engine (by name, e.g. labeller) that first relaxes the cell and positions "
        "of every composition; the stage's engine then works in that cell. Without it, with "
        "relax_cell false, every member of a series keeps the cell of the structure it was "
        "substituted in (the Li end in the Na compound's cell): a campaign-trained model never "
        "saw that cell (the training data relax every member with the labeller).",
    )
    elemental_references: bool = Field(
        True, description="Relax elemental references with the same engine for formation energies."
    )
    minimum: MinimumCheckParams = Field(
        default_factory=MinimumCheckParams,
        description="Minimum check of each crystalline reference (rattle and re-relax).",
    )
    seed: int = 0

    def relax_settings(self, relax_cell: bool = True, check: bool = False) -> RelaxParams:
        """The relaxation settings of the crystalline reference (``check``: with the minimum
        check, whose search is ``minimum``), the glasses and the elements (without: a glass is
        one of many local minima, and the elements only give formation energies). The cell is
        relaxed when ``relax_cell`` and the stage's own ``relax_cell`` say so."""
        minimum = self.minimum if check else self.minimum.model_copy(update={"enabled": False})
        return RelaxParams(
            fmax_ev_per_a=self.fmax_ev_per_a,
            max_steps=self.max_steps,
            relax_cell=relax_cell and self.relax_cell,
            optimizer=self.optimizer,
            minimum=minimum,
        )

    @model_validator(mode="after")
    def _quench_cools(self) -> AmorphousStageSettings:
        if self.quench_end_temperature_k >= self.melt_temperature_k:
            raise ValueError(
                f"quench_end_temperature_k ({self.quench_end_temperature_k:g} K) must be below "
                f"melt_temperature_k ({self.melt_temperature_k:g} K)"
            )
        return self


class NEBStageSettings(StageSettings, NEBParams):
    """Climbing-image NEB barriers of the mobile ion: single vacancy hops and concerted two-ion
    moves, for the host's mobile species and for each species in ``swap`` put on its sites."""

    species: str | None = Field(
        None, description="Mobile species of the structure; default: structure.classify.species."
    )
    swap: list[str] = Field(
        default_factory=list,
        description="Species that replace the mobile ions (all mobile sites) for the same hops.",
    )
    mechanisms: list[Literal["vacancy", "concerted"]] = Field(
        default_factory=lambda: ["vacancy", "concerted"], min_length=1
    )
    max_hop_length_a: float = Field(4.0, gt=0, description="Longest hop considered, Å.")
    n_hops: int = Field(1, ge=1, description="Symmetry-distinct hops computed, shortest first.")
    min_image_distance_a: float = Field(
        8.0, gt=0, description="Supercell face width: periodic images of a moving ion, Å."
    )
    images: int | None = Field(
        None,
        ge=1,
        description="Intermediate images of each band; None: from the path length "
        "(images_per_a × the summed displacement of the moving ions, odd, ≥ min_images).",
    )
    images_per_a: float = Field(
        1.5, gt=0, description="Images per Å of path when images is None (1/Å)."
    )
    min_images: int = Field(3, ge=1, description="Fewest intermediate images when images is None.")
    grow_cell_for_concerted: bool = Field(
        True,
        description="Grow the NEB supercell until every concerted two-ion chain spans less than "
        "half of it (a real simultaneous move, not one that reaches its own periodic image); "
        "off: a chain that does not fit runs in the cell as it is and its barrier is flagged "
        "with the width it needs.",
    )
    interpolation: Literal["idpp", "linear"] = "idpp"
    min_atom_distance_a: float = Field(
        1.0, gt=0, description="Interpolated images may not bring two atoms closer, Å."
    )
    endpoint_fmax_ev_per_a: float = Field(
        0.05, gt=0, description="Force criterion of the fixed-cell endpoint relaxations, eV/Å."
    )
    endpoint_max_steps: int = Field(300, gt=0)
    endpoint_rattle_a: float = Field(
        0.05,
        ge=0,
        description="Random displacement (Å, seeded) of every atom before the end points relax, "
        "so a relaxation cannot stay on a symmetric saddle; 0 = off.",
    )
    seed: int = Field(0, description="Seed of the end-point rattle.")
    minimum: MinimumCheckParams = Field(
        default_factory=MinimumCheckParams,
        description="Minimum check of the hosts and of every band end point: a barrier is "
        "valid only between checked minima.",
    )

    def endpoint_relax(self) -> RelaxParams:
        """Fixed-cell relaxation settings of the band end points, with their minimum check."""
        return RelaxParams(
            fmax_ev_per_a=self.endpoint_fmax_ev_per_a,
            max_steps=self.endpoint_max_steps,
            relax_cell=False,
            optimizer="FIRE",
            minimum=self.minimum,
        )


class InterfaceStageSettings(StageSettings):
    """Electrolyte | alkali-metal interfaces (study: crystalline and amorphous electrolyte against
    Li metal, MD at 500 K for 1,000 fs, then minimisation; ctaflow does Na and Li alike).

    Periodic stack without vacuum (two interfaces per cell, γ per interface); the metal takes all
    the lattice mismatch; bulk references with the same engine, the metal one strained in-plane as
    in the interface and relaxed along the normal (see :mod:`ctaflow.analysis.interfaces`).
    The study uses a universal MLIP here (its trained force field never saw metal).
    """

    metals: list[Literal["Na", "Li"]] = Field(
        default_factory=lambda: ["Na", "Li"], min_length=1, description="bcc metal electrodes."
    )
    phases: list[Literal["crystalline", "amorphous"]] = Field(
        default_factory=lambda: ["crystalline", "amorphous"],
        min_length=1,
        description="Electrolyte phases; amorphous samples come from stages.amorphous.",
    )
    miller: tuple[int, int, int] = Field((0, 0, 1), description="Crystalline electrolyte plane.")
    termination: int = Field(0, ge=0, description="Index into pymatgen's slab terminations.")
    electrolyte_thickness_a: float = Field(10.0, gt=0, description="Minimum slab thickness, Å.")
    amorphous_repeats: int = Field(1, ge=1, description="Amorphous cell repeats along c.")
    metal_miller: tuple[int, int, int] = Field((1, 1, 0), description="bcc metal plane.")
    metal_thickness_a: float = Field(8.0, gt=0, description="Minimum metal slab thickness, Å.")
    metal_lattice_a: dict[Literal["Na", "Li"], float] = Field(
        default_factory=dict,
        description="Given bcc lattice parameters, Å; metals not listed are relaxed by the engine.",
    )
    max_strain_pct: float = Field(5.0, gt=0, description="Largest metal strain allowed, %.")
    max_area_a2: float = Field(200.0, gt=0, description="Largest interface area, Å².")
    gap_a: float = Field(2.0, gt=0, description="Electrolyte-metal distance as built, Å.")
    vacuum_a: float = Field(
        0.0, ge=0, description="Must be 0: γ from bulk references needs the periodic stack."
    )
    anneal_temperature_k: float = Field(500.0, gt=0, description="NVT (Langevin) MD, K.")
    anneal_fs: float = Field(1000.0, gt=0, description="Length of the MD, fs.")
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between stored frames.")
    langevin_friction_per_ps: float = Field(10.0, gt=0)
    fmax_ev_per_a: float = Field(0.05, gt=0, description="Force criterion of the interface.")
    reference_fmax_ev_per_a: float = Field(
        0.01,
        gt=0,
        description="Force criterion of the small bulk references (metal, strained metal, "
        "electrolyte); the bcc lattice parameter, hence the strain, depends on it.",
    )
    max_steps: int = Field(300, gt=0, description="Maximum optimiser steps per relaxation.")
    optimizer: Literal["FIRE", "BFGS", "LBFGS"] = "FIRE"
    relax_cell_normal: bool = Field(
        False, description="Also relax the interface cell's length along the normal."
    )
    seed: int = Field(0, description="Seed of MD velocities and Langevin forces.")
    minimum: MinimumCheckParams = Field(
        default_factory=MinimumCheckParams,
        description="Minimum check of the bulk references and of each relaxed interface.",
    )

    @field_validator("vacuum_a")
    @classmethod
    def _periodic_only(cls, vacuum: float) -> float:
        if vacuum > 0:
            raise ValueError(
                "vacuum_a must be 0: with vacuum the bulk-referenced excess energy also holds two "
                "free surfaces, so it is not γ; the stage uses the periodic stack (2 interfaces)"
            )
        return vacuum

    @field_validator("miller", "metal_miller")
    @classmethod
    def _plane(cls, miller: tuple[int, int, int]) -> tuple[int, int, int]:
        if not any(miller):
            raise ValueError("a Miller index needs a non-zero entry, e.g. [0, 0, 1]")
        return miller

    def build_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`ctaflow.structures.interfaces.build_interface` that
        these settings give (the metal's lattice parameter is the caller's: its relaxed bulk,
        or ``metal_lattice_a`` when cells are only counted)."""
        return {
            "miller": tuple(self.miller),
            "termination": self.termination,
            "electrolyte_thickness_a": self.electrolyte_thickness_a,
            "metal_miller": tuple(self.metal_miller),
            "metal_thickness_a": self.metal_thickness_a,
            "max_strain_pct": self.max_strain_pct,
            "max_area_a2": self.max_area_a2,
            "gap_a": self.gap_a,
            "vacuum_a": self.vacuum_a,
            "amorphous_repeats": self.amorphous_repeats,
        }

    def relax(
        self, relax_cell: bool = False, max_steps: int | None = None, reference: bool = False
    ) -> RelaxParams:
        """Relaxation settings of the interface (``reference``: of a bulk reference), with the
        minimum check; a single point (``max_steps=1``: the as-built energy, a given metal
        lattice) is not checked."""
        single_point = max_steps == 1
        return RelaxParams(
            fmax_ev_per_a=self.reference_fmax_ev_per_a if reference else self.fmax_ev_per_a,
            max_steps=max_steps or self.max_steps,
            relax_cell=relax_cell,
            optimizer=self.optimizer,
            minimum=self.minimum.model_copy(update={"enabled": False})
            if single_point
            else self.minimum,
        )


class ExchangeStageSettings(StageSettings):
    """MD of a Na-rich | Li-rich stack of the substitution series' end members (study: a large
    Na5SmSi4O12 | Li5SmSi4O12 MD) and the ion-exchange series: Li on former mobile / pillar Na
    sites of the Na-rich block, framework displacement. Needs ``series``."""

    supercell_min_width_a: float = Field(
        8.0, gt=0, description="Face width of each block's supercell, Å."
    )
    temperature_k: float = Field(600.0, gt=0, description="NVT (Langevin) temperature, K.")
    md_ps: float = Field(10.0, gt=0, description="Length of the MD, ps.")
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between stored (analysed) frames.")
    langevin_friction_per_ps: float = Field(10.0, gt=0)
    site_cutoff_a: float = Field(1.2, gt=0, description="Ion-to-site assignment radius, Å.")
    seed: int = 0
