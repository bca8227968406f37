"""What a stage asks of an engine: the parameters of a relaxation, an MD segment and a NEB.

These objects are the engine protocol's vocabulary (:class:`ctaflow.engines.base.Engine`): stages
build them from their settings, engines turn them into atomate2 makers. Nothing here knows a stage
or a campaign. Units in the field names: eV/Å, K, ps, fs, GPa.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from ctaflow.analysis.minimum import (
    CHECK_FMAX_EV_PER_A,
    MAX_CYCLES,
    MINIMUM_TOLERANCE_EV,
    RATTLE_AMPLITUDE_A,
    RATTLES_PER_CYCLE,
)
from ctaflow.settings import Strict


class MinimumCheckParams(Strict):
    """Whether a relaxation ends in a minimum: rattle the relaxed structure (seeded), relax each
    copy again, continue from the lowest while the energy drops by more than the tolerance (see
    :mod:`ctaflow.analysis.minimum`, whose measured defaults these are)."""

    enabled: bool | None = Field(
        None,
        description="None: the engine's default (on for MLIP engines; off for VASP, where each "
        "check costs rattles × cycles more relaxations).",
    )
    rattle_a: float = Field(
        RATTLE_AMPLITUDE_A, gt=0, description="Gaussian rattle amplitude per component, Å."
    )
    rattles: int = Field(RATTLES_PER_CYCLE, ge=1, description="Rattled copies per cycle.")
    max_cycles: int = Field(MAX_CYCLES, ge=1, description="Cycles before giving up.")
    tolerance_ev: float = Field(
        MINIMUM_TOLERANCE_EV, gt=0, description="Largest drop (whole cell, eV) of a minimum."
    )
    fmax_ev_per_a: float = Field(
        CHECK_FMAX_EV_PER_A,
        gt=0,
        description="Force criterion of the checked relaxation and of every re-relaxation "
        "(the tighter of this and the relaxation's own), eV/Å.",
    )
    seed: int = Field(0, description="Seed of the rattles.")


class RelaxParams(Strict):
    """A relaxation: positions, and the cell unless ``relax_cell`` is off."""

    fmax_ev_per_a: float = Field(0.05, gt=0, description="Force criterion in eV/Å.")
    max_steps: int = Field(300, gt=0, description="Maximum number of optimiser steps.")
    relax_cell: bool = Field(True, description="Relax the cell as well as positions.")
    optimizer: Literal["FIRE", "BFGS", "LBFGS"] = "FIRE"
    minimum: MinimumCheckParams = Field(
        default_factory=MinimumCheckParams,
        description="Check that the relaxation ends in a minimum (rattle and re-relax).",
    )

    def relax_params(self, **update) -> RelaxParams:
        """Just the relaxation parameters (a subclass's extra fields dropped), with updates."""
        data = {name: getattr(self, name) for name in RelaxParams.model_fields}
        return RelaxParams(**{**data, **update})


class NEBParams(Strict):
    """A (climbing-image) nudged-elastic-band optimisation with a fixed cell."""

    climb: bool = Field(True, description="Climbing image on the highest image.")
    spring_ev_per_a2: float = Field(0.1, gt=0, description="Spring constant, eV/Å².")
    fmax_ev_per_a: float = Field(0.05, gt=0, description="NEB force criterion, eV/Å.")
    max_steps: int = Field(300, gt=0, description="Maximum NEB optimiser steps.")
    optimizer: Literal["FIRE", "BFGS", "LBFGS", "MDMin"] = "FIRE"


@dataclass
class MDSegment:
    """One segment of an MD protocol: ensemble, temperatures (K), pressure (GPa), length (ps)."""

    name: str
    ensemble: str
    temperature_start_k: float
    temperature_end_k: float
    duration_ps: float
    pressure_gpa: float = 0.0


@dataclass
class MDControls:
    """Integration settings shared by the segments of a protocol."""

    timestep_fs: float = 1.0
    sample_every: int = 10
    langevin_friction_per_ps: float = 10.0
    thermostat_damping_fs: float = 100.0
    barostat_damping_fs: float = 1000.0
    #: NPT integrator of the MLIP engines: "mtk" (ASE's MTK Nose-Hoover chains, samples NPT) or
    #: "berendsen" (first-order scaling of T and cell, no overshoot: equilibrates a density
    #: that starts far from its target, as a melt in a crystal's cell does; does not sample NPT)
    barostat: str = "mtk"
    #: isothermal compressibility for the Berendsen barostat, 1/GPa (sets its coupling)
    compressibility_per_gpa: float = 0.02

    def berendsen_npt_kwargs(self, pressure_gpa: float) -> dict[str, float]:
        """Keyword arguments of ASE's ``NPTBerendsen`` (ASE units) for these controls."""
        from ase import units

        return {
            "taut": self.thermostat_damping_fs * units.fs,
            "taup": self.barostat_damping_fs * units.fs,
            "pressure_au": pressure_gpa * units.GPa,
            "compressibility_au": self.compressibility_per_gpa / units.GPa,
        }


def steps_for(duration_ps: float, timestep_fs: float, sample_every: int) -> int:
    """Number of steps for a duration, rounded up to a multiple of ``sample_every``."""
    raw = max(1, round(duration_ps * 1000.0 / timestep_fs))
    return int(-(-raw // sample_every) * sample_every)
