"""The fault and bad-input batteries, one test per case (parametrised where cases share a shape).

Every case ends in one clear error naming the file, column, row or value, or, where the input is
legal but suspicious, in a warning that `data describe`, the job log and the pages show:

- artifacts: a FIFO in place of a file never blocks a read; numbers no run can have (beyond
  64 bits, text, negative) and JSON nested beyond Python's recursion make the run "broken" with
  the field named; a link out of the artifacts root is never followed (docs/ARTIFACTS.md);
- sizes: sequence length (CLI, job spec, schema file), number of scenarios, vocabulary, schema
  file size and YAML expansion are bounded before anything is allocated, the bound in the message;
- bring-your-own logs (docs/DATA.md, Errors and warnings): one-class labels, dates that are not
  ISO without a declared format, unparsable time values, leakage of the label into a feature,
  scenario names differing by case or spacing or holding a line break, a scenario without
  non-clicks, the schema's title type, data paths leaving the schema's folder, duplicate and
  double-listed columns, header names with invisible spaces, ids written two ways.

SIGINT at the end of a run is in test_faults.py (it needs its pause points); the Retrain form's
data folder is in test_app_pages.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saml_core import registry
from saml_core.artifacts import ArtifactError
from saml_core.config import ConfigError
from saml_core.data import DataError, load_dataset
from saml_core.data.byo import load_byo
from test_data_byo import SCHEMA, good_frame, write

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
RUN = "bst-d0-s0"
MAX_MESSAGE = 1000  # an error is a line to read, not a dump


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saml_core", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def main(capsys, *args) -> subprocess.CompletedProcess:
    """The CLI's own entry point in this process (what `python -m saml_core` runs, without paying
    the interpreter's start for every case)."""
    from saml_core.cli import main as cli_main

    capsys.readouterr()
    rc = cli_main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The command failed with exactly one `error:` line and no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert len(lines[0]) < MAX_MESSAGE, lines[0][:300]
    return lines[0]


def data_error(schema: Path, match: str) -> str:
    with pytest.raises(DataError, match=match) as exc:
        load_byo(schema)
    text = str(exc.value)
    assert "\n" not in text and len(text) < MAX_MESSAGE, text[:300]
    return text


# ---- artifacts -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """An artifacts root with one finished tiny run (BST, quick preset, two batches)."""
    from saml_core.experiments import ExperimentConfig, run_experiment
    from saml_core.presets import settings_for

    root = tmp_path_factory.mktemp("finished")
    s = settings_for("synthetic-countries", "quick",
                     train={"max_train_batches": 2, "epochs": 1, "num_threads": 1, "device": "cpu"})
    run_experiment(ExperimentConfig(name="exp", runs="bst", **s), root, log=lambda _: None)
    return root


@pytest.fixture()
def art(finished, tmp_path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "art"))


