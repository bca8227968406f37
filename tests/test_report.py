"""Report rendering: Markdown tables and figures become a self-contained HTML page."""

from __future__ import annotations

import base64

from ctaflow.report.build import to_html
from ctaflow.report.plots import arrhenius_plot


def test_html_tables_and_embedded_figures():
    png = arrhenius_plot(
        [
            {
                "species": "Na",
                "site_class": None,
                "temperature_k": t,
                "diffusivity_cm2_per_s": d,
                "diffusivity_std_cm2_per_s": d / 10,
            }
            for t, d in ((500, 1e-6), (600, 3e-6))
        ],
        "test",
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    page = to_html(
        "# Title\n\n| a | b |\n|---|---|\n| 1 | x<y |\n\n![f.png](f.png)\n", {"f.png": png}
    )
    assert "<h1>Title</h1>" in page
    assert "<tr><th>a</th><th>b</th></tr>\n<tr><td class='num'>1</td><td>x&lt;y</td></tr>" in page
    assert "<div class='table-wrap'>" in page  # wide tables scroll inside the page
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    assert "src='http" not in page  # nothing fetched from outside


def test_active_learning_records_table_note_and_figure():
    from ctaflow.analysis.active_learning import ActiveLearningResult
    from ctaflow.report.build import make_figures, report_keys, to_markdown
    from ctaflow.report.sections.mlff import active_learning_records

    class OneStoredRun:  # what ReportData.outputs gives for the stage
        derived_stores = {}

        def outputs(self, stage, schema):
            assert (stage, schema) == ("active_learning", ActiveLearningResult)
            return [doc]

    def iteration(i, n_selected, n_train, rmse):
        return {
            "iteration": i,
            "n_frames": 30,
            "n_accurate": 10 + 10 * i,
            "n_candidate": 15 - 10 * i,
            "n_failed": 5,
            "fraction_above_lower": (20 - 10 * i) / 30,
            "n_selected": n_selected,
            "n_train": n_train,
            "deviation_mean_ev_per_a": 0.1,
            "deviation_max_ev_per_a": 0.4,
            "test_rmse_force_mev_per_a": rmse,
            "test_rmse_energy_mev_per_atom": 2.0,
            "frames": [],
        }

    doc = {
        "metadata": {"campaign": "c", "engine": "mace"},
        "output": {
            "iterations": [iteration(0, 6, 100, 80.0), iteration(1, 0, 106, 70.0)],
            "committee_size": 2,
            "labeller": "mlip:CHGNet-0.3.0",
            "explore_temperature_k": 900.0,
            "trust_lower_ev_per_a": 0.05,
            "trust_upper_ev_per_a": 0.25,
            "stop_fraction": 0.05,
            "n_added_frames": 6,
            "converged": False,
            "stop_reason": "reached max_iterations = 1",
            "model_sha256": "ab" * 32,
            "md_sanity": {"n_steps": 200, "temperature_k": 900.0, "stable": True},
        },
    }
    rows = active_learning_records(OneStoredRun())
    assert [(r["iteration"], r["n_train"], r["stop_reason"]) for r in rows] == [
        (0, 100, "reached max_iterations = 1"),
        (1, 106, "reached max_iterations = 1"),
    ]
    report = {key: [] for key in report_keys()}
    report["active_learning"] = rows
    figures = make_figures(report, OneStoredRun())
    assert list(figures) == ["active_learning"]
    assert list(figures["active_learning"]) == ["active_learning.png"]
    png, caption = figures["active_learning"]["active_learning.png"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert caption == "Active learning (committee force deviation)"  # default: section title
    text = to_markdown(report, {"active_learning": ["active_learning.png"]})
    assert "| 0 | 30 | 10 | 15 | 5 | 0.6667 | 6 | 100 |" in text  # the iteration table
    assert (
        "- c: committee of 2, window [0.05, 0.25) eV/Å at 900 K, 6 frames relabelled by "
        "mlip:CHGNet-0.3.0; reached max_iterations = 1; MD check of the final model: stable "
        "over 200 steps at 900 K." in text
    )
    assert "![active_learning.png](active_learning.png)" in text
