"""The cells each stage computes on, sized from the settings and the structure alone.

``ctaflow validate`` and ``ctaflow run`` read these (the ``cells`` entry of each stage's
:class:`~ctaflow.stages.spec.StageSpec`) to print the size of every cell and refuse, before
anything runs, a cell whose MD cannot fit in memory: a ``supercell_min_width_a`` of 60 Å turns
the 5-atom demo cell into 13,720 atoms, and CHGNet MD on that needs about 64 GB.

Each function sizes the cells the stage's first jobs would build, with the same functions, from
the structure as loaded: supercells are counted (``supercell_for_width``, never built: a refused
cell may have millions of atoms); interfaces are built. The later stages start from the relaxed
structure, and a smaller relaxed cell needs more repeats for the same face width: the demo
prototype (a = 4.84 Å) relaxes to 4.54 Å with CHGNet (−6.2 %), so a 60 Å md cell has 10,985
atoms as loaded and 13,720 after the relaxation. With the relax stage on (cell relaxed), every
supercell is therefore also counted on the cell shrunk by :data:`RELAX_SHRINK`, and the guard
judges that count. Interfaces are estimates (the lattice match may change with the cell).
Substitution series members have the size of the supercell they are made on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymatgen.core import Lattice

from ctaflow.engines.params import steps_for
from ctaflow.makers.active_learning import exploration_conditions, exploration_steps
from ctaflow.makers.training_data import labelling_plan, member_conditions
from ctaflow.structures.interfaces import build_interface
from ctaflow.structures.supercell import make_supercell, supercell_for_width

#: how much smaller (linear) a relaxed cell is assumed possibly to be when counting supercells:
#: above the 6.2 % of the demo prototype with CHGNet, the largest change ctaflow has seen
RELAX_SHRINK = 0.07

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from ctaflow.campaign.schema import CampaignSettings


@dataclass(frozen=True)
class StageCell:
    """Cells of one size a stage computes on.

    Parameters
    ----------
    n_atoms
        Atoms in the cell.
    setting
        The campaign setting that sizes it (what to change when it is too large).
    runs
        How many calculations run on cells of this size (compositions × temperatures × samples);
        they may run at the same time.
    md_steps
        MD steps of all those runs together (0: no MD, e.g. relaxations and NEB images).
    n_atoms_max
        Atoms if the relaxation shrinks the cell by :data:`RELAX_SHRINK` (0: as ``n_atoms``).
    """

    n_atoms: int
    setting: str
    runs: int = 1
    md_steps: int = 0
    n_atoms_max: int = 0

    @property
    def largest(self) -> int:
        return max(self.n_atoms, self.n_atoms_max)


def supercell_atoms(structure: Structure, min_width_a: float) -> int:
    """Atoms of :func:`~ctaflow.structures.supercell.make_supercell` without building it."""
    return len(structure) * math.prod(supercell_for_width(structure.lattice, min_width_a))


def _counts(campaign: CampaignSettings, structure: Structure, width_a: float) -> tuple[int, int]:
    """Supercell atoms as loaded and on the cell shrunk by RELAX_SHRINK (when it is relaxed)."""
    n = supercell_atoms(structure, width_a)
    relax = campaign.stages.relax
    if not (relax.enabled and relax.relax_cell):
        return n, n
    shrunk = Lattice(structure.lattice.matrix * (1.0 - RELAX_SHRINK))
    return n, len(structure) * math.prod(supercell_for_width(shrunk, width_a))


def _n_compositions(campaign: CampaignSettings) -> int:
    return campaign.series.n_compositions if campaign.series is not None else 1


def relax(campaign: CampaignSettings, structure: Structure) -> dict[str, StageCell]:
    return {"structure": StageCell(len(structure), "the structure (structure:)")}


def training_data(campaign: CampaignSettings, structure: Structure) -> dict[str, StageCell]:
    st = campaign.stages.training_data
    conditions = campaign.model_conditions()
    runs = 0
    for member in range(_n_compositions(campaign)):
        temperatures, ramps = labelling_plan(st, member_conditions(conditions, member))
        runs += len(temperatures) + len(ramps)
    runs += len(campaign.defect_labelling_temperatures())
    steps = steps_for(st.md_ps, st.timestep_fs, st.sample_every)
    n, n_max = _counts(campaign, structure, st.supercell_min_width_a)
    setting = "stages.training_data.supercell_min_width_a"
    return {"labelling md cell": StageCell(n, setting, runs, runs * steps, n_max)}


def active_learning(campaign: CampaignSettings, structure: Structure) -> dict[str, StageCell]:
    """Exploration MD of every condition of use from the first training frame of every
    composition (the md stage's conditions from x = 0 only), each exploration (one more than the
    relabelling rounds)."""
    al = campaign.stages.active_learning
    td = campaign.stages.training_data
    conditions = campaign.model_conditions()
    if al.explore_temperature_k is not None or not conditions:
        t = al.explore_temperature_k or max(labelling_plan(td, conditions)[0])
        conditions = exploration_conditions(al.model_copy(update={"explore_temperature_k": t}), [])
    # every composition's start (the defective cell's too, an x = 0 start), each exploration
    members = list(range(_n_compositions(campaign))) + ([0] if campaign.defects else [])
    per_exploration = [member_conditions(conditions, m) for m in members]
    rounds = al.max_iterations + 1
    runs = rounds * sum(len(c) for c in per_exploration)
    steps = rounds * sum(exploration_steps(al, c) for cs in per_exploration for c in cs)
    n, n_max = _counts(campaign, structure, td.supercell_min_width_a)
    setting = "stages.training_data.supercell_min_width_a"
    return {"exploration md cell": StageCell(n, setting, runs, steps, n_max)}


def md(campaign: CampaignSettings, structure: Structure) -> dict[str, StageCell]:
    """Equilibration, then cooling and production at every temperature, on one supercell."""
    st = campaign.stages.md

    def steps(ps: float) -> int:
        return steps_for(ps, st.timestep_fs, st.sample_every)

    n_t = len(st.temperatures_k)
    total = steps(st.equilibrate_ps) + n_t * (steps(st.cool_ps) + steps(st.production_ps))
    n, n_max = _counts(campaign, structure, st.supercell_min_width_a)
    return {"md cell": StageCell(n, "stages.md.supercell_min_width_a", 1 + n_t, total, n_max)}


def amorphous(campaign: CampaignSettings, structure: Structure) -> dict[str, StageCell]:
    """Per composition a melt (random start: one per sample), then per sample a hold and a
    quench."""
    st = campaign.stages.amorphous

    def steps(ps: float) -> int:
        return steps_for(ps, st.timestep_fs, st.sample_every)

    quench_ps = (st.melt_temperature_k - st.quench_end_temperature_k) / st.quench_rate_k_per_ps
    melts = st.n_samples if st.melt_start == "random" else 1
    per_composition = melts * steps(st.melt_ps) + st.n_samples * (
        steps(st.hold_ps) + steps(quench_ps)
    )
    k = _n_compositions(campaign)
    n, n_max = _counts(campaign, structure, st.supercell_min_width_a)
    setting = "stages.amorphous.supercell_min_width_a"
    return {
        "melt-quench cell": StageCell(
            n, setting, k * (melts + st.n_samples), k * per_composition, n_max
        )
    }


def neb(campaign: CampaignSettings, structure: Structure) -> dict[str, StageCell]:
    """The host supercell (a band image has one atom less for a vacancy hop)."""
    st = campaign.stages.neb
    n, n_max = _counts(campaign, structure, st.min_image_distance_a)
    runs = (1 + len(st.swap)) * st.n_hops * len(st.mechanisms)
    return {"neb supercell": StageCell(n, "stages.neb.min_image_distance_a", runs, 0, n_max)}


def interfaces(campaign: CampaignSettings, structure: Structure) -> dict[str, StageCell]:
    """Every metal and phase, built as the stage builds them (crystalline from the unrelaxed
    structure, amorphous from the amorphous stage's supercell standing in for its glass, the bcc
    metal at its given or estimated lattice parameter)."""
    st = campaign.stages.interfaces
    steps = steps_for(st.anneal_fs / 1000.0, st.timestep_fs, st.sample_every)
    glass = (
        make_supercell(structure, campaign.stages.amorphous.supercell_min_width_a)
        if "amorphous" in st.phases
        else None
    )
    cells = {}
    for metal in st.metals:
        for phase in st.phases:
            built = build_interface(
                structure if phase == "crystalline" else glass,
                metal,
                phase=phase,
                metal_lattice_a=st.metal_lattice_a.get(metal),
                **st.build_options(),
            )
            setting = (
                "stages.interfaces.max_area_a2, electrolyte_thickness_a or metal_thickness_a"
                if phase == "crystalline"
                else "stages.amorphous.supercell_min_width_a or stages.interfaces.amorphous_repeats"
            )
            cells[f"{phase} | {metal}"] = StageCell(len(built.structure), setting, 1, steps)
    return cells


def exchange(campaign: CampaignSettings, structure: Structure) -> dict[str, StageCell]:
    """The Na-rich | Li-rich stack: two blocks of the supercell."""
    st = campaign.stages.exchange
    n, n_max = (2 * k for k in _counts(campaign, structure, st.supercell_min_width_a))  # 2 blocks
    steps = steps_for(st.md_ps, st.timestep_fs, st.sample_every)
    return {
        "exchange stack": StageCell(n, "stages.exchange.supercell_min_width_a", 1, steps, n_max)
    }
