"""Unit tests of the dashboard's pure parts: tables and charts over the engine's report, the
retrain form, UMAP point sets, settings."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dashboard import charts, embedding, forms, settings, tables
from dashboard.colors import model_color, scenario_colors

NAMES = ["RU", "BR", "ES"]


def _cell(auc, runs=1):
    return {"auc": {"mean": auc, "std": 0.01 if runs > 1 else 0.0, "n": runs}, "ci_low": auc - 0.02,
            "ci_high": auc + 0.03, "n": 100, "positives": 10, "logloss": {"mean": 0.2, "std": 0.0, "n": runs}}


def _vs(verdicts: dict, relaimpr: dict):
    out = {}
    for key, v in verdicts.items():
        s = "within" if key == "overall" else key  # the verdict table reads the within-scenario test
        out[s] = {"auc_diff": 0.02 if v == "better" else -0.02 if v == "worse" else 0.001,
                  "p_value": 0.001 if v in ("better", "worse") else 0.4, "p_holm": 0.003 if v != "nd" else 0.8,
                  "verdict": "no detectable difference" if v == "nd" else v, "runs": 2, "ahead_in": 2,
                  "significantly_better_in": 2 if v == "better" else 0, "significantly_worse_in": 0,
                  "relaimpr": relaimpr.get(key), "relaimpr_note": None if relaimpr.get(key) is not None else
                  "n/a: the baseline's AUC (0.480) is not clearly above chance", "base_ci_low": 0.6}
    return out


def report(runs=2):
    """A report shaped like saml_core.registry.report's (BST reference, SAML, BST-Individual)."""
    def group(model, label, auc, per, vs=None):
        return {"group": model, "model": model, "label": label, "role": "baseline", "sweep": None, "n_runs": runs,
                "seeds": list(range(runs)), "data_seeds": [0], "auc": {"mean": auc + 0.03, "std": 0.004, "n": runs},
                "within_auc": {"mean": auc, "std": 0.005, "n": runs}, "within_ci_low": auc - 0.02,
                "within_ci_high": auc + 0.02,
                "logloss": {"mean": 0.2, "std": 0.0, "n": runs}, "epochs_run": {"mean": 3.0, "std": 0, "n": runs},
                "train_seconds": {"mean": 5.0, "std": 0, "n": runs}, "improving_at_cap": 0,
                "submodels_improving_at_cap": 0, "per_scenario": {s: _cell(a, runs) for s, a in per.items()},
                "vs_reference": vs}
    saml_vs = {"baseline_group": "bst", "pairs": runs,
               **_vs({"RU": "better", "BR": "nd", "ES": "worse", "overall": "better"},
                     {"RU": 5.0, "ES": -3.0, "overall": 4.0})}
    def ref(ref_id, label, auc, logloss):
        cell = {"mean": 0.5, "std": 0.0, "n": 1}
        return {"id": ref_id, "label": label, "auc": {"mean": auc, "std": 0.0, "n": 1}, "within_auc": cell,
                "logloss": {"mean": logloss, "std": 0.0, "n": 1}, "note": None,
                "per_scenario": {s: {"auc": cell, "logloss": {"mean": logloss + 0.01 * i, "std": 0.0, "n": 1}}
                                 for i, s in enumerate(NAMES)}}
    return {"scenario_names": NAMES, "reference": {"model": "bst", "label": "BST"},
            "headline": "By within-country AUC, SAML is best.",
            "references": [ref("scenario_ctr", "country click rate only", 0.6, 0.19),
                           ref("constant", "constant (train click rate)", 0.5, 0.2)],
            "flags": [{"model": "bst_individual", "scenario": "overall", "kind": "logloss_worse_than_constant",
                       "text": "BST-Individual: logloss 0.3 is worse than a constant prediction of the train click "
                               "rate (0.2)"},
                      {"model": "bst_individual", "scenario": "ES", "kind": "auc_below_chance",
                       "text": "BST-Individual in ES: AUC 0.4 is below chance (95 % CI 0.31–0.47 ...)"}],
            "traffic_share": {"RU": 0.5, "BR": 0.3, "ES": 0.2}, "oracle_auc": {"RU": 0.8, "BR": 0.8, "ES": 0.8},
            "train_settings": {"lr": 1e-3, "batch_size": 1024, "patience": 2, "min_epochs": 2, "epochs": 20,
                               "derived": ["batch_size", "patience"]},
            "runs": [], "summary": [
                group("bst", "BST", 0.70, {"RU": 0.70, "BR": 0.72, "ES": 0.68}),
                group("saml", "SAML", 0.72, {"RU": 0.73, "BR": 0.72, "ES": 0.66}, saml_vs),
                group("bst_individual", "BST-Individual", 0.69, {"RU": 0.69, "BR": 0.70, "ES": 0.67},
                      {"baseline_group": "bst", "pairs": runs,
                       **_vs({"RU": "nd", "BR": "nd", "ES": "nd", "overall": "nd"}, {})}),
            ]}


