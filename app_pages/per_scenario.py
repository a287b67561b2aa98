"""AUC per scenario: the within-scenario AUC of every model first, then every model against BST,
scenario by scenario, with verdicts over all seeds, and the reference predictors' logloss."""
import streamlit as st

from dashboard import charts, explain, tables, ui
from saml_core.models import registry as models

exp = ui.current_experiment()
n = ui.noun(exp)
names = list(exp.scenario_names)
st.title(f"Which {n.many} gain from SAML? — AUC per {n.one}")
ui.broken_runs_notice(exp)

report = ui.report_or_stop(exp)
long_df = tables.per_scenario_long(report)
if long_df.empty:
    st.info(f"No run of this experiment has per-{n.one} results yet.")
    st.stop()

# The headline first: one number per model that knowing a scenario's click rate cannot reach.
overall = tables.overall_table(report, n.one)
within = tables.within_col(n.one)
st.dataframe(overall, hide_index=True, width="stretch", placeholder="—", key="within_table",
             column_order=[c for c in ("Model", within, f"{within} std", "Verdict vs BST", "Pooled AUC")
                           if c in overall],
             column_config={"Model": st.column_config.TextColumn(pinned=True),
                            within: st.column_config.NumberColumn(format="%.4f", help=explain.within_auc(n)),
                            f"{within} std": st.column_config.NumberColumn("std", format="%.4f"),
                            "Pooled AUC": st.column_config.NumberColumn(format="%.4f", help=explain.pooled_auc(n))})
st.caption(explain.within_auc(n) + f" Below, {n.one} by {n.one}.")

present = sorted(long_df["model"].unique(), key=lambda m: (models.find(m).order if models.find(m) else 999, m))
main = models.main_ids(present) or present
extra = [m for m in present if m not in main]
c1, c2 = st.columns([3, 2])
labels = dict(zip(long_df["model"], long_df["label"]))
added = c1.multiselect("Also show", extra, default=[], format_func=labels.get, key="more_models",
                       disabled=not extra, help="SAML's ablations and other baselines of this experiment.")
shown = main + list(added)
has_oracle = any(v is not None for v in (exp.oracle_auc or {}).values())  # real data stores none
show_oracle = has_oracle and c2.toggle("Show oracle AUC", value=True, key="show_oracle",
                                       help="Best accuracy any model can reach (known only for simulated data).")
focus = models.focus_id(present, report["reference"]["model"])

view = long_df[long_df["model"].isin(shown)]
multi = bool((view["runs"] > 1).any())
fig = charts.per_scenario_auc(view, names, n.one, show_oracle=show_oracle, focus=focus)
st.plotly_chart(fig, width="stretch", key="auc_chart")
drawn = {t.meta for t in fig.data}  # the caption speaks of what the chart draws, nothing else
st.caption(explain.per_scenario_bars(n, multi, labels.get(focus, focus), report["reference"]["label"],
                                     marked=bool(drawn & {"verdict-better", "verdict-worse"}))
           + explain.oracle("oracle" in drawn))

wide = tables.per_scenario_wide(view, names, n.one, focus=focus,  # every column: the CSV download
                                references=report.get("references"))
st.subheader(f"Per-{n.one} table: test AUC and the verdict")
# The table on screen fits a 1024 px window: the chart's main models, the focus model's verdict and
# RelaImpr; counts, p-values, the oracle and added models are under "More columns".
key_col, verdict_col = n.One, f"{labels[focus]} vs BST"
auc_cols = {m: f"{labels[m]} AUC" for m in shown if f"{labels[m]} AUC" in wide}
first = [key_col, "Traffic share (%)"] + [auc_cols[m] for m in main if m in auc_cols] + [verdict_col, "RelaImpr (%)"]
first = [c for c in first if c in wide]
loglosses = [c for c in wide if c.endswith("logloss")]
more = [key_col, "Test samples", "Test clicks", "Test non-clicks"] + [c for c in auc_cols.values() if c not in first] \
    + ["p", "p (Holm)", "Oracle AUC"] + loglosses + ["Why no verdict"]
more = [c for c in more if c in wide]
config = {c: st.column_config.NumberColumn(c.removesuffix(" AUC"), format="%.4f", help=f"Test AUC of {c[:-4]}")
          for c in auc_cols.values()} | {c: st.column_config.NumberColumn(format="%.4f") for c in loglosses} | {
    key_col: st.column_config.TextColumn(pinned=True),
    "Traffic share (%)": st.column_config.NumberColumn("Share (%)", format="%.1f",
                                                       help=f"Share of the training samples from this {n.one}"),
    verdict_col: st.column_config.TextColumn(help=f"Paired test of {labels[focus]} against BST over every seed, "
                                                  f"Holm-adjusted for testing every {n.one}"),
    "RelaImpr (%)": st.column_config.NumberColumn(format="%+.2f", help=explain.relaimpr(n)),
    "Test samples": st.column_config.NumberColumn(format="%d"),
    "Test clicks": st.column_config.NumberColumn(format="%d"),
    "Test non-clicks": st.column_config.NumberColumn(format="%d"),
    "p": st.column_config.NumberColumn(format="%.2g", help=f"Paired test of {labels[focus]} against BST"),
    "p (Holm)": st.column_config.NumberColumn(format="%.2g", help=f"Holm-adjusted for testing every {n.one}"),
    "Oracle AUC": st.column_config.NumberColumn(format="%.4f", help="Best AUC any model can reach (simulator)")}
st.dataframe(wide, hide_index=True, width="stretch", column_order=first, column_config=config, placeholder="—",
             key="auc_table")
with st.expander("More columns: test samples and clicks, p-values, logloss beside the references"
                 + (", oracle" if "Oracle AUC" in more else "")
                 + (", " + ", ".join(labels[m] for m in added) if added else "")):
    st.dataframe(wide, hide_index=True, width="stretch", column_order=more, column_config=config, placeholder="—",
                 key="auc_table_more")
    if "Why no RelaImpr" in wide:
        reasons = wide[wide["Why no RelaImpr"] != ""]
        st.caption(f"No RelaImpr ({len(reasons)} of {len(wide)} {n.many}): " + "; ".join(
            f"{s}: {why}" for s, why in zip(reasons[key_col], reasons["Why no RelaImpr"])) + ".")
st.download_button("Download this table (CSV, every column)", wide.to_csv(index=False).encode("utf-8"),
                   file_name=f"{exp.name}-auc-per-{n.one.replace(' ', '-')}.csv", mime="text/csv", key="csv")

left, right = ui.row("per-scenario-charts")
with left:
    st.plotly_chart(charts.relaimpr_bars(view, names, n.one, report["reference"]["model"]), width="stretch",
                    key="relaimpr")
    st.caption(explain.relaimpr(n))
with right:
    st.plotly_chart(charts.traffic_share_bar(exp.traffic_share or {}, names, ui.colors_for(exp), n.one),
                    width="stretch", key="traffic")
    st.caption(explain.traffic(n))

anchors = report.get("anchors") or []
if anchors:
    st.subheader("Published numbers on this dataset")
    st.caption("From papers and public libraries, with other settings, sizes and splits: a sense of scale, "
               "not a comparison.")
    st.dataframe(anchors, hide_index=True, width="stretch", placeholder="—")
