"""End to end: `experiment` + `report` on quick synthetic data and the real Taobao sample (model
seeds, data seeds, verdicts, guarded RelaImpr), registry reads (a broken run does not hide the
others; reads write nothing), experiment identity, re-evaluation of stored checkpoints, CLI errors."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from saml_core import registry
from saml_core.artifacts import ArtifactError
from saml_core.models import registry as models

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LABELS = {models.get(m).label for m in models.default_ids()}


def _cli(*args, root):
    return subprocess.run([sys.executable, "-m", "saml_core", *args, "--artifacts", str(root)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def quick_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("artifacts")
    out = _cli("experiment", "--dataset", "synthetic-countries", "--name", "syn", "--quick", "--threads", "1",
               "--runs", "default,lr_te", "--status-file", str(root / "job_status.json"), root=root)
    assert out.returncode == 0, out.stderr
    return root


@pytest.fixture(scope="module")
def seeds_root(tmp_path_factory):
    """Two model seeds x two data seeds of two cheap models."""
    root = tmp_path_factory.mktemp("seeds")
    out = _cli("experiment", "--dataset", "synthetic-countries", "--name", "ms", "--quick", "--threads", "1",
               "--runs", "bst,lr_te", "--seeds", "2", "--data-seeds", "2", root=root)
    assert out.returncode == 0, out.stderr
    return root


def test_report_json_has_every_run_country_verdict_and_recovery(quick_root):
    out = _cli("report", "syn", "--format", "json", root=quick_root)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {r["label"] for r in doc["runs"]} == DEFAULT_LABELS | {"LR (target encoding)"}
    names = doc["scenario_names"]
    assert names[:2] == ["RU", "BR"] and len(names) == 10 and doc["scenario_noun"] == ["country", "countries"]
    for r in doc["runs"]:
        assert r["state"] == "finished" and r["error"] is None and 0 < r["overall"]["auc"] < 1
        assert r["train_settings"] and r["stopped"] in ("early stopping", "epoch cap", "grid searched")
        for s in names:
            c = r["per_scenario"][s]
            assert c["n"] == doc["test_counts"][s]["n"] and c["positives"] == doc["test_counts"][s]["positives"]
            assert c["ci_low"] <= c["auc"] <= c["ci_high"]
        if r["model"] != "bst":
            vs = r["vs_reference"]
            assert vs["baseline_run"] == "bst-d0-s0" and set(vs["per_scenario"]) == set(names)
    for s in doc["summary"]:
        if s["model"] == "bst":
            assert s["vs_reference"] is None
            continue
        v = s["vs_reference"]
        for name in names + ["within", "overall"]:
            c = v[name]
            # the verdict follows the paired test's direction and the (Holm-adjusted) p-value
            if c["p_holm"] is not None and c["p_holm"] < 0.05:
                assert c["verdict"] == ("better" if c["auc_diff"] > 0 else "worse")
            elif c["p_holm"] is not None:
                assert c["verdict"] == "no detectable difference"
            else:
                assert c["verdict"] == "n/a" and c["verdict_note"].startswith("n/a: the paired test needs at least 10")
            if name != "overall":  # RelaImpr on the within-scenario AUC only where the baseline's is above chance
                assert (c["relaimpr"] is None) == (c["base_ci_low"] is None or c["base_ci_low"] <= 0.5)
        assert v["overall"]["relaimpr"] is None and "within-country AUC" in v["overall"]["relaimpr_note"]
    assert all(0.5 < doc["oracle_auc"][s] <= 1 for s in names)
    full = next(r for r in doc["runs"] if r["model"] == "saml")
    rec = full["similarity_recovery"]
    assert len(rec["spearman"]) == 2 and all(0 < p <= 1 for p in rec["p_value"])
    assert {"traffic only", "same group only"} <= set(rec["null_scores"]) and len(rec["partial"]) == 2
    assert set(full["gate_init_mean"]) == set(names) and "alpha_unit1" in full["relations"]
    md = _cli("report", "syn", "--format", "markdown", root=quick_root).stdout
    assert "| RU |" in md and "oracle" in md and "Holm" in md and "Mantel" in md and "on the pairwise part" in md
    status = json.loads((quick_root / "job_status.json").read_text())
    assert status["state"] == "finished" and status["n_runs"] == 7 and status["progress"] == 1.0


def _test_split(root, name="syn", d=0):
    z = np.load(root / name / f"test_labels-d{d}.npz")
    return z["label"].astype(int), z["scenario"].astype(int)


def test_report_leads_with_within_auc_beside_the_reference_rows(quick_root):
    """The scenario click rate alone: 0.5 within scenarios, more pooled (recomputed here from the
    data itself); every model's within-scenario AUC from its own predictions."""
    from saml_core import evaluate as ev
    from saml_core.data import load_dataset

    doc = registry.report(quick_root, "syn")
    names, k = doc["scenario_names"], len(doc["scenario_names"])
    data = load_dataset("synthetic-countries", seed=0, size="small")
    tr_s, tr_y = data.train.scenario.numpy(), data.train.label.numpy().astype(np.float64)
    split = json.loads((quick_root / "syn/experiment.json").read_text())["splits"]["0"]
    assert split["train_counts"] == {s: {"n": int((tr_s == j).sum()), "positives": int(tr_y[tr_s == j].sum())}
                                     for j, s in enumerate(names)}
    label, scen = _test_split(quick_root)
    assert np.array_equal(label, data.test.label.numpy()) and np.array_equal(scen, data.test.scenario.numpy())
    rate = np.array([tr_y[tr_s == j].mean() for j in range(k)])
    refs = {r["id"]: r for r in doc["references"]}
    ctr = refs["scenario_ctr"]
    assert ctr["label"] == "country click rate only" and ctr["note"] is None
    assert ctr["within_auc"]["mean"] == 0.5
    assert ctr["auc"]["mean"] == pytest.approx(ev.auc(label, rate[scen]), abs=1e-12)
    assert ctr["auc"]["mean"] > 0.51  # pooled, knowing only which country clicks more looks like skill (0.52 here)
    assert ctr["logloss"]["mean"] == pytest.approx(ev.logloss(label, rate[scen]), abs=1e-9)
    const = refs["constant"]
    assert const["auc"]["mean"] == 0.5 and const["within_auc"]["mean"] == 0.5
    assert const["logloss"]["mean"] == pytest.approx(ev.logloss(label, np.full(len(label), tr_y.mean())), abs=1e-9)
    ru = names.index("RU")
    assert const["per_scenario"]["RU"]["logloss"]["mean"] == pytest.approx(
        ev.logloss(label[scen == ru], np.full(int((scen == ru).sum()), tr_y.mean())), abs=1e-9)
    for s in doc["summary"]:
        pred = np.load(quick_root / "syn" / f"{s['model']}-d0-s0" / "predictions.npz")["pred"]
        assert s["within_auc"]["mean"] == pytest.approx(ev.within_auc(label, pred, scen, k), abs=1e-12)
        assert s["within_ci_low"] < s["within_auc"]["mean"] < s["within_ci_high"]
        if s["vs_reference"]:
            assert set(s["vs_reference"]["within"]) >= set(s["vs_reference"]["overall"]) - {"verdict_note"}
    md = registry.report_markdown(doc)
    assert md.splitlines()[2] == f"**{doc['headline']}**"  # the sentence comes first
    assert "| country click rate only (reference, no training) | — | 0.5000 |" in md
    assert "within-country AUC |" in md and "| within-country (headline) |" in md and "| pooled |" in md


