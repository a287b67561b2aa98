"""Background training jobs: validated experiment specifications, run one at a time in separate
processes, followed via files.

The dashboard must stay responsive while a model trains, and a Streamlit rerun (or a browser
refresh, or a restart of the app) must not lose track of a job. So all state lives on disk in
a jobs folder (default `<artifacts>/.jobs/`), one sub-folder per job:

    <jobs>/<job_id>/spec.json    the job's specification, validated: an experiment (ExperimentConfig.to_dict())
                                 or, with "kind" (JOB_KINDS), e.g. {"kind": "analyses", ...}
    <jobs>/<job_id>/job.json     lifecycle record (written by submit, then only by the worker)
    <jobs>/<job_id>/cancel       present once a cancel was requested (created atomically)
    <jobs>/<job_id>/status.json  progress written by the engine (`--status-file`), see ARTIFACTS.md
    <jobs>/<job_id>/log.txt      stdout + stderr of the training process
    <jobs>/<job_id>/reserve      a little disk space kept back to record the outcome on a full disk

The artifacts folder is shared by a team, so a job folder is untrusted input: a job never holds a
command. The worker builds the only command it ever starts itself,
`python -m saml_core <experiment|analyses> --spec <job>/spec.json --status-file <job>/status.json
--artifacts <this queue's artifacts root>` (the sub-command from its kind, JOB_KINDS), after
validating spec.json again; anything else in
job.json (an `argv`, a `command`) is ignored, and a spec that does not validate is recorded as
"rejected" and never runs.

A detached worker process (`python -m saml_core.jobs worker JOBS_DIR ARTIFACTS_ROOT`) drains the
queue: it starts the oldest queued job, waits for it, records the outcome, and exits when nothing
is left. An exclusive lock on `<jobs>/worker.lock` guarantees a single worker, so only one job
trains at a time (the machine has two cores).

Who writes what: `submit` creates a job folder (built under a hidden name, then renamed into
place); `cancel` only creates the `cancel` marker; `clear_finished` removes final jobs; the worker
is the only writer of job.json after submit. Reads (`list`, `get`) never write: a "running" job
whose process is gone (pid + start time, `saml_core.liveness`) is shown as "interrupted" without
touching job.json, and an unreadable job folder is shown as "unreadable" instead of raising.

The package: `job_files.py` (a job folder's files, the states, spec validation), `job_worker.py`
(the worker process and the jobs it runs), `job_queue.py` (`JobQueue`: submit, list, cancel,
resume). Never imports Streamlit: the UI calls `JobQueue` methods and renders what they return.
"""
from __future__ import annotations

# the package's API
from saml_core.jobs.job_files import (ACTIVE_STATES, FINAL_STATES, JOB_KINDS, MAX_JOB_JSON, MAX_SPEC_JSON,  # noqa: F401
                                      RESUME_HINT, STATES, STORED_STATES, Job, JobKind, progress_fraction,
                                      validate_job, validate_spec)
from saml_core.jobs.job_queue import JobQueue, wait  # noqa: F401

__all__ = ["ACTIVE_STATES", "FINAL_STATES", "JOB_KINDS", "MAX_JOB_JSON", "MAX_SPEC_JSON", "RESUME_HINT", "STATES",
           "STORED_STATES", "Job", "JobKind", "JobQueue", "progress_fraction", "validate_job", "validate_spec", "wait"]