def test_overall_table_over_seeds_with_verdicts_in_registry_order():
    t = tables.overall_table(report(), "country").set_index("Model")
    # the registry's order, then the two references
    assert list(t.index) == ["SAML", "BST-Individual", "BST", "Country click rate only (reference)",
                             "Constant (train click rate) (reference)"]
    assert t.at["SAML", "Within-country AUC"] == pytest.approx(0.72) and t.at["SAML", "Runs"] == 2
    assert t.at["SAML", "Pooled AUC"] == pytest.approx(0.75)  # secondary
    assert t.at["SAML", "Verdict vs BST"] == "better ★" and t.at["BST", "Verdict vs BST"] == "reference"
    assert t.at["SAML", "RelaImpr vs BST (%)"] == pytest.approx(4.0)
    ref = t.loc["Country click rate only (reference)"]
    assert ref["Within-country AUC"] == 0.5 and ref["Pooled AUC"] == 0.6 and ref["Logloss"] == 0.19
    assert ref["Verdict vs BST"] == "no training" and np.isnan(ref["Runs"])
    assert "logloss 0.3 is worse than a constant" in t.at["BST-Individual", "Flags"] and t.at["SAML", "Flags"] == ""
    one = tables.overall_table(report(runs=1), "country")
    assert "Within-country AUC std" not in one  # one run each: no spread to show
    # the CSV download: every column, within-scenario AUC first, the references as rows
    header, *rows = tables.overall_table(report(), "city level").drop(columns="model").to_csv(index=False).splitlines()
    assert header.startswith("Model,Runs,Within-city level AUC,Within-city level AUC std,Verdict vs BST,")
    assert "Pooled AUC" in header and "Flags" in header and "country" not in header.lower()
    assert rows[-1].startswith("Constant (train click rate) (reference),,0.5,")
    assert tables.flag_lines(report()) == [
        "BST-Individual: logloss 0.3 is worse than a constant prediction of the train click rate (0.2); "
        "AUC below chance (95 % CI entirely under 0.5) in ES"]
    lines = tables.settings_lines(report(), "country")
    assert "learning rate 0.001" in lines[0] and "country" in lines[1]


def test_per_scenario_long_and_wide_tables_follow_the_report():
    long_df = tables.per_scenario_long(report())
    assert list(long_df["scenario"].unique()) == NAMES
    ru = long_df[(long_df.model == "saml") & (long_df.scenario == "RU")].iloc[0]
    assert ru.verdict == "better" and ru.err_low == pytest.approx(0.01)  # several runs: std
    one = tables.per_scenario_long(report(runs=1))
    ru1 = one[(one.model == "saml") & (one.scenario == "RU")].iloc[0]
    assert (ru1.err_low, ru1.err_high) == pytest.approx((0.02, 0.03))  # one run: its CI
    wide = tables.per_scenario_wide(long_df, NAMES, "country").set_index("Country")
    assert list(wide.index) == NAMES
    assert wide.at["RU", "SAML vs BST"] == "better ★" and wide.at["ES", "SAML vs BST"] == "worse ▼"
    assert np.isnan(wide.at["BR", "RelaImpr (%)"]) and "not clearly above chance" in wide.at["BR", "Why no RelaImpr"]
    assert "Oracle AUC" in wide and "p (Holm)" in wide
    assert wide.at["ES", "Test non-clicks"] == 90 and wide.at["BR", "SAML logloss"] == 0.2
    refs = tables.per_scenario_wide(long_df, NAMES, "country", references=report()["references"]).set_index("Country")
    assert refs.at["BR", "Country click rate only: logloss"] == pytest.approx(0.2)
    assert refs.at["ES", "Constant (train click rate): logloss"] == pytest.approx(0.22)
    city = tables.per_scenario_wide(long_df, NAMES, "city level")
    assert "City level" in city.columns and "Country" not in city.columns


