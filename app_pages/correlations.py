"""Which scenarios are alike: what SAML's mutual unit learned (α, g), split into what every branch
shares and what is specific to a pair, checked against the planted / data-derived similarity,
across seeds, and beside what the other multi-scenario models say."""
import numpy as np
import streamlit as st

from dashboard import analyses_ui, charts, data_access as da, explain, tables, ui
from saml_core import evaluate as ev
from saml_core import relations


@st.cache_data(max_entries=256, show_spinner=False)
def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """The engine's Mantel test (999 permutations, fixed seed: the same answer every time), cached:
    the page asks for several on every rerun."""
    return ev.matrix_agreement(a, b, n_perm=999)


@st.cache_data(max_entries=16, show_spinner=False)
def cka(hidden_all: np.ndarray) -> np.ndarray:
    return ev.branch_cka(hidden_all)


def fmt_mean_std(m: dict) -> str:
    return "n/a" if m["mean"] is None else f"{m['mean']:+.2f}" + (f" ± {m['std']:.2f}" if m["n"] > 1 else "")


exp = ui.current_experiment()
n = ui.noun(exp)
names = list(exp.scenario_names)
k = len(names)
colors = ui.colors_for(exp)
HEATMAP_WITH_VALUES = 560  # px a 10 x 10 heatmap needs for its cell values to fit; narrower rows stack
st.title(f"Which {n.many} behave alike? — Scenario correlations")
report, _ = da.report(exp.name)
if report is not None:  # the answer of every signal first, then each signal in detail
    analyses_ui.relations_section(exp, report, n)
    analyses_ui.transfer_section(exp, report, n)
    st.divider()

usable = ui.runs_with_probes(exp, "alpha")
if not usable:
    st.info("This experiment has no finished SAML run with a mutual unit (similarity coefficients) to show.")
    st.stop()
groups: dict[str, list] = {}
for r in usable:
    groups.setdefault(r.group, []).append(r)
c1, c2, c3 = st.columns(3)
group = c1.selectbox("Model", list(groups), key="corr_group",
                     format_func=lambda g: f"{groups[g][0].label} ({len(groups[g])} run{'s' if len(groups[g]) > 1 else ''})")
runs = sorted(groups[group], key=lambda r: (r.data_seed, r.seed))
n_layers = len(runs[0].metrics.get("alpha_mean") or [])
if n_layers == 0:
    st.info("These runs recorded no similarity coefficients.")
    st.stop()
layer = c2.selectbox("Mutual unit", list(range(n_layers)), key="corr_layer",
                     format_func=lambda i: f"Mutual unit {i + 1} of {n_layers}",
                     help="Mutual unit i mixes the branches after their hidden layer i.")
pick = c3.selectbox("Run for the sample-level charts", [r.run_id for r in runs], key="corr_run",
                    help="The matrices average over every run of the model; the distributions show one run.")
run = next(r for r in runs if r.run_id == pick)

mats, alpha, parts = relations.alpha_over_runs(runs, layer)
even = parts["even"]
share = np.array([exp.traffic_share.get(s, np.nan) for s in names], dtype=float)
where = f"mean over {len(runs)} runs" if len(runs) > 1 else f"run {runs[0].run_id}"

# 1 -- raw alpha, centred on the even split -------------------------------------------------
st.subheader(f"How much each {n.one} listens to each other {n.one} — α ({where})")
order = tables.cluster_order(parts["pairwise"])
ordered = [names[i] for i in order]
st.plotly_chart(charts.heatmap(alpha[np.ix_(order, order)], ordered, f"Mean similarity coefficient α, mutual unit "
                               f"{layer + 1}", "mean α", center=even, row_title=f"{n.One} listening (row)",
                               col_title="Branch listened to (column)"), width="stretch", key="alpha_heatmap")
lo, hi = np.nanmin(alpha), np.nanmax(alpha)
pull = ev.spearman_test(parts["column"], share)
st.caption(explain.heatmap_raw(n, even) + f" Here α ranges from {lo:.4f} to {hi:.4f} "
           f"({100 * (lo / even - 1):+.1f} % to {100 * (hi / even - 1):+.1f} % of an even split). "
           + (f"Each branch's overall pull (its column) explains {parts['share_column']:.0%} of the variation around "
              f"the even split; the pairwise part {parts['share_pairwise']:.0%}. " if parts["share_column"] is not None
              else "")
           + (f"The pull follows traffic share: Spearman {pull['rho']:+.2f} (p = {pull['p_value']:.2g}, {pull['n']} "
              f"{n.many})." if pull["rho"] is not None else ""))

