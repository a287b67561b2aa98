"""The demo experiments shipped in artifacts/ never go stale: their checkpoints reproduce their metrics.

The dashboard opens on these files, so a change in the data pipeline or the models that would
make them disagree with the code must fail here (rebuild the demo with the documented command).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from saml_core import registry

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "artifacts"


def shipped_runs() -> list[tuple[str, str]]:
    if not SHIPPED.is_dir():
        return []
    out = []
    for summary in registry.list_experiments(SHIPPED):
        if summary.error is None and summary.state in ("finished", "unknown"):
            exp = registry.load_experiment(SHIPPED, summary.name)
            out += [(exp.name, r.run_id) for r in exp.runs if r.finished and (r.path / "model.pt").exists()]
    return out


RUNS = shipped_runs()


def test_shipped_demo_experiments_are_complete_and_small():
    from saml_core.presets import demo_specs

    shipped = {s.name: s for s in registry.list_experiments(SHIPPED)}
    for cfg in demo_specs():
        assert cfg.name in shipped, f"artifacts/{cfg.name} is not shipped (build it: python -m saml_core demo)"
        exp = registry.load_experiment(SHIPPED, cfg.name)
        assert exp.dataset == cfg.dataset
        assert sorted(r.run_id for r in exp.runs if r.finished) == sorted(r.run_id for r in cfg.plan()), cfg.name
    files = [f for f in SHIPPED.rglob("*") if f.is_file() and not f.relative_to(SHIPPED).parts[0].startswith(".")]
    total_mb = sum(f.stat().st_size for f in files) / 1e6
    assert total_mb <= 30, f"shipped artifacts take {total_mb:.1f} MB (limit 30 MB)"
    for summary in shipped.values():
        assert summary.error is None, summary.error
        if summary.state == "finished":
            assert summary.n_finished == summary.n_runs, f"{summary.name}: unfinished runs"


@pytest.mark.skipif(not RUNS, reason="no shipped demo")
@pytest.mark.parametrize("name", ["demo", "taobao-demo"])
def test_shipped_demo_reports_every_model_over_seeds_with_verdicts(name):
    """>= 3 model seeds x 2 data seeds per model, the simple baseline with CIs and verdicts,
    BST-Individual without sub-models stopped after their first epoch, RelaImpr only where BST is
    clearly above chance, and every verdict the direction of its test."""
    doc = registry.report(SHIPPED, name)
    groups = {s["model"]: s for s in doc["summary"]}
    assert {"saml", "bst", "bst_individual", "lr_te"} <= set(groups)
    for s in groups.values():
        assert len(s["seeds"]) >= 3 and len(s["data_seeds"]) >= 2 and s["n_runs"] >= 6, s["group"]
    lr = groups["lr_te"]
    assert lr["vs_reference"]["overall"]["verdict"] in ("better", "worse", "no detectable difference")
    for scenario in doc["scenario_names"]:
        cell = lr["per_scenario"][scenario]
        assert cell["ci_low"] <= cell["auc"]["mean"] <= cell["ci_high"]
    for r in doc["runs"]:
        for sub in (r.get("submodels") or {}).values():
            assert sub["epochs_run"] >= sub["min_epochs"] >= 2, (r["run_id"], sub)
    for s in groups.values():
        v = s["vs_reference"]
        if not v:
            continue
        for key in doc["scenario_names"] + ["within", "overall"]:
            c = v[key]
            if c["base_ci_low"] is None or c["base_ci_low"] <= 0.5 or key == "overall":  # pooled: never
                assert c["relaimpr"] is None and c["relaimpr_note"], (s["group"], key)
            if c["verdict"] in ("better", "worse"):
                assert (c["auc_diff"] > 0) == (c["verdict"] == "better") and c["p_holm"] < 0.05


@pytest.mark.parametrize("name, run_id", RUNS or [pytest.param("-", "-", marks=pytest.mark.skip("no shipped demo"))])
def test_shipped_checkpoint_reproduces_its_metrics(name, run_id):
    stored = registry.load_experiment(SHIPPED, name).run(run_id).metrics
    fresh = registry.reevaluate(SHIPPED, name, run_id, device="cpu")
    assert fresh["overall"]["auc"] == pytest.approx(stored["overall"]["auc"], abs=1e-5)
    assert fresh["overall"]["logloss"] == pytest.approx(stored["overall"]["logloss"], abs=1e-5)
    for scenario, m in stored["per_scenario"].items():
        if m.get("auc") is not None:
            assert fresh["per_scenario"][scenario]["auc"] == pytest.approx(m["auc"], abs=1e-5), scenario


@pytest.mark.parametrize("name, run_id", RUNS or [pytest.param("-", "-", marks=pytest.mark.skip("no shipped demo"))])
def test_shipped_checkpoint_fits_the_model_its_config_builds(name, run_id):
    """Without the shapes recorded in metrics.json, model.pt is checked against the model that
    config.json builds now: files of the one-embedding-table-per-field layout (the shipped ones)
    pass through the merge that loading applies."""
    import json

    from saml_core import artifacts as art

    run = registry.load_experiment(SHIPPED, name).run(run_id).path
    art.check_model_file(run / "model.pt", json.loads((run / "config.json").read_text()), None)