def test_auc_chart_points_oracle_and_verdict_marks():
    long_df = tables.per_scenario_long(report())
    fig = charts.per_scenario_auc(long_df, NAMES, "country", show_oracle=True)
    metas = [t.meta for t in fig.data]
    assert metas[:3] == ["saml", "bst_individual", "bst"] and "oracle" in metas
    better = next(t for t in fig.data if t.meta == "verdict-better")
    worse = next(t for t in fig.data if t.meta == "verdict-worse")
    assert list(better.x) == ["RU"] and list(worse.x) == ["ES"]
    assert fig.data[0].marker.color == model_color("saml")
    assert fig.layout.xaxis.title.text == "Country" and "country" in fig.layout.title.text
    lo, hi = fig.layout.yaxis.range
    assert 0.5 < lo < 0.66 and 0.8 < hi <= 1.0  # the axis frames the points, no bar from zero
    assert "oracle" not in [t.meta for t in charts.per_scenario_auc(long_df, NAMES, "x", show_oracle=False).data]


def test_relaimpr_chart_leaves_out_what_is_not_meaningful():
    long_df = tables.per_scenario_long(report())
    fig = charts.relaimpr_bars(long_df, NAMES, "city level")
    saml = next(t for t in fig.data if t.meta == "saml")
    assert list(saml.y)[0] == 5.0 and np.isnan(list(saml.y)[1])  # BR: n/a
    assert any(a.text == "n/a" and a.x == "BR" for a in fig.layout.annotations)
    assert fig.layout.yaxis.range[1] < 10  # scaled to the values, not a fixed ±100
    assert "city level" in fig.layout.title.text


def test_decimals_show_small_differences_and_centred_scale():
    m = np.array([[np.nan, 0.2496, 0.2504], [0.2501, np.nan, 0.2499], [0.25, 0.2502, np.nan]])
    fig = charts.heatmap(m, NAMES, "t", "α", center=0.25)
    texts = {t for row in fig.data[0].text for t in row}
    assert "0.2496" in texts and "0.2504" in texts  # not every cell "0.250"
    assert fig.data[0].zmid == 0.25 and fig.data[0].zmin == pytest.approx(0.25 - 0.0004)
    assert fig.data[0].colorscale[0][1] != fig.data[0].colorscale[-1][1]


def test_cluster_order_keeps_groups_together():
    m = np.array([[np.nan, .9, .1, .2], [.9, np.nan, .15, .1], [.1, .15, np.nan, .8], [.2, .1, .8, np.nan]])
    pos = {v: i for i, v in enumerate(tables.cluster_order(m))}
    assert abs(pos[0] - pos[1]) == 1 and abs(pos[2] - pos[3]) == 1


def test_alpha_cdf_gate_tables_and_gate_change():
    rng = np.random.default_rng(0)
    scen = np.array([0] * 50 + [1] * 30 + [2] * 20)
    alpha = rng.dirichlet(np.ones(3), size=(2, 100))
    cdf = tables.alpha_cdf_frame(alpha, scen, 1, 0, NAMES)
    assert set(cdf["against"]) == {"BR", "ES"}
    assert cdf.groupby("against")["alpha"].apply(lambda v: v.is_monotonic_increasing).all()
    gate = np.stack([np.zeros(100), np.where(scen == 0, 0.1, 0.6)])
    gdf = tables.gate_frame(gate, scen, 1, NAMES)
    init = {"RU": [0.5, 0.5], "BR": [0.5, 0.4], "ES": [0.5, 0.7]}
    gvt = tables.gate_vs_traffic(gdf, {"RU": 0.5, "BR": 0.3, "ES": 0.2}, NAMES, init, layer=1).set_index("scenario")
    assert gvt.at["RU", "gate_mean"] == pytest.approx(0.1) and gvt.at["ES", "samples"] == 20
    assert gvt.at["BR", "gate_change"] == pytest.approx(0.2) and gvt.at["ES", "gate_change"] == pytest.approx(-0.1)
    fig = charts.gate_vs_traffic_scatter(gvt.reset_index(), scenario_colors(NAMES), "country", y="gate_change",
                                         y_title="Change of g")
    assert not fig.layout.showlegend  # the axis says it; no legend repeating it
    assert list(fig.data[0].text) == ["ES", "BR", "RU"]  # sorted by traffic
    assert fig.layout.xaxis.type == "log" and "log scale" in fig.layout.xaxis.title.text