# 2 -- decomposition ---------------------------------------------------------------------
st.subheader("What every branch hears vs what is specific to a pair")
c1, c2 = ui.row("decomposition", (2, 3), (440, HEATMAP_WITH_VALUES))
with c1:
    st.plotly_chart(charts.bar_effects(dict(zip(names, parts["column"])), colors,
                                       "Each branch's pull on everybody (column effect)", n.One,
                                       "α above / below the even split", compare=dict(zip(names, 100 * share)),
                                       compare_name="traffic share (%)"), width="stretch", key="column_effect")
    st.caption(f"Bars: how much more (or less) than an even split every {n.one} listens to this branch. "
               "Diamonds: its traffic share. "
               + (f"Spearman of the two: {pull['rho']:+.2f} (p = {pull['p_value']:.2g})." if pull["rho"] is not None
                  else ""))
with c2:
    pw = parts["pairwise"].copy()
    np.fill_diagonal(pw, np.nan)
    st.plotly_chart(charts.heatmap(pw[np.ix_(order, order)], ordered, "Pairwise affinity: α minus row and column "
                                   "effects", "α beyond the effects", center=0.0, row_title=f"{n.One} listening (row)",
                                   col_title="Branch listened to (column)", height=430),
                    width="stretch", key="pairwise_heatmap")
    st.caption(explain.heatmap_pairwise(n) + f" {n.Many} are ordered by clustering this pairwise part.")

# 3 -- planted / data similarity, recovery ----------------------------------------------
truth = exp.true_similarity
if truth is not None:
    st.subheader("Did the model find the similarity we planted?")
    recs = [r.metrics.get("similarity_recovery") for r in runs if r.metrics.get("similarity_recovery")]
    rho = [x["spearman"][layer] for x in recs if x.get("spearman") and x["spearman"][layer] is not None]
    part = [x["partial"][layer] for x in recs if x.get("partial") and x["partial"][layer] is not None]
    sig = sum(1 for x in recs if x.get("p_value") and x["p_value"][layer] is not None and x["p_value"][layer] < 0.05)
    pw_rho = [x["pairwise_spearman"][layer] for x in recs if x.get("pairwise_spearman")
              and x["pairwise_spearman"][layer] is not None]
    nulls = recs[0].get("null_scores", {}) if recs else {}
    ms = ev.mean_std(rho)
    # Two rows of two: four metrics side by side cut their labels and "± std" values at 1024 px.
    cols = [c for i in range(2) for c in ui.row(f"recovery-{i}", (1, 1), 260)]
    cols[0].metric("Recovery (Spearman)", fmt_mean_std(ms),
                   help="Rank correlation of learned α with the planted similarity over all pairs, one value per "
                        "run; mean ± std over runs.")
    cols[1].metric("Significant (p < 0.05)", f"{sig} of {len(recs)} runs",
                   help="Runs whose recovery passes a Mantel permutation test.")
    for col, label, vals, why in ((cols[2], "Controlling for traffic", part, "Partial Spearman: traffic share "
                                   "taken out of both matrices."),
                                  (cols[3], "Pairwise part only", pw_rho, "Spearman of the pairwise part of α "
                                   "(column and row effects removed) with the planted similarity.")):
        col.metric(label, fmt_mean_std(ev.mean_std(vals)), help=why)
    if nulls:
        st.caption("What similarities that know nothing about tastes score against the same planted truth: " +
                   ", ".join(f"{name} {v:+.2f}" for name, v in nulls.items() if v is not None) +
                   ". A recovery at or below these says the model learned traffic or groups, not more.")
    planted = np.asarray(truth, dtype=float).copy()
    np.fill_diagonal(planted, np.nan)
    c1, c2 = ui.row("planted-learned")
    c1.plotly_chart(charts.heatmap(planted[np.ix_(order, order)], ordered, "Planted similarity (ground truth)",
                                   "similarity", row_title=n.One, col_title=n.One, height=430, show_values=False),
                    width="stretch", key="planted")
    sym = relations.symmetrise(parts["pairwise"])
    c2.plotly_chart(charts.heatmap(sym[np.ix_(order, order)], ordered, f"Learned pairwise affinity (symmetrised, unit "
                                   f"{layer + 1})", "α beyond the effects", center=0.0, row_title=n.One,
                                   col_title=n.One, height=430, show_values=False), width="stretch", key="learned")
    agree = agreement(sym, truth)
    st.caption(explain.planted(n) + (f" The pairwise part of the matrix shown (mean over runs) scores "
                                     f"{agree['spearman']:+.2f} against the truth (Mantel p = {agree['p_value']:.2g})."
                                     if agree["spearman"] is not None else ""))

