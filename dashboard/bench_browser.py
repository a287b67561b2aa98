"""The dashboard as a viewer meets it, timed in a real browser: `python -m dashboard.bench --browser`.

Each round starts `streamlit run app.py` in a fresh process (no Streamlit cache, no warm Python) and
a fresh browser context (no browser cache) on headless Chromium, which was started before the
round (its own start is not counted). Times, in seconds:

  cold start   from the moment the server answers its health check (listening) to the Overview's
               first chart drawn (its SVG in the page); also to the first title and to the end of
               the script's run
  page switch  from the click on a page's link in the sidebar to that page drawn: its title, and
               its first new chart (pages that draw one) or its main control (Retrain)

every page of the navigation in order, then back to the Overview (a revisit). Each round is two
server starts: the first with an empty dashboard cache (a server's first start ever: the report
of the experiment is computed), then a restart, which finds that report kept
(dashboard/report_cache.py); `--compare-warmup` adds both again without the browser warm-up
(dashboard/warmup.py), and `--against DIR` a first start of another checkout of the project (e.g.
an older commit, `git archive COMMIT | tar -x -C DIR`) on the same artifacts, interleaved; `--floor`
a first start of the least a Streamlit page with a Plotly chart can be (FLOOR_APP: two pages, each
a title and one small chart, the same browser warm-up, nothing of this project) and its page
switches, interleaved too, so that the report can say how much of the cold start and of a switch
is the app's own and how much the framework's on this machine. Medians over the rounds with min and max, the machine (CPU
model, cores, load average at each round) and the targets: cold start <= 2 s, every page switch
<= 1 s. On a shared machine read the spread and the load average.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLD_TARGET_S = 2.0
SWITCH_TARGET_S = 1.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# What marks each page as drawn: a chart (the Overview, AUC, correlations, hidden states, sweeps)
# or, for the form page, its submit button.
FORM_PAGES = {"app_pages/retrain.py": "Validate and launch"}
_CHART_SVG = ".js-plotly-plot .main-svg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(artifacts: Path, port: int, log, warmup: bool = True, cache: Path | None = None,
                 repo: Path = REPO, demo_mode: bool = False) -> tuple[subprocess.Popen, float]:
    """`streamlit run app.py` on `artifacts` (the bench's rounds and the browser tests' servers):
    the process and the perf_counter time its health check first answered."""
    env = {**os.environ, "SAML_ARTIFACTS": str(artifacts), "PYTHONUNBUFFERED": "1",
           "SAML_BROWSER_WARMUP": "1" if warmup else "0"}
    if cache is not None:
        env["SAML_DASHBOARD_CACHE"] = str(cache)
    env.pop("SAML_DEMO_MODE", None)
    if demo_mode:
        env["SAML_DEMO_MODE"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"],
                            cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.perf_counter() + 120
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status == 200:
                return proc, time.perf_counter()
        except OSError:
            pass
        if proc.poll() is not None or time.perf_counter() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit did not start (its log: {getattr(log, 'name', log)})")
        time.sleep(0.02)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _nav_links(pg) -> list[tuple[str, str]]:
    """(href path, title) of the sidebar's page links, in order."""
    links = pg.locator('[data-testid="stSidebarNav"] a')
    links.first.wait_for()
    out = []
    for i in range(links.count()):
        a = links.nth(i)
        text = [t for t in a.inner_text().splitlines() if t.strip()]  # a material icon's name comes first
        out.append((a.get_attribute("href") or "", text[-1].strip()))
    return out


def _run_finished(pg, timeout_ms: float = 120_000) -> None:
    """Until the script's run has ended (Streamlit marks it on its app root)."""
    pg.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')"
                         "?.getAttribute('data-test-script-state') === 'notRunning'", timeout=timeout_ms)


def _switch(pg, title: str, form_button: str | None) -> float:
    """Click the page's sidebar link; seconds until its title and first new chart (or its form
    button) are drawn. Charts of the page before are recognised by their titles."""
    old_titles = pg.evaluate("() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].map(e => e.textContent)")
    old_h1 = pg.locator("h1").first.inner_text()
    t0 = time.perf_counter()
    pg.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    pg.wait_for_function("old => { const h = document.querySelector('h1'); return h && h.textContent !== old; }",
                         arg=old_h1, timeout=120_000)
    if form_button:
        pg.get_by_role("button", name=form_button).wait_for(timeout=120_000)
    else:
        pg.wait_for_function(
            "old => [...document.querySelectorAll('.js-plotly-plot')].some(p => p.querySelector('.main-svg') && "
            "!old.includes((p.querySelector('.gtitle') || {}).textContent))", arg=old_titles, timeout=120_000)
    return time.perf_counter() - t0


