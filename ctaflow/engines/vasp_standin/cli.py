"""Command line of the stand-in: ``python -m ctaflow.engines.vasp_standin [directory]``.

Used exactly like ``vasp_std``: run in a directory of VASP inputs (custodian sends stdout to
``vasp.out`` and stderr to ``std_err.txt``). A refused input prints one line,
``ctaflow-vasp-standin: error: ...``, on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from ctaflow.engines.vasp_standin.errors import StandinError
from ctaflow.engines.vasp_standin.identity import PROGRAM
from ctaflow.engines.vasp_standin.models import MODEL_ENV, MODELS, THREADS_ENV, native_threads
from ctaflow.engines.vasp_standin.settings import SEED_ENV

LOG_ENV = "CTAFLOW_STANDIN_LOG"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=(
            "Stand-in for the VASP executable: reads INCAR/POSCAR/KPOINTS, computes energies, "
            "forces and stresses with an MLIP through ASE and writes vasprun.xml, OUTCAR, "
            "OSZICAR, CONTCAR and XDATCAR (with IMAGES = N: a nudged elastic band over the image "
            "directories 00 ... N+1). Not a DFT code."
        ),
        epilog=(
            f"Environment: {MODEL_ENV} (one of {', '.join(sorted(MODELS))}; default "
            f"chgnet:0.3.0), {SEED_ENV} (MD seed), {THREADS_ENV} (torch threads, default 1), "
            f"{LOG_ENV} (log level on stderr, default WARNING)."
        ),
    )
    parser.add_argument("directory", nargs="?", default=".", help="run directory (default .)")
    return parser


def _limit_native_threads() -> None:
    """Give OpenBLAS/OpenMP the stand-in's thread count unless the user set them.

    Effective only before numpy is first imported, which this module avoids doing itself.
    """
    threads = str(native_threads())
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    if "numpy" in sys.modules:
        logging.getLogger(__name__).debug("numpy already loaded: BLAS threads unchanged")


def main(argv: list[str] | None = None) -> int:
    """Run the stand-in; returns the exit status (0 success, 1 refused input)."""
    args = _parser().parse_args(argv)
    level = os.environ.get(LOG_ENV, "WARNING").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING),
        format=f"{PROGRAM}: %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # chgnet 0.4.2 warns on every force call about a tensor conversion inside its own code
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    # ... and about the centre-of-mass constraint of MD runs, which it does not need
    warnings.filterwarnings("ignore", message="Only FixAtoms and FixCartesian is supported")
    try:
        _limit_native_threads()
        # lazy: after the thread limits are set, before numpy and torch load
        from ctaflow.engines.vasp_standin.run import run_standin

        run_standin(args.directory, stream=sys.stdout)
    except StandinError as exc:
        sys.stderr.write(f"{PROGRAM}: error: {' '.join(str(exc).split())}\n")
        return 1
    return 0
