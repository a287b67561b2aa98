"""Sensitivity sweeps (the paper's Fig. 2): test AUC against embedding size, attention heads or
MLP depth, for each model of a `--sweep` experiment."""
import streamlit as st

from dashboard import charts, tables, ui

exp = ui.current_experiment()
n = ui.noun(exp)
st.title("How sensitive are the models to their sizes? — Sensitivity sweeps")

report = ui.report_or_stop(exp)
sweep = tables.sweep_frame(report)
if sweep.empty:
    st.info("This experiment is not a sensitivity sweep. Train one on the same data with "
            f"`python -m saml_core experiment --dataset {exp.dataset} --name sweep-emb --sweep emb` "
            "(embedding size 8-32; `--sweep heads` for 4-16 attention heads, `--sweep depth` for 2-5 MLP "
            "layers), or pick a sweep experiment in the sidebar.")
    st.stop()
ui.broken_runs_notice(exp)
for dim, sub in sweep.groupby("sweep", sort=False):
    st.plotly_chart(charts.sweep_lines(sub, dim), width="stretch", key=f"sweep_{dim}")
    multi = bool((sub["runs"] > 1).any())
    st.caption(("Points: mean test AUC over runs, whiskers ± std over runs. " if multi else
                "Points: test AUC, whiskers its 95 % confidence interval. ") +
               "Where whiskers overlap, the sizes are not distinguishable on this data. " +
               tables.sweep_sentence(sub))
st.dataframe(sweep.drop(columns=["model"]), hide_index=True, width="stretch",
             column_config={"AUC": st.column_config.NumberColumn(format="%.4f"),
                            "low": st.column_config.NumberColumn(format="%.4f"),
                            "high": st.column_config.NumberColumn(format="%.4f")})
