"""Hidden states: an explorer of the branches' internal representations. A 2-D map (UMAP or PCA,
the training job's stored maps of 1,000 points draw at once) coloured by any stored column (the
sample's scenario, the branch, click, prediction, error, each categorical field decoded), the
sample's fields on hover, what a box or lasso selection is made of against all points shown,
nearest neighbours of a point in the hidden space, and exports (TensorBoard Projector, CSV)."""
import numpy as np
import streamlit as st

from dashboard import charts, data_access as da, embedding, explain, ui

exp = ui.current_experiment()
n = ui.noun(exp)
names = list(exp.scenario_names)
colors = ui.colors_for(exp)
st.title(f"What did each {n.one}'s branch learn? — Hidden states")

usable = ui.runs_with_probes(exp, "hidden")
if not usable:
    st.info("This experiment has no finished SAML run with branch hidden states to show.")
    st.stop()

by_id = {r.run_id: r for r in usable}
c1, c2, c3 = st.columns(3)
run_id = c1.selectbox("SAML run", list(by_id), key="hs_run",
                      format_func=lambda i: f"{by_id[i].label} · seed {by_id[i].seed} ({i})")
try:
    pr = da.probes(exp.name, run_id)
except da.ArtifactError as exc:
    st.error(f"Run **{run_id}** cannot be shown: {exc}")
    st.stop()

views = {"own": f"Each sample through its own {n.one}'s branch",
         "all": "The same samples through every branch"}
available = [v for v in embedding.VIEWS if embedding.hidden_layers(pr, v)]
if not available:
    st.info(f"Run **{run_id}** stored no branch hidden states (this variant has no separate branches).")
    st.stop()
view = c2.radio("View", available, format_func=views.get, key="hs_view")
layers = embedding.hidden_layers(pr, view)
layer = c3.selectbox("Layer", layers, key="hs_layer",
                     format_func=lambda i: f"Hidden layer {i + 1} of {len(layers)}")

n_max = embedding.n_points(pr, view, layer)
ready = embedding.stored_size(pr, view, layer)
stored_maps = da.maps(exp.name, run_id)
sizes = sorted({s for s in (500, 1000, 2000, 5000) if s < n_max} | {n_max, ready})
c1, c2, c3 = st.columns([2, 1, 2])
if len(sizes) > 1:
    size = c1.select_slider("Points", sizes, value=ready if stored_maps else min(sizes, key=lambda s: abs(s - 1000)),
                            key="hs_size", help=f"Maps of {ready:,} points were computed by the training job and "
                                                "draw at once; other sizes are computed now (UMAP: seconds to a "
                                                "minute) and kept while the dashboard runs.")
else:  # a slider with one stop reads as broken
    size = sizes[0]
    c1.caption(f"Points: all {size:,} stored for this view and layer.")
method = c2.radio("Method", ["umap", "pca"], format_func={"umap": "UMAP", "pca": "PCA"}.get, key="hs_method",
                  horizontal=True, help="UMAP keeps neighbours together (clusters); PCA keeps the largest "
                                        "directions of spread (a linear view, no clusters invented).")


@st.cache_data(max_entries=32, show_spinner=False)
def _embedding(name: str, run_id: str, probes_key: tuple, view: str, layer: int, size: int, method: str,
               scenario_names: tuple[str, ...]):
    """Kept in the server's memory only: the page writes nothing (a size the training job did not
    store is fitted again after a restart)."""
    return embedding.embed(da.probes(name, run_id), view, layer, size, list(scenario_names), method,
                           da.maps(name, run_id))


probes_key = tuple(da.fingerprint(da.root(), exp.name))
has_stored = embedding.stored(stored_maps, method, view, layer,
                              embedding.point_count(pr, view, layer, size)) is not None
if has_stored or method == "pca":
    x, df, source = _embedding(exp.name, run_id, probes_key, view, layer, size, method, tuple(names))
else:
    with st.status(f"Computing a {method.upper()} map of {size:,} points…", expanded=False) as box:
        box.update(label=f"Computing a UMAP map of {size:,} points: the first map in a new app process takes "
                         "up to a minute (compiling), later ones seconds. Maps of "
                         f"{ready:,} points are ready at once.")
        x, df, source = _embedding(exp.name, run_id, probes_key, view, layer, size, method, tuple(names))
        box.update(label=f"Map of {len(df):,} points ready", state="complete")

