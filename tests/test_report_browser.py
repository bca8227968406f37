"""Browser check of the report (issue 12, item 5): ``ctaflow report`` on a small campaign's store,
then index.html opened in headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
installed by ``make test``). Every figure must load and be painted whole at the size of its PNG,
and the console must show no error. A negative control shows that the check catches broken
figures and a script error."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest
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
