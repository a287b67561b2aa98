"""Plain pandas/numpy shaping of what the pages show (no Streamlit, no file access, no statistics:
every test, mean, CI, verdict and RelaImpr comes from the engine's report, `saml_core.report.report`,
which calls `saml_core.evaluate`). Models are keyed by registry id; labels are for display only."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dashboard.colors import model_sort_key
from saml_core.models import registry as model_registry

VERDICT_MARK = {"better": "better ★", "worse": "worse ▼", "no detectable difference": "no detectable difference",
                "n/a": "n/a"}


def finished_runs(runs) -> list:
    return [r for r in runs if r.error is None and r.metrics]


def _sorted(df: pd.DataFrame, col: str = "model") -> pd.DataFrame:
    if df.empty:
        return df
    return df.sort_values(col, key=lambda c: c.map(model_sort_key), kind="stable").reset_index(drop=True)


def within_col(noun_one: str) -> str:
    return f"Within-{noun_one} AUC"


def overall_table(report: dict, noun_one: str = "scenario") -> pd.DataFrame:
    """The paper's Table II over seeds, led by the within-scenario AUC: one row per model (and
    sweep setting), then the two reference predictors (no training). Verdict, p and RelaImpr
    are those of the within-scenario AUC; the pooled AUC is the secondary column. Every column
    is the CSV download's."""
    within = within_col(noun_one)
    cols = ["Model", "Runs", within, f"{within} std", "Verdict vs BST", "p (vs BST)", "RelaImpr vs BST (%)",
            "Pooled AUC", "Logloss", "Flags", "Epochs", "Stopped at the cap while improving", "Train time (s)",
            "Note", "model"]
    flags: dict[str, list[str]] = {}
    for f in report.get("flags") or []:
        flags.setdefault(f["model"], []).append(f["text"])
    rows = []
    for s in report.get("summary") or []:
        v = (s.get("vs_reference") or {}).get("within") or {}
        sweep = f" ({s['sweep']['name']} {s['sweep']['value']})" if s.get("sweep") else ""
        w = s.get("within_auc") or {}
        rows.append({
            "model": s["model"], "Model": s["label"] + sweep, "Runs": s["n_runs"], within: w.get("mean"),
            f"{within} std": w.get("std") if s["n_runs"] > 1 else None,
            "RelaImpr vs BST (%)": v.get("relaimpr"),
            "Verdict vs BST": VERDICT_MARK.get(v.get("verdict"), "—") if v else "reference" if
            s["model"] == report["reference"]["model"] else "—",
            "p (vs BST)": v.get("p_value"), "Pooled AUC": s["auc"]["mean"], "Logloss": s["logloss"]["mean"],
            "Flags": "; ".join(flags.get(s["group"], [])), "Epochs": s["epochs_run"]["mean"],
            "Stopped at the cap while improving": _cap_text(s),
            "Train time (s)": (s["train_seconds"]["mean"] or 0) * s["n_runs"],
            "Note": " ".join(x for x in (v.get("verdict_note"), v.get("note")) if x),
        })
    df = _sorted(pd.DataFrame(rows, columns=cols))
    refs = pd.DataFrame([{"model": r["id"], "Model": f"{r['label'][:1].upper()}{r['label'][1:]} (reference)",
                          within: r["within_auc"]["mean"], "Pooled AUC": r["auc"]["mean"],
                          "Logloss": r["logloss"]["mean"], "Verdict vs BST": "no training",
                          "Flags": "", "Note": r.get("note") or ""} for r in report.get("references") or []],
                        columns=cols)
    if not df.empty and not refs.empty:
        df = pd.concat([df, refs], ignore_index=True)
    for col in (f"{within} std", "RelaImpr vs BST (%)", "p (vs BST)"):  # blanks say nothing: drop empty columns
        if col in df and df[col].isna().all():
            df = df.drop(columns=col)
    return df


