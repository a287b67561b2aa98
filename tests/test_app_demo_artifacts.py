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
            out += [(exp.name, r.run_id) for r in exp.runs if r.finished]
    return out


RUNS = shipped_runs()


def test_shipped_demo_experiments_are_complete_and_small():
    from saml_core.experiments import DEFAULT_RUNS, DEMO_EXPERIMENTS

    shipped = {s.name: s for s in registry.list_experiments(SHIPPED)}
    for name, dataset in DEMO_EXPERIMENTS:
        assert name in shipped, f"artifacts/{name} is not shipped (build it: python -m saml_core demo)"
        exp = registry.load_experiment(SHIPPED, name)
        assert exp.dataset == dataset
        assert len([r for r in exp.runs if r.finished]) == len(DEFAULT_RUNS), name
    files = [f for f in SHIPPED.rglob("*") if f.is_file() and not f.relative_to(SHIPPED).parts[0].startswith(".")]
    total_mb = sum(f.stat().st_size for f in files) / 1e6
    assert total_mb <= 30, f"shipped artifacts take {total_mb:.1f} MB (limit 30 MB)"
    for summary in shipped.values():
        assert summary.error is None, summary.error
        if summary.state == "finished":
            assert summary.n_finished == summary.n_runs, f"{summary.name}: unfinished runs"


@pytest.mark.parametrize("name, run_id", RUNS or [pytest.param("-", "-", marks=pytest.mark.skip("no shipped demo"))])
def test_shipped_checkpoint_reproduces_its_metrics(name, run_id):
    stored = registry.load_experiment(SHIPPED, name).run(run_id).metrics
    fresh = registry.reevaluate(SHIPPED, name, run_id, device="cpu")
    assert fresh["overall"]["auc"] == pytest.approx(stored["overall"]["auc"], abs=1e-5)
    assert fresh["overall"]["logloss"] == pytest.approx(stored["overall"]["logloss"], abs=1e-5)
    for scenario, m in stored["per_scenario"].items():
        if m.get("auc") is not None:
            assert fresh["per_scenario"][scenario]["auc"] == pytest.approx(m["auc"], abs=1e-5), scenario