def test_gate_vs_traffic_labels_do_not_overlap_in_a_crowd():
    """Ten dots as crowded as a real run's (shares 2.8-41 %, nine gates within 0.01 and one far off):
    with every label above its dot they collide; the placement keeps labels off labels and dots."""
    share = [0.134, 0.116, 0.082, 0.069, 0.041, 0.061, 0.028, 0.032, 0.028, 0.408]
    gate = [0.236, 0.240, 0.238, 0.241, 0.232, 0.237, 0.239, 0.243, 0.235, 0.331]
    names = ["RU", "BR", "ES", "US", "FR", "PL", "NL", "CL", "UA", "Others"]
    x = np.log10(np.array(share))
    x, y = (x - x.min()) / np.ptp(x) * 0.8 + 0.1, (np.array(gate) - min(gate)) / np.ptp(gate) * 0.7 + 0.15
    positions, boxes = charts.label_positions(x, y, names)
    naive = [charts._label_box(a * 560, b * 280, charts._LABEL_SPOTS[0], 7.5 * len(t) + 4, 16, 7)
             for a, b, t in zip(x, y, names)]

    def clashes(bxs):
        dots = [(a * 560 - 7, b * 280 - 7, a * 560 + 7, b * 280 + 7) for a, b in zip(x, y)]
        return sum(charts._overlap(bxs[i], bxs[j]) > 0 for i in range(len(bxs)) for j in range(i + 1, len(bxs))) + \
            sum(charts._overlap(bxs[i], dots[j]) > 0 for i in range(len(bxs)) for j in range(len(dots)) if i != j)

    assert clashes(naive) > 0  # the fixture is crowded enough to need placing
    assert clashes(boxes) == 0 and len(set(positions)) > 1
    fig = charts.gate_vs_traffic_scatter(
        __import__("pandas").DataFrame({"scenario": names, "traffic_share": share, "gate_mean": gate,
                                        "samples": [100] * 10}), scenario_colors(names), "country")
    assert len(set(fig.data[0].textposition)) > 1


def _run(run_id, model, label, seed, history):
    return SimpleNamespace(run_id=run_id, model=model, label=label, seed=seed, data_seed=0, error=None,
                           metrics={"overall": {}}, history=history)


def test_training_curves_one_line_per_run_in_model_colour():
    hist = tables.history_frame([
        _run("bst-d0-s0", "bst", "BST", 0, [{"epoch": 1, "valid_auc": 0.6}, {"epoch": 2, "valid_auc": 0.65}]),
        _run("saml-d0-s0", "saml", "SAML", 0, [{"epoch": 1, "valid_auc": 0.62}]),
    ])
    fig = charts.training_curves(hist, "valid_auc")
    assert [t.name for t in fig.data] == ["SAML", "BST"]  # the legend names models; the hover names runs
    assert "BST (seed 0)" in fig.data[1].hovertemplate and fig.layout.legend.title.text == "Model"
    assert list(fig.data[1].y) == [0.6, 0.65] and fig.data[0].line.color == model_color("saml")
    seeds = tables.history_frame([_run(f"{m}-d0-s{k}", m, m.upper(), k, [{"epoch": 1, "valid_auc": 0.6}])
                                  for m in ("bst", "saml") for k in range(5)])
    fig = charts.training_curves(seeds, "valid_auc")
    assert len(fig.data) == 10  # one line per run ...
    assert [t.name for t in fig.data if t.showlegend is not False] == ["SAML", "BST"]  # ... one legend entry per model
    assert charts.legend_rows(["SAML", "BST"]) == 1 and "per run" in fig.layout.legend.title.text


def test_sweep_frame_and_sentence():
    rep = report(runs=1)
    for v, auc in ((8, 0.70), (16, 0.73)):
        g = dict(rep["summary"][1], group=f"saml-emb{v}", sweep={"name": "emb", "value": v},
                 auc={"mean": auc, "std": 0, "n": 1})
        rep["summary"].append(g)
        rep["runs"].append({"group": g["group"], "overall": {"ci_low": auc - 0.01, "ci_high": auc + 0.01}})
    df = tables.sweep_frame(rep)
    assert list(df["value"]) == [8, 16] and list(df["low"]) == pytest.approx([0.69, 0.72])
    text = tables.sweep_sentence(df)
    assert "best at 16" in text and "intervals do not overlap" in text
    fig = charts.sweep_lines(df, "emb")
    assert list(fig.data[0].x) == [8, 16] and "embedding" in fig.layout.title.text.lower()


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
    assert list(facts["scenario"][3:6]) == ["BR"] * 3  # sample 2 of the subsample is probe 4 -> BR
    with pytest.raises(ValueError, match="unknown view"):
        embedding.points(probes, "bad", 0, 5, NAMES)


