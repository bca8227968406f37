"""Browser check of the report (issue 12, item 5): ``ctaflow report`` on a small campaign's store,
then index.html opened in headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
installed by ``make test``). Every figure must load and be painted whole at the size of its PNG,
and the console must show no error. A negative control shows that the check catches broken
figures and a script error.

Issue 25: on a store whose results are valid, flagged and excluded, no flagged or excluded
number stands unmarked in a table (status mark in its row, reasons linked, excluded numbers
struck), a wide table scrolls inside the page at 1,400 px, no missing value is drawn in a
figure, and every figure has a caption."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest
from pydantic import BaseModel
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.builders.conftest import ENGINE_A, mlff_stage, relax_stage, run, transport_stage

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver"
#: parity (MLFF test set), MSD and Arrhenius (two temperatures): the sections with data here
FIGURES = ["parity_0.png", "msd.png", "arrhenius.png"]
#: src of an embedded figure in index.html
EMBEDDED = re.compile(r"src='data:image/png;base64,([A-Za-z0-9+/=]*)'")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium under chromedriver, console messages of every level recorded."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: the browser check needs Debian's chromium and "
            f"chromium-driver; `make test` installs them, or run `{INSTALL}` as root"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",  # runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        # no network: without these Chromium's own requests are refused and it can hang
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


#: per image: load state, natural size, and (once decoded) how many pixels stayed transparent
#: when drawn on a canvas. Chromium counts a PNG cut after its header as loaded at full size
#: and paints only the rows it could decode; the report's matplotlib figures are opaque, so
#: every pixel must be painted.
IMAGES_JS = """
return Array.from(document.images, i => {
  const r = {alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
             unpainted: null};
  if (i.complete && i.naturalWidth > 0) {
    const canvas = document.createElement('canvas');
    canvas.width = i.naturalWidth;
    canvas.height = i.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(i, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    r.unpainted = 0;
    for (let k = 3; k < pixels.length; k += 4) if (pixels[k] < 255) r.unpainted++;
  }
  return r;
});
"""


def inspect(driver, page: Path) -> tuple[list[dict], list[dict]]:
    """Open ``page``; return its images (see :data:`IMAGES_JS`) and the console entries of level
    SEVERE (console.error, uncaught exceptions, resources that failed to load)."""
    driver.get_log("browser")  # drop what earlier pages left
    driver.get(page.resolve().as_uri())  # returns after the load event: images are settled
    images = driver.execute_script(IMAGES_JS)
    time.sleep(0.2)  # let late console messages arrive
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return images, errors


def broken(images: list[dict]) -> list[str]:
    """Alt texts of the images that did not load, did not decode, or decoded only in part."""
    return [
        i["alt"] for i in images if not (i["complete"] and i["width"] > 0 and i["unpainted"] == 0)
    ]


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG header (IHDR)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """``ctaflow report`` on a store of real stage jobs: a relaxation, a force-field document
    with test-set predictions, and the transport stage at 500 and 600 K (kinisi)."""
    from ctaflow.cli.results import report

    workdir = tmp_path_factory.mktemp("browser-campaign").resolve()
    run(relax_stage(), workdir)
    run(mlff_stage(), workdir)
    run(transport_stage([500.0, 600.0], ENGINE_A), workdir)
    report(workdir)
    return workdir / "report"


def test_every_report_figure_loads_and_the_console_has_no_error(browser, report_dir):
    figures = [f["file"] for f in json.loads((report_dir / "report.json").read_text())["figures"]]
    assert figures == FIGURES
    page = report_dir / "index.html"
    embedded = [base64.b64decode(data) for data in EMBEDDED.findall(page.read_text())]
    assert embedded == [(report_dir / name).read_bytes() for name in FIGURES]
    images, errors = inspect(browser, page)
    assert [i["alt"] for i in images] == FIGURES
    assert broken(images) == []
    for image in images:  # decoded at the size matplotlib wrote
        size = png_size((report_dir / image["alt"]).read_bytes())
        assert (image["width"], image["height"]) == size, image
    assert errors == []


def test_the_check_catches_broken_figures_and_a_script_error(browser, report_dir, tmp_path):
    """Negative control on copies of the real page: one figure's PNG cut in half, another's
    bytes not a PNG at all, and a script calling an undefined function."""
    html = (report_dir / "index.html").read_text()
    png = {name: (report_dir / name).read_bytes() for name in FIGURES}

    def embedded(data: bytes) -> str:
        return f"src='data:image/png;base64,{base64.b64encode(data).decode()}'"

    spoilt = tmp_path / "spoilt.html"
    half = png["msd.png"][: len(png["msd.png"]) // 2]
    spoilt.write_text(
        html.replace(embedded(png["msd.png"]), embedded(half)).replace(
            embedded(png["parity_0.png"]), embedded(b"not a PNG" * 20)
        )
    )
    assert spoilt.read_text().count(embedded(half)) == 1
    images, _ = inspect(browser, spoilt)
    assert broken(images) == ["parity_0.png", "msd.png"]
    parity, msd, arrhenius = images
    assert parity["width"] == 0  # nothing decodable
    # the half PNG: "loaded" at full size (its header is intact), lower part left unpainted
    assert msd["complete"] and (msd["width"], msd["height"]) == png_size(png["msd.png"])
    assert 0 < msd["unpainted"] < msd["width"] * msd["height"]
    assert arrhenius["unpainted"] == 0

    script = tmp_path / "script.html"
    script.write_text(html.replace("</body>", "<script>undefined_plot()</script></body>"))
    images, errors = inspect(browser, script)
    assert broken(images) == []
    assert len(errors) == 1 and "undefined_plot is not defined" in errors[0]["message"], errors


# --------------------------------------------------------------------------- verdicts on the page
class HopResult(BaseModel):
    """A toy result with a verdict and many columns (wider than the page)."""

    species: str
    barrier_ev: float | None
    status: str
    reasons: list[str]
    extra: dict[str, float]


HOPS = [
    ("Na", 0.2113, "valid", []),
    ("Li", 0.1741, "flagged", ["two maxima on the spline profile"]),
    ("K", 0.4327, "excluded", ["the end point is not a minimum"]),
    ("Rb", None, "excluded", ["the NEB optimiser did not converge"]),
]
WIDE = [f"site_energy_{n}_ev" for n in range(24)]  # 24 more numeric columns
#: ΔE per composition; x = 0.5 has no usable sample (its ΔE is missing, not 0)
FORMATION = [(0.0, "Na3ClO", 2, 12.5), (0.5, "Na3Li3(ClO)2", 0, None), (1.0, "Li3ClO", 2, 9.0)]


def hop_records(data):
    rows = []
    for doc in data.outputs("hops", HopResult):
        out = doc["output"]
        rows.append({k: out[k] for k in ("species", "barrier_ev", "status", "reasons")})
        rows[-1].update(out["extra"])
    return rows


def hop_figures(rows, data):
    from ctaflow.report import plots
    from ctaflow.report.format import drawable

    plt, fig, ax = plots._figure()
    shown = drawable(rows, "barrier_ev")
    ax.plot(range(len(shown)), [r["barrier_ev"] for r in shown], "o")
    return {"hops.png": (plots._png(plt, fig), "Barriers of the valid and flagged hops only.")}


def formation_doc(x: float, formula: str, n_samples: int, delta: float | None) -> dict:
    samples = (
        [{"status": "ok", "delta_e_mev_per_atom": delta + d} for d in (-1, 1)] if delta else []
    )
    return {
        "derived_id": formula,
        "state": "successful",
        "campaign": "toy",
        "campaign_fingerprint": "fp",
        "engine": "mlip:A",
        "formula": formula,
        "x": x,
        "substitution": "Li for Na",
        "li_fraction": x,
        "n_atoms": 40,
        "crystal_energy_per_atom_ev": -3.8,
        "crystal_converged": True,
        "n_samples": n_samples,
        "n_requested": 2,
        "n_failed": 2 - n_samples,
        "delta_e_amorphous_minus_crystalline_mev_per_atom": delta,
        "delta_e_stderr_mev_per_atom": 1.0 if delta else None,
        "delta_e_min_mev_per_atom": delta - 1 if delta else None,
        "delta_e_max_mev_per_atom": delta + 1 if delta else None,
        "crystal_is_lowest": True if delta else None,
        "formation_energy_crystal_ev_per_atom": -0.06,
        "formation_energy_amorphous_ev_per_atom": None,
        "formation_energy_note": "from elemental references",
        "samples": samples,
        "melt": {},
        "settings_hash": "h",
        "notes": [] if delta else ["2 of 2 samples excluded: #0 unstable; #1 unstable"],
    }


#: JS: per table, its header and per row its class, cell texts and whether each cell is struck
TABLES_JS = """
return Array.from(document.querySelectorAll('table'), t => ({
  head: Array.from(t.rows[0].cells, c => c.textContent),
  wrap: [t.parentElement.scrollWidth, t.parentElement.clientWidth,
         getComputedStyle(t.parentElement).overflowX],
  rows: Array.from(t.rows).slice(1).map(r => ({
    cls: r.className,
    cells: Array.from(r.cells, c => c.textContent),
    struck: Array.from(r.cells, c => c.querySelector('del') !== null),
    link: (r.cells[0].querySelector('a') || {}).hash || null,
  })),
}));
"""


@pytest.fixture(scope="module")
def verdict_report(tmp_path_factory):
    """A report of a store with a toy stage whose results are valid, flagged and excluded (one
    of them without a barrier), a wide table, and ΔE with a composition that has none; the
    figures' drawn points are recorded before they become PNGs."""
    from ctaflow.report import plots
    from ctaflow.report.build import write_report
    from ctaflow.report.data import ReportSection
    from ctaflow.stages.registry import STAGES
    from ctaflow.stages.spec import StageSpec
    from ctaflow.store import derived_store, job_store

    workdir = tmp_path_factory.mktemp("verdicts")
    jobs = job_store(None, workdir)
    jobs.connect()
    docs = []
    for n, (species, barrier, status, reasons) in enumerate(HOPS):
        extra = {name: round(10 * n + 0.01 * k + 0.003, 4) for k, name in enumerate(WIDE)}
        out = HopResult(
            species=species, barrier_ev=barrier, status=status, reasons=reasons, extra=extra
        )
        docs.append(
            {
                "uuid": f"hop-{n}",
                "index": 1,
                "metadata": {"stage": "hops", "campaign": "toy"},
                "output": {"@class": "HopResult", **out.model_dump()},
            }
        )
    jobs.docs_store.update(docs, key=["uuid", "index"])
    formation = derived_store(None, workdir, "formation_energies")
    formation.connect()
    formation.update([formation_doc(*row) for row in FORMATION], key="derived_id")

    section = ReportSection(
        key="hops",
        title="Hops",
        records=hop_records,
        columns=("species", "barrier_ev", *WIDE),
        figures=hop_figures,
    )
    spec = StageSpec(
        name="hops",
        settings=None,
        build=lambda ctx, st: None,
        output_schema=HopResult,
        no_builder="toy",
        report=section,
    )
    drawn: dict[str, list] = {}
    original = plots._png

    def recording(plt, fig):  # the points every figure draws (lines with markers)
        title = fig.axes[0].get_title()
        drawn[title] = [
            (x, y)
            for ax in fig.axes
            for line in ax.get_lines()
            if line.get_marker() not in (None, "None", "", " ")
            for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)
        ]
        return original(plt, fig)

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(STAGES, "hops", spec)
        patch.setattr(plots, "_png", recording)
        page = write_report(jobs, {"formation_energies": formation}, workdir / "report")
    return page, drawn


