"""One readable name per trained model, the same in the report, query and export; and the
known third-party noise kept out of logs."""

from __future__ import annotations

import hashlib
import warnings

from ctaflow.model_names import ModelNames, model_file_name, model_name, trained_models
from ctaflow.noise import quiet_known_noise

SHA_MLFF, SHA_MEMBER, SHA_AL = (hashlib.sha256(x).hexdigest() for x in (b"a", b"b", b"c"))


def _model_doc(uuid: str, stage: str, sha: str, completed: str, committee=()) -> dict:
    return {
        "uuid": uuid,
        "index": 1,
        "name": f"{stage} job",
        "completed_at": completed,
        "metadata": {"campaign": "demo", "stage": stage, "engine": "mace"},
        "output": {
            "@class": "MLFFResult",
            "model_sha256": sha,
            "committee": [{"model_sha256": s} for s in committee],
        },
    }


def test_the_final_model_is_the_last_model_stage_and_every_label_gets_its_name(stores):
    jobs, _ = stores
    jobs.docs_store.update(
        [
            _model_doc("u1", "mlff", SHA_MLFF, "2026-01-01T10:00:00", committee=[SHA_MEMBER]),
            _model_doc("u2", "active_learning", SHA_AL, "2026-01-01T11:00:00"),
        ],
        key=["uuid", "index"],
    )
    models = trained_models(jobs, ["mlff", "active_learning"])
    assert [(m.sha256, m.member, m.final) for m in models] == [
        (SHA_MLFF, 0, False),
        (SHA_MEMBER, 1, False),
        (SHA_AL, 0, True),  # active learning comes after mlff: the stages run on its model
    ]
    names = ModelNames(models)
    final = f"MACE demo {SHA_AL[:8]}"
    assert names.engine_name("mace:trained", "demo") == final
    assert names.engine_name(f"mace:{SHA_AL[:16]}-ctaflow_mace.model") == final  # cache file
    assert names.engine_name("mace") is None  # the training jobs' label names no one model
    assert names.engine_name("mlip:CHGNet-0.3.0") is None
    rows = names.annotate(
        [{"engine": "mace:trained", "campaign": "demo"}, {"model_sha256": SHA_MLFF}]
    )
    assert rows[0]["engine_name"] == final
    assert rows[1]["model_name"] == f"MACE demo {SHA_MLFF[:8]}"
    assert model_file_name("demo", SHA_AL) == f"mace-demo-{SHA_AL[:8]}.model"
    assert model_name("demo", SHA_AL) == final


def test_logm_round_off_is_silenced_but_a_real_inaccuracy_is_not():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_known_noise()
        warnings.warn(
            "logm result may be inaccurate, approximate err = 2.759146846690789e-13",
            RuntimeWarning,
            stacklevel=1,
        )
        warnings.warn(
            "logm result may be inaccurate, approximate err = 0.03", RuntimeWarning, stacklevel=1
        )
        warnings.warn(
            "logm result may be inaccurate, approximate err = 4e-05", RuntimeWarning, stacklevel=1
        )
        warnings.warn("another warning", RuntimeWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == [
        "logm result may be inaccurate, approximate err = 0.03",
        "logm result may be inaccurate, approximate err = 4e-05",
        "another warning",
    ]


def test_chgnet_banners_go_to_the_log_not_stdout(capsys, caplog):
    import logging

    from ctaflow.engines.calculators import chgnet_calculator

    with caplog.at_level(logging.DEBUG, logger="ctaflow.engines.calculators"):
        calculator = chgnet_calculator()
    assert calculator is not None
    assert capsys.readouterr().out == ""
    assert any("CHGNet will run on cpu" in r.getMessage() for r in caplog.records)