def without_hanging(fn, fifo: Path, seconds: float = 10.0):
    """fn() in a thread; if it is still blocked on `fifo` after `seconds`, free it and fail."""
    got: dict = {}

    def target():
        try:
            got["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            got["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        for _ in range(20):  # a reader blocked in open() is released by a writer that comes and goes
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            t.join(0.2)
        pytest.fail(f"the read blocked on the FIFO {fifo.name}")
    if "error" in got:
        raise got["error"]
    return got["value"]


RUN_FILES = ("history.json", "metrics.json", "config.json", "model.pt")


@pytest.mark.parametrize("rel", [f"{RUN}/{f}" for f in RUN_FILES + ("predictions.npz", "status.json", "probes.npz")]
                         + ["experiment_status.json", "test_labels-d0.npz", "experiment.json"])
def test_a_fifo_in_place_of_an_artifact_never_blocks_a_read(art, rel):
    fifo = art / "exp" / rel
    if not rel.endswith("probes.npz"):  # BST stores no probes: that one is planted where none was
        assert fifo.exists(), rel
        fifo.unlink()
    os.mkfifo(fifo)
    if rel == "experiment.json":
        with pytest.raises(ArtifactError, match=r"experiment\.json: not a regular file"):
            without_hanging(lambda: registry.load_experiment(art, "exp"), fifo)
        (summary,) = without_hanging(lambda: registry.list_experiments(art), fifo)
        assert "not a regular file" in summary.error
        return
    doc = without_hanging(lambda: registry.report(art, "exp"), fifo)
    (run,) = doc["runs"]
    name = rel.split("/")[-1]
    if name in RUN_FILES:  # the run cannot be shown: it says why, naming the file
        assert run["state"] == "broken" and name in run["error"] and "not a regular file" in run["error"]
    elif name in ("predictions.npz", "test_labels-d0.npz"):  # the paired tests leave it out, and say so
        assert any(name in n and "not a regular file" in n for n in doc["notes"]), doc["notes"]
    elif name == "probes.npz":
        exp = registry.load_experiment(art, "exp")
        with pytest.raises(ArtifactError, match="not a regular file"):
            without_hanging(lambda: exp.run(RUN).load_probes(), fifo)
    # status files are optional: the run and the experiment are read without them


def test_report_command_with_a_fifo_history_ends_instead_of_hanging(art):
    fifo = art / "exp" / RUN / "history.json"
    fifo.unlink()
    os.mkfifo(fifo)
    proc = cli("report", "exp", "--artifacts", art, timeout=30)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "history.json: not a regular file" in proc.stdout


def _edit_metrics(art: Path, edit) -> None:
    path = art / "exp" / RUN / "metrics.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))


@pytest.mark.parametrize("key, value", [("epochs_run", 10**20), ("epochs_run", "12"), ("train_seconds", 10**400),
                                        ("best_epoch", -3), ("epochs_run", True)],
                         ids=["epochs-1e20", "epochs-text", "seconds-1e400", "best-epoch-negative", "epochs-bool"])
def test_a_number_no_run_can_have_in_metrics_json_makes_the_run_broken(art, key, value):
    _edit_metrics(art, lambda m: m.update({key: value}))
    doc = registry.report(art, "exp")
    (run,) = doc["runs"]
    assert run["state"] == "broken" and f"'{key}'" in run["error"] and "metrics.json" in run["error"]
    assert len(run["error"]) < MAX_MESSAGE


def test_a_seed_beyond_the_seed_range_in_config_json_makes_the_run_broken(art):
    path = art / "exp" / RUN / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "seed": 10**30}))
    (run,) = registry.load_experiment(art, "exp").runs
    assert run.state == "broken" and "'seed'" in run.error and "config.json" in run.error


def test_report_command_with_epochs_beyond_64_bits(art, capsys):
    _edit_metrics(art, lambda m: m.update(epochs_run=100000000000000000000))
    proc = main(capsys, "report", "exp", "--format", "json", "--artifacts", art)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (run,) = json.loads(proc.stdout)["runs"]
    assert run["state"] == "broken" and "epochs_run" in run["error"]


def test_mean_std_takes_any_json_value():
    from saml_core.evaluate import mean_std

    assert mean_std([1.0, 10**20, 10**400, "3", None, True, float("nan"), 3]) == \
        {"mean": pytest.approx((1 + 1e20 + 3) / 3), "std": pytest.approx(np.std([1, 1e20, 3], ddof=1)), "n": 3}


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000], ids=["lists", "objects"])
def test_json_nested_beyond_recursion_is_a_broken_run(art, text):
    (art / "exp" / RUN / "metrics.json").write_text(text)
    (run,) = registry.report(art, "exp")["runs"]
    assert run["state"] == "broken" and "metrics.json" in run["error"]


def test_an_oversized_json_artifact_is_refused_unread(art, monkeypatch):
    from saml_core import artifacts

    limit = max(f.stat().st_size for f in (art / "exp").rglob("*.json")) + 100
    monkeypatch.setattr(artifacts, "MAX_JSON_BYTES", limit)
    _edit_metrics(art, lambda m: m.update(padding="x" * limit))
    (run,) = registry.report(art, "exp")["runs"]
    assert run["state"] == "broken" and f"larger than {limit} bytes" in run["error"]


