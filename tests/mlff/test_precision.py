"""Which precision the campaign-trained model's MD runs in (engine setting md_dtype: auto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctaflow.analysis.mlff import precision_check, trained_in_float32
from ctaflow.engines.mlip import MaceEngine
from ctaflow.engines.specs import MaceEngineSpec
from ctaflow.makers.mlff import trained_model_parts


def _rows(energy_ev: float, force: float) -> list[dict]:
    return [{"n_atoms": 2, "energy_pred_ev": energy_ev, "forces_pred_ev_per_a": [[force] * 3] * 2}]


def _md_dtype(precision) -> str:
    trained = {"model": ["parts"], "committee": [], "precision": precision}
    _, _, float32_ok = trained_model_parts(trained)
    engine = MaceEngine(MaceEngineSpec()).with_model(Path("m.model"), float32_ok=float32_ok)
    return engine.spec.md_dtype


def test_md_runs_float32_only_where_the_model_allows_it():
    # a float64 model whose float32 predictions differ by 10 meV/atom: far above 1 % of its
    # 30 meV/atom test error, so MD stays in float64
    far = precision_check(_rows(-10.0, 0.5), _rows(-9.98, 0.5), 30.0, 100.0)
    assert far.max_energy_diff_mev_per_atom == pytest.approx(10.0) and not far.float32_ok
    assert _md_dtype(far.model_dump()) == "float64"
    close = precision_check(_rows(-10.0, 0.5), _rows(-10.0, 0.5001), 30.0, 100.0)
    assert close.float32_ok and _md_dtype(close.model_dump()) == "float32"
    # trained in float32: MD in the model's own precision, with no made-up differences
    native = trained_in_float32()
    assert native.float32_ok and native.max_force_diff_mev_per_a is None
    assert _md_dtype(native.model_dump()) == "float32"
    assert _md_dtype(None) == "float64"  # no check at all: the engine's dtype
