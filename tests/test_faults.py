"""Fault injection on real code paths: real `python -m saml_core` subprocesses and the real job
worker, with the faults a shared artifacts folder and a busy machine produce.

- kill -9 of an `experiment` process during data loading, mid-epoch, between runs and while a
  run's final files are written; resuming then gives the uninterrupted result. "Equal" means:
  predictions.npz and model.pt equal byte for byte, metrics.json equal except `train_seconds`
  (the wall-clock time of the invocation that finished the run). Training is deterministic on one
  CPU thread (batches drawn from seed and epoch, RNG and optimizer state in the checkpoint) and the
  files are written deterministically, so anything else would be a resume bug.
- hostile artifacts of each kind give their run-level message on `report` (and never execute);
- planted job folders never run a command, even when a legitimate job is submitted after them;
- a full disk (a tiny tmpfs, root only): one clear `error:` line, no temp file, nothing lost;
- cancel racing a job start, SIGTERM mid-batch and mid-data-loading, SIGINT;
- demo-mode settings, and failed commands that must not leave an experiment behind.

The pause points are injected by a small wrapper that runs the real CLI (`runpy`) after wrapping
one function to announce "I am here" in a marker file and then wait (see PAUSER): the process is
killed or signalled at a known point instead of after a guessed delay.
"""
from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from saml_core import jobs, registry
from saml_core.jobs import JobQueue

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
BATCHES = 6  # training batches per epoch of the test experiments (2 epochs)

PAUSER = r"""
import os, sys, time, runpy
point, marker, go = sys.argv[1], sys.argv[2], sys.argv[3]
sys.argv = ["saml_core", *sys.argv[4:]]

def pause(where):
    with open(marker, "w") as fh:
        fh.write(where)
    while not (go and os.path.exists(go)):  # until killed, signalled, or told to go on
        time.sleep(0.02)

kind, _, n = point.partition(":")
if kind == "data":  # inside data loading: the split is built, not yet recorded
    import saml_core.data as d
    real_load = d.load_dataset
    def load_dataset(*a, **k):
        data = real_load(*a, **k)
        pause(point)
        return data
    d.load_dataset = load_dataset
elif kind == "batch":  # inside the n-th optimizer step of the process
    from saml_core.optim import ModelAdam
    real_step, calls = ModelAdam.step, [0]
    def step(self):
        calls[0] += 1
        if calls[0] == int(n):
            pause(point)
        return real_step(self)
    ModelAdam.step = step
elif kind == "between":  # the first run is finished, the second not started
    import saml_core.train as t
    real_run, calls = t.train_run, [0]
    def train_run(*a, **k):
        calls[0] += 1
        if calls[0] == 2:
            pause(point)
        return real_run(*a, **k)
    t.train_run = train_run
elif kind == "final":  # the first metrics.json is written to its temp file, not renamed yet
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        if os.path.basename(dst) == "metrics.json" and not os.path.exists(marker):
            pause(point)
        return real_replace(src, dst, *a, **k)
    os.replace = replace
elif kind == "finished":  # the experiment's status says finished; run_experiment has not returned
    import saml_core.experiments as e
    real_write = e.StatusWriter.write
    def write(self, force=False, **fields):
        real_write(self, force, **fields)
        if fields.get("state") == "finished" and self.paths[0].name == "experiment_status.json":
            pause(point)
    e.StatusWriter.write = write
elif kind == "after":  # run_experiment returned; the command has not
    import saml_core.experiments as e
    real_experiment = e.run_experiment
    def run_experiment(*a, **k):
        out = real_experiment(*a, **k)
        pause(point)
        return out
    e.run_experiment = run_experiment
elif kind == "exit":  # the command returned; the interpreter is exiting
    import atexit
    atexit.register(pause, point)
runpy.run_module("saml_core", run_name="__main__", alter_sys=True)
"""