def _move_out(path: Path, outside: Path) -> None:
    outside.mkdir(parents=True, exist_ok=True)
    target = outside / path.name
    shutil.move(path, target)
    os.symlink(target, path)


@pytest.mark.parametrize("what", ["experiment folder", "experiment.json", "run folder", "run file"])
def test_a_link_out_of_the_artifacts_root_is_not_followed(art, tmp_path, what):
    outside = tmp_path / "elsewhere"
    exp = art / "exp"
    if what in ("experiment folder", "experiment.json"):
        _move_out(exp if what == "experiment folder" else exp / "experiment.json", outside)
        (summary,) = registry.list_experiments(art)
        assert summary.error and "outside the artifacts root" in summary.error
        with pytest.raises(ArtifactError, match="outside the artifacts root"):
            registry.load_experiment(art, "exp")
        return
    _move_out(exp / RUN if what == "run folder" else exp / RUN / "metrics.json", outside)
    (run,) = registry.load_experiment(art, "exp").runs
    assert run.state == "broken" and "outside the artifacts root" in run.error and "\n" not in run.error
    assert registry.list_experiments(art)[0].error is None  # the experiment itself is listed as usual


def test_a_link_that_stays_inside_the_artifacts_root_is_read(art):
    store = art / ".store"
    _move_out(art / "exp" / RUN, store)
    (run,) = registry.load_experiment(art, "exp").runs
    assert run.state == "finished", run.error


# ---- sizes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [1_000_000_000, 10**30], ids=["1e9", "1e30"])
def test_seq_len_beyond_the_bound_is_refused_before_anything_is_allocated(tmp_path, capsys, value):
    proc = main(capsys, "experiment", "--dataset", "synthetic-countries", "--name", "x", "--quick", "--runs", "bst",
               "--epochs", "1", "--seq-len", value, "--artifacts", tmp_path)
    line = one_error_line(proc)
    assert "from 1 to 1000" in line and "seq-len" in line
    assert not (tmp_path / "x").exists()


def test_seq_len_0_is_refused_and_points_to_no_sequences(tmp_path, capsys):
    proc = main(capsys, "experiment", "--dataset", "synthetic-countries", "--name", "x", "--quick", "--runs", "bst",
               "--epochs", "1", "--seq-len", 0, "--artifacts", tmp_path)
    assert "--no-sequences" in one_error_line(proc)


def test_a_job_spec_with_a_huge_seq_len_does_not_validate():
    from saml_core.experiments import ExperimentConfig

    with pytest.raises(ConfigError, match="from 1 to 1000"):
        ExperimentConfig(name="x", dataset="synthetic-countries", dataset_options={"seq_len": 10**9})
    with pytest.raises(DataError, match="from 1 to 1000"):
        load_dataset("synthetic-countries", size="small", seq_len=10**9)


SEQ_SCHEMA = SCHEMA.format(data="log.csv", scenarios="")


@pytest.mark.parametrize("value", ["1e30", "1.0e+30", "100000000", str(10**30), "0", "-3", "true"])
def test_schema_seq_len_beyond_the_bound_is_refused(tmp_path, value):
    schema = write(tmp_path, good_frame(), schema_text=SEQ_SCHEMA.replace("seq_len: 4", f"seq_len: {value}"))
    data_error(schema, r"schema\.yaml: 'seq_len' must be a whole number from 1 to 1000, got")


def test_json_schema_seq_len_1e30(tmp_path):
    good_frame().to_csv(tmp_path / "log.csv", index=False)
    (tmp_path / "s.json").write_text('{"data": "log.csv", "scenario": "market", "label": "click", '
                                     '"categorical": ["item"], "split": {"column": "day"}, "seq_len": 1e30}')
    data_error(tmp_path / "s.json", r"'seq_len' must be a whole number from 1 to 1000")


def test_more_scenarios_than_the_bound_is_one_error(tmp_path):
    df = pd.concat([good_frame()] * 4, ignore_index=True)
    df["market"] = [f"m{i % 250}" for i in range(len(df))]
    data_error(write(tmp_path, df), r"column 'market' has 250 distinct scenarios; at most 200")


