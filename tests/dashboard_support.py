"""Shared set-up of the dashboard tests: one real quick experiment per test session.

The artifacts come from the engine's real CLI (`python -m saml_core experiment ... --quick`),
built once into the session's temp folder and copied per test when a test breaks files.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "t"
# The paper's three models, the cheapest ablation, the simple baseline and one multi-scenario
# baseline with relations: enough for every page and control.
RUNS = "bst_individual,bst,saml,saml_no_gate_mut,lr_te,mmoe"


def build_quick_artifacts(base: Path) -> Path:
    """artifacts root holding experiment "t" (idempotent: reused by every test module).

    SAML_TEST_ARTIFACTS=DIR keeps the build in DIR across pytest sessions (for working on the
    dashboard; delete DIR after changing the engine).
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel workers share one build (their bases are siblings)
        base = base.parent
    root = Path(os.environ["SAML_TEST_ARTIFACTS"]) if os.environ.get("SAML_TEST_ARTIFACTS") else base / "quick-artifacts"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / "quick-artifacts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and reuse it
        done = root / ".built"
        if done.exists():
            return root
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        cmd = [sys.executable, "-m", "saml_core", "experiment", "--dataset", "synthetic-countries",
               "--name", EXPERIMENT, "--quick", "--runs", RUNS, "--artifacts", str(root), "--device", "cpu"]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if proc.returncode != 0:
            raise RuntimeError(f"quick experiment failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        done.write_text("ok")
        return root


def copy_artifacts(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".built", ".jobs", ".cache"))
    return dst


def figures(at) -> dict[str, dict]:
    """Plotly figure JSON of every chart on the page, by the chart's Streamlit key."""
    import json

    out = {}
    for el in at.get("plotly_chart"):
        key = el.proto.id.split("-", 2)[-1]
        out[key] = json.loads(el.proto.spec)
    return out


def values(arr) -> list:
    """Plotly JSON arrays may be plain lists or base64 typed arrays ({"dtype", "bdata"})."""
    import base64

    import numpy as np

    if isinstance(arr, dict) and "bdata" in arr:
        data = np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
        if "shape" in arr:
            shape = [int(s) for s in str(arr["shape"]).split(",")]
            data = data.reshape(shape)
        return data.tolist()
    return list(arr)


def page_text(at) -> str:
    """All markdown, captions, titles, alerts of the rendered page, for content assertions."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        parts += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    return "\n".join(parts)


def nav(at) -> dict[str, str]:
    """{page file relative to the repository: title shown} of the pages the app's navigation lists
    after the last run (st.navigation's registry as AppTest keeps it: a page left out of the
    navigation, e.g. Retrain in demo mode, cannot be switched to)."""
    from pathlib import Path

    return {Path(info["script_path"]).resolve().relative_to(REPO).as_posix(): info["page_name"]
            for info in at._registered_pages.values() if info.get("script_path")}
