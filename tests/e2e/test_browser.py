"""End to end in a real browser: `streamlit run app.py` driven by Playwright on Debian's Chromium.

Opens every page, waits for every chart to draw, changes a control, launches a tiny retrain
and watches it finish and appear in the experiment picker. Screenshots go to test-screenshots/.
Skipped, with the reason printed, when Chromium is not installed.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dashboard_support import REPO, build_quick_artifacts, copy_artifacts  # noqa: E402

CHROMIUM = Path(os.environ.get("SAML_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / "test-screenshots"

pytestmark = pytest.mark.e2e

if not CHROMIUM.exists():
    reason = f"Chromium not found at {CHROMIUM}: browser end-to-end tests skipped (apt-get install chromium)"
    print(f"\nSKIP: {reason}", file=sys.stderr)
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = copy_artifacts(build_quick_artifacts(tmp_path_factory.getbasetemp()),
                          tmp_path_factory.mktemp("e2e") / "artifacts")
    port = free_port()
    log = open(root.parent / "streamlit.log", "w")
    env = {**os.environ, "SAML_ARTIFACTS": str(root), "PYTHONUNBUFFERED": "1"}
    env.pop("SAML_DEMO_MODE", None)
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit did not start: {(root.parent / 'streamlit.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url, root
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def page(server):
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def wait_ready(pg, charts: int) -> None:
    """Streamlit finished the run and at least `charts` Plotly charts have drawn their SVG."""
    pg.wait_for_selector('[data-testid="stApp"]')
    pg.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
    if charts:
        pg.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                             timeout=120_000)
    expect(pg.locator('[data-testid="stException"]')).to_have_count(0)


def shot(pg, name: str) -> None:
    # The app scrolls inside its main block: grow the viewport to it so nothing is cut off.
    height = pg.evaluate("() => Math.max(...[...document.querySelectorAll('section, [data-testid=stMain]')]"
                         ".map(e => e.scrollHeight), document.body.scrollHeight)")
    pg.set_viewport_size({"width": 1440, "height": min(int(height) + 40, 9000)})
    pg.wait_for_timeout(500)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    pg.set_viewport_size({"width": 1440, "height": 1000})


def legend_names(pg) -> list[str]:
    return pg.locator(".js-plotly-plot .legendtext").all_inner_texts()


def test_every_page_draws_and_reacts(server, page):
    url, _ = server
    page.goto(url)
    wait_ready(page, charts=1)
    expect(page.get_by_text("What this dashboard answers").first).to_be_visible()
    expect(page.get_by_text("Simulated data").first).to_be_visible()
    shot(page, "1-overview")

    page.goto(f"{url}/per_scenario")
    wait_ready(page, charts=3)
    assert "SAML w/o gate&mut" not in legend_names(page)
    more = page.locator('[data-testid="stMultiSelect"]').first.locator("input")
    more.click()
    page.get_by_role("option", name="SAML w/o gate&mut").click()
    page.keyboard.press("Escape")
    page.wait_for_function("() => [...document.querySelectorAll('.legendtext')]"
                           ".some(e => e.textContent === 'SAML w/o gate&mut')")
    wait_ready(page, charts=3)
    shot(page, "2-auc-per-country")

    page.goto(f"{url}/correlations")
    wait_ready(page, charts=6)
    shot(page, "3-correlations")

    page.goto(f"{url}/hidden_states")
    wait_ready(page, charts=1)
    shot(page, "4-hidden-states")
    page.get_by_text("The same samples through every branch").click()
    page.wait_for_function("() => [...document.querySelectorAll('.gtitle')].some(e => e.textContent.includes('every branch'))",
                           timeout=120_000)
    wait_ready(page, charts=1)
    shot(page, "4-hidden-states-all-branches")


def test_tiny_retrain_finishes_and_appears(server, page):
    url, root = server
    page.goto(f"{url}/retrain")
    wait_ready(page, charts=0)
    preset = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Preset", exact=True))
    preset.click()
    page.get_by_role("option", name="quick").click()
    wait_ready(page, charts=0)
    name_box = page.get_by_label("Experiment name")
    name_box.fill("e2e-tiny")
    # Keep it tiny: replace the default models by the logistic regression alone.
    models = page.locator('[data-testid="stMultiSelect"]').first.locator("input")
    models.click()
    for _ in range(3):
        models.press("Backspace")
    models.fill("LR")
    page.get_by_role("option", name="LR (target encoding)").click()
    page.keyboard.press("Escape")
    expect(page.locator('[data-testid="stMultiSelect"]').first.get_by_text("SAML", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Validate and launch").click()
    expect(page.get_by_text("Queued “e2e-tiny”").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("e2e-tiny · synthetic-countries · 1 model(s)").first).to_be_visible()
    page.wait_for_timeout(3000)
    shot(page, "5-retrain-running")
    expect(page.get_by_text("Finished — pick e2e-tiny in the sidebar").first).to_be_visible(timeout=480_000)
    shot(page, "5-retrain-finished")
    assert (root / "e2e-tiny" / "experiment.json").exists()

    # The new experiment is in the picker without restarting the app.
    page.goto(url)
    wait_ready(page, charts=1)
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="e2e-tiny", exact=False).first.click()
    wait_ready(page, charts=1)
    expect(page.get_by_text("Experiment “e2e-tiny”").first).to_be_visible()
    shot(page, "6-overview-new-experiment")
