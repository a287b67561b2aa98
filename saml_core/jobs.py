"""Background training jobs: queued, run one at a time in separate processes, followed via files.

The dashboard must stay responsive while a model trains, and a Streamlit rerun (or a browser
refresh, or a restart of the app) must not lose track of a job. So all state lives on disk in
a jobs folder (default `<artifacts>/.jobs/`), one sub-folder per job:

    <jobs>/<job_id>/job.json     what to run and its lifecycle state (queued/running/finished/...)
    <jobs>/<job_id>/status.json  progress written by the engine (`--status-file`), see ARTIFACTS.md
    <jobs>/<job_id>/log.txt      stdout + stderr of the training process

A detached worker process (`python -m saml_core.jobs worker JOBS_DIR`) drains the queue:
it starts the oldest queued job, waits for it, records the outcome, and exits when nothing is
left. An exclusive lock on `<jobs>/worker.lock` guarantees a single worker, so only one job
trains at a time (the machine has two cores). Cancelling sends SIGTERM to the job's process
group; the engine then stops cleanly and keeps finished epochs.

Never imports Streamlit: the UI calls `JobQueue` methods and renders what they return.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

STATUS_PLACEHOLDER = "{status_file}"
# Jobs run `python -m saml_core ...`: start them from the project root so that the package is
# importable whatever directory the app was started from.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("finished", "failed", "cancelled")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A finished child that nobody reaped yet is a zombie: treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


@dataclass
class Job:
    job_id: str
    title: str
    argv: list[str]
    state: str = "queued"  # queued | running | finished | failed | cancelled
    created: str = field(default_factory=_now)
    started: str | None = None
    ended: str | None = None
    pid: int | None = None
    returncode: int | None = None
    cancel_requested: bool = False
    error: str | None = None
    experiment: str | None = None  # experiment name the job writes, if any
    # Filled on read, not stored:
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
        return float(eta) if isinstance(eta, (int, float)) else None


def _env() -> dict:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT) + (os.pathsep + path if path else "")}


def progress_fraction(status: dict | None) -> float | None:
    """Overall progress in [0, 1] of an experiment from its status (runs, epochs, steps)."""
    if not status:
        return None
    if status.get("state") == "finished":
        return 1.0

    def num(key, default=0.0):
        value = status.get(key)
        return float(value) if isinstance(value, (int, float)) else default

    n_runs = max(num("n_runs", 1.0), 1.0)
    epochs = max(num("epochs", 1.0), 1.0)
    steps = num("steps", 0.0)
    # run_index and epoch are 1-based while a run/epoch is in progress.
    run_done = max(num("run_index", 1.0) - 1.0, 0.0)
    epoch_done = max(num("epoch", 1.0) - 1.0, 0.0)
    step_frac = num("step") / steps if steps > 0 else 0.0
    in_run = min((epoch_done + min(step_frac, 1.0)) / epochs, 1.0)
    return float(min(max((run_done + in_run) / n_runs, 0.0), 1.0))


def experiment_argv(
    dataset: str,
    name: str,
    *,
    artifacts: str | Path,
    runs: list[str] | None = None,
    quick: bool = False,
    seeds: int | None = None,
    device: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    d_g: int | None = None,
    d_s: int | None = None,
    heads: int | None = None,
    mlp: list[int] | None = None,
    extra: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """The engine CLI command for one experiment, with the status-file placeholder."""
    argv = [sys.executable, "-m", "saml_core", "experiment", "--dataset", dataset,
            "--name", name, "--artifacts", str(Path(artifacts).resolve())]
    if quick:
        argv.append("--quick")
    if runs:
        argv += ["--runs", ",".join(runs)]
    for flag, value in (("--seeds", seeds), ("--device", device), ("--epochs", epochs),
                        ("--lr", lr), ("--batch-size", batch_size), ("--d-g", d_g),
                        ("--d-s", d_s), ("--heads", heads)):
        if value is not None:
            argv += [flag, str(value)]
    if mlp:
        argv += ["--mlp", ",".join(str(int(m)) for m in mlp)]
    argv += list(extra)
    argv += ["--status-file", STATUS_PLACEHOLDER]
    return argv


class JobQueue:
    """All jobs of one jobs folder. Cheap to construct; every method re-reads the disk."""

    def __init__(self, jobs_dir: str | Path):
        self.dir = Path(jobs_dir).resolve()

    # -- paths
    def job_dir(self, job_id: str) -> Path:
        return self.dir / job_id

    def status_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "status.json"

    def log_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "log.txt"

    # -- reading
    def _load(self, job_id: str, with_details: bool = True) -> Job | None:
        raw = _read_json(self.job_dir(job_id) / "job.json")
        if raw is None:
            return None
        known = {k: raw[k] for k in Job.__dataclass_fields__ if k in raw and k not in ("status", "log_tail")}
        try:
            job = Job(**known)
        except TypeError:
            return None
        if with_details:
            job.status = _read_json(self.status_path(job_id))
            job.log_tail = self.log_tail(job_id)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._load(job_id)

    def list(self) -> list[Job]:
        """All jobs, oldest first. Also repairs jobs whose process died without a trace."""
        if not self.dir.is_dir():
            return []
        jobs = [j for p in sorted(self.dir.iterdir()) if p.is_dir() and (j := self._load(p.name))]
        jobs.sort(key=lambda j: j.job_id)
        worker_alive = self._worker_running()
        for job in jobs:
            if job.state == "running" and not _pid_alive(job.pid) and not worker_alive:
                # The worker would have recorded the outcome; it is gone, so nobody will.
                final = (job.status or {}).get("state")
                job.state, job.ended = (final if final in FINAL_STATES else "failed"), _now()
                if job.state == "failed":
                    job.error = "the training process stopped unexpectedly (machine or app restart?)"
                self._save(job)
        return jobs

    def log_tail(self, job_id: str, max_lines: int = 40, max_bytes: int = 16384) -> str:
        path = self.log_path(job_id)
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(size - max_bytes, 0))
                data = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        # tqdm redraws with carriage returns: keep the last state of each line.
        lines = [ln.rsplit("\r", 1)[-1] for ln in data.replace("\r\n", "\n").split("\n")]
        lines = [ln for ln in lines if ln.strip()]
        return "\n".join(lines[-max_lines:])

    # -- writing
    def _save(self, job: Job) -> None:
        data = asdict(job)
        data.pop("status", None)
        data.pop("log_tail", None)
        _write_json_atomic(self.job_dir(job.job_id) / "job.json", data)

    def submit(self, argv: list[str], title: str, experiment: str | None = None,
               start_worker: bool = True) -> Job:
        """Queue a command. `{status_file}` in argv becomes this job's status file path."""
        if not argv:
            raise ValueError("a job needs a command")
        # Sortable ids: the queue runs jobs in id order (= submission order).
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        job_id = f"{stamp}-{uuid.uuid4().hex[:4]}"
        self.job_dir(job_id).mkdir(parents=True, exist_ok=False)
        status = str(self.status_path(job_id))
        argv = [status if a == STATUS_PLACEHOLDER else a for a in argv]
        job = Job(job_id=job_id, title=title, argv=argv, experiment=experiment)
        self._save(job)
        if start_worker:
            self.ensure_worker()
        return job

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once, or SIGTERM a running one (the worker records the end)."""
        job = self._load(job_id, with_details=False)
        if job is None or not job.active:
            return job
        job.cancel_requested = True
        if job.state == "queued":
            job.state, job.ended = "cancelled", _now()
        self._save(job)
        if job.state == "running" and job.pid:
            try:
                os.killpg(job.pid, signal.SIGTERM)  # the job runs in its own process group
            except (ProcessLookupError, PermissionError):
                pass
        return job

    def clear_finished(self) -> int:
        """Forget finished/failed/cancelled jobs (their experiments stay in artifacts/)."""
        removed = 0
        for job in self.list():
            if job.state in FINAL_STATES:
                d = self.job_dir(job.job_id)
                for p in d.iterdir():
                    p.unlink()
                d.rmdir()
                removed += 1
        return removed

    # -- the worker
    def _worker_running(self) -> bool:
        lock = self.dir / "worker.lock"
        if not lock.exists():
            return False
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False

    def ensure_worker(self) -> None:
        """Start a detached worker if jobs are queued and none is running."""
        if not any(j.state == "queued" for j in self._queued_or_running()):
            return
        if self._worker_running():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.Popen(
            [sys.executable, "-m", "saml_core.jobs", "worker", str(self.dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, cwd=PROJECT_ROOT, env=_env(),
        )

    def _queued_or_running(self) -> list[Job]:
        if not self.dir.is_dir():
            return []
        jobs = [j for p in sorted(self.dir.iterdir())
                if p.is_dir() and (j := self._load(p.name, with_details=False))]
        return sorted((j for j in jobs if j.active), key=lambda j: j.job_id)

    def _next_queued(self) -> Job | None:
        return next((j for j in self._queued_or_running() if j.state == "queued"), None)

    def _run_one(self, job: Job) -> None:
        fresh = self._load(job.job_id, with_details=False)
        if fresh is None or fresh.state != "queued":  # cancelled while we looked
            return
        log = open(self.log_path(job.job_id), "ab")
        try:
            proc = subprocess.Popen(job.argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    cwd=PROJECT_ROOT, env={**_env(), "PYTHONUNBUFFERED": "1"})
        except OSError as exc:
            job.state, job.ended, job.error = "failed", _now(), f"could not start: {exc}"
            self._save(job)
            log.close()
            return
        job.state, job.started, job.pid = "running", _now(), proc.pid
        self._save(job)
        # A cancel that raced with the start: honour it now that the pid is known.
        latest = self._load(job.job_id, with_details=False)
        if latest is not None and latest.cancel_requested:
            os.killpg(proc.pid, signal.SIGTERM)
        rc = proc.wait()
        log.close()
        latest = self._load(job.job_id, with_details=False) or job
        latest.returncode, latest.ended, latest.pid = rc, _now(), job.pid
        if latest.cancel_requested:
            latest.state = "cancelled"
        elif rc == 0:
            latest.state = "finished"
        else:
            latest.state = "failed"
            tail = self.log_tail(job.job_id, max_lines=1)
            latest.error = f"exit code {rc}" + (f": {tail}" if tail else "")
        self._save(latest)

    def work(self) -> None:
        """Drain the queue, one job at a time. Returns when the queue is empty."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.dir / "worker.lock"
        while True:
            with open(lock_path, "a+") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another worker owns the queue
                while (job := self._next_queued()) is not None:
                    self._run_one(job)
                fcntl.flock(lock, fcntl.LOCK_UN)
            # A job queued between our last look and the unlock found the lock taken and
            # started no worker: look once more before leaving.
            if self._next_queued() is None:
                return


def wait(queue: JobQueue, job_id: str, timeout: float, poll: float = 0.2) -> Job:
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
    if len(args) != 2 or args[0] != "worker":
        print("usage: python -m saml_core.jobs worker JOBS_DIR", file=sys.stderr)
        return 2
    JobQueue(args[1]).work()
    return 0


if __name__ == "__main__":
    sys.exit(main())
