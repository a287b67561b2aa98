"""Every dashboard page through Streamlit's AppTest, on a real quick experiment.

Each page: it renders with real artifacts, its main controls change what is shown (asserted on
the Plotly figure JSON and the tables), and broken runs give a clear message.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard_support import EXPERIMENT, REPO, build_quick_artifacts, copy_artifacts, figures, nav, page_text, values
from dashboard import ui
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
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def experiment_json(root: Path) -> dict:
    return json.loads((root / EXPERIMENT / "experiment.json").read_text())


def saml_run_id(root: Path) -> str:
    return next(r for r in experiment_json(root)["runs"] if r.startswith("saml-"))


def run_of(root: Path, model: str) -> str:
    return next(r for r in experiment_json(root)["runs"] if r.startswith(f"{model}-"))


# ---- sidebar and overview ---------------------------------------------------------------

def test_default_artifacts_folder_is_the_projects_own_from_any_working_directory(tmp_path, monkeypatch):
    """`streamlit run path/to/app.py` from another folder lists the project's artifacts/ experiments."""
    shipped = sorted(p.parent.name for p in (REPO / "artifacts").glob("*/experiment.json"))
    if not shipped:
        pytest.skip("no shipped demo experiments in artifacts/")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAML_ARTIFACTS", raising=False)
    monkeypatch.setenv("SAML_DEMO_MODE", "1")  # read only
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["experiment"] in shipped
    assert {o.split(" (")[0] for o in at.selectbox(key="experiment_picker").options} >= set(shipped)