def test_a_vocabulary_beyond_the_bound_is_one_error(tmp_path, monkeypatch):
    from saml_core.data import encoder

    monkeypatch.setattr(encoder, "MAX_VOCAB", 4)
    data_error(write(tmp_path, good_frame()), r"'item' has \d+ distinct values in the train split; at most 4")


def test_a_schema_file_larger_than_the_bound_is_refused_unread(tmp_path):
    text = SCHEMA.format(data="log.csv", scenarios="") + "description: " + "x" * (1 << 20) + "\n"
    data_error(write(tmp_path, good_frame(), schema_text=text), r"schema\.yaml: .*larger than 1 MiB")


def _bomb(levels: int = 5) -> str:
    """A YAML value whose aliases expand to 10**levels items."""
    parts = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    parts += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


@pytest.mark.parametrize("key", ["scenario_noun", "categorical", "title"])
def test_yaml_aliases_are_refused_before_they_expand(tmp_path, key):
    base = SCHEMA.format(data="log.csv", scenarios="")
    text = "\n".join(ln for ln in base.splitlines() if not ln.startswith(f"{key}:")) + f"\n{key}: {_bomb()}\n"
    data_error(write(tmp_path, good_frame(), schema_text=text), r"schema\.yaml: .*line \d+.*aliases")


@pytest.mark.parametrize("suffix, text", [(".yaml", "categorical: " + "[" * 5000 + "]" * 5000),
                                          (".json", '{"categorical": ' + "[" * 100_000 + "]" * 100_000 + "}")],
                         ids=["yaml", "json"])
def test_a_schema_nested_beyond_recursion_is_one_error(tmp_path, suffix, text):
    good_frame().to_csv(tmp_path / "log.csv", index=False)
    schema = tmp_path / f"schema{suffix}"
    schema.write_text(text)
    data_error(schema, r"nested too deeply")


# ---- bring-your-own logs -------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 1])
def test_a_label_with_one_value_is_one_error_before_any_model(tmp_path, value):
    df = good_frame().assign(click=value)
    data_error(write(tmp_path, df), rf"log\.csv: label column 'click' is {value} in all 72 rows")


def test_one_class_label_from_the_command_line_stops_before_training(tmp_path, capsys):
    schema = write(tmp_path, good_frame().assign(click=1))
    line = one_error_line(main(capsys, "experiment", "--dataset", f"csv:{schema}", "--name", "x", "--quick", "--runs",
                              "lr_te", "--artifacts", tmp_path / "art"))
    assert "label column 'click' is 1 in all" in line


def test_a_train_split_with_one_class_is_one_error(tmp_path):
    df = good_frame()
    df.loc[df.day <= 1, "click"] = 1  # train days: every row a click
    data_error(write(tmp_path, df), r"the train split has only clicks")


DATED = {0: "30/12/2023", 1: "31/12/2023", 2: "01/01/2024", 3: "02/01/2024"}  # as text, day 1 sorts last


def _dated(tmp_path, split: str) -> Path:
    df = good_frame()
    df = df[(df.day < 3) | (df.index % 6 < 4)].reset_index(drop=True)  # the last day has 12 rows, others 18
    df["day"] = df["day"].map(DATED)
    text = SCHEMA.format(data="log.csv", scenarios="").replace("split: {column: day, test: last, valid: last}", split)
    return write(tmp_path, df, schema_text=text)


def test_dates_that_are_not_iso_need_their_format_declared(tmp_path):
    schema = _dated(tmp_path, "split: {column: day, test: last, valid: last}")
    data_error(schema, r"split column 'day' has the value '30/12/2023' at row 0, which is not .*ISO.*format")


def test_dates_with_a_declared_format_split_in_time_order(tmp_path):
    schema = _dated(tmp_path, "split: {column: day, format: '%d/%m/%Y', test: last, valid: {from: 01/01/2024}}")
    data = load_byo(schema)
    assert (len(data.train), len(data.valid), len(data.test)) == (36, 18, 12)
    assert data.info["split"]["format"] == "%d/%m/%Y"