if exp.data_similarity is not None:
    st.subheader("Similarity computed from the data itself")
    data_sim = np.asarray(exp.data_similarity, dtype=float).copy()
    np.fill_diagonal(data_sim, np.nan)
    raw_agree = agreement(alpha, data_sim)
    pair_agree = agreement(parts["pairwise"], data_sim)
    c1, c2 = ui.row("data-similarity", (3, 1), (HEATMAP_WITH_VALUES, 180))
    c1.plotly_chart(charts.heatmap(data_sim[np.ix_(order, order)], ordered,
                                   f"Overlap of clicked categories between {n.many} (training data)", "overlap",
                                   row_title=n.One, col_title=n.One, height=430), width="stretch", key="data_sim")
    for col, label, a, what in ((c2, "Agreement with α", raw_agree, "α"),
                                (c2, "…with its pairwise part", pair_agree, "the pairwise part of α")):
        col.metric(label, "n/a" if a["spearman"] is None else f"{a['spearman']:+.2f}",
                   help=f"Spearman of the overlap with {what} over all pairs" + (
                       "" if a["p_value"] is None else f"; Mantel permutation p = {a['p_value']:.2g}"))
    st.caption(explain.data_similarity(n))

# 4 -- stability across runs -----------------------------------------------------------
if len(runs) > 1:
    st.subheader("Which pairs are consistently alike across runs?")
    stab = relations.pairwise_stability(mats)
    c1, c2 = ui.row("stability", (1, 1), HEATMAP_WITH_VALUES)
    c1.plotly_chart(charts.heatmap(stab["share_above_median"][np.ix_(order, order)], ordered,
                                   "Share of runs in which the pair is above the median pair", "share of runs",
                                   center=0.5, row_title=n.One, col_title=n.One, height=430, value_format=".0%"),
                    width="stretch", key="stability")
    c2.plotly_chart(charts.heatmap(stab["std"][np.ix_(order, order)], ordered, "Spread of the pairwise affinity "
                                   "over runs (std)", "std", row_title=n.One, col_title=n.One, height=430),
                    width="stretch", key="stability_std")
    st.caption(f"Over {len(runs)} runs (model and data seeds): 100 % = the pair was among the more alike half in "
               f"every run, 0 % = never. {stab['consistent']} of {k * (k - 1) // 2} pairs are above the median in every run.")

# 5 -- sample level: listening distribution and gates ----------------------------------
try:
    pr = da.probes(exp.name, run.run_id)
except da.ArtifactError as exc:
    st.error(f"Run **{run.run_id}** cannot be shown: {exc}")
    st.stop()
hidden_key = f"hidden_all_{layer}"
if hidden_key in pr and pr[hidden_key].shape[0] >= 10:
    st.subheader(f"A model-free check: how alike are the branches' representations? ({run.run_id})")
    cka_m = cka(pr[hidden_key])  # st.cache_data hands out a copy: safe to write into
    np.fill_diagonal(cka_m, np.nan)
    c1, c2 = ui.row("cka", (3, 1), (HEATMAP_WITH_VALUES, 180))
    c1.plotly_chart(charts.heatmap(cka_m[np.ix_(order, order)], ordered, f"Linear CKA between branches' hidden states "
                                   f"(layer {layer + 1}, {pr[hidden_key].shape[0]} samples through every branch)",
                                   "CKA", row_title="Branch", col_title="Branch", height=430),
                    width="stretch", key="cka")
    cka_alpha = agreement(cka_m, parts["pairwise"])
    c2.metric("Agreement with pairwise α", "n/a" if cka_alpha["spearman"] is None else f"{cka_alpha['spearman']:+.2f}",
              help="Spearman of CKA with the pairwise part of α over all pairs" + (
                  "" if cka_alpha["p_value"] is None else f"; Mantel permutation p = {cka_alpha['p_value']:.2g}"))
    if truth is not None:
        cka_truth = agreement(cka_m, truth)
        if cka_truth["spearman"] is not None:
            c2.metric("…with planted similarity", f"{cka_truth['spearman']:+.2f}",
                      help=f"Spearman of CKA with the planted similarity; Mantel permutation p = "
                           f"{cka_truth['p_value']:.2g}")
    st.caption("The same samples pass through every branch; CKA compares the geometry of what two branches "
               "compute (1 = the same up to rotation and scale). No softmax and no gate are involved, so it checks "
               "α with an independent measure.")

