"""What drives each scenario: per-scenario permutation importance of every input (each categorical
and numeric field, each behaviour sequence as a whole), the inputs whose importance differs between
scenarios, those that matter nowhere, and the table as CSV (saml_core.analyses, via the report)."""
import streamlit as st

from dashboard import analyses_ui, ui

exp = ui.current_experiment()
n = ui.noun(exp)
st.title(f"What drives each {n.one}? — Input importance")
ui.broken_runs_notice(exp)
report = ui.report_or_stop(exp)
analyses_ui.importance_section(exp, report, n)
