"""End to end: `experiment` + `report` on quick synthetic and the real Taobao sample, registry
reads (a broken run does not hide the others), re-evaluation of stored checkpoints."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from saml_core import registry
from saml_core.artifacts import ArtifactError

REPO = Path(__file__).resolve().parents[1]
LABELS = {"BST-Individual", "BST", "SAML", "SAML w/o gate", "SAML w/o aux", "SAML w/o gate&mut"}


def _cli(*args, root):
    out = subprocess.run([sys.executable, "-m", "saml_core", *args, "--artifacts", str(root)], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def quick_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("artifacts")
    out = _cli("experiment", "--dataset", "synthetic-countries", "--name", "syn", "--quick", "--threads", "1",
               "--status-file", str(root / "job_status.json"), root=root)
    assert out.returncode == 0, out.stderr
    return root


def test_report_json_has_every_run_and_country(quick_root):
    out = _cli("report", "syn", "--format", "json", root=quick_root)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {r["label"] for r in doc["runs"]} == LABELS
    names = doc["scenario_names"]
    assert names[:2] == ["RU", "BR"] and len(names) == 10
    for r in doc["runs"]:
        assert r["error"] is None and 0 < r["overall"]["auc"] < 1
        for s in names:
            c = r["per_scenario"][s]
            assert c["n"] == doc["test_counts"][s]["n"] and c["positives"] == doc["test_counts"][s]["positives"]
            assert c["ci_low"] <= c["auc"] <= c["ci_high"]
        if r["model"] != "bst":
            assert r["relaimpr_vs_bst"] is not None and "p_vs_bst" in r["per_scenario"]["RU"]
    assert all(0.5 < doc["oracle_auc"][s] <= 1 for s in names)
    full = next(r for r in doc["runs"] if r["label"] == "SAML")
    assert len(full["similarity_recovery"]["spearman"]) == 2
    md = _cli("report", "syn", "--format", "markdown", root=quick_root).stdout
    assert "| RU |" in md and "oracle" in md
    status = json.loads((quick_root / "job_status.json").read_text())
    assert status["state"] == "finished" and status["n_runs"] == 6


def test_registry_reads_and_survives_a_broken_run(quick_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(quick_root, root)
    [summary] = registry.list_experiments(root)
    assert summary.name == "syn" and summary.n_runs == 6 and summary.n_finished == 6 and summary.state == "finished"
    exp = registry.load_experiment(root, "syn")
    assert exp.true_similarity.shape == (10, 10) and exp.data_similarity.shape == (10, 10)
    run = exp.run("saml-full-s0")
    probes = run.load_probes()
    assert probes["alpha"].shape[1] == len(exp.raw["probe_index"])
    # corrupt one run's metrics and delete another's model: the rest still load
    (root / "syn/bst-s0/metrics.json").write_text("{broken")
    (root / "syn/saml-no_aux-s0/model.pt").unlink()
    exp = registry.load_experiment(root, "syn")
    errors = {r.run_id: r.error for r in exp.runs}
    assert "metrics.json" in errors["bst-s0"] and "model.pt" in errors["saml-no_aux-s0"]
    assert sum(e is None for e in errors.values()) == 4
    doc = registry.report(root, "syn")
    assert next(r for r in doc["runs"] if r["run_id"] == "saml-full-s0")["relaimpr_vs_bst"] is None
    (root / "syn/experiment.json").write_text("[1,2")
    with pytest.raises(ArtifactError, match="experiment.json"):
        registry.load_experiment(root, "syn")
    assert registry.list_experiments(root)[0].error is not None


def test_reevaluate_reproduces_stored_metrics(quick_root):
    exp = registry.load_experiment(quick_root, "syn")
    for run_id in ("saml-full-s0", "bst_individual-s0"):
        stored = exp.run(run_id).metrics
        fresh = registry.reevaluate(quick_root, "syn", run_id)
        assert fresh["overall"]["auc"] == pytest.approx(stored["overall"]["auc"], abs=1e-9)
        for s in exp.scenario_names:
            assert fresh["per_scenario"][s]["auc"] == pytest.approx(stored["per_scenario"][s]["auc"], abs=1e-9)


def test_rerun_skips_finished_runs(quick_root):
    before = (quick_root / "syn/bst-s0/model.pt").stat().st_mtime_ns
    out = _cli("experiment", "--dataset", "synthetic-countries", "--name", "syn", "--quick", "--runs", "bst",
               root=quick_root)
    assert out.returncode == 0 and "skipped" in out.stderr
    assert (quick_root / "syn/bst-s0/model.pt").stat().st_mtime_ns == before
    bad = _cli("experiment", "--dataset", "taobao-sample", "--name", "syn", "--quick", root=quick_root)
    assert bad.returncode == 2 and "already exists with dataset" in bad.stderr


def test_taobao_sample_end_to_end(tmp_path):
    out = _cli("experiment", "--dataset", "taobao-sample", "--name", "tb", "--quick", "--threads", "1", root=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(_cli("report", "tb", "--format", "json", root=tmp_path).stdout)
    assert {r["label"] for r in doc["runs"]} == LABELS and doc["oracle_auc"] is None
    assert len(doc["scenario_names"]) == 5
    for r in doc["runs"]:
        assert r["error"] is None
        assert sum(c["n"] for c in r["per_scenario"].values()) == r["overall"]["n"]


def test_cli_errors_are_one_line(tmp_path):
    out = _cli("train", "--dataset", "synthetic-countries", "--model", "bst", "--variant", "full", root=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error:") and "Traceback" not in out.stderr
    out = _cli("report", "nope", root=tmp_path)
    assert out.returncode == 2 and "experiment.json" in out.stderr
    out = _cli("experiment", "--dataset", "synthetic-countries", "--name", "x", "--mlp", "a,b", root=tmp_path)
    assert out.returncode == 2 and "--mlp" in out.stderr


def test_plans_for_seeds_and_sweeps():
    from saml_core.config import ModelConfig
    from saml_core.experiments import ExperimentConfig

    ids = [r.run_id for r in ExperimentConfig(name="x", seeds=2).plan()]
    assert len(ids) == 12 and ids[:2] == ["bst_individual-s0", "bst-s0"] and ids[-1] == "saml-no_gate_mut-s1"
    plan = ExperimentConfig(name="x", runs=["bst", "saml:full"], sweep="depth",
                            model_config=ModelConfig(mlp=(256, 128))).plan()
    assert [r.run_id for r in plan][:2] == ["bst-depth2-s0", "saml-full-depth2-s0"]
    assert [r.model_config.mlp for r in plan if r.model == "saml"] == [
        (256, 128), (256, 128, 64), (256, 128, 64, 32), (256, 128, 64, 32, 16)]
    emb = ExperimentConfig(name="x", runs="saml:full", sweep="emb").plan()
    assert [r.model_config.d_g for r in emb] == [8, 12, 16, 24, 32]
    heads = ExperimentConfig(name="x", runs="bst", sweep="heads").plan()
    assert [r.model_config.heads for r in heads] == [4, 8, 12, 16]


def test_multi_seed_summary_mean_and_std():
    rows = []
    for seed, auc in [(0, 0.70), (1, 0.72), (2, 0.74)]:
        rows.append({"run_id": f"saml-full-s{seed}", "label": "SAML", "model": "saml", "variant": "full",
                     "overall": {"auc": auc, "logloss": 0.2}, "relaimpr_vs_bst": 1.0 + seed,
                     "per_scenario": {"A": {"auc": auc - 0.01}}})
    rows.append({"run_id": "bst-s0", "label": "BST", "model": "bst", "variant": None, "overall": None,
                 "relaimpr_vs_bst": None, "per_scenario": None})  # a broken run is left out
    [s] = registry._summary(rows, ["A"])
    assert s["group"] == "saml-full" and s["n_seeds"] == 3
    assert s["auc"]["mean"] == pytest.approx(0.72) and s["auc"]["std"] == pytest.approx(0.02)
    assert s["per_scenario"]["A"]["mean"] == pytest.approx(0.71) and s["relaimpr_vs_bst"]["mean"] == pytest.approx(2.0)
