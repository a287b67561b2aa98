"""Overview: the report's one computed sentence and its chart first (each model's within-scenario
AUC), then the experiment's Table II over seeds (verdicts against BST, the reference predictors,
flags, settings, how runs stopped), a shareable HTML summary, what the dashboard answers (folded)
and the training curves."""
import streamlit as st

from dashboard import charts, explain, tables, ui

exp = ui.current_experiment()
n = ui.noun(exp)

st.title(f"Does learning across {n.many} help?")
ui.broken_runs_notice(exp)
report = ui.report_or_stop(exp)
if report.get("headline"):
    st.markdown(f"**{report['headline']}**")  # the one computed sentence the page opens with
within_df = tables.within_frame(report)
if not within_df.empty:
    st.plotly_chart(charts.within_auc_chart(within_df, n.one, n.many), width="stretch", key="headline_chart")
    st.caption(explain.headline_chart(n, multi=bool((within_df["runs"] > 1).any())))
c1, c2 = st.columns(2)
with c1.expander("What this dashboard answers"):
    st.markdown(explain.app_intro(n))
with c2.expander("Words used on these pages"):
    st.markdown(explain.glossary(n))

st.subheader(f"Experiment “{exp.name}”: overall results")
table = tables.overall_table(report, n.one)
if table.empty:
    st.info("No run of this experiment has finished yet, so there is nothing to compare.")
    st.stop()

# The verdict table fits a 1024 px window; how each model trained is one click away.
within = tables.within_col(n.one)
config = {
    # Widths that fit the verdict columns in a 1024 px window (the reference rows' long names are cut
    # there; the CSV and a wider window show them whole).
    "Model": st.column_config.TextColumn(pinned=True, width=170),
    "Runs": st.column_config.NumberColumn(width=50),
    within: st.column_config.NumberColumn(format="%.4f", help=explain.within_auc(n), width=120),
    f"{within} std": st.column_config.NumberColumn("std", format="%.4f", help="Across runs (model and data seeds)"),
    "Pooled AUC": st.column_config.NumberColumn(format="%.4f", help=explain.pooled_auc(n)),
    "Logloss": st.column_config.NumberColumn(format="%.4f", help="Lower is better"),
    "Verdict vs BST": st.column_config.TextColumn(
        help=f"Paired test of the within-{n.one} AUC against BST on the same test samples, every seed"),
    "RelaImpr vs BST (%)": st.column_config.NumberColumn(
        "RelaImpr (%)", format="%+.2f",
        help=f"Relative improvement of the within-{n.one} AUC over BST's; empty where BST's is not clearly better "
             "than guessing (the ratio means nothing)"),
    "p (vs BST)": st.column_config.NumberColumn("p", format="%.2g", help="p-value of the paired test against BST"),
    "Epochs": st.column_config.NumberColumn(format="%.1f", help="Epochs trained (mean over runs)"),
    "Train time (s)": st.column_config.NumberColumn(format="%.0f", help="All runs together"),
}
verdict_cols = [c for c in ("Model", "Runs", within, f"{within} std", "Verdict vs BST", "p (vs BST)",
                            "RelaImpr vs BST (%)", "Pooled AUC") if c in table]
st.dataframe(table, hide_index=True, width="stretch", column_order=verdict_cols, column_config=config,
             placeholder="—", key="overall_table")
st.caption(explain.within_auc(n))
flags = tables.flag_lines(report)
if flags:
    st.warning("**Flags** (results to distrust):\n" + "\n".join(f"- {line}" for line in flags), icon=":material/flag:")
is_ref = table["model"].isin([r["id"] for r in report.get("references") or []])
for label, note in zip(table["Model"][is_ref], table["Note"][is_ref]):
    if note:
        st.caption(f"{label}: {note}")
c1, c2 = st.columns(2)
c1.download_button("Download this table (CSV, every column)", table.drop(columns="model").to_csv(index=False)
                   .encode("utf-8"), file_name=f"{exp.name}-overall.csv", mime="text/csv", key="overall_csv")


def _summary_html() -> bytes:  # built on click only: the file carries Plotly's whole library (~4.7 MB)
    from dashboard import summary

    return summary.render(exp, report).encode("utf-8")


c2.download_button("Download a summary to share (one HTML file, opens offline)", _summary_html,
                   file_name=f"{exp.name}-summary.html", mime="text/html", key="summary_html", on_click="ignore",
                   help="The headline, this table with the reference rows, the per-" + n.one + " chart and what "
                        f"the model says about which {n.many} are alike, each with its sentence: one file that "
                        "opens in any browser without this app or a network. Also `python -m saml_core report "
                        f"{exp.name} --html FILE`.")
trained = table[~is_ref]
with st.expander("More columns: logloss, and how each model trained (epochs, early stopping, training time)"):
    st.dataframe(table, hide_index=True, width="stretch", column_config=config, placeholder="—",
                 key="training_table",
                 column_order=["Model", "Logloss", "Epochs", "Stopped at the cap while improving", "Train time (s)"])
st.caption(explain.OVERALL_TABLE + " " + explain.OVERALL_TABLE_MORE)
for line in tables.settings_lines(report, n.one):
    st.caption(line)
capped = trained[trained["Stopped at the cap while improving"] != "no"]
if len(capped):
    st.warning("Stopped at the epoch cap while still improving (more epochs might change the result): "
               + "; ".join(f"{m}: {c.removeprefix('yes: ')}" for m, c in
                           zip(capped["Model"], capped["Stopped at the cap while improving"])),
               icon=":material/warning:")
for note in report.get("notes") or []:
    st.caption(f"Note: {note}")

st.subheader("Training curves")
hist = tables.history_frame(exp.runs)
if hist.dropna(subset=["epoch"]).empty:
    st.info("These runs recorded no training history.")
else:
    metric = st.radio("Curve", ["valid_auc", "train_loss"], horizontal=True, key="curve_metric",
                      format_func={"valid_auc": "Validation AUC", "train_loss": "Training loss"}.get)
    st.plotly_chart(charts.training_curves(hist, metric), width="stretch", key="curves")
    st.caption(explain.TRAINING_CURVES[metric])
