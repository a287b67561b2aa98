"""Pieces every page shares: the experiment picker, the dataset badge, messages for broken runs."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard import data_access as da
from dashboard import explain, settings, tables
from dashboard.colors import scenario_colors
from dashboard.explain import Noun
from saml_core.analyses_job import AnalysesSpec
from saml_core.presets import demo_jobs

EXPERIMENT_KEY = "experiment"  # the chosen experiment, kept across pages
PICKER_KEY = "experiment_picker"  # the sidebar widget (widget state does not survive page changes)


@dataclass(frozen=True)
class PageSpec:
    """One page of the navigation. `title` may hold "{one}"/"{many}": the chosen experiment's
    scenario noun. `shown`: when the page is listed (always, "writes": not in read-only demo mode,
    "sweeps": only when some experiment is a sensitivity sweep, "experiments": only when there is
    an experiment to show)."""

    path: str
    title: str
    icon: str
    shown: str = "experiments"  # also "importance": where the experiment has it, or can get it (not in demo mode)


PAGES = (PageSpec("app_pages/overview.py", "Overview", ":material/home:", "always"),
         PageSpec("app_pages/per_scenario.py", "AUC per {one}", ":material/bar_chart:"),
         PageSpec("app_pages/correlations.py", "Which {many} are alike", ":material/grid_on:"),
         PageSpec("app_pages/drivers.py", "What drives each {one}", ":material/insights:", "importance"),
         PageSpec("app_pages/hidden_states.py", "Hidden states", ":material/scatter_plot:"),
         PageSpec("app_pages/sweeps.py", "Sensitivity sweeps", ":material/tune:", "sweeps"),
         PageSpec("app_pages/retrain.py", "Retrain", ":material/model_training:", "writes"))


def visible_pages(n: Noun, *, demo: bool, experiments: bool, sweeps: bool, importance: bool = True) -> list[PageSpec]:
    """The pages listed for this state, titles in the data's own words (the first is the default)."""
    allowed = {"always": True, "writes": not demo, "experiments": experiments, "sweeps": experiments and sweeps,
               "importance": experiments and importance}
    return [PageSpec(p.path, p.title.format(one=n.one, many=n.many), p.icon, p.shown) for p in PAGES
            if allowed[p.shown]]


def is_demo_mode() -> bool:
    return settings.demo_mode(st.secrets)


# Narrow windows (a 1024 px laptop or projector, sidebar open): Streamlit's wide layout keeps 5 rem
# of padding each side, which leaves charts and tables ~560 px; 1.5 rem gives them ~680 px.
_PAGE_CSS = """<style>
.st-key-browser-warmup { display: none; }
@media (max-width: 1200px) {
  [data-testid="stMainBlockContainer"] { padding-left: 1.5rem; padding-right: 1.5rem; }
}
</style>"""


def navigation():
    """The entry script's work on every rerun: page config, the experiment chosen (its noun names
    the pages), the navigation (st.navigation: the sidebar lists the pages), the experiment picker
    and dataset badge under it. Returns the page to run."""
    st.set_page_config(page_title="SAML dashboard", page_icon=":material/public:", layout="wide")
    st.html(_PAGE_CSS)
    summaries = da.experiments()
    _choose_experiment(summaries)
    demo = is_demo_mode()
    specs = visible_pages(current_noun(), demo=demo, experiments=bool(summaries),
                          sweeps=any(s.sweep for s in summaries), importance=_importance_to_show(demo))
    page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=i == 0) for i, p in enumerate(specs)])
    sidebar(summaries)
    return page


def _importance_to_show(demo: bool) -> bool:
    """Whether the chosen experiment has input importance to show, or (outside demo mode) runs
    whose importance the analyses job can compute: otherwise its page would be empty."""
    from saml_core import analyses

    name = st.session_state.get(EXPERIMENT_KEY)
    try:
        exp = da.experiment(name) if name else None
    except da.ArtifactError:
        return False
    if exp is None:
        return False
    if any((r.path / analyses.IMPORTANCE_FILE).exists() for r in exp.runs if r.finished):
        return True
    return not demo and any(analyses.IMPORTANCE in got for got in analyses.missing(exp).values())


def _choose_experiment(summaries) -> None:
    """The experiment in session state: the one picked, else "demo" when there, else the first."""
    names = [s.name for s in summaries]
    if not names:
        st.session_state.pop(EXPERIMENT_KEY, None)
    elif st.session_state.get(EXPERIMENT_KEY) not in names:
        st.session_state[EXPERIMENT_KEY] = next((n for n in ("demo",) if n in names), names[0])


