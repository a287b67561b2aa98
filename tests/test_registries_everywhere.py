"""Adding a model or a dataset is one entry and nothing else: a throw-away model and a throw-away
dataset, registered in this process through the registries' public `register`, show up in the
`--help` of every command that lists models or datasets, in the Retrain form's choices (AppTest
of the real page) and, once trained, on the Overview and the per-scenario page by the entry's
label; they are gone again after each test."""
from __future__ import annotations

import argparse

import pytest
from streamlit.testing.v1 import AppTest

from dashboard_support import REPO
from saml_core.cli import build_parser
from saml_core.data import registry as datasets
from saml_core.models import registry as models

MODEL, MODEL_LABEL = "zz_throwaway", "Throw-away model"
DATASET, DATASET_TITLE = "zz-throwaway-data", "Throw-away data for the registry test"
TIMEOUT = 120  # AppTest's first render imports the dashboard


@pytest.fixture()
def throwaway():
    models.register(models.ModelEntry(
        id=MODEL, label=MODEL_LABEL, color="#010203", role="baseline", order=99, default=True,
        build=lambda spec, cfg, **options: None, description="A model that exists for one test."))
    datasets.register(datasets.DatasetEntry(
        name=DATASET, title=DATASET_TITLE, kind="zz-throwaway-kind", load=lambda **kw: None,
        options={"seq_len": None}, badge="**Throw-away data.**"))
    try:
        yield
    finally:
        models.unregister(MODEL)
        datasets.unregister(DATASET)
    assert MODEL not in models.ids() and DATASET not in {e.name for e in datasets.entries()}


def command_helps() -> dict[str, str]:
    """{"train": help text, "data describe": ..., ...} of every sub-command, built afresh (the
    choices are read when the parser is built)."""
    out = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out[f"{prefix}{name}"] = sub.format_help()
                    walk(sub, f"{prefix}{name} ")

    walk(build_parser(), "")
    return out


def test_a_new_model_and_dataset_are_in_every_commands_help(throwaway, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100000")  # no line breaks inside a name
    helps = command_helps()
    # the commands that list models / datasets: those whose help names a built-in one
    with_models = [c for c, text in helps.items() if "saml_no_gate" in text]
    with_datasets = [c for c, text in helps.items() if "taobao-sample" in text]
    assert {"train", "experiment"} <= set(with_models)
    assert {"train", "experiment", "data describe"} <= set(with_datasets)
    missing = [f"{c}: {MODEL}" for c in with_models if MODEL not in helps[c]]
    missing += [f"{c}: {DATASET}" for c in with_datasets if DATASET not in helps[c]]
    assert not missing, "a hand-typed list in --help:\n" + "\n".join(missing)


def test_a_new_model_and_dataset_are_in_the_retrain_forms_choices(throwaway, tmp_path, monkeypatch):
    monkeypatch.setenv("SAML_ARTIFACTS", str(tmp_path))
    monkeypatch.delenv("SAML_DEMO_MODE", raising=False)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("app_pages/retrain.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert DATASET_TITLE in at.selectbox(key="rt_dataset").options
    models_box = at.multiselect(key="rt_models")
    assert MODEL_LABEL in models_box.options
    assert MODEL in models_box.value  # a default model of the registry is chosen by default
    at.selectbox(key="rt_dataset").set_value(DATASET).run()  # its settings come from its entry's preset
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key=f"rt_ds_{DATASET}-public").value == 4


def _table_rows(path, first_header: str) -> list[list[str]]:
    """The rows of the markdown table whose header starts with `first_header`, as cell texts."""
    lines = (REPO / path).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_the_docs_model_table_says_what_the_registry_says():
    """docs/MODELS.md's table of models: one row per registered model, in table order, with its
    label, role (the reference marked) and whether it is in the default set."""
    rows = _table_rows("docs/MODELS.md", "id")
    entries = models.entries()
    assert [r[0].strip("`") for r in rows] == [e.id for e in entries]
    for r, e in zip(rows, entries):
        role = f"{e.role} (reference)" if e.reference else e.role
        assert (r[1], r[2], r[3].split(" ")[0]) == (e.label, role, "yes" if e.default else "no"), e.id


def test_the_docs_dataset_table_says_what_the_registry_says():
    """docs/DATA.md's table of datasets: one row per registered source, with its name (NAME or
    NAME:PATH), preset and load options."""
    rows = _table_rows("docs/DATA.md", "DATASET")
    entries = datasets.entries()
    assert [r[0].strip("`").split(":")[0] for r in rows] == [e.name for e in entries]
    for r, e in zip(rows, entries):
        assert (":" in r[0]) == e.takes_path, e.name
        assert r[4] == e.preset, e.name
        assert [o.strip(" `") for o in r[5].split(",")] == list(e.options), e.name


def test_a_new_model_shows_on_the_pages_by_its_entry(tmp_path, monkeypatch):
    """A throw-away model (BST's builder under its own id, label and colour) trained in a tiny
    experiment beside BST: the Overview's table and the per-scenario page name it by its entry's
    label, with no page knowing its id."""
    from dashboard_support import page_text
    from saml_core.experiments import ExperimentConfig, run_experiment
    from saml_core.presets import settings_for

    bst = models.get("bst")
    models.register(models.ModelEntry(
        id=MODEL, label=MODEL_LABEL, color="#010203", role="baseline", order=99, build=bst.build,
        description="BST under another name, for one test."))
    try:
        s = settings_for("synthetic-countries", "quick",
                         train={"max_train_batches": 2, "epochs": 1, "num_threads": 1, "device": "cpu"})
        run_experiment(ExperimentConfig(name="reg", runs=f"bst,{MODEL}", **s), tmp_path, log=lambda _: None)
        monkeypatch.setenv("SAML_ARTIFACTS", str(tmp_path))
        monkeypatch.delenv("SAML_DEMO_MODE", raising=False)
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        shown = [str(v) for df in at.dataframe for v in df.value.astype(str).to_numpy().ravel()]
        assert MODEL_LABEL in shown, "the Overview's table does not list the new model by its label"
        assert MODEL not in page_text(at)  # (the tables carry the id in a hidden column, for exports)
        at.switch_page("app_pages/per_scenario.py").run()
        assert not at.exception, [e.value for e in at.exception]
        shown = [str(v) for df in at.dataframe for v in [*df.value.columns, *df.value.astype(str).to_numpy().ravel()]]
        assert any(MODEL_LABEL in v for v in shown), "the per-scenario page does not name the new model"
    finally:
        models.unregister(MODEL)
