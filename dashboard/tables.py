"""Plain pandas/numpy derivations of what the pages show (no Streamlit, no file access).

Inputs are run records as the registry returns them (attributes run_id, label, model, variant,
seed, metrics, history, error) and probe arrays (docs/ARTIFACTS.md); outputs are DataFrames
and arrays that `charts` draws and pages print.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform
from scipy.stats import spearmanr

from dashboard.colors import model_sort_key

BASE_LABEL = "BST"


def relaimpr(auc: float, base_auc: float) -> float:
    """RelaImpr in % (paper eq. 10): ((AUC - 0.5) / (AUC_base - 0.5) - 1) * 100."""
    if base_auc is None or not np.isfinite(base_auc) or abs(base_auc - 0.5) < 1e-12:
        return float("nan")
    return ((auc - 0.5) / (base_auc - 0.5) - 1.0) * 100.0


def finished_runs(runs) -> list:
    return [r for r in runs if r.error is None and r.metrics]


def runs_frame(runs) -> pd.DataFrame:
    """One row per usable run: overall metrics and training facts."""
    rows = []
    for r in finished_runs(runs):
        m = r.metrics
        overall = m.get("overall", {})
        rows.append({
            "run_id": r.run_id, "label": r.label, "model": r.model, "variant": r.variant,
            "seed": r.seed, "auc": overall.get("auc"), "logloss": overall.get("logloss"),
            "n": overall.get("n"), "epochs_run": m.get("epochs_run"),
            "best_epoch": m.get("best_epoch"), "train_seconds": m.get("train_seconds"),
            "device": m.get("device"),
        })
    df = pd.DataFrame(rows, columns=["run_id", "label", "model", "variant", "seed", "auc", "logloss",
                                     "n", "epochs_run", "best_epoch", "train_seconds", "device"])
    return df


def _sorted_labels(labels) -> list[str]:
    return sorted(set(labels), key=model_sort_key)


def overall_table(runs_df: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table II: per model AUC, logloss and RelaImpr vs BST (mean ± std over seeds)."""
    cols = ["Model", "AUC", "AUC std", "Logloss", "RelaImpr vs BST (%)", "Seeds", "Epochs", "Train time (s)"]
    if runs_df.empty:
        return pd.DataFrame(columns=cols)
    g = runs_df.groupby("label")
    agg = pd.DataFrame({
        "AUC": g["auc"].mean(), "AUC std": g["auc"].std(ddof=1), "Logloss": g["logloss"].mean(),
        "Seeds": g["seed"].nunique(), "Epochs": g["epochs_run"].mean(),
        "Train time (s)": g["train_seconds"].sum(),
    })
    base = agg["AUC"].get(BASE_LABEL, float("nan"))
    agg["RelaImpr vs BST (%)"] = [relaimpr(a, base) for a in agg["AUC"]]
    agg = agg.loc[_sorted_labels(agg.index)]
    agg.index.name = "Model"
    for col in ("AUC std", "RelaImpr vs BST (%)"):  # one seed each / no BST run: blanks say nothing
        if agg[col].isna().all():
            cols = [c for c in cols if c != col]
    return agg.reset_index()[cols]


def per_scenario_frame(runs, scenario_names: list[str]) -> pd.DataFrame:
    """Long table: one row per (run, scenario) with AUC, its 95 % CI, logloss and counts."""
    rows = []
    for r in finished_runs(runs):
        per = r.metrics.get("per_scenario", {}) or {}
        for s in scenario_names:
            m = per.get(s)
            if not m:
                continue
            rows.append({"run_id": r.run_id, "label": r.label, "seed": r.seed, "scenario": s,
                         "auc": m.get("auc"), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"),
                         "logloss": m.get("logloss"), "n": m.get("n"), "positives": m.get("positives")})
    return pd.DataFrame(rows, columns=["run_id", "label", "seed", "scenario", "auc", "ci_low",
                                       "ci_high", "logloss", "n", "positives"])


