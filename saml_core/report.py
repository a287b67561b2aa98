"""The report of an experiment (`python -m saml_core report`, the dashboard's tables, the HTML
summary): per run, per model and per scenario, with the paired tests against the reference model,
the reference predictors, the headline and the flags (docs/ENGINE.md); as JSON (`report`) and
markdown (`report_markdown`). Reads through `store.py`; never writes, imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from saml_core import artifacts as art
from saml_core import evaluate as ev
from saml_core import headline
from saml_core.artifacts import ArtifactError
from saml_core.store import Experiment, Run, check_inside, load_experiment


def _reference_id() -> str:
    from saml_core.models import registry as models

    return models.reference_id()


def _test_labels(exp: Experiment, data_seed: int):
    """(label, scenario) of one data seed's test split, or (None, reason). Never re-derived here:
    reads do not write."""
    path = exp.path / f"test_labels-d{data_seed}.npz"
    try:
        check_inside(path, exp.path.parent)
        z = art.load_npz(path)
        label, scen = z["label"], z["scenario"]
    except (ArtifactError, KeyError) as exc:
        return None, f"{path.name}: {exc}"
    return (label, scen), None


def _preds(run: Run, problems: dict):
    try:
        return run.load_predictions()
    except ArtifactError as exc:
        problems[run.run_id] = f"{exc}; the paired tests leave this run out"
        return None


def report(root, name: str, reference: str | None = None) -> dict:
    """Everything `report` prints and the pages show: per run, per model group (over seeds), the
    comparison with the reference baseline (verdicts, Holm-adjusted p-values, RelaImpr where it is
    meaningful), training settings and how each run stopped, similarity recovery; led by the
    within-scenario AUC, beside the two reference predictors, the flags and the headline sentence
    (`saml_core.headline`); the transfer matrices, input importance and the agreement of every
    relation signal (`saml_core.analyses`, `saml_core.relations`)."""
    from saml_core import analyses, relations
    from saml_core.models import registry as models

    exp = load_experiment(root, name)
    names = exp.scenario_names
    ref_id = reference or _reference_id()
    if models.find(ref_id) is None:
        raise ArtifactError(exp.path, f"unknown reference model {ref_id!r}")
    labels, notes = {}, []
    for d in exp.data_seeds:
        got, why = _test_labels(exp, d)
        if got is not None:
            labels[d] = got
        else:
            notes.append(f"paired tests of data seed {d} unavailable ({why})")
    runs = [r for r in exp.runs]
    finished = [r for r in runs if r.finished]
    broken_preds: dict[str, str] = {}
    preds = {r.run_id: _preds(r, broken_preds) for r in finished}
    ctx = _Context(names, tuple(exp.scenario_noun), labels, preds)
    by_key = {(r.model, r.seed, r.data_seed, r.group.removeprefix(r.model)): r for r in finished}
    rows = [_run_row(r, by_key, ctx, ref_id) for r in runs]
    for row in rows:
        if row["run_id"] in broken_preds:
            row["error"] = broken_preds[row["run_id"]]
            notes.append(broken_preds[row["run_id"]])
    groups: dict[str, list[Run]] = {}
    for r in finished:
        groups.setdefault(r.group, []).append(r)
    summary = [_group_summary(g, rs, groups, ctx, ref_id) for g, rs in groups.items()]
    summary.sort(key=lambda s: (models.find(s["model"]).order if models.find(s["model"]) else 999, s["group"]))
    ref = models.find(ref_id)
    ref_doc = {"model": ref_id, "label": ref.label if ref else ref_id}
    references = headline.reference_rows(exp.raw.get("splits") or {}, labels, names, ctx.noun)
    method = next((e.id for e in models.entries() if e.role == "method"), None)

    def compare(a: str, b: str) -> dict | None:
        if b == headline.SCENARIO_CTR:
            return ctx.versus_scenario_rate(groups.get(a, []))
        own = next((s for s in summary if s["group"] == a), {}).get("vs_reference")
        if b == ref_id and own:  # computed already
            return own["within"]
        got = ctx.compare(groups.get(a, []), groups.get(b, []))
        return got["within"] if got else None

    return {
        "schema_version": art.SCHEMA_VERSION, "experiment": exp.name, "dataset": exp.dataset,
        "dataset_kind": exp.dataset_kind, "scenario_names": names, "scenario_noun": list(exp.scenario_noun),
        "data_seeds": exp.data_seeds, "traffic_share": exp.traffic_share, "test_counts": exp.test_counts,
        "oracle_auc": exp.oracle_auc, "oracle_auc_overall": exp.raw.get("oracle_auc_overall"),
        "train_settings": exp.raw.get("train_settings"), "dropped_scenarios": exp.dropped_scenarios,
        "tuning": exp.raw.get("tuning") if isinstance(exp.raw.get("tuning"), dict) else None,
        "reference": ref_doc, "headline": headline.sentence(summary, ctx.noun, ref_doc, compare, method),
        "references": references, "flags": headline.flags(summary, groups, references, names, ctx.noun),
        "state": exp.state, "notes": notes, "runs": rows, "summary": summary,
        "anchors": _anchors(exp), "transfer": analyses.transfer_summary(exp),
        "importance": analyses.importance_summary(exp), "relations": relations.agreement(exp),
    }


def _anchors(exp: Experiment) -> list[dict]:
    try:
        from saml_core.anchors import published_anchors
    except ImportError:
        return []
    return published_anchors(exp.dataset)


@dataclass
class _Context:
    """What every statistic of one report reads: the scenarios, the test labels per data seed and
    the runs' predictions (None where unreadable)."""

    names: list[str]
    noun: tuple[str, str]
    labels: dict  # data seed -> (label [N], scenario [N])
    preds: dict  # run id -> [N] or None
    _within: dict = field(default_factory=dict)

    def pred(self, r: Run):
        p = self.preds.get(r.run_id)
        lab = self.labels.get(r.data_seed)
        return p if p is not None and lab is not None and len(p) == len(lab[0]) else None

    def within(self, r: Run) -> tuple[float, float, float] | None:
        """The run's within-scenario AUC with its 95 % CI, from its predictions."""
        if r.run_id not in self._within:
            p = self.pred(r)
            got = ev.within_auc_ci(*self._split(r.data_seed, p), len(self.names)) if p is not None else None
            self._within[r.run_id] = got if got is not None and np.isfinite(got[0]) else None
        return self._within[r.run_id]

    def _split(self, d: int, p):
        label, scen = self.labels[d]
        return label, p, scen

    def compare(self, rs: list[Run], base_rs: list[Run], base_pred=None) -> dict | None:
        """`evaluate.compare_with_baseline` of runs against base runs paired by (seed, data seed);
        base_pred(data seed) instead gives one fixed baseline prediction per data seed."""
        d_seeds = sorted({r.data_seed for r in rs} & set(self.labels) &
                         ({r.data_seed for r in base_rs} if base_pred is None else set(self.labels)))
        model_preds, base_preds = [], []
        for d in d_seeds:
            if base_pred is None:
                pairs = [(self.pred(a), self.pred(b)) for a in rs if a.data_seed == d
                         for b in base_rs if b.data_seed == d and b.seed == a.seed]
            else:
                pairs = [(self.pred(a), base_pred(d)) for a in rs if a.data_seed == d]
            pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
            model_preds.append([a for a, _ in pairs])
            base_preds.append([b for _, b in pairs])
        if not any(model_preds):
            return None
        out = ev.compare_with_baseline([self.labels[d][0] for d in d_seeds], [self.labels[d][1] for d in d_seeds],
                                       model_preds, base_preds, self.names, data_seeds=d_seeds, noun=self.noun)
        out["pairs"] = sum(len(p) for p in model_preds)
        return out

    def versus_scenario_rate(self, rs: list[Run]) -> dict | None:
        """Within-scenario test against the scenario click rate: constant within each scenario,
        so any per-scenario constant gives the same test (no train click rate needed)."""
        got = self.compare(rs, [], base_pred=lambda d: self.labels[d][1].astype(np.float64))
        return got["within"] if got else None


