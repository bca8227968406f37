"""maggma builders: job output documents → derived collections (one per derived quantity).

Each builder reads one stage's job outputs from the job store, groups them on the job metadata
(campaign, fingerprint, composition, engine, settings hash: :data:`schemas.GROUP_KEYS`), calls
the analysis functions and writes documents of a pydantic schema (:mod:`.schemas`) to
``derived_<name>`` next to the job store. Re-running rebuilds only groups whose tasks changed
(see :mod:`.base`). Three ways to run them::

    from ctaflow.builders import builders_for, run_builder
    for builder in builders_for("demo-run"):
        run_builder(builder)

    ctaflow build --workdir demo-run            # all builders, with progress

    mrun transport_builder.json                 # maggma's runner on a serialised builder
                                                # (monty.serialization.dumpfn(builder, ...))

Adding a builder (e.g. barriers) is a schema in :mod:`.schemas` and one short class, registered
in :data:`.run.BUILDERS`::

    class BarrierDoc(DerivedDoc):
        species: str | None = None
        mechanism: str | None = None
        hop_label: str | None = None
        forward_barrier_ev: float | None = None
        backward_barrier_ev: float | None = None
        reaction_energy_ev: float | None = None

    class BarrierBuilder(StageBuilder):
        stage, output_schema, document = "neb", NEBResult, BarrierDoc
        collection, sub_keys = "barriers", ("species", "mechanism", "hop_label")

        def problem(self, output):  # the reason lands in the document's ``skipped``
            return None if output.converged else "NEB did not converge"

        def derive(self, tasks):
            fields = set(BarrierDoc.model_fields) - set(DerivedDoc.model_fields)
            hop = lambda t: (t.output.species, t.output.mechanism, t.output.hop_label)
            return [
                {**t.output.model_dump(include=fields), "task_uuids": [t.uuid],
                 "skipped": superseded}
                for t, superseded in latest_per(tasks, hop)
            ]
"""

from ctaflow.builders.barriers import BarrierBuilder
from ctaflow.builders.base import BuildStats, StageBuilder
from ctaflow.builders.interfaces import InterfaceBuilder
from ctaflow.builders.mlff import MLFFBuilder
from ctaflow.builders.relax import RelaxBuilder
from ctaflow.builders.run import BUILDERS, builders_for, run_builder
from ctaflow.builders.transport import TransportBuilder

__all__ = [
    "BUILDERS",
    "BarrierBuilder",
    "BuildStats",
    "InterfaceBuilder",
    "MLFFBuilder",
    "RelaxBuilder",
    "StageBuilder",
    "TransportBuilder",
    "builders_for",
    "run_builder",
]
