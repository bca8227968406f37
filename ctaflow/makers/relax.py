"""The relaxation stage: an engine's relax job followed by a unit-carrying summary job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker
from pymatgen.core import Structure

from ctaflow.analysis.provenance import software_versions
from ctaflow.analysis.relax import RelaxResult, summarise_relaxation
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.engines.params import RelaxParams
from ctaflow.jobs import result_job


@result_job(RelaxResult)
def relax_summary(
    initial: Structure,
    final: Structure,
    energy_ev: float,
    forces_ev_per_a: list,
    fmax_target_ev_per_a: float,
    engine: dict[str, Any],
    initial_energy_ev: float | None = None,
    n_steps: int | None = None,
) -> RelaxResult:
    """Job wrapper around :func:`summarise_relaxation`."""
    return summarise_relaxation(
        initial,
        final,
        energy_ev,
        forces_ev_per_a,
        fmax_target_ev_per_a,
        engine,
        initial_energy_ev=initial_energy_ev,
        n_steps=n_steps,
        software=software_versions(),
    )


@dataclass
class RelaxStageMaker(Maker):
    """Relax a structure with an engine and summarise the result.

    Parameters
    ----------
    engine
        Any :class:`ctaflow.engines.base.Engine`; its ``relax_maker`` does the calculation.
    settings
        Relaxation settings (force criterion in eV/Å, steps, cell relaxation, optimiser): any
        :class:`~ctaflow.engines.params.RelaxParams`, e.g. the relax stage's settings.
    """

    engine: Engine = field(default_factory=default_engine)
    settings: RelaxParams = field(default_factory=RelaxParams)
    name: str = "relax"

    def make(self, structure: Structure) -> Flow:
        """Relax ``structure``; the flow's output is a :class:`RelaxResult`."""
        calc = self.engine.relax_maker(self.settings).make(structure)
        refs = self.engine.relax_outputs(calc)
        summary = relax_summary(
            structure,
            refs["structure"],
            refs["energy_ev"],
            refs["forces_ev_per_a"],
            self.settings.fmax_ev_per_a,
            self.engine.describe(),
            initial_energy_ev=refs.get("initial_energy_ev"),
            n_steps=refs.get("n_steps"),
        )
        summary.name = "relax summary"
        return Flow([calc, summary], output=summary.output, name=self.name)
