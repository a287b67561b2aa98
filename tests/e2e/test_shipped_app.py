"""The shipped app as an audience meets it: `SAML_DEMO_MODE=1 streamlit run app.py` on the
repository's own artifacts/ (the demo experiments), in headless Chromium.

The Overview's first 1400x900 screen holds the headline sentence and its chart; every page of
every shipped experiment draws something (a chart or a table), says nothing that does not hold
for its data (no oracle sentence on real data, while the simulated one has it), and the server
logs no RuntimeWarning on the way. Skipped, with the reason printed, when Chromium is absent;
the shipped experiments are part of the repository, so their absence fails.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dashboard_support import REPO  # noqa: E402

CHROMIUM = Path(os.environ.get("SAML_CHROMIUM", "/usr/bin/chromium"))
SHIPPED = REPO / "artifacts"

pytestmark = pytest.mark.e2e

if not CHROMIUM.exists():
    reason = f"Chromium not found at {CHROMIUM}: browser end-to-end tests skipped (apt-get install chromium)"
    print(f"\nSKIP: {reason}", file=sys.stderr)
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from test_browser import wait_ready  # noqa: E402

from dashboard.bench_browser import CHROMIUM_ARGS, free_port, start_server, stop_server  # noqa: E402


def shipped_experiments() -> list[str]:
    names = sorted(p.parent.name for p in SHIPPED.glob("*/experiment.json"))
    assert names, f"no shipped demo experiments under {SHIPPED}"
    return names


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A read-only demo server on the repository's artifacts (demo mode: nothing can be launched)."""
    log_path = tmp_path_factory.mktemp("shipped") / "streamlit.log"
    log = open(log_path, "w")
    port = free_port()
    proc, _ = start_server(SHIPPED, port, log, demo_mode=True)
    url = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 900})
        pg.set_default_timeout(120_000)
        yield url, pg, log_path
        browser.close()
    stop_server(proc)
    log.close()


def pick_experiment(pg, name: str) -> None:
    pg.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    pg.get_by_role("option", name=name, exact=False).first.click()
    wait_ready(pg, charts=0)


def test_first_screen_shows_the_headline_and_its_chart(shipped):
    url, pg, _ = shipped
    pg.goto(url)
    wait_ready(pg, charts=1)
    pick_experiment(pg, "demo (")
    wait_ready(pg, charts=1)
    sentence = pg.locator('[data-testid="stMarkdownContainer"] strong').filter(has_text="By within-").first
    expect(sentence).to_be_visible()
    box = sentence.bounding_box()
    assert box["y"] + box["height"] <= 900, box
    chart = pg.locator(".js-plotly-plot").filter(has_text="AUC per model").first
    box = chart.bounding_box()
    assert box["y"] + box["height"] <= 900, box


def test_every_page_of_every_shipped_experiment_draws_and_says_only_what_holds(shipped):
    url, pg, log_path = shipped
    pg.goto(url)
    wait_ready(pg, charts=1)
    for name in shipped_experiments():
        pick_experiment(pg, f"{name} (")
        real = json.loads((SHIPPED / name / "experiment.json").read_text()).get("dataset_kind") != "synthetic"
        links = pg.locator('[data-testid="stSidebarNav"] a')
        titles = [[t for t in links.nth(i).inner_text().splitlines() if t.strip()][-1] for i in range(links.count())]
        assert "Retrain" not in titles and len(titles) >= 4, titles
        for title in titles[1:] + titles[:1]:  # the Overview is shown already: it comes last
            old = pg.locator("h1").first.inner_text()
            pg.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
            pg.wait_for_function("old => (document.querySelector('h1') || {}).textContent !== old", arg=old)
            wait_ready(pg, charts=0)
            pg.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg, "
                                 "[data-testid=\"stDataFrame\"]').length > 0", timeout=60_000)  # no empty page
            text = pg.inner_text('[data-testid="stMain"]')
            if title.startswith("AUC per"):
                has_dash = "black dash" in text
                assert has_dash != real, (name, "oracle sentence" if real else "no oracle sentence on simulated data")
            if real:
                assert "oracle" not in text.lower(), (name, title)
    log = log_path.read_text()
    assert "RuntimeWarning" not in log and "Traceback" not in log, log[-3000:]