def _probes_with_fields(n=30, k=3, h=6, seed=0):
    rng = np.random.default_rng(seed)
    return {"scenario": np.arange(n) % k, "label": (np.arange(n) % 4 == 0).astype(np.int8),
            "pred": rng.random(n).astype(np.float32), "hidden_own_0": rng.normal(size=(n, h)).astype(np.float16),
            "field_names": np.array(["colour", "shop"]),
            "field_codes_0": (np.arange(n) % 2).astype(np.int32), "field_values_0": np.array(["red", "blue<b>"]),
            "field_codes_1": np.arange(n).astype(np.int32) % 5, "field_values_1": np.array(list("abcde"))}


def test_explorer_points_carry_the_decoded_fields_and_hover_them_as_text():
    probes = _probes_with_fields()
    x, facts = embedding.points(probes, "own", 0, 30, NAMES)
    assert list(facts["field: colour"][:2]) == ["red", "blue<b>"] and list(facts["field: shop"][:6]) == list("abcdea")
    assert np.allclose(facts["error"], np.abs(probes["label"] - probes["pred"].astype(float)))
    assert "colour: blue&lt;b&gt;" in facts["hover"][1] and "<b>point 1</b>" in facts["hover"][1]
    old = {k: v for k, v in probes.items() if not k.startswith("field")}  # a run from before the fields
    _, facts = embedding.points(old, "own", 0, 30, NAMES)
    assert not embedding.field_columns(facts) and "retrain" in embedding.fields(old)[1]
    broken = dict(probes, field_codes_1=np.full(30, 7, dtype=np.int32))  # codes beyond the values table
    got, why = embedding.fields(broken)
    assert list(got) == ["colour"] and "shop" in why


def test_explorer_neighbours_are_the_nearest_hidden_states_not_map_positions():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 16))
    for i in (0, 57, 199):
        idx, dist = embedding.neighbours(x, i, k=7)
        brute = np.linalg.norm(x - x[i], axis=1)
        brute[i] = np.inf
        assert list(idx) == list(np.argsort(brute)[:7]) and np.allclose(dist, np.sort(brute)[:7])
    assert embedding.typical_distance(x) == pytest.approx(
        np.median([np.linalg.norm(x[a] - x[b]) for a in range(200) for b in range(a + 1, 200)]))


def test_explorer_selection_summary_against_all_points():
    _, facts = embedding.points(_probes_with_fields(), "own", 0, 30, NAMES)
    chosen = np.array([0, 4, 8, 12, 16, 20])  # every 4th: all clicked; scenarios 0,1,2 in turn
    s = embedding.selection_summary(facts, chosen)
    assert (s["n"], s["of"], s["click_rate"]) == (6, 30, 1.0) and s["click_rate_all"] == pytest.approx(8 / 30)
    scen = s["scenario"].set_index("value")
    assert scen["selected"].sum() == 6 and scen.loc[NAMES[0], "selected"] == 2
    assert scen.loc[NAMES[0], "% of all shown"] == pytest.approx(100 * 10 / 30)
    colour = s["fields"][s["fields"]["field"] == "colour"].set_index("value")
    assert colour.loc["red", "% of selection"] == 100 and colour.loc["red", "lift"] == pytest.approx(2.0)


def test_explorer_exports_load_as_tensorboard_projector_and_csv():
    import csv
    import io

    probes = _probes_with_fields()
    probes["field_values_1"] = np.array(["a\tb", "c\nd", "e", "f", ""])  # tabs and newlines must not shift columns
    x, facts = embedding.points(probes, "own", 0, 30, NAMES)
    vectors, metadata = embedding.projector_files(x, facts)
    rows = [line.split("\t") for line in vectors.splitlines()]
    assert len(rows) == 30 and {len(r) for r in rows} == {6}  # no header, H values per line
    assert np.allclose(np.array(rows, dtype=float), x.astype(float), atol=1e-3)
    meta = [line.split("\t") for line in metadata.splitlines()]
    assert len(meta) == 31 and meta[0][:3] == ["point", "scenario", "branch"]  # a header, then one line per point
    assert {len(r) for r in meta} == {len(meta[0])} and meta[2][meta[0].index("field: shop")] == "c d"
    table = list(csv.DictReader(io.StringIO(embedding.csv_file(x, facts))))
    assert len(table) == 30 and float(table[3]["h2"]) == pytest.approx(float(x[3, 1]), abs=1e-3)