def row(key: str, weights: tuple[float, ...] = (1, 1), min_widths: tuple[int, ...] | int = 440) -> list:
    """Side-by-side containers in proportion `weights` that stack, each at full width, when the main
    area cannot give every one its minimum width. st.columns only stacks below a 640 px window, so
    at 1024 px (sidebar open) two charts would get ~270 px each: heatmap values and titles cut off."""
    mins = (min_widths,) * len(weights) if isinstance(min_widths, int) else tuple(min_widths)
    key = f"row-{key}"  # element keys share one namespace: keep rows apart from charts
    css = " ".join(f".st-key-{key} > [data-testid=stLayoutWrapper]:nth-child({i + 1}) {{ flex: {w} 1 0; "
                   f"min-width: min({m}px, 100%); }}" for i, (w, m) in enumerate(zip(weights, mins)))
    st.html(f"<style>{css}</style>")
    box = st.container(horizontal=True, key=key, gap="medium")
    return [box.container() for _ in weights]


def noun(exp) -> Noun:
    """What a scenario is called in this experiment's data (countries, city levels, the schema's word)."""
    one, many = getattr(exp, "scenario_noun", None) or ("scenario", "scenarios")
    return Noun(one, many)


def current_noun() -> Noun:
    name = st.session_state.get(EXPERIMENT_KEY)
    if not name:
        return Noun()
    try:
        return noun(da.experiment(name))
    except da.ArtifactError:
        return Noun()


def _remember_pick() -> None:
    st.session_state[EXPERIMENT_KEY] = st.session_state[PICKER_KEY]


def sidebar(summaries) -> None:
    """Experiment picker + dataset badge + job indicator."""
    with st.sidebar:
        if not summaries:
            st.info("No experiments yet in the artifacts folder.")
            return
        names = [s.name for s in summaries]

        def describe(name: str) -> str:
            s = next(x for x in summaries if x.name == name)
            if s.error:
                return f"{name} (unreadable)"
            return f"{name} ({s.n_finished}/{s.n_runs} runs)"

        st.selectbox("Experiment", names, index=names.index(st.session_state[EXPERIMENT_KEY]),
                     key=PICKER_KEY, format_func=describe, on_change=_remember_pick,
                     help="Every experiment found in the artifacts folder.")
        chosen = next(s for s in summaries if s.name == st.session_state[EXPERIMENT_KEY])
        if chosen.error is None:
            try:
                exp = da.experiment(chosen.name)
            except da.ArtifactError:
                exp = None
            if exp is not None:
                dataset_badge(exp)
                status = exp.status or {}
                if exp.state == "running":
                    st.caption(f":material/hourglass_top: Still training: run {status.get('run_index', '?')} of "
                               f"{status.get('n_runs', '?')} ({status.get('run_id', '')}). Finished runs are shown.")
                elif exp.state in ("interrupted", "cancelled"):
                    st.caption(f":material/pause_circle: Training was {exp.state}; finished runs are shown. "
                               "Resume it from the Retrain page.")
        job_indicator()
        if is_demo_mode():
            st.caption(explain.DEMO_MODE)
        doubt = settings.demo_mode_warning(st.secrets)
        if doubt:
            st.warning(doubt, icon=":material/warning:")


def jobs_line(job_list) -> str | None:
    """The sidebar's line on training jobs, None when none is active. It counts running and queued
    jobs together: that number changes only with a full rerun (a submit, or a job ending: see
    _rerun_when_a_job_ends), so it never disagrees with the job list on the page."""
    active = sum(j.active for j in job_list)
    if not active:
        return None
    return (f":material/hourglass_top: {active} training job{'s' if active > 1 else ''} running or queued — "
            "see Retrain.")


def _rerun_when_a_job_ends(job_list) -> None:
    """A whole-app rerun when a job has ended since the last look, so the new experiment is in the
    picker and every page shows it (the callers are fragments that only redraw themselves)."""
    active = sum(j.active for j in job_list)
    before = st.session_state.get("_active_jobs", 0)
    st.session_state["_active_jobs"] = active
    if active < before:
        st.rerun()


def job_indicator() -> None:
    """Sidebar line on the job queue; it redraws itself every 2 s while a job is active, so the
    count follows the job list instead of lagging until the next full rerun."""
    q = da.jobs()

    @st.fragment(run_every=2.0 if any(j.active for j in q.list()) else None)
    def _line():
        job_list = q.list()
        line = jobs_line(job_list)
        if line:
            st.caption(line)
        _rerun_when_a_job_ends(job_list)

    _line()