def _run_row(r: Run, by_key, ctx: _Context, ref_id) -> dict:
    names = ctx.names
    row = {"run_id": r.run_id, "model": r.model, "label": r.label, "role": r.role, "seed": r.seed,
           "data_seed": r.data_seed, "sweep": r.sweep, "group": r.group, "state": r.state, "error": r.error,
           "overall": None, "within": None, "per_scenario": None, "vs_reference": None}
    if not r.finished:
        return row
    m = r.metrics
    row.update(overall=m["overall"], per_scenario={s: dict(m["per_scenario"][s]) for s in names})
    w = ctx.within(r)
    if w is not None:
        row["within"] = {"auc": w[0], "ci_low": w[1], "ci_high": w[2]}
    for key in ("best_epoch", "epochs_run", "train_seconds", "stopped", "improving_at_cap", "train_settings",
                "submodels", "weights_kept", "alpha_mean", "gate_mean", "gate_init_mean", "similarity_recovery",
                "relations"):
        if key in m:
            row[key] = m[key]
    base = by_key.get((ref_id, r.seed, r.data_seed, r.group.removeprefix(r.model)))
    if base is None or base is r:
        return row
    pa, pb = ctx.pred(r), ctx.pred(base)
    if pa is None or pb is None:
        return row
    label, scen = ctx.labels[r.data_seed]
    per = {}
    for j, s in enumerate(names):
        msk = scen == j
        per[s] = ev.paired_delong(label[msk], pa[msk], pb[msk]) if msk.any() else \
            {"auc_diff": None, "z": None, "p_value": None}
    adjusted = ev.holm([per[s]["p_value"] for s in names])
    for s, p in zip(names, adjusted):
        per[s]["p_holm"] = p
    row["vs_reference"] = {"baseline_run": base.run_id, "overall": ev.paired_delong(label, pa, pb), "per_scenario": per}
    return row