def per_scenario_summary(
    long_df: pd.DataFrame,
    scenario_names: list[str],
    traffic_share: dict | None = None,
    oracle_auc: dict | None = None,
    p_values: dict | None = None,
    alpha_level: float = 0.05,
) -> pd.DataFrame:
    """Per (model, scenario): AUC mean ± std over seeds, CI, RelaImpr vs BST, share, oracle, test.

    With one seed the error bar is the run's 95 % CI; with several, mean ± std across seeds.
    `p_values[scenario]` is the paired test of SAML against BST (from the engine's report).
    """
    cols = ["scenario", "label", "auc", "auc_std", "err_low", "err_high", "ci_low", "ci_high",
            "seeds", "n", "positives", "relaimpr", "traffic_share", "oracle_auc", "p_value", "significant"]
    if long_df.empty:
        return pd.DataFrame(columns=cols)
    g = long_df.groupby(["scenario", "label"], sort=False)
    out = g.agg(auc=("auc", "mean"), auc_std=("auc", "std"), ci_low=("ci_low", "mean"),
                ci_high=("ci_high", "mean"), seeds=("seed", "nunique"), n=("n", "max"),
                positives=("positives", "max")).reset_index()
    multi = out["seeds"] > 1
    out["err_low"] = np.where(multi, out["auc_std"], out["auc"] - out["ci_low"])
    out["err_high"] = np.where(multi, out["auc_std"], out["ci_high"] - out["auc"])
    base = out[out["label"] == BASE_LABEL].set_index("scenario")["auc"]
    out["relaimpr"] = [relaimpr(a, base.get(s, float("nan"))) for s, a in zip(out["scenario"], out["auc"])]
    share = traffic_share or {}
    oracle = oracle_auc or {}
    pv = p_values or {}
    out["traffic_share"] = out["scenario"].map(lambda s: share.get(s, float("nan")))
    out["oracle_auc"] = out["scenario"].map(lambda s: oracle.get(s, float("nan")))
    out["p_value"] = [pv.get(s, float("nan")) if lab == "SAML" else float("nan")
                      for s, lab in zip(out["scenario"], out["label"])]
    saml_gain = out.set_index(["scenario", "label"])["relaimpr"]
    out["significant"] = [
        bool(lab == "SAML" and np.isfinite(p) and p < alpha_level and saml_gain.get((s, lab), 0) > 0)
        for s, lab, p in zip(out["scenario"], out["label"], out["p_value"])
    ]
    order_s = {s: i for i, s in enumerate(scenario_names)}
    out = out.sort_values(by=["scenario", "label"],
                          key=lambda col: col.map(order_s) if col.name == "scenario" else col.map(
                              lambda x: model_sort_key(x)[0]))
    return out[cols].reset_index(drop=True)


def per_scenario_wide(summary: pd.DataFrame, scenario_names: list[str]) -> pd.DataFrame:
    """Table for reading and CSV download: one row per scenario, AUC ± err per model."""
    if summary.empty:
        return pd.DataFrame()
    labels = _sorted_labels(summary["label"])
    rows = []
    for s in scenario_names:
        sub = summary[summary["scenario"] == s].set_index("label")
        if sub.empty:
            continue
        first = sub.iloc[0]
        row = {"Scenario": s, "Traffic share (%)": 100 * first["traffic_share"],
               "Test samples": first["n"], "Test clicks": first["positives"]}
        for lab in labels:
            if lab in sub.index:
                row[f"{lab} AUC"] = sub.at[lab, "auc"]
                if sub.at[lab, "seeds"] > 1:
                    row[f"{lab} AUC std"] = sub.at[lab, "auc_std"]
                else:
                    row[f"{lab} 95% CI"] = f"{sub.at[lab, 'ci_low']:.4f}–{sub.at[lab, 'ci_high']:.4f}"
        if "SAML" in sub.index:
            row["SAML RelaImpr vs BST (%)"] = sub.at["SAML", "relaimpr"]
            row["SAML vs BST p-value"] = sub.at["SAML", "p_value"]
            row["Significant (p<0.05)"] = "yes" if sub.at["SAML", "significant"] else "no"
        if np.isfinite(first["oracle_auc"]):
            row["Oracle AUC"] = first["oracle_auc"]
        rows.append(row)
    return pd.DataFrame(rows)


def history_frame(runs) -> pd.DataFrame:
    rows = []
    for r in finished_runs(runs):
        for e in r.history or []:
            rows.append({"run_id": r.run_id, "label": r.label, "seed": r.seed, **e})
    cols = ["run_id", "label", "seed", "epoch", "train_loss", "valid_auc", "valid_logloss", "seconds"]
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df:
            df[c] = np.nan
    return df[cols]


# ---- scenario correlations -------------------------------------------------------------