def test_no_flagged_or_excluded_number_stands_unmarked(browser, verdict_report):
    page, _ = verdict_report
    browser.set_window_size(1400, 1000)
    browser.get(page.resolve().as_uri())
    tables = browser.execute_script(TABLES_JS)
    (hops,) = [t for t in tables if t["head"][:3] == ["status", "species", "barrier (eV)"]]
    marks = {"valid": "✓ valid", "flagged": "⚠ flagged", "excluded": "✗ excluded"}
    report = json.loads((page.parent / "report.json").read_text())
    assert [r["status"] for r in report["hops"]] == [h[2] for h in HOPS]
    for record, row in zip(report["hops"], hops["rows"], strict=True):
        assert row["cells"][1] == record["species"]
        assert row["cells"][0].startswith(marks[record["status"]]), row
        if record["status"] != "valid":
            assert row["cls"] == record["status"]
            target = browser.find_element("css selector", row["link"])  # the footnote
            assert record["reasons"][0] in target.text
        numbers = [c for c in row["cells"][2:] if c]
        if record["status"] == "excluded":  # every number struck through
            assert all(row["struck"][2:][k] for k, c in enumerate(row["cells"][2:]) if c)
        assert numbers, row
    # the numbers of the flagged row (each unique) appear nowhere outside a marked row
    flagged = hops["rows"][1]
    for number in flagged["cells"][2:]:
        for table in tables:
            for row in table["rows"]:
                if number in row["cells"]:
                    assert row["cells"][0].startswith(("⚠ flagged", "✗ excluded")), (number, row)
    # the missing barrier is an empty cell, not 0
    assert hops["rows"][3]["cells"][2] == ""
    # the wide table scrolls inside its box; the page itself does not widen at 1,400 px
    scroll, client, overflow = hops["wrap"]
    assert scroll > client and overflow == "auto"
    width = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1]