field_cols = embedding.field_columns(df)
color_options = {"scenario": f"{n.One} of the sample", "branch": "Branch", "label": "Clicked or not",
                 "pred": "Predicted click probability", "error": "Error: |click − prediction|"}
color_options |= {c: f"Field: {c[len(embedding.FIELD_PREFIX):]}" for c in field_cols}
default_color = "scenario" if view == "own" else "branch"
color_by = c3.selectbox("Colour by", list(color_options), format_func=color_options.get,
                        index=list(color_options).index(default_color), key=f"hs_color_{view}")
_, fields_note = embedding.fields(pr)

# The point whose neighbours are shown, for this map only (point numbers change with view, layer, size).
context = (exp.name, run_id, view, layer, size)
kept = st.session_state.get("hs_chosen")
chosen = kept[1] if isinstance(kept, tuple) and kept[0] == context and 0 <= kept[1] < len(df) else None
near, dist = embedding.neighbours(x, chosen, k=10) if chosen is not None else (np.zeros(0, int), np.zeros(0))
palette = {"scenario": colors, "branch": colors,
           "label": {"clicked": "#E45756", "not clicked": "#4C78A8"}}.get(color_by)
axis = "UMAP dimension" if method == "umap" else "Principal component"
title = f"{views[view]}, hidden layer {layer + 1} ({'UMAP' if method == 'umap' else 'PCA'})"
fig = charts.umap_scatter(df, color_by, title, palette, color_options[color_by], x_title=f"{axis} 1",
                          y_title=f"{axis} 2", numeric=color_by in ("pred", "error"), chosen=chosen,
                          neighbours=near.tolist())
event = st.plotly_chart(fig, width="stretch", key="umap", on_select="rerun",
                        selection_mode=("points", "box", "lasso"))
st.caption(explain.hidden_map(n, view, color_by, method))
st.caption({"stored": "Map computed by the training job.",
            "computed": "Map computed just now (kept in memory while the dashboard runs)."}[source]
           + f" Hover a dot for its sample's {n.one}, click, predicted probability and fields.")
if fields_note:
    st.caption(f":material/info: No field values: {fields_note}.")

# -- what a selection is made of ------------------------------------------------------------------
picked = sorted({int(p["customdata"][0]) for p in (event.selection.points if event else [])
                 if p.get("customdata") is not None and 0 <= int(p["customdata"][0]) < len(df)})
st.subheader("What a selection is made of")
st.caption(explain.explorer(n))
# A point just clicked chooses it (the map keeps its selection over reruns: only a new one counts,
# so a number typed below is not undone by the click before it).
fresh = st.session_state.get("hs_last_pick") != (context, picked)
st.session_state["hs_last_pick"] = (context, picked)
if fresh and len(picked) == 1 and picked[0] != chosen:
    st.session_state["hs_chosen"] = (context, picked[0])
    st.session_state["hs_point"] = picked[0]
    st.rerun()
if len(picked) > 1:
    summary = embedding.selection_summary(df, np.array(picked))
    cols = st.columns(3)
    cols[0].metric("Points selected", f"{summary['n']:,} of {summary['of']:,}")
    cols[1].metric("Click rate", f"{summary['click_rate']:.1%}",
                   f"{100 * (summary['click_rate'] - summary['click_rate_all']):+.1f} points vs all shown",
                   delta_color="off")
    cols[2].metric("Mean predicted probability", f"{summary['pred_mean']:.3f}",
                   f"{summary['pred_mean'] - summary['pred_mean_all']:+.3f} vs all shown", delta_color="off")
    share_cfg = {"% of selection": st.column_config.NumberColumn(format="%.1f"),
                 "% of all shown": st.column_config.NumberColumn(format="%.1f"),
                 "lift": st.column_config.NumberColumn(format="%.2f", help="Share in the selection / share among "
                                                                          "all points shown")}
    by = "branch" if view == "all" else "scenario"
    st.dataframe(summary[by].rename(columns={"value": "Branch" if view == "all" else n.One}), hide_index=True,
                 width="stretch", column_config=share_cfg, key="sel_groups")
    if len(summary["fields"]):
        st.caption("The most common values of each field in the selection:")
        st.dataframe(summary["fields"], hide_index=True, width="stretch", column_config=share_cfg, key="sel_fields")
    else:
        st.caption("No field values stored for this run (see above).")
