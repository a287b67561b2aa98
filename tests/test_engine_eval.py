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
    rec = ev.similarity_recovery(truth[None] * 0.5, truth)
    assert rec["spearman"][0] == pytest.approx(1.0)
    rec = ev.similarity_recovery(-truth[None], truth)
    assert rec["spearman"][0] == pytest.approx(-1.0)
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
