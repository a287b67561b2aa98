"""SAML scenario-correlation dashboard: `streamlit run app.py`.

This entry script is also the Overview page: what the dashboard answers, the experiment's
Table II and training curves. The other pages are in pages/; shared pieces in dashboard/.
"""
import streamlit as st

from dashboard import charts, explain, tables, ui

ui.page_setup("Overview")
exp = ui.current_experiment()

st.title(f"Does learning across {ui.scenario_word(exp)} help? — Overview")
with st.expander("What this dashboard answers", expanded=True):
    st.markdown(explain.APP_INTRO)
with st.expander("Words used on these pages"):
    st.markdown(explain.GLOSSARY)

st.subheader(f"Experiment “{exp.name}”: overall results")
ui.broken_runs_notice(exp)
runs_df = tables.runs_frame(exp.runs)
if runs_df.empty:
    st.info("No run of this experiment has finished yet, so there is nothing to compare.")
    st.stop()

table = tables.overall_table(runs_df)
st.dataframe(
    table, hide_index=True, width="stretch",
    column_config={
        "AUC": st.column_config.NumberColumn(format="%.4f"),
        "AUC std": st.column_config.NumberColumn(format="%.4f", help="Across seeds (empty with one seed)"),
        "Logloss": st.column_config.NumberColumn(format="%.4f"),
        "RelaImpr vs BST (%)": st.column_config.NumberColumn(format="%+.2f"),
        "Epochs": st.column_config.NumberColumn(format="%.1f"),
        "Train time (s)": st.column_config.NumberColumn(format="%.0f"),
    },
)
st.caption(explain.OVERALL_TABLE)

st.subheader("Training curves")
hist = tables.history_frame(exp.runs)
if hist.dropna(subset=["epoch"]).empty:
    st.info("These runs recorded no training history.")
else:
    metric = st.radio("Curve", ["valid_auc", "train_loss"], horizontal=True, key="curve_metric",
                      format_func={"valid_auc": "Validation AUC", "train_loss": "Training loss"}.get)
    st.plotly_chart(charts.training_curves(hist, metric), width="stretch", key="curves")
    st.caption(explain.TRAINING_CURVES)
