"""The queue the dashboard and scripts use: submit, list, cancel, resume and clear jobs (docs in
`saml_core/jobs/__init__.py`).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from saml_core import liveness
from saml_core.artifacts import ArtifactError
from saml_core.config import ConfigError
from saml_core.jobs.job_files import (CANCEL_FILE, FINAL_STATES, JOB_FILE, JOB_ID_RE, Job, LOG_FILE,
                                      LOG_TAIL_BYTES, MAX_JOB_JSON, MAX_SPEC_JSON, MAX_TITLE, RESERVE_BYTES,
                                      RESERVE_FILE, RESUME_HINT, SPEC_FILE, STATUS_FILE, WORKER_FILE,
                                      _atomic_write, _exists, _job_from_record, _now, _read_json_file,
                                      _real_dir, _record, _tail_text, validate_job)
from saml_core.jobs.job_worker import JobWorker


class JobQueue(JobWorker):
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