def test_map_colours_keep_the_most_common_values_and_group_the_rest():
    import pandas as pd

    values = pd.Series([f"u{i % 40}" for i in range(400)] + ["top"] * 100)
    groups = charts.map_categories(values, limit=5)
    assert groups.nunique() == 6 and (groups == "top").sum() == 100 and "other (36 values)" in set(groups)
    df = pd.DataFrame({"x": range(500), "y": range(500), "point": range(500), "hover": "h", "f": values})
    fig = charts.umap_scatter(df, "f", "map", chosen=3, neighbours=[4, 5])
    assert [t.name for t in fig.data][-3].startswith("other (") and [t.meta for t in fig.data][-2:] == ["neighbours",
                                                                                                       "chosen"]
    assert sum(len(t.x) for t in fig.data[:-2]) == 500 and list(fig.data[-2].customdata[:, 0]) == [4, 5]


def test_umap_scatter_numeric_colour_has_one_title():
    import pandas as pd

    df = pd.DataFrame({"x": [0, 1], "y": [1, 0], "pred": [0.1, 0.9], "hover": ["a", "b"], "label": ["clicked"] * 2,
                       "point": [0, 1]})
    fig = charts.umap_scatter(df, "pred", "map", color_title="Predicted click probability")
    assert not fig.layout.showlegend and fig.data[0].marker.colorbar.title.text == "Predicted click probability"


def test_retrain_form_shows_the_engine_settings_and_builds_the_same_config():
    from saml_core.presets import settings_for

    for dataset in forms.dataset_choices():
        if forms.needs_path(dataset):
            continue
        req = forms.RetrainRequest.defaults(dataset, name="exp1")
        engine = settings_for(dataset)
        cfg = req.to_config()
        assert cfg.model_config == engine["model_config"], dataset
        assert cfg.train_config.lr == engine["train_config"].lr and cfg.train_config.epochs == engine["train_config"].epochs
        assert forms.validate(req, {"demo"}, cuda_available=False) == []
    tb = forms.RetrainRequest.defaults("taobao-sample", name="t")
    assert (tb.d_s, tb.mlp, tb.lr) == (4, "128,64", 5e-4)  # the paper's public settings, not industrial
    tb.d_s = 2  # an explicit choice is kept, not replaced by the preset
    cfg = tb.to_config()
    assert cfg.model_config.d_s == 2 and cfg.preset == "public" and cfg.train_config.lr == 5e-4


def test_retrain_form_validation_messages():
    bad = forms.RetrainRequest(name="demo", runs=[], device="cuda", mlp="64,x", dataset="csv")
    problems = " ".join(forms.validate(bad, {"demo"}, cuda_available=False))
    for word in ("already exists", "at least one model", "no CUDA", "schema file"):
        assert word in problems
    worse = forms.RetrainRequest.defaults("synthetic-countries", name="ok", mlp="64,x")
    assert "MLP layers" in " ".join(forms.validate(worse, set(), False))
    huge = forms.RetrainRequest.defaults("synthetic-countries", name="ok", mlp="100000000")
    assert "mlp layer 1 size" in " ".join(forms.validate(huge, set(), False))


def test_demo_mode_setting(monkeypatch):
    monkeypatch.delenv("SAML_DEMO_MODE", raising=False)
    assert settings.demo_mode() is False
    assert settings.demo_mode({"demo_mode": True}) is True
    monkeypatch.setenv("SAML_DEMO_MODE", "1")
    assert settings.demo_mode() is True
    monkeypatch.setenv("SAML_ARTIFACTS", "/some/where")
    assert str(settings.artifacts_root()) == "/some/where"


