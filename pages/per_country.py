"""Per-country AUC: BST-Individual vs BST vs SAML (and ablations) per scenario."""
import streamlit as st

from dashboard import charts, data_access as da, explain, tables, ui
from dashboard.colors import model_sort_key

ui.page_setup("Per-country AUC")
exp = ui.current_experiment()
names = list(exp.scenario_names)
st.title(f"Which {ui.scenario_word(exp)} gain from SAML? — AUC per {ui.scenario_word(exp, plural=False)}")
ui.broken_runs_notice(exp)

long_df = tables.per_scenario_frame(exp.runs, names)
if long_df.empty:
    st.info("No run of this experiment has per-scenario results yet.")
    st.stop()

report, report_error = da.report(exp.name)
p_values = tables.saml_p_values(report)

labels = sorted(long_df["label"].unique(), key=model_sort_key)
main = [lab for lab in labels if lab in ("BST-Individual", "BST", "SAML")]
ablations = [lab for lab in labels if lab not in main]
c1, c2 = st.columns([3, 2])
show_ablations = c1.toggle("Show SAML ablations", value=False, key="show_ablations",
                           disabled=not ablations,
                           help="SAML w/o gate, w/o aux, w/o gate&mut: which parts of SAML matter.")
shown = main + (ablations if show_ablations else [])
has_oracle = bool(exp.oracle_auc)
show_oracle = c2.toggle("Show oracle AUC", value=has_oracle, key="show_oracle", disabled=not has_oracle,
                        help="Best accuracy any model can reach (known only for simulated data).")

summary = tables.per_scenario_summary(long_df[long_df["label"].isin(shown)], names, exp.traffic_share,
                                      exp.oracle_auc, p_values)
st.plotly_chart(charts.per_scenario_bars(summary, names, show_oracle=show_oracle), width="stretch", key="bars")
st.caption(explain.PER_SCENARIO_BARS + (explain.ORACLE if show_oracle else ""))
if not p_values:
    st.caption("No paired significance test is available for this experiment"
               + (f" ({report_error})." if report_error else "."))

wide = tables.per_scenario_wide(summary, names)
st.subheader("Per-country table")
st.dataframe(wide, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in wide.columns
                            if c.endswith("AUC") or c.endswith("std") or c == "Oracle AUC"}
             | {"Traffic share (%)": st.column_config.NumberColumn(format="%.1f"),
                "SAML RelaImpr vs BST (%)": st.column_config.NumberColumn(format="%+.2f"),
                "SAML vs BST p-value": st.column_config.NumberColumn(format="%.3g")})
st.download_button("Download this table (CSV)", wide.to_csv(index=False).encode("utf-8"),
                   file_name=f"{exp.name}-per-country-auc.csv", mime="text/csv", key="csv")

c1, c2 = st.columns(2)
with c1:
    st.plotly_chart(charts.relaimpr_bars(summary, names), width="stretch", key="relaimpr")
    st.caption(explain.RELAIMPR)
with c2:
    st.plotly_chart(charts.traffic_share_bar(exp.traffic_share or {}, names, ui.colors_for(exp)),
                    width="stretch", key="traffic")
    st.caption(explain.TRAFFIC)
