"""Retrain: launch a new experiment in a background process, follow it, cancel it."""
import streamlit as st

from dashboard import data_access as da, explain, forms, ui

ui.page_setup("Retrain")
st.title("Try other settings — Retrain")
if ui.is_demo_mode():  # the page is not even listed in demo mode; guard direct links too
    st.info(explain.DEMO_MODE)
    st.stop()
st.markdown(explain.RETRAIN)

existing = {s.name for s in da.experiments()}
q = da.jobs()
default_name = next(f"my-experiment-{i}" for i in range(1, 10_000) if f"my-experiment-{i}" not in existing)
base = forms.RetrainRequest()

with st.form("retrain_form"):
    c1, c2 = st.columns(2)
    dataset = c1.selectbox("Dataset", list(forms.DATASETS), format_func=forms.DATASETS.get, key="rt_dataset")
    dataset_path = c1.text_input("Schema file (own log) or folder (raw Taobao)", key="rt_path",
                                 help="Only for 'Your own log' and 'Raw Taobao tables'.")
    name = c2.text_input("Experiment name", value=default_name, key="rt_name")
    quick = c2.toggle("Quick run (tiny model and data, about a minute)", value=False, key="rt_quick",
                      help="For trying the pipeline; results are not meaningful.")
    c1, c2 = st.columns(2)
    models = c1.multiselect("Models", list(forms.MODELS), default=list(forms.MODELS),
                            format_func=forms.MODELS.get, key="rt_models",
                            help="BST-Individual: one BST per scenario. BST: one model for all. SAML: ours.")
    ablations = c2.multiselect("SAML ablations", list(forms.ABLATIONS), default=[],
                               format_func=forms.ABLATIONS.get, key="rt_ablations",
                               help="SAML with one part removed, to see which parts matter.")
    st.markdown("**Settings** (defaults are the engine's; a quick run uses its own small sizes unless changed)")
    c1, c2, c3, c4 = st.columns(4)
    d_g = c1.number_input("Global embedding size d_g", 1, 256, base.d_g, key="rt_dg")
    d_s = c2.number_input("Scenario embedding size d_s", 1, 256, base.d_s, key="rt_ds")
    heads = c3.number_input("Attention heads", 1, 32, base.heads, key="rt_heads")
    mlp = c4.text_input("MLP layers (sizes = depth)", base.mlp, key="rt_mlp")
    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = c1.number_input("Epochs (max)", 1, 200, base.epochs, key="rt_epochs")
    lr = c2.number_input("Learning rate", 1e-6, 1.0, base.lr, format="%.5f", step=1e-4, key="rt_lr")
    batch_size = c3.number_input("Batch size", 8, 65536, base.batch_size, step=128, key="rt_bs")
    seeds = c4.number_input("Seeds", 1, 10, 1, key="rt_seeds", help="Repeat every model with this many seeds.")
    device = c5.selectbox("Device", forms.DEVICES, key="rt_device")
    submitted = st.form_submit_button("Validate and launch", type="primary")

if submitted:
    req = forms.RetrainRequest(
        dataset=dataset, dataset_path=dataset_path, name=name, runs=list(models) + list(ablations),
        quick=quick, seeds=int(seeds), device=device, epochs=int(epochs), lr=float(lr),
        batch_size=int(batch_size), d_g=int(d_g), d_s=int(d_s), heads=int(heads), mlp=mlp)
    queued_names = {j.experiment for j in q.list() if j.active}
    problems = forms.validate(req, existing | queued_names, forms.cuda_available())
    if problems:
        st.error("Not launched — please fix:\n\n" + "\n".join(f"- {p}" for p in problems))
    else:
        job = q.submit(req.argv(da.root()), title=f"{req.name.strip()} · {req.dataset_arg()} · "
                       f"{len(req.runs)} model(s)", experiment=req.name.strip())
        st.session_state["rt_last_job"] = job.job_id
        st.success(f"Queued “{req.name.strip()}”. Progress below; it appears in the sidebar when done.")

st.subheader("Jobs")
c1, c2 = st.columns([4, 1])
c1.caption("Newest first. One job trains at a time; the page refreshes itself while a job is active.")
if c2.button("Clear finished", key="rt_clear"):
    q.clear_finished()
    st.rerun()
ui.job_progress_panel(q, allow_cancel=True)