def test_artifacts_root_defaults_to_the_folder_next_to_app_py(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.delenv("SAML_ARTIFACTS", raising=False)
    monkeypatch.chdir(tmp_path)  # `streamlit run /path/to/app.py` from another folder
    assert settings.artifacts_root() == Path(__file__).resolve().parents[1] / "artifacts"
    monkeypatch.setenv("SAML_ARTIFACTS", "  ")
    assert settings.artifacts_root() == Path(__file__).resolve().parents[1] / "artifacts"
    monkeypatch.setenv("SAML_ARTIFACTS", "rel")
    assert settings.artifacts_root() == Path("rel")  # an explicit relative path counts from the working directory


def test_relaimpr_axis_scaled_to_the_values_and_cut_on_one_side_only():
    rng, cut = charts.relaimpr_axis([5.0, -3.0, None])
    assert -6 < rng[0] < -3 and 5 < rng[1] < 8 and cut == []
    rng, cut = charts.relaimpr_axis([-72.9, -74.1])  # only losses: 0 at the top, no +100
    assert rng[0] < -74.1 and 0 <= rng[1] < 15 and cut == []
    rng, cut = charts.relaimpr_axis([4.0, 2.0, -350.0])  # one extreme value is cut at -100 on its side only
    assert rng[0] == -charts.RELAIMPR_CAP and rng[1] < 10 and cut == [-350.0]
    rng, cut = charts.relaimpr_axis([250.0])  # nothing else to keep readable: show it whole
    assert rng[1] > 250 and cut == []
    long_df = tables.per_scenario_long(report())
    long_df.loc[(long_df.model == "saml") & (long_df.scenario == "ES"), "relaimpr"] = -350.0
    fig = charts.relaimpr_bars(long_df, NAMES, "country")
    assert "axis cut at −100\u00a0%" in fig.layout.title.text.replace("<br>", " ") and fig.layout.yaxis.range[1] < 10
    assert any("-350 %" in a.text for a in fig.layout.annotations)  # the cut bar says its value


def test_chart_titles_wrap_and_legends_sit_above_the_plot():
    fig = charts.heatmap(np.eye(3), NAMES, "Linear CKA between branches' hidden states (layer 1, 60 samples through "
                         "every branch)", "CKA")
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) == 2 and all(len(x) <= charts.TITLE_CHARS for x in lines)
    assert fig.layout.margin.t >= 14 + 2 * 20  # room for both lines
    long_df = tables.per_scenario_long(report())
    fig = charts.per_scenario_auc(long_df, NAMES, "country")
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yanchor == "top"  # not at the side
    assert fig.layout.height > 470  # grown by the legend's rows instead of squeezing the plot
    bars = charts.bar_effects({"RU": 0.1, "BR": -0.1}, scenario_colors(["RU", "BR"]), "t", "Country", "α effect",
                              compare={"RU": 60, "BR": 40}, compare_name="traffic share (%)")
    assert not bars.layout.showlegend  # each axis names its series; no legend repeating the axes
    assert bars.layout.yaxis.title.text == "α effect (bars)" and "◆" in bars.layout.yaxis2.title.text


def test_umap_maps_use_exact_neighbours_and_separate_clusters():
    """The neighbours handed to UMAP are the exact euclidean ones (itself first, also beside a
    duplicate), and the map keeps well-separated groups apart."""
    from saml_core import maps

    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 16)).astype(np.float32)
    x[7] = x[3]  # an exact duplicate
    idx, dist = maps.exact_neighbours(x, 10)
    brute = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    assert (idx[:, 0] == np.arange(len(x))).all() and np.allclose(dist[:, 0], 0.0, atol=1e-3)
    assert idx[3, 1] == 7 and idx[7, 1] == 3
    want = np.sort(brute, axis=1)[:, :10]
    np.testing.assert_allclose(dist, want, atol=1e-4)
    np.testing.assert_allclose(np.take_along_axis(brute, idx.astype(int), axis=1), want, atol=1e-4)

    groups = np.repeat([0, 1], 60)
    y = maps.fit_umap(x + groups[:, None] * 20.0)
    assert y.shape == (120, 2) and np.isfinite(y).all()
    centre = [y[groups == g].mean(0) for g in (0, 1)]
    spread = max(np.linalg.norm(y[groups == g] - centre[g], axis=1).max() for g in (0, 1))
    assert np.linalg.norm(centre[0] - centre[1]) > spread


def test_a_new_process_loads_umaps_compiled_code_from_disk(tmp_path):
    """After one map, a new process (a training job, a restarted dashboard) reads umap's compiled
    functions from numba's cache instead of compiling them again."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = """
import json, numpy as np, numba
from saml_core import maps
from umap import layouts, umap_, utils
maps.fit_umap(np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32))
funcs = {k: v for m in (umap_, layouts, utils) for k, v in vars(m).items()
         if isinstance(v, numba.core.registry.CPUDispatcher) and v.signatures}
print(json.dumps({k: [sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values())]
                  for k, f in funcs.items()}))