def test_a_date_that_does_not_match_the_declared_format_names_row_and_value(tmp_path):
    schema = _dated(tmp_path, "split: {column: day, format: '%Y-%m-%d'}")
    data_error(schema, r"split column 'day' has the value '30/12/2023' at row 0, which does not match .*'%Y-%m-%d'")


@pytest.mark.parametrize("bad", ["2024-13-45", "soon"])
def test_an_unparsable_time_value_names_row_and_value(tmp_path, bad):
    df = good_frame()
    df["day"] = df["day"].map(lambda d: f"2024-01-0{d + 1}").astype(object)
    df.loc[7, "day"] = bad
    data_error(write(tmp_path, df), rf"split column 'day' has the value '{bad}' at row 7")


def test_a_word_in_a_numeric_day_column_names_row_and_value(tmp_path):
    df = good_frame().astype({"day": object})
    df.loc[9, "day"] = "tomorrow"
    data_error(write(tmp_path, df), r"split column 'day' has the value 'tomorrow' at row 9, which is not a number")


def _schema_with(tmp_path, df, categorical="[item, cat]", numeric="[price]") -> Path:
    text = SCHEMA.format(data="log.csv", scenarios="")
    text = text.replace("categorical: [item, cat]", f"categorical: {categorical}")
    return write(tmp_path, df, schema_text=text.replace("numeric: [price]", f"numeric: {numeric}"))


@pytest.mark.parametrize("kind", ["categorical", "numeric"])
def test_the_label_copied_into_a_feature_is_a_leakage_warning(tmp_path, kind):
    df = good_frame()
    df["copy"] = df["click"].map({0: "no", 1: "yes"}) if kind == "categorical" else df["click"] * 3.5 + 1
    schema = _schema_with(tmp_path, df, **{kind: "[item, cat, copy]" if kind == "categorical" else "[price, copy]"})
    data = load_byo(schema)
    (warning,) = data.info["warnings"]
    assert "'copy'" in warning and "label" in warning and "AUC" in warning


def test_no_leakage_warning_for_an_id_unique_to_each_row(tmp_path):
    df = good_frame()
    df["row_id"] = [f"r{i}" for i in range(len(df))]
    data = load_byo(_schema_with(tmp_path, df, categorical="[item, cat, row_id]"))
    assert data.info["warnings"] == []


@pytest.mark.parametrize("a, b", [("A", "a"), ("New York", "New  York"), ("US", "U S")])
def test_scenarios_differing_only_by_case_or_spacing_are_a_warning(tmp_path, a, b):
    df = good_frame()
    df["market"] = df["market"].replace({"A": a, "B": b})
    data = load_byo(write(tmp_path, df))
    (warning,) = data.info["warnings"]
    assert repr(a) in warning and repr(b) in warning


def test_a_scenario_without_non_clicks_is_dropped_and_said(tmp_path):
    df = good_frame()
    df.loc[df.market == "B", "click"] = 1
    data = load_byo(write(tmp_path, df))
    assert data.spec.scenario_names == ("A", "C")
    (d,) = data.info["dropped_scenarios"]
    assert d["scenario"] == "B" and "non-click" in d["reason"]


@pytest.mark.parametrize("name", ["A\nB", "A\tB"])
def test_a_line_break_or_control_character_in_a_scenario_name_is_an_error(tmp_path, name):
    df = good_frame()
    df.loc[5, "market"] = name
    data_error(write(tmp_path, df), re.escape(f"scenario column 'market' has the value {name!r} at row 5"))


@pytest.mark.parametrize("line", ["title: [a, b]", "title: {x: 1}", "description: [1, 2]"])
def test_the_schema_title_and_description_must_be_text(tmp_path, line):
    text = line + "\n" + SCHEMA.format(data="log.csv", scenarios="")
    key = line.split(":")[0]
    data_error(write(tmp_path, good_frame(), schema_text=text), rf"schema\.yaml: '{key}' must be text")