def within_frame(report: dict) -> pd.DataFrame:
    """The headline chart's data: one row per model (and sweep setting) with its within-scenario
    AUC over runs and the whisker (± std over runs with several, else the 95 % CI), best first;
    the reference predictors apart (their within-scenario AUC is 0.5 by construction)."""
    cols = ["model", "group", "label", "within_auc", "err_low", "err_high", "runs"]
    rows = []
    for s in report.get("summary") or []:
        w = s.get("within_auc") or {}
        if w.get("mean") is None:
            continue
        multi = s["n_runs"] > 1 and w.get("std") is not None
        lo, hi = s.get("within_ci_low"), s.get("within_ci_high")
        sweep = f" ({s['sweep']['name']} {s['sweep']['value']})" if s.get("sweep") else ""
        rows.append({"model": s["model"], "group": s["group"], "label": s["label"] + sweep,
                     "within_auc": w["mean"],
                     "err_low": w["std"] if multi else (w["mean"] - lo if lo is not None else None),
                     "err_high": w["std"] if multi else (hi - w["mean"] if hi is not None else None),
                     "runs": s["n_runs"]})
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values("within_auc", ascending=False, kind="stable").reset_index(drop=True)


FLAG_WORDS = {"auc_below_chance": "AUC below chance (95 % CI entirely under 0.5)",
              "logloss_worse_than_constant": "logloss worse than the constant reference's"}


def flag_lines(report: dict) -> list[str]:
    """The report's flags, one line per model: its overall flags in full, then per kind the
    scenarios flagged (every flag's full text is in `report["flags"]`)."""
    by_model: dict[str, list[dict]] = {}
    for f in report.get("flags") or []:
        by_model.setdefault(f["model"], []).append(f)
    labels = {s["group"]: s["label"] for s in report.get("summary") or []}
    lines = []
    for model, fl in by_model.items():
        parts = [f["text"].split(": ", 1)[-1] for f in fl if f["scenario"] == "overall"]
        for kind, words in FLAG_WORDS.items():
            where = [f["scenario"] for f in fl if f["scenario"] != "overall" and f["kind"] == kind]
            if where:
                parts.append(f"{words} in {', '.join(where)}")
        lines.append(f"{labels.get(model, model)}: " + "; ".join(parts))
    return lines


def _cap_text(s: dict) -> str:
    runs, subs = s.get("improving_at_cap", 0), s.get("submodels_improving_at_cap", 0)
    if not runs and not subs:
        return "no"
    parts = ([f"{runs} of {s['n_runs']} runs"] if runs else []) + ([f"{subs} sub-models"] if subs else [])
    return "yes: " + ", ".join(parts)


def settings_lines(report: dict, noun_one: str) -> list[str]:
    """Plain words on how every model was trained (the same rule for all)."""
    ts = report.get("train_settings")
    if not ts:
        return []
    derived = ts.get("derived") or []
    out = [f"Every model: learning rate {ts['lr']:g}, batch size {ts['batch_size']}, patience {ts['patience']} "
           f"epochs, at least {ts['min_epochs']} epochs, at most {ts['epochs']}."]
    if derived:
        out.append("Derived from the size of the data: " + ", ".join(d.replace("_", " ") for d in derived) +
                   f". Models with one network per {noun_one} derive theirs from that {noun_one}'s own data.")
    return out


def per_scenario_long(report: dict) -> pd.DataFrame:
    """One row per (model group, scenario): AUC over runs, CI, counts, logloss, verdict vs BST (or
    why none), RelaImpr (or why none)."""
    cols = ["group", "model", "label", "scenario", "auc", "auc_std", "ci_low", "ci_high", "runs", "n", "positives",
            "logloss", "verdict", "verdict_note", "p_value", "p_holm", "relaimpr", "relaimpr_note", "ahead_in",
            "traffic_share", "oracle_auc"]
    rows = []
    share = report.get("traffic_share") or {}
    oracle = report.get("oracle_auc") or {}
    for s in report.get("summary") or []:
        if s.get("sweep"):
            continue
        v = s.get("vs_reference") or {}
        for name in report["scenario_names"]:
            c = s["per_scenario"][name]
            t = v.get(name) or {}
            rows.append({"group": s["group"], "model": s["model"], "label": s["label"], "scenario": name,
                         "auc": c["auc"]["mean"], "auc_std": c["auc"]["std"], "ci_low": c["ci_low"],
                         "ci_high": c["ci_high"], "runs": s["n_runs"], "n": c["n"], "positives": c["positives"],
                         "logloss": (c.get("logloss") or {}).get("mean"), "verdict": t.get("verdict"),
                         "verdict_note": t.get("verdict_note"), "p_value": t.get("p_value"), "p_holm": t.get("p_holm"),
                         "relaimpr": t.get("relaimpr"), "relaimpr_note": t.get("relaimpr_note"),
                         "ahead_in": f"{t['ahead_in']} of {t['runs']}" if t.get("runs") else None,
                         "traffic_share": share.get(name), "oracle_auc": oracle.get(name)})
    df = pd.DataFrame(rows, columns=cols)
    if df.empty:
        return df
    multi = df["runs"] > 1
    df["err_low"] = np.where(multi, df["auc_std"], df["auc"] - df["ci_low"])
    df["err_high"] = np.where(multi, df["auc_std"], df["ci_high"] - df["auc"])
    order = {n: i for i, n in enumerate(report["scenario_names"])}
    df["_s"] = df["scenario"].map(order)
    df["_m"] = df["model"].map(lambda m: model_sort_key(m)[0])
    return df.sort_values(["_s", "_m"]).drop(columns=["_s", "_m"]).reset_index(drop=True)


