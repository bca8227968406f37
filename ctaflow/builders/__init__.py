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
"""

from ctaflow.builders.base import BuildStats, StageBuilder
from ctaflow.builders.mlff import MLFFBuilder
from ctaflow.builders.relax import RelaxBuilder
from ctaflow.builders.run import BUILDERS, builders_for, run_builder
from ctaflow.builders.transport import TransportBuilder

__all__ = [
    "BUILDERS",
    "BuildStats",
    "MLFFBuilder",
    "RelaxBuilder",
    "StageBuilder",
    "TransportBuilder",
    "builders_for",
    "run_builder",
]
