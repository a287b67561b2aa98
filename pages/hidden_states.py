"""Hidden states: UMAP of the branches' internal representations."""
import streamlit as st

from dashboard import charts, data_access as da, embedding, explain, ui

ui.page_setup("Hidden states")
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

h = embedding.hidden(pr, view, layer)
n_max = int(h.shape[0]) if view == "own" else int(h.shape[0] * h.shape[1])
sizes = [s for s in (500, 1000, 2000, 5000) if s < n_max] + [n_max]
c1, c2 = st.columns(2)
size = c1.select_slider("Points", sizes, value=min(sizes, key=lambda s: abs(s - 1000)), key="hs_size",
                        help="More points show more detail; the first map of a new size takes a while.")
color_options = {"scenario": f"{n.One} of the sample", "branch": "Branch", "label": "Clicked or not",
                 "pred": "Predicted click probability"}
default_color = "scenario" if view == "own" else "branch"
color_by = c2.selectbox("Colour by", list(color_options), format_func=color_options.get,
                        index=list(color_options).index(default_color), key=f"hs_color_{view}")


@st.cache_data(max_entries=32, show_spinner=False)
def _embedding(name: str, run_id: str, probes_key: tuple, view: str, layer: int, size: int,
               scenario_names: tuple[str, ...]):
    probes = da.probes(name, run_id)
    return embedding.embed(probes, da.probes_path(name, run_id), da.root() / ".cache" / "umap",
                           view, layer, size, list(scenario_names))


probes_key = tuple(da.fingerprint(da.root(), exp.name))
with st.status("Preparing the map…", expanded=False) as box:
    box.update(label=f"Computing the 2-D map of {size:,} points (UMAP, a few seconds the first time)…")
    df, from_cache = _embedding(exp.name, run_id, probes_key, view, layer, size, tuple(names))
    box.update(label=f"Map of {len(df):,} points ready", state="complete")

palette = {"scenario": colors, "branch": colors,
           "label": {"clicked": "#E45756", "not clicked": "#4C78A8"}}.get(color_by)
title = (f"{views[view]}, hidden layer {layer + 1} — coloured by {color_options[color_by].lower()}")
st.plotly_chart(charts.umap_scatter(df, color_by, title, palette, color_options[color_by]),
                width="stretch", key="umap")
st.caption(explain.umap_own(n) if view == "own" else explain.umap_all(n))
