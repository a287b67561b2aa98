"""Read side of the run analyses (transfer.json, importance.json; docs/ARTIFACTS.md): which runs
have or lack them, and their summaries over the runs (model seeds and data seeds) of each model,
with the computed sentences the report and the pages show. numpy/scipy only, never writes.

transfer_summary(exp): per model, the mean K x K AUC of s's part on t's rows and the loss of AUC
against t's own part (mean, spread and mean CIs over runs), the cells where s's part is worse (or
better) in every run, the most and least interchangeable pairs, the sentence.

importance_summary(exp): per model, per scenario and input the mean drop of AUC and rise of
logloss over runs with a 95 % CI and whether it holds in every run, the inputs whose importance
differs between scenarios (`differs`, Wald test below, Holm-adjusted over inputs), the inputs that
matter nowhere, the sentences. `importance_table` is the same as CSV rows.

The CI of a cell: per run, the mean drop over repeats with variance = its test-sampling variance
(stored by the run: paired DeLong of the AUC contrast, weighted per-row differences for the
logloss) + the variance over repeats / repeats (the shuffles' own spread); over runs,
`evaluate.seed_mean_test` (the mean of the runs' variances + the variance of the run means / runs:
conservative where runs share a test split).
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np

from saml_core import artifacts as art
from saml_core import evaluate as ev
from saml_core.artifacts import ArtifactError

TRANSFER, IMPORTANCE = "transfer", "importance"
TRANSFER_FILE, IMPORTANCE_FILE = "transfer.json", "importance.json"
FILES = {TRANSFER: TRANSFER_FILE, IMPORTANCE: IMPORTANCE_FILE}
VERSION = 1  # schema_version of both files (their own, apart from the run's other files)
Z95 = NormalDist().inv_cdf(0.975)  # the standard library's: the report imports no scipy (evaluate.py)


def expected_analyses(entry, keep_weights: bool) -> tuple[str, ...]:
    """The analyses a run of this model has: the transfer matrix when its registry entry has the
    "transfer" probe, the importance when the run keeps its weights."""
    out = []
    if entry is not None and "transfer" in entry.probes:
        out.append(TRANSFER)
    if keep_weights:
        out.append(IMPORTANCE)
    return tuple(out)


def _entry(model_id):
    from saml_core.models import registry

    return registry.find(model_id)


def missing(exp) -> dict[str, list[str]]:
    """{run id: analyses it lacks} over the finished runs whose model.pt is kept, i.e. those the
    analyses job can compute (a run without weights that lacks its transfer matrix stays without)."""
    out = {}
    for run in exp.runs:
        if not run.finished or run.metrics.get("weights_kept") is False or not (run.path / "model.pt").exists():
            continue
        entry = _entry(run.model)
        if entry is None:  # a model this version does not know cannot be rebuilt
            continue
        lack = [a for a in expected_analyses(entry, True) if not (run.path / FILES[a]).exists()]
        if lack:
            out[run.run_id] = lack
    return out


# reading -------------------------------------------------------------------------------------
def _read(run, which: str, names: list[str]) -> dict | None:
    path = run.path / FILES[which]
    if not path.exists():
        return None
    doc = art.read_json(path, versioned=False)
    v = doc.get("schema_version")
    if isinstance(v, bool) or v != VERSION:
        raise ArtifactError(path, f"incompatible schema_version {v!r} (this saml_core reads {VERSION}); "
                                  "delete the file and compute it again (analyses job)")
    if doc.get("scenarios") != list(names):
        raise ArtifactError(path, f"field 'scenarios' does not list exactly the scenarios {names}")
    return doc


def _array(path, doc: dict, key: str, shape: tuple) -> np.ndarray:
    """A nested list of numbers (None = NaN) of the given shape, as floats."""
    def num(x):
        if x is None:
            return np.nan
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ArtifactError(path, f"field '{key}' holds {x!r:.40}, not a number")
        return float(x)

    try:
        arr = np.vectorize(num, otypes=[float])(np.array(doc.get(key), dtype=object)) \
            if doc.get(key) is not None else None
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != shape:
        raise ArtifactError(path, f"field '{key}' is not an array of shape {shape}")
    if not np.all(np.isfinite(arr) | np.isnan(arr)):
        raise ArtifactError(path, f"field '{key}' holds a number that is not finite")
    return arr


def read_transfer(run, names: list[str]) -> dict | None:
    """transfer.json of a run with its matrices as [K, K] float arrays (NaN = null), None when the
    run has none; ArtifactError naming the file when it is unusable."""
    doc = _read(run, TRANSFER, names)
    if doc is None:
        return None
    path, k = run.path / TRANSFER_FILE, len(names)
    for key in ("auc", "ci_low", "ci_high", "loss", "loss_ci_low", "loss_ci_high"):
        doc[key] = _array(path, doc, key, (k, k))
    for key in ("n", "positives"):
        if not isinstance(doc.get(key), list) or len(doc[key]) != k or \
                not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= art.MAX_COUNT for x in doc[key]):
            raise ArtifactError(path, f"field '{key}' is not {k} counts")
    if not isinstance(doc.get("too_small"), dict):
        raise ArtifactError(path, "field 'too_small' is missing")
    return doc


def read_importance(run, names: list[str]) -> dict | None:
    """importance.json of a run with drop_auc, drop_logloss as [K, I, R] and var_auc, var_logloss as
    [K, I] float arrays (NaN = null), None when the run has none; ArtifactError naming the file
    when it is unusable."""
    doc = _read(run, IMPORTANCE, names)
    if doc is None:
        return None
    path = run.path / IMPORTANCE_FILE
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str)
                                               and i.get("kind") in ("categorical", "numeric", "sequence")
                                               for i in inputs):
        raise ArtifactError(path, "field 'inputs' is not a list of {name, kind}")
    r = doc.get("n_repeats")
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 10_000:
        raise ArtifactError(path, f"field 'n_repeats' should be a whole number from 1 to 10,000, got {r!r:.40}")
    shape = (len(names), len(inputs), r)
    for key in ("drop_auc", "drop_logloss"):
        doc[key] = _array(path, doc, key, shape)
    for key in ("var_auc", "var_logloss"):
        doc[key] = _array(path, doc, key, shape[:2])
    if not isinstance(doc.get("base"), dict) or set(doc["base"]) != set(names):
        raise ArtifactError(path, "field 'base' does not hold one cell per scenario")
    return doc


def _docs(exp, read) -> tuple[dict[str, list], list[str]]:
    """{run group: [(run, doc)]} of the finished runs that have the file, and notes on the broken."""
    groups: dict[str, list] = {}
    notes = []
    for run in exp.runs:
        if not run.finished:
            continue
        try:
            doc = read(run, exp.scenario_names)
        except ArtifactError as exc:
            notes.append(f"{exc}; this run is left out")
            continue
        if doc is not None:
            groups.setdefault(run.group, []).append((run, doc))
    return groups, notes


def _ms_matrix(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std over axis 0) ignoring NaN, without warnings for all-NaN cells."""
    finite = np.isfinite(stack)
    n = finite.sum(0)
    total = np.where(finite, stack, 0.0).sum(0)
    mean = np.divide(total, n, out=np.full(n.shape, np.nan), where=n > 0)
    dev = np.where(finite, stack - mean, 0.0)
    std = np.sqrt(np.divide((dev ** 2).sum(0), n - 1, out=np.zeros(n.shape), where=n > 1))
    return mean, np.where(n > 0, std, np.nan)