def _doctor(root: Path, run_id: str, pred: np.ndarray) -> None:
    """Give a run other predictions, with the metrics.json they imply (a run that learned that)."""
    from saml_core import artifacts as art
    from saml_core import evaluate as ev

    label, scen = _test_split(root)
    names = json.loads((root / "syn/experiment.json").read_text())["scenario_names"]
    art.save_npz(root / "syn" / run_id / "predictions.npz", {"pred": pred.astype(np.float32)})
    metrics = json.loads((root / "syn" / run_id / "metrics.json").read_text())
    metrics.update(ev.scenario_metrics(label, pred, scen, names))
    (root / "syn" / run_id / "metrics.json").write_text(json.dumps(metrics))


def test_flags_fire_on_a_bad_model_only_and_the_headline_names_the_regression(quick_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(quick_root, root)
    label, scen = _test_split(root)
    lr = np.load(root / "syn/lr_te-d0-s0/predictions.npz")["pred"].astype(np.float64)
    saml = np.load(root / "syn/saml-d0-s0/predictions.npz")["pred"].astype(np.float64)
    # a model that learned the clicks the wrong way round, with confidence: below chance, and a
    # logloss far worse than predicting the train click rate
    _doctor(root, "saml_no_aux-d0-s0", np.clip(1 - 5 * lr, 0.01, 0.99))
    # the regression clearly ahead of SAML in every country
    _doctor(root, "lr_te-d0-s0", np.clip(saml + 0.2 * label, 0, 1))
    doc = registry.report(root, "syn")
    bad = {(f["scenario"], f["kind"]) for f in doc["flags"] if f["model"] == "saml_no_aux"}
    assert {("overall", "auc_below_chance"), ("overall", "logloss_worse_than_constant")} <= bad
    assert {("RU", "logloss_worse_than_constant"), ("RU", "auc_below_chance")} <= bad  # RU: clicks enough for a CI
    text = next(f["text"] for f in doc["flags"] if f["model"] == "saml_no_aux" and f["scenario"] == "overall"
                and f["kind"] == "auc_below_chance")
    assert text.startswith("SAML w/o aux: within-country AUC 0.") and "lies entirely below 0.5" in text
    assert not [f for f in doc["flags"] if f["model"] == "lr_te"]  # a good model is not flagged
    h = doc["headline"]
    assert h.startswith("By within-country AUC, LR (target encoding) is best (")
    assert "significantly ahead of the runner-up" in h
    assert "but not LR (target encoding) (significantly better by 0." in h, h
    # the other way round: SAML ahead of a regression that learned nothing
    _doctor(root, "lr_te-d0-s0", np.random.default_rng(0).random(len(label)))
    h = registry.report(root, "syn")["headline"]
    assert "not LR" not in h and re.search(r"SAML \(0\.\d{4}\) beats [^;]*LR \(target encoding\) \(\+0\.", h), h


def test_an_experiment_without_train_click_rates_says_so_and_a_rerun_records_them(quick_root, tmp_path):
    """Experiments from before train_counts: the references say what is missing and how to get it;
    running the same command again records them without retraining anything."""
    root = tmp_path / "copy"
    shutil.copytree(quick_root, root)
    doc_path = root / "syn/experiment.json"
    exp_doc = json.loads(doc_path.read_text())
    del exp_doc["splits"]["0"]["train_counts"]
    doc_path.write_text(json.dumps(exp_doc))
    doc = registry.report(root, "syn")
    refs = {r["id"]: r for r in doc["references"]}
    assert refs["scenario_ctr"]["within_auc"]["mean"] == 0.5 and refs["constant"]["auc"]["mean"] == 0.5
    assert refs["scenario_ctr"]["auc"]["mean"] is None and refs["constant"]["logloss"]["mean"] is None
    assert "did not record for data seed 0" in refs["scenario_ctr"]["note"] and "re-run the experiment" in \
        refs["scenario_ctr"]["note"]
    assert not [f for f in doc["flags"] if f["kind"] == "logloss_worse_than_constant"]
    assert "logloss not compared with the constant's" in registry.report_markdown(doc)
    runs = _tree(root / "syn")
    out = _cli("experiment", "--dataset", "synthetic-countries", "--name", "syn", "--quick", "--threads", "1",
               "--runs", "default,lr_te", root=root)
    assert out.returncode == 0 and out.stderr.count("finished earlier, skipped") == 7, out.stderr
    assert "train_counts" in json.loads(doc_path.read_text())["splits"]["0"]
    assert {k: v for k, v in _tree(root / "syn").items() if "/" in k} == {k: v for k, v in runs.items() if "/" in k}
    assert registry.report(root, "syn")["references"][0]["note"] is None


def test_bst_individual_submodels_use_patience_for_their_own_validation_size(quick_root):
    exp = registry.load_experiment(quick_root, "syn")
    run = exp.run("bst_individual-d0-s0")
    subs = run.metrics["submodels"]
    assert set(subs) == set(exp.scenario_names)
    # the quick preset fixes batch and patience; each sub-model records what it used
    assert all(v["batch_size"] == 512 and v["patience"] == 1 and v["epochs_run"] >= 1 for v in subs.values())


def test_multi_seed_verdicts_use_every_seed(seeds_root):
    doc = registry.report(seeds_root, "ms")
    assert doc["data_seeds"] == [0, 1]
    assert {r["run_id"] for r in doc["runs"]} == {f"{m}-d{d}-s{s}" for m in ("bst", "lr_te") for d in (0, 1)
                                                  for s in (0, 1)}
    lr = next(s for s in doc["summary"] if s["model"] == "lr_te")
    assert lr["n_runs"] == 4 and lr["seeds"] == [0, 1] and lr["data_seeds"] == [0, 1]
    v = lr["vs_reference"]
    assert v["pairs"] == 4 and v["overall"]["runs"] == 4
    assert v["overall"]["ahead_in"] + (v["overall"]["runs"] - v["overall"]["ahead_in"]) == 4
    # two data seeds are two different simulated logs: their test sets differ
    d0 = np.load(seeds_root / "ms/test_labels-d0.npz")["label"]
    d1 = np.load(seeds_root / "ms/test_labels-d1.npz")["label"]
    assert len(d0) != len(d1) or not np.array_equal(d0, d1)
    md = registry.report_markdown(doc)
    assert "model seeds [0, 1], data seeds [0, 1]" in md and "of 4" in md


def test_reads_write_nothing(quick_root):
    before = _tree(quick_root)
    registry.list_experiments(quick_root)
    registry.report(quick_root, "syn")
    (quick_root / "syn/test_labels-d0.npz").rename(quick_root / "syn/moved.npz")
    try:
        doc = registry.report(quick_root, "syn")  # no labels: no paired tests, and nothing rebuilt
        assert any("test_labels-d0.npz" in n for n in doc["notes"])
        assert not (quick_root / "syn/test_labels-d0.npz").exists()
    finally:
        (quick_root / "syn/moved.npz").rename(quick_root / "syn/test_labels-d0.npz")
    assert _tree(quick_root) == before


def _break(root, rel, text=None, data=None):
    p = root / "syn" / rel
    if text is not None:
        p.write_text(text)
    elif data is not None:
        p.write_bytes(data)
    else:
        p.unlink()


@pytest.mark.parametrize("rel,content,message", [
    ("bst-d0-s0/metrics.json", "{broken", "corrupted"),
    ("bst-d0-s0/metrics.json", '{"schema_version": 2, "per_scenario": {}}', "overall"),
    ("bst-d0-s0/metrics.json", '{"schema_version": 2, "overall": {"auc": "high"}, "per_scenario": {}}', "number"),
    ("bst-d0-s0/metrics.json", '{"schema_version": "2", "overall": {}}', "schema_version"),
    ("bst-d0-s0/model.pt", None, "model.pt"),
    ("bst-d0-s0/model.pt", b"\x00" * 100, "model.pt"),
    ("bst-d0-s0/config.json", '{"schema_version": 2, "model": 3, "seed": 0}', "model"),
])
def test_registry_names_a_broken_run_and_reads_the_others(quick_root, tmp_path, rel, content, message):
    root = tmp_path / "copy"
    shutil.copytree(quick_root, root)
    if isinstance(content, bytes):
        _break(root, rel, data=content)
    else:
        _break(root, rel, text=content)
    exp = registry.load_experiment(root, "syn")
    broken = exp.run("bst-d0-s0")
    assert broken.state == "broken" and message in broken.error and "bst-d0-s0" in broken.error
    assert sum(r.finished for r in exp.runs) == 6
    doc = registry.report(root, "syn")  # no baseline: the others still report, without comparisons
    assert all(r["vs_reference"] is None for r in doc["runs"])


def test_model_file_of_another_shape_is_caught_when_listed(quick_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(quick_root, root)
    shutil.copy(root / "syn/bst-d0-s0/model.pt", root / "syn/saml-d0-s0/model.pt")
    run = registry.load_experiment(root, "syn").run("saml-d0-s0")
    assert run.state == "broken" and "do not match" in run.error


def test_experiment_file_errors(quick_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(quick_root, root)
    doc = json.loads((root / "syn/experiment.json").read_text())
    doc["traffic_share"]["XX"] = 0.1  # a scenario the experiment does not have
    (root / "syn/experiment.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="traffic_share"):
        registry.load_experiment(root, "syn")
    (root / "syn/experiment.json").write_text("[1,2")
    with pytest.raises(ArtifactError, match="experiment.json"):
        registry.load_experiment(root, "syn")
    assert registry.list_experiments(root)[0].error is not None
    with pytest.raises(ArtifactError, match="not an experiment name"):
        registry.load_experiment(root, "../syn")


def test_reevaluate_reproduces_stored_metrics(quick_root):
    exp = registry.load_experiment(quick_root, "syn")
    for run_id in ("saml-d0-s0", "bst_individual-d0-s0", "lr_te-d0-s0"):
        stored = exp.run(run_id).metrics
        fresh = registry.reevaluate(quick_root, "syn", run_id)
        assert fresh["overall"]["auc"] == pytest.approx(stored["overall"]["auc"], abs=1e-9)
        for s in exp.scenario_names:
            assert fresh["per_scenario"][s]["auc"] == pytest.approx(stored["per_scenario"][s]["auc"], abs=1e-9)


def test_rerun_skips_identical_runs_and_refuses_other_settings(quick_root, tmp_path):
    before = (quick_root / "syn/bst-d0-s0/model.pt").stat().st_mtime_ns
    out = _cli("experiment", "--dataset", "synthetic-countries", "--name", "syn", "--quick", "--runs", "bst",
               "--threads", "1", root=quick_root)
    assert out.returncode == 0 and "skipped" in out.stderr, out.stderr
    assert (quick_root / "syn/bst-d0-s0/model.pt").stat().st_mtime_ns == before
    bad = _cli("experiment", "--dataset", "taobao-sample", "--name", "syn", "--quick", root=quick_root)
    assert bad.returncode == 2 and "already exists with dataset" in bad.stderr
    root = tmp_path / "copy"
    shutil.copytree(quick_root, root)
    other = _cli("experiment", "--dataset", "synthetic-countries", "--name", "syn", "--quick", "--runs", "bst",
                 "--lr", "0.01", "--threads", "1", root=root)
    assert other.returncode == 2 and "bst-d0-s0" in other.stderr and "lr: 0.001 -> 0.01" in other.stderr
    assert (root / "syn/bst-d0-s0/model.pt").stat().st_mtime_ns == before  # nothing touched
    redo = _cli("experiment", "--dataset", "synthetic-countries", "--name", "syn", "--quick", "--runs", "bst",
                "--lr", "0.01", "--threads", "1", "--overwrite", root=root)
    assert redo.returncode == 0, redo.stderr
    assert json.loads((root / "syn/bst-d0-s0/config.json").read_text())["train_config"]["lr"] == 0.01


def test_a_second_writer_on_one_experiment_is_refused(quick_root, tmp_path):
    from saml_core.experiment_state import ExperimentLock

    root = tmp_path / "copy"
    shutil.copytree(quick_root, root)
    with ExperimentLock(root / "syn"):
        out = _cli("experiment", "--dataset", "synthetic-countries", "--name", "syn", "--quick", "--runs", "bst",
                   root=root)
    assert out.returncode == 2 and "being trained right now" in out.stderr


def test_taobao_sample_end_to_end_relaimpr_only_where_bst_is_above_chance(tmp_path):
    out = _cli("experiment", "--dataset", "taobao-sample", "--name", "tb", "--quick", "--threads", "1",
               "--runs", "bst,saml,lr_te", root=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(_cli("report", "tb", "--format", "json", root=tmp_path).stdout)
    assert doc["oracle_auc"] is None and len(doc["scenario_names"]) == 5
    assert doc["scenario_noun"] == ["city level", "city levels"]
    for r in doc["runs"]:
        assert r["error"] is None
        assert sum(c["n"] for c in r["per_scenario"].values()) == r["overall"]["n"]
    saml = next(s for s in doc["summary"] if s["model"] == "saml")["vs_reference"]
    for name in doc["scenario_names"]:
        cell = saml[name]
        if cell["base_ci_low"] is not None and cell["base_ci_low"] <= 0.5:
            assert cell["relaimpr"] is None and cell["relaimpr_note"] == (
                f"n/a: RelaImpr needs the baseline's AUC CI above 0.5 (here {cell['base_ci_low']:.2f}–"
                f"{cell['base_ci_high']:.2f}, {cell['counts']})")
        elif cell["verdict"] == "n/a":  # too few clicks for a test, and for a CI: the rule and the counts
            assert cell["relaimpr"] is None and cell["counts"] in cell["relaimpr_note"]
            assert cell["verdict_note"] == ("n/a: the paired test needs at least 10 clicks and 10 non-clicks in the "
                                            f"test split (here {cell['counts']})")
            assert cell["clicks"] < 10 or cell["non_clicks"] < 10
    md = _cli("report", "tb", "--format", "markdown", root=tmp_path).stdout
    assert "city level" in md and "country" not in md.lower()


@pytest.mark.parametrize("args,needle", [
    (("train", "--dataset", "synthetic-countries", "--model", "bst", "--lr", "nan"), "lr"),
    (("train", "--dataset", "synthetic-countries", "--model", "bst", "--lr", "inf"), "lr"),
    (("train", "--dataset", "synthetic-countries", "--model", "bst", "--data-seed", "-1"), "data seed"),
    (("train", "--dataset", "synthetic-countries", "--model", "bst", "--threads", "-4"), "threads"),
    (("experiment", "--dataset", "synthetic-countries", "--name", "x", "--seeds", "1000000000"), "--seeds"),
    (("experiment", "--dataset", "synthetic-countries", "--name", "x", "--mlp", "100000000"), "mlp"),
    (("experiment", "--dataset", "synthetic-countries", "--name", "x", "--mlp", "a,b"), "--mlp"),
    (("experiment", "--dataset", "synthetic-countries", "--name", "x" * 300), "experiment name"),
    (("experiment", "--dataset", "taobao-sample", "--name", "x", "--size", "small"), "size"),
    (("experiment", "--dataset", "synthetic-countries", "--name", "x", "--runs", "nope"), "unknown model"),
    (("experiment", "--dataset", "nope", "--name", "x"), "unknown dataset"),
    (("experiment", "--dataset", "synthetic-countries", "--name", "x", "--model-option", "bst.depth=3"),
     "has no option(s) depth"),
    (("experiment", "--dataset", "synthetic-countries", "--name", "x", "--model-option", "mmoe.n_experts=3"),
     "model options given for model(s) not in the experiment"),
    (("report", "nope"), "experiment.json"),
    (("report", "../outside"), "not an experiment name"),
    (("report", "/abs/dir"), "not an experiment name"),
])
def test_cli_errors_are_one_line(tmp_path, args, needle):
    out = _cli(*args, root=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error:"), out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1 and needle in out.stderr
    assert not any(p.name == "x" * 300 for p in tmp_path.iterdir())


def test_plans_for_seeds_data_seeds_and_sweeps():
    from saml_core.config import ModelConfig
    from saml_core.experiments import ExperimentConfig

    ids = [r.run_id for r in ExperimentConfig(name="x", seeds=2).plan()]
    assert len(ids) == 12 and ids[0] == "saml-d0-s0" and ids[-1] == "bst-d0-s1"
    plan = ExperimentConfig(name="x", runs=["bst", "saml"], sweep="depth", data_seeds=[0, 3],
                            model_config=ModelConfig(mlp=(256, 128))).plan()
    assert [r.run_id for r in plan][:2] == ["bst-depth2-d0-s0", "saml-depth2-d0-s0"]
    assert plan[-1].run_id == "saml-depth5-d3-s0" and plan[-1].data_seed == 3
    assert [r.model_config.mlp for r in plan if r.model == "saml" and r.data_seed == 0] == [
        (256, 128), (256, 128, 64), (256, 128, 64, 32), (256, 128, 64, 32, 16)]
    emb = ExperimentConfig(name="x", runs="saml:full", sweep="emb").plan()  # an old alias still works
    assert [r.model_config.d_g for r in emb] == [8, 12, 16, 24, 32] and emb[0].model == "saml"
    first = ExperimentConfig(name="x", runs="bst", seeds=3, data_seeds=[0, 1], keep_weights="first-run").plan()
    assert [r.keep_weights for r in first] == [True, False, False, False, False, False]
    main = ExperimentConfig(name="x", runs="saml,saml_no_gate", seeds=2, keep_weights="first-run-main").plan()
    assert [(r.run_id, r.keep_weights) for r in main] == [("saml-d0-s0", True), ("saml_no_gate-d0-s0", False),
                                                          ("saml-d0-s1", False), ("saml_no_gate-d0-s1", False)]
    cfg = ExperimentConfig(name="x", runs="bst,lr_te", seeds=2, data_seeds=[0, 1], model_options={"lr_te": {"folds": 3}})
    assert ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).plan() == cfg.plan()


def test_settings_follow_the_dataset_preset():
    from saml_core.presets import settings_for

    syn = settings_for("synthetic-countries")
    tb = settings_for("taobao-sample")
    assert syn["preset"] == "industrial" and syn["model_config"].d_s == 2 and syn["train_config"].max_batch_size == 1024
    assert tb["preset"] == "public" and tb["model_config"].d_s == 4 and tb["model_config"].mlp == (128, 64)
    assert tb["train_config"].lr == 5e-4 and tb["train_config"].max_batch_size == 128
    assert settings_for("taobao-sample", model={"d_s": 2})["model_config"].d_s == 2  # an explicit choice wins
    quick = settings_for("synthetic-countries", "quick")
    assert quick["dataset_options"] == {"size": "small"} and quick["probe_size"] == 400


def test_public_fixture_report_shows_published_anchors_marked_not_comparable(tmp_path):
    fixture = REPO / "tests" / "fixtures" / "aliexpress"
    out = _cli("experiment", "--dataset", f"aliexpress:{fixture}", "--name", "ae", "--quick", "--threads", "1",
               "--runs", "bst,lr_te", root=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(_cli("report", "ae", "--format", "json", root=tmp_path).stdout)
    assert doc["scenario_noun"] == ["country", "countries"] and doc["scenario_names"] == ["ES", "FR", "NL"]
    assert {a["model"] for a in doc["anchors"]} >= {"PLE", "MMoE"}
    md = _cli("report", "ae", "--format", "markdown", root=tmp_path).stdout
    assert "not comparable" in md and "| PLE | NL |" in md


def test_the_recorded_command_names_no_artifacts_folder(quick_root):
    """experiment.json records the command that made it, without the writer's `--artifacts`
    folder and job status file (the experiment is read, copied and shipped from other folders)."""
    from saml_core.cli_support import recorded_command

    command = json.loads((quick_root / "syn" / "experiment.json").read_text())["command"]
    assert command.startswith("python -m saml_core experiment --dataset synthetic-countries --name syn --quick")
    assert "--artifacts" not in command and "--status-file" not in command and str(quick_root) not in command
    assert recorded_command(["demo", "--artifacts", "/x", "--threads", "1"]) == "python -m saml_core demo --threads 1"
    assert recorded_command(["demo", "--artifacts=/x"]) == "python -m saml_core demo"


def test_report_against_another_experiment_pairs_runs_by_seed(quick_root, seeds_root, tmp_path):
    """`report NAME --against OTHER`: a row per model both trained, each side's within-scenario
    AUC, and the difference paired over the seeds both have (here: data seed 0, model seed 0)."""
    for src in (quick_root / "syn", seeds_root / "ms"):  # the fixtures live in two roots
        shutil.copytree(src, tmp_path / src.name)
    out = _cli("report", "syn", "--against", "ms", root=tmp_path)
    assert out.returncode == 0, out.stderr
    syn, ms_ = registry.report(tmp_path, "syn"), registry.report(tmp_path, "ms")
    rows = {line.split(" | ")[0].strip("| "): line for line in out.stdout.splitlines() if line.startswith("| ")}
    both = [s for s in syn["summary"] if s["model"] in {m["model"] for m in ms_["summary"]}]
    assert {s["label"] for s in both} == {"BST", "LR (target encoding)"} == set(rows) - {"model"}
    for s in both:
        mine = next(r for r in syn["runs"] if r["model"] == s["model"])["within"]["auc"]
        theirs = next(r for r in ms_["runs"] if r["model"] == s["model"] and r["seed"] == 0
                      and r["data_seed"] == 0)["within"]["auc"]
        assert rows[s["label"]].endswith(f"| {mine - theirs:+.4f} (higher in {int(mine > theirs)} of 1) |")