elif not picked:
    st.caption("No points selected yet.")

# -- nearest neighbours in the hidden space ---------------------------------------------------------
st.subheader("Nearest neighbours in the hidden space")


def _show_typed() -> None:
    st.session_state["hs_chosen"] = (context, int(st.session_state["hs_point"]))


# The widget's value lives in session state only (a clicked point sets it; no default beside it).
if not isinstance(st.session_state.get("hs_point"), int) or not 0 <= st.session_state["hs_point"] < len(df):
    st.session_state["hs_point"] = 0
c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
c1.number_input("Point", 0, len(df) - 1, key="hs_point",
                help="The point's number (in its hover); clicking a point on the map chooses it too.")
c2.button("Show its neighbours", key="hs_show_neighbours", on_click=_show_typed)
if chosen is not None:
    table = df.iloc[near][[c for c in embedding.metadata_columns(df)]].copy()
    table.insert(1, "distance", dist)
    me = df.iloc[chosen]
    st.caption(f"Point {chosen}: {me['scenario']}" + (f", branch {me['branch']}" if view == "all" else "")
               + f", {me['label']}, predicted {me['pred']:.3f}. Its {len(near)} nearest points by euclidean distance "
               f"between hidden states of layer {layer + 1} (ringed on the map); two points picked at random here "
               f"are about {embedding.typical_distance(x):.2f} apart.")
    shown = table.rename(columns={"scenario": n.One, "branch": "Branch", "label": "Clicked", "pred": "Predicted",
                                  "error": "Error"})
    config = {"distance": st.column_config.NumberColumn(format="%.3f"),
              "Predicted": st.column_config.NumberColumn(format="%.3f"),
              "Error": st.column_config.NumberColumn(format="%.3f")}
    first = ["point", "distance", n.One] + (["Branch"] if view == "all" else []) + ["Clicked", "Predicted", "Error"]
    st.dataframe(shown, hide_index=True, width="stretch", key="neighbours_table", column_order=first,
                 column_config=config)
    fields_here = [c for c in shown.columns if c.startswith(embedding.FIELD_PREFIX)]
    if fields_here:  # a dozen fields do not fit beside the rest: one click away (and in the CSV)
        with st.expander(f"Their fields ({len(fields_here)})"):
            st.dataframe(shown, hide_index=True, width="stretch", key="neighbours_fields",
                         column_order=["point"] + fields_here, column_config=config)

# -- exports ----------------------------------------------------------------------------------------
st.subheader("Export these points")
stem = f"{exp.name}-{run_id}-{view}-layer{layer + 1}-{len(df)}"
named = df.rename(columns={"scenario": n.one})
c1, c2, c3 = st.columns(3)
c1.download_button("Vectors for TensorBoard Projector (TSV)", lambda: embedding.projector_files(x, named)[0],
                   file_name=f"{stem}-vectors.tsv", mime="text/tab-separated-values", key="export_vectors",
                   on_click="ignore", help="One hidden state per line, values separated by tabs, no header.")
c2.download_button("Metadata for TensorBoard Projector (TSV)", lambda: embedding.projector_files(x, named)[1],
                   file_name=f"{stem}-metadata.tsv", mime="text/tab-separated-values", key="export_metadata",
                   on_click="ignore", help="A header line, then one line per point in the same order.")
c3.download_button("Points, map and hidden states (CSV)", lambda: embedding.csv_file(x, named),
                   file_name=f"{stem}.csv", mime="text/csv", key="export_csv", on_click="ignore")
st.caption(f"The {len(df):,} points shown, in the order of their numbers: load both TSV files in TensorBoard's "
           "Projector (projector.tensorflow.org, “Load”) to explore them in 3-D with its own tools.")
