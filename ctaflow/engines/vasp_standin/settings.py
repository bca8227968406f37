"""What the INCAR asks for, in the stand-in's terms; refusing what it cannot do.

Supported (VASP defaults apply to missing tags):

* single point: ``NSW = 0`` or ``IBRION = -1``;
* relaxation: ``IBRION = 1, 2`` (ASE BFGS) or ``3`` (ASE FIRE) with ``NSW`` force calls at most,
  ``ISIF = 0–8`` (which of positions / cell shape / cell volume move, as in VASP's ISIF table),
  ``EDIFFG`` (< 0: max force in eV/Å; > 0: energy change in eV between ionic steps), ``PSTRESS``;
* molecular dynamics: ``IBRION = 0`` with ``NSW`` steps of ``POTIM`` fs, a linear ramp from
  ``TEBEG`` to ``TEEND`` and ``MDALGO`` 0/2 (Nosé–Hoover, ``SMASS = 0``: period of 40 steps;
  ``MDALGO = 0, SMASS = -3``: NVE), 1 (Andersen, ``ANDERSEN_PROB``; 0 means NVE), 3 (Langevin with
  ``LANGEVIN_GAMMA`` per species in ps⁻¹; with ``ISIF = 3`` Langevin NPT at ``PSTRESS`` with
  ``LANGEVIN_GAMMA_L``, ASE ``LangevinBAOAB``);
* nudged elastic band: ``IMAGES = N > 0``, run in the head directory of ``00/`` … ``N+1/`` (see
  :mod:`.neb`): fixed cell (``ISIF`` 0–2), ``SPRING`` < 0 (k = |SPRING| eV/Å², default −5),
  ``EDIFFG`` < 0 (max NEB force in eV/Å), at most ``NSW`` band force evaluations, the optimiser
  from ``IBRION``/``IOPT`` (:data:`NEB_VTST_OPTIMIZERS`) and the climbing image from ``LCLIMB``
  (:func:`neb_climb`).

Refused with a :class:`StandinError` (non-zero exit): tags that ask for physics an MLIP of
energies and forces cannot provide (hybrid functionals, meta-GGA with a GGA-trained model,
response functions, finite-difference phonons, non-self-consistent runs, vdW
corrections, spin–orbit, charged cells, VASP's own MLFF) and MD/relaxation variants without a
clean ASE counterpart. Every other tag (ENCUT, ISMEAR, ALGO, LREAL, MAGMOM, ...) only tunes the
electronic-structure solver and is ignored.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ctaflow.engines.vasp_standin.errors import StandinError

if TYPE_CHECKING:
    from pymatgen.io.vasp import Incar

    from ctaflow.engines.vasp_standin.inputs import VaspInputs
    from ctaflow.engines.vasp_standin.models import ModelSpec

logger = logging.getLogger(__name__)

SEED_ENV = "CTAFLOW_STANDIN_SEED"
DEFAULT_SEED = 20240601

#: VASP ISIF → (positions move, cell shape moves, cell volume moves)
ISIF_DEGREES_OF_FREEDOM: dict[int, tuple[bool, bool, bool]] = {
    0: (True, False, False),
    1: (True, False, False),
    2: (True, False, False),
    3: (True, True, True),
    4: (True, True, False),
    5: (False, True, False),
    6: (False, True, True),
    7: (False, False, True),
    8: (True, False, True),
}
RELAX_OPTIMIZERS = {1: "BFGS", 2: "BFGS", 3: "FIRE"}
#: VTST optimisers (IBRION = 3, POTIM = 0, IOPT) → ASE optimiser of the NEB: LBFGS, quick-min
#: (ASE's MDMin is the same velocity-projection scheme) and FIRE. VTST's CG (2), SD (4) and the
#: dimer-method optimisers have no counterpart here and are refused.
NEB_VTST_OPTIMIZERS = {1: "LBFGS", 3: "MDMin", 7: "FIRE"}
#: VASP's default SPRING (eV/Å², negative: nudged elastic band)
DEFAULT_SPRING = -5.0
#: VASP: SMASS = 0 gives a Nosé thermostat with a period of 40 time steps
NOSE_PERIOD_STEPS = 40
MANY_BODY_ALGOS = ("GW", "EVGW", "QPGW", "CHI", "BSE")


class Mode(StrEnum):
    """What kind of run the INCAR asks for."""

    STATIC = "static"
    RELAX = "relax"
    MD = "md"
    NEB = "neb"


@dataclass(frozen=True)
class RelaxSettings:
    """Relaxation settings (VASP IBRION 1/2/3)."""

    optimizer: str
    move_positions: bool
    move_shape: bool
    move_volume: bool
    fmax_ev_per_a: float | None
    energy_tolerance_ev: float | None
    pressure_kbar: float


@dataclass(frozen=True)
class MDSettings:
    """Molecular dynamics settings (VASP IBRION 0)."""

    thermostat: str  # "nve" | "andersen" | "nose-hoover" | "langevin" | "langevin-npt"
    timestep_fs: float
    start_temperature_k: float
    end_temperature_k: float
    seed: int
    nose_period_fs: float | None = None
    andersen_prob: float = 0.0
    langevin_gamma_per_ps: tuple[float, ...] = ()
    langevin_gamma_lattice_per_ps: float | None = None
    pressure_kbar: float = 0.0

    def temperature_at(self, step: int, n_steps: int) -> float:
        """Target temperature (K) of MD step ``step`` (0-based) of ``n_steps``: linear ramp."""
        if n_steps <= 1:
            return self.start_temperature_k
        frac = step / (n_steps - 1)
        return self.start_temperature_k + frac * (self.end_temperature_k - self.start_temperature_k)


@dataclass(frozen=True)
class NEBSettings:
    """Nudged-elastic-band settings (VASP ``IMAGES`` > 0, VTST tags)."""

    n_images: int
    climb: bool
    spring_ev_per_a2: float
    fmax_ev_per_a: float
    optimizer: str
    optimizer_source: str  # the INCAR tags the optimiser came from, e.g. "IBRION = 3, IOPT = 7"


@dataclass(frozen=True)
class RunSettings:
    """The interpreted INCAR."""

    mode: Mode
    nsw: int
    ibrion: int
    isif: int
    nelm: int
    ediff: float
    ediffg: float
    relax: RelaxSettings | None = None
    md: MDSettings | None = None
    neb: NEBSettings | None = None

    @property
    def max_ionic_steps(self) -> int:
        """Force calls the run may make (1 for a single point)."""
        return 1 if self.mode is Mode.STATIC else self.nsw


def run_settings(
    inputs: VaspInputs, model: ModelSpec, environ: dict[str, str] | None = None
) -> RunSettings:
    """Interpret the INCAR of ``inputs`` for ``model``.

    Raises
    ------
    StandinError
        If a tag asks for something the stand-in does not support.
    """
    incar = inputs.incar
    check_supported(incar, model, inputs)
    nsw = int(incar.get("NSW", 0))
    ibrion = int(incar.get("IBRION", -1 if nsw in (-1, 0) else 0))
    isif = int(incar.get("ISIF", 0 if ibrion == 0 else 2))
    ediff = float(incar.get("EDIFF", 1e-4))
    ediffg = float(incar.get("EDIFFG", 10 * ediff))
    common = {"nsw": nsw, "ibrion": ibrion, "isif": isif, "ediff": ediff, "ediffg": ediffg}
    common["nelm"] = int(incar.get("NELM", 60))
    if nsw < 0:
        raise StandinError(f"NSW = {nsw} is not supported (use NSW >= 0)")
    n_images = int(incar.get("IMAGES", 0))
    if n_images > 0:
        return RunSettings(mode=Mode.NEB, neb=_neb_settings(incar, n_images, common), **common)
    if ibrion == -1 or nsw == 0:
        return RunSettings(mode=Mode.STATIC, **common)
    if ibrion in RELAX_OPTIMIZERS:
        return RunSettings(mode=Mode.RELAX, relax=_relax_settings(incar, ibrion, isif), **common)
    if ibrion == 0:
        return RunSettings(mode=Mode.MD, md=_md_settings(incar, isif, inputs, environ), **common)
    raise StandinError(
        f"IBRION = {ibrion} is not supported (supported: -1 single point, 0 MD, 1/2/3 relaxation)"
    )


def check_supported(incar: Incar, model: ModelSpec, inputs: VaspInputs) -> None:
    """Raise :class:`StandinError` for tags that change physics the stand-in cannot model."""
    algo = str(incar.get("ALGO", "Normal")).strip().upper()
    refusals: list[tuple[bool, str]] = [
        (_true(incar.get("LHFCALC")), "LHFCALC = True (hybrid functional)"),
        (int(incar.get("ICHARG", 2)) >= 10, f"ICHARG = {incar.get('ICHARG')} (non-SCF run)"),
        (_true(incar.get("LEPSILON")), "LEPSILON = True (dielectric response)"),
        (_true(incar.get("LCALCPOL")), "LCALCPOL = True (Berry-phase polarisation)"),
        (_true(incar.get("LOPTICS")), "LOPTICS = True (optical response)"),
        (_true(incar.get("LCHIMAG")), "LCHIMAG = True (NMR shielding)"),
        (_true(incar.get("LEFG")), "LEFG = True (electric field gradients)"),
        (_true(incar.get("LSORBIT")), "LSORBIT = True (spin-orbit coupling)"),
        (_true(incar.get("LNONCOLLINEAR")), "LNONCOLLINEAR = True"),
        (_true(incar.get("ML_LMLFF")), "ML_LMLFF = True (VASP machine-learned force field)"),
        (_true(incar.get("LUSE_VDW")), "LUSE_VDW = True (vdW-DF)"),
        (int(incar.get("IVDW", 0)) != 0, f"IVDW = {incar.get('IVDW')} (vdW correction)"),
        (algo.startswith(MANY_BODY_ALGOS), f"ALGO = {incar.get('ALGO')} (many-body/response run)"),
    ]
    metagga = str(incar.get("METAGGA", "--")).strip().upper()
    if metagga not in {"--", "NONE", ""} and not model.meta_gga:
        refusals.append(
            (
                True,
                f"METAGGA = {incar.get('METAGGA')} with model {model.label}, trained on "
                f"{model.training_theory} (choose a meta-GGA model, e.g. "
                "CTAFLOW_STANDIN_MODEL=chgnet:r2scan)",
            )
        )
    if "NELECT" in incar:
        neutral = inputs.neutral_nelect
        if neutral is None or abs(float(incar["NELECT"]) - neutral) > 1e-6:
            refusals.append(
                (True, f"NELECT = {incar['NELECT']} (charged cells; the MLIP is charge-neutral)")
            )
    bad = [reason for refused, reason in refusals if refused]
    if bad:
        raise StandinError("unsupported INCAR setting: " + "; ".join(bad))


def _relax_settings(incar: Incar, ibrion: int, isif: int) -> RelaxSettings:
    if isif not in ISIF_DEGREES_OF_FREEDOM:
        raise StandinError(f"ISIF = {isif} is not supported for relaxations (0-8)")
    positions, shape, volume = ISIF_DEGREES_OF_FREEDOM[isif]
    ediffg = float(incar.get("EDIFFG", 10 * float(incar.get("EDIFF", 1e-4))))
    if ediffg == 0:
        raise StandinError("EDIFFG = 0 is not supported (give a force or energy criterion)")
    if "POTIM" in incar:
        logger.info("POTIM = %s ignored for relaxations (ASE step control)", incar["POTIM"])
    return RelaxSettings(
        optimizer=RELAX_OPTIMIZERS[ibrion],
        move_positions=positions,
        move_shape=shape,
        move_volume=volume,
        fmax_ev_per_a=-ediffg if ediffg < 0 else None,
        energy_tolerance_ev=ediffg if ediffg > 0 else None,
        pressure_kbar=float(incar.get("PSTRESS", 0.0)),
    )


def neb_climb(incar: Incar) -> bool:
    """Whether the highest image climbs.

    ``LCLIMB`` if the INCAR sets it. Otherwise True when the VTST optimisers are selected
    (``IBRION = 3, POTIM = 0``: VTST is compiled in, and its ``LCLIMB`` defaults to True) and
    False for VASP's built-in optimisers (plain VASP has no climbing image). atomate2's
    ``NebSetGenerator`` writes ``LCLIMB = True`` with ``IBRION = 3, POTIM = 0, IOPT = 1`` for a
    climbing-image band and no LCLIMB with ``IBRION = 2`` otherwise, so both of its inputs mean
    what emmet labels them (``NebMethod.CLIMBING_IMAGE`` only if ``LCLIMB`` is true).
    """
    if "LCLIMB" in incar:
        return _true(incar["LCLIMB"])
    return int(incar.get("IBRION", 0)) == 3 and float(incar.get("POTIM", 0.5)) == 0.0


def _neb_settings(incar: Incar, n_images: int, common: dict[str, Any]) -> NEBSettings:
    ibrion, isif, nsw, ediffg = common["ibrion"], common["isif"], common["nsw"], common["ediffg"]
    if nsw < 1:
        raise StandinError(f"IMAGES = {n_images} needs NSW >= 1 (NEB optimiser steps)")
    if isif not in (0, 1, 2):
        raise StandinError(
            f"ISIF = {isif} with IMAGES (variable-cell NEB) is not supported: use ISIF = 2"
        )
    if ediffg >= 0:
        raise StandinError(
            f"EDIFFG = {ediffg:g} with IMAGES: the NEB needs a force criterion, EDIFFG < 0 "
            "(max force on any image, eV/Å)"
        )
    spring = float(incar.get("SPRING", DEFAULT_SPRING))
    if spring >= 0:
        raise StandinError(
            f"SPRING = {spring:g}: only nudged elastic bands are supported, SPRING < 0 "
            "(spring constant |SPRING| in eV/Å², VASP default -5)"
        )
    potim = float(incar.get("POTIM", 0.5))
    if ibrion == 3 and potim == 0.0:
        iopt = int(incar.get("IOPT", 0))
        if iopt not in NEB_VTST_OPTIMIZERS:
            raise StandinError(
                f"IBRION = 3, POTIM = 0 with IOPT = {iopt}: supported VTST optimisers are "
                "IOPT = 1 (LBFGS), 3 (quick-min) and 7 (FIRE)"
            )
        optimizer, source = NEB_VTST_OPTIMIZERS[iopt], f"IBRION = 3, POTIM = 0, IOPT = {iopt}"
    elif ibrion in RELAX_OPTIMIZERS:
        optimizer, source = RELAX_OPTIMIZERS[ibrion], f"IBRION = {ibrion}"
    else:
        raise StandinError(
            f"IBRION = {ibrion} with IMAGES is not supported (1, 2, 3; or 3 with POTIM = 0 and "
            "a VTST IOPT)"
        )
    return NEBSettings(
        n_images=n_images,
        climb=neb_climb(incar),
        spring_ev_per_a2=-spring,
        fmax_ev_per_a=-ediffg,
        optimizer=optimizer,
        optimizer_source=source,
    )


def _md_settings(
    incar: Incar, isif: int, inputs: VaspInputs, environ: dict[str, str] | None
) -> MDSettings:
    mdalgo = int(incar.get("MDALGO", 0))
    smass = float(incar.get("SMASS", -3))
    potim = float(incar.get("POTIM", 0.5))
    if potim <= 0:
        raise StandinError(f"POTIM = {potim} fs must be positive for MD")
    tebeg = float(incar.get("TEBEG", 0.0))
    teend = float(incar.get("TEEND", tebeg))
    if tebeg < 0 or teend < 0:
        raise StandinError(f"TEBEG = {tebeg}, TEEND = {teend}: temperatures must be >= 0 K")
    base: dict[str, Any] = {
        "timestep_fs": potim,
        "start_temperature_k": tebeg,
        "end_temperature_k": teend,
        "seed": md_seed(environ),
    }
    if isif == 3 and mdalgo != 3:
        raise StandinError(
            f"IBRION = 0 with ISIF = 3 needs MDALGO = 3 (Langevin NPT); got MDALGO = {mdalgo}"
        )
    if isif not in (0, 1, 2, 3):
        raise StandinError(f"IBRION = 0 with ISIF = {isif} is not supported (0-2 NVT/NVE, 3 NPT)")
    if mdalgo in (0, 2):
        if mdalgo == 0 and smass == -3:
            return MDSettings(thermostat="nve", **base)
        if smass == 0:
            return MDSettings(
                thermostat="nose-hoover", nose_period_fs=NOSE_PERIOD_STEPS * potim, **base
            )
        raise StandinError(
            f"MDALGO = {mdalgo} with SMASS = {smass:g} is not supported "
            "(SMASS = 0: Nosé-Hoover with a 40-step period; MDALGO = 0, SMASS = -3: NVE)"
        )
    if mdalgo == 1:
        prob = float(incar.get("ANDERSEN_PROB", 0.0))
        if not 0 <= prob <= 1:
            raise StandinError(f"ANDERSEN_PROB = {prob} must be in [0, 1]")
        return MDSettings(thermostat="nve" if prob == 0 else "andersen", andersen_prob=prob, **base)
    if mdalgo == 3:
        gammas = _per_species(incar.get("LANGEVIN_GAMMA"), len(inputs.species))
        if isif != 3:
            return MDSettings(thermostat="langevin", langevin_gamma_per_ps=gammas, **base)
        if len(set(gammas)) != 1 or gammas[0] <= 0:
            raise StandinError(
                f"Langevin NPT needs one positive LANGEVIN_GAMMA for all species; got {gammas}"
            )
        gamma_l = float(incar.get("LANGEVIN_GAMMA_L", 0.0))
        if gamma_l <= 0:
            raise StandinError("Langevin NPT (MDALGO = 3, ISIF = 3) needs LANGEVIN_GAMMA_L > 0")
        if "PMASS" in incar:
            logger.warning(
                "PMASS ignored: ASE LangevinBAOAB sets the barostat mass from its period"
            )
        return MDSettings(
            thermostat="langevin-npt",
            langevin_gamma_per_ps=gammas,
            langevin_gamma_lattice_per_ps=gamma_l,
            pressure_kbar=float(incar.get("PSTRESS", 0.0)),
            **base,
        )
    raise StandinError(f"MDALGO = {mdalgo} is not supported (0, 1, 2, 3)")


def _per_species(value: Any, n_species: int) -> tuple[float, ...]:
    if value is None:
        raise StandinError("MDALGO = 3 needs LANGEVIN_GAMMA (one friction in ps^-1 per species)")
    values = [float(v) for v in (value if isinstance(value, list | tuple) else [value])]
    if len(values) == 1:
        values *= n_species
    if len(values) != n_species or any(v < 0 for v in values):
        raise StandinError(
            f"LANGEVIN_GAMMA = {value}: need {n_species} non-negative values (ps^-1), "
            "one per POSCAR species"
        )
    return tuple(values)


def md_seed(environ: dict[str, str] | None = None) -> int:
    """Random seed for MD velocities and stochastic thermostats (``CTAFLOW_STANDIN_SEED``)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(SEED_ENV, str(DEFAULT_SEED))
    try:
        return int(raw)
    except ValueError:
        raise StandinError(f"{SEED_ENV}='{raw}' is not an integer") from None


def _true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().upper().lstrip(".").startswith("T")
    return bool(value)
