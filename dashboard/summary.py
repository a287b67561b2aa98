"""An experiment's main findings as ONE self-contained HTML file, to hand to people without the
app: the headline sentence and its chart, the results table with the reference rows, the flags,
AUC per scenario, what the model says about which scenarios are alike, each with its computed
sentence. Plotly's own HTML export draws the charts, with Plotly's library written into the file
(~4.7 MB), so it opens offline in any browser.

The Overview's download button and `python -m saml_core report NAME --html FILE` both call this
module: it imports no Streamlit (the chart builders of dashboard/charts.py, the tables of
dashboard/tables.py and the words of dashboard/explain.py are plain Python), so the CLI can use it.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dashboard import charts, explain, tables
from dashboard.colors import scenario_colors
from dashboard.explain import Noun

_CSS = """
body { font-family: "Source Sans Pro", Arial, sans-serif; max-width: 1100px; margin: 2rem auto; padding: 0 1rem;
       color: #262730; line-height: 1.45; }
h1 { font-size: 1.9rem; margin-bottom: 0.2rem; } h2 { font-size: 1.35rem; margin-top: 2.2rem; }
.headline { font-size: 1.15rem; font-weight: 600; margin: 1rem 0; }
.caption, .meta { color: #6b6f7a; font-size: 0.92rem; }
table { border-collapse: collapse; font-size: 0.92rem; margin: 0.6rem 0; }
th, td { border-bottom: 1px solid #e3e4e8; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.flags { background: #fff8e6; border-left: 4px solid #f0b429; padding: 0.5rem 1rem; }
"""
TABLE_COLUMNS = ("Model", "Runs", "{within}", "{within} std", "Verdict vs BST", "p (vs BST)", "RelaImpr vs BST (%)",
                 "Pooled AUC", "Logloss")  # a page of its own has the room the Overview lacks at 1024 px


def _noun(report: dict) -> Noun:
    one, many = (report.get("scenario_noun") or ["scenario", "scenarios"])[:2]
    return Noun(one, many)


def _p(text: str, cls: str = "caption") -> str:
    return f'<p class="{cls}">{html.escape(text)}</p>'


def _fmt(col: str, v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if isinstance(v, (float, np.floating, int, np.integer)):
        if col == "Runs":
            return f"{int(v)}"
        if col.startswith("p "):
            return f"{v:.2g}"
        if "RelaImpr" in col:
            return f"{v:+.2f}"
        return f"{v:.4f}"
    return html.escape(str(v))


def _table(report: dict, n: Noun) -> str:
    df = tables.overall_table(report, n.one)
    within = tables.within_col(n.one)
    cols = [c.format(within=within) for c in TABLE_COLUMNS if c.format(within=within) in df]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(f"<td>{_fmt(c, r[c])}</td>" for c in cols) + "</tr>"
                   for _, r in df.iterrows())
    notes = [f"{m}: {note}" for m, note, ref in zip(df["Model"], df["Note"],
                                                    df["model"].isin([r["id"] for r in report.get("references") or []]))
             if ref and note]
    return f"<table><tr>{head}</tr>{rows}</table>" + "".join(_p(x) for x in notes)


def _alpha_section(exp, n: Noun) -> tuple[str, object] | None:
    """The mean α of the runs whose model learns one (first mutual unit), its pairwise part as a
    heatmap, and the sentences the correlations page computes from it."""
    from saml_core import evaluate as ev
    from saml_core.models import registry as models

    runs = [r for r in exp.runs if r.finished and "alpha" in getattr(models.find(r.model), "probes", ())
            and (r.metrics.get("alpha_mean") or [])]
    if not runs:
        return None
    method = [r for r in runs if getattr(models.find(r.model), "role", "") == "method"] or runs
    group = method[0].group
    runs = [r for r in runs if r.group == group]
    names = list(exp.scenario_names)
    mats = [np.asarray(r.metrics["alpha_mean"][0], dtype=float) for r in runs]
    if any(m.shape != (len(names), len(names)) for m in mats):
        return None
    alpha = np.nanmean(np.stack(mats), axis=0)
    np.fill_diagonal(alpha, np.nan)
    parts = ev.decompose_alpha(alpha)
    pw = parts["pairwise"].copy()
    np.fill_diagonal(pw, np.nan)
    order = tables.cluster_order(parts["pairwise"])
    ordered = [names[i] for i in order]
    label = runs[0].label
    fig = charts.heatmap(pw[np.ix_(order, order)], ordered,
                         f"{label}: which {n.many} listen to which, beyond each one's overall level "
                         f"(pairwise part of α, mean over {len(runs)} run{'s' if len(runs) > 1 else ''})",
                         "α beyond the effects", center=0.0, row_title=f"{n.One} listening (row)",
                         col_title="Branch listened to (column)", height=470)
    even = parts["even"]
    lo, hi = np.nanmin(alpha), np.nanmax(alpha)
    words = [explain.heatmap_pairwise(n),
             f"α itself ranges from {lo:.4f} to {hi:.4f} ({100 * (lo / even - 1):+.1f} % to "
             f"{100 * (hi / even - 1):+.1f} % of an even split of {even:.4f})."]
    if parts["share_column"] is not None:
        words.append(f"Each branch's overall pull (its column) explains {parts['share_column']:.0%} of the variation "
                     f"around the even split; the pairwise part shown here {parts['share_pairwise']:.0%}.")
    if exp.true_similarity is not None:
        recs = [r.metrics.get("similarity_recovery") for r in runs if r.metrics.get("similarity_recovery")]
        rho = [x["spearman"][0] for x in recs if x.get("spearman") and x["spearman"][0] is not None]
        if rho:
            ms = ev.mean_std(rho)
            words.append(f"Against the similarity planted in this simulated data, the rank correlation is "
                         f"{ms['mean']:+.2f}" + (f" ± {ms['std']:.2f} over {ms['n']} runs" if ms["n"] > 1 else "")
                         + " (1 = the same order of pairs, 0 = unrelated).")
    return " ".join(words), fig


def _focus(models: list[dict]) -> dict:
    """The model an analysis is shown for: the method's (SAML) when it has one, else the first."""
    from saml_core.models import registry as models_registry

    return next((m for m in models if getattr(models_registry.find(m["model"]), "role", "") == "method"), models[0])


def _analyses_sections(report: dict, n: Noun, chart) -> list[str]:
    """Every relation signal side by side, the transfer matrix and the input importance (the
    report's doc["relations"], ["transfer"], ["importance"]), each with its computed sentences;
    what an experiment lacks is left out."""
    out = []
    names = list(report["scenario_names"])
    rel = report.get("relations") or {}
    if len(rel.get("signals") or []) >= 2:
        view = tables.agreement_view(rel)
        out.append(f"<h2>Every signal of which {html.escape(n.many)} are alike, side by side</h2>")
        out.append(_p(rel["sentence"], "headline"))
        out.append(chart(charts.matrix_heatmap(
            view["mat"], view["labels"], [str(i + 1) for i in range(len(view["labels"]))],
            f"How much each pair of signals agrees: rank correlation over the pairs of {n.many}", "Spearman",
            hover=view["hover"], marks=view["marks"], value_format="+.2f", col_title="Signal (numbered as on the left)",
            height=130 + 26 * len(view["labels"]))))
        out.append(_p(explain.relations(n, rel.get("test") or "") + " The signals: "
                      + "; ".join(f"{i + 1}. {sig['label']}" for i, sig in enumerate(rel["signals"])) + "."))
    tr = report.get("transfer") or {}
    if tr.get("models"):
        m = _focus(tr["models"])
        view = tables.transfer_view(m, names, n.one, "loss")
        out.append(f"<h2>Does one {html.escape(n.one)}'s model work on another's rows? Transfer</h2>")
        out.append(chart(charts.matrix_heatmap(
            view["mat"], names, names, f"{m['label']}: AUC lost when another {n.one}'s part scores a {n.one}'s test "
            "rows", "AUC lost", hover=view["hover"], marks=view["marks"], grey=view["grey"],
            grey_hover=view["grey_hover"], row_title=f"Part of {n.one} (row) doing the scoring",
            col_title=f"Test rows of {n.one} (column)")))
        out.append(_p(explain.transfer(n, "loss", m.get("how") or "", bool(m["too_small"])) + " " + tr["sentence"]))
    imp = report.get("importance") or {}
    if imp.get("models"):
        m = _focus(imp["models"])
        view = tables.importance_view(m, names, n.one)
        out.append(f"<h2>What drives each {html.escape(n.one)}: input importance</h2>")
        out += [_p(x, "headline" if i == 0 else "caption") for i, x in enumerate(m["sentences"])]
        out.append(chart(charts.matrix_heatmap(
            view["mat"], names, view["inputs"], f"{m['label']}: AUC lost when one input is shuffled within a "
            f"{n.one}'s test rows", "AUC lost", hover=view["hover"], marks=view["marks"], grey=view["grey"],
            grey_hover=view["grey_hover"], row_title=n.One, col_title="Input shuffled", height=200 + 34 * len(names))))
        out.append(_p(explain.importance(n, m, greyed=bool(view["grey"].any()))))
        out.append(_importance_table(m, view, names))
        others = [x for x in imp["models"] if x is not m]
        out += [_p(" ".join(x["sentences"])) for x in others]
    return out


def _importance_table(m: dict, view: dict, names: list[str]) -> str:
    """The heatmap's numbers as a table: mean AUC lost with its 95 % interval, ✓ where it holds
    in every seed."""
    by = {(c["scenario"], c["input"]): c["drop_auc"] for c in m["cells"]}
    head = "<th></th>" + "".join(f"<th>{html.escape(i)}</th>" for i in view["inputs"])
    rows = []
    for scen in names:
        cells = []
        for inp in view["inputs"]:
            a = by.get((scen, inp)) or {}
            if a.get("mean") is None:
                cells.append("<td>—</td>")
                continue
            ci = (f"<br><span class=\"caption\">{a['ci_low']:+.3f} to {a['ci_high']:+.3f}</span>"
                  if a.get("ci_low") is not None else "")
            cells.append(f"<td>{a['mean']:+.3f}{' ✓' if a.get('holds_in_every_seed') else ''}{ci}</td>")
        rows.append(f"<tr><td>{html.escape(scen)}</td>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render(exp, report: dict) -> str:
    """The HTML document of one experiment (`exp`: saml_core.store.Experiment; `report`: its
    saml_core.report.report)."""
    n = _noun(report)
    names = list(report["scenario_names"])
    figs, parts = [], []

    def chart(fig) -> str:
        out = fig.to_html(full_html=False, include_plotlyjs=not figs, config={"displaylogo": False, "responsive": True})
        figs.append(fig)
        return out

    info = exp.dataset_info or {}
    meta = [str(info.get("title") or exp.dataset)]
    samples = tables.test_samples_line(exp)
    if samples:
        meta.append(samples)
    meta.append(f"{len(names)} {n.many}")
    parts.append(f"<h1>{html.escape(exp.name)}: does learning across {html.escape(n.many)} help?</h1>")
    parts.append(_p(" · ".join(meta) + f" · summary made {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "meta"))
    if report.get("headline"):
        parts.append(_p(report["headline"], "headline"))
    within = tables.within_frame(report)
    if not within.empty:
        parts.append(chart(charts.within_auc_chart(within, n.one, n.many)))
        parts.append(_p(explain.headline_chart(n, multi=bool((within["runs"] > 1).any()))))

    parts.append("<h2>Results over seeds, with the reference predictors</h2>")
    parts.append(_table(report, n))
    parts.append(_p(explain.within_auc(n)))
    parts.append(_p(explain.OVERALL_TABLE))
    flags = tables.flag_lines(report)
    if flags:
        parts.append('<div class="flags"><b>Flags</b> (results to distrust):<ul>'
                     + "".join(f"<li>{html.escape(f)}</li>" for f in flags) + "</ul></div>")

    long_df = tables.per_scenario_long(report)
    if not long_df.empty:
        from saml_core.models import registry as models

        present = list(dict.fromkeys(long_df["model"]))
        view = long_df[long_df["model"].isin(models.main_ids(present) or present)]
        focus = models.focus_id(present, report["reference"]["model"])
        fig = charts.per_scenario_auc(view, names, n.one, show_oracle=True, focus=focus)
        drawn = {t.meta for t in fig.data}
        parts.append(f"<h2>AUC per {html.escape(n.one)}</h2>")
        parts.append(chart(fig))
        label = dict(zip(long_df["model"], long_df["label"])).get(focus, focus)
        parts.append(_p(explain.per_scenario_bars(n, bool((view["runs"] > 1).any()), label, report["reference"]["label"],
                                                  marked=bool(drawn & {"verdict-better", "verdict-worse"}))
                        + explain.oracle("oracle" in drawn)))
        parts.append(chart(charts.traffic_share_bar(report.get("traffic_share") or {}, names, scenario_colors(names),
                                                    n.one)))
        parts.append(_p(explain.traffic(n)))

    alpha = _alpha_section(exp, n)
    if alpha is not None:
        words, fig = alpha
        parts.append(f"<h2>Which {html.escape(n.many)} are alike, as the model learned it</h2>")
        parts.append(chart(fig))
        parts.append(_p(words))
    parts += _analyses_sections(report, n, chart)

    parts.append(_p("Made by the SAML scenario-correlation dashboard from the experiment's stored results "
                    f"(python -m saml_core report {exp.name} --html FILE makes the same file). Means over seeds with "
                    "their spread; verdicts from paired tests over every seed.", "meta"))
    title = html.escape(f"{exp.name}: summary")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body>{''.join(parts)}</body></html>\n")


def write(root, name: str, path, reference: str | None = None) -> Path:
    """Render experiment `name` of the artifacts root and write the file atomically (an
    ArtifactError names the file when it cannot be written; an old file stays whole)."""
    from saml_core import artifacts as art
    from saml_core import report as reports, store

    path = Path(path)
    if not path.parent.is_dir():  # a typo must not leave new folders behind
        raise art.ArtifactError(path, f"cannot write: the folder {path.parent} does not exist")
    if path.is_dir():
        raise art.ArtifactError(path, "cannot write: a folder of that name exists; name a file")
    exp = store.load_experiment(root, name)
    doc = reports.report(root, name, reference=reference)
    art.atomic_write_bytes(path, render(exp, doc).encode("utf-8"))
    return path