def test_no_missing_value_is_drawn_and_every_figure_has_a_caption(browser, verdict_report):
    page, drawn = verdict_report
    # the toy figure: only the valid and the flagged barrier
    assert [round(y, 4) for _, y in drawn[""]] == [0.2113, 0.1741]
    # ΔE: points only at the compositions with samples; x = 0.5 is a gap, never a 0
    delta = drawn["E(amorphous) − E(crystalline), melt–quench"]
    assert {x for x, _ in delta} == {0.0, 1.0}
    assert all(y != 0 for _, y in delta)
    browser.get(page.resolve().as_uri())
    captions = browser.execute_script(
        "return Array.from(document.images, i => { const f = i.closest('figure');"
        " const c = f && f.querySelector('figcaption'); return c ? c.textContent : null; });"
    )
    assert captions and all(c and c.startswith("Figure ") for c in captions), captions
    assert "Figure 2. Barriers of the valid and flagged hops only." in captions
    text = browser.find_element("tag name", "body").text
    assert "**" not in text and "`" not in text  # Markdown rendered, not shown
    assert "Na5SmSi4O12" not in text and "Experimental reference" not in text
    tables = browser.execute_script(TABLES_JS)
    (formation,) = [t for t in tables if "x" in t["head"] or "Li fraction" in t["head"]]
    missing = next(r for r in formation["rows"] if r["cells"][0] == "Na3Li3(ClO)2")
    delta_column = formation["head"].index("ΔE amorphous − crystalline (meV/atom)")
    assert missing["cells"][delta_column] == ""