def alpha_matrix(alpha: np.ndarray, scenario: np.ndarray, layer: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean α of each scenario's samples (own branch) against every branch: [K, K], and counts [K].

    alpha: [Ly, N, K] own-branch α; diagonal is NaN (a branch is never compared with itself).
    """
    a = np.asarray(alpha[layer], dtype=np.float64)  # [N, K]
    scen = np.asarray(scenario).astype(int)
    counts = np.bincount(scen, minlength=k)[:k]
    sums = np.zeros((k, k))
    np.add.at(sums, scen, a)
    with np.errstate(invalid="ignore", divide="ignore"):
        mat = sums / counts[:, None]
    mat[counts == 0] = np.nan
    np.fill_diagonal(mat, np.nan)
    return mat, counts


def cluster_order(mat: np.ndarray) -> list[int]:
    """Hierarchical-clustering (average linkage) order of a similarity matrix, so groups sit together."""
    m = np.asarray(mat, dtype=np.float64)
    k = m.shape[0]
    if k < 3:
        return list(range(k))
    sym = (np.nan_to_num(m) + np.nan_to_num(m).T) / 2
    off = sym[~np.eye(k, dtype=bool)]
    lo, hi = off.min(), off.max()
    sim = (sym - lo) / (hi - lo) if hi > lo else np.zeros_like(sym)
    dist = 1.0 - sim
    np.fill_diagonal(dist, 0.0)
    return [int(i) for i in leaves_list(linkage(squareform(dist, checks=False), method="average"))]


def recovery_spearman(learned: np.ndarray, true: np.ndarray) -> float:
    """Spearman correlation of off-diagonal entries of the symmetrised learned matrix with the truth."""
    l = np.asarray(learned, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    l = (l + l.T) / 2
    t = (t + t.T) / 2
    iu = np.triu_indices_from(l, k=1)
    x, y = l[iu], t[iu]
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    rho = spearmanr(x[ok], y[ok]).statistic
    return float(rho)


def alpha_cdf_frame(alpha: np.ndarray, scenario: np.ndarray, layer: int, source: int,
                    names: list[str], max_points: int = 200) -> pd.DataFrame:
    """Empirical CDF of α_{source→j} over the source scenario's samples, one curve per other j."""
    a = np.asarray(alpha[layer], dtype=np.float64)[np.asarray(scenario) == source]  # [n_s, K]
    rows = []
    if a.shape[0] == 0:
        return pd.DataFrame(columns=["against", "alpha", "cdf", "n"])
    qs = np.linspace(0, 1, min(max_points, a.shape[0]) + 1)
    for j, name in enumerate(names):
        if j == source:
            continue
        vals = np.quantile(a[:, j], qs)  # quantile function = inverse CDF, at most max_points points
        rows.append(pd.DataFrame({"against": name, "alpha": vals, "cdf": qs, "n": a.shape[0]}))
    return pd.concat(rows, ignore_index=True)


def gate_frame(gate: np.ndarray, scenario: np.ndarray, layer: int, names: list[str]) -> pd.DataFrame:
    g = np.asarray(gate[layer], dtype=np.float64)
    scen = np.asarray(scenario).astype(int)
    return pd.DataFrame({"scenario": [names[i] for i in scen], "gate": g})


def gate_vs_traffic(gate_df: pd.DataFrame, traffic_share: dict, names: list[str]) -> pd.DataFrame:
    g = gate_df.groupby("scenario")["gate"].agg(["mean", "count"])
    rows = [{"scenario": s, "gate_mean": g.at[s, "mean"], "samples": int(g.at[s, "count"]),
             "traffic_share": traffic_share.get(s, float("nan"))}
            for s in names if s in g.index]
    return pd.DataFrame(rows, columns=["scenario", "gate_mean", "samples", "traffic_share"])


def fmt_share(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def saml_p_values(report: dict | None) -> dict[str, float]:
    """Per-scenario p-value of the paired test SAML vs BST from the engine's report (seed 0 first).

    Empty when the report has no such test (e.g. no BST run, or no predictions to pair).
    """
    if not report:
        return {}
    runs = report.get("runs") or []
    if isinstance(runs, dict):
        runs = [{"run_id": k, **v} for k, v in runs.items()]
    saml = [r for r in runs if r.get("label") == "SAML" or (r.get("model") == "saml" and r.get("variant") == "full")]
    saml.sort(key=lambda r: (r.get("seed") is None, r.get("seed")))
    for r in saml:
        per = r.get("per_scenario") or {}
        out = {}
        for s, m in per.items():
            if not isinstance(m, dict):
                continue
            test = m.get("vs_bst") if isinstance(m.get("vs_bst"), dict) else m
            p = test.get("p_value", test.get("p_vs_bst"))
            if isinstance(p, (int, float)) and np.isfinite(p):
                out[s] = float(p)
        if out:
            return out
    return {}
