"""Scenario correlations: what SAML's mutual unit learned (α, g) against planted and data similarity."""
import numpy as np
import streamlit as st

from dashboard import charts, data_access as da, explain, tables, ui

ui.page_setup("Scenario correlations")
exp = ui.current_experiment()
names = list(exp.scenario_names)
one = ui.scenario_word(exp, plural=False)
colors = ui.colors_for(exp)
st.title(f"Which {ui.scenario_word(exp)} behave alike? — Scenario correlations")

usable = ui.runs_with_probes(exp, ("full", "no_aux"))
if not usable:
    st.info("This experiment has no finished SAML run with a mutual unit, so there are no similarity "
            "(α) or gate (g) coefficients to show. Train SAML (full) on the Retrain page.")
    st.stop()

c1, c2 = st.columns(2)
by_id = {r.run_id: r for r in usable}
run = by_id[c1.selectbox("SAML run", list(by_id), key="corr_run",
                         format_func=lambda i: f"{by_id[i].label} · seed {by_id[i].seed} ({i})")]
try:
    pr = da.probes(exp.name, run.run_id)
except da.ArtifactError as exc:
    st.error(f"Run **{run.run_id}** cannot be shown: {exc}")
    st.stop()
if "alpha" not in pr or "gate" not in pr:
    st.error(f"Run **{run.run_id}**: {da.probes_path(exp.name, run.run_id)} has no α/gate arrays.")
    st.stop()
n_layers = int(pr["alpha"].shape[0])
hidden_of = [int(x) for x in pr.get("mutual_layers", range(n_layers))]
layer = c2.selectbox("Mutual-unit layer", list(range(n_layers)), key="corr_layer",
                     format_func=lambda i: f"Mutual unit {i + 1} of {n_layers} (after hidden layer {hidden_of[i] + 1})")

mat, counts = tables.alpha_matrix(pr["alpha"], pr["scenario"], layer, len(names))
order = tables.cluster_order(mat)
ordered = [names[i] for i in order]
sub = mat[np.ix_(order, order)]
st.plotly_chart(charts.heatmap(sub, ordered, f"Mean similarity coefficient α, mutual unit {layer + 1} ({run.label})",
                               "mean α", counts=counts[order]), width="stretch", key="alpha_heatmap")
st.caption(explain.HEATMAP + f" An even split would be {1 / max(len(names) - 1, 1):.3f} in every cell: "
           "the departures from it, however small, are what the model learned. "
           f"Based on {int(counts.sum()):,} test samples.")

st.subheader("Who listens to whom, sample by sample")
default_src = next((s for s in ("ES", "UA") if s in names), names[0])
src_name = st.selectbox(f"{one.capitalize()} whose listening you want to see", names, index=names.index(default_src),
                        key="cdf_source")
src = names.index(src_name)
cdf = tables.alpha_cdf_frame(pr["alpha"], pr["scenario"], layer, src, names)
if cdf.empty:
    st.info(f"No test samples of {src_name} in the probe subset.")
else:
    st.plotly_chart(charts.alpha_cdf(cdf, src_name, colors), width="stretch", key="alpha_cdf")
    st.caption(explain.CDF + f" ({int(cdf['n'].iloc[0]):,} samples of {src_name}.)")

st.subheader(f"How much does each {one} borrow? — gate coefficient g")
gates = tables.gate_frame(pr["gate"], pr["scenario"], layer, names)
c1, c2 = st.columns([3, 2])
with c1:
    st.plotly_chart(charts.gate_distributions(gates, names, colors), width="stretch", key="gate_box")
    st.caption(explain.GATES)
with c2:
    gvt = tables.gate_vs_traffic(gates, exp.traffic_share or {}, names)
    st.plotly_chart(charts.gate_vs_traffic_scatter(gvt, colors), width="stretch", key="gate_traffic")
    st.caption(explain.GATE_TRAFFIC)

learned_sym = (np.nan_to_num(mat) + np.nan_to_num(mat).T) / 2
np.fill_diagonal(learned_sym, np.nan)
if exp.true_similarity is not None:
    st.subheader("Did the model find the similarity we planted?")
    true = np.asarray(exp.true_similarity, dtype=float)
    # The engine's figure (same formula, docs/ARTIFACTS.md) when stored, else computed here.
    stored = ((run.metrics or {}).get("similarity_recovery") or {}).get("spearman") or []
    rho = stored[layer] if layer < len(stored) and stored[layer] is not None else tables.recovery_spearman(mat, true)
    st.metric("Recovery score (Spearman rank correlation, planted vs learned)",
              "n/a" if not np.isfinite(rho) else f"{rho:.2f}")
    c1, c2 = st.columns(2)
    planted = true.copy()
    np.fill_diagonal(planted, np.nan)
    c1.plotly_chart(charts.heatmap(planted[np.ix_(order, order)], ordered, "Planted similarity (ground truth)",
                                   "similarity", row_title=one.capitalize(), col_title=one.capitalize(), height=430,
                                   show_values=False),
                    width="stretch", key="planted")
    c2.plotly_chart(charts.heatmap(learned_sym[np.ix_(order, order)], ordered,
                                   f"Learned similarity (α symmetrised, mutual unit {layer + 1})", "mean α",
                                   row_title=one.capitalize(), col_title=one.capitalize(), height=430, show_values=False),
                    width="stretch", key="learned")
    st.caption(explain.PLANTED)

if exp.data_similarity is not None:
    st.subheader("Similarity computed from the data itself")
    data_sim = np.asarray(exp.data_similarity, dtype=float).copy()
    rho_d = tables.recovery_spearman(mat, data_sim)
    np.fill_diagonal(data_sim, np.nan)
    c1, c2 = st.columns([3, 1])
    c1.plotly_chart(charts.heatmap(data_sim[np.ix_(order, order)], ordered,
                                   f"Overlap of clicked categories between {ui.scenario_word(exp)} (from training data)",
                                   "overlap", row_title=one.capitalize(), col_title=one.capitalize(), height=430),
                    width="stretch", key="data_sim")
    c2.metric("Agreement with learned α (Spearman)", "n/a" if not np.isfinite(rho_d) else f"{rho_d:.2f}")
    st.caption(explain.DATA_SIMILARITY)