def _order(entry_model: str) -> int:
    e = _entry(entry_model)
    return e.order if e is not None else 999


# transfer ------------------------------------------------------------------------------------
def transfer_similarity(loss: np.ndarray) -> np.ndarray:
    """Transfer as a similarity of two scenarios: minus the AUC each loses when the other's part
    scores its rows, averaged over both directions ((L + L^T) / 2, L[s, t] = loss of t under s);
    0 on the diagonal, higher = more interchangeable."""
    loss = np.asarray(loss, dtype=np.float64)
    sim = -(loss + loss.T) / 2
    np.fill_diagonal(sim, 0.0)
    return sim


def _pairs_text(names, pairs, values, fmt="+.3f") -> str:
    return ", ".join(f"{names[a]}–{names[b]} ({values[a, b]:{fmt}})" for a, b in pairs)


def transfer_summary(exp) -> dict:
    """{"scenarios", "models": [per model group, see the module docstring], "notes", "sentence"}."""
    names = exp.scenario_names
    noun, nouns = exp.scenario_noun
    k = len(names)
    groups, notes = _docs(exp, read_transfer)
    models = []
    for group, items in sorted(groups.items(), key=lambda g: (_order(g[1][0][0].model), g[0])):
        run0, doc0 = items[0]
        auc = np.stack([d["auc"] for _, d in items])
        loss = np.stack([d["loss"] for _, d in items])
        auc_mean, auc_std = _ms_matrix(auc)
        loss_mean, loss_std = _ms_matrix(loss)
        off = ~np.eye(k, dtype=bool)
        low = np.stack([d["loss_ci_low"] for _, d in items])
        high = np.stack([d["loss_ci_high"] for _, d in items])
        worse = off & np.all(low > 0, axis=0)  # NaN compares False: a missing cell never holds
        better = off & np.all(high < 0, axis=0)
        too_small = {}
        for _, d in items:
            for name, why in d["too_small"].items():
                too_small.setdefault(name, why)
        usable = np.array([n not in too_small for n in names])
        sim = transfer_similarity(loss_mean)
        m = {"group": group, "model": run0.model, "label": run0.label, "how": doc0.get("how"),
             "runs": [r.run_id for r, _ in items], "n_runs": len(items), "rows_cap": doc0.get("rows_cap"),
             "auc": auc_mean, "auc_std": auc_std, "ci_low": _ms_matrix(np.stack([d["ci_low"] for _, d in items]))[0],
             "ci_high": _ms_matrix(np.stack([d["ci_high"] for _, d in items]))[0],
             "loss": loss_mean, "loss_std": loss_std, "loss_ci_low": _ms_matrix(low)[0],
             "loss_ci_high": _ms_matrix(high)[0], "worse_in_every_run": worse, "better_in_every_run": better,
             "too_small": too_small, "similarity": sim,
             "n": [int(np.mean([d["n"][t] for _, d in items])) for t in range(k)],
             "positives": [int(np.mean([d["positives"][t] for _, d in items])) for t in range(k)],
             "seconds": ev.mean_std(d.get("seconds") for _, d in items)}
        cells = off & usable[None, :] & usable[:, None] & np.isfinite(loss_mean)
        m["sentence"] = _transfer_sentence(m, names, cells, noun, nouns)
        models.append(m)
    return art.clean_json({"scenarios": names, "models": models, "notes": notes,
                           "sentence": " ".join(m["sentence"] for m in models)})


