"""Metrics and statistics (numpy/scipy only), the one home of the project's maths: AUC, logloss,
DeLong CIs and paired tests, verdicts against the baseline over seeds (Holm-adjusted), RelaImpr
(guarded), multi-seed summaries, similarity recovery with permutation tests and null scores, the
decomposition of alpha, CKA between branches and the data-derived similarity. The report and
every page call these; nothing else re-implements them.

scipy.stats is imported where a function needs it, not with this module: importing it costs
0.5-0.8 s, which every dashboard page and the report paid before showing anything, while the
report's statistics need only ranks and the normal distribution (numpy and the standard library).
"""
from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict
from statistics import NormalDist

import numpy as np


def row_logloss(label: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of every row (predictions clipped to [1e-7, 1 - 1e-7])."""
    p = np.clip(np.asarray(pred).astype(np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(label).astype(np.float64)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def logloss(label: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(row_logloss(label, pred)))


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties given their average rank (scipy's
    rankdata(method="average")), O(n log n), every row of a 2-D array in one sort. Written here
    rather than calling scipy.stats.rankdata: its import (above) and its per-call array-API
    wrapping cost more than the sort on the report's thousands of short vectors."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
    m, n = flat.shape
    if n == 0:
        return np.zeros(x.shape)
    order = np.argsort(flat, axis=1)  # ties get one average rank: their order does not matter
    xs = np.take_along_axis(flat, order, axis=1)
    new = np.ones((m, n), dtype=bool)  # where a run of equal values starts (every row starts one)
    new[:, 1:] = xs[:, 1:] != xs[:, :-1]
    starts = np.flatnonzero(new.ravel())
    ends = np.append(starts[1:], m * n)  # runs never cross rows: each row's first value starts one
    mid = starts % n + (ends - starts + 1) / 2.0  # average of the 1-based ranks start+1 .. end
    ranks = np.empty((m, n))
    np.put_along_axis(ranks, order, mid[np.cumsum(new.ravel()) - 1].reshape(m, n), axis=1)
    return ranks.reshape(x.shape)


def _two_sided_p(z: float) -> float:
    """2 * P(Z > |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X chi-square with integer `df` >= 1 degrees of freedom, as scipy.stats.chi2.sf
    (tested against it): the regularized upper gamma Q(df/2, x/2) in closed form, a finite sum for
    an even df and erfc plus a finite sum for an odd one. Here rather than scipy because the
    report's input-importance test was its one caller of scipy.stats, whose import (1.1-1.25 s on
    the 2-core AMD EPYC dev VM) every first start of the dashboard paid before its headline."""
    if df < 1 or int(df) != df:
        raise ValueError(f"df must be a positive integer, got {df!r}")
    if math.isnan(x):
        return math.nan
    if not x > 0:
        return 1.0
    h, log_h = x / 2.0, math.log(x / 2.0)
    # each term in log space: h^i alone overflows for many scenarios and a large statistic
    if df % 2 == 0:  # Q = sum_{i < df/2} e^-h h^i / i!
        return float(min(1.0, sum(math.exp(i * log_h - math.lgamma(i + 1) - h) for i in range(df // 2))))
    # odd: Q = erfc(sqrt h) + sum_{i < (df-1)/2} e^-h h^(i+1/2) / Gamma(i+3/2)
    tail = sum(math.exp((i + 0.5) * log_h - math.lgamma(i + 1.5) - h) for i in range((df - 1) // 2))
    return float(min(1.0, math.erfc(math.sqrt(h)) + tail))


def delong(label: np.ndarray, preds: np.ndarray):
    """Fast DeLong (Sun & Xu 2014) for one or several score vectors on the same samples.
    preds [M, N] (or [N]); returns (auc [M], covariance [M, M]). NaN when a class is missing."""
    preds = np.atleast_2d(np.asarray(preds, dtype=np.float64))
    y = np.asarray(label).astype(bool)
    m_pos, n_neg = int(y.sum()), int((~y).sum())
    k = preds.shape[0]
    if m_pos == 0 or n_neg == 0:
        return np.full(k, np.nan), np.full((k, k), np.nan)
    auc, v01, v10 = _placements(y, preds)
    s01 = np.atleast_2d(np.cov(v01)) if m_pos > 1 else np.zeros((k, k))
    s10 = np.atleast_2d(np.cov(v10)) if n_neg > 1 else np.zeros((k, k))
    return auc, s01 / m_pos + s10 / n_neg


def _placement_rows(y: np.ndarray, preds: np.ndarray):
    """AUC [M] and DeLong's placement values of every score vector: v01 [M, positives] (per
    positive, the share of negatives scored below it) and v10 [M, negatives]."""
    m_pos, n_neg = int(y.sum()), int((~y).sum())
    pos, neg = preds[:, y], preds[:, ~y]
    tx = _midranks(pos)  # [M, m_pos] ranks among positives
    ty = _midranks(neg)  # [M, n_neg] ranks among negatives
    tz = _midranks(np.concatenate([pos, neg], axis=1))  # [M, N] ranks among all
    auc = (tz[:, :m_pos].sum(1) / m_pos - (m_pos + 1) / 2) / n_neg
    return auc, (tz[:, :m_pos] - tx) / n_neg, 1.0 - (tz[:, m_pos:] - ty) / m_pos


# A report compares each run's predictions on each scenario's rows with several others (the
# reference, over seeds, the runner-up, the references): the same vector was ranked up to ten
# times, ~80 % of a report's time. One vector's placements depend on that vector and the labels
# only, so they are kept, keyed by the bytes of both, within a memory bound.
_PLACEMENTS: OrderedDict = OrderedDict()
_PLACEMENT_LIMIT = 64 << 20  # bytes of placement values kept
_placement_bytes = 0
_placement_lock = threading.Lock()


def _placements(y: np.ndarray, preds: np.ndarray):
    global _placement_bytes
    base = hashlib.blake2b(np.ascontiguousarray(y), digest_size=16)
    keys = []
    for row in preds:
        h = base.copy()
        h.update(np.ascontiguousarray(row))
        keys.append(h.digest())
    with _placement_lock:
        got = [_PLACEMENTS.get(key) for key in keys]
        for key, hit in zip(keys, got):
            if hit is not None:
                _PLACEMENTS.move_to_end(key)
    miss = [i for i, hit in enumerate(got) if hit is None]
    if miss:
        auc, v01, v10 = _placement_rows(y, preds[miss])
        with _placement_lock:
            for j, i in enumerate(miss):
                got[i] = (float(auc[j]), v01[j], v10[j])
                if keys[i] not in _PLACEMENTS:
                    _PLACEMENTS[keys[i]] = got[i]
                    _placement_bytes += v01[j].nbytes + v10[j].nbytes
            while _placement_bytes > _PLACEMENT_LIMIT and _PLACEMENTS:
                _, (_, a, b) = _PLACEMENTS.popitem(last=False)
                _placement_bytes -= a.nbytes + b.nbytes
    return (np.array([g[0] for g in got]), np.stack([g[1] for g in got]), np.stack([g[2] for g in got]))


def auc(label: np.ndarray, pred: np.ndarray) -> float:
    return float(delong(label, pred)[0][0])


def auc_ci(label, pred, level: float = 0.95):
    """AUC with a DeLong confidence interval, clipped to [0, 1]."""
    a, cov = delong(label, pred)
    return _ci(float(a[0]), float(cov[0, 0]), level)


def auc_interval(a: float, var: float, level: float = 0.95) -> tuple[float, float, float]:
    """(AUC, low, high) from an AUC and its (DeLong) variance, clipped to [0, 1]."""
    return _ci(a, var, level)


def _ci(a: float, var: float, level: float = 0.95) -> tuple[float, float, float]:
    """(AUC, low, high): the normal interval of an AUC and its variance, clipped to [0, 1]."""
    if not np.isfinite(a):
        return a, float("nan"), float("nan")
    half = NormalDist().inv_cdf(0.5 + level / 2) * np.sqrt(max(var, 0.0))
    return a, max(0.0, a - half), min(1.0, a + half)


def _within_cells(label, pred, scenario, k: int) -> list[tuple[int, float, float]]:
    """(test rows, AUC, DeLong variance) of every scenario whose test rows hold both classes."""
    label, pred, scenario = np.asarray(label), np.asarray(pred), np.asarray(scenario)
    out = []
    for s in range(k):
        m = scenario == s
        a, cov = delong(label[m], pred[m]) if m.any() else (np.array([np.nan]), None)
        if np.isfinite(a[0]):
            out.append((int(m.sum()), float(a[0]), max(float(cov[0, 0]), 0.0)))
    return out


def within_auc(label, pred, scenario, k: int) -> float:
    """The within-scenario AUC: the mean of the per-scenario AUCs weighted by test rows, over the
    scenarios whose test split has both classes (NaN when none has). Unlike the AUC pooled over
    all scenarios it gives nothing for knowing which scenario clicks more: a predictor that scores
    every row with its scenario's click rate gets exactly 0.5."""
    return within_auc_ci(label, pred, scenario, k)[0]


