"""A stand-in for the VASP executable that runs an MLIP through ASE.

``python -m ctaflow.engines.vasp_standin`` (console script ``ctaflow-vasp-standin``), started by
custodian in place of ``vasp_std``, reads the VASP inputs of its working directory, computes
energies, forces and stresses with the MLIP named by ``CTAFLOW_STANDIN_MODEL`` (default
``chgnet:0.3.0``) and writes vasprun.xml, OUTCAR, OSZICAR, CONTCAR, XDATCAR and progress lines on
stdout, so that atomate2's VASP makers, custodian and emmet's parsers run unchanged without VASP.

Nothing it writes claims to be DFT: the generator is ``ctaflow-vasp-standin``, the version string
``<ctaflow>+standin.<family>-<version>`` names the model (it becomes ``TaskDoc.vasp_version``),
pseudopotentials are listed as ``NONE <symbol>`` and the band energies are labelled placeholders.

With ``IMAGES = N`` in the INCAR it runs a nudged elastic band over ``00/`` … ``{N+1}/`` and
writes those files into the moving images' directories, as VASP does.

Modules: :mod:`.models` (model registry), :mod:`.inputs` (reading), :mod:`.settings` (INCAR →
run settings, refusals), :mod:`.dynamics` (single point, relaxation), :mod:`.md` (molecular
dynamics), :mod:`.neb` (nudged elastic band), :mod:`.results` (ionic steps, units),
:mod:`.vasprun` and :mod:`.textfiles` (writers), :mod:`.run` (one run), :mod:`.cli` (command
line).
"""

from ctaflow.engines.vasp_standin.errors import StandinError
from ctaflow.engines.vasp_standin.models import DEFAULT_MODEL, MODEL_ENV, MODELS, model_from_env
from ctaflow.engines.vasp_standin.settings import SEED_ENV

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "MODEL_ENV",
    "SEED_ENV",
    "StandinError",
    "model_from_env",
]
