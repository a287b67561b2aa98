"""saml_core.jobs with the real worker and real engine processes: validated specs, one job at a
time in order, status and log, cancel, reads that never write, broken job folders, a killed
worker, resume, and the demo specs the dashboard queues."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saml_core import jobs, liveness
from saml_core.config import ConfigError
from saml_core.jobs import RESUME_HINT, JobQueue, progress_fraction


def spec(name: str, runs: str = "lr_te", batches: int = 2, epochs: int = 1) -> dict:
    from saml_core.experiments import ExperimentConfig
    from saml_core.presets import settings_for

    s = settings_for("synthetic-countries", "quick",
                     train={"max_train_batches": batches, "epochs": epochs, "num_threads": 1, "device": "cpu"})
    return ExperimentConfig(name=name, runs=runs, **s).to_dict()


def tree(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.lstat().st_mtime_ns, p.lstat().st_size) for p in d.rglob("*")}


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (got := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return got


def test_submit_validates_the_spec_and_queues_nothing_when_it_is_invalid(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    good = spec("ok")
    for bad, message in ((None, "must be a mapping"), ({**good, "name": "../x"}, "experiment name"),
                         ({**good, "argv": ["/bin/sh"]}, "unknown experiment option"),
                         ({**good, "runs": ["nope"]}, "unknown model"),
                         ({**good, "dataset_options": {"cache_dir": "/x"}}, "cache_dir"),
                         ({**good, "train_config": {**good["train_config"], "epochs": "2"}}, "epochs")):
        with pytest.raises(ConfigError, match=message):
            q.submit(bad, "bad", start_worker=False)
    assert q.list() == [] and not q.dir.exists()


def test_a_job_runs_its_spec_into_the_queues_artifacts_root(tmp_path, monkeypatch):
    from saml_core.experiments import ExperimentConfig

    monkeypatch.chdir(tmp_path)  # the app may run from anywhere: relative folders are made absolute
    q = JobQueue(".jobs", artifacts_root="shared")
    assert q.dir.is_absolute() and q.root == tmp_path / "shared"
    cfg = ExperimentConfig.from_dict(spec("tiny"))
    job = q.submit(cfg, title="  tiny \n job ")
    assert (job.state, job.title, job.experiment, job.dataset) == ("queued", "tiny job", "tiny", "synthetic-countries")
    assert json.loads(q.spec_path(job.job_id).read_text()) == cfg.to_dict()
    done = jobs.wait(q, job.job_id, timeout=120)
    assert done.state == "finished", (done.error, done.log_tail)
    assert done.returncode == 0 and done.error is None and done.progress() == 1.0
    assert done.status["state"] == "finished" and "lr_te-d0-s0: test AUC" in done.log_tail
    assert (tmp_path / "shared" / "tiny" / "lr_te-d0-s0" / "metrics.json").exists()
    assert q.command(job.job_id) == [sys.executable, "-m", "saml_core", "experiment",
                                     "--spec", str(q.spec_path(job.job_id)),
                                     "--status-file", str(q.status_path(job.job_id)), "--artifacts", str(q.root)]
    assert sorted(os.listdir(q.job_dir(job.job_id))) == ["job.json", "log.txt", "spec.json", "status.json"]


def test_a_failing_job_shows_the_engines_error_line(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    job = q.submit({**spec("nodata"), "dataset": f"csv:{tmp_path}/none.yaml", "dataset_options": {}}, "no data")
    done = jobs.wait(q, job.job_id, timeout=120)
    assert done.state == "failed" and done.returncode == 2
    assert done.error.startswith("exit code 2: ") and "none.yaml" in done.error, done.error
    assert not (tmp_path / "nodata").exists()  # no empty experiment is left for the picker


def test_jobs_run_one_at_a_time_in_submission_order(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    ids = [q.submit(spec(n), title=n, start_worker=i == 2).job_id for i, n in enumerate("abc")]
    order, deadline = [], time.monotonic() + 180
    while True:
        shown = q.list()
        running = [j.job_id for j in shown if j.state == "running"]
        assert len(running) <= 1, running
        if running and running[0] not in order:
            order.append(running[0])
        if not any(j.active for j in shown):
            break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert [j.state for j in shown] == ["finished"] * 3
    assert [i for i in order] == [i for i in ids if i in order]  # never out of order
    starts = [int(q.get(i).pid_start) for i in ids]  # clock ticks since boot: also the real start order
    assert starts == sorted(starts)


def test_cancel_a_running_job_and_a_queued_one(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    running = q.submit(spec("long", runs="bst", batches=0, epochs=2), title="long")
    queued = q.submit(spec("waits"), title="waits")
    wait_for(lambda: (q.get(running.job_id).status or {}).get("run_id"), 120, "training to start")
    shown = q.cancel(queued.job_id)
    assert shown.state == "cancelled" and shown.cancel_requested  # at once: it will never start
    shown = q.cancel(running.job_id)
    assert shown.state == "running" and shown.cancel_requested  # stopping
    done = jobs.wait(q, running.job_id, timeout=30)
    assert done.state == "cancelled" and done.returncode == 130
    assert done.status["state"] == "cancelled" and "cancelled" in done.log_tail
    later = jobs.wait(q, queued.job_id, timeout=30)
    assert later.state == "cancelled" and not q.log_path(queued.job_id).exists()  # it never ran
    wait_for(lambda: json.loads((q.job_dir(queued.job_id) / "job.json").read_text())["state"] == "cancelled",
             30, "the worker to record the cancel")
    assert q.cancel(running.job_id).state == "cancelled"  # cancelling a finished job changes nothing


def _plant(q: JobQueue, job_id: str, content: bytes | dict | None) -> Path:
    d = q.dir / job_id
    d.mkdir(parents=True)
    if isinstance(content, dict):
        content = json.dumps({"job_id": job_id, "title": job_id, "state": "queued", **content}).encode()
    if content is not None:
        (d / "job.json").write_bytes(content)
    return d


def test_reads_never_write_and_survive_broken_job_folders(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    token = liveness.token(gone.pid)
    gone.wait()  # a real process that has ended: its pid and start time no longer match
    ghost = _plant(q, "ghost", {"state": "running", **token})
    (ghost / "status.json").write_text(json.dumps({"state": "running", **token}))
    done = _plant(q, "ghost-done", {"state": "running", **token})
    (done / "status.json").write_text(json.dumps({"state": "finished"}))
    _plant(q, "cut", b'{"job_id": "cut", "state": "que')
    _plant(q, "types", {"state": 5})
    _plant(q, "wrong-id", {"job_id": "other"})
    _plant(q, "huge", b" " * (jobs.MAX_JOB_JSON + 1))
    _plant(q, "empty", None)
    os.mkfifo(_plant(q, "fifo", None) / "job.json")  # reading it must not block
    (_plant(q, "cancelled", {}) / "cancel").touch()
    _plant(q, "waiting", {})
    _plant(q, ".half-submitted.tmp", {})
    (q.dir / "link").symlink_to(ghost, target_is_directory=True)
    (q.dir / "stray-file").write_text("x")
    before = tree(q.dir)
    shown = {j.job_id: j for j in q.list()}
    assert tree(q.dir) == before  # list() wrote nothing
    assert {k: v.state for k, v in shown.items()} == {
        "cancelled": "cancelled", "cut": "unreadable", "empty": "unreadable", "fifo": "unreadable",
        "ghost": "interrupted", "ghost-done": "finished", "huge": "unreadable", "types": "unreadable",
        "waiting": "queued", "wrong-id": "unreadable"}
    assert shown["ghost"].hint == RESUME_HINT and "stopped without recording" in shown["ghost"].error
    for job_id, why in (("cut", "corrupted or truncated JSON"), ("types", "field 'state' should be str"),
                        ("wrong-id", "does not match its folder"), ("huge", "larger than"),
                        ("empty", "file is missing"), ("fifo", "not a regular file")):
        assert str(q.dir / job_id / "job.json") in shown[job_id].error and why in shown[job_id].error
    assert q.get("ghost").state == "interrupted" and q.get("../x") is None and q.get("link") is None
    assert tree(q.dir) == before  # get() wrote nothing either
    assert q.clear_finished() == 9  # over or unreadable; the queued job stays
    assert [j.job_id for j in q.list()] == ["waiting"]
    assert (q.dir / "link").is_symlink() and (q.dir / "stray-file").exists()  # not jobs: left alone


def test_cancel_reaches_the_process_of_a_killed_worker_and_resume_continues(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    job = q.submit(spec("orphan", runs="bst", batches=0, epochs=2), title="orphan")
    run_dir = q.root / "orphan" / "bst-d0-s0"
    wait_for(lambda: (run_dir / "checkpoint.pt").exists(), 120, "the first epoch")
    worker = json.loads((q.dir / "worker.json").read_text())
    os.kill(worker["pid"], signal.SIGKILL)  # the worker dies; its training process goes on
    wait_for(lambda: liveness.alive(worker) is False, 10, "the worker to die")
    assert q.get(job.job_id).state == "running"
    q.cancel(job.job_id)  # no worker to see the marker: cancel signals the proven job process itself
    shown = wait_for(lambda: (j := q.get(job.job_id)).state != "running" and j, 30, "the process to stop")
    assert shown.state == "cancelled"  # from its status file: nobody rewrote job.json
    assert json.loads((q.job_dir(job.job_id) / "job.json").read_text())["state"] == "running"
    again = q.resume(job.job_id)
    assert again.job_id != job.job_id and again.experiment == "orphan"
    finished = jobs.wait(q, again.job_id, timeout=120)
    assert finished.state == "finished", (finished.error, finished.log_tail)
    history = json.loads((run_dir / "history.json").read_text())["epochs"]
    assert [e["epoch"] for e in history] == [1, 2]  # epoch 1 came from the checkpoint


@pytest.mark.parametrize(
    "status, expected",
    [
        (None, None),
        ({"state": "finished"}, 1.0),
        ({"run_index": 1, "n_runs": 2, "epoch": 1, "epochs": 2, "step": 50, "steps": 100}, 0.125),
        ({"run_index": 2, "n_runs": 2, "epoch": 2, "epochs": 2, "step": 100, "steps": 100}, 1.0),
        ({"run_index": 3, "n_runs": 6}, 2 / 6),
        ({"run_index": True, "n_runs": "x"}, 0.0),
        ({"run_index": 1, "n_runs": 2, "progress": 0.75}, 0.75),  # the engine's own figure wins
        ({"run_index": 1, "n_runs": 2, "progress": 7}, 0.0),
    ],
)
def test_progress_fraction(status, expected):
    got = progress_fraction(status)
    assert got == expected if expected is None else got == pytest.approx(expected)


def test_demo_specs_are_the_documented_demo_command(tmp_path):
    from saml_core.cli import build_parser
    from saml_core.commands import experiment_config
    from saml_core.presets import DEMO_EXPERIMENTS, DEMO_OPTIONS, demo_specs

    specs = demo_specs()
    assert [(c.name, c.dataset) for c in specs] == list(DEMO_EXPERIMENTS)
    for cfg in specs:
        args = build_parser().parse_args(["experiment", "--dataset", cfg.dataset, "--name", cfg.name, *DEMO_OPTIONS])
        assert experiment_config(args).to_dict() == cfg.to_dict()
        assert cfg.train_config.weights_dtype == "float16" and cfg.keep_weights == "first-run-main"
    q = JobQueue(tmp_path / ".jobs")
    queued = [q.submit(c, title=f"Demo: {c.name}", start_worker=False) for c in specs]
    assert [j.experiment for j in q.list()] == ["demo", "taobao-demo"] == [j.experiment for j in queued]
