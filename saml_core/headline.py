"""What a report leads with: the two reference predictors every experiment is read against,
the flags said in words, and the one computed sentence the Overview opens with.

The headline metric is the within-scenario AUC (`evaluate.within_auc`): the AUC pooled over
scenarios also rewards knowing which scenario clicks more, which a predictor that knows nothing
else already does. The references need no training: they come from what an experiment stores
(its test labels and, per data seed, the train rows and clicks of every scenario, the
`train_counts` of experiment.json's splits). Never from the test click rates: that would score
the test labels with themselves. numpy only; `saml_core.report.report` calls this.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from saml_core import evaluate as ev

SCENARIO_CTR, CONSTANT = "scenario_ctr", "constant"
# The simple references the sentence names when present: the logistic regression on target
# encodings (a model of the registry) and the scenario click rate (computed here).
SIMPLE_MODEL = "lr_te"


def reference_label(ref_id: str, noun_one: str) -> str:
    return {SCENARIO_CTR: f"{noun_one} click rate only", CONSTANT: "constant (train click rate)"}[ref_id]


def reference_predictions(train_counts: dict, names: list[str], scen: np.ndarray) -> dict[str, np.ndarray]:
    """{reference id: [N] predictions} for one test split: every row scored by its scenario's train
    click rate, or by the overall train click rate."""
    n = np.array([train_counts[s]["n"] for s in names], dtype=np.float64)
    pos = np.array([train_counts[s]["positives"] for s in names], dtype=np.float64)
    rate = np.divide(pos, n, out=np.full(len(names), pos.sum() / max(n.sum(), 1.0)), where=n > 0)
    return {SCENARIO_CTR: rate[scen], CONSTANT: np.full(len(scen), pos.sum() / max(n.sum(), 1.0))}


def _train_counts(splits: dict, d: int, names: list[str]) -> dict | None:
    tc = (splits.get(str(d)) or {}).get("train_counts")
    if not isinstance(tc, dict) or any(not isinstance(tc.get(s), dict) for s in names):
        return None
    try:
        return {s: {"n": int(tc[s]["n"]), "positives": int(tc[s]["positives"])} for s in names}
    except (KeyError, TypeError, ValueError):
        return None


def reference_rows(splits: dict, labels: dict, names: list[str], noun: tuple[str, str]) -> list[dict]:
    """The rows "scenario click rate only" and "constant", over the data seeds with test labels.

    splits: experiment.json's per-data-seed facts; labels: {data seed: (label [N], scenario [N])}.
    Both references are constant within a scenario, so their within-scenario AUC is 0.5 and the
    constant's pooled AUC too, whatever the rates: those are computed for every experiment. The
    pooled AUC of the scenario click rate and every logloss need the train click rates: where an
    experiment did not record them, those cells are None and `note` says why."""
    k = len(names)
    seeds = sorted(labels)
    missing = [d for d in seeds if _train_counts(splits, d, names) is None]
    rows = []
    for ref_id in (SCENARIO_CTR, CONSTANT):
        by_seed = {}
        for d in seeds:
            label, scen = labels[d]
            counts = _train_counts(splits, d, names)
            cell = {"auc": None, "within_auc": ev.within_auc(label, scen.astype(np.float64), scen, k),
                    "logloss": None, "per_scenario": {}}
            if ref_id == CONSTANT:
                cell["auc"] = ev.auc(label, np.zeros(len(label)))
            pred = reference_predictions(counts, names, scen)[ref_id] if counts else None
            if pred is not None:
                cell["auc"], cell["logloss"] = ev.auc(label, pred), ev.logloss(label, pred)
            for j, s in enumerate(names):
                m = scen == j
                a = ev.auc(label[m], np.zeros(int(m.sum()))) if m.any() else float("nan")
                cell["per_scenario"][s] = {"auc": a if np.isfinite(a) else None,
                                           "logloss": ev.logloss(label[m], pred[m]) if pred is not None and m.any()
                                           else None}
            by_seed[d] = cell
        cells = list(by_seed.values())
        row = {"id": ref_id, "label": reference_label(ref_id, noun[0]),
               "auc": ev.mean_std(c["auc"] for c in cells), "within_auc": ev.mean_std(c["within_auc"] for c in cells),
               "logloss": ev.mean_std(c["logloss"] for c in cells),
               "per_scenario": {s: {"auc": ev.mean_std(c["per_scenario"][s]["auc"] for c in cells),
                                    "logloss": ev.mean_std(c["per_scenario"][s]["logloss"] for c in cells)}
                                for s in names},
               "data_seeds": seeds, "by_data_seed": {str(d): c for d, c in by_seed.items()}, "note": None}
        if not seeds:
            row["note"] = "unavailable: no data seed's test labels could be read"
        elif missing:
            what = ("its pooled AUC and logloss need" if ref_id == SCENARIO_CTR else "its logloss needs")
            row["note"] = (f"{what} the train click rates, which this experiment did not record for data seed"
                           f"{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} (it predates them): "
                           "unavailable; re-run the experiment (the same command: finished runs are kept, nothing "
                           "is retrained) to record them")
        rows.append(row)
    return rows


def flags(summary: list[dict], runs_by_group: dict[str, list], references: list[dict], names: list[str],
          noun: tuple[str, str]) -> list[dict]:
    """Results to distrust, in words: an AUC whose 95 % CI lies entirely below 0.5 (the model's
    within-scenario AUC, or one scenario's with at least MIN_CLASS test clicks and non-clicks: a
    handful of clicks gives no interval to trust), a logloss worse than the constant's (overall and per
    scenario; compared run by run with the constant on the run's own test split)."""
    one = noun[0]
    const = next((r for r in references if r["id"] == CONSTANT), {}).get("by_data_seed") or {}
    out = []
    for s in summary:
        model, label = s["group"], s["label"] + _sweep(s)
        hi, lo = s.get("within_ci_high"), s.get("within_ci_low")
        if hi is not None and hi < 0.5:
            out.append({"model": model, "scenario": "overall", "kind": "auc_below_chance",
                        "text": f"{label}: within-{one} AUC {s['within_auc']['mean']:.4f} is below chance (95 % CI "
                                f"{lo:.2f}–{hi:.2f} lies entirely below 0.5)"})
        for name in names:
            c = s["per_scenario"][name]
            enough = min(c.get("positives") or 0, (c.get("n") or 0) - (c.get("positives") or 0)) >= ev.MIN_CLASS
            if enough and c.get("ci_high") is not None and c["ci_high"] < 0.5:  # a CI needs MIN_CLASS of each
                out.append({"model": model, "scenario": name, "kind": "auc_below_chance",
                            "text": f"{label} in {name}: AUC {c['auc']['mean']:.4f} is below chance (95 % CI "
                                    f"{c['ci_low']:.2f}–{c['ci_high']:.2f} lies entirely below 0.5)"})
        runs = [r for r in runs_by_group.get(model, []) if const.get(str(r.data_seed), {}).get("logloss") is not None]
        if not runs:
            continue
        mine = [r.metrics["overall"]["logloss"] for r in runs]
        theirs = [const[str(r.data_seed)]["logloss"] for r in runs]
        if np.mean(mine) > np.mean(theirs):
            out.append({"model": model, "scenario": "overall", "kind": "logloss_worse_than_constant",
                        "text": f"{label}: logloss {np.mean(mine):.4f} is worse than a constant prediction of the "
                                f"train click rate ({np.mean(theirs):.4f})"})
        for name in names:
            pairs = [(r.metrics["per_scenario"][name].get("logloss"),
                      const[str(r.data_seed)]["per_scenario"][name]["logloss"]) for r in runs]
            pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
            if pairs and np.mean([a for a, _ in pairs]) > np.mean([b for _, b in pairs]):
                out.append({"model": model, "scenario": name, "kind": "logloss_worse_than_constant",
                            "text": f"{label} in {name}: logloss {np.mean([a for a, _ in pairs]):.4f} is worse than "
                                    f"the constant's ({np.mean([b for _, b in pairs]):.4f})"})
    return out


