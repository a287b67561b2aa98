"""Retrain: launch a new experiment in a background process, follow it, cancel it."""
import streamlit as st

from dashboard import data_access as da, explain, forms, settings, ui

st.title("Try other settings — Retrain")
if ui.is_demo_mode():  # the page is not even listed in demo mode; guard direct links too
    st.info(explain.DEMO_MODE)
    st.stop()
st.markdown(explain.RETRAIN)

existing = {s.name for s in da.experiments()}
q = da.jobs()
default_name = next(f"my-experiment-{i}" for i in range(1, 10_000) if f"my-experiment-{i}" not in existing)
datasets = forms.dataset_choices()
models = forms.model_choices()

# Outside the form: changing the dataset or the preset changes every default below.
c1, c2, c3 = st.columns([2, 2, 1])
dataset = c1.selectbox("Dataset", list(datasets), format_func=datasets.get, key="rt_dataset")
hint = forms.needs_path(dataset)
dataset_path = c2.text_input(f"Path under {settings.data_dir()}: {hint}" if hint else
                             "Path (not needed for this dataset)", key="rt_path", disabled=not hint,
                             help=f"The dashboard reads datasets from this data folder only ({settings.DATA_DIR_VAR}, "
                                  "default: the project's datasets/ folder); a relative path counts from it.")
base = forms.RetrainRequest.defaults(dataset)
preset = c3.selectbox("Preset", forms.PRESET_NAMES, index=forms.PRESET_NAMES.index(base.preset), key=f"rt_preset_{dataset}",
                      help="Training settings to start from: the paper's industrial or public ones, or tiny "
                           "'quick' sizes for trying the pipeline (results then mean nothing).")
base = forms.RetrainRequest.defaults(dataset, preset)
k = f"{dataset}-{preset}"  # widget keys per dataset and preset, so their defaults follow the choice

with st.form("retrain_form"):
    c1, c2 = st.columns(2)
    name = c1.text_input("Experiment name", value=default_name, key="rt_name")
    chosen = c2.multiselect("Models", list(models), default=forms.default_models(), format_func=models.get,
                            key="rt_models", help="BST-Individual: one BST per scenario. BST: one model for all. "
                            "SAML: ours. Ablations: SAML with one part removed. Other baselines: docs/BASELINES.md.")
    st.markdown("**Settings** — the engine's defaults for this dataset and preset; what you see is what trains. "
                "0 means derived from the size of the data.")
    values = {}  # one widget per setting the form offers (declared in saml_core.config)
    for i, (_, f) in enumerate(forms.SETTINGS):
        if i % 4 == 0:
            columns = st.columns(4)
        args = forms.setting_widget_args(f, getattr(base, f.name))
        widget = columns[i % 4].text_input if f.name == "mlp" else columns[i % 4].number_input
        values[f.name] = widget(**args, key=f"rt_{f.metadata['form']}_{k}")
    c1, c2, c3 = st.columns(3)
    seeds = c1.number_input("Model seeds", 1, 10, 1, key="rt_seeds", help="Repeat every model with this many seeds.")
    data_seeds = c2.number_input("Data seeds", 1, 10, 1, key="rt_data_seeds",
                                 help="Repeat on this many simulated logs / random splits (datasets with a fixed "
                                      "split take one).")
    device = c3.selectbox("Device", forms.DEVICES, key="rt_device")
    submitted = st.form_submit_button("Validate and launch", type="primary")

if submitted:
    req = forms.RetrainRequest(
        dataset=dataset, dataset_path=dataset_path, name=name, runs=list(chosen), preset=preset, seeds=int(seeds),
        data_seeds=int(data_seeds), device=device, **values)
    queued_names = {j.experiment for j in q.list() if j.active}
    problems = forms.validate(req, existing | queued_names, forms.cuda_available())
    if problems:
        st.error("Not launched — please fix:\n\n" + "\n".join(f"- {p}" for p in problems))
    else:
        try:
            job = q.submit(req.to_config(), title=f"{req.name.strip()} · {req.dataset_arg()} · "
                           f"{len(req.runs)} model(s)")
        except (da.ArtifactError, ValueError) as exc:  # a full disk, or a spec the queue refuses
            st.error(f"Not launched: {exc}")
        else:
            st.session_state["rt_last_job"] = job.job_id
            st.session_state["rt_queued_message"] = (f"Queued “{req.name.strip()}”. Progress below; it appears in "
                                                     "the sidebar when done.")
            st.rerun()  # the sidebar, drawn before this form, then counts the new job too
if "rt_queued_message" in st.session_state:
    st.success(st.session_state.pop("rt_queued_message"))

unfinished = [s for s in da.experiments() if s.error is None and s.n_finished < s.n_runs
              and s.state not in ("running",) and s.name not in {j.experiment for j in q.list() if j.active}]
if unfinished:
    st.subheader("Unfinished experiments")
    st.caption("Interrupted, cancelled or partly failed: resuming keeps every finished run and epoch and trains "
               "the rest with the experiment's own settings.")
    for s in unfinished:
        c1, c2 = st.columns([5, 1])
        c1.markdown(f"**{ui.plain(s.name)}** — {s.n_finished} of {s.n_runs} runs finished ({s.state})")
        if c2.button("Resume", key=f"resume-exp-{s.name}"):
            try:
                spec = da.experiment(s.name).raw["config"]
                q.submit(spec, title=f"Resume {s.name}")
            except (da.ArtifactError, KeyError, ValueError) as exc:
                st.error(f"Cannot resume {s.name}: {exc}")
            else:
                st.rerun()

st.subheader("Jobs")
c1, c2 = st.columns([4, 1])
c1.caption("Newest first. One job trains at a time; the page refreshes itself while a job is active.")
if c2.button("Clear finished", key="rt_clear"):
    q.clear_finished()
    st.rerun()
ui.job_progress_panel(q, allow_cancel=True)
