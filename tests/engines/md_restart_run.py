"""One small CHGNet MD segment, the same in every process: for the restart tests (in-process,
killed subprocesses, Slurm jobs).

``python -m tests.engines.md_restart_run OUT.npz [nvt|npt] [checkpoint_every] [n_steps]`` runs
it through the jobflow job of :class:`ctaflow.engines.mlip_md.MLIPMDMaker` and writes the final
positions, cell and stored frames to ``OUT.npz``; checkpoints go to ``$CTAFLOW_CHECKPOINT_DIR``.
"""

from __future__ import annotations

import sys

import numpy as np

N_STEPS = 60
SAMPLE_EVERY = 5
SEED = 7


def cell():
    """The demo antiperovskite near its CHGNet lattice parameter, 2 x 1 x 1 (10 atoms)."""
    from ctaflow.structures import demo_structure

    s = demo_structure()
    s.scale_lattice(4.54**3)
    s.make_supercell([2, 1, 1])
    return s


def maker(ensemble: str = "nvt", checkpoint_every: int | None = None, n_steps: int = N_STEPS):
    """Langevin NVT or MTK NPT (1 bar), both cooling 900 -> 700 K (as a quench or a cooling
    segment: the ramp is a schedule that a resumed run must pick up at the right step)."""
    from ctaflow.engines import get_engine
    from ctaflow.engines.params import MDControls, MDSegment
    from ctaflow.engines.specs import MLIPEngineSpec

    segment = MDSegment("restart test", ensemble, 900.0, 700.0, n_steps / 1000.0, 1e-4)
    controls = MDControls(timestep_fs=2.0, sample_every=SAMPLE_EVERY)
    md = get_engine(MLIPEngineSpec()).md_maker(segment, n_steps, SEED, controls)
    md.checkpoint_every = checkpoint_every
    return md


def run(
    ensemble: str = "nvt", checkpoint_every: int | None = None, n_steps: int = N_STEPS
) -> dict[str, np.ndarray]:
    """Run the segment as a job (fresh maker, as a rerun would deserialise it) and return its
    final positions, cell and stored frames."""
    from jobflow import JobStore
    from maggma.stores import MemoryStore

    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    job = maker(ensemble, checkpoint_every, n_steps).make(cell())
    job.run(store=store)
    return outputs(store.get_output(job.uuid, load=True))


def outputs(out: dict) -> dict[str, np.ndarray]:
    """Final positions and cell, and the stored frames, of an MD job's stored output."""
    from ctaflow.analysis.chunks import join_chunks

    final = out["final_structure"]
    frames = join_chunks(out["trajectory"])
    return {
        "final_positions": np.array([site["xyz"] for site in final["sites"]]),
        "final_cell": np.array(final["lattice"]["matrix"]),
        **{f"frames_{k}": v for k, v in frames.items()},
    }


if __name__ == "__main__":
    target, ensemble = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "nvt"
    every = int(sys.argv[3]) if len(sys.argv) > 3 else None
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else N_STEPS
    np.savez(target, **run(ensemble, every, steps))
