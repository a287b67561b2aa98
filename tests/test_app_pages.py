"""Every dashboard page through Streamlit's AppTest, on a real quick experiment.

Each page: it renders with real artifacts, its main controls change what is shown (asserted on
the Plotly figure JSON and the tables), and broken runs give a clear message.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard_support import EXPERIMENT, REPO, build_quick_artifacts, copy_artifacts, figures, page_text, values
from saml_core import jobs as jobs_mod
from saml_core.jobs import JobQueue

TIMEOUT = 120  # AppTest's default of 3 s is too short for a first render with imports


@pytest.fixture(scope="session")
def quick_root(tmp_path_factory) -> Path:
    return build_quick_artifacts(tmp_path_factory.getbasetemp())


@pytest.fixture()
def root(quick_root, tmp_path) -> Path:
    """A private copy: tests may break files or start jobs in it."""
    return copy_artifacts(quick_root, tmp_path / "artifacts")


def open_page(root: Path, monkeypatch, page: str | None = None, demo: bool = False) -> AppTest:
    monkeypatch.setenv("SAML_ARTIFACTS", str(root))
    if demo:
        monkeypatch.setenv("SAML_DEMO_MODE", "1")
    else:
        monkeypatch.delenv("SAML_DEMO_MODE", raising=False)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def experiment_json(root: Path) -> dict:
    return json.loads((root / EXPERIMENT / "experiment.json").read_text())


def saml_run_id(root: Path) -> str:
    return next(r for r in experiment_json(root)["runs"] if r.startswith("saml-full"))


# ---- sidebar and overview ---------------------------------------------------------------

def test_overview_shows_table_curves_and_simulated_badge(root, monkeypatch):
    at = open_page(root, monkeypatch)
    assert at.session_state["experiment"] == EXPERIMENT
    text = page_text(at) + "\n".join(str(w.value) for w in at.sidebar.warning)
    assert "Simulated data" in text and "What this dashboard answers" in "".join(e.label for e in at.expander)
    table = at.dataframe[0].value
    assert {"BST", "SAML", "BST-Individual"} <= set(table["Model"])
    assert table.set_index("Model").at["BST", "RelaImpr vs BST (%)"] == pytest.approx(0.0)
    fig = figures(at)["curves"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "Validation AUC"
    at.radio(key="curve_metric").set_value("train_loss").run()
    fig = figures(at)["curves"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "Training loss"
    assert len(fig["data"]) == len(table)  # one line per run (one seed each)


def test_broken_runs_are_named_and_the_others_still_show(root, monkeypatch):
    runs = experiment_json(root)["runs"]
    bst = next(r for r in runs if r.startswith("bst-"))
    (root / EXPERIMENT / bst / "metrics.json").write_text('{"schema_version": 1, "overall": ')  # truncated
    saml = saml_run_id(root)
    cfg = json.loads((root / EXPERIMENT / saml / "config.json").read_text())
    cfg["schema_version"] = 999  # from an incompatible version
    (root / EXPERIMENT / saml / "config.json").write_text(json.dumps(cfg))
    at = open_page(root, monkeypatch)
    warnings = "\n".join(w.value for w in at.warning)
    assert bst in warnings and "metrics.json" in warnings
    assert saml in warnings
    models = set(at.dataframe[0].value["Model"])
    assert "BST-Individual" in models and "BST" not in models and "SAML" not in models


def test_a_run_that_finishes_appears_without_restart(root, monkeypatch):
    bst = next(r for r in experiment_json(root)["runs"] if r.startswith("bst-"))
    metrics = root / EXPERIMENT / bst / "metrics.json"
    saved = metrics.read_bytes()
    metrics.unlink()  # as if BST were still training
    at = open_page(root, monkeypatch)
    assert "BST" not in set(at.dataframe[0].value["Model"])
    assert any(bst in i.value and "not finished" in i.value for i in at.info)
    metrics.write_bytes(saved)  # the run finishes while the app is open
    at.run()
    assert "BST" in set(at.dataframe[0].value["Model"])


def test_unreadable_experiment_gives_a_clear_message(root, monkeypatch):
    (root / EXPERIMENT / "experiment.json").write_text("not json")
    at = open_page(root, monkeypatch)
    assert any("experiment.json" in e.value for e in at.error), page_text(at)


# ---- per-country AUC ----------------------------------------------------------------------

def test_per_country_bars_table_toggles_and_csv(root, monkeypatch):
    at = open_page(root, monkeypatch, "per_country")
    names = experiment_json(root)["scenario_names"]
    fig = figures(at)["bars"]
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    assert [t["name"] for t in bars] == ["BST-Individual", "BST", "SAML"]
    assert list(bars[0]["x"]) == names and "error_y" in bars[0]
    assert any(t["name"] == "Oracle (best possible)" for t in fig["data"])  # simulator knows it
    table = at.dataframe[0].value
    assert list(table["Scenario"]) == names and "Oracle AUC" in table
    assert at.download_button[0].label.startswith("Download")

    at.toggle(key="show_ablations").set_value(True).run()
    bars = [t["name"] for t in figures(at)["bars"]["data"] if t["type"] == "bar"]
    assert bars == ["BST-Individual", "BST", "SAML", "SAML w/o gate&mut"]
    at.toggle(key="show_oracle").set_value(False).run()
    assert not any(t["name"].startswith("Oracle") for t in figures(at)["bars"]["data"])
    share = figures(at)["traffic"]["data"]
    assert [t["name"] for t in share] == names
    assert sum(values(t["y"])[0] for t in share) == pytest.approx(100, abs=0.5)


# ---- scenario correlations ---------------------------------------------------------------

def test_correlations_heatmap_layers_cdf_and_planted(root, monkeypatch):
    at = open_page(root, monkeypatch, "correlations")
    names = experiment_json(root)["scenario_names"]
    figs = figures(at)
    heat = figs["alpha_heatmap"]["data"][0]
    z0 = np.array(values(heat["z"]), dtype=float)
    assert z0.shape == (len(names), len(names)) and sorted(heat["x"]) == sorted(names)
    assert "samples in row" in heat["hovertemplate"]
    assert {"alpha_cdf", "gate_box", "gate_traffic", "planted", "learned", "data_sim"} <= set(figs)
    assert "Recovery score" in at.metric[0].label

    cdf_default = figs["alpha_cdf"]["layout"]["title"]["text"]
    at.selectbox(key="cdf_source").set_value(names[1]).run()
    cdf = figures(at)["alpha_cdf"]
    assert cdf["layout"]["title"]["text"] != cdf_default and names[1] in cdf["layout"]["title"]["text"]
    assert names[1] not in [t["name"] for t in cdf["data"]] and len(cdf["data"]) == len(names) - 1

    layers = at.selectbox(key="corr_layer").options
    if len(layers) > 1:
        at.selectbox(key="corr_layer").set_value(1).run()
        z1 = np.array(values(figures(at)["alpha_heatmap"]["data"][0]["z"]), dtype=float)
        assert not np.allclose(np.nan_to_num(z0), np.nan_to_num(z1))


def test_correlations_missing_probes_gives_clear_message(root, monkeypatch):
    saml = saml_run_id(root)
    (root / EXPERIMENT / saml / "probes.npz").write_bytes(b"PK\x03\x04 truncated")
    at = open_page(root, monkeypatch, "correlations")
    text = page_text(at)
    assert "probes.npz" in text and saml in text
    assert not at.exception


@pytest.mark.parametrize("page", ["per_country", "correlations", "hidden_states"])
def test_every_page_names_a_broken_run_and_keeps_going(root, monkeypatch, page):
    runs = experiment_json(root)["runs"]
    (root / EXPERIMENT / saml_run_id(root) / "probes.npz").unlink()  # SAML's probes are gone
    bsti = next(r for r in runs if r.startswith("bst_individual"))
    (root / EXPERIMENT / bsti / "metrics.json").write_text("{ not json")  # corrupted
    at = open_page(root, monkeypatch, page)
    text = page_text(at)
    assert not at.exception
    if page == "per_country":
        assert bsti in text and "metrics.json" in text
        bars = [t["name"] for t in figures(at)["bars"]["data"] if t["type"] == "bar"]
        assert "BST-Individual" not in bars and "SAML" in bars  # the others still show
    else:  # no SAML run with probes left: the missing file is named, then a plain explanation
        assert "probes.npz is missing" in text and "no finished SAML run" in text


# ---- hidden states -------------------------------------------------------------------------

def test_hidden_states_umap_views_and_colouring(root, monkeypatch):
    at = open_page(root, monkeypatch, "hidden_states")
    names = experiment_json(root)["scenario_names"]
    slider = at.select_slider(key="hs_size")
    smallest = min(slider.options, key=int)
    slider.set_value(int(smallest)).run()
    fig = figures(at)["umap"]
    assert {t["name"] for t in fig["data"]} <= set(names)
    assert sum(len(values(t["x"])) for t in fig["data"]) == int(smallest)
    assert fig["layout"]["xaxis"]["title"]["text"] == "UMAP dimension 1"

    at.selectbox(key="hs_color_own").set_value("label").run()
    assert {t["name"] for t in figures(at)["umap"]["data"]} <= {"clicked", "not clicked"}
    at.selectbox(key="hs_color_own").set_value("pred").run()
    (trace,) = figures(at)["umap"]["data"]  # one cloud on a colour scale of predicted probability
    assert "colorscale" in trace["marker"] and len(values(trace["marker"]["color"])) == int(smallest)

    at.radio(key="hs_view").set_value("all").run()
    at.select_slider(key="hs_size").set_value(int(min(at.select_slider(key="hs_size").options, key=int))).run()
    fig = figures(at)["umap"]
    assert "every branch" in fig["layout"]["title"]["text"]
    assert {t["name"] for t in fig["data"]} == set(names)  # coloured by branch: every branch shows
    # The fitted map was persisted for the next process.
    assert list((root / ".cache" / "umap").glob("*.npy"))


# ---- retrain and jobs ----------------------------------------------------------------------

def test_retrain_validates_then_queues_and_cancels(root, monkeypatch):
    at = open_page(root, monkeypatch, "retrain")
    at.text_input(key="rt_name").set_value(EXPERIMENT)  # exists already
    at.button[0].click().run()  # "Validate and launch" (the form's submit button)
    assert any("already exists" in e.value for e in at.error)
    assert JobQueue(root / ".jobs").list() == []

    at.text_input(key="rt_name").set_value("tiny")
    at.toggle(key="rt_quick").set_value(True)
    at.multiselect(key="rt_models").set_value(["bst"])
    at.button[0].click().run()
    assert not at.error, [e.value for e in at.error]
    (job,) = JobQueue(root / ".jobs").list()
    assert job.experiment == "tiny" and "--quick" in job.argv and "bst" in job.argv
    assert any(job.title in m.value for m in at.markdown)
    cancel = next(b for b in at.button if b.key and b.key.startswith("cancel-"))
    cancel.click().run()
    done = jobs_mod.wait(JobQueue(root / ".jobs"), job.job_id, timeout=60)
    assert done.state == "cancelled"


def test_demo_mode_hides_retraining(root, monkeypatch):
    at = open_page(root, monkeypatch, demo=True)
    links = [e.proto.label for e in at.sidebar.get("page_link")]
    assert "Overview" in links and "Retrain" not in links
    at.switch_page("pages/retrain.py").run()  # a direct link still cannot launch anything
    assert "Read-only demo mode" in page_text(at)
    assert not at.text_input and not at.button
    normal = open_page(root, monkeypatch, demo=False)
    assert "Retrain" in [e.proto.label for e in normal.sidebar.get("page_link")]


def test_empty_artifacts_offers_to_build_the_demo(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    at = open_page(empty, monkeypatch)
    assert "no experiments" in page_text(at).lower()
    at.button(key="build_demo").click().run()
    q = JobQueue(empty / ".jobs")
    listed = q.list()
    assert [j.experiment for j in listed] == ["demo", "taobao-demo"]
    assert "synthetic-countries" in listed[0].argv and "taobao-sample" in listed[1].argv
    for j in listed:  # the same compact storage as the shipped demo
        assert j.argv[j.argv.index("--weights-dtype") + 1] == "float16"
    for j in listed:  # the real demo build takes minutes: stop it here
        q.cancel(j.job_id)
    for j in listed:
        assert jobs_mod.wait(q, j.job_id, timeout=60).state == "cancelled"
    demo = open_page(empty, monkeypatch, demo=True)
    assert not [b for b in demo.button if b.key == "build_demo"]
    shutil.rmtree(empty / ".jobs")


def test_shipped_demo_experiments_render(monkeypatch):
    """The demo experiments in the repository's artifacts/ folder render without error (read only)."""
    shipped = REPO / "artifacts"
    names = sorted(p.parent.name for p in shipped.glob("*/experiment.json")) if shipped.is_dir() else []
    if not names:
        pytest.skip("no shipped demo experiments in artifacts/ yet")
    at = open_page(shipped, monkeypatch, demo=True)
    for name in names:
        at.selectbox(key="experiment_picker").set_value(name).run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.session_state["experiment"] == name
        assert any(name in s.value for s in at.subheader) or at.info
