"""The dashboard's only door to the artifacts folder, with Streamlit caches in front of it.

Everything is read through `saml_core.store` and `saml_core.report` (the engine's read API, see
docs/ARTIFACTS.md);
reports are also kept between server starts outside the artifacts root (`report_cache`).
Caches are keyed on a fingerprint of file modification times, so a run that finishes while
the app is open shows up on the next rerun without a restart, and a rewritten file is re-read.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from dashboard import report_cache, settings
from saml_core import report as reports, store
from saml_core.artifacts import ArtifactError
from saml_core.jobs import JobQueue

__all__ = ["ArtifactError", "root", "fingerprint", "experiments", "experiment", "report",
           "probes", "maps", "jobs", "jobs_dir", "submit_analyses"]

# Files whose change means "re-read": small JSON files and the arrays pages use.
_WATCHED = ("experiment.json", "experiment_status.json", "config.json", "metrics.json",
            "history.json", "probes.npz", "predictions.npz", "status.json", "model.pt", "maps.npz",
            "transfer.json", "importance.json")


def root() -> Path:
    return settings.artifacts_root()


def jobs_dir(artifacts: Path | None = None) -> Path:
    return (artifacts or root()) / ".jobs"


def jobs(artifacts: Path | None = None) -> JobQueue:
    return JobQueue(jobs_dir(artifacts))


def submit_analyses(name: str, runs: list[str] | None = None, artifacts: Path | None = None):
    """Queue the job that computes the transfer matrix and input importance of the runs of
    experiment `name` that lack them (saml_core.analyses.missing); returns the Job. The page's
    button calls this; the job, not the page, writes."""
    from saml_core.analyses_job import submit

    return submit(jobs(artifacts), name, runs)


def _stat_key(path: Path) -> tuple:
    try:
        s = path.stat()
    except OSError:
        return (path.name, None)
    return (path.name, s.st_mtime_ns, s.st_size)


def fingerprint(artifacts: Path, name: str | None = None) -> tuple:
    """Cheap summary of what is on disk (a few dozen stat calls): the cache key of every read."""
    if name is None:  # the list of experiments
        try:
            entries = sorted(os.scandir(artifacts), key=lambda e: e.name)
        except OSError:
            return ()
        return tuple((e.name, _stat_key(Path(e.path) / "experiment.json"),
                      _stat_key(Path(e.path) / "experiment_status.json"))  # runs finishing
                     for e in entries if e.is_dir() and not e.name.startswith("."))
    exp_dir = artifacts / name
    keys = [_stat_key(exp_dir / "experiment.json"), _stat_key(exp_dir / "experiment_status.json")]
    try:
        run_dirs = sorted(e.path for e in os.scandir(exp_dir) if e.is_dir())
    except OSError:
        run_dirs = []
    for rd in run_dirs:
        keys.append((Path(rd).name,) + tuple(_stat_key(Path(rd) / f) for f in _WATCHED[2:]))
    return tuple(keys)


@st.cache_resource(max_entries=64, show_spinner=False)
def _experiments(artifacts: str, _fp: tuple, fp_key: int):
    return store.list_experiments(artifacts)


def experiments(artifacts: Path | None = None) -> list:
    """Summaries of every experiment under the artifacts root (broken ones carry `.error`)."""
    artifacts = artifacts or root()
    if not artifacts.is_dir():
        return []
    fp = fingerprint(artifacts)
    return _experiments(str(artifacts.resolve()), fp, hash(fp))


@st.cache_resource(max_entries=32, show_spinner=False)
def _experiment(artifacts: str, name: str, fp_key: int):
    return store.load_experiment(artifacts, name)


def experiment(name: str, artifacts: Path | None = None):
    """The experiment with its runs; raises ArtifactError if experiment.json is unusable.

    Treat the result as read-only: it is shared between reruns and sessions.
    """
    artifacts = artifacts or root()
    return _experiment(str(artifacts.resolve()), name, hash(fingerprint(artifacts, name)))


@st.cache_resource(max_entries=32, show_spinner=False)
def _report(artifacts: str, name: str, fp_key: int):
    kept = report_cache.load(Path(artifacts), name)  # from an earlier server, if nothing changed since
    if kept is not None:
        return kept, None
    try:
        doc = reports.report(artifacts, name)
    except Exception as exc:  # the report is optional extra: a page must still render without it
        return None, f"{type(exc).__name__}: {exc}"
    report_cache.save(Path(artifacts), name, doc)
    return doc, None


def report(name: str, artifacts: Path | None = None) -> tuple[dict | None, str | None]:
    """The engine's report (paired tests, multi-seed stats, recovery); (None, reason) if unavailable."""
    artifacts = artifacts or root()
    return _report(str(artifacts.resolve()), name, hash(fingerprint(artifacts, name)))


REQUIRED_PROBES = ("scenario", "label", "pred")


@st.cache_resource(max_entries=8, show_spinner=False)
def _probes(artifacts: str, name: str, run_id: str, mtime_key: tuple) -> dict[str, np.ndarray]:
    # the cached experiment: loading it anew checks every run's model file (builds each model,
    # ~0.5 s), a cost the first visit of a page that shows probes need not pay again
    exp = experiment(name, Path(artifacts))
    arrays = exp.run(run_id).load_probes()
    missing = [k for k in REQUIRED_PROBES if k not in arrays]
    if missing:
        raise ArtifactError(Path(artifacts) / name / run_id / "probes.npz", f"missing arrays {', '.join(missing)}")
    return arrays


def probes(name: str, run_id: str, artifacts: Path | None = None) -> dict[str, np.ndarray]:
    """probes.npz of one run (ArtifactError naming the file if it is missing or broken)."""
    artifacts = artifacts or root()
    key = _stat_key(artifacts / name / run_id / "probes.npz")
    return _probes(str(artifacts.resolve()), name, run_id, key)


@st.cache_resource(max_entries=8, show_spinner=False)
def _maps(artifacts: str, name: str, run_id: str, mtime_key: tuple):
    return experiment(name, Path(artifacts)).run(run_id).load_maps()


def maps(name: str, run_id: str, artifacts: Path | None = None) -> dict | None:
    """maps.npz of one run (the 2-D maps its training job stored), or None."""
    artifacts = artifacts or root()
    return _maps(str(artifacts.resolve()), name, run_id, _stat_key(artifacts / name / run_id / "maps.npz"))


def probes_path(name: str, run_id: str, artifacts: Path | None = None) -> Path:
    return (artifacts or root()) / name / run_id / "probes.npz"
