"""Statistics: DeLong AUC/CI/paired test, RelaImpr, similarity recovery, data similarity."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from saml_core import evaluate as ev


def _scores(n=2000, shift=0.8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.2
    s = rng.normal(size=n) + shift * y
    return y.astype(int), s


def test_delong_auc_matches_sklearn_with_ties():
    y, s = _scores()
    s_t = np.round(s, 1)  # many ties
    for x in (s, s_t):
        assert ev.auc(y, x) == pytest.approx(roc_auc_score(y, x), abs=1e-12)


def test_delong_ci_covers_and_shrinks_with_n():
    y, s = _scores(n=500)
    a, lo, hi = ev.auc_ci(y, s)
    assert lo < a < hi
    y2, s2 = _scores(n=20000)
    a2, lo2, hi2 = ev.auc_ci(y2, s2)
    assert (hi2 - lo2) < (hi - lo) / 4
    # the CI of many small samples covers the large-sample AUC about 95% of the time
    cover = 0
    for seed in range(200):
        yy, ss = _scores(n=400, seed=seed + 1)
        _, l, h = ev.auc_ci(yy, ss)
        cover += l <= a2 <= h
    assert 0.88 <= cover / 200 <= 0.995


def test_delong_variance_matches_bootstrap():
    y, s = _scores(n=1500, seed=3)
    _, cov = ev.delong(y, s)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(400):
        i = rng.integers(0, len(y), len(y))
        boots.append(roc_auc_score(y[i], s[i]))
    assert np.sqrt(cov[0, 0]) == pytest.approx(np.std(boots), rel=0.2)


def test_paired_delong():
    y, s = _scores(n=3000, seed=4)
    same = ev.paired_delong(y, s, s)
    assert same["auc_diff"] == 0 and same["p_value"] == 1.0
    noisy = s + np.random.default_rng(1).normal(scale=2.0, size=len(s))
    t = ev.paired_delong(y, s, noisy)
    assert t["auc_diff"] > 0 and t["p_value"] < 1e-3
    assert ev.paired_delong(np.zeros(10), s[:10], s[:10])["p_value"] is None


def test_relaimpr_and_metrics_per_scenario():
    assert ev.relaimpr(0.7526, 0.7430) == pytest.approx(3.95, abs=0.01)  # paper Table II
    assert ev.relaimpr(0.7, None) is None
    y, s = _scores(n=1000)
    p = 1 / (1 + np.exp(-s))
    scen = np.arange(1000) % 3
    m = ev.scenario_metrics(y, p, scen, ["a", "b", "c", "empty"])
    assert m["per_scenario"]["a"]["n"] == 334 and m["per_scenario"]["empty"]["auc"] is None
    assert m["per_scenario"]["b"]["auc"] == pytest.approx(roc_auc_score(y[scen == 1], p[scen == 1]))
    assert m["overall"]["positives"] == y.sum()


def test_similarity_recovery_and_alpha_matrix():
    truth = np.array([[1, .9, .1, .2], [.9, 1, .2, .1], [.1, .2, 1, .8], [.2, .1, .8, 1]])
    rec = ev.similarity_recovery(truth[None] * 0.5, truth, n_perm=200)
    assert rec["spearman"][0] == pytest.approx(1.0)
    rec = ev.similarity_recovery(-truth[None], truth, n_perm=200)
    assert rec["spearman"][0] == pytest.approx(-1.0) and rec["p_value"][0] > 0.9  # one-sided: no agreement
    alpha = np.zeros((1, 4, 3))
    alpha[0, :, 1] = 1
    am = ev.alpha_matrix(alpha, np.array([0, 0, 1, 1]), 3)
    assert am[0, 0, 1] == 1 and np.isnan(am[0, 2]).all()


def test_data_similarity_overlap():
    cat = np.array([1, 1, 2, 2, 1, 3])
    label = np.array([1, 1, 1, 1, 1, 1])
    scen = np.array([0, 0, 1, 1, 2, 2])
    sim = ev.data_similarity(cat, label, scen, 3)
    assert sim[0, 0] == 1 and sim[0, 1] == 0 and sim[0, 2] == pytest.approx(0.5)
    np.testing.assert_allclose(sim, sim.T)


def test_relaimpr_is_withheld_where_the_baseline_is_not_above_chance():
    # taobao-demo city level 0: SAML 0.384 below BST 0.451 would read +135 % ("better")
    assert ev.relaimpr(0.384, 0.451) == pytest.approx(136.7, abs=0.1)
    value, why = ev.relaimpr_guarded(0.384, 0.451, base_ci_low=0.30, base_ci_high=0.61,
                                     counts=ev.counts_text([(12, 300)]))
    assert value is None
    assert why == "n/a: RelaImpr needs the baseline's AUC CI above 0.5 (here 0.30–0.61, 12 clicks / 300 non-clicks)"
    value, why = ev.relaimpr_guarded(0.7, 0.6, base_ci_low=None, counts=ev.counts_text([(4, 120), (1, 90)], [0, 3]))
    assert value is None and why.endswith("at least 10 clicks and 10 non-clicks in the test split (here 4 clicks / "
                                          "120 non-clicks (data seed 0), 1 / 90 (data seed 3))")
    value, why = ev.relaimpr_guarded(0.7526, 0.7430, base_ci_low=0.73)
    assert value == pytest.approx(3.95, abs=0.01) and why is None


def test_holm_and_verdicts_follow_the_test_not_relaimpr():
    adj = ev.holm([0.01, 0.04, 0.03, None])
    assert adj == pytest.approx([0.03, 0.06, 0.06, None], abs=1e-12)
    assert ev.verdict(+0.02, 0.001) == "better" and ev.verdict(-0.02, 0.001) == "worse"
    assert ev.verdict(+0.02, 0.2) == "no detectable difference" and ev.verdict(None, None) == "n/a"
    # a significant win below chance is still a win: the direction is the AUC difference, not RelaImpr
    assert ev.verdict(0.384 - 0.30, 5e-5) == "better"


def test_combining_independent_tests_by_inverse_variance():
    c = ev.combine([{"auc_diff": 0.02, "var": 1e-4}, {"auc_diff": 0.02, "var": 1e-4}])
    single = ev.combine([{"auc_diff": 0.02, "var": 1e-4}])
    assert c["auc_diff"] == pytest.approx(0.02) and c["z"] == pytest.approx(single["z"] * np.sqrt(2))
    w = ev.combine([{"auc_diff": 0.0, "var": 1e-4}, {"auc_diff": 0.04, "var": 1e-2}])
    assert 0 < w["auc_diff"] < 0.001  # the precise test dominates


def _scen_scores(seed, shift_by_scen, n=3000, k=3):
    rng = np.random.default_rng(seed)
    scen = rng.integers(0, k, n)
    y = (rng.random(n) < 0.2).astype(int)
    base = rng.normal(size=n) + 0.6 * y
    return y, scen, base


def test_compare_with_baseline_uses_every_seed_and_counts_runs():
    names = ["a", "b", "c"]
    labels, scens, model, base = [], [], [], []
    for d in range(2):
        y, scen, signal = _scen_scores(d, None)
        labels.append(y)
        scens.append(scen)
        rng = np.random.default_rng(100 + d)
        # the model is better in scenario a only (less noise there), equal elsewhere
        mp, bp = [], []
        for s in range(3):
            noise_m = rng.normal(size=len(y)) * np.where(scen == 0, 0.3, 1.0)
            mp.append(signal + noise_m)
            bp.append(signal + rng.normal(size=len(y)))
        model.append(mp)
        base.append(bp)
    out = ev.compare_with_baseline(labels, scens, model, base, names)
    assert out["a"]["verdict"] == "better" and out["a"]["runs"] == 6 and out["a"]["ahead_in"] == 6
    assert out["b"]["verdict"] == "no detectable difference" and out["c"]["verdict"] == "no detectable difference"
    assert out["a"]["p_holm"] >= out["a"]["p_value"] and out["overall"]["p_holm"] == out["overall"]["p_value"]
    assert out["a"]["base_ci_low"] > 0.5


def test_mantel_permutation_p_is_honest_about_pairs():
    rng = np.random.default_rng(0)
    k = 8
    truth = rng.random((k, k))
    truth = (truth + truth.T) / 2
    unrelated = rng.random((k, k))
    p_vals = [ev.matrix_agreement(rng.random((k, k)), truth, n_perm=199, seed=i)["p_value"] for i in range(40)]
    assert 0.0 < np.mean(np.array(p_vals) < 0.05) < 0.2  # ~5 % false positives under the null
    same = ev.matrix_agreement(truth + 0.01 * unrelated, truth, n_perm=999)
    assert same["spearman"] > 0.9 and same["p_value"] < 0.01
    # two matrices that share only a common component agree, but not once it is controlled for
    big = 20
    common = rng.random((big, big))
    common = common + common.T
    noise = lambda: 0.4 * rng.random((big, big))  # noqa: E731
    part = ev.matrix_agreement(common + noise(), common + noise(), control=common, n_perm=99)
    assert part["spearman"] > 0.6 and abs(part["partial"]) < 0.2


def test_decompose_alpha_separates_pull_and_pairwise():
    k = 5
    col = np.array([0.04, 0.01, -0.01, -0.02, -0.02])
    pair = np.zeros((k, k))
    pair[1, 2] = pair[2, 1] = 0.005
    pair[3, 4] = pair[4, 3] = 0.005
    a = 1 / (k - 1) + col[None, :] + pair
    np.fill_diagonal(a, np.nan)
    a = a / np.nansum(a, axis=1, keepdims=True)  # rows of a softmax sum to 1
    parts = ev.decompose_alpha(a)
    assert np.argmax(parts["column"]) == 0 and parts["share_column"] > 0.7
    pw = parts["pairwise"]
    assert pw[1, 2] > 0 and pw[3, 4] > 0 and pw[1, 2] > pw[1, 3]
    recon = parts["even"] + parts["row"][:, None] + parts["column"][None, :] + pw
    off = ~np.eye(k, dtype=bool)
    np.testing.assert_allclose(recon[off], a[off], atol=1e-12)


def test_linear_cka_is_invariant_to_rotation_and_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert ev.linear_cka(x, 3 * x @ q) == pytest.approx(1.0)
    assert ev.linear_cka(x, rng.normal(size=(200, 6))) < 0.2
    h = np.stack([x, x @ q, rng.normal(size=(200, 6))], axis=1)
    m = ev.branch_cka(h)
    assert m[0, 1] == pytest.approx(1.0) and m[0, 2] < 0.2 and np.allclose(m, m.T)


def test_pair_stability_and_spearman_test():
    mats = [np.array([[0, 3, 1], [3, 0, 2], [1, 2, 0.0]]) for _ in range(3)]
    st = ev.pair_stability(mats)
    assert st["share_above_median"][0, 1] == 1.0 and st["share_above_median"][0, 2] == 0.0
    t = ev.spearman_test([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert t["rho"] == pytest.approx(-1.0) and t["p_value"] < 0.05 and t["n"] == 5
    assert ev.spearman_test([1, 2], [1, 2])["rho"] is None


def test_no_paired_test_on_a_handful_of_clicks():
    rng = np.random.default_rng(0)
    y = np.zeros(300, dtype=int)
    y[:1] = 1  # one click: DeLong's variance from the positives would be zero
    a, b = rng.random(300), rng.random(300)
    a[0], b[0] = 0.99, 0.01
    assert ev.paired_delong(y, a, b)["p_value"] is None
    out = ev.compare_with_baseline([y], [np.zeros(300, dtype=int)], [[a]], [[b]], ["x"])
    assert out["x"]["verdict"] == "n/a" and out["overall"]["verdict"] == "n/a"
    y[:12] = 1
    assert ev.paired_delong(y, a, b)["p_value"] is not None


def test_mantel_p_value_equals_one_permutation_at_a_time():
    """The all-at-once permutation test gives the p-value of relabelling one permutation at a
    time (same draws), with tied values and with a missing entry (which moves with the labels)."""
    from saml_core import evaluate as ev

    def one_at_a_time(learned, truth, n_perm):
        y = ev.upper(truth)
        rho = ev.spearman(ev.upper(learned), y)
        rng, hits = np.random.default_rng(0), 0
        for _ in range(n_perm):
            perm = rng.permutation(len(truth))
            r = ev.spearman(ev.upper(learned[np.ix_(perm, perm)]), y)
            hits += r is not None and r >= rho - 1e-12
        return (1 + hits) / (1 + n_perm)

    rng = np.random.default_rng(5)
    seen = set()
    for trial in range(24):
        k = int(rng.integers(4, 11))
        a, b = rng.normal(size=(k, k)), rng.normal(size=(k, k))
        if trial % 3 == 0:
            a = np.round(a)  # ties
        if trial % 4 == 0:
            a = a + 0.8 * b  # real agreement: small p
        if trial % 5 == 0:
            a[1, 2] = np.nan
        got = ev.matrix_agreement(a, b, n_perm=199)["p_value"]
        assert got == one_at_a_time(a, b, 199), trial
        seen.add(got < 0.05)
    assert seen == {True, False}


# ---- within-scenario AUC -----------------------------------------------------------------

def _base_rate_log(seed=0, n=6000):
    """Three scenarios with very different click rates; within each, a score with some signal."""
    rng = np.random.default_rng(seed)
    scen = rng.integers(0, 3, n)
    rate = np.array([0.02, 0.10, 0.30])[scen]
    signal = rng.normal(size=n)
    y = (rng.random(n) < np.clip(rate * np.exp(0.5 * signal) / np.exp(0.125), 0, 1)).astype(int)
    return y, scen, signal


def test_a_scenario_click_rate_predictor_gets_half_within_scenarios_and_more_pooled():
    y, scen, _ = _base_rate_log()
    ctr = np.array([y[scen == j].mean() for j in range(3)])  # (here from the same rows: any per-scenario constant)
    pred = ctr[scen]
    assert ev.within_auc(y, pred, scen, 3) == 0.5
    assert ev.auc(y, pred) > 0.65  # pooled: knowing which scenario clicks more is already "skill"
    a, lo, hi = ev.within_auc_ci(y, pred, scen, 3)
    assert a == 0.5 and lo == hi == 0.5  # a constant within every scenario: no spread at all


def test_within_auc_is_the_row_weighted_mean_of_the_scenarios_with_both_classes():
    y, scen, signal = _base_rate_log(1)
    scen = np.where(np.arange(len(y)) < 40, 3, scen)  # a 4th scenario ...
    y = np.where(scen == 3, 0, y)  # ... without clicks: no AUC, left out of the mean
    per = [(np.sum(scen == j), roc_auc_score(y[scen == j], signal[scen == j])) for j in range(3)]
    expect = sum(n * a for n, a in per) / sum(n for n, _ in per)
    assert ev.within_auc(y, signal, scen, 4) == pytest.approx(expect, abs=1e-12)
    assert ev.within_auc(y, signal, scen, 4) != pytest.approx(ev.auc(y, signal), abs=1e-3)
    assert np.isnan(ev.within_auc(np.zeros(10), np.arange(10.0), np.zeros(10, int), 1))


def test_within_test_against_a_base_rate_predictor_and_its_na_notes():
    names = ["a", "b", "c"]
    labels, scens, model, base = [], [], [], []
    for d in range(2):
        y, scen, signal = _base_rate_log(10 + d)
        ctr = np.array([y[scen == j].mean() for j in range(3)])
        labels.append(y)
        scens.append(scen)
        rng = np.random.default_rng(d)
        model.append([signal + rng.normal(scale=1.0, size=len(y)) for _ in range(2)])  # knows something within
        base.append([ctr[scen]] * 2)  # knows only the base rates
    out = ev.compare_with_baseline(labels, scens, model, base, names, data_seeds=[0, 1])
    w = out["within"]
    assert w["verdict"] == "better" and w["p_value"] < 1e-6 and w["runs"] == 4 and w["ahead_in"] == 4
    mine = np.mean([ev.within_auc(y, p, s, 3) for y, s, ps in zip(labels, scens, model) for p in ps])
    assert w["auc_diff"] == pytest.approx(mine - 0.5, abs=0.01)  # the within-scenario AUC minus 0.5
    assert w["tested"] == names and w["share_tested"] == 1.0 and "note" not in w
    assert w["base_ci_low"] == w["base_ci_high"] == 0.5  # the base-rate predictor's own interval: none
    # pooled, the base rates alone look like a strong model: the pooled difference is much smaller
    assert out["overall"]["auc_diff"] < w["auc_diff"] - 0.05
    # a scenario with a handful of clicks: no verdict there, and the note says the rule and the counts
    y, scen, signal = _base_rate_log(3, n=900)
    keep = (scen != 0) | (np.cumsum(y * (scen == 0)) <= 4)
    y, scen, signal = y[keep], scen[keep], signal[keep]
    c0 = (int(y[scen == 0].sum()), int((1 - y[scen == 0]).sum()))
    assert c0[0] < 10
    out = ev.compare_with_baseline([y], [scen], [[signal]], [[np.zeros(len(y))]], names)
    assert out["a"]["verdict"] == "n/a" and out["a"]["verdict_note"] == (
        f"n/a: the paired test needs at least 10 clicks and 10 non-clicks in the test split (here {c0[0]} clicks / "
        f"{c0[1]} non-clicks)")
    assert out["within"]["tested"] == ["b", "c"] and out["within"]["note"].startswith("tested on the 2 of 3 scenarios")
    assert f"too few in: a ({c0[0]} clicks / {c0[1]} non-clicks)" in out["within"]["note"]
    none = ev.compare_with_baseline([y[scen == 0]], [scen[scen == 0]], [[signal[scen == 0]]],
                                    [[np.zeros(int((scen == 0).sum()))]], names, noun=("market", "markets"))
    assert none["within"]["verdict"] == "n/a" and "in the test split of a market, and no market has them" in \
        none["within"]["verdict_note"]


def test_headline_sentence_says_who_is_best_and_what_saml_does_not_beat():
    from saml_core import headline

    def group(gid, label, within, sweep=None):
        return {"group": gid, "model": gid, "label": label, "sweep": sweep, "within_ci_low": within - 0.01,
                "within_ci_high": within + 0.01, "within_auc": {"mean": within, "std": 0.01, "n": 3}}

    def cell(verdict, diff, p):
        return {"verdict": verdict, "auc_diff": diff, "p_value": p}

    summary = [group("saml", "SAML", 0.70), group("bst", "BST", 0.68), group("lr_te", "LR (target encoding)", 0.71)]
    tests = {("lr_te", "saml"): cell("no detectable difference", 0.01, 0.2), ("saml", "bst"): cell("better", 0.02, 1e-4),
             ("saml", "lr_te"): cell("no detectable difference", -0.01, 0.2),
             ("saml", headline.SCENARIO_CTR): cell("better", 0.2, 1e-12)}
    text = headline.sentence(summary, ("market", "markets"), {"model": "bst", "label": "BST"},
                             lambda a, b: tests.get((a, b)), "saml")
    assert text == ("By within-market AUC, LR (target encoding) is best (0.7100 ± 0.0100), but not significantly "
                    "better than the runner-up SAML (0.7000 ± 0.0100; p = 0.2); SAML (0.7000 ± 0.0100) beats BST "
                    "(+0.0200, p = 0.0001) and the market click rate alone (0.5 within markets; +0.2000, p < 1e-10), "
                    "and is level with LR (target encoding) (no detectable difference: -0.0100, p = 0.2).")
    tests[("saml", "lr_te")] = cell("worse", -0.03, 1e-3)
    tests[("saml", "bst")] = None  # no runs on the same seeds
    text = headline.sentence(summary, ("market", "markets"), {"model": "bst", "label": "BST"},
                             lambda a, b: tests.get((a, b)), "saml")
    assert "but not LR (target encoding) (significantly better by 0.0300, p = 0.001)" in text
    assert "cannot be tested against BST (not testable: no paired runs" in text
    # a sweep experiment: its settings are the candidates
    sweep = [group("saml-emb8", "SAML", 0.6, {"name": "emb", "value": 8}),
             group("saml-emb16", "SAML", 0.62, {"name": "emb", "value": 16})]
    text = headline.sentence(sweep, ("market", "markets"), {"model": "bst", "label": "BST"}, lambda a, b: None, "saml")
    assert text.startswith("By within-market AUC, SAML (emb 16) is best (0.6200 ± 0.0100); whether it beats the "
                           "runner-up SAML (emb 8) (0.6000 ± 0.0100) cannot be tested")


def test_chi2_sf_is_scipys_for_every_df_and_statistic():
    from scipy import stats

    for df in list(range(1, 41)) + [99, 100, 301]:
        for x in [1e-9, 0.5, 1.0, 3.84, 10.0, 50.0, 200.0, 1e4]:
            want = stats.chi2.sf(x, df)
            assert ev.chi2_sf(x, df) == pytest.approx(want, rel=1e-10, abs=1e-300), (df, x)
    assert ev.chi2_sf(0.0, 3) == 1.0 and np.isnan(ev.chi2_sf(float("nan"), 3))
    with pytest.raises(ValueError):
        ev.chi2_sf(1.0, 0)


def test_the_shipped_demos_report_imports_no_scipy_stats():
    """The report (what a dashboard's first start computes before its headline) needs none of
    scipy.stats' 1 s import, input importance included."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import sys; from saml_core import report as r; d = r.report('artifacts', 'demo'); "
            "assert d['importance']['models'], 'the shipped demo lost its importance'; "
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
