"""Metrics and statistics (numpy/scipy only): AUC, logloss, DeLong CIs and paired tests,
RelaImpr, multi-seed summaries, similarity recovery and the data-derived similarity."""
from __future__ import annotations

import numpy as np
from scipy import stats


def logloss(label: np.ndarray, pred: np.ndarray) -> float:
    p = np.clip(pred.astype(np.float64), 1e-7, 1 - 1e-7)
    y = label.astype(np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank, O(n log n)."""
    return stats.rankdata(x, method="average")


def delong(label: np.ndarray, preds: np.ndarray):
    """Fast DeLong (Sun & Xu 2014) for one or several score vectors on the same samples.
    preds [M, N] (or [N]); returns (auc [M], covariance [M, M]). NaN when a class is missing."""
    preds = np.atleast_2d(np.asarray(preds, dtype=np.float64))
    y = np.asarray(label).astype(bool)
    m_pos, n_neg = int(y.sum()), int((~y).sum())
    k = preds.shape[0]
    if m_pos == 0 or n_neg == 0:
        return np.full(k, np.nan), np.full((k, k), np.nan)
    pos, neg = preds[:, y], preds[:, ~y]
    tx = np.stack([_midranks(p) for p in pos])  # ranks among positives
    ty = np.stack([_midranks(q) for q in neg])  # ranks among negatives
    tz = np.stack([_midranks(np.concatenate([p, q])) for p, q in zip(pos, neg)])  # among all
    auc = (tz[:, :m_pos].sum(1) / m_pos - (m_pos + 1) / 2) / n_neg
    v01 = (tz[:, :m_pos] - tx) / n_neg  # per positive: share of negatives scored below
    v10 = 1.0 - (tz[:, m_pos:] - ty) / m_pos  # per negative: share of positives scored above
    s01 = np.atleast_2d(np.cov(v01)) if m_pos > 1 else np.zeros((k, k))
    s10 = np.atleast_2d(np.cov(v10)) if n_neg > 1 else np.zeros((k, k))
    return auc, s01 / m_pos + s10 / n_neg


def auc(label: np.ndarray, pred: np.ndarray) -> float:
    return float(delong(label, pred)[0][0])


def auc_ci(label, pred, level: float = 0.95):
    """AUC with a DeLong confidence interval, clipped to [0, 1]."""
    a, cov = delong(label, pred)
    a, var = float(a[0]), float(cov[0, 0])
    if not np.isfinite(a):
        return a, float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    half = z * np.sqrt(max(var, 0.0))
    return a, max(0.0, a - half), min(1.0, a + half)


def paired_delong(label, pred_a, pred_b) -> dict:
    """Two-sided paired DeLong test of AUC(a) vs AUC(b) on the same samples."""
    a, cov = delong(label, np.stack([pred_a, pred_b]))
    diff = float(a[0] - a[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if not np.isfinite(diff):
        return {"auc_diff": None, "z": None, "p_value": None}
    if var <= 1e-18:
        return {"auc_diff": diff, "z": None, "p_value": 1.0 if abs(diff) < 1e-12 else 0.0}
    z = diff / np.sqrt(var)
    return {"auc_diff": diff, "z": float(z), "p_value": float(2 * stats.norm.sf(abs(z)))}


def relaimpr(auc_model: float | None, auc_base: float | None) -> float | None:
    """Eq. (10), in percent."""
    if auc_model is None or auc_base is None or not np.isfinite(auc_base) or abs(auc_base - 0.5) < 1e-12:
        return None
    return float(((auc_model - 0.5) / (auc_base - 0.5) - 1.0) * 100.0)


def scenario_metrics(label, pred, scenario, scenario_names, with_ci: bool = True) -> dict:
    """Overall and per-scenario AUC/logloss/n/positives (+ 95% DeLong CI per scenario)."""
    label, pred, scenario = np.asarray(label), np.asarray(pred), np.asarray(scenario)
    a, lo, hi = auc_ci(label, pred)
    out = {"overall": {"auc": a, "ci_low": lo, "ci_high": hi, "logloss": logloss(label, pred),
                       "n": int(len(label)), "positives": int(label.sum())}, "per_scenario": {}}
    for k, name in enumerate(scenario_names):
        m = scenario == k
        if not m.any():
            out["per_scenario"][name] = {"auc": None, "ci_low": None, "ci_high": None, "logloss": None,
                                         "n": 0, "positives": 0}
            continue
        a, lo, hi = auc_ci(label[m], pred[m]) if with_ci else (auc(label[m], pred[m]), None, None)
        out["per_scenario"][name] = {"auc": a, "ci_low": lo, "ci_high": hi, "logloss": logloss(label[m], pred[m]),
                                     "n": int(m.sum()), "positives": int(label[m].sum())}
    return out


def mean_std(values) -> dict:
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def alpha_matrix(alpha: np.ndarray, scenario: np.ndarray, k: int) -> np.ndarray:
    """Mean alpha of samples of scenario s against branch j: alpha [Ly, N, K] -> [Ly, K, K]
    (row s; NaN rows for scenarios absent from the subset)."""
    out = np.full((alpha.shape[0], k, k), np.nan)
    for s in range(k):
        m = scenario == s
        if m.any():
            out[:, s, :] = alpha[:, m, :].mean(axis=1)
    return out


def similarity_recovery(alpha_mean: np.ndarray, truth: np.ndarray) -> dict:
    """Spearman rank correlation between the off-diagonal entries of the (symmetrised) mean
    alpha matrix of each layer and the ground-truth similarity matrix. Reported, never tuned."""
    truth = np.asarray(truth, dtype=np.float64)
    k = truth.shape[0]
    iu = np.triu_indices(k, 1)
    rho, p = [], []
    for layer in np.asarray(alpha_mean, dtype=np.float64):
        sym = (layer + layer.T) / 2
        x, y = sym[iu], truth[iu]
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
            rho.append(None), p.append(None)
            continue
        r = stats.spearmanr(x[ok], y[ok])
        rho.append(float(r.statistic)), p.append(float(r.pvalue))
    return {"spearman": rho, "p_value": p}


def data_similarity(category: np.ndarray, label: np.ndarray, scenario: np.ndarray, k: int) -> np.ndarray:
    """Overlap of clicked-category distributions between scenarios (train data):
    sim[a, b] = sum_c min(P_a(c), P_b(c)) over the categories clicked in each scenario (1 on
    the diagonal, 0 = disjoint tastes)."""
    clicked = label.astype(bool)
    cats = category[clicked]
    scen = scenario[clicked]
    n_cat = int(category.max()) + 1 if len(category) else 1
    dist = np.zeros((k, n_cat))
    np.add.at(dist, (scen, cats), 1.0)
    tot = dist.sum(1, keepdims=True)
    dist = np.divide(dist, tot, out=np.zeros_like(dist), where=tot > 0)
    sim = np.minimum(dist[:, None, :], dist[None, :, :]).sum(-1)
    sim[tot[:, 0] == 0, :] = np.nan
    sim[:, tot[:, 0] == 0] = np.nan
    return sim