@pytest.mark.parametrize("how", ["dotdot", "symlink", "absolute"])
def test_a_data_path_leaving_the_schema_folder_is_refused_unread(tmp_path, how):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("TOPSECRET,hunter2\n1,2\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    data = {"dotdot": "../outside/secret.csv", "symlink": "log.csv", "absolute": str(outside / "secret.csv")}[how]
    if how == "symlink":
        os.symlink(outside / "secret.csv", mine / "log.csv")
    (mine / "schema.yaml").write_text(SCHEMA.format(data=data, scenarios=""))
    text = data_error(mine / "schema.yaml", r"schema\.yaml: data file .* is outside the schema file's folder")
    assert "TOPSECRET" not in text and "hunter2" not in text


def test_duplicate_column_names_in_the_header_are_an_error(tmp_path):
    schema = write(tmp_path, good_frame())
    path = tmp_path / "log.csv"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace("cat", "item")  # two columns called item
    path.write_text("\n".join(lines) + "\n")
    data_error(schema, r"log\.csv: the header names the column 'item' twice \(columns \d+ and \d+\)")


@pytest.mark.parametrize("categorical, numeric, match", [
    ("[item, cat, price]", "[price]", r"'price' is listed under both categorical and numeric"),
    ("[item, cat, item]", "[price]", r"categorical lists 'item' twice"),
    ("[item, cat, hist]", "[price]", r"'hist' is listed under both categorical and sequences"),
])
def test_a_column_listed_twice_in_the_schema_is_an_error(tmp_path, categorical, numeric, match):
    data_error(_schema_with(tmp_path, good_frame(), categorical, numeric), match)


def test_a_header_name_with_a_trailing_space_is_shown_visibly(tmp_path):
    schema = write(tmp_path, good_frame().rename(columns={"price": "price "}))
    data_error(schema, r"missing column\(s\) 'price'.*the file has 'price ' \(with a space at the end\)")


def test_ids_written_two_ways_are_a_warning(tmp_path):
    df = good_frame()
    df.loc[df.index % 4 == 0, "item"] = "12"
    df.loc[df.index % 4 == 1, "item"] = "12.0"
    data = load_byo(write(tmp_path, df))
    (warning,) = data.info["warnings"]
    assert "'item'" in warning and "'12'" in warning and "'12.0'" in warning


# ---- warnings reach `data describe`, the job log, experiment.json and the pages -----------------

def test_dataset_warnings_are_shown_by_describe_the_job_log_and_the_pages(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard_support import page_text
    from saml_core import jobs
    from saml_core.experiments import ExperimentConfig
    from saml_core.presets import settings_for
    from saml_core.jobs import JobQueue

    rng = np.random.default_rng(0)
    n = 900
    df = pd.DataFrame({"day": rng.integers(0, 6, n), "market": rng.choice(["north", "south", "east"], n),
                       "item": [f"i{x}" for x in rng.integers(0, 30, n)], "price": rng.gamma(2.0, 5.0, n).round(2),
                       "hist": ["|".join(f"i{x}" for x in rng.integers(0, 30, 3)) for _ in range(n)],
                       "click": (rng.random(n) < 0.3).astype(int)})
    df["cat"] = df["click"].map({0: "c0", 1: "c1"})  # the label, copied
    schema = write(tmp_path, df)
    dataset = f"csv:{schema}"
    desc = cli("data", "describe", dataset)  # a process of its own, as a user runs it
    assert desc.returncode == 0, desc.stderr
    assert "warning: column 'cat' predicts the label" in desc.stdout

    root = tmp_path / "art"
    s = settings_for(dataset, "quick", train={"num_threads": 1, "device": "cpu"})
    q = JobQueue(root / ".jobs")
    cfg = ExperimentConfig(name="leak", runs="lr_te", dataset=dataset, **s)
    job = jobs.wait(q, q.submit(cfg, title="leak").job_id, timeout=300)
    assert job.state == "finished", job.log_tail
    assert "warning: column 'cat' predicts the label" in job.log_tail
    info = json.loads((root / "leak" / "experiment.json").read_text())["dataset_info"]
    assert any("'cat'" in w for w in info["warnings"])

    monkeypatch.setenv("SAML_ARTIFACTS", str(root))
    monkeypatch.delenv("SAML_DEMO_MODE", raising=False)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "column 'cat' predicts the label" in page_text(at)