def per_scenario_wide(long_df: pd.DataFrame, names: list[str], noun_one: str, focus: str | None = None,
                      references: list[dict] | None = None) -> pd.DataFrame:
    """The table to read and download: one row per scenario, AUC per model, then the focus
    model's comparison with BST (verdict, p, Holm p, RelaImpr or why not), every model's logloss
    and the reference predictors' (whose AUC within a scenario is 0.5)."""
    if long_df.empty:
        return pd.DataFrame()
    models = sorted(long_df["model"].unique(), key=model_sort_key)
    focus = model_registry.focus_id(models) if focus is None else focus  # None: the registry's choice
    label = dict(zip(long_df["model"], long_df["label"]))
    rows = []
    for s in names:
        sub = long_df[long_df["scenario"] == s].set_index("model")
        if sub.empty:
            continue
        first = sub.iloc[0]
        row = {noun_one.capitalize(): s, "Traffic share (%)": 100 * (first["traffic_share"] or float("nan")),
               "Test samples": first["n"], "Test clicks": first["positives"],
               "Test non-clicks": first["n"] - first["positives"]}
        for m in models:
            if m in sub.index:
                row[f"{label[m]} AUC"] = sub.at[m, "auc"]
        if focus in sub.index and isinstance(sub.at[focus, "verdict"], str):
            f = sub.loc[focus]
            row[f"{label[focus]} vs BST"] = VERDICT_MARK.get(f["verdict"], f["verdict"])
            row["p"] = f["p_value"]
            row["p (Holm)"] = f["p_holm"]
            row["RelaImpr (%)"] = f["relaimpr"]
            if isinstance(f["verdict_note"], str):
                row["Why no verdict"] = f["verdict_note"].removeprefix("n/a: ")
            if pd.isna(f["relaimpr"]) and isinstance(f["relaimpr_note"], str):
                row["Why no RelaImpr"] = f["relaimpr_note"].removeprefix("n/a: ")
        if first["oracle_auc"] is not None and np.isfinite(first["oracle_auc"]):
            row["Oracle AUC"] = first["oracle_auc"]
        for m in models:
            if m in sub.index:
                row[f"{label[m]} logloss"] = sub.at[m, "logloss"]
        for r in references or []:
            row[f"{r['label'][:1].upper()}{r['label'][1:]}: logloss"] = r["per_scenario"][s]["logloss"]["mean"]
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in ("Why no verdict", "Why no RelaImpr"):
        if col in df:
            df[col] = df[col].fillna("")
    return df


def history_frame(runs) -> pd.DataFrame:
    rows = []
    for r in finished_runs(runs):
        for e in r.history or []:
            rows.append({"run_id": r.run_id, "model": r.model, "label": r.label, "seed": r.seed,
                         "data_seed": r.data_seed, **e})
    cols = ["run_id", "model", "label", "seed", "data_seed", "epoch", "train_loss", "valid_auc", "valid_logloss",
            "seconds"]
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df:
            df[c] = np.nan
    return df[cols]


SWEEP_WORDS = {"emb": "Embedding size d_g", "heads": "Attention heads", "depth": "MLP depth (layers)"}


