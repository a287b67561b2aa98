"""The hidden-states page's maps: the ones the training job stored (maps.npz, drawn at once), and
other sizes fitted on demand (saml_core.maps) with their 2-D coordinates persisted to a cache file
under `<artifacts>/.cache/umap/`, so a new app process reads them back in milliseconds. No
Streamlit here: the page wraps it in st.cache_data and shows progress on a computation."""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from saml_core import maps
from saml_core.artifacts import ArtifactError, open_regular
from saml_core.maps import VIEWS, hidden_layers, n_points, stored_size, subsample  # noqa: F401  (re-exported)

CACHE_VERSION = 3


def hidden(probes: dict, view: str, layer: int) -> np.ndarray:
    return probes[f"hidden_{view}_{layer}"]


def points(probes: dict, view: str, layer: int, size: int, names: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """The vectors to embed and one row of facts per point (scenario, branch, label, prediction)."""
    x, rows, branch = maps.points(probes, view, layer, size)
    scen = probes["scenario"].astype(int)[rows]
    label = probes["label"].astype(int)[rows]
    facts = pd.DataFrame({
        "scenario": [names[i] for i in scen], "branch": [names[i] for i in branch],
        "label": np.where(label == 1, "clicked", "not clicked"), "pred": probes["pred"].astype(np.float64)[rows],
    })
    facts["hover"] = "sample from " + facts["scenario"] + " · branch " + facts["branch"]
    return x, facts


def stored(maps_file: dict | None, method: str, view: str, layer: int, size: int) -> np.ndarray | None:
    """The training job's map for exactly this request, if it has one."""
    key = f"{method}_{view}_{layer}"
    if not maps_file or key not in maps_file or maps_file[key].shape != (size, 2):
        return None
    return maps_file[key]


def cache_file(cache_dir: Path, probes_path: Path, method: str, view: str, layer: int, size: int) -> Path:
    st = probes_path.stat()
    key = f"{CACHE_VERSION}|{probes_path.resolve()}|{st.st_mtime_ns}|{st.st_size}|{method}|{view}|{layer}|{size}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return cache_dir / f"{probes_path.parent.name}-{method}-{view}-L{layer}-n{size}-{digest}.npy"


def embed(probes: dict, probes_path: Path, cache_dir: Path, view: str, layer: int, size: int,
          names: list[str], method: str = "umap", maps_file: dict | None = None) -> tuple[pd.DataFrame, str]:
    """2-D coordinates + facts per point, and where they came from: "stored" (by training),
    "cache" (an earlier on-demand fit) or "computed" (now)."""
    x, facts = points(probes, view, layer, size, names)
    coords, source = stored(maps_file, method, view, layer, len(x)), "stored"
    path = cache_file(cache_dir, probes_path, method, view, layer, size)
    if coords is None and path.exists():
        try:  # a FIFO planted in the shared cache folder must not hang the page
            with open_regular(path) as f:
                coords, source = np.load(f, allow_pickle=False), "cache"
            if coords.shape != (len(x), 2):
                coords = None
        except (OSError, ValueError, MemoryError, ArtifactError):
            coords = None
    if coords is None:
        coords, source = maps.fit(method, x), "computed"
        try:  # best effort: a read-only or full artifacts folder still works, just without the file cache
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:6]}.tmp.npy")
            try:
                np.save(tmp, coords, allow_pickle=False)
                os.replace(tmp, path)
            finally:
                if tmp.exists():
                    tmp.unlink()
        except OSError:
            pass
    return facts.assign(x=coords[:, 0], y=coords[:, 1]), source