def dataset_badge(exp) -> None:
    """What data the experiment is about: simulated / real Taobao sample / own log, size, caveats."""
    from saml_core.data import registry as datasets

    entry = datasets.by_kind(exp.dataset_kind)  # None: a kind this version does not know
    simulated = entry is not None and entry.simulated
    info = exp.dataset_info or {}
    text = entry.badge if entry is not None and entry.badge else f"Dataset: {exp.dataset}"
    icon = entry.badge_icon if entry is not None else ":material/description:"
    (st.warning if simulated else st.info)(text, icon=icon)
    details = [str(info["title"])] if info.get("title") else [f"`{exp.dataset}`"]
    if isinstance(info.get("samples"), (int, float)):
        details.append(f"{int(info['samples']):,} samples")
    test = tables.test_samples_line(exp)
    if test:
        details.append(test)
    details.append(f"{len(exp.scenario_names)} {noun(exp).many}")
    st.caption(" · ".join(details))
    caveats = info.get("caveats") or []
    if isinstance(caveats, str):
        caveats = [caveats]
    caveats = [str(c) for c in caveats if not simulated or "Simulated" not in str(c)]  # badge says it
    for d in exp.dropped_scenarios:
        st.caption(f":material/filter_alt_off: Left out: **{d.get('scenario')}** — {d.get('reason')}")
    warnings = info.get("warnings") or []
    for w in warnings if isinstance(warnings, list) else [warnings]:  # e.g. label leakage: results may mean nothing
        st.warning(plain(str(w)), icon=":material/warning:")
    if caveats:
        st.caption(f"Caveat: {caveats[0]}")
    if len(caveats) > 1:
        with st.expander("More about this data"):
            for c in caveats[1:]:
                st.caption(c)


def current_experiment():
    """The experiment picked in the sidebar, or stop the page with a clear message."""
    name = st.session_state.get(EXPERIMENT_KEY)
    if not name:
        empty_state()
        st.stop()
    try:
        return da.experiment(name)
    except da.ArtifactError as exc:
        st.error(f"Experiment **{name}** cannot be shown: {exc}")
        st.stop()


def report_or_stop(exp) -> dict:
    """The engine's report of the experiment (every statistic the pages show), or stop the page
    with the reason."""
    report, error = da.report(exp.name)
    if report is None:
        st.error(f"The results of this experiment cannot be computed: {error}")
        st.stop()
    return report


def broken_runs_notice(exp, runs=None) -> None:
    """One line per run that cannot be shown, saying where it stands; the others are shown as usual."""
    from saml_core.store import STATE_WORDS

    waiting = [r for r in (runs if runs is not None else exp.runs) if r.error is not None]
    pending = [r for r in waiting if r.state in ("queued", "running", "cancelled", "interrupted")]
    if pending:
        by_state: dict[str, list[str]] = {}
        for r in pending:
            by_state.setdefault(r.state, []).append(r.run_id)
        st.info(" · ".join(f"{', '.join(ids[:4])}{f' and {len(ids) - 4} more' if len(ids) > 4 else ''}: "
                           f"{STATE_WORDS[state]}" for state, ids in by_state.items()) +
                ". Their results appear here when they finish.", icon=":material/hourglass_top:")
    for r in waiting:
        if r in pending:
            continue
        st.warning(f"Run **{r.run_id}** ({r.label or r.run_id}) is not shown ({r.state}): {r.error}",
                   icon=":material/warning:")


def runs_with_probes(exp, capability: str) -> list:
    """Finished runs whose model can show `capability` (alpha, gate, hidden, relations) and whose
    probes file is there; a clear line for each one that cannot be shown."""
    from saml_core.models import registry as models

    candidates = [r for r in exp.runs if (e := models.find(r.model)) is not None and capability in e.probes]
    if capability == "hidden":  # demo storage keeps hidden states for each model's first run only
        candidates = [r for r in candidates if not r.finished or r.metrics.get("hidden_states_kept", True)]
    broken_runs_notice(exp, candidates)
    for r in candidates:
        if r.error is None and not r.has_probes:
            st.warning(f"Run **{r.run_id}** ({r.label}): {da.probes_path(exp.name, r.run_id)} is missing, "
                       "so what this model learned cannot be shown.", icon=":material/warning:")
    return [r for r in candidates if r.error is None and r.has_probes]


def scenario_word(exp, plural: bool = True) -> str:
    n = noun(exp)
    return n.many if plural else n.one


def colors_for(exp) -> dict[str, str]:
    return scenario_colors(list(exp.scenario_names))


