"""The conditions of use of the campaign-trained model: the MD protocols the md and amorphous
stages run it in (the training data label them, active learning explores them)."""

from __future__ import annotations

from ctaflow.analysis.active_learning import UseCondition
from ctaflow.campaign import stages as settings


def md_conditions(st: settings.MDStageSettings) -> list[UseCondition]:
    """The production protocol's conditions: NPT equilibration, cooling to and NVT production at
    each temperature, all on the campaign's structure (not the series members)."""
    hot = st.equilibrate_temperature_k
    eq = f"md equilibrate {hot:g} K"
    out = [UseCondition(name=eq, stage="md", temperature_start_k=hot, temperature_end_k=hot,
                        duration_ps=st.equilibrate_ps, timestep_fs=st.timestep_fs,
                        base_only=True)]  # fmt: skip
    for t in st.temperatures_k:
        before = eq
        if t != hot:
            before = f"md cool {hot:g} -> {t:g} K"
            out.append(
                UseCondition(
                    name=before,
                    stage="md",
                    temperature_start_k=hot,
                    temperature_end_k=t,
                    duration_ps=st.cool_ps,
                    timestep_fs=st.timestep_fs,
                    follows=eq,
                    base_only=True,
                )
            )
        out.append(
            UseCondition(
                name=f"md production {t:g} K",
                stage="md",
                temperature_start_k=t,
                temperature_end_k=t,
                duration_ps=st.production_ps,
                timestep_fs=st.timestep_fs,
                follows=before,
                base_only=True,
            )
        )
    return out


def amorphous_conditions(st: settings.AmorphousStageSettings) -> list[UseCondition]:
    """Melt (with the hold at the same temperature) and the quench from it."""
    hot, cold = st.melt_temperature_k, st.quench_end_temperature_k
    melt = f"amorphous melt {hot:g} K"
    npt = {
        "pressure_gpa": st.pressure_gpa if st.ensemble == "npt" else None,
        "barostat_damping_fs": st.barostat_damping_fs,
    }
    return [
        UseCondition(
            name=melt, stage="amorphous", temperature_start_k=hot, temperature_end_k=hot,
            duration_ps=st.melt_ps + st.hold_ps, timestep_fs=st.timestep_fs,
            random_start_fraction=(
                st.random_min_distance_fraction if st.melt_start == "random" else None
            ),
            **npt,
        ),
        UseCondition(
            name=f"amorphous quench {hot:g} -> {cold:g} K", stage="amorphous",
            temperature_start_k=hot, temperature_end_k=cold,
            duration_ps=(hot - cold) / st.quench_rate_k_per_ps, timestep_fs=st.timestep_fs,
            follows=melt, label_ramp=True, **npt,
        ),
    ]  # fmt: skip