"""
    repo = Path(__file__).resolve().parents[1]
    env = {**{k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}, "PYTHONPATH": str(repo)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    second = json.loads(runs[1].stdout.strip().splitlines()[-1])
    # the compile-heavy ones (tiny random-number helpers are compiled inside their callers)
    for name in ("smooth_knn_dist", "compute_membership_strengths", "_nb_optimize_layout_euclidean_single_epoch"):
        assert second[name] == [1, 0], (name, second)


def test_report_cache_is_used_only_while_nothing_it_depends_on_changed(tmp_path, monkeypatch):
    import json

    from dashboard import report_cache

    monkeypatch.setenv("SAML_DASHBOARD_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "art"
    (root / "e" / "run-1").mkdir(parents=True)
    (root / "e" / "experiment.json").write_text("{}")
    metrics = root / "e" / "run-1" / "metrics.json"
    metrics.write_text('{"auc": 0.6}')
    doc = {"experiment": "e", "headline": "h", "x": [0.5, None]}
    assert report_cache.load(root, "e") is None
    report_cache.save(root, "e", doc)
    assert report_cache.load(root, "e") == doc and not list(root.rglob("*.json.tmp"))
    assert not (root / ".cache").exists()  # never under the artifacts root
    metrics.write_text('{"auc": 0.61}')  # a run changed: the old entry is not used
    assert report_cache.load(root, "e") is None
    report_cache.save(root, "e", dict(doc, headline="h2"))
    assert report_cache.load(root, "e")["headline"] == "h2"
    assert len(list((tmp_path / "cache" / "reports").glob("*.json"))) == 1  # the stale entry is gone
    (entry,) = (tmp_path / "cache" / "reports").glob("*.json")
    entry.write_text("{ broken")
    assert report_cache.load(root, "e") is None
    entry.write_text(json.dumps({"experiment": "another"}))
    assert report_cache.load(root, "e") is None
    monkeypatch.setenv("SAML_DASHBOARD_CACHE", "/proc/no-such-folder")  # cannot be written: no error
    report_cache.save(root, "e", doc)
    assert report_cache.load(root, "e") is None


def test_charts_keep_plotly_whites_look_for_every_trace_type_they_draw():
    import plotly.io as pio

    white = pio.templates["plotly_white"]
    fig = charts._layout(charts.go.Figure(charts.go.Bar(x=["a"], y=[1])), "t", "x", "y")
    used = fig.layout.template
    assert used.layout == white.layout
    drawn = {t for t in charts.TRACE_TYPES if white.data[t]}
    assert drawn == {"bar", "heatmap", "scatter", "scattergl"}
    for t in drawn:
        assert used.data[t] == white.data[t], t
    # the cut: none of the ~25 other trace types' defaults is copied into every figure
    assert not used.data["scatter3d"] and not used.data["choropleth"]


def test_browser_bench_report_takes_the_floor_from_the_same_round():
    from dashboard import bench_browser as bb

    def rnd(variant, chart, warmup=True):
        return {"variant": variant, "warmup": warmup, "load_avg_1min": 1.0, "cold_title_s": chart / 2,
                "cold_first_chart_s": chart, "cold_run_finished_s": chart, "switches": []}

    rounds = [rnd(bb.FLOOR, 2.5), rnd(bb.FIRST, 4.0), rnd(bb.RESTART, 3.0),
              rnd(bb.FLOOR, 3.5), rnd(bb.FIRST, 6.0), rnd(bb.RESTART, 4.5)]
    rounds[0]["switches"] = [{"page": "Other", "seconds": 0.5}, {"page": "Floor", "seconds": 0.4}]
    rounds[3]["switches"] = [{"page": "Other", "seconds": 0.9}, {"page": "Floor", "seconds": 0.6}]
    result = {"machine": {"cpu": "cpu", "cores": 2, "python": "3", "streamlit": "1", "chromium": "1"},
              "artifacts": "artifacts/", "rounds": rounds}
    text = bb.report(result)
    assert "first start: cold start to the first chart minus the floor's in the same round (the app's own part): " \
           "1.50, 2.50 s (median 2.00 s)" in text
    assert "restart: cold start to the first chart minus the floor's in the same round (the app's own part): " \
           "0.50, 1.00 s (median 0.75 s)" in text
    assert "the floor alone takes 3.00 s (median)" in text
    assert "the floor's page switches (to its other page and back): median 0.55 s (min 0.40, max 0.90)" in text
