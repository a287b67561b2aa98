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

Never imports Streamlit: the UI calls `JobQueue` methods and renders what they return.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from saml_core import liveness
from saml_core.artifacts import ArtifactError, atomic_write_bytes
from saml_core.config import ConfigError

# Jobs run `python -m saml_core ...`: start them from the project root so that the package is
# importable whatever directory the app was started from.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
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


def _env() -> dict:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT) + (os.pathsep + path if path else ""),
            "PYTHONUNBUFFERED": "1"}


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


class JobQueue:
    """All jobs of one jobs folder. Cheap to construct; every method re-reads the disk.

    `artifacts_root` is where every job of this queue writes its experiment (default: the parent of
    the jobs folder, i.e. `JobQueue(<artifacts>/.jobs)`); a job's spec cannot change it."""

    def __init__(self, jobs_dir: str | Path, artifacts_root: str | Path | None = None):
        self.dir = Path(jobs_dir).resolve()
        self.root = Path(artifacts_root).resolve() if artifacts_root is not None else self.dir.parent

    # -- paths
    def job_dir(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
            raise KeyError(f"not a job id: {job_id!r:.80}")
        return self.dir / job_id

    def spec_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / SPEC_FILE

    def status_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / STATUS_FILE

    def log_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / LOG_FILE

    def command(self, job_id: str, kind: str = "experiment") -> list[str]:
        """The one command a job of `kind` runs (built here from JOB_KINDS, never read from the job
        folder)."""
        return [sys.executable, "-m", "saml_core", JOB_KINDS[kind].command, "--spec", str(self.spec_path(job_id)),
                "--status-file", str(self.status_path(job_id)), "--artifacts", str(self.root)]

    # -- reading (never writes)
    def _job_ids(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except OSError:
            return []
        # Hidden names are submissions being built; a symlink is never a job.
        return sorted(n for n in names if JOB_ID_RE.match(n) and _real_dir(self.dir / n))

    def _worker_record(self) -> dict | None:
        raw, _ = _read_json_file(self.dir / WORKER_FILE, MAX_JOB_JSON)
        return raw if raw is not None and liveness.alive(raw) else None

    def _load(self, job_id: str, *, details: bool = True, worker: dict | None = None,
              worker_known: bool = False) -> Job | None:
        try:
            d = self.job_dir(job_id)
        except KeyError:
            return None
        if not _real_dir(d):
            return None
        path = d / JOB_FILE
        raw, why = _read_json_file(path, MAX_JOB_JSON)
        job = None
        if raw is not None:
            job, why = _job_from_record(raw, job_id, path)
        if job is None:
            return Job(job_id=job_id, title=job_id, state="unreadable", error=why,
                       hint="this job folder is not a job this version can read; clearing finished jobs removes it")
        job.cancel_requested = _exists(d / CANCEL_FILE)
        if details or job.state == "running":
            job.status, _ = _read_json_file(d / STATUS_FILE, MAX_JOB_JSON)
        if details:
            job.log_tail = self.log_tail(job_id)
        if job.state == "queued" and job.cancel_requested:
            job.state = "cancelled"  # the worker will never start it
        elif job.state == "running":
            alive = liveness.alive({"pid": job.pid, "pid_start": job.pid_start})
            if not alive:
                if not worker_known:
                    worker = self._worker_record()
                if worker is None or worker.get("job_id") != job_id:
                    self._settle_shown(job)
        if job.state == "interrupted":
            job.hint = RESUME_HINT
        return job

    @staticmethod
    def _settle_shown(job: Job) -> None:
        """A running job whose process and worker are gone: show where its status file got to."""
        status = job.status or {}
        final = status.get("state")
        if final in ("finished", "cancelled", "failed", "interrupted"):
            job.state = final
            if final == "failed":
                job.error = str(status.get("message") or "the training failed")
        else:
            job.state = "interrupted"
            job.error = "the training process stopped without recording an outcome (machine restart or kill?)"

    def get(self, job_id: str) -> Job | None:
        return self._load(job_id)

    def list(self) -> list[Job]:
        """All jobs, oldest first, as they stand now. Never writes and never raises on a broken job
        folder (it is listed as "unreadable")."""
        worker = self._worker_record()
        jobs = [self._load(j, worker=worker, worker_known=True) for j in self._job_ids()]
        return [j for j in jobs if j is not None]

    def log_tail(self, job_id: str, max_lines: int = 40, max_bytes: int = LOG_TAIL_BYTES) -> str:
        try:
            fd = os.open(self.log_path(job_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, KeyError):
            return ""
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return ""
            os.lseek(fd, max(st.st_size - max_bytes, 0), os.SEEK_SET)
            data = os.read(fd, max_bytes)
        except OSError:
            return ""
        finally:
            os.close(fd)
        return _tail_text(data, max_lines)

    # -- user actions
    def submit(self, spec, title: str, *, start_worker: bool = True) -> Job:
        """Queue a job. `spec`: an ExperimentConfig, an AnalysesSpec (`saml_core.analyses_job`) or the
        `to_dict()` of either; ConfigError (nothing queued) when it does not validate, ArtifactError
        naming the file when the job cannot be written (e.g. a full disk; nothing is left behind)."""
        kind, cfg = validate_job(spec)
        if not isinstance(title, str):
            raise ConfigError(f"a job title must be text, got {type(title).__name__}")
        # Sortable ids: the queue runs jobs in id order (= submission order).
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        job_id = f"{stamp}-{uuid.uuid4().hex[:6]}"
        job = Job(job_id=job_id, title=" ".join(title.split())[:MAX_TITLE] or cfg.name, state="queued",
                  kind=kind.name, experiment=cfg.name, dataset=cfg.dataset, created=_now())
        final = self.dir / job_id
        tmp = self.dir / f".{job_id}.tmp"
        files = ((SPEC_FILE, json.dumps(cfg.to_dict(), indent=1).encode()),
                 (JOB_FILE, json.dumps(_record(job), indent=1).encode()),
                 (RESERVE_FILE, b"\0" * RESERVE_BYTES))
        current = final
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            os.mkdir(tmp)
            for name, data in files:
                current = final / name
                with open(tmp / name, "xb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            current = final
            os.rename(tmp, final)  # the job appears whole or not at all
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ArtifactError(current, f"cannot write ({exc.strerror or exc}); the job was not queued") from None
        if start_worker:
            self.ensure_worker()
        return self.get(job_id) or job

    def cancel(self, job_id: str) -> Job | None:
        """Ask a queued or running job to stop: creates its `cancel` marker (never rewrites job.json).
        The worker never starts a job with the marker and sends SIGTERM to a running one within
        POLL_SECONDS; the engine then stops within a second and keeps finished epochs."""
        job = self._load(job_id, details=False)
        if job is None or not job.active:
            return job
        marker = self.job_dir(job_id) / CANCEL_FILE
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ArtifactError(marker, f"cannot write ({exc.strerror or exc}); the job was not cancelled") from None
        latest = self._load(job_id, details=False)
        if latest is not None and latest.state == "running" and self._worker_record() is None:
            # No worker to act on the marker (it was killed): stop the process ourselves, once it is
            # proven to be this job's own training process.
            self._signal_orphan(latest)
        return self.get(job_id)

    def resume(self, job_id: str, *, start_worker: bool = True) -> Job:
        """Queue a job's experiment again (e.g. after "interrupted" or "cancelled"): the engine skips
        finished runs and resumes unfinished ones from their last finished epoch. The stored spec
        is validated again like any submission (ConfigError, ArtifactError)."""
        job = self._load(job_id, details=False)
        if job is None:
            raise KeyError(job_id)
        raw, why = _read_json_file(self.spec_path(job_id), MAX_SPEC_JSON)
        if raw is None:
            raise ConfigError(why)
        return self.submit(raw, job.title if job.state != "unreadable" else "", start_worker=start_worker)

    def _signal_orphan(self, job: Job) -> None:
        if not liveness.alive({"pid": job.pid, "pid_start": job.pid_start}):
            return
        try:
            cmdline = _read_regular(Path(f"/proc/{job.pid}/cmdline"), 1 << 16).split(b"\0")
        except OSError:
            return
        if str(self.spec_path(job.job_id)).encode() in cmdline and b"saml_core" in cmdline:
            try:
                os.killpg(job.pid, signal.SIGTERM)
            except OSError:
                pass

    def clear_finished(self) -> int:
        """Forget jobs that are over (finished, failed, cancelled, interrupted, rejected) or
        unreadable; their experiments stay in the artifacts folder. Returns how many."""
        removed = 0
        for job in self.list():
            if job.state in FINAL_STATES or job.state == "unreadable":
                d = self.job_dir(job.job_id)
                if _real_dir(d):
                    try:
                        shutil.rmtree(d)
                    except OSError as exc:
                        raise ArtifactError(d, f"cannot remove ({exc.strerror or exc})") from None
                    removed += 1
        return removed

    # -- the worker
    def ensure_worker(self) -> None:
        """Start a detached worker if jobs are queued and no worker is alive (a second one would
        find the lock taken and leave at once)."""
        if self._worker_record() is not None:
            return
        if not any(j.state == "queued" for j in (self._load(i, details=False) for i in self._job_ids()) if j):
            return
        subprocess.Popen(
            [sys.executable, "-m", "saml_core.jobs", "worker", str(self.dir), str(self.root)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, cwd=PROJECT_ROOT, env=_env(),
        )

    def _write_job(self, job: Job, *, use_reserve: bool = True) -> str | None:
        """job.json, atomically; None when written, else why not (naming the file). On a full disk
        the job's reserve is given up to make room for an outcome, so that it is still recorded;
        when even that fails, reads show the job from its process and status file."""
        path = self.job_dir(job.job_id) / JOB_FILE
        data = json.dumps(_record(job), indent=1).encode()
        try:
            _atomic_write(path, data)
            return None
        except ArtifactError as exc:
            if not use_reserve or not self._drop_reserve(job.job_id):
                return str(exc)
        try:
            _atomic_write(path, data)
            return None
        except ArtifactError as exc:
            return str(exc)

    def _drop_reserve(self, job_id: str) -> bool:
        try:
            os.unlink(self.job_dir(job_id) / RESERVE_FILE)
            return True
        except OSError:
            return False

    def _write_worker(self, job_id: str | None) -> None:
        try:  # only a hint for readers; a full disk must not stop the worker
            _atomic_write(self.dir / WORKER_FILE,
                          json.dumps({**liveness.token(), "job_id": job_id, "updated": _now()}).encode())
        except ArtifactError:
            pass

    def _retire_worker(self) -> None:
        """Stop telling submitters that a worker is alive (before the last look at the queue)."""
        raw, _ = _read_json_file(self.dir / WORKER_FILE, MAX_JOB_JSON)
        if raw is not None and raw.get("pid") == os.getpid():
            try:
                os.unlink(self.dir / WORKER_FILE)
            except OSError:
                pass

    def _next_queued(self, seen: set[str]) -> str | None:
        for job_id in self._job_ids():
            if job_id in seen:
                continue
            raw, _ = _read_json_file(self.dir / job_id / JOB_FILE, MAX_JOB_JSON)
            if raw is not None and raw.get("state") == "queued":
                return job_id
        return None

    def _finish(self, job: Job, state: str, error: str | None = None, returncode: int | None = None) -> None:
        job.state, job.error, job.returncode, job.ended = state, error, returncode, _now()
        self._write_job(job)
        self._drop_reserve(job.job_id)

    def _run_one(self, job_id: str) -> None:
        d = self.job_dir(job_id)
        raw, why = _read_json_file(d / JOB_FILE, MAX_JOB_JSON)
        job, why = _job_from_record(raw, job_id, d / JOB_FILE) if raw is not None else (None, why)
        if job is None:
            return  # unreadable: shown as such, never run
        if job.state != "queued":
            return
        if _exists(d / CANCEL_FILE):
            return self._finish(job, "cancelled", "cancelled before it started")
        raw_spec, why = _read_json_file(d / SPEC_FILE, MAX_SPEC_JSON)
        try:
            if raw_spec is None:
                raise ConfigError(why)
            kind, cfg = validate_job(raw_spec)
            if os.path.islink(self.root / cfg.name):
                raise ConfigError(f"{self.root / cfg.name} is a symbolic link, not an experiment folder")
        except (ConfigError, ValueError) as exc:  # DataError is a ValueError too
            return self._finish(job, "rejected", f"rejected, never run: invalid job specification: {exc}")
        job.kind, job.experiment, job.dataset = kind.name, cfg.name, cfg.dataset
        try:
            log_fd = os.open(d / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644)
        except OSError as exc:
            return self._finish(job, "failed", f"{d / LOG_FILE}: cannot open the log ({exc.strerror or exc})")
        try:
            self._start_and_wait(job, log_fd, kind.name)
        finally:
            os.close(log_fd)

    def _start_and_wait(self, job: Job, log_fd: int, kind: str = "experiment") -> None:
        d = self.job_dir(job.job_id)
        if _exists(d / CANCEL_FILE):
            return self._finish(job, "cancelled", "cancelled before it started")
        try:
            proc = subprocess.Popen(self.command(job.job_id, kind), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True, cwd=PROJECT_ROOT, env=_env())
        except OSError as exc:
            return self._finish(job, "failed", f"could not start the training process: {exc}")
        pump = _LogPump(proc.stdout, log_fd, d / LOG_FILE)
        pump.start()
        job.state, job.started, job.pid = "running", _now(), proc.pid
        job.pid_start = liveness.token(proc.pid)["pid_start"]
        # The reserve is kept for the outcome: a start that cannot be recorded is stopped (a job
        # nobody can follow must not train unseen) and recorded as failed.
        unrecorded = self._write_job(job, use_reserve=False)
        if unrecorded:
            _terminate(proc)
        # A cancel that came while the process was starting is seen here; any later one is seen by
        # the polling below (cancel() only creates the marker, so no update of job.json is lost).
        term_at = None
        while True:
            if term_at is None and _exists(d / CANCEL_FILE):
                _signal_group(proc.pid, signal.SIGTERM)
                term_at = time.monotonic()
            elif term_at is not None and time.monotonic() - term_at > TERM_TO_KILL_SECONDS:
                _signal_group(proc.pid, signal.SIGKILL)  # hung: no clean stop to wait for
                term_at = time.monotonic()
            try:
                rc = proc.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                continue
        pump.join(timeout=5)
        tail = pump.tail()
        status, _ = _read_json_file(d / STATUS_FILE, MAX_JOB_JSON)
        shown = (status or {}).get("state")
        if unrecorded:
            return self._finish(job, "failed", f"stopped at once: its start could not be recorded ({unrecorded})", rc)
        if rc == 0:
            state, error = "finished", None
        elif _exists(d / CANCEL_FILE):
            state, error = "cancelled", None
        elif shown in ("cancelled", "interrupted"):
            state, error = shown, None
        else:
            state = "failed"
            line = _error_line(tail)
            error = f"exit code {rc}" + (f": {line}" if line else "")
        if pump.error:
            error = (error + "; " if error else "") + pump.error
        self._finish(job, state, error, rc)

    def work(self) -> None:
        """Drain the queue, one job at a time. Returns when the queue is empty."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.dir / "worker.lock"
        seen: set[str] = set()  # a job whose record could not be written is not started twice
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another worker owns the queue
                while (job_id := self._next_queued(seen)) is not None:
                    seen.add(job_id)
                    self._write_worker(job_id)
                    try:
                        self._run_one(job_id)
                    except Exception as exc:  # noqa: BLE001 - one broken job must not stop the queue
                        job = self._load(job_id, details=False)
                        if job is not None and job.state != "unreadable":
                            self._finish(job, "failed", f"the job worker failed: {type(exc).__name__}: {exc}")
                self._write_worker(None)
            finally:
                os.close(fd)  # releases the lock
            # A submitter that saw this worker alive started none: retire first, then look once
            # more (a job queued after the retirement finds no worker and starts one itself).
            self._retire_worker()
            if self._next_queued(seen) is None:
                return


class _LogPump(threading.Thread):
    """Copies the training process's output to log.txt and keeps its tail in memory, so that its
    last `error:` line reaches job.json even when the log itself cannot be written (full disk)."""

    def __init__(self, stream, log_fd: int, log_path: Path):
        super().__init__(daemon=True)
        self.stream, self.log_fd, self.log_path = stream, log_fd, log_path
        self.buffer: deque[bytes] = deque()
        self.size = 0
        self.error: str | None = None

    def run(self) -> None:
        while chunk := self.stream.read1(65536):
            self.buffer.append(chunk)
            self.size += len(chunk)
            while self.size > LOG_TAIL_BYTES and len(self.buffer) > 1:
                self.size -= len(self.buffer.popleft())
            if self.error is None:
                try:
                    os.write(self.log_fd, chunk)
                except OSError as exc:
                    self.error = f"{self.log_path}: cannot write the log ({exc.strerror or exc})"
        self.stream.close()

    def tail(self, max_lines: int = 40) -> str:
        return _tail_text(b"".join(self.buffer), max_lines)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the job runs in its own process group (start_new_session)
    except OSError:
        pass


def _terminate(proc: subprocess.Popen) -> None:
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=TERM_TO_KILL_SECONDS)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)


def wait(queue: JobQueue, job_id: str, timeout: float, poll: float = 0.1) -> Job:
    """Block until a job leaves the queued/running states (for scripts and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        job = queue.get(job_id)
        if job is None:
            raise KeyError(job_id)
        if not job.active or time.monotonic() > deadline:
            return job
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3) or args[0] != "worker":
        print("usage: python -m saml_core.jobs worker JOBS_DIR [ARTIFACTS_ROOT]", file=sys.stderr)
        return 2
    JobQueue(args[1], args[2] if len(args) == 3 else None).work()
    return 0


if __name__ == "__main__":
    sys.exit(main())