def make_spec(name: str, runs: str = "bst,lr_te", batches: int = BATCHES, epochs: int = 2) -> dict:
    from saml_core.experiments import ExperimentConfig
    from saml_core.presets import settings_for

    s = settings_for("synthetic-countries", "quick",
                     train={"max_train_batches": batches, "epochs": epochs, "num_threads": 1, "device": "cpu"})
    return ExperimentConfig(name=name, runs=runs, **s).to_dict()


def write_spec(path: Path, spec: dict) -> Path:
    path.write_text(json.dumps(spec))
    return path


def cli_argv(*args, root) -> list[str]:
    return [sys.executable, "-m", "saml_core", *map(str, args), "--artifacts", str(root)]


def cli(*args, root, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_argv(*args, root=root), cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def popen(argv) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_paused(point: str, base: Path, tag: str, *args, go: Path | None = None) -> tuple[subprocess.Popen, Path]:
    marker = base / f"{tag}.marker"
    argv = [sys.executable, "-c", PAUSER, point, str(marker), str(go or ""), *map(str, args)]
    return popen(argv), marker


def wait_marker(proc: subprocess.Popen, marker: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"the process ended (rc {proc.returncode}) before its pause point: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"pause point {marker.name} never reached"
        time.sleep(0.02)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp"))


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def metrics_without_clock(path: Path) -> dict:
    m = json.loads(path.read_text())
    m.pop("train_seconds")
    return m


def assert_same_runs(root: Path, reference: Path, runs=("bst-d0-s0", "lr_te-d0-s0")) -> None:
    for run in runs:
        a, b = root / "exp" / run, reference / "exp" / run
        for name in ("predictions.npz", "model.pt"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{run}/{name} differs from the reference"
        assert metrics_without_clock(a / "metrics.json") == metrics_without_clock(b / "metrics.json"), run


# ---- kill -9 at four points, then resume ----------------------------------------------------

POINTS = {"data": "data", "mid-epoch": f"batch:{BATCHES + 3}", "between-runs": "between",
          "final-files": "final"}


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """The reference run and the four killed runs start together (two cores), then the four
    resumes run together; what each kill left on disk is recorded before resuming."""
    base = tmp_path_factory.mktemp("kill")
    spec = write_spec(base / "spec.json", make_spec("exp"))
    reference = popen(cli_argv("experiment", "--spec", spec, root=base / "reference"))
    paused = {name: start_paused(point, base, name, "experiment", "--spec", spec, "--artifacts", base / name)
              for name, point in POINTS.items()}
    seen = {}
    for name, (proc, marker) in paused.items():
        wait_marker(proc, marker)
        proc.kill()
        proc.wait()
        root = base / name
        files = {str(p.relative_to(root)) for p in root.rglob("*")}
        status = json.loads((root / "exp" / "experiment_status.json").read_text())
        seen[name] = {"rc": proc.returncode, "files": files, "status": status,
                      "listed": {s.name: s.state for s in registry.list_experiments(root)}}
    resumed = {name: popen(cli_argv("experiment", "--spec", spec, root=base / name)) for name in POINTS}
    results = {name: finish(proc) for name, proc in resumed.items()}
    rc, _, err = finish(reference)
    assert rc == 0, err
    return {"base": base, "seen": seen, "resumed": results, "reference": base / "reference"}


@pytest.fixture(scope="module")
def reference(killed) -> Path:
    return killed["reference"]


@pytest.mark.parametrize("name", list(POINTS))
def test_kill9_then_resume_equals_the_uninterrupted_run(killed, name):
    seen, root = killed["seen"][name], killed["base"] / name
    assert seen["rc"] == -signal.SIGKILL
    files = seen["files"]
    # The kill hit where it was meant to.
    if name == "data":
        assert seen["status"]["message"].startswith("loading data") and "exp/experiment.json" not in files
        assert seen["listed"] == {}  # a folder without experiment.json is not an experiment
    else:
        assert seen["listed"] == {"exp": "interrupted"}  # "running" by a dead writer reads as interrupted
    if name == "mid-epoch":
        # Epoch 1 is checkpointed; the kill came in the 3rd batch of epoch 2 (the pause point).
        assert "exp/bst-d0-s0/checkpoint.pt" in files and "exp/bst-d0-s0/metrics.json" not in files
    if name == "between-runs":
        assert "exp/bst-d0-s0/metrics.json" in files and not any(f.startswith("exp/lr_te") for f in files)
    if name == "final-files":
        assert "exp/bst-d0-s0/predictions.npz" in files and "exp/bst-d0-s0/metrics.json" not in files
        assert any(f.startswith("exp/bst-d0-s0/.metrics.json.") and f.endswith(".tmp") for f in files)
    rc, _, err = killed["resumed"][name]
    assert rc == 0, err
    if name == "between-runs":
        assert "bst-d0-s0: finished earlier, skipped" in err
    if name == "final-files":
        assert "left by an interrupted write" in err
    assert temp_files(root) == []
    assert_same_runs(root, killed["reference"])
    exp = registry.load_experiment(root, "exp")
    assert exp.state == "finished" and all(r.state == "finished" for r in exp.runs)


# ---- hostile artifacts on `report` ----------------------------------------------------------

class _Payload:
    """Unpickling this creates a file: a model.pt must never be unpickled beyond plain tensors."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def _flip_member_byte(npz: Path) -> None:
    """Flip one byte inside the compressed data of the first member (the zip stays readable)."""
    with zipfile.ZipFile(npz) as z:
        info = z.infolist()[0]
    data = bytearray(npz.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    npz.write_bytes(bytes(data))


def _edit_json(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the hostile pickles
def test_hostile_artifacts_give_their_run_level_message_and_never_execute(reference, tmp_path):
    import torch

    root = tmp_path / "art"
    shutil.copytree(reference / "exp", root / "exp")
    exp = root / "exp"
    sentinel = tmp_path / "SENTINEL"
    metrics = lambda run: exp / run / "metrics.json"  # noqa: E731

    def clone(run_id: str, base: str = "bst-d0-s0") -> str:
        shutil.copytree(exp / base, exp / run_id)
        return run_id

    cases = {  # run id: (how it is broken, what the report must say about it)
        clone("pickle-raw"): (lambda r: (exp / r / "model.pt").write_bytes(pickle.dumps(_Payload(str(sentinel)))),
                              "not a weights-only checkpoint"),
        clone("pickle-torch"): (lambda r: torch.save({"schema_version": 2, "x": _Payload(str(sentinel))},
                                                     exp / r / "model.pt"), "refused unread"),
        clone("schema-str"): (lambda r: _edit_json(metrics(r), lambda d: d.update(schema_version="2")),
                              "incompatible schema_version '2'"),
        clone("schema-999"): (lambda r: _edit_json(metrics(r), lambda d: d.update(schema_version=999)),
                              "incompatible schema_version 999"),
        clone("no-overall"): (lambda r: _edit_json(metrics(r), lambda d: d.pop("overall")),
                              "field 'overall' is missing"),
        clone("auc-high"): (lambda r: _edit_json(metrics(r), lambda d: d["overall"].update(auc="high")),
                            "overall.auc should be a number"),
        clone("model-999"): (lambda r: torch.save({"schema_version": torch.tensor(999), "state_dict": {}},
                                                  exp / r / "model.pt"), "incompatible schema_version 999"),
        clone("model-cut"): (lambda r: (exp / r / "model.pt").write_bytes((exp / r / "model.pt").read_bytes()[:5000]),
                             "corrupted, truncated"),
    }
    for run_id, (breaks, _) in cases.items():
        breaks(run_id)
    _edit_json(exp / "experiment.json", lambda d: d["runs"].extend(cases))
    _flip_member_byte(exp / "test_labels-d0.npz")
    # A second experiment whose experiment.json lists a scenario that its runs lack.
    shutil.copytree(reference / "exp", root / "extra")

    def add_scenario(d):
        d["scenario_names"].append("XX")
        for key in ("traffic_share", "test_counts", "oracle_auc"):
            if d.get(key) is not None:
                d[key]["XX"] = {"n": 0, "positives": 0} if key == "test_counts" else 0.1
        d["true_similarity"] = d["data_similarity"] = None

    _edit_json(root / "extra" / "experiment.json", add_scenario)

    procs = {name: popen(cli_argv("report", name, root=root)) for name in ("exp", "extra")}
    (rc, out, err), (rc2, out2, err2) = finish(procs["exp"]), finish(procs["extra"])
    assert rc == 0 and rc2 == 0, err + err2
    assert "Traceback" not in err + err2
    for run_id, (_, message) in cases.items():
        line = next((ln for ln in out.splitlines() if ln.startswith(f"- {run_id}: broken")), None)
        assert line is not None, f"no line for {run_id} in:\n{out}"
        assert message in line and f"{run_id}/" in line, line
    assert "- bst-d0-s0" not in out and "- lr_te-d0-s0" not in out  # the intact runs still show
    assert "test_labels-d0.npz" in out and "corrupted or truncated array file" in out
    for run_id in ("bst-d0-s0", "lr_te-d0-s0"):
        assert f"- {run_id}: broken" in out2 and "no entry for scenario 'XX'" in out2
    # Loading the weights themselves (re-evaluation, the dashboard) refuses both pickles too.
    from saml_core.artifacts import ArtifactError, load_torch

    for run_id in ("pickle-raw", "pickle-torch"):
        with pytest.raises(ArtifactError, match="not a weights-only checkpoint"):
            load_torch(exp / run_id / "model.pt")
    assert not sentinel.exists()


def test_corrupted_predictions_npz_is_reported(reference, tmp_path):
    root = tmp_path / "art"
    shutil.copytree(reference / "exp", root / "exp")
    _flip_member_byte(root / "exp" / "bst-d0-s0" / "predictions.npz")
    doc = registry.report(root, "exp")
    row = next(r for r in doc["runs"] if r["run_id"] == "bst-d0-s0")
    assert row["error"] and "predictions.npz" in row["error"]


# ---- planted job folders ----------------------------------------------------------------------

def _plant(jobs_dir: Path, job_id: str, job: dict | None, spec=None) -> Path:
    d = jobs_dir / job_id
    d.mkdir(parents=True)
    if job is not None:
        (d / "job.json").write_text(json.dumps({"job_id": job_id, "title": job_id, "state": "queued", **job}))
    if spec is not None:
        (d / "spec.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return d


def test_planted_jobs_never_run_a_command(tmp_path):
    root = tmp_path / "art"
    jobs_dir = root / ".jobs"
    sentinel = tmp_path / "SENTINEL"
    touch = ["/bin/sh", "-c", f"touch {sentinel}"]
    valid = make_spec("planted", runs="lr_te", batches=2, epochs=1)
    victim = tmp_path / "victim.txt"
    victim.write_text("unchanged\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "spec.json").write_text(json.dumps(valid))
    planted = {
        "a-argv-no-spec": _plant(jobs_dir, "a-argv-no-spec", {"argv": touch}),
        "b-python-argv": _plant(jobs_dir, "b-python-argv",
                                {"argv": [sys.executable, "-c", f"open({str(sentinel)!r}, 'w')"]}, spec="{}"),
        "c-command-field": _plant(jobs_dir, "c-command-field", {"command": " ".join(touch)},
                                  spec={**valid, "argv": touch}),
        "d-bad-name": _plant(jobs_dir, "d-bad-name", {"argv": touch}, spec={**valid, "name": "../../escape"}),
        "e-bad-device": _plant(jobs_dir, "e-bad-device", {"argv": touch},
                               spec={**valid, "train_config": {**valid["train_config"], "device": f"$(touch {sentinel})"}}),
        "f-cache-dir": _plant(jobs_dir, "f-cache-dir", {}, spec={**valid, "dataset_options": {"cache_dir": "/tmp/x"}}),
        "g-spec-symlink": _plant(jobs_dir, "g-spec-symlink", {"argv": touch}),
        "h-log-symlink": _plant(jobs_dir, "h-log-symlink", {}, spec=valid),
        "i-valid-with-argv": _plant(jobs_dir, "i-valid-with-argv", {"argv": touch, "command": " ".join(touch)},
                                    spec=valid),
        "j-running-argv": _plant(jobs_dir, "j-running-argv", {"state": "running", "argv": touch}, spec=valid),
    }
    (planted["g-spec-symlink"] / "spec.json").symlink_to(elsewhere / "spec.json")
    (planted["h-log-symlink"] / "log.txt").symlink_to(victim)
    (jobs_dir / "k-dir-symlink").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "job.json").write_text(json.dumps({"job_id": "k-dir-symlink", "title": "k", "state": "queued",
                                                     "argv": touch}))

    q = JobQueue(jobs_dir)
    legit = q.submit(valid, title="legit")  # starts the worker, which drains every queued job
    done = jobs.wait(q, legit.job_id, timeout=120)
    assert done.state == "finished", (done.error, done.log_tail)
    assert jobs.wait(q, "i-valid-with-argv", timeout=60).state == "finished"
    shown = {j.job_id: j for j in q.list()}
    assert not sentinel.exists()
    assert victim.read_text() == "unchanged\n"
    assert "k-dir-symlink" not in shown  # a symlink is never a job
    for job_id in ("a-argv-no-spec", "b-python-argv", "c-command-field", "d-bad-name", "e-bad-device",
                   "f-cache-dir", "g-spec-symlink"):
        job = shown[job_id]
        assert job.state == "rejected" and "never run" in job.error, (job_id, job.state, job.error)
        assert not q.log_path(job_id).exists()  # no process was started for it
    assert "spec.json: file is missing" in shown["a-argv-no-spec"].error
    assert "unknown experiment option(s): argv" in shown["c-command-field"].error
    assert "cache_dir" in shown["f-cache-dir"].error
    assert shown["h-log-symlink"].state == "failed" and "cannot open the log" in shown["h-log-symlink"].error
    # A planted valid spec trains (like a submission would) into this queue's artifacts root,
    # never with its argv; a planted "running" job was never started and shows as interrupted.
    assert (root / "planted" / "lr_te-d0-s0" / "metrics.json").exists()
    assert shown["j-running-argv"].state == "interrupted" and shown["j-running-argv"].pid is None


# ---- full disk ---------------------------------------------------------------------------------

@pytest.fixture
def tiny_fs(tmp_path):
    """A 2 MiB tmpfs (needs root and a kernel that lets this container mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(mnt: Path, leave: int = 0) -> Path:
    """Fill the filesystem, leaving `leave` bytes free; returns the filler file."""
    filler = mnt / "filler"
    st = os.statvfs(mnt)
    size = st.f_bavail * st.f_frsize - leave
    with open(filler, "wb") as fh:
        try:
            while size > 0:
                n = fh.write(b"\0" * min(size, 1 << 16))
                size -= n
            fh.flush()
            os.fsync(fh.fileno())
        except OSError:
            pass
    return filler


def test_full_disk_gives_one_error_line_and_a_rerun_loses_nothing(tiny_fs, reference, tmp_path):
    root = tiny_fs / "art"
    spec = write_spec(tmp_path / "spec.json", make_spec("exp"))
    go = tmp_path / "go"
    proc, marker = start_paused("between", tmp_path, "enospc", "experiment", "--spec", spec, "--artifacts", root,
                                go=go)
    wait_marker(proc, marker)  # the first run is finished; the disk fills before the second starts
    filler = fill(tiny_fs)
    go.touch()
    rc, _, err = finish(proc)
    assert rc == 2, err
    assert "Traceback" not in err
    (line,) = error_lines(err)
    # The first write of the second run fails, and the line names that file (not a status file
    # that could not be written on the way out either).
    assert "No space left on device" in line and str(root / "exp" / "lr_te-d0-s0" / "config.json") in line, line
    assert temp_files(tiny_fs) == []
    assert_same_runs(root, reference, runs=("bst-d0-s0",))  # the finished run is intact
    filler.unlink()
    again = cli("experiment", "--spec", spec, root=root)
    assert again.returncode == 0, again.stderr
    assert "bst-d0-s0: finished earlier, skipped" in again.stderr
    assert_same_runs(root, reference)
    assert temp_files(tiny_fs) == []


def test_full_disk_job_is_failed_with_the_reason_and_the_dashboard_reads_go_on(tiny_fs):
    root = tiny_fs / "art"
    q = JobQueue(root / ".jobs")
    job = q.submit(make_spec("full", runs="lr_te", batches=2, epochs=1), title="on a full disk", start_worker=False)
    fill(tiny_fs, leave=16384)  # room for the job's own records, not for training
    q.ensure_worker()
    done = jobs.wait(q, job.job_id, timeout=120)
    assert done.state == "failed", (done.state, done.error)
    assert "No space left on device" in done.error and str(root) in done.error, done.error
    listed = {j.job_id: j.state for j in q.list()}  # reads never raise and never write
    assert listed == {job.job_id: "failed"}
    assert temp_files(tiny_fs) == []
    assert registry.list_experiments(root) == [] and not (root / "full").exists()  # no empty experiment left


def test_full_disk_at_submit_raises_a_clear_error_and_queues_nothing(tiny_fs):
    q = JobQueue(tiny_fs / "art" / ".jobs")
    (tiny_fs / "art" / ".jobs").mkdir(parents=True)
    fill(tiny_fs)
    from saml_core.artifacts import ArtifactError

    with pytest.raises(ArtifactError, match="No space left on device.*not queued"):
        q.submit(make_spec("x", runs="lr_te"), title="no room", start_worker=False)
    assert q.list() == [] and os.listdir(q.dir) == []


# ---- cancel racing a job start -----------------------------------------------------------------

def _recorded_state(q: JobQueue, job_id: str) -> str | None:
    """The state the worker recorded in job.json (not the state a read computes from it)."""
    try:
        return json.loads((q.job_dir(job_id) / "job.json").read_text())["state"]
    except (OSError, ValueError):
        return None


def test_cancel_that_races_the_start_of_a_job_always_wins(tmp_path):
    """30 jobs queued back to back; each is cancelled at a random moment around its start (while
    queued, while the worker validates and starts it, while the process imports, in its first
    batches). Every one must be recorded "cancelled", quickly, without a finished run."""
    tries = 30
    q = JobQueue(tmp_path / "art" / ".jobs")
    rng = random.Random(7)
    # A full quick BST (two epochs of 30 batches, ~10 s): a lost cancel lets it finish.
    submitted = [q.submit(make_spec(f"race{i}", runs="bst", batches=0), title=f"race {i}", start_worker=False)
                 for i in range(tries)]
    q.ensure_worker()
    previous_end = time.monotonic()
    started = 0
    for i, job in enumerate(submitted):
        # Half the tries land within 50 ms of the worker taking the job, half up to 2.5 s later.
        delay = rng.uniform(0, 0.05) if i % 2 else rng.uniform(0, 2.5)
        while time.monotonic() < previous_end + delay:
            time.sleep(0.002)
        q.cancel(job.job_id)
        t_cancel = time.monotonic()
        while _recorded_state(q, job.job_id) in ("queued", "running"):
            assert time.monotonic() - t_cancel < 15, f"try {i}: not stopped 15 s after the cancel"
            time.sleep(0.005)
        previous_end = time.monotonic()
        done = q.get(job.job_id)
        assert done.state == "cancelled", (i, done.state, done.error, done.log_tail)
        assert done.returncode in (None, 130, -signal.SIGTERM), (i, done.returncode, done.log_tail)
        assert (done.status or {}).get("state") != "finished"
        assert not (q.root / f"race{i}" / "bst-d0-s0" / "metrics.json").exists()
        started += done.pid is not None
    assert started >= 5, f"only {started} of {tries} cancels came after the process started: no race was tried"
    assert all(j.state == "cancelled" for j in q.list())


# ---- signals -------------------------------------------------------------------------------------

def _signal_at(point: str, sig: int, tmp_path: Path, runs: str = "bst") -> dict:
    root, status_file = tmp_path / "art", tmp_path / "job_status.json"
    spec = write_spec(tmp_path / "spec.json", make_spec("exp", runs=runs))
    proc, marker = start_paused(point, tmp_path, "sig", "experiment", "--spec", spec, "--artifacts", root,
                                "--status-file", status_file)
    wait_marker(proc, marker)
    t0 = time.monotonic()
    proc.send_signal(sig)
    recorded = None
    while recorded is None or proc.poll() is None:
        if recorded is None and json.loads(status_file.read_text())["state"] != "running":
            recorded = time.monotonic() - t0
        elif proc.poll() is not None:
            recorded = float("inf")  # ended without recording an outcome
        assert time.monotonic() - t0 < 30, "the process ignored the signal"
        time.sleep(0.005)
    rc, _, err = finish(proc)
    return {"rc": rc, "err": err, "recorded_after": recorded, "root": root,
            "status": json.loads(status_file.read_text())}


def test_sigterm_mid_batch_stops_within_a_second_and_keeps_finished_epochs(tmp_path):
    # The pause sits inside an optimizer step of epoch 2, so the trainer never polls its flag:
    # only the grace period can stop it.
    got = _signal_at(f"batch:{BATCHES + 3}", signal.SIGTERM, tmp_path)
    assert got["rc"] == 130, got["err"]
    assert 0 < got["recorded_after"] < 1.0, got["recorded_after"]
    assert got["status"]["state"] == "cancelled"
    assert "cancelled" in got["err"] and "Traceback" not in got["err"]
    run = got["root"] / "exp" / "bst-d0-s0"
    assert (run / "checkpoint.pt").exists() and json.loads((run / "status.json").read_text())["state"] == "cancelled"


def test_sigterm_during_data_loading_stops_within_a_second_and_leaves_no_experiment(tmp_path):
    got = _signal_at("data", signal.SIGTERM, tmp_path)
    assert got["rc"] == 130, got["err"]
    assert 0 < got["recorded_after"] < 1.0, got["recorded_after"]
    assert got["status"]["state"] == "cancelled"
    assert not (got["root"] / "exp").exists()  # nothing was trained: no empty experiment is left


def test_sigint_mid_batch_is_recorded_as_interrupted(tmp_path):
    got = _signal_at(f"batch:{BATCHES + 3}", signal.SIGINT, tmp_path)
    assert got["rc"] == 130, got["err"]
    assert got["status"]["state"] == "interrupted"
    run = got["root"] / "exp" / "bst-d0-s0"
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert "KeyboardInterrupt" not in got["err"]


@pytest.mark.parametrize("point", ["finished", "after", "exit"])
def test_sigint_after_every_run_is_saved_leaves_the_experiment_finished_and_says_so(tmp_path, point):
    # The last moments of a command: its status already says finished, run_experiment returned, or
    # the interpreter is exiting. The results are complete, so the experiment stays finished, the
    # exit code is 0, and no traceback or "resume" advice is printed; before the process exits
    # the interrupt is reported in one line.
    root, go = tmp_path / "art", tmp_path / "go"
    spec = write_spec(tmp_path / "spec.json", make_spec("exp", runs="bst", epochs=1))
    proc, marker = start_paused(point, tmp_path, "late", "experiment", "--spec", spec, "--artifacts", root, go=go)
    wait_marker(proc, marker)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    go.write_text("go")
    rc, _, err = finish(proc)
    assert rc == 0, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "resume" not in err, err[-3000:]
    assert json.loads((root / "exp" / "experiment_status.json").read_text())["state"] == "finished"
    assert json.loads((root / "exp" / "bst-d0-s0" / "status.json").read_text())["state"] == "finished"
    if point != "exit":  # an interrupt during the exit itself comes after the last word; it is ignored
        assert "interrupt received after every run had finished and was saved" in err, err[-3000:]


# ---- failed commands leave nothing behind ------------------------------------------------------

def test_failed_commands_leave_no_experiment_in_the_picker(tmp_path):
    root = tmp_path / "art"
    bad_spec = write_spec(tmp_path / "bad.json", {**make_spec("bad"), "runs": ["no_such_model"]})
    missing = write_spec(tmp_path / "missing.json", {**make_spec("nodata"), "dataset": f"csv:{tmp_path}/none.yaml",
                                                     "dataset_options": {}})
    procs = [popen(cli_argv("experiment", "--spec", p, root=root)) for p in (bad_spec, missing)]
    for proc in procs:
        rc, _, err = finish(proc)
        assert rc == 2 and len(error_lines(err)) == 1 and "Traceback" not in err, err
    assert registry.list_experiments(root) == []
    assert not (root / "bad").exists() and not (root / "nodata").exists()


# ---- demo mode settings -------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "On", "y", "T"])
def test_demo_mode_accepts_every_truthy_spelling(monkeypatch, value):
    from dashboard import settings

    monkeypatch.setenv("SAML_DEMO_MODE", value)
    assert settings.demo_mode_setting() == settings.DemoMode(True, None)
    monkeypatch.delenv("SAML_DEMO_MODE")
    assert settings.demo_mode_setting({"demo_mode": value}) == settings.DemoMode(True, None)


@pytest.mark.parametrize("value", ["0", "false", "No", " off ", "n", "F", ""])
def test_demo_mode_off_spellings(monkeypatch, value):
    from dashboard import settings

    monkeypatch.setenv("SAML_DEMO_MODE", value)
    assert settings.demo_mode_setting({"demo_mode": value}) == settings.DemoMode(False, None)
    assert settings.demo_mode_setting({"demo_mode": False}).on is False


def test_demo_mode_fails_safe_on_values_it_does_not_understand(monkeypatch):
    from dashboard import settings

    monkeypatch.setenv("SAML_DEMO_MODE", "maybe")
    got = settings.demo_mode_setting()
    assert got.on and "SAML_DEMO_MODE='maybe'" in got.warning
    monkeypatch.setenv("SAML_DEMO_MODE", "0")
    assert settings.demo_mode_setting({"demo_mode": "enabled"}).on  # either source saying "on" wins
    assert settings.demo_mode_setting({"demo_mode": True}).on
    assert settings.demo_mode_setting({"demo_mode": ["x"]}).on

    class Broken:  # a secrets file that exists but cannot be parsed might say "on"
        def get(self, *_):
            raise ValueError("Error parsing secrets file")

    got = settings.demo_mode_setting(Broken())
    assert got.on and "cannot be read" in got.warning

    class Missing:  # no secrets file at all is the normal case
        def get(self, *_):
            exc = FileNotFoundError("No secrets found")
            exc.error_id = "no-secrets-found"
            raise exc

    assert settings.demo_mode_setting(Missing()) == settings.DemoMode(False, None)


def test_demo_mode_with_streamlit_secrets_files(monkeypatch, tmp_path):
    """The real `st.secrets` object on a real secrets.toml: missing file, flag, unparsable file."""
    from streamlit.runtime.secrets import Secrets

    from dashboard import settings

    from streamlit import config

    monkeypatch.delenv("SAML_DEMO_MODE", raising=False)
    path = tmp_path / "secrets.toml"
    real = config.get_option
    monkeypatch.setattr(config, "get_option", lambda key: [str(path)] if key == "secrets.files" else real(key))
    assert settings.demo_mode_setting(Secrets()) == settings.DemoMode(False, None)
    path.write_text('demo_mode = "Yes"\n')
    assert settings.demo_mode_setting(Secrets()) == settings.DemoMode(True, None)
    path.write_text("demo_mode = \n")
    got = settings.demo_mode_setting(Secrets())
    assert got.on and "cannot be read" in got.warning
