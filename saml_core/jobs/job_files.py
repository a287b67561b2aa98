"""A job folder's files (docs in `saml_core/jobs/__init__.py`): the job record and its states,
the specifications a job may hold and their validation, reads that never raise on a broken
folder, atomic writes.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from saml_core.artifacts import ArtifactError, atomic_write_bytes
from saml_core.config import ConfigError


# Jobs run `python -m saml_core ...`: start them from the project root so that the package is
# importable whatever directory the app was started from.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE, JOB_FILE, STATUS_FILE, LOG_FILE, CANCEL_FILE, RESERVE_FILE = (
    "spec.json", "job.json", "status.json", "log.txt", "cancel", "reserve")
WORKER_FILE = "worker.json"

# States as stored in job.json, and as shown: a read adds "unreadable" (a job folder whose
# job.json is missing or invalid), turns a queued job with a cancel request into "cancelled" and
# a running job whose process is gone into the state its status file reached, or "interrupted".
STORED_STATES = ("queued", "running", "finished", "failed", "cancelled", "interrupted", "rejected")
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("finished", "failed", "cancelled", "interrupted", "rejected")
STATES = STORED_STATES + ("unreadable",)
RESUME_HINT = ("submit the same experiment again to resume: finished runs and finished epochs are kept")

JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RESERVE_BYTES = 64 * 1024  # room for the final job.json (+ its temp file) on a full disk
MAX_JOB_JSON = 64 * 1024
MAX_SPEC_JSON = 1024 * 1024
MAX_TITLE = 200
LOG_TAIL_BYTES = 16384
TERM_TO_KILL_SECONDS = 15.0  # the engine honours SIGTERM within a second; a hung job gets SIGKILL
POLL_SECONDS = 0.1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Never follows a symlink, never blocks
    on a FIFO or device (job folders are untrusted); OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)[:limit]
    finally:
        os.close(fd)


def _read_json_file(path: Path, limit: int) -> tuple[dict | None, str | None]:
    """(object, None) or (None, reason naming the file)."""
    try:
        data = json.loads(_read_regular(path, limit).decode("utf-8"))
    except FileNotFoundError:
        return None, f"{path}: file is missing"
    except OSError as exc:
        return None, f"{path}: cannot read ({exc.strerror or exc})"
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"{path}: corrupted or truncated JSON ({exc})"
    if not isinstance(data, dict):
        return None, f"{path}: expected a JSON object"
    return data, None


def _atomic_write(path: Path, data: bytes) -> None:
    """artifacts.atomic_write_bytes, except that a missing folder is not created again (a job
    folder removed by "clear" must stay removed)."""
    if not _real_dir(path.parent):
        raise ArtifactError(path, "cannot write (its folder is gone or is not a folder)")
    atomic_write_bytes(path, data)


def _exists(path: Path) -> bool:
    try:
        os.lstat(path)
        return True
    except OSError:
        return False


def _real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def validate_spec(spec) -> "ExperimentConfig":  # noqa: F821 (imported lazily: torch-free import)
    """The ExperimentConfig of a job specification (a dict or an ExperimentConfig), validated like
    every spec a job runs; ConfigError names the problem. Job specs may not move the dataset cache
    (`cache_dir`): a job writes under its artifacts root and the default cache only."""
    from saml_core.experiments import ExperimentConfig

    cfg = spec if isinstance(spec, ExperimentConfig) else ExperimentConfig.from_dict(spec)
    # Round trip: what is stored is exactly what the worker will validate and run.
    cfg = ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    if "cache_dir" in cfg.dataset_options:
        raise ConfigError("a job specification may not set the dataset option cache_dir")
    return cfg


def _validate_analyses(spec):
    """The AnalysesSpec of an analyses job specification, validated like every spec a job runs."""
    from saml_core.analyses_job import AnalysesSpec

    cfg = spec if isinstance(spec, AnalysesSpec) else AnalysesSpec.from_dict(spec)
    return AnalysesSpec.from_dict(json.loads(json.dumps(cfg.to_dict())))


@dataclass(frozen=True)
class JobKind:
    """What a job can be: the `python -m saml_core` sub-command the worker starts for it (always
    with `--spec <job>/spec.json --status-file <job>/status.json --artifacts <root>`) and the
    validation of its specification (-> an object with .name, the experiment it writes, .dataset
    and .to_dict(), what spec.json holds)."""

    name: str
    command: str
    validate: Callable


# "kind" in spec.json picks one; a specification without it is an experiment (every job before kinds)
JOB_KINDS = {k.name: k for k in (
    JobKind("experiment", "experiment", validate_spec),
    JobKind("analyses", "analyses", _validate_analyses),  # transfer matrix + importance from stored weights
)}


def validate_job(spec) -> tuple[JobKind, object]:
    """(kind, validated specification) of a job specification: an ExperimentConfig, an
    AnalysesSpec, or the dict of either; ConfigError names the problem."""
    kind = spec.get("kind", "experiment") if isinstance(spec, dict) else getattr(spec, "kind", "experiment")
    if not isinstance(kind, str) or kind not in JOB_KINDS:
        raise ConfigError(f"unknown job kind {kind!r:.40}; kinds: {', '.join(JOB_KINDS)}")
    if kind == "experiment" and isinstance(spec, dict) and "kind" in spec:
        spec = {k: v for k, v in spec.items() if k != "kind"}
    return JOB_KINDS[kind], JOB_KINDS[kind].validate(spec)


@dataclass
class Job:
    """One job as the UI shows it. `state` is one of STATES; `error` says why a job failed, was
    rejected or cannot be read; `hint` says what to do (e.g. how to resume an interrupted job)."""

    job_id: str
    title: str
    state: str = "queued"
    kind: str | None = None  # JOB_KINDS name (None: written before kinds existed, an experiment)
    experiment: str | None = None  # the experiment the job writes (name from its spec)
    dataset: str | None = None
    created: str | None = None
    started: str | None = None
    ended: str | None = None
    pid: int | None = None  # the training process (its own process group)
    pid_start: str | None = None  # its start time, so that a reused pid is not mistaken for it
    returncode: int | None = None
    error: str | None = None
    # Filled on read, not stored:
    hint: str | None = None
    cancel_requested: bool = False
    status: dict | None = None
    log_tail: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def progress(self) -> float | None:
        return progress_fraction(self.status) if self.state == "running" else (
            1.0 if self.state == "finished" else None
        )

    def eta_seconds(self) -> float | None:
        if self.state != "running" or not self.status:
            return None
        eta = self.status.get("eta_seconds")
        return float(eta) if isinstance(eta, (int, float)) and not isinstance(eta, bool) else None


_STORED_FIELDS = {"job_id": str, "title": str, "state": str, "kind": str, "experiment": str, "dataset": str,
                  "created": str, "started": str, "ended": str, "pid": int, "pid_start": str, "returncode": int, "error": str}


def _record(job: Job) -> dict:
    return {k: getattr(job, k) for k in _STORED_FIELDS}


def _job_from_record(raw: dict, job_id: str, path: Path) -> tuple[Job | None, str | None]:
    for key, kind in _STORED_FIELDS.items():
        value = raw.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return None, f"{path}: field '{key}' should be {kind.__name__}, got {type(value).__name__}"
    if raw.get("job_id") != job_id:
        return None, f"{path}: job_id {raw.get('job_id')!r:.60} does not match its folder"
    if raw.get("state") not in STORED_STATES:
        return None, f"{path}: unknown state {raw.get('state')!r:.40}"
    kw = {k: raw.get(k) for k in _STORED_FIELDS}
    kw["title"] = (kw["title"] or job_id)[:MAX_TITLE]
    return Job(**kw), None


def progress_fraction(status: dict | None) -> float | None:
    """Overall progress in [0, 1] of an experiment from its status: the engine's own `progress`
    (which counts runs finished earlier) when present, else from runs, epochs and steps."""
    if not status:
        return None
    if status.get("state") == "finished":
        return 1.0
    given = status.get("progress")
    if isinstance(given, (int, float)) and not isinstance(given, bool) and 0.0 <= given <= 1.0:
        return float(given)

    def num(key, default=0.0):
        value = status.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    n_runs = max(num("n_runs", 1.0), 1.0)
    epochs = max(num("epochs", 1.0), 1.0)
    steps = num("steps", 0.0)
    # run_index and epoch are 1-based while a run/epoch is in progress.
    run_done = max(num("run_index", 1.0) - 1.0, 0.0)
    epoch_done = max(num("epoch", 1.0) - 1.0, 0.0)
    step_frac = num("step") / steps if steps > 0 else 0.0
    in_run = min((epoch_done + min(step_frac, 1.0)) / epochs, 1.0)
    return float(min(max((run_done + in_run) / n_runs, 0.0), 1.0))


def _tail_text(data: bytes, max_lines: int) -> str:
    text = data.decode("utf-8", errors="replace")
    # tqdm redraws with carriage returns: keep the last state of each line.
    lines = [ln.rsplit("\r", 1)[-1] for ln in text.replace("\r\n", "\n").split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    return "\n".join(lines[-max_lines:])


def _error_line(tail: str) -> str | None:
    """The engine's one-line `error: ...` (or the last line of output) from a log tail."""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("error:"):
            return ln[len("error:"):].strip()
    return lines[-1] if lines else None