def sweep_frame(report: dict) -> pd.DataFrame:
    """One row per (sweep dimension, model, value): AUC over runs with its spread or CI."""
    rows = []
    for s in report.get("summary") or []:
        sw = s.get("sweep")
        if not sw:
            continue
        auc = s["auc"]
        ci_runs = [r["overall"] for r in report["runs"] if r["group"] == s["group"] and r["overall"]]
        if s["n_runs"] > 1:
            low, high = auc["mean"] - auc["std"], auc["mean"] + auc["std"]
        else:
            low, high = ci_runs[0]["ci_low"], ci_runs[0]["ci_high"]
        rows.append({"sweep": sw["name"], "Setting": SWEEP_WORDS.get(sw["name"], sw["name"]), "value": sw["value"],
                     "model": s["model"], "Model": s["label"], "AUC": auc["mean"], "low": low, "high": high,
                     "runs": s["n_runs"]})
    df = pd.DataFrame(rows, columns=["sweep", "Setting", "value", "model", "Model", "AUC", "low", "high", "runs"])
    return df.sort_values(["sweep", "model", "value"], key=lambda c: c.map(model_sort_key) if c.name == "model"
                          else c).reset_index(drop=True)


def sweep_sentence(sub: pd.DataFrame) -> str:
    """Which setting scored best per model, and whether its interval separates it from the worst."""
    out = []
    for model, g in sub.groupby("model", sort=False):
        best, worst = g.loc[g["AUC"].idxmax()], g.loc[g["AUC"].idxmin()]
        sep = best["low"] > worst["high"]
        out.append(f"{best['Model']}: best at {best['value']} ({best['AUC']:.4f}), worst at {worst['value']} "
                   f"({worst['AUC']:.4f}) — " + ("intervals do not overlap." if sep else "intervals overlap."))
    return " ".join(out)


# ---- scenario correlations -------------------------------------------------------------