def test_overview_shows_table_verdicts_settings_curves_and_simulated_badge(root, monkeypatch):
    at = open_page(root, monkeypatch)
    assert at.session_state["experiment"] == EXPERIMENT
    text = page_text(at) + "\n".join(str(w.value) for w in at.sidebar.warning)
    assert "Simulated data" in text and "What this dashboard answers" in "".join(e.label for e in at.expander)
    table = at.dataframe[0].value.set_index("Model")
    assert {"BST", "SAML", "BST-Individual", "LR (target encoding)", "MMoE"} <= set(table.index)
    shown = list(at.dataframe[0].proto.column_order)
    # within-scenario AUC first, pooled second (one run each: no std; BST too close to chance: no RelaImpr)
    assert shown == ["Model", "Runs", "Within-country AUC", "Verdict vs BST", "p (vs BST)", "Pooled AUC"]
    more = list(at.dataframe[1].proto.column_order)  # logloss and how each model trained: in the expander
    assert "Logloss" in more and "Epochs" in more
    refs = at.dataframe[1].value.set_index("Model").loc["Constant (train click rate) (reference)"]
    assert refs["Logloss"] > 0 and np.isnan(refs["Epochs"])  # the constant's logloss beside the models', no training
    assert table.at["BST", "Verdict vs BST"] == "reference"
    assert table.at["SAML", "Verdict vs BST"].split(" ")[0] in ("better", "worse", "no")
    # the page opens with the report's one sentence; the references are rows of the table
    from saml_core import registry

    doc = registry.report(root, EXPERIMENT)
    assert at.markdown[0].value == f"**{doc['headline']}**" and doc["headline"].startswith("By within-country AUC, ")
    ref = table.loc["Country click rate only (reference)"]
    assert ref["Within-country AUC"] == 0.5 and ref["Pooled AUC"] > 0.5 and ref["Verdict vs BST"] == "no training"
    assert table.loc["Constant (train click rate) (reference)", "Pooled AUC"] == 0.5
    assert "Within-country AUC leads" in text and "scores exactly 0.5 on it" in text
    flagged = {f["model"] for f in doc["flags"]}
    assert all(bool(table.at[s["label"], "Flags"]) == (s["group"] in flagged) for s in doc["summary"])
    if doc["flags"]:
        assert any("Flags" in w.value for w in at.warning)
    assert "Download this table" in at.download_button[0].label
    assert "learning rate" in text and "batch size" in text  # how every model was trained
    links = list(nav(at).values())
    assert links[0] == "Overview" and "AUC per country" in links and "Which countries are alike" in links
    assert "Sensitivity sweeps" not in links  # no experiment here is a sweep
    # the first screen: the sentence, then its chart (every model's within-country AUC), explanations folded
    fig = figures(at)["headline_chart"]
    assert {t["name"] for t in fig["data"]} == {s["label"] for s in doc["summary"]}
    best = max(doc["summary"], key=lambda s: s["within_auc"]["mean"])
    assert values(fig["data"][-1]["x"]) == [best["within_auc"]["mean"]]  # best on top
    assert not any(e.proto.expanded for e in at.expander)
    assert at.download_button(key="summary_html").label.startswith("Download a summary")
    fig = figures(at)["curves"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "Validation AUC"
    at.radio(key="curve_metric").set_value("train_loss").run()
    fig = figures(at)["curves"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "Training loss"
    assert "Training loss (average" in page_text(at)  # the caption follows the chart shown
    assert len(fig["data"]) >= len(table) - 3  # one line per run (LR records no loss; 2 references: no training)


def test_broken_runs_are_named_and_the_others_still_show(root, monkeypatch):
    bst = run_of(root, "bst")
    (root / EXPERIMENT / bst / "metrics.json").write_text('{"schema_version": 2, "overall": ')  # truncated
    saml = saml_run_id(root)
    cfg = json.loads((root / EXPERIMENT / saml / "config.json").read_text())
    cfg["schema_version"] = 999  # from an incompatible version
    (root / EXPERIMENT / saml / "config.json").write_text(json.dumps(cfg))
    at = open_page(root, monkeypatch)
    warnings = "\n".join(w.value for w in at.warning)
    assert bst in warnings and "metrics.json" in warnings
    assert saml in warnings and "schema_version" in warnings
    models = set(at.dataframe[0].value["Model"])
    assert "BST-Individual" in models and "BST" not in models and "SAML" not in models


def test_a_run_that_finishes_appears_without_restart(root, monkeypatch):
    bst = run_of(root, "bst")
    metrics = root / EXPERIMENT / bst / "metrics.json"
    saved = metrics.read_bytes()
    metrics.unlink()  # as if BST were still to be trained
    at = open_page(root, monkeypatch)
    assert "BST" not in set(at.dataframe[0].value["Model"])
    assert any(bst in i.value and "waiting to be trained" in i.value for i in at.info)
    assert not any("missing" in w.value for w in at.warning)  # a queued run is not a broken file
    metrics.write_bytes(saved)  # the run finishes while the app is open
    at.run()
    assert "BST" in set(at.dataframe[0].value["Model"])


def test_an_experiment_without_train_click_rates_says_what_is_missing(root, monkeypatch):
    """Experiments written before train click rates were recorded: the references show what needs
    no rates (0.5 within countries) and say how to get the rest; the page writes nothing."""
    path = root / EXPERIMENT / "experiment.json"
    doc = experiment_json(root)
    for split in doc["splits"].values():
        del split["train_counts"]
    path.write_text(json.dumps(doc))
    before = path.stat().st_mtime_ns
    at = open_page(root, monkeypatch)
    table = at.dataframe[0].value.set_index("Model")
    ref = table.loc["Country click rate only (reference)"]
    assert ref["Within-country AUC"] == 0.5 and np.isnan(ref["Pooled AUC"]) and np.isnan(ref["Logloss"])
    notes = [c.value for c in at.caption if "(reference):" in c.value]
    assert len(notes) == 2 and all("re-run the experiment" in c and "unavailable" in c for c in notes), notes
    assert path.stat().st_mtime_ns == before and "train_counts" not in path.read_text()


def test_unreadable_experiment_gives_a_clear_message(root, monkeypatch):
    (root / EXPERIMENT / "experiment.json").write_text("not json")
    at = open_page(root, monkeypatch)
    assert any("experiment.json" in e.value for e in at.error), page_text(at)


# ---- AUC per scenario -----------------------------------------------------------------------

def test_per_scenario_chart_table_toggles_and_csv(root, monkeypatch):
    at = open_page(root, monkeypatch, "per_scenario")
    names = experiment_json(root)["scenario_names"]
    fig = figures(at)["auc_chart"]
    points = [t for t in fig["data"] if t["meta"] in ("saml", "bst_individual", "bst")]
    assert [t["meta"] for t in points] == ["saml", "bst_individual", "bst"]
    assert list(points[0]["x"]) == names and "error_y" in points[0]
    assert any(t["meta"] == "oracle" for t in fig["data"])  # the simulator knows it
    within = at.dataframe[0]  # the headline first: one within-scenario AUC per model, pooled second
    assert list(within.proto.column_order) == ["Model", "Within-country AUC", "Verdict vs BST", "Pooled AUC"]
    assert "Country click rate only (reference)" in set(within.value["Model"])
    assert "Within-country AUC leads" in page_text(at)
    table = at.dataframe[1].value  # every column (what the CSV holds); the screen shows a part of it
    assert list(table["Country"]) == names and "Oracle AUC" in table and "SAML vs BST" in table
    on_screen = list(at.dataframe[1].proto.column_order)
    assert on_screen == ["Country", "Traffic share (%)", "SAML AUC", "BST-Individual AUC", "BST AUC", "SAML vs BST",
                         "RelaImpr (%)"]  # compact: fits a 1024 px window (checked in the browser tests)
    details = list(at.dataframe[2].proto.column_order)
    assert {"Test samples", "Test clicks", "Test non-clicks", "p", "p (Holm)", "Oracle AUC", "SAML logloss",
            "Country click rate only: logloss", "Constant (train click rate): logloss"} <= set(details)
    assert set(on_screen) | set(details) | {"Why no RelaImpr"} >= set(table.columns)  # nothing is lost
    # a country with too few clicks: no verdict, and why, with its counts
    small = table[table["SAML vs BST"] == "n/a"]
    assert len(small), "the quick experiment has countries with fewer than 10 test clicks"
    for _, row in small.iterrows():
        assert row["Why no verdict"] == (f"the paired test needs at least 10 clicks and 10 non-clicks in the test "
                                         f"split (here {row['Test clicks']} clicks / {row['Test non-clicks']} "
                                         "non-clicks)")
    assert "every column" in at.download_button[0].label

    more = at.multiselect(key="more_models")
    assert {"SAML w/o gate&mut", "LR (target encoding)", "MMoE"} <= set(more.options)
    more.set_value(["saml_no_gate_mut", "lr_te"]).run()
    metas = [t["meta"] for t in figures(at)["auc_chart"]["data"]]
    assert "saml_no_gate_mut" in metas and "lr_te" in metas
    assert "SAML w/o gate&mut AUC" in at.dataframe[2].proto.column_order  # added models: with the details
    assert "SAML w/o gate&mut AUC" not in at.dataframe[1].proto.column_order
    at.toggle(key="show_oracle").set_value(False).run()
    assert "oracle" not in [t["meta"] for t in figures(at)["auc_chart"]["data"]]
    share = figures(at)["traffic"]["data"][0]
    assert list(share["x"]) == names and sum(values(share["y"])) == pytest.approx(100, abs=0.5)


# ---- scenario correlations ---------------------------------------------------------------

def test_correlations_decomposition_captions_layers_cdf_and_planted(root, monkeypatch):
    at = open_page(root, monkeypatch, "correlations")
    names = experiment_json(root)["scenario_names"]
    figs = figures(at)
    heat = figs["alpha_heatmap"]["data"][0]
    z0 = np.array(values(heat["z"]), dtype=float)
    assert z0.shape == (len(names), len(names)) and sorted(heat["x"]) == sorted(names)
    assert heat["zmid"] == pytest.approx(1 / (len(names) - 1))  # centred on the even split
    assert {"column_effect", "pairwise_heatmap", "alpha_cdf", "gate_box", "gate_traffic", "planted", "learned",
            "data_sim", "cka"} <= set(figs)
    text = page_text(at)
    # the caption's figures are computed from the matrix shown
    off = z0[~np.isnan(z0)]
    assert f"from {off.min():.4f} to {off.max():.4f}" in text
    assert "Spearman" in text and "Recovery" in at.metric[0].label

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


def test_correlations_show_what_other_models_say(root, monkeypatch):
    at = open_page(root, monkeypatch, "correlations")
    rows = at.dataframe[0].value
    assert any("MMoE" in s for s in rows["Signal"])
    assert "profile_heatmap" in figures(at)  # MMoE's scenario x expert gate profile


def test_correlations_missing_probes_gives_clear_message(root, monkeypatch):
    saml = saml_run_id(root)
    (root / EXPERIMENT / saml / "probes.npz").write_bytes(b"PK\x03\x04 truncated")
    at = open_page(root, monkeypatch, "correlations")
    text = page_text(at)
    assert "probes.npz" in text and saml in text
    assert not at.exception


@pytest.mark.parametrize("page", ["per_scenario", "correlations", "hidden_states"])
def test_every_page_names_a_broken_run_and_keeps_going(root, monkeypatch, page):
    (root / EXPERIMENT / saml_run_id(root) / "probes.npz").unlink()  # SAML's probes are gone
    bsti = run_of(root, "bst_individual")
    (root / EXPERIMENT / bsti / "metrics.json").write_text("{ not json")  # corrupted
    at = open_page(root, monkeypatch, page)
    text = page_text(at)
    assert not at.exception
    if page == "per_scenario":
        assert bsti in text and "metrics.json" in text
        metas = [t["meta"] for t in figures(at)["auc_chart"]["data"]]
        assert "bst_individual" not in metas and "saml" in metas  # the others still show
    else:  # no SAML run with probes left: the missing file is named, then a plain explanation
        assert "probes.npz is missing" in text and "no finished SAML run" in text


# ---- hidden states -------------------------------------------------------------------------

def files_under(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_hidden_states_draw_stored_maps_and_captions_follow_the_controls(root, monkeypatch):
    from saml_core import maps

    def no_fit(*_a, **_k):
        raise AssertionError("a stored map must be drawn without fitting UMAP (numba compile) or PCA")

    monkeypatch.setattr(maps, "fit_umap", no_fit)
    monkeypatch.setattr(maps, "fit_pca", no_fit)
    before = files_under(root)
    at = open_page(root, monkeypatch, "hidden_states")
    names = experiment_json(root)["scenario_names"]
    n_own = int(np.load(root / EXPERIMENT / saml_run_id(root) / "maps.npz")["umap_own_0"].shape[0])
    fig = figures(at)["umap"]
    assert {t["name"] for t in fig["data"]} <= set(names)
    assert sum(len(values(t["x"])) for t in fig["data"]) == n_own
    assert "(UMAP)" in fig["layout"]["title"]["text"] and "Map computed by the training job" in page_text(at)
    assert "Country of the sample" in at.selectbox(key="hs_color_own").options
    assert "Colour: the sample's country" in page_text(at)

    at.selectbox(key="hs_color_own").set_value("label").run()
    assert {t["name"] for t in figures(at)["umap"]["data"]} <= {"clicked", "not clicked"}
    assert "whether the sample was clicked" in page_text(at) and "Colour: the sample's country" not in page_text(at)
    at.selectbox(key="hs_color_own").set_value("pred").run()
    (trace,) = figures(at)["umap"]["data"]  # one cloud on a colour scale of predicted probability
    assert "colorscale" in trace["marker"] and len(values(trace["marker"]["color"])) == n_own
    at.radio(key="hs_method").set_value("pca").run()
    fig = figures(at)["umap"]
    assert "(PCA)" in fig["layout"]["title"]["text"]
    assert fig["layout"]["xaxis"]["title"]["text"] == "Principal component 1"
    assert "(PCA)" in page_text(at) and "by UMAP" not in page_text(at)  # the caption follows the method

    at.radio(key="hs_view").set_value("all").run()
    fig = figures(at)["umap"]
    assert "every branch" in fig["layout"]["title"]["text"]
    assert {t["name"] for t in fig["data"]} == set(names)  # coloured by branch: every branch shows
    assert "Colour: the branch." in page_text(at)
    at.selectbox(key="hs_color_all").set_value("scenario").run()
    text = page_text(at)
    assert "Colour: the branch." not in text and "not the branch" in text  # the caption follows the colouring

    monkeypatch.undo()  # another size is computed now (PCA: instant), kept in memory only
    monkeypatch.setenv("SAML_ARTIFACTS", str(root))
    smaller = min(int(v) for v in at.select_slider(key="hs_size").options)
    at.select_slider(key="hs_size").set_value(smaller).run()
    assert sum(len(values(t["x"])) for t in figures(at)["umap"]["data"]) <= smaller
    assert "computed just now" in page_text(at)
    assert files_under(root) == before  # the page wrote nothing, anywhere under the artifacts root


def test_hidden_states_explorer_colours_by_fields_and_finds_neighbours_in_the_hidden_space(root, monkeypatch):
    from saml_core import artifacts as art

    at = open_page(root, monkeypatch, "hidden_states")
    probes = art.load_npz(root / EXPERIMENT / saml_run_id(root) / "probes.npz")
    fields = [str(f) for f in probes["field_names"]]
    assert {"user_id", "category", "country"} & set(fields)  # the simulator's fields, decoded by training
    options = at.selectbox(key="hs_color_own").options
    assert {f"Field: {f}" for f in fields} <= set(options) and "Error: |click − prediction|" in options
    j = fields.index("category")
    at.selectbox(key="hs_color_own").set_value("field: category").run()
    fig = figures(at)["umap"]
    decoded = probes[f"field_values_{j}"][probes[f"field_codes_{j}"]]
    shown = {t["name"] for t in fig["data"]}
    assert shown - {n for n in shown if n.startswith("other (")} <= set(decoded)  # real values, not ids
    assert "category: " in fig["data"][0]["customdata"][0][1]  # hover carries the fields
    assert "Colour: the sample's category" in page_text(at)
    at.selectbox(key="hs_color_own").set_value("error").run()
    (trace,) = figures(at)["umap"]["data"]
    assert "colorscale" in trace["marker"] and max(values(trace["marker"]["color"])) <= 1

    at.number_input(key="hs_point").set_value(7)
    at.button(key="hs_show_neighbours").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "distance" in d.value.columns)
    from saml_core import maps

    h, _, _ = maps.points(probes, "own", 0, maps.stored_size(probes, "own", 0))  # the states of the points shown
    h = h.astype(np.float64)
    d = np.linalg.norm(h - h[7], axis=1)
    d[7] = np.inf
    assert list(table["point"]) == list(np.argsort(d, kind="stable")[:10])  # hidden space, not the 2-D map
    assert np.allclose(table["distance"], np.sort(d)[:10], atol=1e-4)
    metas = [t.get("meta") for t in figures(at)["umap"]["data"]]
    assert metas[-2:] == ["neighbours", "chosen"]
    labels = [b.label for b in at.get("download_button")]
    assert {"Vectors for TensorBoard Projector (TSV)", "Metadata for TensorBoard Projector (TSV)",
            "Points, map and hidden states (CSV)"} <= set(labels)


def test_hidden_states_of_a_run_without_fields_say_what_is_missing(root, monkeypatch):
    from saml_core import artifacts as art

    path = root / EXPERIMENT / saml_run_id(root) / "probes.npz"
    art.save_npz(path, {k: v for k, v in art.load_npz(path).items()
                        if not k.startswith("field") and k != "schema_version"})
    at = open_page(root, monkeypatch, "hidden_states")
    assert not any(o.startswith("field: ") for o in at.selectbox(key="hs_color_own").options)
    assert "No field values: this run stored no field values" in page_text(at)
    assert "umap" in figures(at)  # what the run has still shows


# ---- retrain and jobs ----------------------------------------------------------------------

def test_retrain_shows_the_engine_settings_validates_queues_and_cancels(root, monkeypatch):
    at = open_page(root, monkeypatch, "retrain")
    assert at.number_input(key="rt_ds_synthetic-countries-industrial").value == 2
    at.selectbox(key="rt_dataset").set_value("taobao-sample").run()
    assert at.number_input(key="rt_ds_taobao-sample-public").value == 4  # the public preset, as trained
    assert at.text_input(key="rt_mlp_taobao-sample-public").value == "128,64"
    at.selectbox(key="rt_dataset").set_value("synthetic-countries").run()
    at.text_input(key="rt_name").set_value(EXPERIMENT)  # exists already
    at.button[0].click().run()  # "Validate and launch" (the form's submit button)
    assert any("already exists" in e.value for e in at.error)
    assert JobQueue(root / ".jobs").list() == []

    at.selectbox(key="rt_preset_synthetic-countries").set_value("quick").run()
    at.text_input(key="rt_name").set_value("tiny")
    at.multiselect(key="rt_models").set_value(["bst"])
    at.button[0].click().run()
    assert not at.error, [e.value for e in at.error]
    (job,) = JobQueue(root / ".jobs").list()
    spec = json.loads((root / ".jobs" / job.job_id / "spec.json").read_text())
    assert job.experiment == "tiny" and spec["preset"] == "quick" and spec["runs"] == ["bst"]
    assert spec["dataset_options"] == {"size": "small"}
    assert any(ui.plain(job.title) in m.value for m in at.markdown)  # shown as text, not markdown
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "1 training job running or queued" in sidebar  # counted in the run that queued it, no lag
    assert any("Queued “tiny”" in m.value for m in at.success)
    cancel = next(b for b in at.button if b.key and b.key.startswith("cancel-"))
    cancel.click().run()
    done = jobs_mod.wait(JobQueue(root / ".jobs"), job.job_id, timeout=60)
    assert done.state == "cancelled"


def test_retrain_form_takes_dataset_paths_only_from_the_data_folder(tmp_path, monkeypatch):
    data_dir, art, elsewhere = tmp_path / "data", tmp_path / "art", tmp_path / "elsewhere"
    for d in (data_dir / "mine", art, elsewhere):
        d.mkdir(parents=True)
    schema = data_dir / "mine" / "schema.yaml"
    schema.write_text("data: log.csv\n")
    (elsewhere / "schema.yaml").write_text("data: log.csv\n")
    (data_dir / "link.yaml").symlink_to(elsewhere / "schema.yaml")
    monkeypatch.setenv("SAML_DATA_DIR", str(data_dir))
    at = open_page(art, monkeypatch, "retrain")
    at.selectbox(key="rt_dataset").set_value("csv").run()
    assert str(data_dir) in at.text_input(key="rt_path").label  # the form says where paths may point
    def submit(path: str) -> None:
        at.text_input(key="rt_name").set_value("mine")
        at.text_input(key="rt_path").set_value(path)
        next(b for b in at.button if b.label == "Validate and launch").click().run()

    for outside in ("/etc/passwd", "../elsewhere/schema.yaml", str(elsewhere / "schema.yaml"), "link.yaml"):
        submit(outside)
        assert any(f"{outside} is outside the data folder {data_dir}" in e.value for e in at.error), outside
    assert JobQueue(art / ".jobs").list() == []
    submit("mine/schema.yaml")  # relative paths count from the data folder
    assert not at.error, [e.value for e in at.error]
    (job,) = JobQueue(art / ".jobs").list()
    assert job.dataset == f"csv:{schema.resolve()}"
    JobQueue(art / ".jobs").cancel(job.job_id)


def test_demo_mode_hides_retraining(root, monkeypatch):
    at = open_page(root, monkeypatch, demo=True)
    links = list(nav(at).values())
    assert "Overview" in links and "Retrain" not in links
    with pytest.raises(ValueError, match="navigation page"):  # not even a direct link reaches it
        at.switch_page("app_pages/retrain.py")
    assert "Read-only demo mode" in " ".join(c.value for c in at.sidebar.caption)
    normal = open_page(root, monkeypatch, demo=False)
    assert "Retrain" in nav(normal).values()


def test_sweeps_page_is_listed_only_when_an_experiment_is_a_sweep(root, monkeypatch):
    at = open_page(root, monkeypatch)
    assert "app_pages/sweeps.py" not in nav(at)
    doc = experiment_json(root)
    shutil.copytree(root / EXPERIMENT, root / "sized")
    doc["name"], doc["config"]["sweep"] = "sized", "emb"
    (root / "sized" / "experiment.json").write_text(json.dumps(doc))
    at = open_page(root, monkeypatch)
    assert nav(at)["app_pages/sweeps.py"] == "Sensitivity sweeps"
    at.switch_page("app_pages/sweeps.py").run()  # the experiment shown (not this sweep) says how to make one
    assert not at.exception and "not a sensitivity sweep" in page_text(at)


def test_empty_artifacts_offers_to_build_the_demo(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    at = open_page(empty, monkeypatch)
    assert "no experiments" in page_text(at).lower()
    at.button(key="build_demo").click().run()
    q = JobQueue(empty / ".jobs")
    listed = q.list()
    # each experiment, then its analyses (the shipped demo has the transfer and importance pages)
    assert [(j.kind, j.experiment) for j in listed] == [("experiment", "demo"), ("analyses", "demo"),
                                                        ("experiment", "taobao-demo"), ("analyses", "taobao-demo")]
    trainings = [j for j in listed if j.kind == "experiment"]
    assert [j.dataset for j in trainings] == ["synthetic-countries", "taobao-sample"]
    for j in trainings:  # the same recipe as the shipped demo
        spec = json.loads((empty / ".jobs" / j.job_id / "spec.json").read_text())
        assert spec["train_config"]["weights_dtype"] == "float16" and spec["seeds"] == 3
        assert spec["data_seeds"] == [0, 1] and spec["keep_weights"] == "first-run-main"
    for j in listed:  # the real demo build takes long: stop it here
        q.cancel(j.job_id)
    for j in listed:
        assert jobs_mod.wait(q, j.job_id, timeout=60).state == "cancelled"
    demo = open_page(empty, monkeypatch, demo=True)
    assert not [b for b in demo.button if b.key == "build_demo"]
    # the worker leaves once nothing is queued; removing its folder before it has (its last record
    # write) would race it, so wait for it to retire
    deadline = time.monotonic() + 60
    while q._worker_record() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert q._worker_record() is None, "the job worker did not leave after its jobs were cancelled"
    shutil.rmtree(empty / ".jobs")


def test_city_levels_are_never_called_countries(tmp_path, monkeypatch):
    """A Taobao experiment: no page, caption, link or CSV header says "country"."""
    import subprocess
    import sys

    root = tmp_path / "art"
    out = subprocess.run([sys.executable, "-m", "saml_core", "experiment", "--dataset", "taobao-sample", "--name",
                          "tb", "--quick", "--runs", "bst,saml", "--threads", "1", "--artifacts", str(root)],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    at = open_page(root, monkeypatch)
    assert set(nav(at)) == {f"app_pages/{p}.py" for p in ("overview", "per_scenario", "correlations", "drivers",
                                                         "hidden_states", "retrain")}
    for page in nav(at):
        at.switch_page(page).run()
        page = page.removeprefix("app_pages/").removesuffix(".py")
        assert not at.exception, [e.value for e in at.exception]
        text = page_text(at) + " ".join(nav(at).values())
        text += json.dumps(figures(at))
        for df in at.dataframe:
            text += " ".join(map(str, df.value.columns))
        assert "country" not in text.lower() or page == "retrain", (page, text[:2000])
        if page == "per_scenario":
            assert "City level" in at.dataframe[1].value.columns and "Within-city level AUC" in at.dataframe[0].value


def test_shipped_demo_experiments_render(monkeypatch):
    """The demo experiments in the repository's artifacts/ folder render without error (read only)."""
    shipped = REPO / "artifacts"
    names = sorted(p.parent.name for p in shipped.glob("*/experiment.json")) if shipped.is_dir() else []
    if not names:
        pytest.skip("no shipped demo experiments in artifacts/ yet")
    import warnings

    at = open_page(shipped, monkeypatch, demo=True)
    with warnings.catch_warnings(record=True) as caught:  # the pages run in AppTest's thread: caught too
        warnings.simplefilter("always")
        for name in names:
            at.selectbox(key="experiment_picker").set_value(name).run()
            for page in nav(at):
                at.switch_page(page).run()
                assert not at.exception, [e.value for e in at.exception]
                allowed = ("Simulated", "Real data", "**Flags**", "Stopped at the epoch cap")  # the Overview's
                assert all(any(a in w.value for a in allowed) for w in at.warning), [w.value for w in at.warning]
            assert at.session_state["experiment"] == name
    runtime = [(str(w.message), w.filename, w.lineno) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not runtime, runtime  # e.g. a mean of an empty slice on the correlations page


def test_pages_that_only_read_import_no_torch(quick_root):
    """A fresh process, as a new server: the pages that only read never import PyTorch (nor UMAP's
    compiler or scikit-learn), whose imports alone cost seconds."""
    import subprocess
    import sys

    script = (f"import json, sys\nfrom streamlit.testing.v1 import AppTest\n"
              f"at = AppTest.from_file({str(REPO / 'app.py')!r}, default_timeout=300)\nat.run()\nseen = {{}}\n"
              "for page in ['app_pages/overview.py', 'app_pages/per_scenario.py', 'app_pages/correlations.py',"
              " 'app_pages/drivers.py', 'app_pages/hidden_states.py']:\n"
              "    at.switch_page(page).run()\n"
              "    assert not at.exception, [e.value for e in at.exception]\n"
              "    seen[page] = sorted(m for m in ('torch', 'numba', 'umap', 'sklearn') if m in sys.modules)\n"
              "print(json.dumps(seen))\n")
    env = {**__import__("os").environ, "SAML_ARTIFACTS": str(quick_root), "SAML_DEMO_MODE": "1"}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(seen) == 5 and not any(seen.values()), seen


def test_an_unfinished_experiment_resumes_from_the_app(root, monkeypatch):
    """A run never finished (interrupted): the Retrain page offers Resume, which queues the
    experiment's own stored specification (so finished runs are kept and skipped)."""
    bst = run_of(root, "bst")
    for name in ("metrics.json", "model.pt"):
        (root / EXPERIMENT / bst / name).unlink()
    at = open_page(root, monkeypatch, "retrain")
    assert "Unfinished experiments" in [s.value for s in at.subheader]
    at.button(key=f"resume-exp-{EXPERIMENT}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    q = JobQueue(root / ".jobs")
    (job,) = q.list()
    spec = json.loads((root / ".jobs" / job.job_id / "spec.json").read_text())
    from saml_core.experiments import ExperimentConfig

    stored = ExperimentConfig.from_dict(experiment_json(root)["config"]).to_dict()
    assert job.experiment == EXPERIMENT and spec == json.loads(json.dumps(stored))
    q.cancel(job.job_id)
    assert jobs_mod.wait(q, job.job_id, timeout=60).state == "cancelled"


def test_report_html_writes_one_self_contained_summary_atomically(quick_root, tmp_path, capsys):
    """`report NAME --html FILE`: the findings in one file that needs nothing else (Plotly inside,
    no script or style fetched from anywhere); an impossible path is one clear error, nothing left."""
    import re
    import subprocess
    import sys

    from saml_core import registry
    from saml_core.cli import main

    out = tmp_path / "summary.html"
    assert main(["report", EXPERIMENT, "--html", str(out), "--artifacts", str(quick_root)]) == 0
    assert "opens offline" in capsys.readouterr().out
    text = out.read_text()
    doc = registry.report(quick_root, EXPERIMENT)
    assert text.startswith("<!DOCTYPE html>") and doc["headline"].split(" (")[0] in text
    assert not re.search(r"<(script|link)[^>]+(src|href)=", text)  # nothing to fetch: opens offline
    assert text.count('class="plotly-graph-div"') >= 4 and "Plotly.newPlot" in text and len(text) > 3_000_000
    assert "Country click rate only (reference)" in text and "Within-country AUC per model" in text
    assert [p.name for p in tmp_path.iterdir()] == ["summary.html"]  # written atomically: no temporary file
    bad = tmp_path / "no-such-folder" / "x.html"
    assert main(["report", EXPERIMENT, "--html", str(bad), "--artifacts", str(quick_root)]) == 2
    assert "does not exist" in capsys.readouterr().err and not bad.parent.exists()
    # the CLI's path imports no Streamlit (saml_core never does; dashboard/summary.py is plain Plotly)
    probe = subprocess.run([sys.executable, "-c", "import sys, dashboard.summary, saml_core.commands; "
                            "print('streamlit' in sys.modules)"], cwd=REPO, capture_output=True, text=True)
    assert probe.stdout.strip() == "False", probe.stderr


# ---- the run analyses: every relation signal side by side, transfer, importance ----------------

def test_correlations_put_every_relation_signal_side_by_side_and_show_transfer(root, monkeypatch):
    from saml_core import registry

    doc = registry.report(root, EXPERIMENT)
    at = open_page(root, monkeypatch, "correlations")
    figs = figures(at)
    rel = doc["relations"]
    assert f"**{rel['sentence']}**" in [m.value for m in at.markdown]  # the computed sentence, as computed
    heat = figs["relations_heatmap"]["data"][0]
    z = np.array(values(heat["z"]), dtype=float)
    ids = [s["id"] for s in rel["signals"]]
    assert z.shape == (len(ids), len(ids)) and np.allclose(z, z.T, equal_nan=True)
    for p in rel["pairs"]:  # every cell is the engine's rank agreement of that pair of signals
        assert z[ids.index(p["a"]), ids.index(p["b"])] == pytest.approx(p["spearman"]["mean"])
    assert any("✓" in t for row in heat["text"] for t in row) == any(p["holds_in_every_run"] for p in rel["pairs"])

    tr = {m["model"]: m for m in doc["transfer"]["models"]}
    assert {"bst_individual", "saml"} <= set(tr)
    at.selectbox(key="transfer_model").set_value("bst_individual").run()
    at.radio(key="transfer_what").set_value("auc").run()
    fig = figures(at)["transfer_heatmap"]
    z = np.array(values(fig["data"][0]["z"]), dtype=float)
    m = tr["bst_individual"]
    names = doc["scenario_names"]
    small = [i for i, s in enumerate(names) if s in m["too_small"]]
    assert small, "the quick experiment has countries with too few test clicks"
    keep = [i for i in range(len(names)) if i not in small]
    assert np.allclose(np.diag(z)[keep], np.diag(np.array(m["auc"], dtype=float))[keep])
    assert np.isnan(z[small, :]).all() and np.isnan(z[:, small]).all()  # greyed, with the reason as hover
    grey = fig["data"][1]
    assert any("too few" in str(h) or "clicks" in str(h) for row in grey["customdata"] for h in row)
    assert "Grey:" in page_text(at) and m["sentence"] in page_text(at)


def test_runs_without_analyses_offer_the_job_that_computes_them(root, monkeypatch):
    from saml_core.jobs import JobQueue

    for f in (root / EXPERIMENT).glob("*/transfer.json"):
        f.unlink()
    for f in (root / EXPERIMENT).glob("*/importance.json"):
        f.unlink()
    demo = open_page(root, monkeypatch, "correlations", demo=True)
    assert f"python -m saml_core analyses {EXPERIMENT}" in page_text(demo)
    assert not [b for b in demo.button if b.key == "transfer_compute"]
    assert "app_pages/drivers.py" not in nav(demo)  # nothing to show there, nothing to start: not listed
    at = open_page(root, monkeypatch, "drivers")  # outside demo mode: listed, to start the job from
    assert [b for b in at.button if b.key == "importance_compute"]
    at = open_page(root, monkeypatch, "correlations")
    assert "lack transfer matrices and input importance" in page_text(at)
    at.button(key="transfer_compute").click().run()
    assert not at.exception, [e.value for e in at.exception]
    q = JobQueue(root / ".jobs")
    (job,) = q.list()
    spec = json.loads((root / ".jobs" / job.job_id / "spec.json").read_text())
    assert spec == {"kind": "analyses", "experiment": EXPERIMENT, "runs": None}
    assert "A job for this experiment is queued or running" in page_text(at)  # not twice
    q.cancel(job.job_id)
    assert jobs_mod.wait(q, job.job_id, timeout=60).state in ("cancelled", "finished")


def test_what_drives_each_country_heatmap_sentences_and_csv(root, monkeypatch):
    from saml_core import registry

    doc = registry.report(root, EXPERIMENT)
    at = open_page(root, monkeypatch, "drivers")
    assert nav(at)["app_pages/drivers.py"] == "What drives each country"
    models = {m["group"]: m for m in doc["importance"]["models"]}
    group = at.selectbox(key="importance_model").value
    m = models[group]
    z = np.array(values(figures(at)["importance_heatmap"]["data"][0]["z"]), dtype=float)
    assert np.allclose(z, np.array(m["mean_drop_auc"], dtype=float), equal_nan=True)
    shown = [x.value for x in at.markdown]
    assert f"**{m['sentences'][0]}**" in shown and all(s in shown for s in m["sentences"][1:])
    if m["matters_nowhere"]:
        assert any("matter" in s and m["matters_nowhere"][0] in s for s in m["sentences"])
    assert at.download_button(key="importance_csv").label.startswith("Download the importance table")
    other = next(g for g in models if g != group)
    at.selectbox(key="importance_model").set_value(other).run()
    z = np.array(values(figures(at)["importance_heatmap"]["data"][0]["z"]), dtype=float)
    assert np.allclose(z, np.array(models[other]["mean_drop_auc"], dtype=float), equal_nan=True)


def test_no_page_of_the_shipped_app_imports_torch():
    """The pages read artifacts and submit jobs; none needs PyTorch (2 s to import on a 2-core
    machine), the Retrain form included: every page of the shipped demo in a fresh process."""
    import subprocess
    import sys

    code = """
import os, sys
os.environ["SAML_ARTIFACTS"] = "artifacts"
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=300)
at.run()
pages = [i["script_path"] for i in at._registered_pages.values() if i.get("script_path")]
for p in pages:
    at.switch_page(os.path.relpath(p))
    at.run()
    assert not at.exception, (p, [e.value for e in at.exception])
print(",".join(sorted(os.path.basename(p) for p in pages)), "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    shown, imported = out.stdout.split()
    assert {"overview.py", "correlations.py", "hidden_states.py", "retrain.py"} <= set(shown.split(","))
    assert imported == "False"
