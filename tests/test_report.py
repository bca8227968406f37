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
    assert "<tr><th>a</th><th>b</th></tr>\n<tr><td>1</td><td>x&lt;y</td></tr>" in page
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    assert "src='http" not in page  # nothing fetched from outside