def _transfer_sentence(m: dict, names, cells, noun, nouns) -> str:
    runs = f"{m['n_runs']} run{'s' * (m['n_runs'] != 1)}"
    if not cells.any():
        return (f"{m['label']} ({runs}): no pair of {nouns} has enough clicks and non-clicks in its test rows "
                "to compare transfer.")
    loss, sim = m["loss"], m["similarity"]
    vals = loss[cells]
    worse, better = int((m["worse_in_every_run"] & cells).sum()), int((m["better_in_every_run"] & cells).sum())
    pairs = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names)) if cells[a, b] and cells[b, a]]
    pairs.sort(key=lambda p: -sim[p])
    over = ", mean over runs" if m["n_runs"] > 1 else ""
    out = (f"{m['label']} ({runs}{over}): a {noun}'s test rows scored by another {noun}'s part instead of "
           f"their own lose {np.mean(vals):+.3f} AUC on average (from {vals.min():+.3f} to {vals.max():+.3f} by pair; "
           f"negative: the other part scores them better); the other part is worse in every run in {worse} of "
           f"{int(cells.sum())} cells" + (f" and better in every run in {better}" if better else "") + ".")
    if len(pairs) >= 2:
        n_show = min(3, len(pairs) // 2)
        negloss = -sim
        out += (f" Most interchangeable: {_pairs_text(names, pairs[:n_show], negloss)}; least: "
                f"{_pairs_text(names, pairs[::-1][:n_show], negloss)} (mean loss of both directions).")
    if m["too_small"]:
        out += f" Left out: {', '.join(m['too_small'])} (too few clicks or non-clicks in the test rows)."
    return out


# importance ----------------------------------------------------------------------------------
def _run_cell(d: np.ndarray, v: float) -> dict | None:
    """One run's importance of a cell from its repeats d [R] and the test-sampling variance v of
    their mean: {"auc_diff": mean, "var": v + the variance over repeats / R} in
    evaluate.seed_mean_test's shape (None when every repeat is null)."""
    ok = np.isfinite(d)
    if not ok.any():
        return None
    dd = d[ok]
    var = float(v) if np.isfinite(v) else 0.0
    if len(dd) > 1:
        var += float(np.var(dd, ddof=1)) / len(dd)
    return {"auc_diff": float(dd.mean()), "var": var}


def _cell(tests: list[dict | None]) -> dict:
    """Mean over runs with its CI, per-run significance, holds-in-every-seed."""
    ok = [t for t in tests if t is not None]
    if not ok:
        return {"mean": None, "std": None, "ci_low": None, "ci_high": None, "significant_in": 0, "runs": 0,
                "holds_in_every_seed": False}
    comb = ev.seed_mean_test(ok)
    half = Z95 * np.sqrt(comb["var"])
    sig = sum(t["auc_diff"] - Z95 * np.sqrt(t["var"]) > 0 for t in ok)
    means = [t["auc_diff"] for t in ok]
    return {"mean": comb["auc_diff"], "std": float(np.std(means, ddof=1)) if len(ok) > 1 else 0.0,
            "ci_low": comb["auc_diff"] - half, "ci_high": comb["auc_diff"] + half, "significant_in": int(sig),
            "runs": len(ok), "holds_in_every_seed": bool(sig == len(ok))}


def differs_test(run_means: np.ndarray, run_vars: np.ndarray) -> dict:
    """Does one input's importance differ between scenarios? run_means, run_vars [runs, K']: per
    run (model and data seed) and scenario, the mean drop over repeats and its variance.

    Wald test of "equal in every scenario": m = the mean over runs, its covariance Sigma =
    diag(mean over runs of the within-run variances) + the covariance of the run means over runs
    / runs (this second part pairs the scenarios by run: a seed that makes the input matter more
    everywhere moves them together and cancels in the contrasts); W = (Lm)' (L Sigma L')^+ (Lm)
    with L the K'-1 contrasts against the last scenario, chi-square with rank(L Sigma L') degrees
    of freedom. scipy's Friedman or Wilcoxon tests on the repeats alone would miss the test-row
    sampling variance and call any per-scenario wobble of a model significant."""
    n_runs, k = run_means.shape
    if k < 2:
        return {"statistic": None, "df": 0, "p_value": None}
    m = run_means.mean(0)
    sigma = np.diag(run_vars.mean(0))
    if n_runs > 1:
        sigma = sigma + np.cov(run_means, rowvar=False, ddof=1).reshape(k, k) / n_runs
    contrast = np.hstack([np.eye(k - 1), -np.ones((k - 1, 1))])
    lm, ls = contrast @ m, contrast @ sigma @ contrast.T
    df = int(np.linalg.matrix_rank(ls, tol=1e-15))
    if df == 0:
        return {"statistic": None, "df": 0, "p_value": 1.0 if np.allclose(lm, 0) else None}
    w = float(lm @ np.linalg.pinv(ls, rcond=1e-12, hermitian=True) @ lm)
    return {"statistic": w, "df": df, "p_value": ev.chi2_sf(w, df)}


def importance_summary(exp) -> dict:
    """{"scenarios", "models": [per model group, see the module docstring], "notes", "sentence"}."""
    names = exp.scenario_names
    noun, nouns = exp.scenario_noun
    groups, notes = _docs(exp, read_importance)
    models = []
    for group, items in sorted(groups.items(), key=lambda g: (_order(g[1][0][0].model), g[0])):
        run0, doc0 = items[0]
        inputs = doc0["inputs"]
        same = [(r, d) for r, d in items if d["inputs"] == inputs]
        for r, _ in items:
            if not any(r is s for s, _ in same):
                notes.append(f"{r.run_id}: its importance.json lists other inputs than {run0.run_id}'s; left out")
        models.append(_importance_model(group, same, names, noun, nouns))
    return art.clean_json({"scenarios": names, "models": models, "notes": notes,
                           "sentence": " ".join(" ".join(m["sentences"]) for m in models)})


def _importance_model(group: str, items: list, names: list[str], noun: str, nouns: str) -> dict:
    run0, doc0 = items[0]
    inputs = doc0["inputs"]
    k, n_in = len(names), len(inputs)
    cells, table = [], {}
    for s, scen in enumerate(names):
        for i, inp in enumerate(inputs):
            auc = _cell([_run_cell(d["drop_auc"][s, i], d["var_auc"][s, i]) for _, d in items])
            ll = _cell([_run_cell(d["drop_logloss"][s, i], d["var_logloss"][s, i]) for _, d in items])
            cell = {"scenario": scen, "input": inp["name"], "kind": inp["kind"], "drop_auc": auc, "drop_logloss": ll,
                    "base_auc": ev.mean_std(d["base"][scen].get("auc") for _, d in items),
                    "rows": int(np.mean([d["base"][scen].get("n") or 0 for _, d in items]))}
            cells.append(cell)
            table[s, i] = cell
    differs = []
    for i, inp in enumerate(inputs):
        runs_m, runs_v = [], []
        for _, d in items:
            per = [_run_cell(d["drop_auc"][s, i], d["var_auc"][s, i]) for s in range(k)]
            runs_m.append([np.nan if c is None else c["auc_diff"] for c in per])
            runs_v.append([np.nan if c is None else c["var"] for c in per])
        rm, rv = np.array(runs_m), np.array(runs_v)
        keep = np.all(np.isfinite(rm), axis=0)  # scenarios with an AUC drop in every run
        test = differs_test(rm[:, keep], rv[:, keep]) if keep.sum() >= 2 else \
            {"statistic": None, "df": 0, "p_value": None}
        order = [s for s in np.argsort(-rm[:, keep].mean(0))] if keep.any() else []
        kept = np.flatnonzero(keep)
        differs.append({"input": inp["name"], "kind": inp["kind"], **test, "scenarios_tested": int(keep.sum()),
                        "highest": names[kept[order[0]]] if order else None,
                        "lowest": names[kept[order[-1]]] if order else None})
    for d, p in zip(differs, ev.holm([d["p_value"] for d in differs])):
        d["p_holm"] = p
        d["significant"] = p is not None and p < ev.ALPHA
    defined = [s for s in range(k) if any(np.isfinite(d["drop_auc"][s]).any() for _, d in items)]
    nowhere = [inp["name"] for i, inp in enumerate(inputs)
               if defined and all(table[s, i]["drop_auc"]["ci_low"] is None or table[s, i]["drop_auc"]["ci_low"] <= 0
                                  for s in defined)]
    mean = np.full((k, n_in), np.nan)
    for (s, i), c in table.items():
        if c["drop_auc"]["mean"] is not None:
            mean[s, i] = c["drop_auc"]["mean"]
    m = {"group": group, "model": run0.model, "label": run0.label, "runs": [r.run_id for r, _ in items],
         "n_runs": len(items), "inputs": inputs, "n_repeats": doc0.get("n_repeats"),
         "random_state": doc0.get("random_state"), "rows_cap": doc0.get("rows_cap"), "cells": cells,
         "mean_drop_auc": mean, "profile_similarity": profile_similarity(mean), "differs": differs,
         "matters_nowhere": nowhere, "seconds": ev.mean_std(d.get("seconds") for _, d in items),
         "train_seconds": ev.mean_std(d.get("train_seconds") for _, d in items),
         "cost_share": ev.mean_std(d["seconds"] / d["train_seconds"] for _, d in items
                                   if isinstance(d.get("seconds"), (int, float)) and
                                   isinstance(d.get("train_seconds"), (int, float)) and d["train_seconds"] > 0)}
    m["sentences"] = _importance_sentences(m, table, names, noun, nouns)
    return m


def profile_similarity(importance: np.ndarray) -> np.ndarray:
    """[K, I] importance of every input per scenario -> [K, K] Spearman rank correlation of two
    scenarios' importance profiles (1 = the inputs matter in the same order; NaN where a profile
    is missing or constant)."""
    imp = np.asarray(importance, dtype=np.float64)
    k = imp.shape[0]
    out = np.full((k, k), np.nan)
    for a in range(k):
        for b in range(a, k):
            rho = ev.spearman(imp[a], imp[b])  # no p-value needed: no scipy.stats import in the report
            out[a, b] = out[b, a] = np.nan if rho is None else rho
    return out


def _importance_sentences(m: dict, table: dict, names, noun, nouns) -> list[str]:
    runs = f"{m['n_runs']} run{'s' * (m['n_runs'] != 1)}"
    label = f"{m['label']} ({runs})"
    idx = {inp["name"]: i for i, inp in enumerate(m["inputs"])}

    def at(scen, inp):
        c = table[names.index(scen), idx[inp]]["drop_auc"]
        return f"{scen} {c['mean']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"

    sig = [d for d in m["differs"] if d["significant"]]
    tested = [d for d in m["differs"] if d["p_holm"] is not None]
    if not tested:
        first = f"{label}: no input's importance can be compared between {nouns} (too few with an AUC)."
    elif sig:
        sig.sort(key=lambda d: d["p_holm"])
        first = (f"{label}: the importance of {len(sig)} of {len(tested)} inputs differs between {nouns} (Wald test, "
                 "Holm-adjusted p < 0.05): " + "; ".join(
                     f"{d['input']} (p = {d['p_holm']:.2g}; most in {at(d['highest'], d['input'])}, least in "
                     f"{at(d['lowest'], d['input'])})" for d in sig) + ".")
    else:
        first = f"{label}: no input's importance differs detectably between {nouns} (Wald test, Holm-adjusted)."
    out = [first]
    if m["matters_nowhere"]:
        out.append(f"Shuffling {', '.join(m['matters_nowhere'])} lowers no {noun}'s AUC beyond chance: "
                   f"{'they matter' if len(m['matters_nowhere']) > 1 else 'it matters'} nowhere for this model.")
    held = sorted({c["input"] for c in m["cells"] if c["drop_auc"]["holds_in_every_seed"]}, key=idx.get)
    if m["n_runs"] > 1 and held:
        out.append(f"Important in every run in at least one {noun}: {', '.join(held)}.")
    return out


def importance_table(summary: dict, noun: tuple[str, str] = ("scenario", "scenarios")) -> list[dict]:
    """The importance table as rows (one per model, scenario and input) for a CSV download or a
    DataFrame; `summary` is `importance_summary(exp)` (or the report's doc["importance"]), `noun`
    the experiment's scenario noun (column names)."""
    one, many = noun
    rows = []
    for m in summary.get("models") or []:
        p = {d["input"]: d.get("p_holm") for d in m["differs"]}
        for c in m["cells"]:
            a, ll = c["drop_auc"], c["drop_logloss"]
            rows.append({"model": m["label"], one: c["scenario"], "input": c["input"], "kind": c["kind"],
                         "AUC drop (mean over runs)": a["mean"], "AUC drop std over runs": a["std"],
                         "AUC drop CI low": a["ci_low"], "AUC drop CI high": a["ci_high"],
                         "significant in runs": a["significant_in"], "runs": a["runs"],
                         "holds in every seed": a["holds_in_every_seed"],
                         "logloss rise (mean over runs)": ll["mean"], "logloss rise CI low": ll["ci_low"],
                         "logloss rise CI high": ll["ci_high"], f"{one} AUC (unshuffled)": c["base_auc"]["mean"],
                         "test rows used": c["rows"], f"differs between {many}: p (Holm)": p.get(c["input"])})
    return rows