def scenario_counts(scenario: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(np.asarray(scenario).astype(int), minlength=k)[:k]


def cluster_order(mat: np.ndarray) -> list[int]:
    """Display order of a similarity matrix (average-linkage clustering), so similar rows sit together."""
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
    from scipy.cluster.hierarchy import leaves_list, linkage  # imported here: only the heatmaps need it
    from scipy.spatial.distance import squareform

    return [int(i) for i in leaves_list(linkage(squareform(dist, checks=False), method="average"))]


def alpha_cdf_frame(alpha: np.ndarray, scenario: np.ndarray, layer: int, source: int,
                    names: list[str], max_points: int = 200) -> pd.DataFrame:
    """Empirical CDF of α_{source→j} over the source scenario's samples, one curve per other j."""
    a = np.asarray(alpha[layer], dtype=np.float64)[np.asarray(scenario) == source]  # [n_s, K]
    if a.shape[0] == 0:
        return pd.DataFrame(columns=["against", "alpha", "cdf", "n"])
    qs = np.linspace(0, 1, min(max_points, a.shape[0]) + 1)
    rows = [pd.DataFrame({"against": name, "alpha": np.quantile(a[:, j], qs), "cdf": qs, "n": a.shape[0]})
            for j, name in enumerate(names) if j != source]
    return pd.concat(rows, ignore_index=True)


def gate_frame(gate: np.ndarray, scenario: np.ndarray, layer: int, names: list[str]) -> pd.DataFrame:
    g = np.asarray(gate[layer], dtype=np.float64)
    scen = np.asarray(scenario).astype(int)
    return pd.DataFrame({"scenario": [names[i] for i in scen], "gate": g})


def gate_vs_traffic(gate_df: pd.DataFrame, traffic_share: dict, names: list[str],
                    gate_init: dict | None = None, layer: int = 0) -> pd.DataFrame:
    g = gate_df.groupby("scenario")["gate"].agg(["mean", "count"])
    rows = []
    for s in names:
        if s not in g.index:
            continue
        init = ((gate_init or {}).get(s) or [None] * (layer + 1))
        start = init[layer] if layer < len(init) else None
        rows.append({"scenario": s, "gate_mean": g.at[s, "mean"], "samples": int(g.at[s, "count"]),
                     "traffic_share": traffic_share.get(s, float("nan")), "gate_init": start,
                     "gate_change": None if start is None else g.at[s, "mean"] - start})
    return pd.DataFrame(rows, columns=["scenario", "gate_mean", "samples", "traffic_share", "gate_init",
                                       "gate_change"])


def fmt_share(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def test_samples_line(exp) -> str | None:
    """How many test samples the results stand on: per data seed when there are several (each
    data seed is its own simulated log or split; their sum would count no one test set)."""
    per_seed = {}
    for d in exp.data_seeds:
        try:  # experiment.json is shared input: any shape it has, the sidebar still renders
            counts = exp.raw["splits"][str(d)]["test_counts"]
            per_seed[d] = sum(int(counts[s]["n"]) for s in exp.scenario_names)
        except (KeyError, TypeError, ValueError, AttributeError):
            per_seed = {}
            break
    if len(per_seed) > 1:
        if len(set(per_seed.values())) == 1:
            return f"{len(per_seed)} data seeds of {next(iter(per_seed.values())):,} test samples each"
        return "test samples per data seed: " + " / ".join(f"{per_seed[d]:,}" for d in sorted(per_seed))
    n_test = next(iter(per_seed.values()), None) or sum(
        int((exp.test_counts or {}).get(s, {}).get("n", 0)) for s in exp.scenario_names)
    if not n_test:
        return None
    return f"{n_test:,} test samples" + (f" (summed over {len(exp.data_seeds)} data seeds)"
                                         if len(exp.data_seeds) > 1 and not per_seed else "")


# ---- the run analyses: transfer, relations side by side, importance (saml_core.analyses/relations) ----
def _ci(low, high, fmt: str = "+.4f") -> str:
    return "CI n/a" if low is None or high is None else f"95 % CI {low:{fmt}} to {high:{fmt}}"


def _f(x, fmt: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def transfer_view(m: dict, names: list[str], noun_one: str, what: str) -> dict:
    """One model's transfer matrix (report doc["transfer"]["models"][i]) ready for
    `charts.matrix_heatmap`: row s = s's part (or s's own model), column t = t's test rows;
    what="auc": the AUC there; what="loss": the AUC lost against t's own part (diagonal 0).
    Scenarios too small to compare are grey, with the reason."""
    k = len(names)
    auc, loss = np.asarray(m["auc"], dtype=float), np.asarray(m["loss"], dtype=float)

    def cell(key, s, t):
        v = m.get(key)
        return None if v is None or v[s][t] is None else float(v[s][t])

    hover, grey_hover = [], []
    for s in range(k):
        row, grow = [], []
        for t in range(k):
            head = f"{noun_one} {names[t]}'s test rows scored by {names[s]}'s part"
            worse = bool(m["worse_in_every_run"][s][t])
            better = bool(m["better_in_every_run"][s][t])
            row.append(f"{head}<br>AUC {_f(cell('auc', s, t), '.4f')} ({_ci(cell('ci_low', s, t), cell('ci_high', s, t), '.4f')})"
                       + ("" if s == t else f"<br>lost against {names[t]}'s own part: {_f(cell('loss', s, t), '+.4f')} "
                                            f"({_ci(cell('loss_ci_low', s, t), cell('loss_ci_high', s, t))})")
                       + ("<br>worse than the own part in every run" if worse else "")
                       + ("<br>better than the own part in every run" if better else ""))
            why = m["too_small"].get(names[t]) or m["too_small"].get(names[s])
            grow.append(f"{head}: left out, {why}" if why else "")
        hover.append(row)
        grey_hover.append(grow)
    small = np.array([n in m["too_small"] for n in names])
    grey = small[None, :] | small[:, None]
    mat = auc if what == "auc" else loss
    marks = np.asarray(m["worse_in_every_run"], dtype=bool) if what == "loss" else np.zeros((k, k), dtype=bool)
    return {"mat": mat, "hover": hover, "grey": grey, "grey_hover": grey_hover, "marks": marks}


def agreement_frame(relations: dict) -> pd.DataFrame:
    """Every pair of relation signals (report doc["relations"]["pairs"]): rank agreement over the
    scenario pairs, mean ± std over the runs both have, in how many runs the Mantel test says so."""
    rows = []
    for p in relations.get("pairs") or []:
        sp = p["spearman"]
        rows.append({"Signal": p["label_a"], "Other signal": p["label_b"], "Spearman": sp["mean"],
                     "std": sp["std"] if sp["n"] > 1 else None, "Runs": p["runs"],
                     "Mantel p < 0.05 in": f"{p['significant_in']} of {p['runs']}",
                     "Holds in every run": "yes" if p["holds_in_every_run"] else "no"})
    df = pd.DataFrame(rows, columns=["Signal", "Other signal", "Spearman", "std", "Runs", "Mantel p < 0.05 in",
                                     "Holds in every run"])
    return df.sort_values("Spearman", ascending=False, kind="stable").reset_index(drop=True)


def agreement_view(relations: dict, label_chars: int = 20) -> dict:
    """The signals' agreement as a matrix for `charts.matrix_heatmap` (Spearman of every pair,
    ✓ where it holds in every run); axis labels numbered and cut, the full names in the hover."""
    sigs = relations.get("signals") or []
    ids = [s["id"] for s in sigs]
    label = {s["id"]: s["label"] for s in sigs}
    n = len(ids)
    mat = np.full((n, n), np.nan)
    marks = np.zeros((n, n), dtype=bool)
    hover = [[label[a] for _ in ids] for a in ids]
    for p in relations.get("pairs") or []:
        if p["a"] not in ids or p["b"] not in ids:
            continue
        i, j = ids.index(p["a"]), ids.index(p["b"])
        sp = p["spearman"]
        text = (f"{label[p['a']]}<br>vs {label[p['b']]}<br>Spearman {_f(sp['mean'], '+.2f')}"
                + (f" ± {sp['std']:.2f} over {sp['n']} runs" if sp["n"] > 1 else "")
                + f"<br>Mantel p < 0.05 in {p['significant_in']} of {p['runs']} run{'s' * (p['runs'] != 1)}")
        for a, b in ((i, j), (j, i)):
            mat[a, b] = np.nan if sp["mean"] is None else sp["mean"]
            marks[a, b] = p["holds_in_every_run"]
            hover[a][b] = text
    short = [f"{i + 1}. " + (label[x] if len(label[x]) <= label_chars else label[x][:label_chars - 1] + "…")
             for i, x in enumerate(ids)]
    return {"mat": mat, "marks": marks, "hover": hover, "labels": short}


def importance_view(m: dict, names: list[str], noun_one: str) -> dict:
    """One model's importance (report doc["importance"]["models"][i]) for `charts.matrix_heatmap`:
    row = scenario, column = input, the mean AUC lost when the input is shuffled within that
    scenario's test rows, ✓ where it holds in every seed; cells without an AUC grey."""
    inputs = [i["name"] for i in m["inputs"]]
    k, n_in = len(names), len(inputs)
    by = {(c["scenario"], c["input"]): c for c in m["cells"]}
    mat = np.full((k, n_in), np.nan)
    marks = np.zeros((k, n_in), dtype=bool)
    grey = np.zeros((k, n_in), dtype=bool)
    hover, grey_hover = [], []
    for s, scen in enumerate(names):
        row, grow = [], []
        for i, inp in enumerate(inputs):
            c = by.get((scen, inp))
            a = (c or {}).get("drop_auc") or {}
            if c is None or a.get("mean") is None:
                grey[s, i] = True
                row.append("")
                grow.append(f"{noun_one} {scen}, {inp}: no AUC to lose (too few clicks or non-clicks in its test rows)")
                continue
            mat[s, i] = a["mean"]
            marks[s, i] = bool(a.get("holds_in_every_seed"))
            ll = c.get("drop_logloss") or {}
            row.append(f"{noun_one} {scen}, {inp} shuffled within its test rows<br>AUC lost {a['mean']:+.4f} "
                       f"({_ci(a.get('ci_low'), a.get('ci_high'))})<br>significant in {a.get('significant_in')} of "
                       f"{a.get('runs')} run{'s' * (a.get('runs') != 1)}<br>logloss up {_f(ll.get('mean'), '+.4f')}"
                       f"<br>AUC unshuffled {_f((c.get('base_auc') or {}).get('mean'), '.4f')} on {c.get('rows')} rows")
            grow.append("")
        hover.append(row)
        grey_hover.append(grow)
    return {"mat": mat, "marks": marks, "grey": grey, "hover": hover, "grey_hover": grey_hover, "inputs": inputs}