def _group_summary(group: str, rs: list[Run], groups, ctx: _Context, ref_id) -> dict:
    names, first = ctx.names, rs[0]
    within = [ctx.within(r) for r in rs]
    within = [w for w in within if w is not None]
    out = {"group": group, "model": first.model, "label": first.label, "role": first.role, "sweep": first.sweep,
           "n_runs": len(rs), "seeds": sorted({r.seed for r in rs}), "data_seeds": sorted({r.data_seed for r in rs}),
           "within_auc": ev.mean_std(w[0] for w in within),
           "within_ci_low": ev.mean_std(w[1] for w in within)["mean"],
           "within_ci_high": ev.mean_std(w[2] for w in within)["mean"],
           "auc": ev.mean_std(r.metrics["overall"]["auc"] for r in rs),
           "logloss": ev.mean_std(r.metrics["overall"]["logloss"] for r in rs),
           "epochs_run": ev.mean_std(r.metrics.get("epochs_run") for r in rs),
           "train_seconds": ev.mean_std(r.metrics.get("train_seconds") for r in rs),
           "improving_at_cap": sum(bool(r.metrics.get("improving_at_cap")) for r in rs),
           "submodels_improving_at_cap": sum(sum(bool(v.get("improving_at_cap")) for v in
                                                 (r.metrics.get("submodels") or {}).values()) for r in rs),
           "per_scenario": {}, "vs_reference": None}
    for s in names:
        cells = [r.metrics["per_scenario"][s] for r in rs]
        out["per_scenario"][s] = {"auc": ev.mean_std(c.get("auc") for c in cells),
                                  "ci_low": ev.mean_std(c.get("ci_low") for c in cells)["mean"],
                                  "ci_high": ev.mean_std(c.get("ci_high") for c in cells)["mean"],
                                  "logloss": ev.mean_std(c.get("logloss") for c in cells),
                                  "n": sum(int(c.get("n") or 0) for c in cells) // max(len(cells), 1),
                                  "positives": sum(int(c.get("positives") or 0) for c in cells) // max(len(cells), 1)}
    rec = [r.metrics.get("similarity_recovery") for r in rs if r.metrics.get("similarity_recovery")]
    if rec:
        out["recovery"] = _recovery_summary(rec)
    base_group = ref_id + group.removeprefix(first.model)
    if first.model == ref_id or base_group not in groups:
        return out
    base_rs = groups[base_group]
    cmp = ctx.compare(rs, base_rs)
    if cmp is None:
        return out
    base_sum = {s: ev.mean_std(b.metrics["per_scenario"][s]["auc"] for b in base_rs) for s in names}
    base_within = ev.mean_std(w[0] for w in (ctx.within(b) for b in base_rs) if w is not None)
    for key, mine, base in [("within", out["within_auc"], base_within)] + \
            [(s, out["per_scenario"][s]["auc"], base_sum[s]) for s in names]:
        value, reason = ev.relaimpr_guarded(mine["mean"], base["mean"], cmp[key]["base_ci_low"],
                                            cmp[key]["base_ci_high"], cmp[key]["counts"])
        cmp[key]["relaimpr"], cmp[key]["relaimpr_note"] = value, reason
    # the pooled AUC also rewards knowing which scenario clicks more: no RelaImpr on it
    cmp["overall"]["relaimpr"] = None
    cmp["overall"]["relaimpr_note"] = f"n/a: RelaImpr is given on the within-{ctx.noun[0]} AUC"
    out["vs_reference"] = {"baseline_group": base_group, **cmp}
    return out


def _recovery_summary(recs: list[dict]) -> dict:
    """Recovery over seeds, per mutual unit: mean, std, and in how many runs it was significant."""
    layers = len(recs[0].get("spearman") or [])
    out = []
    for l in range(layers):
        rho = [r["spearman"][l] for r in recs if len(r.get("spearman") or []) > l]
        p = [r["p_value"][l] for r in recs if len(r.get("p_value") or []) > l]
        part = [r["partial"][l] for r in recs if len(r.get("partial") or []) > l]
        pw = [r["pairwise_spearman"][l] for r in recs if len(r.get("pairwise_spearman") or []) > l]
        pw_p = [r["pairwise_p_value"][l] for r in recs if len(r.get("pairwise_p_value") or []) > l]
        out.append({"spearman": ev.mean_std(rho), "partial": ev.mean_std(part), "pairwise": ev.mean_std(pw),
                    "significant_in": sum(1 for x in p if x is not None and x < ev.ALPHA),
                    "pairwise_significant_in": sum(1 for x in pw_p if x is not None and x < ev.ALPHA),
                    "runs": len(rho)})
    nulls = {}
    for r in recs:
        for k, v in (r.get("null_scores") or {}).items():
            nulls.setdefault(k, v)
    return {"layers": out, "null_scores": nulls, "test": recs[0].get("test")}


def _fmt(x, spec=".4f", none="—"):
    return none if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def _ms(d: dict | None, spec=".4f") -> str:
    if not d or d.get("mean") is None:
        return "—"
    return f"{d['mean']:{spec}}" + (f" ± {d['std']:{spec}}" if d.get("n", 0) > 1 else "")


def report_markdown(doc: dict) -> str:
    names = doc["scenario_names"]
    noun, nouns = (doc.get("scenario_noun") or ["scenario", "scenarios"])[:2]
    ref = doc["reference"]["label"]
    lines = [f"# Experiment `{doc['experiment']}` — {doc['dataset']}", ""]
    if doc.get("headline"):
        lines += [f"**{doc['headline']}**", ""]
    runs = doc["runs"]
    seeds = sorted({r["seed"] for r in runs if r["seed"] is not None})
    lines.append(f"{len(runs)} runs: model seeds {seeds}, data seeds {doc['data_seeds']}. Means ± std over "
                 f"runs. Within-{noun} AUC (the headline): the mean of the per-{noun} AUCs weighted by test rows, "
                 f"over the {nouns} whose test split has clicks and non-clicks; knowing only which {noun} clicks more "
                 f"scores 0.5 on it. Pooled AUC: all {nouns} ranked together, which also rewards that knowledge. "
                 f"Verdicts against {ref} use every seed (paired DeLong tests, AUC differences averaged over "
                 "model seeds with their spread, data seeds combined by inverse variance; per-" + noun +
                 " p-values Holm-adjusted).")
    for d in doc.get("dropped_scenarios") or []:
        lines.append(f"- left out: {d.get('scenario')} — {d.get('reason')}")
    for n in doc.get("notes") or []:
        lines.append(f"- note: {n}")
    ts = doc.get("train_settings")
    if ts:
        lr = "lr tuned per model (below)" if doc.get("tuning") else f"lr {ts['lr']:g}"
        lines += ["", f"Training settings (every model): {lr}, batch {ts['batch_size']}, patience "
                      f"{ts['patience']}, min epochs {ts['min_epochs']}, epoch cap {ts['epochs']}"
                      + (f" (derived from the data: {', '.join(ts['derived'])})" if ts.get("derived") else "")
                      + "; per-scenario models derive theirs from their own scenario's data."]
    if doc.get("tuning"):
        lines += ["", "Tuned (`--tune`): each model's setting chosen from its grid on the validation AUC of its "
                      "first data and model seed, every seed then trained with it: " + "; ".join(
                          f"{_label(doc, m)} {_setting(r['chosen'])}" for m, r in doc["tuning"].items()) + "."]
    lines += ["", f"| model | runs | within-{noun} AUC | vs {ref} (within-{noun}, p) | RelaImpr vs {ref} (within) | "
                  "pooled AUC | logloss | epochs | stopped at cap while improving |", "|---" * 9 + "|"]
    for s in doc["summary"]:
        v = s.get("vs_reference") or {}
        w = v.get("within") or {}
        rel = _fmt(w.get("relaimpr"), "+.2f") + "%" if w.get("relaimpr") is not None else (
            "n/a" if v else "—")
        ver = (f"{w.get('verdict')} (p={_fmt(w.get('p_value'), '.2g')})" if w.get("verdict") != "n/a" else "n/a") \
            if v else "—"
        cap = s["improving_at_cap"] + s.get("submodels_improving_at_cap", 0)
        lines.append(f"| {s['label']}{_sweep(s)} | {s['n_runs']} | {_ms(s.get('within_auc'))} | {ver} | {rel} | "
                     f"{_ms(s['auc'])} | {_ms(s['logloss'])} | {_ms(s['epochs_run'], '.1f')} | {cap or 'no'} |")
    for r in doc.get("references") or []:
        lines.append(f"| {r['label']} (reference, no training) | — | {_ms(r['within_auc'])} | — | — | "
                     f"{_ms(r['auc'])} | {_ms(r['logloss'])} | — | — |")
    for r in doc.get("references") or []:
        if r.get("note"):
            lines.append(f"- {r['label']}: {r['note']}")
    said = set()  # the notes depend on the test labels and the baseline: the same for most models
    for s in doc["summary"]:
        w = (s.get("vs_reference") or {}).get("within") or {}
        for key, what in (("verdict_note", "test"), ("note", "test"), ("relaimpr_note", "RelaImpr")):
            if w.get(key) and (key != "relaimpr_note" or w.get("relaimpr") is None) and w[key] not in said:
                said.add(w[key])
                lines.append(f"- within-{noun} {what} vs {ref}: {w[key]}")
    broken = [r for r in runs if r["overall"] is None]
    for r in broken:
        lines.append(f"- {r['run_id']}: {r['state']} — {r['error']}")
    flags = doc.get("flags")
    if flags is not None:
        const = next((r for r in doc.get("references") or [] if r["id"] == headline.CONSTANT), None)
        checked = "no logloss worse than the constant's" if const and const["logloss"]["mean"] is not None else \
            "logloss not compared with the constant's: it needs the train click rates"
        lines += ["", "Flags: " + (f"none (no AUC whose 95 % CI lies below 0.5; {checked})" if not flags
                                   else f"{len(flags)}")]
        lines += [f"- {f['text']}" for f in flags]
    has_oracle = bool(doc.get("oracle_auc"))
    lines += ["", f"Per-{noun} test AUC (mean ± std over runs)" + ("; oracle = AUC of the true click probability"
                                                                   if has_oracle else ""), ""]
    head = f"| {noun} | share | test n (pos) |" + "".join(f" {s['label']}{_sweep(s)} |" for s in doc["summary"])
    head += " oracle |" if has_oracle else ""
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        tc = doc["test_counts"].get(name, {})
        line = f"| {name} | {_fmt(doc['traffic_share'].get(name), '.3f')} | {tc.get('n', '')} ({tc.get('positives', '')}) |"
        for s in doc["summary"]:
            line += f" {_ms(s['per_scenario'][name]['auc'])} |"
        if has_oracle:
            line += f" {_fmt((doc['oracle_auc'] or {}).get(name))} |"
        lines.append(line)
    refs = doc.get("references") or []
    lines += ["", f"Per-{noun} test logloss (mean ± std over runs; lower is better), beside the references (their "
                  f"AUC within a {noun} is 0.5)", ""]
    head = f"| {noun} |" + "".join(f" {s['label']}{_sweep(s)} |" for s in doc["summary"]) + \
        "".join(f" {r['label']} |" for r in refs)
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        lines.append(f"| {name} |"
                     + "".join(f" {_ms(s['per_scenario'][name].get('logloss'))} |" for s in doc["summary"])
                     + "".join(f" {_ms(r['per_scenario'][name]['logloss'])} |" for r in refs))
    for s in doc["summary"]:
        v = s.get("vs_reference")
        if not v:
            continue
        lines += ["", f"## {s['label']}{_sweep(s)} vs {ref} per {noun} ({v['pairs']} seed pairs)", "",
                  f"| {noun} | AUC diff | p | p (Holm) | verdict | ahead in | significantly better / worse in | "
                  f"RelaImpr |", "|---|---|---|---|---|---|---|---|"]
        for name, shown in [(n, n) for n in names] + [("within", f"within-{noun} (headline)"),
                                                      ("overall", "pooled")]:
            c = v.get(name)
            if not c:
                continue
            rel = f"{c['relaimpr']:+.2f}%" if c.get("relaimpr") is not None else (c.get("relaimpr_note") or "—")
            lines.append(f"| {shown} | {_fmt(c['auc_diff'], '+.4f')} | {_fmt(c['p_value'], '.2g')} | "
                         f"{_fmt(c.get('p_holm'), '.2g')} | {c.get('verdict_note') or c['verdict']} | "
                         f"{c['ahead_in']} of {c['runs']} | {c['significantly_better_in']} / {c['significantly_worse_in']} | {rel} |")
    rec = [(s, s["recovery"]) for s in doc["summary"] if s.get("recovery")]
    if rec:
        lines += ["", "## Similarity recovery (mean alpha vs planted similarity, per mutual unit)", ""]
        for s, r in rec:
            for l, layer in enumerate(r["layers"]):
                lines.append(f"- {s['label']}, unit {l + 1}: Spearman {_ms(layer['spearman'], '+.2f')} "
                             f"(significant, Mantel p < 0.05, in {layer['significant_in']} of {layer['runs']} runs); "
                             f"partial, traffic controlled {_ms(layer['partial'], '+.2f')}; on the pairwise part "
                             f"{_ms(layer['pairwise'], '+.2f')} (significant in {layer['pairwise_significant_in']} "
                             f"of {layer['runs']})")
            nulls = ", ".join(f"{k} {_fmt(v, '+.2f')}" for k, v in r["null_scores"].items())
            if nulls:
                lines.append(f"  - null matrices against the same truth: {nulls}")
    lines += _analyses_markdown(doc, noun, nouns)
    if doc.get("anchors"):
        lines += ["", "## Published numbers on this dataset (other settings and sizes: not comparable)", "",
                  "| model | scenario | metric | value | source |", "|---|---|---|---|---|"]
        for a in doc["anchors"]:
            lines.append(f"| {a['model']} | {a['scenario']} | {a['metric']} | {a['value']} | {a['source']} |")
    return "\n".join(lines) + "\n"


def _label(doc: dict, model: str) -> str:
    return next((s["label"] for s in doc["summary"] if s["model"] == model), model)


def _setting(point: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
                     for settings in point.values() for k, v in settings.items())


def _analyses_markdown(doc: dict, noun: str, nouns: str) -> list[str]:
    """The transfer, importance and relations sections (absent parts are skipped)."""
    names = doc["scenario_names"]
    lines = []
    tr = doc.get("transfer") or {}
    if tr.get("models"):
        lines += ["", f"## Transfer: one {noun}'s part of the model on another {noun}'s test rows", ""]
        for m in tr["models"]:
            lines += [m["sentence"], "", f"How: {m['how']}", "",
                      f"AUC lost against the column's own part when the row's part scores the column's test rows "
                      f"(mean over runs; * worse in every run, ° better in every run; at most {m['rows_cap']:,} test "
                      f"rows per {noun}):", "",
                      f"| part \\ test rows |" + "".join(f" {t} |" for t in names), "|---" * (len(names) + 1) + "|"]
            for s_i, s in enumerate(names):
                cells = []
                for t_i in range(len(names)):
                    v = m["loss"][s_i][t_i]
                    mark = "*" if m["worse_in_every_run"][s_i][t_i] else ("°" if m["better_in_every_run"][s_i][t_i]
                                                                           else "")
                    cells.append("—" if v is None or s_i == t_i else f"{v:+.3f}{mark}")
                lines.append(f"| {s} |" + "".join(f" {c} |" for c in cells))
            lines.append("")
    imp = doc.get("importance") or {}
    if imp.get("models"):
        lines += ["", f"## Input importance per {noun} (permutation within each {noun}'s test rows)", ""]
        for m in imp["models"]:
            lines += [" ".join(m["sentences"]), "",
                      f"Drop of the {noun}'s AUC when the input is shuffled among its test rows (mean over "
                      f"{m['n_runs']} run{'s' * (m['n_runs'] != 1)}, {m['n_repeats']} repeats each, at most "
                      f"{m['rows_cap']:,} test rows per {noun}; * 95 % CI above 0 in every run):", "",
                      "| input |" + "".join(f" {s} |" for s in names) + f" differs between {nouns}: p (Holm) |",
                      "|---" * (len(names) + 2) + "|"]
            cell = {(c["scenario"], c["input"]): c["drop_auc"] for c in m["cells"]}
            for d in m["differs"]:
                vals = []
                for s in names:
                    c = cell[s, d["input"]]
                    mark = "*" if c["holds_in_every_seed"] else ""
                    vals.append("—" if c["mean"] is None else f"{c['mean']:+.3f}{mark}")
                lines.append(f"| {d['input']} |" + "".join(f" {v} |" for v in vals) + f" {_fmt(d['p_holm'], '.2g')} |")
            share = m.get("cost_share") or {}
            if share.get("mean") is not None:
                lines.append(f"\nCost: {_ms(m['seconds'], '.1f')} s per run, {100 * share['mean']:.0f} % of the run's "
                             "training time on average.")
            lines.append("")
    rel = doc.get("relations") or {}
    if len(rel.get("signals") or []) >= 2:
        lines += ["", f"## Which {nouns} are alike, by every signal", "", rel["sentence"], "", rel["test"] + ".", "",
                  "| signal | signal | Spearman (mean ± std over runs) | Mantel p < 0.05 in |", "|---|---|---|---|"]
        shown = [p for p in rel["pairs"] if p["holds_in_every_run"] or "planted" in (p["a"], p["b"])]
        for p in shown:
            lines.append(f"| {p['label_a']} | {p['label_b']} | {_ms(p['spearman'], '+.2f')} | "
                         f"{p['significant_in']} of {p['runs']} |")
        if len(shown) < len(rel["pairs"]):
            lines.append(f"\n({len(rel['pairs']) - len(shown)} more pairs of signals, none significant in every run, "
                         "in `report --format json`, doc[\"relations\"][\"pairs\"].)")
    return lines


def _sweep(s: dict) -> str:
    return f" ({s['sweep']['name']} {s['sweep']['value']})" if s.get("sweep") else ""


# comparing two experiments run by run ----------------------------------------------------------
def ms(d: dict | None, spec: str = ".4f") -> str:
    if not d or d.get("mean") is None:
        return "—"
    return f"{d['mean']:{spec}}" + (f" ± {d['std']:{spec}}" if d.get("n", 0) > 1 else "")


def run_within(doc: dict) -> dict[tuple, float]:
    """(model, data seed, model seed) -> within-scenario AUC of each finished run of a report."""
    return {(r["model"], r["data_seed"], r["seed"]): r["within"]["auc"] for r in doc["runs"]
            if not r.get("sweep") and (r.get("within") or {}).get("auc") is not None}


def paired(a: dict, b: dict, model_a: str, model_b: str | None = None) -> dict | None:
    """a's run minus b's run of the same seeds, over the seeds both have: mean, std, n, ahead_in."""
    model_b = model_b or model_a
    diffs = [a[k] - b[(model_b, *k[1:])] for k in a if k[0] == model_a and (model_b, *k[1:]) in b
             and np.isfinite(a[k]) and np.isfinite(b[(model_b, *k[1:])])]
    if not diffs:
        return None
    return {**ev.mean_std(diffs), "ahead_in": int(sum(x > 0 for x in diffs))}


def diff_text(p: dict | None) -> str:
    if p is None:
        return "—"
    spread = f" ± {p['std']:.4f}" if p["n"] > 1 else ""
    return f"{p['mean']:+.4f}{spread} (higher in {p['ahead_in']} of {p['n']})"


def comparison_markdown(doc: dict, other: dict) -> str:
    """`report NAME --against OTHER`: each model both experiments trained, its within-scenario AUC
    in each and the difference paired by data seed and model seed (the same seeds see the same
    test rows when the two experiments draw their data alike: an ablation of one setting)."""
    within, within_other = run_within(doc), run_within(other)
    mine = {s["model"]: s for s in doc["summary"] if not s.get("sweep")}
    theirs = {s["model"]: s for s in other["summary"] if not s.get("sweep")}
    a, b = doc["experiment"], other["experiment"]
    lines = [f"# `{a}` against `{b}`", "",
             f"Within-scenario AUC, mean ± std over runs; the difference `{a}` minus `{b}` paired by data seed and "
             "model seed.", "",
             f"| model | {a} | {b} | {a} minus {b} (paired) |", "|---|---|---|---|"]
    for model, s in mine.items():
        if model in theirs:
            p = paired(within, within_other, model)
            lines.append(f"| {s['label']} | {ms(s['within_auc'])} | {ms(theirs[model]['within_auc'])} | {diff_text(p)} |")
    if len(lines) == 6:
        lines.append("| (no model in both) | | | |")
    return "\n".join(lines) + "\n"

