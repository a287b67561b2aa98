"""Page timings of the dashboard: `python -m dashboard.bench [--artifacts DIR] [--experiment NAME] [--json]`;
with `--browser [--rounds N]`: cold start and page switches in a real browser (dashboard/bench_browser.py).

For every page it measures, with Streamlit's AppTest in this process:
  cold  the first render (empty Streamlit caches; Python modules already imported),
  warm  the median of later renders (what a user sees when switching pages),
each in two fresh processes: first open (no disk caches) and re-open (numba's compiled code on disk).
Hidden states, in two more fresh processes: the page as the very first one a new server renders
(the process's imports included), and as the first visit after the Overview; then every map the
training job stored (each view, layer and method), and which heavy modules the path imported
(UMAP/numba must not be among them: stored maps are drawn, not fitted).
For UMAP of `--umap-points` hidden states: the first fit in a new process (numba compile
included) and a warm fit (compiled).
Prints a table (or JSON). Targets: warm page <= 2 s; every stored map <= 2 s on a fresh server
(after the process's one-off imports); warm UMAP of 5,000 points <= 10 s.
Server-side times only; the browser tests (tests/e2e) measure navigation to a drawn chart.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HEAVY_MODULES = ("umap", "numba", "pynndescent", "torch")
REPO = Path(__file__).resolve().parents[1]


def _render(at, page: str | None) -> float:
    t0 = time.perf_counter()
    if page:
        at.switch_page(page)
    at.run()
    dt = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"page {page} raised: {[e.value for e in at.exception]}")
    return dt


def listed_pages(at) -> dict[str, str]:
    """{page file: title} of the pages the app's navigation lists (AppTest keeps st.navigation's
    registry after a run)."""
    return {Path(i["script_path"]).resolve().relative_to(REPO).as_posix(): i["page_name"]
            for i in at._registered_pages.values() if i.get("script_path")}


def page_timings(artifacts: Path, experiment: str | None, repeats: int) -> list[dict]:
    from streamlit.testing.v1 import AppTest

    os.environ["SAML_ARTIFACTS"] = str(artifacts)
    os.environ.pop("SAML_DEMO_MODE", None)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    if experiment:
        at.session_state["experiment"] = experiment
    boot = _render(at, None)
    rows = []
    for path, page in listed_pages(at).items():
        cold = _render(at, path)
        warm = [_render(at, path) for _ in range(repeats)]
        rows.append({"page": page, "cold_s": round(cold, 3), "warm_s": round(statistics.median(warm), 3),
                     "warm_max_s": round(max(warm), 3)})
    rows.insert(0, {"page": "(first run of the app: imports, sidebar)", "cold_s": round(boot, 3), "warm_s": None,
                    "warm_max_s": None})
    return rows


def hidden_timings(artifacts: Path, experiment: str | None, after_overview: bool) -> dict:
    """The hidden-states page in a fresh process: its first render (as the server's very first page,
    or as the first visit after the Overview) and every stored map, with the heavy modules imported."""
    from streamlit.testing.v1 import AppTest

    from saml_core import store

    os.environ["SAML_ARTIFACTS"] = str(artifacts)
    os.environ.pop("SAML_DEMO_MODE", None)
    before = {m for m in HEAVY_MODULES if m in sys.modules}
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    if experiment:
        at.session_state["experiment"] = experiment
    overview = _render(at, None) if after_overview else None
    if not after_overview:
        at.switch_page("app_pages/hidden_states.py")
        first = _render(at, None)
    else:
        first = _render(at, "app_pages/hidden_states.py")
    name = at.session_state["experiment"]
    run_id = at.selectbox(key="hs_run").value
    stored = store.load_experiment(artifacts, name).run(run_id).load_maps() or {}
    maps = []
    for key in sorted(k for k in stored if k.count("_") == 2 and k.split("_")[0] in ("umap", "pca")):
        method, view, layer = key.split("_")
        t0 = time.perf_counter()
        at.radio(key="hs_view").set_value(view).run()
        at.selectbox(key="hs_layer").set_value(int(layer)).run()
        at.radio(key="hs_method").set_value(method).run()
        if at.get("select_slider") and int(at.select_slider(key="hs_size").value) != stored[key].shape[0]:
            at.select_slider(key="hs_size").set_value(int(stored[key].shape[0])).run()
        dt = time.perf_counter() - t0
        if at.exception:
            raise RuntimeError(f"hidden states raised: {[e.value for e in at.exception]}")
        drawn = "Map computed by the training job" in " ".join(c.value for c in at.caption)
        maps.append({"map": key, "points": int(stored[key].shape[0]), "seconds": round(dt, 3), "stored": drawn})
    return {"first_render_s": round(first, 3), "overview_s": None if overview is None else round(overview, 3),
            "maps": maps, "imported": sorted({m for m in HEAVY_MODULES if m in sys.modules} - before)}


def umap_timings(artifacts: Path, experiment: str | None, points: int) -> dict:
    import numpy as np

    from dashboard import embedding
    from saml_core import maps, store
    from saml_core.models import registry as models

    names = [s.name for s in store.list_experiments(artifacts) if s.error is None]
    name = experiment or (names[0] if names else None)
    exp = store.load_experiment(artifacts, name)
    def states(r):  # probes with hidden states (runs whose weights were not kept store none)
        entry = models.find(r.model)
        if entry is None or "hidden" not in entry.probes or r.error is not None or not r.has_probes:
            return None
        p = r.load_probes()
        return p if embedding.hidden_layers(p, "own") else None

    run, probes = next((r, p) for r in exp.runs if (p := states(r)) is not None)
    page_view = view = "all" if embedding.hidden_layers(probes, "all") else "own"
    x, _ = embedding.points(probes, view, 0, points, list(exp.scenario_names))
    if len(x) < points and view == "all":
        # A small probe subset: pool own-branch and every-branch states of the same layer (same
        # width, all real hidden states) to reach the requested workload.
        own, _ = embedding.points(probes, "own", 0, points - len(x), list(exp.scenario_names))
        x, view = np.concatenate([x, own]), "all+own"
    for other in exp.runs:  # still short: own-branch states of the other SAML runs (same width)
        if len(x) >= points:
            break
        other_probes = None if other is run else states(other)
        if other_probes is None:
            continue
        more, _ = embedding.points(other_probes, "own", 0, points - len(x), list(exp.scenario_names))
        if more.shape[1] == x.shape[1]:
            x, view = np.concatenate([x, more]), view + f"+{other.run_id}"
    t0 = time.perf_counter()
    maps.fit_umap(x)  # numba compiles UMAP's and NN-descent's code paths on the first fit
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    maps.fit_umap(x)
    warm = time.perf_counter() - t0
    return {"run": run.run_id, "view": view, "points": int(len(x)), "first_fit_s": round(first, 2),
            "warm_fit_s": round(warm, 2), "dims": int(np.shape(x)[1])}


def _child(mode: str, artifacts: Path, experiment: str | None, repeats: int, points: int) -> dict | list:
    """Run one measurement in a fresh Python process (imports and numba compile included)."""
    import subprocess

    cmd = [sys.executable, "-m", "dashboard.bench", "--child", mode, "--artifacts", str(artifacts),
           "--repeats", str(repeats), "--umap-points", str(points)]
    if experiment:
        cmd += ["--experiment", experiment]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dashboard.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=None, help="artifacts root (default $SAML_ARTIFACTS, else the project's artifacts/ folder)")
    ap.add_argument("--experiment", default=None, help="experiment to show (default: the sidebar's default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--umap-points", type=int, default=5000)
    ap.add_argument("--no-umap", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--browser", action="store_true",
                    help="time cold start and page switches in headless Chromium instead (dashboard/bench_browser.py)")
    ap.add_argument("--rounds", type=int, default=3, help="--browser: fresh server + browser context per round")
    ap.add_argument("--compare-warmup", action="store_true",
                    help="--browser: every round twice, with and without the browser warm-up, alternating")
    ap.add_argument("--against", type=Path, default=None, metavar="DIR",
                    help="--browser: also time the cold start of another checkout of the project in every round")
    ap.add_argument("--floor", action="store_true",
                    help="--browser: also time, in every round, a Streamlit page with one small Plotly chart and "
                         "nothing else (what the framework alone costs on this machine)")
    ap.add_argument("--chromium", default=os.environ.get("SAML_CHROMIUM", "/usr/bin/chromium"),
                    help="--browser: the Chromium executable (default $SAML_CHROMIUM, else /usr/bin/chromium)")
    ap.add_argument("--child", choices=["pages", "umap", "hidden-first", "hidden-after-overview"],
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from dashboard.settings import artifacts_root

    if args.browser:
        from dashboard import bench_browser

        return bench_browser.main(args)
    artifacts = (args.artifacts or artifacts_root()).resolve()
    if args.child:
        import warnings

        warnings.filterwarnings("ignore")
        if args.child == "pages":
            res = page_timings(artifacts, args.experiment, args.repeats)
        elif args.child == "umap":
            res = umap_timings(artifacts, args.experiment, args.umap_points)
        else:
            res = hidden_timings(artifacts, args.experiment, after_overview=args.child == "hidden-after-overview")
        print(json.dumps(res))
        return 0
    # Work on a copy: the disk caches of the real folder must not make "first open" look warm.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "artifacts"
        shutil.copytree(artifacts, copy, ignore=shutil.ignore_patterns(".jobs", ".cache"))
        result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                              "platform": platform.platform(), "load_avg_1min": os.getloadavg()[0]},
                  "artifacts": str(args.artifacts or "artifacts"),
                  "first_open": _child("pages", copy, args.experiment, args.repeats, args.umap_points),
                  "reopen": _child("pages", copy, args.experiment, args.repeats, args.umap_points)}
        result["hidden_first"] = _child("hidden-first", copy, args.experiment, args.repeats, args.umap_points)
        result["hidden_after_overview"] = _child("hidden-after-overview", copy, args.experiment, args.repeats,
                                                 args.umap_points)
        if not args.no_umap:
            result["umap"] = _child("umap", copy, args.experiment, args.repeats, args.umap_points)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    m = result["machine"]
    print(f"machine: {m['cpus']} CPUs, Python {m['python']}, load average {m['load_avg_1min']:.1f}")
    print("cold = first render of the page in the process; warm = median of later renders (same process)")
    fmt = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    for title, rows in (("first open (new process, no disk caches)", result["first_open"]),
                        ("re-open (new process, numba's disk cache from the first open)", result["reopen"])):
        print(f"\n{title}")
        print(f"  {'page':42s} {'cold (s)':>9s} {'warm (s)':>9s} {'warm max':>9s}")
        for r in rows:
            print(f"  {r['page']:42s} {fmt(r['cold_s']):>9s} {fmt(r['warm_s']):>9s} {fmt(r['warm_max_s']):>9s}")
    for title, h in (("Hidden states as the first page of a new server (its imports included)",
                      result["hidden_first"]),
                     ("Hidden states as the first visit after the Overview (new server)",
                      result["hidden_after_overview"])):
        print(f"\n{title}: first render {h['first_render_s']:.3f} s"
              + (f" (Overview before it: {h['overview_s']:.3f} s)" if h["overview_s"] is not None else "")
              + f"; heavy modules imported: {', '.join(h['imported']) or 'none'}")
        for m in h["maps"]:
            print(f"  {m['map']:16s} {m['points']:6d} points {m['seconds']:7.3f} s"
                  + ("" if m["stored"] else "  (NOT the stored map)"))
    if "umap" in result:
        u = result["umap"]
        print(f"\nUMAP ({u['run']}, view {u['view']}, {u['points']} points x {u['dims']} dims), new process: "
              f"first fit (numba compile included) {u['first_fit_s']} s, "
              f"warm fit of all points {u['warm_fit_s']} s (the page keeps a fitted map in memory, never on disk)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
