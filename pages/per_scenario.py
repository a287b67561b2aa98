"""AUC per scenario: every model against BST, scenario by scenario, with verdicts over all seeds."""
import streamlit as st

from dashboard import charts, explain, tables, ui
from saml_core.models import registry as models

ui.page_setup("AUC per scenario")
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

present = sorted(long_df["model"].unique(), key=lambda m: (models.find(m).order if models.find(m) else 999, m))
main = [m for m in present if (e := models.find(m)) is not None and e.default and e.role != "ablation"]
main = main or present
extra = [m for m in present if m not in main]
c1, c2 = st.columns([3, 2])
labels = dict(zip(long_df["model"], long_df["label"]))
added = c1.multiselect("Also show", extra, default=[], format_func=labels.get, key="more_models",
                       disabled=not extra, help="SAML's ablations and other baselines of this experiment.")
shown = main + list(added)
has_oracle = bool(exp.oracle_auc)
show_oracle = c2.toggle("Show oracle AUC", value=has_oracle, key="show_oracle", disabled=not has_oracle,
                        help="Best accuracy any model can reach (known only for simulated data).")
focus = "saml" if "saml" in present else next((m for m in present if m != report["reference"]["model"]), present[0])

view = long_df[long_df["model"].isin(shown)]
multi = bool((view["runs"] > 1).any())
st.plotly_chart(charts.per_scenario_auc(view, names, n.one, show_oracle=show_oracle, focus=focus),
                width="stretch", key="auc_chart")
st.caption(explain.per_scenario_bars(n, multi) + (explain.ORACLE if show_oracle else ""))

wide = tables.per_scenario_wide(view, names, n.one, focus=focus)
st.subheader(f"Per-{n.one} table")
st.dataframe(wide, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in wide.columns
                            if c.endswith("AUC")}
             | {"Traffic share (%)": st.column_config.NumberColumn(format="%.1f"),
                "RelaImpr (%)": st.column_config.NumberColumn(format="%+.2f"),
                "p": st.column_config.NumberColumn(format="%.2g"),
                "p (Holm)": st.column_config.NumberColumn(format="%.2g", help="Holm-adjusted for testing every "
                                                                             f"{n.one}")})
st.download_button("Download this table (CSV)", wide.to_csv(index=False).encode("utf-8"),
                   file_name=f"{exp.name}-auc-per-{n.one.replace(' ', '-')}.csv", mime="text/csv", key="csv")

c1, c2 = st.columns(2)
with c1:
    st.plotly_chart(charts.relaimpr_bars(view, names, n.one, report["reference"]["model"]), width="stretch",
                    key="relaimpr")
    st.caption(explain.relaimpr(n))
with c2:
    st.plotly_chart(charts.traffic_share_bar(exp.traffic_share or {}, names, ui.colors_for(exp), n.one),
                    width="stretch", key="traffic")
    st.caption(explain.traffic(n))

anchors = report.get("anchors") or []
if anchors:
    st.subheader("Published numbers on this dataset")
    st.caption("From papers and public libraries, with other settings, sizes and splits: a sense of scale, "
               "not a comparison.")
    st.dataframe(anchors, hide_index=True, width="stretch")
