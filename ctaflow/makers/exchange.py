"""The exchange stage: MD of a Na-rich | Li-rich electrolyte stack and the ion-exchange series.

Graph::

    supercell (in-plane width) ─► series end members (Na-rich x=0, Li-rich x=1) ─► stack ─►
    NVT MD with the engine (trajectory → data store) ─► exchange series (Li on former mobile /
    pillar Na sites of the Na-rich block, framework displacement)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker, job
from pymatgen.core import Structure

from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.exchange import ExchangeResult, exchange_series
from ctaflow.analysis.md import MDResult
from ctaflow.analysis.provenance import software_versions
from ctaflow.campaign.sources import SeriesSettings
from ctaflow.campaign.stages import ExchangeStageSettings
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.engines.params import MDControls, MDSegment, steps_for
from ctaflow.jobs import result_job
from ctaflow.structures.exchange import stacked_exchange_cell
from ctaflow.structures.series import substitution_series
from ctaflow.structures.supercell import make_supercell


@job
def exchange_stack_job(structure: Structure, settings: dict, series: dict) -> Structure:
    """The in-plane supercell, the series end members on it, stacked (A Na-rich, B Li-rich)."""
    cell = make_supercell(structure, settings["supercell_min_width_a"])
    ends = substitution_series(cell, **{**series, "n_compositions": 2, "n_samples": 1})
    return stacked_exchange_cell(ends.members[0].structure, ends.members[-1].structure)


@result_job(ExchangeResult)
def exchange_result_job(md: Any, stack: Structure, settings: dict, engine: dict) -> ExchangeResult:
    """The exchange series of a finished MD run of the stack."""
    md = md if isinstance(md, MDResult) else MDResult.model_validate(md)
    arrays = join_chunks(md.trajectory)
    series = exchange_series(
        arrays["positions_a"],
        arrays["cells_a"],
        arrays["times_fs"],
        stack.site_properties,
        [site.specie.symbol for site in stack],
        cutoff_a=settings["site_cutoff_a"],
    )
    first = [s for s, b in zip(stack, stack.site_properties["block"], strict=True) if b == "A"]
    second = [s for s, b in zip(stack, stack.site_properties["block"], strict=True) if b == "B"]
    return ExchangeResult(
        first_composition=Structure.from_sites(first).composition.reduced_formula,
        second_composition=Structure.from_sites(second).composition.reduced_formula,
        n_atoms=len(stack),
        temperature_k=settings["temperature_k"],
        duration_ps=md.duration_ps,
        md_mean_temperature_k=md.mean_temperature_k,
        series=series,
        final_li_on_sites={k: v[-1] for k, v in series.li_on_sites.items()},
        final_framework_displacement_a=series.framework_mean_displacement_a[-1],
        engine=engine,
        settings=settings,
        software=software_versions(),
    )


@dataclass
class ExchangeStageMaker(Maker):
    """Na-rich | Li-rich stack, NVT MD at ``settings.temperature_k`` for ``settings.md_ps``, and
    the exchange series; ``series`` gives the substitution (e.g. Na → Li on mobile sites)."""

    engine: Engine = field(default_factory=default_engine)
    settings: ExchangeStageSettings = field(default_factory=ExchangeStageSettings)
    series: SeriesSettings = field(default_factory=SeriesSettings)
    name: str = "exchange"

    def make(self, structure: Structure) -> Flow:
        st = self.settings
        s = st.model_dump(mode="json")
        stack = exchange_stack_job(structure, s, self.series.model_dump(mode="json"))
        stack.name = "exchange stack"
        controls = MDControls(
            timestep_fs=st.timestep_fs,
            sample_every=st.sample_every,
            langevin_friction_per_ps=st.langevin_friction_per_ps,
        )
        t = st.temperature_k
        segment = MDSegment("exchange", "nvt", t, t, st.md_ps)
        n_steps = steps_for(st.md_ps, st.timestep_fs, st.sample_every)
        md = self.engine.md_maker(segment, n_steps, st.seed, controls).make(stack.output)
        md.name = "exchange md"
        result = exchange_result_job(md.output, stack.output, s, self.engine.describe())
        result.name = "exchange series"
        return Flow([stack, md, result], output=result.output, name=self.name)