st.subheader(f"Who listens to whom, sample by sample ({run.run_id})")
default_src = next((s for s in ("ES", "UA") if s in names), names[0])
src_name = st.selectbox(f"{n.One} whose listening you want to see", names, index=names.index(default_src),
                        key="cdf_source")
src = names.index(src_name)
cdf = tables.alpha_cdf_frame(pr["alpha"], pr["scenario"], layer, src, names)
if cdf.empty:
    st.info(f"No test samples of {src_name} in the probe subset.")
else:
    st.plotly_chart(charts.alpha_cdf(cdf, src_name, colors, n.one), width="stretch", key="alpha_cdf")
    st.caption(explain.cdf(n) + f" ({int(cdf['n'].iloc[0]):,} samples of {src_name}.)")

st.subheader(f"How much does each {n.one} borrow? — gate coefficient g ({run.run_id})")
gates = tables.gate_frame(pr["gate"], pr["scenario"], layer, names)
init = {s: (v or [None] * (layer + 1))[layer] for s, v in (run.metrics.get("gate_init_mean") or {}).items()}
st.plotly_chart(charts.gate_distributions(gates, names, colors, n.one, init or None), width="stretch",
                key="gate_box")
st.caption(explain.gates(n))
gvt = tables.gate_vs_traffic(gates, exp.traffic_share or {}, names, run.metrics.get("gate_init_mean"), layer)
has_change = gvt["gate_change"].notna().any()
y = "gate_change" if has_change else "gate_mean"
y_title = "Change of mean g in training" if has_change else "Mean gate coefficient g"
st.plotly_chart(charts.gate_vs_traffic_scatter(gvt, colors, n.one, y=y, y_title=y_title), width="stretch",
                key="gate_traffic")
t = ev.spearman_test(gvt["traffic_share"], gvt[y])
if t["rho"] is None:
    st.caption("Too few points for a trend.")
else:
    direction = ("larger" if t["rho"] > 0 else "smaller") + f" {n.many} " + (
        "raised their gate more (or lowered it less)" if has_change else "have higher gates")
    verdict = (f"a trend: {direction}" if t["p_value"] < 0.05 else "no detectable trend")
    st.caption(f"Spearman of traffic share and {y_title.lower()}: {t['rho']:+.2f} (p = {t['p_value']:.2g}, "
               f"{t['n']} {n.many}, this run, mutual unit {layer + 1}): {verdict}.")

# 6 -- what the other models say -------------------------------------------------------
square, profiles = relations.model_relations([r for r in exp.runs if r.seed == run.seed
                                              and r.data_seed == run.data_seed], k)
if square:
    st.subheader(f"Do other models agree on which {n.many} are alike?")
    st.caption(f"Other multi-scenario models expose their own scenario-relationship signals (gate profiles of "
               f"MMoE/PLE, weight similarity of STAR, ...; docs/BASELINES.md). Each is compared with SAML's pairwise "
               f"α by rank correlation over the pairs of {n.many} (same seeds as the run above).")
    rows = []
    for label, m in square.items():
        a = agreement(m, parts["pairwise"])
        rows.append({"Signal": label, "Spearman with SAML's pairwise α": a["spearman"], "Mantel p": a["p_value"]})
    st.dataframe(rows, hide_index=True, width="stretch", placeholder="—",
                 column_config={"Spearman with SAML's pairwise α": st.column_config.NumberColumn(format="%+.2f"),
                                "Mantel p": st.column_config.NumberColumn(format="%.2g")})
    pick_sig = st.selectbox("Show a signal", list(square), key="other_signal")
    m = square[pick_sig].copy()
    np.fill_diagonal(m, np.nan)
    st.plotly_chart(charts.heatmap(m[np.ix_(order, order)], ordered, pick_sig, "value", row_title=n.One,
                                   col_title=n.One, height=430), width="stretch", key="other_heatmap")
if profiles:
    pick_prof = st.selectbox(f"Gate profiles (each row: a {n.one}'s mean gate weight per expert)", list(profiles),
                             key="other_profile")
    prof = profiles[pick_prof]
    st.plotly_chart(charts.heatmap(prof, names, pick_prof, "mean gate weight", row_title=n.One, col_title="Expert",
                                   names_cols=[f"expert {i + 1}" for i in range(prof.shape[1])], height=420),
                    width="stretch", key="profile_heatmap")
