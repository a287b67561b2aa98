"""saml_core.jobs with real subprocesses: queueing, one-at-a-time, progress, logs, cancel."""
from __future__ import annotations

import json
import sys
import time

import pytest

from saml_core import jobs
from saml_core.jobs import STATUS_PLACEHOLDER, JobQueue, progress_fraction

# A stand-in for the engine CLI: writes the documented status file and prints a log line per step.
FAKE_TRAINER = r"""
import json, os, signal, sys, time
status_path, steps, delay, rc = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
state = {"state": "running", "run_index": 1, "n_runs": 1, "epoch": 1, "epochs": 1,
         "steps": steps, "step": 0, "eta_seconds": steps * delay}
def write(**kw):
    state.update(kw)
    tmp = status_path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(state, fh)
    os.replace(tmp, status_path)
def on_term(*_):
    write(state="cancelled", message="cancelled")
    print("got SIGTERM", flush=True)
    sys.exit(130)
signal.signal(signal.SIGTERM, on_term)
print("started", time.time(), flush=True)
for i in range(steps):
    write(step=i + 1, eta_seconds=(steps - i - 1) * delay)
    print(f"step {i + 1}/{steps}", flush=True)
    time.sleep(delay)
print("ended", time.time(), flush=True)
write(state="finished" if rc == 0 else "failed")
sys.exit(rc)
"""


def fake(steps=3, delay=0.05, rc=0):
    return [sys.executable, "-c", FAKE_TRAINER, STATUS_PLACEHOLDER, str(steps), str(delay), str(rc)]


def test_job_runs_to_the_end_with_status_and_log(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    job = q.submit(fake(steps=3), title="three steps")
    assert job.state == "queued"
    done = jobs.wait(q, job.job_id, timeout=30)
    assert done.state == "finished", done
    assert done.returncode == 0
    assert done.status["state"] == "finished" and done.status["step"] == 3
    assert done.progress() == 1.0
    assert "step 3/3" in done.log_tail
    # The placeholder became the job's own status file.
    assert str(q.status_path(job.job_id)) in done.argv


def test_failing_job_is_reported_with_its_exit_code(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    job = q.submit(fake(steps=1, rc=3), title="fails")
    done = jobs.wait(q, job.job_id, timeout=30)
    assert done.state == "failed"
    assert done.returncode == 3 and "exit code 3" in done.error


def test_queued_jobs_run_one_at_a_time_in_order(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    a = q.submit(fake(steps=4, delay=0.1), title="a")
    b = q.submit(fake(steps=2, delay=0.1), title="b")
    c = q.submit(fake(steps=2, delay=0.1), title="c")
    for j in (a, b, c):
        assert jobs.wait(q, j.job_id, timeout=60).state == "finished"
    spans = []
    for j in (a, b, c):
        lines = q.log_tail(j.job_id).splitlines()
        start = float(next(ln for ln in lines if ln.startswith("started")).split()[1])
        end = float(next(ln for ln in lines if ln.startswith("ended")).split()[1])
        spans.append((start, end))
    # b starts after a ends, c after b: never two at once, in submission order.
    assert spans[0][1] <= spans[1][0] and spans[1][1] <= spans[2][0]


def test_cancel_running_job_sends_sigterm_and_cancel_queued_job(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    running = q.submit(fake(steps=200, delay=0.05), title="long")
    queued = q.submit(fake(steps=1), title="waits")
    deadline = time.monotonic() + 20
    while q.get(running.job_id).state != "running" or not q.get(running.job_id).status:
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.05)
    q.cancel(queued.job_id)
    assert q.get(queued.job_id).state == "cancelled"
    q.cancel(running.job_id)
    done = jobs.wait(q, running.job_id, timeout=20)
    assert done.state == "cancelled"
    assert "got SIGTERM" in done.log_tail
    assert done.status["state"] == "cancelled"
    # The cancelled queued job never ran.
    assert not q.log_path(queued.job_id).exists()


def test_state_survives_a_new_queue_object_and_lists_oldest_first(tmp_path):
    q1 = JobQueue(tmp_path / ".jobs")
    a = q1.submit(fake(steps=1), title="first")
    b = q1.submit(fake(steps=1), title="second")
    jobs.wait(q1, b.job_id, timeout=30)
    q2 = JobQueue(tmp_path / ".jobs")  # e.g. after a Streamlit rerun or app restart
    listed = q2.list()
    assert [j.title for j in listed] == ["first", "second"]
    assert all(j.state == "finished" for j in listed)
    assert q2.clear_finished() == 2 and q2.list() == []
    assert a.job_id != b.job_id


def test_running_job_whose_process_vanished_is_marked_failed(tmp_path):
    q = JobQueue(tmp_path / ".jobs")
    job = q.submit(fake(steps=1), title="ghost", start_worker=False)
    raw = json.loads((q.job_dir(job.job_id) / "job.json").read_text())
    raw.update(state="running", pid=2**22 + 12345)  # no such process
    (q.job_dir(job.job_id) / "job.json").write_text(json.dumps(raw))
    (listed,) = q.list()
    assert listed.state == "failed" and "stopped unexpectedly" in listed.error


@pytest.mark.parametrize(
    "status, expected",
    [
        (None, None),
        ({"state": "finished"}, 1.0),
        ({"run_index": 1, "n_runs": 2, "epoch": 1, "epochs": 2, "step": 50, "steps": 100}, 0.125),
        ({"run_index": 2, "n_runs": 2, "epoch": 2, "epochs": 2, "step": 100, "steps": 100}, 1.0),
        ({"run_index": 3, "n_runs": 6}, 2 / 6),
    ],
)
def test_progress_fraction(status, expected):
    got = progress_fraction(status)
    assert got == expected if expected is None else got == pytest.approx(expected)


def test_experiment_argv_builds_the_engine_command(tmp_path):
    argv = jobs.experiment_argv("synthetic-countries", "x", artifacts=tmp_path, runs=["bst", "saml:full"],
                                quick=True, seeds=2, device="cpu", epochs=3, lr=0.001, mlp=[64, 32])
    assert argv[1:4] == ["-m", "saml_core", "experiment"]
    joined = " ".join(argv)
    for part in ("--dataset synthetic-countries", "--name x", "--quick", "--runs bst,saml:full",
                 "--seeds 2", "--device cpu", "--epochs 3", "--lr 0.001", "--mlp 64,32",
                 f"--status-file {STATUS_PLACEHOLDER}", f"--artifacts {tmp_path.resolve()}"):
        assert part in joined


def test_jobs_find_the_package_when_the_app_runs_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # e.g. `streamlit run /path/to/app.py` from another folder
    q = JobQueue(".jobs")  # a relative jobs folder is fixed to an absolute one at once
    assert q.dir.is_absolute()
    job = q.submit([sys.executable, "-c", "import saml_core.jobs, os; print('cwd', os.getcwd())"], title="where")
    done = jobs.wait(q, job.job_id, timeout=30)
    assert done.state == "finished", done.log_tail
    assert f"cwd {jobs.PROJECT_ROOT}" in done.log_tail
