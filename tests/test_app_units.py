"""Unit tests of the dashboard's pure parts: tables, charts, the retrain form, UMAP point sets."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard import charts, embedding, forms, settings, tables
from dashboard.colors import scenario_colors

NAMES = ["RU", "BR", "ES"]


def run(run_id, label, seed, auc, per, model="bst", variant=None, error=None, history=None):
    metrics = None if error else {
        "overall": {"auc": auc, "logloss": 0.4, "n": 300},
        "per_scenario": {s: {"auc": a, "ci_low": a - 0.02, "ci_high": a + 0.03, "logloss": 0.4, "n": 100,
                             "positives": 10} for s, a in per.items()},
        "epochs_run": 3, "best_epoch": 2, "train_seconds": 5.0,
    }
    return SimpleNamespace(run_id=run_id, label=label, seed=seed, model=model, variant=variant,
                           metrics=metrics, history=history or [], error=error)


RUNS = [
    run("bst-s0", "BST", 0, 0.70, {"RU": 0.70, "BR": 0.72, "ES": 0.68}),
    run("saml-full-s0", "SAML", 0, 0.72, {"RU": 0.71, "BR": 0.74, "ES": 0.70}, "saml", "full"),
    run("saml-full-s1", "SAML", 1, 0.74, {"RU": 0.73, "BR": 0.76, "ES": 0.72}, "saml", "full"),
    run("bst_individual-s0", "BST-Individual", 0, 0.0, {}, error="metrics.json is missing"),
]


def test_relaimpr_matches_paper_formula():
    # SAML .7526 vs BST .7430 (paper, industrial): (.2526 / .2430 - 1) * 100 = +3.95 %.
    assert tables.relaimpr(0.7526, 0.7430) == pytest.approx(3.95, abs=0.01)
    assert np.isnan(tables.relaimpr(0.6, 0.5))


def test_overall_table_aggregates_seeds_and_skips_broken_runs():
    t = tables.overall_table(tables.runs_frame(RUNS)).set_index("Model")
    assert list(t.index) == ["BST", "SAML"]  # broken BST-Individual left out, paper order
    assert t.at["SAML", "AUC"] == pytest.approx(0.73)
    assert t.at["SAML", "Seeds"] == 2
    assert t.at["SAML", "AUC std"] == pytest.approx(np.std([0.72, 0.74], ddof=1))
    assert t.at["SAML", "RelaImpr vs BST (%)"] == pytest.approx((0.23 / 0.20 - 1) * 100)
    assert t.at["BST", "RelaImpr vs BST (%)"] == pytest.approx(0.0)


def test_per_scenario_summary_error_bars_significance_and_wide_table():
    long_df = tables.per_scenario_frame(RUNS, NAMES)
    s = tables.per_scenario_summary(long_df, NAMES, {"RU": 0.5, "BR": 0.3, "ES": 0.2},
                                    {"RU": 0.8, "BR": 0.8, "ES": 0.8}, {"RU": 0.01, "BR": 0.2})
    bst_ru = s[(s.label == "BST") & (s.scenario == "RU")].iloc[0]
    assert (bst_ru.err_low, bst_ru.err_high) == pytest.approx((0.02, 0.03))  # one seed: its CI
    saml_ru = s[(s.label == "SAML") & (s.scenario == "RU")].iloc[0]
    assert saml_ru.err_low == pytest.approx(np.std([0.71, 0.73], ddof=1))  # two seeds: std
    assert saml_ru.significant and not s[(s.label == "SAML") & (s.scenario == "BR")].iloc[0].significant
    assert list(s.scenario.unique()) == NAMES
    wide = tables.per_scenario_wide(s, NAMES)
    assert list(wide["Scenario"]) == NAMES
    assert list(wide["Significant (p<0.05)"]) == ["yes", "no", "no"]
    assert "Oracle AUC" in wide and "BST 95% CI" in wide and "SAML AUC std" in wide


def test_per_scenario_bars_figure_has_errors_oracle_and_stars():
    s = tables.per_scenario_summary(tables.per_scenario_frame(RUNS, NAMES), NAMES, {}, {"RU": 0.8, "BR": 0.8, "ES": 0.8},
                                    {"RU": 0.01})
    fig = charts.per_scenario_bars(s, NAMES, show_oracle=True)
    names = [t.name for t in fig.data]
    assert names[:2] == ["BST", "SAML"] and "Oracle (best possible)" in names
    star = next(t for t in fig.data if "significantly" in t.name)
    assert list(star.x) == ["RU"]
    assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    no_oracle = charts.per_scenario_bars(s, NAMES, show_oracle=False)
    assert "Oracle (best possible)" not in [t.name for t in no_oracle.data]


def test_alpha_matrix_cluster_order_and_recovery():
    # Two groups {0,1} and {2,3}: samples listen to their group mate.
    k = 4
    scen = np.repeat(np.arange(k), 5)
    alpha = np.full((1, len(scen), k), 0.05)
    mate = {0: 1, 1: 0, 2: 3, 3: 2}
    for n, s in enumerate(scen):
        alpha[0, n, s] = 0.0
        alpha[0, n, mate[s]] = 0.9
    mat, counts = tables.alpha_matrix(alpha, scen, 0, k)
    assert list(counts) == [5] * 4
    assert np.isnan(np.diag(mat)).all() and mat[0, 1] == pytest.approx(0.9)
    order = tables.cluster_order(mat)
    pos = {v: i for i, v in enumerate(order)}
    assert abs(pos[0] - pos[1]) == 1 and abs(pos[2] - pos[3]) == 1
    truth = np.array([[1, .9, .1, .2], [.9, 1, .15, .1], [.1, .15, 1, .8], [.2, .1, .8, 1]])
    assert tables.recovery_spearman(mat, truth) > 0.7
    assert tables.recovery_spearman(mat, -truth) < -0.7


def test_alpha_cdf_and_gate_tables():
    rng = np.random.default_rng(0)
    scen = np.array([0] * 50 + [1] * 30 + [2] * 20)
    alpha = rng.dirichlet(np.ones(3), size=(2, 100))
    cdf = tables.alpha_cdf_frame(alpha, scen, 1, 0, NAMES)
    assert set(cdf["against"]) == {"BR", "ES"}
    assert cdf.groupby("against")["alpha"].apply(lambda v: v.is_monotonic_increasing).all()
    assert cdf["cdf"].max() == 1.0 and (cdf["n"] == 50).all()
    gate = np.stack([np.zeros(100), np.where(scen == 0, 0.1, 0.6)])
    gdf = tables.gate_frame(gate, scen, 1, NAMES)
    gvt = tables.gate_vs_traffic(gdf, {"RU": 0.5, "BR": 0.3, "ES": 0.2}, NAMES).set_index("scenario")
    assert gvt.at["RU", "gate_mean"] == pytest.approx(0.1) and gvt.at["ES", "samples"] == 20
    fig = charts.gate_vs_traffic_scatter(gvt.reset_index(), scenario_colors(NAMES))
    assert [t.name for t in fig.data] == NAMES and fig.data[0].marker.color == scenario_colors(NAMES)["RU"]


def test_heatmap_hover_has_counts_and_colours_are_stable():
    fig = charts.heatmap(np.eye(3), NAMES, "t", "mean α", counts=np.array([5, 6, 7]))
    assert "samples in row" in fig.data[0].hovertemplate
    assert fig.data[0].customdata[2][0] == 7
    assert scenario_colors(NAMES)["BR"] == scenario_colors(NAMES + ["X"])["BR"]


def test_training_curves_one_line_per_run():
    hist = tables.history_frame([
        run("bst-s0", "BST", 0, 0.7, {}, history=[{"epoch": 1, "valid_auc": 0.6}, {"epoch": 2, "valid_auc": 0.65}]),
        run("saml-full-s0", "SAML", 0, 0.7, {}, history=[{"epoch": 1, "valid_auc": 0.62}]),
    ])
    fig = charts.training_curves(hist, "valid_auc")
    assert [t.name for t in fig.data] == ["BST (seed 0)", "SAML (seed 0)"]
    assert list(fig.data[0].y) == [0.6, 0.65]


def test_umap_points_own_and_all_views():
    rng = np.random.default_rng(0)
    n, m, k, h = 40, 6, 3, 5
    probes = {"scenario": np.arange(n) % k, "label": np.arange(n) % 2, "pred": rng.random(n),
              "hidden_own_0": rng.normal(size=(n, 7)).astype(np.float16),
              "hidden_own_1": rng.normal(size=(n, h)).astype(np.float16),
              "hidden_all_index": np.arange(0, 2 * m, 2), "hidden_all_0": rng.normal(size=(m, k, h)),
              "hidden_all_1": rng.normal(size=(m, k, 7))}
    assert embedding.hidden_layers(probes, "own") == [0, 1]
    x, facts = embedding.points(probes, "own", 1, 10, NAMES)
    assert x.shape == (10, h) and (facts["scenario"] == facts["branch"]).all()
    x, facts = embedding.points(probes, "all", 0, 12, NAMES)
    assert x.shape == (12, h) and list(facts["branch"][:3]) == NAMES
    # Sample 2 of the subsample is probe position 4 → scenario 1 (BR) for all its branches.
    assert list(facts["scenario"][3:6]) == ["BR"] * 3
    with pytest.raises(ValueError, match="unknown view"):
        embedding.points(probes, "bad", 0, 5, NAMES)
    np.testing.assert_array_equal(embedding.subsample(100, 10), embedding.subsample(100, 10))


def test_retrain_form_validation_and_command():
    ok = forms.RetrainRequest(name="exp1", runs=["bst", "saml:full", "saml:no_gate"], quick=True, epochs=2)
    assert forms.validate(ok, {"demo"}, cuda_available=False) == []
    argv = " ".join(ok.argv("ART"))
    assert "--runs bst,saml:full,saml:no_gate" in argv and "--quick" in argv and "--epochs 2" in argv
    assert "--lr" not in argv  # unchanged settings stay the engine's defaults
    bad = forms.RetrainRequest(name="demo", runs=[], device="cuda", mlp="64,x", dataset="csv")
    problems = " ".join(forms.validate(bad, {"demo"}, cuda_available=False))
    for word in ("already exists", "at least one model", "no CUDA", "MLP layers", "schema file"):
        assert word in problems


def test_demo_mode_setting(monkeypatch):
    monkeypatch.delenv("SAML_DEMO_MODE", raising=False)
    assert settings.demo_mode() is False
    assert settings.demo_mode({"demo_mode": True}) is True
    monkeypatch.setenv("SAML_DEMO_MODE", "1")
    assert settings.demo_mode() is True
    monkeypatch.setenv("SAML_ARTIFACTS", "/some/where")
    assert str(settings.artifacts_root()) == "/some/where"


def test_saml_p_values_from_report():
    rep = {"runs": [{"run_id": "saml-full-s0", "label": "SAML", "seed": 0,
                     "per_scenario": {"RU": {"auc": 0.7, "p_value": 0.01}, "BR": {"auc": 0.7}}}]}
    assert tables.saml_p_values(rep) == {"RU": 0.01}
    assert tables.saml_p_values(None) == {}
    assert isinstance(pd.DataFrame(), pd.DataFrame)


def test_relaimpr_axis_is_cut_when_bst_is_near_guessing():
    per = {"RU": 0.70, "BR": 0.72, "ES": 0.68}
    near = [run("bst-s0", "BST", 0, 0.5, {"RU": 0.501, "BR": 0.6, "ES": 0.6}),
            run("saml-full-s0", "SAML", 0, 0.7, per, "saml", "full")]
    s = tables.per_scenario_summary(tables.per_scenario_frame(near, NAMES), NAMES)
    fig = charts.relaimpr_bars(s, NAMES)
    assert tuple(fig.layout.yaxis.range) == (-charts.RELAIMPR_CAP, charts.RELAIMPR_CAP)
    assert "cut" in fig.layout.title.text
    normal = charts.relaimpr_bars(tables.per_scenario_summary(tables.per_scenario_frame(RUNS, NAMES), NAMES), NAMES)
    assert normal.layout.yaxis.range is None


def test_overall_table_without_bst_has_no_relaimpr_column():
    t = tables.overall_table(tables.runs_frame([RUNS[1]]))
    assert list(t["Model"]) == ["SAML"] and "RelaImpr vs BST (%)" not in t and "AUC std" not in t