def _sweep(s: dict) -> str:
    return f" ({s['sweep']['name']} {s['sweep']['value']})" if s.get("sweep") else ""


def _p(p) -> str:
    return "p n/a" if p is None else ("p < 1e-10" if p < 1e-10 else f"p = {p:.2g}")


def _versus(cell: dict | None, other: str, aside: str = "") -> tuple[str, str]:
    """(outcome, words) of a within-scenario test of A against `other` (aside: said with it)."""
    if not cell or cell.get("verdict") in (None, "n/a"):
        why = (cell or {}).get("verdict_note") or "n/a: no paired runs (the same model and data seeds) to compare"
        detail = f"not testable: {why.removeprefix('n/a: ')}"
        outcome = "n/a"
    else:
        diff, p = cell["auc_diff"], _p(cell.get("p_value"))
        outcome = cell["verdict"] if cell["verdict"] in ("better", "worse") else "level"
        detail = {"better": f"{diff:+.4f}, {p}", "worse": f"significantly better by {-diff:.4f}, {p}",
                  "level": f"no detectable difference: {diff:+.4f}, {p}"}[outcome]
    return outcome, f"{other} ({aside}{'; ' if aside else ''}{detail})"


def sentence(summary: list[dict], noun: tuple[str, str], reference: dict,
             compare: Callable[[str, str], dict | None], method: str | None) -> str:
    """The one sentence the Overview opens with: the best model by within-scenario AUC (and
    whether it is significantly ahead of the runner-up), then whether the method beats the
    reference baseline, the logistic regression and the scenario click rate.

    compare(group a, group b or SCENARIO_CTR) -> the within-scenario paired test of a against b
    over every seed (`evaluate.compare_with_baseline(...)["within"]`), or None."""
    one, many = noun
    scored = [s for s in summary if (s.get("within_auc") or {}).get("mean") is not None]
    ranked = sorted([s for s in scored if not s.get("sweep")] or scored, key=lambda s: -s["within_auc"]["mean"])
    if not ranked:
        return f"No finished run has a within-{one} AUC yet: nothing to compare."
    best = ranked[0]
    head = f"By within-{one} AUC, {best['label']}{_sweep(best)} is best ({_ms(best['within_auc'])})"
    if len(ranked) > 1:
        up = ranked[1]
        name = f"the runner-up {up['label']}{_sweep(up)} ({_ms(up['within_auc'])}"
        cell = compare(best["group"], up["group"])
        if cell and cell.get("verdict") == "better":
            head += f", significantly ahead of {name}; {_p(cell['p_value'])})"
        elif cell and cell.get("verdict") not in (None, "n/a"):
            head += f", but not significantly better than {name}; {_p(cell.get('p_value'))})"
        else:
            why = ((cell or {}).get("verdict_note") or "n/a: no runs on the same seeds").removeprefix("n/a: ")
            head += f"; whether it beats {name}) cannot be tested ({why})"
    lo, hi = best.get("within_ci_low"), best.get("within_ci_high")
    if lo is not None and lo <= 0.5:
        head += f"; no model is clearly better than guessing (the best one's 95 % CI, {lo:.2f}–{hi:.2f}, reaches 0.5)"
    groups = {s["group"]: s for s in summary}
    if method is None or method not in groups:
        return head + "."
    me = groups[method]
    others = [(g, groups[g]["label"], "") for g in (reference["model"], SIMPLE_MODEL) if g in groups and g != method]
    others.append((SCENARIO_CTR, f"the {one} click rate alone", f"0.5 within {many}"))
    said = {"better": [], "worse": [], "level": [], "n/a": []}
    for g, words, aside in others:
        outcome, text = _versus(compare(method, g), words, aside)
        said[outcome].append(text)
    parts = []
    if said["better"]:
        parts.append("beats " + _join(said["better"]))
    if said["worse"]:
        parts.append(("but " if parts else "") + "not " + _join(said["worse"]))
    if said["level"]:
        parts.append(("and " if parts else "") + "is level with " + _join(said["level"]))
    if said["n/a"]:
        parts.append(("while " if parts else "") + "cannot be tested against " + _join(said["n/a"]))
    return f"{head}; {me['label']} ({_ms(me['within_auc'])}) " + ", ".join(parts) + "."


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ms(d: dict) -> str:
    return f"{d['mean']:.4f}" + (f" ± {d['std']:.4f}" if d.get("n", 0) > 1 else "")
