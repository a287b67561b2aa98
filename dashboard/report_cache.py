"""The engine's report of an experiment kept on disk between server starts, so a restarted
dashboard opens on its headline at once: the report (paired DeLong tests over every run and
scenario) took 1.2-2 s of the 2 s a cold start may take on the shipped demo, on every new server.

The cache has its own folder, never the artifacts root: $SAML_DASHBOARD_CACHE, else `.cache/dashboard/`
in the project (git-ignored); deleting it is always safe. An entry is used only when its key
matches: the experiment's files (names, modification times and sizes of everything the report
reads) and the code that computes it (the same for saml_core's and dashboard's Python files). Best
effort: a folder that cannot be written or a broken entry means the report is computed as before.
No Streamlit here."""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from saml_core import artifacts as art

ENV_VAR = "SAML_DASHBOARD_CACHE"
PROJECT = Path(__file__).resolve().parents[1]
VERSION = 1  # bump when the file layout below changes


def folder() -> Path:
    env = os.environ.get(ENV_VAR, "").strip()
    return (Path(env).expanduser() if env else PROJECT / ".cache" / "dashboard") / "reports"


@lru_cache(maxsize=1)
def code_version() -> str:
    """Names, times and sizes of the Python files that compute and shape a report."""
    stats = []
    for pkg in ("saml_core", "dashboard"):
        for p in sorted((PROJECT / pkg).rglob("*.py")):
            s = p.stat()
            stats.append((str(p.relative_to(PROJECT)), s.st_mtime_ns, s.st_size))
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()


def _stats(exp_dir: Path) -> list:
    """(relative path, mtime, size) of every file of the experiment's folder and its run folders:
    what the report reads, and a change anywhere makes a new key."""
    out = []
    for p in sorted(exp_dir.rglob("*")):
        try:
            if p.is_file() and not p.is_symlink():
                s = p.stat()
                out.append((str(p.relative_to(exp_dir)), s.st_mtime_ns, s.st_size))
        except OSError:
            continue
    return out


def _paths(artifacts: Path, name: str, reference: str | None) -> tuple[Path, str]:
    exp = hashlib.sha256(f"{artifacts.resolve()}|{name}|{reference}".encode()).hexdigest()[:20]
    key = hashlib.sha256(json.dumps([VERSION, code_version(), _stats(artifacts / name)]).encode()).hexdigest()[:20]
    return folder() / f"{exp}-{key}.json", exp


def load(artifacts: Path, name: str, reference: str | None = None) -> dict | None:
    """The stored report when its key still matches, else None."""
    try:
        path, _ = _paths(Path(artifacts), name, reference)
        if not path.exists():
            return None
        doc = art.read_json(path, versioned=False)  # the key holds the versions that matter
    except (OSError, art.ArtifactError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("experiment") == name else None


def save(artifacts: Path, name: str, doc: dict, reference: str | None = None) -> None:
    """Keep `doc` (atomically; older entries of the same experiment are removed)."""
    try:
        path, exp = _paths(Path(artifacts), name, reference)
        art.atomic_write_bytes(path, json.dumps(doc, default=_plain).encode("utf-8"))
        for old in path.parent.glob(f"{exp}-*.json"):
            if old != path:
                old.unlink(missing_ok=True)
    except (OSError, art.ArtifactError, TypeError, ValueError):
        pass


def _plain(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    raise TypeError(type(o).__name__)
