"""The views of the run analyses (saml_core.analyses, saml_core.relations; read from the report):
every relation signal side by side, the transfer matrix, the per-scenario input importance, and
the button that queues the analyses job for runs trained before these existed. Streamlit here;
the data shaping is in dashboard/tables.py, the figures in dashboard/charts.py."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data_access as da, explain, tables, ui
from dashboard.explain import Noun


def compute_missing(exp, what: str, key: str) -> None:
    """For runs that lack their transfer matrix or importance (trained before they existed): say
    so, and offer the background job that computes them from the stored weights (not in demo
    mode, where the command is given instead)."""
    from saml_core import analyses

    todo = analyses.missing(exp)
    if not todo:
        return
    n_runs = len(todo)
    lack = [a for a in ("transfer", "importance") if any(a in got for got in todo.values())]
    words = " and ".join({"transfer": "transfer matrices", "importance": "input importance"}[a] for a in lack)
    line = (f"{n_runs} run{'s' * (n_runs != 1)} of this experiment lack{'s' * (n_runs == 1)} {words} (trained "
            f"before they were computed, or the files were removed); {what} shows the runs that have them.")
    if ui.is_demo_mode():
        st.caption(f":material/info: {line} `python -m saml_core analyses {exp.name}` computes them.")
        return
    active = [j for j in da.jobs().list() if j.active and j.experiment == exp.name]
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.caption(f":material/info: {line}")
    if active:
        c2.caption(":material/hourglass_top: A job for this experiment is queued or running (Retrain page).")
    elif c2.button("Compute them", key=key, help="A background job computes them from each run's stored weights; "
                   "the page shows them when it is done."):
        try:
            da.submit_analyses(exp.name)
        except (da.ArtifactError, ValueError) as exc:
            st.error(f"Not queued: {exc}")
        else:
            st.rerun()


def relations_section(exp, report: dict, n: Noun) -> None:
    """Every relation signal of the experiment against every other, with the computed sentence."""
    rel = report.get("relations") or {}
    signals = rel.get("signals") or []
    st.subheader(f"Every signal of which {n.many} are alike, side by side")
    if len(signals) < 2:
        st.info(rel.get("sentence") or f"This experiment has fewer than two signals of how {n.many} relate.")
        return
    st.markdown(f"**{rel['sentence']}**")
    view = tables.agreement_view(rel)
    st.plotly_chart(charts.matrix_heatmap(
        view["mat"], view["labels"], [str(i + 1) for i in range(len(signals))], "How much each pair of signals "
        f"agrees: rank correlation over the pairs of {n.many}", "Spearman", hover=view["hover"], marks=view["marks"],
        value_format="+.2f", col_title="Signal (numbered as on the left)", height=130 + 26 * len(signals)),
        width="stretch", key="relations_heatmap")
    st.caption(explain.relations(n, rel.get("test") or "") + " The signals: "
               + "; ".join(f"{i + 1}. {sig['label']}" for i, sig in enumerate(signals)) + ".")
    with st.expander(f"Every pair of signals ({len(rel.get('pairs') or [])}), strongest agreement first"):
        st.dataframe(tables.agreement_frame(rel), hide_index=True, width="stretch", key="relations_table",
                     column_config={"Spearman": st.column_config.NumberColumn(format="%+.2f"),
                                    "std": st.column_config.NumberColumn(format="%.2f")})
    for note in rel.get("notes") or []:
        st.caption(f"Note: {note}")


def transfer_section(exp, report: dict, n: Noun) -> None:
    """The transfer matrix of a model with per-scenario parts: AUC of s's part on t's test rows,
    or the AUC lost against t's own part, with CIs; too-small scenarios grey."""
    tr = report.get("transfer") or {}
    models = tr.get("models") or []
    st.subheader(f"Does one {n.one}'s model work on another's rows? — Transfer")
    if not models:
        st.caption(f"No run of this experiment has a transfer matrix (models with one part per {n.one}: "
                   "BST-Individual and SAML).")
        compute_missing(exp, "the matrix", "transfer_compute")
        return
    names = list(tr["scenarios"])
    c1, c2 = st.columns(2)
    by = {m["group"]: m for m in models}
    group = c1.selectbox("Model", list(by), key="transfer_model",
                         format_func=lambda g: f"{by[g]['label']} ({by[g]['n_runs']} run{'s' * (by[g]['n_runs'] != 1)})")
    what = c2.radio("Show", ["loss", "auc"], horizontal=True, key="transfer_what",
                    format_func={"loss": "AUC lost against the own part", "auc": "AUC"}.get)
    m = by[group]
    view = tables.transfer_view(m, names, n.one, what)
    title = (f"{m['label']}: AUC lost when another {n.one}'s part scores a {n.one}'s test rows" if what == "loss"
             else f"{m['label']}: AUC of each {n.one}'s part on each {n.one}'s test rows")
    st.plotly_chart(charts.matrix_heatmap(
        view["mat"], names, names, title, "AUC lost" if what == "loss" else "AUC", hover=view["hover"],
        center=0.0 if what == "loss" else None, marks=view["marks"], grey=view["grey"], grey_hover=view["grey_hover"],
        row_title=f"Part of {n.one} (row) doing the scoring", col_title=f"Test rows of {n.one} (column)",
        value_format="+.3f" if what == "loss" else ".3f"), width="stretch", key="transfer_heatmap")
    st.caption(explain.transfer(n, what, m.get("how") or "", bool(m["too_small"])) + " " + m["sentence"])
    compute_missing(exp, "the matrix", "transfer_compute")


def importance_section(exp, report: dict, n: Noun) -> None:
    """Per model, the scenario x input heatmap of the AUC lost when an input is shuffled within a
    scenario's test rows, the computed sentences, and the CSV of every model's table."""
    from saml_core import analyses

    imp = report.get("importance") or {}
    models = imp.get("models") or []
    if not models:
        st.info(f"No run of this experiment has its input importance per {n.one} yet.")
        compute_missing(exp, "the heatmap", "importance_compute")
        return
    names = list(imp["scenarios"])
    by = {m["group"]: m for m in models}
    group = st.selectbox("Model", list(by), key="importance_model",
                         format_func=lambda g: f"{by[g]['label']} ({by[g]['n_runs']} run{'s' * (by[g]['n_runs'] != 1)})")
    m = by[group]
    for sentence in m["sentences"]:
        st.markdown(f"**{sentence}**" if sentence is m["sentences"][0] else sentence)
    view = tables.importance_view(m, names, n.one)
    st.plotly_chart(charts.matrix_heatmap(
        view["mat"], names, view["inputs"], f"{m['label']}: AUC lost when one input is shuffled within a {n.one}'s "
        "test rows", "AUC lost", hover=view["hover"], marks=view["marks"], grey=view["grey"],
        grey_hover=view["grey_hover"], row_title=n.One, col_title="Input shuffled",
        height=200 + 34 * len(names)), width="stretch", key="importance_heatmap")
    st.caption(explain.importance(n, m, greyed=bool(view["grey"].any())))
    rows = analyses.importance_table(imp, tuple(report.get("scenario_noun") or (n.one, n.many)))
    st.download_button("Download the importance table (CSV, every model)", pd.DataFrame(rows).to_csv(index=False)
                       .encode("utf-8"), file_name=f"{exp.name}-importance.csv", mime="text/csv",
                       key="importance_csv")
    compute_missing(exp, "the heatmap", "importance_compute")
    for note in imp.get("notes") or []:
        st.caption(f"Note: {note}")
