"""maggma builders: job output documents → derived collections (one per derived quantity).

Each builder reads one stage's job outputs from the job store, groups them on the job metadata
(campaign, fingerprint, composition, engine, settings hash: :data:`schemas.GROUP_KEYS`), calls
the analysis functions and writes documents of a pydantic schema (:mod:`.schemas`) to
``derived_<name>`` next to the job store. Re-running rebuilds only groups whose tasks changed
(see :mod:`.base`). Three ways to run them::

    from ctaflow.builders import run_builder
    from ctaflow.query import builders_for
    for builder in builders_for("demo-run"):
        run_builder(builder)

    ctaflow build --workdir demo-run            # all builders, with progress

    mrun transport_builder.json                 # maggma's runner on a serialised builder
                                                # (monty.serialization.dumpfn(builder, ...))

Adding a builder is a document schema in :mod:`.schemas` whose ``from_output`` classmethod
builds its fields from one stage output, one short class, and the ``builder=`` of the stage's
entry in the stage registry (:mod:`ctaflow.stages.registry`)::

    class BarrierBuilder(StageBuilder):
        stage, output_schema, document = "neb", BarrierResult, BarrierDoc
        collection, sub_keys = "barriers", ("species", "mechanism", "hop_label")

        def derive(self, tasks):
            hop = lambda t: (t.output.species, t.output.mechanism, t.output.hop_label)
            return [
                {**BarrierDoc.from_output(t.output), "task_uuids": [t.uuid], "skipped": older}
                for t, older in latest_per(tasks, hop)
            ]

This package imports no maker, engine or campaign module: a database host runs the builders with
``mrun`` without atomate2's force fields or torch.
"""

from ctaflow.builders.barriers import BarrierBuilder
from ctaflow.builders.base import BuildStats, StageBuilder
from ctaflow.builders.formation import FormationEnergyBuilder
from ctaflow.builders.interfaces import InterfaceBuilder
from ctaflow.builders.mlff import MLFFBuilder
from ctaflow.builders.relax import RelaxBuilder
from ctaflow.builders.run import run_builder
from ctaflow.builders.transport import TransportBuilder

__all__ = [
    "BarrierBuilder",
    "BuildStats",
    "FormationEnergyBuilder",
    "InterfaceBuilder",
    "MLFFBuilder",
    "RelaxBuilder",
    "StageBuilder",
    "TransportBuilder",
    "run_builder",
]
