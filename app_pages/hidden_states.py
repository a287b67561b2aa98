"""Hidden states: 2-D maps (UMAP, PCA) of the branches' internal representations; the training job
stores maps of 1,000 points, so the page draws them at once."""
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
                                                "minute).")
else:  # a slider with one stop reads as broken
    size = sizes[0]
    c1.caption(f"Points: all {size:,} stored for this view and layer.")
method = c2.radio("Method", ["umap", "pca"], format_func={"umap": "UMAP", "pca": "PCA"}.get, key="hs_method",
                  horizontal=True, help="UMAP keeps neighbours together (clusters); PCA keeps the largest "
                                        "directions of spread (a linear view, no clusters invented).")
color_options = {"scenario": f"{n.One} of the sample", "branch": "Branch", "label": "Clicked or not",
                 "pred": "Predicted click probability"}
default_color = "scenario" if view == "own" else "branch"
color_by = c3.selectbox("Colour by", list(color_options), format_func=color_options.get,
                        index=list(color_options).index(default_color), key=f"hs_color_{view}")


@st.cache_data(max_entries=32, show_spinner=False)
def _embedding(name: str, run_id: str, probes_key: tuple, view: str, layer: int, size: int, method: str,
               scenario_names: tuple[str, ...]):
    return embedding.embed(da.probes(name, run_id), da.probes_path(name, run_id), da.root() / ".cache" / "umap",
                           view, layer, size, list(scenario_names), method, da.maps(name, run_id))


probes_key = tuple(da.fingerprint(da.root(), exp.name))
has_stored = embedding.stored(stored_maps, method, view, layer, len(embedding.points(pr, view, layer, size, names)[0]))
has_stored = has_stored is not None
if has_stored or method == "pca":
    df, source = _embedding(exp.name, run_id, probes_key, view, layer, size, method, tuple(names))
else:
    with st.status(f"Computing a {method.upper()} map of {size:,} points…", expanded=False) as box:
        box.update(label=f"Computing a UMAP map of {size:,} points: the first map in a new app process takes "
                         "up to a minute (compiling), later ones seconds. Maps of "
                         f"{ready:,} points are ready at once.")
        df, source = _embedding(exp.name, run_id, probes_key, view, layer, size, method, tuple(names))
        box.update(label=f"Map of {len(df):,} points ready", state="complete")

palette = {"scenario": colors, "branch": colors,
           "label": {"clicked": "#E45756", "not clicked": "#4C78A8"}}.get(color_by)
axis = "UMAP dimension" if method == "umap" else "Principal component"
title = f"{views[view]}, hidden layer {layer + 1} ({'UMAP' if method == 'umap' else 'PCA'})"
st.plotly_chart(charts.umap_scatter(df, color_by, title, palette, color_options[color_by], x_title=f"{axis} 1",
                                    y_title=f"{axis} 2"), width="stretch", key="umap")
st.caption(explain.hidden_map(n, view, color_by, method))
st.caption({"stored": "Map computed by the training job.", "cache": "Map computed earlier and kept on disk.",
            "computed": "Map computed just now and kept on disk for next time."}[source]
           + " Hover a dot for its sample's " + n.one + ", whether it was clicked and the predicted probability.")