def within_auc_ci(label, pred, scenario, k: int, level: float = 0.95) -> tuple[float, float, float]:
    """`within_auc` with a confidence interval: the scenarios are disjoint test sets, so the
    variance is sum_s w_s^2 var_s (w_s: the scenario's share of the rows counted)."""
    return _within_of(_within_cells(label, pred, scenario, k), level)


def _within_of(cells: list[tuple[int, float, float]], level: float = 0.95) -> tuple[float, float, float]:
    """Weighted mean and interval of per-scenario (test rows, AUC, variance) cells."""
    if not cells:
        return float("nan"), float("nan"), float("nan")
    n = np.array([c[0] for c in cells], dtype=np.float64)
    w = n / n.sum()
    return _ci(float(np.sum(w * [c[1] for c in cells])), float(np.sum(w ** 2 * [c[2] for c in cells])), level)


# A paired test needs this many clicks and non-clicks: DeLong's variance comes from the spread of
# the positives' (and negatives') placements, which a handful of clicks cannot estimate (with one
# click it is zero, and any difference would look certain).
MIN_CLASS = 10


def testable(label) -> bool:
    y = np.asarray(label).astype(bool)
    return int(y.sum()) >= MIN_CLASS and int((~y).sum()) >= MIN_CLASS


def paired_delong(label, pred_a, pred_b) -> dict:
    """Two-sided paired DeLong test of AUC(a) vs AUC(b) on the same samples (no test with fewer
    than MIN_CLASS clicks or non-clicks: every field None)."""
    if not testable(label):
        return {"auc_diff": None, "z": None, "p_value": None}
    a, cov = delong(label, np.stack([pred_a, pred_b]))
    diff = float(a[0] - a[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if not np.isfinite(diff):
        return {"auc_diff": None, "z": None, "p_value": None}
    if var <= 1e-18:
        return {"auc_diff": diff, "z": None, "p_value": 1.0 if abs(diff) < 1e-12 else 0.0}
    z = diff / np.sqrt(var)
    return {"auc_diff": diff, "z": float(z), "p_value": _two_sided_p(float(z))}


def relaimpr(auc_model: float | None, auc_base: float | None) -> float | None:
    """Eq. (10), in percent. Meaningful only when the baseline is clearly above chance: use
    `relaimpr_guarded` for anything shown to a user."""
    if auc_model is None or auc_base is None or not np.isfinite(auc_base) or abs(auc_base - 0.5) < 1e-12:
        return None
    return float(((auc_model - 0.5) / (auc_base - 0.5) - 1.0) * 100.0)


def relaimpr_guarded(auc_model, auc_base, base_ci_low, base_ci_high=None,
                     counts: str | None = None) -> tuple[float | None, str | None]:
    """(RelaImpr %, None), or (None, why not). The ratio divides by the baseline's distance from
    0.5: when the baseline is not clearly above chance (its 95 % CI reaches 0.5) the sign and size
    say nothing (a worse model below a baseline below 0.5 shows as a large gain). `counts` (the
    test split's clicks and non-clicks, `counts_text`) goes into the reason."""
    if auc_model is None or auc_base is None or not np.isfinite(auc_model) or not np.isfinite(auc_base):
        return None, "n/a: no AUC"
    here = f" (here {counts})" if counts else ""
    if base_ci_low is None or not np.isfinite(base_ci_low):
        return None, (f"n/a: RelaImpr needs the baseline's AUC CI above 0.5, and a CI needs at least {MIN_CLASS} "
                      f"clicks and {MIN_CLASS} non-clicks in the test split{here}")
    if base_ci_low <= 0.5:
        ci = f"{base_ci_low:.2f}–{base_ci_high:.2f}" if base_ci_high is not None else f"from {base_ci_low:.2f}"
        return None, f"n/a: RelaImpr needs the baseline's AUC CI above 0.5 (here {ci}" + \
            (f", {counts})" if counts else ")")
    return relaimpr(auc_model, auc_base), None


def class_counts(label) -> tuple[int, int]:
    """(clicks, non-clicks)."""
    y = np.asarray(label).astype(bool)
    return int(y.sum()), int((~y).sum())


def counts_text(counts: list[tuple[int, int]], splits: list | None = None) -> str:
    """'12 clicks / 300 non-clicks' for one test split; with several (one per data seed), each
    named: '12 clicks / 300 non-clicks (data seed 0), 9 / 280 (data seed 1)'."""
    if not counts:
        return "no test rows"
    if len(counts) == 1:
        c, n = counts[0]
        return f"{c} click{'s' * (c != 1)} / {n} non-click{'s' * (n != 1)}"
    splits = splits if splits is not None else list(range(len(counts)))
    parts = [counts_text([(c, n)]) if i == 0 else f"{c} / {n}" for i, (c, n) in enumerate(counts)]
    return ", ".join(f"{p} (data seed {d})" for p, d in zip(parts, splits))


def untestable_note(counts: str) -> str:
    """Why a paired test gave no verdict, with the counts that decided it."""
    return (f"n/a: the paired test needs at least {MIN_CLASS} clicks and {MIN_CLASS} non-clicks in the test split "
            f"(here {counts})")


def holm(p_values) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (step-down; None stays None): with K scenarios, K tests."""
    idx = [i for i, p in enumerate(p_values) if p is not None and np.isfinite(p)]
    out: list[float | None] = [None] * len(p_values)
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


ALPHA = 0.05


def verdict(diff: float | None, p_adjusted: float | None, alpha: float = ALPHA) -> str:
    """From the paired test's direction and (adjusted) p-value, never from RelaImpr's sign
    ("n/a": no test, e.g. fewer than MIN_CLASS clicks in every test split)."""
    if diff is None or p_adjusted is None:
        return "n/a"
    if p_adjusted < alpha:
        return "better" if diff > 0 else "worse"
    return "no detectable difference"


def _paired(label, a, b) -> dict:
    """Paired DeLong test with the variance of the difference (for combining test sets), and b's
    own AUC and variance (its confidence interval, from the same ranks)."""
    if not testable(label):
        return {"auc_diff": None, "var": None}
    aucs, cov = delong(label, np.stack([a, b]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if not np.isfinite(diff):
        return {"auc_diff": None, "var": None}
    return {"auc_diff": diff, "var": max(var, 0.0), "base_auc": float(aucs[1]), "base_var": max(float(cov[1, 1]), 0.0)}


def combine(tests: list[dict]) -> dict:
    """Fixed-effect (inverse-variance) combination of paired tests on independent test sets
    (one per data seed): {"auc_diff", "z", "p_value"}."""
    ok = [t for t in tests if t.get("auc_diff") is not None]
    if not ok:
        return {"auc_diff": None, "z": None, "p_value": None}
    if any(t["var"] <= 1e-18 for t in ok):  # identical predictions somewhere: no spread to test
        diff = float(np.mean([t["auc_diff"] for t in ok]))
        return {"auc_diff": diff, "z": None, "p_value": 1.0 if abs(diff) < 1e-12 else 0.0}
    w = np.array([1.0 / t["var"] for t in ok])
    diff = float(np.sum(w * [t["auc_diff"] for t in ok]) / w.sum())
    z = diff * np.sqrt(w.sum())
    return {"auc_diff": diff, "z": float(z), "p_value": _two_sided_p(float(z))}


def seed_mean_test(tests: list[dict]) -> dict:
    """Paired tests of several seed pairs on ONE test set -> the mean AUC difference and its
    variance: the test-sampling part (the mean of the DeLong variances, as if the seeds' errors were
    fully correlated on the shared test samples: conservative) plus the seed-to-seed part (the
    variance of the differences over seeds / number of seeds)."""
    ok = [t for t in tests if t.get("auc_diff") is not None]
    if not ok:
        return {"auc_diff": None, "var": None}
    diffs = np.array([t["auc_diff"] for t in ok])
    var = float(np.mean([t["var"] for t in ok]))
    if len(ok) > 1:
        var += float(np.var(diffs, ddof=1)) / len(ok)
    return {"auc_diff": float(diffs.mean()), "var": var}


def compare_with_baseline(label_by_split: list[np.ndarray], scen_by_split: list[np.ndarray],
                          model_preds: list[list[np.ndarray]], base_preds: list[list[np.ndarray]],
                          names: list[str], data_seeds: list | None = None,
                          noun: tuple[str, str] = ("scenario", "scenarios")) -> dict:
    """A model against the baseline over every seed: per scenario, pooled ("overall") and within
    scenarios ("within").

    label_by_split[d], scen_by_split[d]: the test split of data seed d; model_preds[d] /
    base_preds[d]: the runs' predictions on it, paired by model seed (same position). Within a data
    seed the AUC differences of the seed pairs are averaged (`seed_mean_test`: the mean AUC
    shown on the pages, with test-sampling and seed-to-seed uncertainty); data seeds are independent
    test sets, combined by inverse variance. Per-scenario p-values are Holm-adjusted over
    scenarios. "within" tests the difference of the within-scenario AUCs (`within_auc`): per seed
    pair, the paired differences of the scenarios that can be tested (>= MIN_CLASS clicks and
    non-clicks) weighted by their test rows, variance sum_s w_s^2 var_s (disjoint test sets), then
    over seeds as above. Also counted: in how many single runs (seed pairs) the model was ahead,
    and significantly so (p < 0.05, unadjusted) in each direction; every cell carries its test
    clicks / non-clicks (`counts`) and, without a verdict, why not (`verdict_note`)."""
    k = len(names)
    seeds = list(data_seeds) if data_seeds is not None else list(range(len(label_by_split)))
    cells = {name: {"tests": [], "runs": 0, "ahead": 0, "sig_better": 0, "sig_worse": 0, "base_ci_low": [],
                    "base_ci_high": [], "counts": [], "splits": []} for name in names + ["overall", "within"]}
    tested: set[str] = set()  # testable in some data seed's split
    left_out: set[str] = set()  # not testable in some data seed's split
    shares = []
    for d, label, scen, mp, bp in zip(seeds, label_by_split, scen_by_split, model_preds, base_preds):
        if not mp or not bp:
            continue
        masks = [(name, scen == j) for j, name in enumerate(names)] + [("overall", np.ones(len(label), bool))]
        per_pair: list[list] = [[] for _ in mp]  # per seed pair: (test rows, paired test) of each testable scenario
        base_cells: list[list] = [[] for _ in mp]  # per seed pair: the baseline's within-scenario cells
        for name, m in masks:
            cell = cells[name]
            if not m.any():
                continue
            cell["counts"].append(class_counts(label[m]))
            cell["splits"].append(d)
            both = 0 < cell["counts"][-1][0] and 0 < cell["counts"][-1][1]
            pairs = []
            for i, (a, b) in enumerate(zip(mp, bp)):
                t = _paired(label[m], a[m], b[m])
                if t["auc_diff"] is None:
                    if name != "overall" and both:  # too few to test, but part of the within-scenario AUC
                        ab, cov = delong(label[m], b[m])
                        base_cells[i].append((int(m.sum()), float(ab[0]), max(float(cov[0, 0]), 0.0)))
                    continue
                pairs.append(t)
                _tally(cell, t)
                _, lo, hi = _ci(t["base_auc"], t["base_var"])
                cell["base_ci_low"].append(lo)
                cell["base_ci_high"].append(hi)
                if name != "overall":
                    per_pair[i].append((int(m.sum()), t))
                    base_cells[i].append((int(m.sum()), t["base_auc"], t["base_var"]))
            cell["tests"].append(seed_mean_test(pairs))
            if name != "overall":
                (tested if pairs else left_out).add(name)
        cell = cells["within"]
        cell["counts"].append(class_counts(label))
        cell["splits"].append(d)
        pairs = []
        for parts in per_pair:
            if not parts:
                continue
            w = np.array([n for n, _ in parts], dtype=np.float64)
            w /= w.sum()
            t = {"auc_diff": float(np.sum(w * [p["auc_diff"] for _, p in parts])),
                 "var": float(np.sum(w ** 2 * [p["var"] for _, p in parts]))}
            pairs.append(t)
            _tally(cell, t)
        shares.append(sum(n for n, _ in per_pair[0]) / len(label) if per_pair[0] else 0.0)
        for parts in base_cells:
            _, lo, hi = _within_of(parts)
            cell["base_ci_low"].append(lo)
            cell["base_ci_high"].append(hi)
        cell["tests"].append(seed_mean_test(pairs))
    out = {}
    for name, cell in cells.items():
        c = combine(cell["tests"])
        lows = [x for x in cell["base_ci_low"] if x is not None and np.isfinite(x)]
        highs = [x for x in cell["base_ci_high"] if x is not None and np.isfinite(x)]
        out[name] = {**c, "runs": cell["runs"], "ahead_in": cell["ahead"], "significantly_better_in":
                     cell["sig_better"], "significantly_worse_in": cell["sig_worse"],
                     "base_ci_low": float(np.mean(lows)) if lows else None,
                     "base_ci_high": float(np.mean(highs)) if highs else None,
                     "clicks": sum(c for c, _ in cell["counts"]), "non_clicks": sum(n for _, n in cell["counts"]),
                     "counts": counts_text(cell["counts"], cell["splits"])}
    adjusted = holm([out[n]["p_value"] for n in names])
    for n, p_adj in zip(names, adjusted):
        out[n]["p_holm"] = p_adj
        out[n]["verdict"] = verdict(out[n]["auc_diff"], p_adj)
    for key in ("overall", "within"):  # one test each: nothing to adjust
        out[key]["p_holm"] = out[key]["p_value"]
        out[key]["verdict"] = verdict(out[key]["auc_diff"], out[key]["p_value"])
    for key in names + ["overall"]:
        if out[key]["verdict"] == "n/a":
            out[key]["verdict_note"] = untestable_note(out[key]["counts"])
    one, many = noun
    w = out["within"]
    w["tested"] = [n for n in names if n in tested]
    w["share_tested"] = float(np.mean(shares)) if shares else 0.0
    if w["verdict"] == "n/a":
        w["verdict_note"] = (f"n/a: the paired test needs at least {MIN_CLASS} clicks and {MIN_CLASS} non-clicks in "
                             f"the test split of a {one}, and no {one} has them")
    elif left_out:
        w["note"] = (f"tested on the {len(w['tested'])} of {k} {many} with at least {MIN_CLASS} clicks and "
                     f"{MIN_CLASS} non-clicks in a test split ({100 * w['share_tested']:.0f} % of the test rows); "
                     "too few in: " + "; ".join(f"{n} ({out[n]['counts']})" for n in names if n in left_out))
    return out


def _tally(cell: dict, t: dict) -> None:
    """Count one seed pair: ahead, and significantly (unadjusted) better or worse."""
    cell["runs"] += 1
    cell["ahead"] += t["auc_diff"] > 0
    p = _p_value(t)
    if p is not None and p < ALPHA:
        cell["sig_better" if t["auc_diff"] > 0 else "sig_worse"] += 1


def _p_value(t: dict) -> float | None:
    if t.get("auc_diff") is None:
        return None
    if t["var"] <= 1e-18:
        return 1.0 if abs(t["auc_diff"]) < 1e-12 else 0.0
    return _two_sided_p(float(t["auc_diff"] / np.sqrt(t["var"])))


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


def _finite_float(x) -> float | None:
    """x as a float when it is a finite number (values come from files: text, booleans, integers
    beyond 64 bits or beyond float range are not numbers to average)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        return None
    try:
        v = float(x)
    except OverflowError:
        return None
    return v if np.isfinite(v) else None


def mean_std(values) -> dict:
    v = np.array([f for f in map(_finite_float, values) if f is not None], dtype=np.float64)
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


def upper(m: np.ndarray) -> np.ndarray:
    """Off-diagonal entries of the symmetrised matrix, one per scenario pair (i < j)."""
    m = np.asarray(m, dtype=np.float64)
    sym = (m + m.T) / 2
    return sym[np.triu_indices(m.shape[0], 1)]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho of the finite pairs (None below 3 of them or without spread), as
    scipy.stats.spearmanr's statistic."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None
    # Pearson of the average ranks, which is what scipy.stats.spearmanr computes (without its import)
    rx, ry = _midranks(x[ok]), _midranks(y[ok])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float(np.clip((rx @ ry) / np.sqrt((rx @ rx) * (ry @ ry)), -1.0, 1.0))


def _partial(rxy, rxz, ryz) -> float | None:
    if None in (rxy, rxz, ryz) or abs(rxz) >= 1 or abs(ryz) >= 1:
        return None
    return float((rxy - rxz * ryz) / np.sqrt((1 - rxz ** 2) * (1 - ryz ** 2)))


def matrix_agreement(learned: np.ndarray, truth: np.ndarray, control: np.ndarray | None = None,
                     n_perm: int = 4999, seed: int = 0) -> dict:
    """How well a learned K x K scenario similarity ranks the scenario pairs like `truth`.

    spearman: rank correlation over the K(K-1)/2 pairs. p_value: Mantel permutation test
    (one-sided, "at least this much agreement"): scenario labels of `learned` are permuted,
    rows and columns together, because the pairs of one scenario are not independent (scipy's
    p would treat the 45 pairs of 10 scenarios as 45 independent observations).
    partial: the Spearman correlation controlling for `control` (e.g. a traffic-only matrix), a
    descriptive figure (a permutation test of a partial rank correlation is not calibrated when
    the control relates non-linearly to both matrices, so none is given)."""
    learned, truth = np.asarray(learned, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    k = truth.shape[0]
    x, y = upper(learned), upper(truth)
    rho = spearman(x, y)
    out = {"spearman": rho, "p_value": None, "partial": None, "n_perm": n_perm}
    if rho is None:
        return out
    if control is not None:
        z = upper(control)
        out["partial"] = _partial(rho, spearman(x, z), spearman(y, z))
    out["p_value"] = (1 + _permutation_hits(learned, y, _permutations(k, n_perm, seed), rho)) / (1 + n_perm)
    return out


@functools.lru_cache(maxsize=32)
def _permutations(k: int, n_perm: int, seed: int) -> np.ndarray:
    """[n_perm, K] relabellings of K scenarios, drawn one at a time from `seed` (read-only: shared
    by every test with the same K, n_perm and seed)."""
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(k) for _ in range(n_perm)]) if n_perm else np.zeros((0, k), dtype=np.int64)
    perms.setflags(write=False)
    return perms


def _centred_ranks(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    r = _midranks(np.moveaxis(x, axis, -1))
    r = np.moveaxis(r, -1, axis)
    r = r - r.mean(axis=axis, keepdims=True)
    return r, np.sqrt((r ** 2).sum(axis=axis))


def agreement_matrix(matrices: list[np.ndarray], n_perm: int = 4999, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`matrix_agreement` of every pair of K x K matrices at once: (spearman [S, S], p [S, S]),
    filled for a < b with matrix_agreement(matrices[a], matrices[b]) (matrices[a] relabelled; the
    same permutations, so the same numbers), NaN where it gives None. The relabelled ranks of each
    matrix are computed once instead of once per pair: a page comparing 20 signals runs 190 tests."""
    mats = [np.asarray(m, dtype=np.float64) for m in matrices]
    n = len(mats)
    rho, p = np.full((n, n), np.nan), np.full((n, n), np.nan)
    if n < 2:
        return rho, p
    k = mats[0].shape[0]
    perms = _permutations(k, n_perm, seed)
    iu = np.triu_indices(k, 1)
    ys = [upper(m) for m in mats]
    finite = [bool(np.isfinite(y).all()) for y in ys]
    ranks = {a: _centred_ranks(ys[a]) for a in range(n) if finite[a]}  # unpermuted: ([pairs], norm)
    perm_ranks = {}  # relabelled: ([n_perm, pairs], [n_perm])
    for a in range(n):
        if finite[a]:
            sym = (mats[a] + mats[a].T) / 2
            perm_ranks[a] = _centred_ranks(sym[perms[:, iu[0]], perms[:, iu[1]]], axis=1)
    for a in range(n):
        for b in range(a + 1, n):
            r = spearman(ys[a], ys[b])
            if r is None:
                continue
            rho[a, b] = r
            if n_perm == 0:
                continue
            if finite[a] and finite[b]:
                (rx, nx), (ry, ny) = perm_ranks[a], ranks[b]
                with np.errstate(invalid="ignore", divide="ignore"):
                    stat = (rx @ ry) / (nx * ny)
                hits = int(np.sum(np.isfinite(stat) & (stat >= r - 1e-12)))
            else:  # missing entries move with the labels: one at a time
                hits = _permutation_hits(mats[a], ys[b], perms, r)
            p[a, b] = (1 + hits) / (1 + n_perm)
    return rho, p


def _permutation_hits(learned: np.ndarray, y: np.ndarray, perms: np.ndarray, rho: float) -> int:
    """How many relabellings of `learned` (rows and columns by each row of `perms`) rank the pairs
    at least as much like y as rho. All permutations at once when every entry is finite (ranks and
    correlations as one array operation: the dashboard asks for several tests per page); one at a
    time otherwise, since missing entries move with the labels."""
    k = learned.shape[0]
    iu = np.triu_indices(k, 1)
    sym = (learned + learned.T) / 2
    xs = sym[perms[:, iu[0]], perms[:, iu[1]]]  # [n_perm, pairs]: upper(learned[perm][:, perm])
    if not (np.isfinite(xs).all() and np.isfinite(y).all()):
        return _masked_hits(xs, y, rho)
    rx = _midranks(xs)
    rx -= rx.mean(axis=1, keepdims=True)
    ry = _midranks(y)
    ry -= ry.mean()
    norm = np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (rx @ ry) / norm  # Spearman = Pearson of the (average) ranks; NaN for a constant row
    return int(np.sum(np.isfinite(r) & (r >= rho - 1e-12)))


def _masked_hits(xs: np.ndarray, y: np.ndarray, rho: float) -> int:
    """`_permutation_hits` with missing entries: per relabelling, the Spearman correlation over the
    pairs finite on both sides (as `spearman`: none below 3 such pairs or without spread), all
    relabellings as one array operation (the loop over them took ~0.3 s per test)."""
    from scipy import stats  # here, not with the module (see the module docstring)

    ok = np.isfinite(xs) & np.isfinite(y)[None, :]  # [n_perm, pairs]
    n = ok.sum(axis=1)
    rx = stats.rankdata(np.where(ok, xs, np.nan), axis=1, nan_policy="omit")
    ry = stats.rankdata(np.where(ok, y[None, :], np.nan), axis=1, nan_policy="omit")
    with np.errstate(invalid="ignore", divide="ignore"):
        rx = np.where(ok, rx - np.nansum(rx, axis=1, keepdims=True) / n[:, None], 0.0)
        ry = np.where(ok, ry - np.nansum(ry, axis=1, keepdims=True) / n[:, None], 0.0)
        r = (rx * ry).sum(1) / np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    spread = (np.nanmax(np.where(ok, xs, np.nan), axis=1, initial=-np.inf) >
              np.nanmin(np.where(ok, xs, np.nan), axis=1, initial=np.inf))
    spread &= (np.max(np.where(ok, y[None, :], -np.inf), axis=1) > np.min(np.where(ok, y[None, :], np.inf), axis=1))
    valid = (n >= 3) & spread & np.isfinite(r)
    return int(np.sum(valid & (r >= rho - 1e-12)))


def traffic_matrix(shares) -> np.ndarray:
    """A similarity that knows nothing but traffic: share_a x share_b (big pairs most alike)."""
    s = np.asarray(shares, dtype=np.float64)
    return np.outer(s, s)


def group_matrix(groups: list) -> np.ndarray:
    """1 for two scenarios of the same (non-empty) group, else 0."""
    g = list(groups)
    return np.array([[1.0 if a is not None and a == b else 0.0 for b in g] for a in g])


def similarity_recovery(alpha_mean: np.ndarray, truth: np.ndarray, traffic: np.ndarray | None = None,
                        nulls: dict[str, np.ndarray] | None = None, n_perm: int = 4999) -> dict:
    """Per mutual-unit layer: agreement of the mean alpha matrix with the planted similarity
    (`matrix_agreement`, controlling for traffic when given), beside the score that "null"
    similarity matrices (traffic only, same group only) get against the same truth: recovery is
    informative only above those. Reported, never tuned on."""
    truth = np.asarray(truth, dtype=np.float64)
    control = traffic_matrix(traffic) if traffic is not None else None
    layers = [matrix_agreement(layer, truth, control, n_perm=n_perm)
              for layer in np.asarray(alpha_mean, dtype=np.float64)]
    out = {key: [l[key] for l in layers] for key in ("spearman", "p_value", "partial")}
    # the same on the pairwise part of alpha (each branch's overall pull removed: see decompose_alpha)
    pairwise = [matrix_agreement(decompose_alpha(layer)["pairwise"], truth, n_perm=n_perm)
                for layer in np.asarray(alpha_mean, dtype=np.float64)]
    out["pairwise_spearman"] = [l["spearman"] for l in pairwise]
    out["pairwise_p_value"] = [l["p_value"] for l in pairwise]
    null_mats = dict(nulls or {})
    if control is not None:
        null_mats.setdefault("traffic only", control)
    out["null_scores"] = {name: spearman(upper(m), upper(truth)) for name, m in null_mats.items()}
    out["test"] = (f"Spearman over scenario pairs; p: one-sided Mantel permutation test ({n_perm} "
                   "permutations of scenario labels); partial: controlling for traffic share x share; "
                   "pairwise: on alpha minus each branch's column effect and each scenario's row effect")
    return out


def decompose_alpha(alpha_mean: np.ndarray) -> dict:
    """Split a K x K mean alpha matrix (row = scenario listening, column = branch listened to,
    diagonal undefined) into what is common to everyone and what is specific to a pair:

        alpha[s, j] = even + row[s] + column[j] + pairwise[s, j]

    even = 1/(K-1) (every branch heard equally). A softmax row sums to 1, so rows differ little;
    `column[j]` is branch j's pull on everybody (in practice: traffic), and `pairwise` is what is
    left: how much more s listens to j than s's and j's overall levels predict. Least squares
    over the off-diagonal cells (alternating row/column means, which converge for this design).
    share_column / share_pairwise: parts of the variance of alpha around the even split."""
    a = np.asarray(alpha_mean, dtype=np.float64).copy()
    k = a.shape[0]
    off = ~np.eye(k, dtype=bool) & np.isfinite(a)
    even = 1.0 / max(k - 1, 1)
    dev = np.where(off, a - even, np.nan)
    row, col = np.zeros(k), np.zeros(k)
    for _ in range(200):
        new_row = np.nanmean(dev - col[None, :], axis=1)
        new_row = np.nan_to_num(new_row - np.nanmean(new_row))
        new_col = np.nan_to_num(np.nanmean(dev - new_row[:, None], axis=0))
        if np.allclose(new_row, row, atol=1e-13) and np.allclose(new_col, col, atol=1e-13):
            row, col = new_row, new_col
            break
        row, col = new_row, new_col
    pairwise = dev - row[:, None] - col[None, :]
    total = np.nansum(dev ** 2)
    share = (lambda part: float(np.nansum(np.where(off, part, np.nan) ** 2) / total) if total > 0 else None)
    return {"even": even, "row": row, "column": col, "pairwise": pairwise,
            "share_row": share(np.broadcast_to(row[:, None], a.shape)),
            "share_column": share(np.broadcast_to(col[None, :], a.shape)),
            "share_pairwise": share(pairwise)}


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment of two representations of the same rows (Kornblith et al.
    2019): 1 = same geometry up to rotation and scale, 0 = unrelated."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(0)
    y = y - y.mean(0)
    num = np.linalg.norm(y.T @ x) ** 2
    den = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(num / den) if den > 0 else float("nan")


# Samples up to which branch_cka works on the samples' Gram matrices ([K, M, M] in memory) rather
# than on the K(K-1)/2 feature cross-products
CKA_GRAM_MAX = 2000


def branch_cka(hidden_all: np.ndarray) -> np.ndarray:
    """[M, K, H] every branch's hidden state on the same M samples -> [K, K] linear CKA between
    branches: a model-free similarity of what the branches compute (no softmax, no gate).

    ||Y'X||_F^2 = <XX', YY'>_F: with M <= CKA_GRAM_MAX one M x M Gram matrix per branch gives every
    pair (K products instead of 3 per pair: 10x fewer FLOPs at M=300, H=256). BLAS runs on one
    thread here: these products are small, and on a shared 2-core machine OpenBLAS's second thread
    made them 12-35x slower (measured: 9.4 s against 0.25 s for 10 branches, M=300, H=256)."""
    from threadpoolctl import threadpool_limits

    h = np.asarray(hidden_all, dtype=np.float64)
    h = h - h.mean(0)
    m, k = h.shape[:2]
    hk = np.ascontiguousarray(h.transpose(1, 0, 2))  # [K, M, H]
    with threadpool_limits(1, "blas"):
        if m <= CKA_GRAM_MAX:
            flat = (hk @ hk.transpose(0, 2, 1)).reshape(k, -1)  # [K, M*M] centred Gram matrices
            inner = flat @ flat.T
        else:
            inner = np.empty((k, k))
            for a in range(k):
                for b in range(a, k):
                    inner[a, b] = inner[b, a] = np.linalg.norm(hk[b].T @ hk[a]) ** 2
    norm = np.sqrt(np.diag(inner))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(np.outer(norm, norm) > 0, inner / np.outer(norm, norm), np.nan)
    np.fill_diagonal(out, 1.0)
    return out


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


def spearman_test(x, y) -> dict:
    """Rank correlation of two per-scenario quantities (independent scenarios), with its p-value:
    {"rho", "p_value", "n"} (None when fewer than 3 finite pairs or no spread)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return {"rho": None, "p_value": None, "n": int(ok.sum())}
    from scipy import stats

    r = stats.spearmanr(x[ok], y[ok])
    return {"rho": float(r.statistic), "p_value": float(r.pvalue), "n": int(ok.sum())}


def pair_stability(matrices: list[np.ndarray]) -> dict:
    """Across runs (seeds), per scenario pair of symmetrised matrices: mean, std and the share of
    runs in which the pair is above its run's median pair ("consistently similar" when ~1)."""
    mats = [np.asarray(m, dtype=np.float64) for m in matrices]
    sym = np.stack([(m + m.T) / 2 for m in mats])  # [R, K, K]
    k = sym.shape[1]
    off = ~np.eye(k, dtype=bool)
    finite = np.isfinite(sym)
    # NaN-aware means by hand: numpy's nanmean/nanmedian warn on the all-NaN diagonal
    med = np.array([np.median(s[off & np.isfinite(s)]) if (off & np.isfinite(s)).any() else np.nan
                    for s in sym])[:, None, None]
    n = finite.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, sym, 0.0).sum(0) / n
        share = np.where(finite, sym > med, 0.0).sum(0) / n
        std = np.sqrt(np.where(finite, (sym - mean) ** 2, 0.0).sum(0) / (n - 1)) if len(mats) > 1 \
            else np.zeros((k, k))
    for a in (mean, std, share):
        a[n == 0] = np.nan
        np.fill_diagonal(a, np.nan)
    return {"mean": mean, "std": std, "share_above_median": share, "runs": len(mats)}
