"""The worker: the detached process that runs a queue's jobs one at a time, each as a
`python -m saml_core` process in its own process group, its output pumped into the job's log,
its outcome recorded (docs in `saml_core/jobs/__init__.py`).
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from saml_core import liveness
from saml_core.artifacts import ArtifactError
from saml_core.config import ConfigError
from saml_core.jobs.job_files import (CANCEL_FILE, JOB_FILE, JOB_KINDS, Job, LOG_FILE, LOG_TAIL_BYTES,
                                      MAX_JOB_JSON, MAX_SPEC_JSON, POLL_SECONDS, PROJECT_ROOT, SPEC_FILE,
                                      STATUS_FILE, TERM_TO_KILL_SECONDS, WORKER_FILE, _atomic_write,
                                      _error_line, _exists, _job_from_record, _now, _read_json_file,
                                      _read_regular, _tail_text, validate_job)


def _env() -> dict:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT) + (os.pathsep + path if path else ""),
            "PYTHONUNBUFFERED": "1"}


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


class JobWorker:
    """The worker side of a JobQueue: starts the detached worker process, which runs the queued
    jobs one at a time, each as a `python -m saml_core` process it follows and records."""

    def command(self, job_id: str, kind: str = "experiment") -> list[str]:
        """The one command a job of `kind` runs (built here from JOB_KINDS, never read from the job
        folder)."""
        return [sys.executable, "-m", "saml_core", JOB_KINDS[kind].command, "--spec", str(self.spec_path(job_id)),
                "--status-file", str(self.status_path(job_id)), "--artifacts", str(self.root)]

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