def empty_state() -> None:
    """No experiment on disk: say so, and offer to build the demo (unless in demo mode)."""
    st.title("SAML scenario-correlation dashboard")
    st.markdown(explain.app_intro(Noun()))
    st.info(f"There are no experiments in the artifacts folder (`{da.root()}`) yet.")
    if is_demo_mode():
        st.caption("Read-only demo mode: ask the team to build the demo experiments.")
        return
    q = da.jobs()
    active = [j for j in q.list() if j.active]
    if not active:
        st.markdown("Build the demo experiments now (the synthetic countries comparison set and the real "
                    "Taobao sample; a few minutes on a laptop CPU). Training runs in the background.")
        if st.button("Build the demo", type="primary", key="build_demo"):
            for job in demo_jobs():
                q.submit(job, title=(f"Demo: transfer and importance for {job.experiment}"
                                     if isinstance(job, AnalysesSpec) else f"Demo: {job.name} ({job.dataset})"))
            st.rerun()
    job_progress_panel(q, allow_cancel=True)


def job_progress_panel(q, allow_cancel: bool = True, show_finished: bool = True) -> None:
    """Live view of the job queue; refreshes itself every 2 s while something is active."""

    @st.fragment(run_every=2.0 if any(j.active for j in q.list()) else None)
    def _panel():
        job_list = q.list()
        if not job_list:
            st.caption("No training jobs yet.")
            return
        for job in reversed(job_list):
            if not show_finished and not job.active:
                continue
            _job_card(q, job, allow_cancel)
        _rerun_when_a_job_ends(job_list)

    _panel()


_STATE_ICON = {"queued": ":material/schedule:", "running": ":material/hourglass_top:",
               "finished": ":material/check_circle:", "failed": ":material/error:", "cancelled": ":material/cancel:",
               "interrupted": ":material/pause_circle:", "rejected": ":material/block:",
               "unreadable": ":material/warning:"}


def plain(text) -> str:
    """Text from files others can write (job titles, errors, logs) shown as text, not markdown."""
    out = str(text)
    for ch in "\\`*_{}[]()#+-.!|<>$~":
        out = out.replace(ch, "\\" + ch)
    return out


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _job_card(q, job, allow_cancel: bool) -> None:
    with st.container(border=True):
        cols = st.columns([5, 1])
        cols[0].markdown(f"{_STATE_ICON.get(job.state, '')} **{plain(job.title)}** — {job.state}")
        if allow_cancel and job.active:
            if cols[1].button("Cancel", key=f"cancel-{job.job_id}"):
                q.cancel(job.job_id)
                st.rerun()
        elif allow_cancel and job.state in ("interrupted", "cancelled", "failed"):
            if cols[1].button("Resume", key=f"resume-{job.job_id}",
                              help="Queue the same experiment again: finished runs and epochs are kept."):
                q.resume(job.job_id)
                st.rerun()
        status = job.status or {}
        if job.state == "running":
            # the engine's own fraction of the whole experiment (never goes backwards, includes
            # every sub-model of a per-scenario model); older status files: derived from counters
            frac = status.get("progress") if isinstance(status.get("progress"), (int, float)) else job.progress()
            frac = min(max(float(frac or 0.0), 0.0), 1.0)
            where = []
            if status.get("run_id"):
                where.append(f"run {status.get('run_index', '?')}/{status.get('n_runs', '?')}: {status['run_id']}")
            if status.get("submodel"):
                where.append(f"sub-model {status['submodel']}")
            if status.get("epoch") is not None:
                where.append(f"epoch {status.get('epoch')}")
            if isinstance(status.get("loss"), (int, float)):
                where.append(f"loss {status['loss']:.4f}")
            text = f"{100 * frac:.0f} % · ETA {_fmt_eta(job.eta_seconds())}" + (" · " + " · ".join(where) if where else "")
            st.progress(frac, text=plain(text))
            if job.cancel_requested:
                st.caption("Cancel requested: stopping after the current step (finished epochs are kept).")
        elif job.state == "queued":
            st.caption("Waiting for the job before it to finish.")
        elif job.state in ("failed", "rejected", "unreadable"):
            st.error(f"{job.state.capitalize()}: {plain(job.error or 'see the log below')}")
        elif job.state == "interrupted":
            st.warning(f"Interrupted: {plain(job.hint or job.error or 'the training process stopped')}")
        elif job.state == "finished" and job.experiment:
            st.caption(f"Finished — pick **{plain(job.experiment)}** in the sidebar.")
        if job.log_tail:
            with st.expander("Log (last lines)", expanded=job.state in ("running", "failed")):
                st.code(job.log_tail, language=None)
