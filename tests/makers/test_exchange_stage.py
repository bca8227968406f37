"""Exchange MD on the embedded MLIP: a Na3OCl | Li3OCl stack, the tracker on a real run."""

from __future__ import annotations

import numpy as np
import pytest
from jobflow import run_locally

from ctaflow.campaign.sources import SeriesSettings
from ctaflow.campaign.stages import ExchangeStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.makers.exchange import ExchangeStageMaker
from ctaflow.report.build import write_report
from ctaflow.structures import demo_structure


def test_exchange_md_series_conserves_ions_and_sees_thermal_framework_motion(stores):
    jobs, _ = stores
    host = demo_structure()
    host.scale_lattice(4.5354**3)
    settings = ExchangeStageSettings(
        supercell_min_width_a=4.0, temperature_k=600.0, md_ps=0.03, sample_every=10
    )
    series = SeriesSettings(replace="Na", by="Li", sites="mobile", n_compositions=2)
    maker = ExchangeStageMaker(get_engine(MLIPEngineSpec()), settings, series)
    flow = maker.make(host)
    flow.update_metadata({"stage": "exchange", "campaign": "t", "engine": "mlip:CHGNet-0.3.0"})
    run_locally(flow, store=jobs, log=False, ensure_success=True)
    r = jobs.get_output(flow.output.uuid, load=True)
    assert (r["first_composition"], r["second_composition"]) == ("Na3ClO", "Li3ClO")
    s = r["series"]
    assert s["n_sites"] == {"mobile": 3}  # the 3 Na of block A, all mobile in the demo
    assert s["na_on_sites"]["mobile"][0] == 3 and s["li_on_sites"]["mobile"][0] == 0
    n_frames = len(s["times_fs"])
    assert n_frames == 4  # frames at 0, 10, 20, 30 fs
    for frame in range(n_frames):  # every ion is counted once per frame
        assert sum(v[frame] for v in s["li_on_sites"].values()) == 3
        assert sum(v[frame] for v in s["na_on_sites"].values()) == 3
    disp = np.array(s["framework_mean_displacement_a"])
    assert disp[0] == 0.0 and disp[-1] > 0.0  # 600 K: the framework vibrates
    assert disp.max() < 0.5  # 30 fs: vibration, not disorder
    assert r["engine"]["engine"] == "mlip:CHGNet-0.3.0" and "ase" in r["software"]
    md_doc = next(iter(jobs.docs_store.query({"name": "exchange md"})))
    assert "blob_uuid" in md_doc["output"]["trajectory"][0]["chunk_arrays"]
    assert r["temperature_k"] == pytest.approx(600.0)

    # the report shows the series and plots it
    page = write_report(jobs, {}, "report")
    import json
    from pathlib import Path

    report = json.loads(Path("report/report.json").read_text())
    (row,) = report["exchange"]
    assert row["stack"] == "Na3ClO | Li3ClO" and row["li_on_sites"] == s["li_on_sites"]
    assert {"file": "exchange_0.png"} in report["figures"]
    assert "Ion exchange across an electrolyte | electrolyte stack" in page.read_text()