def one_round(browser, artifacts: Path, log, warmup: bool = True, cache: Path | None = None,
              variant: str = "", repo: Path = REPO) -> dict:
    """One server start; page switches too unless `repo` is another checkout (whose pages this
    script may not know): there, the cold start only."""
    port = free_port()
    load = os.getloadavg()[0]
    proc, listening = start_server(artifacts, port, log, warmup, cache, repo)
    try:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        pg = ctx.new_page()
        pg.set_default_timeout(120_000)
        pg.goto(f"http://127.0.0.1:{port}/")
        pg.wait_for_selector("h1")
        t_title = time.perf_counter() - listening
        pg.wait_for_selector(_CHART_SVG, state="attached")
        t_chart = time.perf_counter() - listening
        _run_finished(pg)
        t_done = time.perf_counter() - listening
        links = _nav_links(pg) if repo == REPO or variant == FLOOR else []
        switches = []
        for href, title in links[1:] + links[:1]:  # every other page, then back to the Overview
            path = next((p for p in FORM_PAGES if href.rstrip("/").endswith(Path(p).stem)), None)
            seconds = _switch(pg, title, FORM_PAGES.get(path))
            switches.append({"page": title, "seconds": round(seconds, 3)})
            _run_finished(pg)
        ctx.close()
    finally:
        stop_server(proc)
    return {"variant": variant, "warmup": warmup, "load_avg_1min": round(load, 2), "cold_title_s": round(t_title, 3),
            "cold_first_chart_s": round(t_chart, 3), "cold_run_finished_s": round(t_done, 3), "switches": switches}


FIRST = "first start (no report kept by an earlier server)"
RESTART = "restart (the report kept by the server before, dashboard/report_cache.py)"


AGAINST = "another checkout (--against), same artifacts, first start"
FLOOR = "floor (--floor): two Streamlit pages, each a title and one small Plotly chart, nothing else"
# The floor's pages: what every Streamlit page with a Plotly chart pays (the frontend's start, the
# websocket, the chart component; a page switch) with the same warm-up as the app
# (dashboard/warmup.py).
FLOOR_APP = """import sys
sys.path.insert(0, {repo!r})
import streamlit as st
from dashboard import warmup
warmup.start()
import plotly.graph_objects as go


def page(name):
    def draw():
        st.title(name)
        st.plotly_chart(go.Figure(go.Bar(x=["a", "b"], y=[1, 2])).update_layout(title=name + " chart"))
    return draw


st.navigation([st.Page(page("Floor"), title="Floor", url_path="floor", default=True),
               st.Page(page("Other"), title="Other", url_path="other")]).run()
"""


def run(artifacts: Path, rounds: int, chromium: Path, compare_warmup: bool = False, against: Path | None = None,
        floor: bool = False) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "artifacts"  # no job queue, no caches of the real folder
        shutil.copytree(artifacts, copy, ignore=shutil.ignore_patterns(".jobs", ".cache"))
        floor_dir = Path(tmp) / "floor"
        if floor:
            floor_dir.mkdir()
            (floor_dir / "app.py").write_text(FLOOR_APP.format(repo=str(REPO)))
        with sync_playwright() as p, open(Path(tmp) / "streamlit.log", "w") as log:
            browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
            try:
                # Interleaved: each round starts a server with an empty dashboard cache, then
                # restarts it on the cache the first one filled (with --compare-warmup, the same
                # again without the browser warm-up).
                results = []
                for i in range(rounds):
                    if against is not None:
                        results.append(one_round(browser, copy, log, True, Path(tmp) / f"other-{i}", AGAINST,
                                                 against.resolve()))
                    if floor:
                        results.append(one_round(browser, copy, log, True, None, FLOOR, floor_dir))
                    for warmup in ((True, False) if compare_warmup else (True,)):
                        cache = Path(tmp) / f"cache-{i}-{int(warmup)}"
                        for variant in (FIRST, RESTART):
                            results.append(one_round(browser, copy, log, warmup, cache, variant))
                version = browser.version
            finally:
                browser.close()
    import streamlit

    from saml_core.runtime import cpu_model

    return {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                        "streamlit": streamlit.__version__, "chromium": version,
                        "load_avg_1min_end": round(os.getloadavg()[0], 2)},
            "artifacts": _shown(artifacts), "against": str(against) if against else None, "rounds": results,
            "targets": {"cold_first_chart_s": COLD_TARGET_S, "page_switch_s": SWITCH_TARGET_S}}


def _stats(values: list[float]) -> str:
    return f"median {statistics.median(values):6.2f}  min {min(values):6.2f}  max {max(values):6.2f}"


def report(result: dict) -> str:
    m = result["machine"]
    parts = [f"machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, Streamlit {m['streamlit']}, "
             f"Chromium {m['chromium']} (headless)"]
    groups = list(dict.fromkeys((r["warmup"], r["variant"]) for r in result["rounds"]))
    for warmup, variant in groups:
        rounds = [r for r in result["rounds"] if (r["warmup"], r["variant"]) == (warmup, variant)]
        parts.append(f"\n=== {variant}" + ("" if warmup else ", WITHOUT the browser warm-up") + " ===")
        parts.append(_report_rounds(result, rounds))
    if any(v == AGAINST for _, v in groups):
        other = [r["cold_first_chart_s"] for r in result["rounds"] if r["variant"] == AGAINST]
        for variant in (FIRST, RESTART):
            mine = [r["cold_first_chart_s"] for r in result["rounds"] if r["warmup"] and r["variant"] == variant]
            ratios = [a / b for a, b in zip(other, mine)]
            parts.append(f"\n{variant.split(' (')[0]}: cold start to the first chart, the other checkout / this one, "
                         "rounds in pairs: " + ", ".join(f"{x:.2f}" for x in ratios)
                         + f" (median {statistics.median(ratios):.2f})")
    if any(v == FLOOR for _, v in groups):
        floor = [r["cold_first_chart_s"] for r in result["rounds"] if r["variant"] == FLOOR]
        for variant in (FIRST, RESTART):
            mine = [r["cold_first_chart_s"] for r in result["rounds"] if r["warmup"] and r["variant"] == variant]
            own = [a - b for a, b in zip(mine, floor)]
            parts.append(f"\n{variant.split(' (')[0]}: cold start to the first chart minus the floor's in the same round "
                         "(the app's own part): " + ", ".join(f"{x:.2f}" for x in own)
                         + f" s (median {statistics.median(own):.2f} s)")
        if statistics.median(floor) > COLD_TARGET_S:
            parts.append(f"the floor alone takes {statistics.median(floor):.2f} s (median) to its first chart on this "
                         f"machine: above the {COLD_TARGET_S:.0f} s target before the app does anything")
        switches = [s["seconds"] for r in result["rounds"] if r["variant"] == FLOOR for s in r["switches"]]
        if switches:
            parts.append(f"the floor's page switches (to its other page and back): median "
                         f"{statistics.median(switches):.2f} s (min {min(switches):.2f}, max {max(switches):.2f})")
    if any(not w for w, _ in groups):
        for variant in (FIRST, RESTART):
            on = [r["cold_first_chart_s"] for r in result["rounds"] if r["warmup"] and r["variant"] == variant]
            off = [r["cold_first_chart_s"] for r in result["rounds"] if not r["warmup"] and r["variant"] == variant]
            ratios = [b / a for a, b in zip(on, off)]
            parts.append(f"\n{variant.split(' (')[0]}: cold start to the first chart without / with the warm-up, "
                         "rounds in pairs: " + ", ".join(f"{x:.2f}" for x in ratios)
                         + f" (median {statistics.median(ratios):.2f})")
    return "\n".join(parts)


def _shown(path: Path) -> str:
    """A folder as the report names it: relative to the project when inside it, so a printed or
    pasted report names no machine's own folders."""
    path = Path(path).resolve()
    return path.relative_to(REPO).as_posix() + "/" if path.is_relative_to(REPO) else str(path)


def _report_rounds(result: dict, rounds: list[dict]) -> str:
    lines = [f"artifacts: {result['artifacts']}; {len(rounds)} rounds, each a fresh server and browser context; "
             "load average (1 min) at each round's start: " + ", ".join(f"{r['load_avg_1min']:.1f}" for r in rounds),
             "", "cold start, from the server listening (s):"]
    cold = [r["cold_first_chart_s"] for r in rounds]
    for key, what in (("cold_title_s", "title drawn"), ("cold_first_chart_s", "first chart drawn"),
                      ("cold_run_finished_s", "run finished")):
        lines.append(f"  {what:30s} {_stats([r[key] for r in rounds])}")
    ok = statistics.median(cold) <= COLD_TARGET_S
    lines.append(f"  target: first chart <= {COLD_TARGET_S:.0f} s: {'met' if ok else 'NOT met'} (median)")
    if not rounds[0]["switches"]:
        return "\n".join(lines)
    lines += ["", "page switch, from the click to the page drawn (s):"]
    pages = [s["page"] for s in rounds[0]["switches"]]
    worst = 0.0
    for i, page in enumerate(pages):
        vals = [r["switches"][i]["seconds"] for r in rounds if i < len(r["switches"])]
        label = page + (" (revisit)" if i == len(pages) - 1 else "")
        lines.append(f"  {label:30s} {_stats(vals)}")
        worst = max(worst, statistics.median(vals))
    lines.append(f"  target: every switch <= {SWITCH_TARGET_S:.0f} s: "
                 f"{'met' if worst <= SWITCH_TARGET_S else 'NOT met'} (slowest median {worst:.2f} s)")
    return "\n".join(lines)


def main(args) -> int:
    from dashboard.settings import artifacts_root

    chromium = Path(args.chromium)
    if not chromium.exists():
        print(f"error: Chromium not found at {chromium} (apt-get install chromium, or --chromium PATH)",
              file=sys.stderr)
        return 2
    result = run((args.artifacts or artifacts_root()).resolve(), args.rounds, chromium, args.compare_warmup,
                 args.against, args.floor)
    print(json.dumps(result, indent=1) if args.json else report(result))
    return 0
