"""UMAP of branch hidden states, with the fitted 2-D coordinates persisted to a cache file.

UMAP costs seconds (plus numba's compile in every new process), so a fit is done once per
(run, probes file version, view, layer, sample size) and saved under `<artifacts>/.cache/umap/`;
a new app process reads it back in milliseconds. No Streamlit here: pages wrap it in
st.cache_data and show progress on the first computation.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

VIEWS = ("own", "all")
CACHE_VERSION = 2


def subsample(n_total: int, size: int, seed: int = 0) -> np.ndarray:
    """Fixed, sorted sample of positions (same size → same samples across reruns and processes)."""
    if size >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=size, replace=False))


def hidden_layers(probes: dict, view: str) -> list[int]:
    """Hidden layers with states for a view: keys hidden_<view>_<l> (one per layer, sizes differ)."""
    prefix = f"hidden_{view}_"
    layers = sorted(int(k[len(prefix):]) for k in probes if k.startswith(prefix) and k[len(prefix):].isdigit())
    if not layers and f"hidden_{view}" in probes:  # stacked form [Ly, ...] when all layers share a size
        layers = list(range(int(probes[f"hidden_{view}"].shape[0])))
    return layers


def hidden(probes: dict, view: str, layer: int) -> np.ndarray:
    key = f"hidden_{view}_{layer}"
    return probes[key] if key in probes else probes[f"hidden_{view}"][layer]


def points(probes: dict, view: str, layer: int, size: int, names: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """The vectors to embed and one row of facts per point (scenario, branch, label, prediction).

    view "own": each sample's own-branch state hidden_own_<layer> ([N, H]); `size` samples.
    view "all": hidden_all_<layer> ([M, K, H]) flattened to M*K points; `size` caps the points.
    """
    scen_all = probes["scenario"].astype(int)
    label_all = probes["label"].astype(int)
    pred_all = probes["pred"].astype(np.float64)
    if view == "own":
        h = hidden(probes, "own", layer)  # [N, H]
        pos = subsample(h.shape[0], size)
        x = np.asarray(h[pos], dtype=np.float32)
        scen, branch = scen_all[pos], scen_all[pos]
        label, pred = label_all[pos], pred_all[pos]
    elif view == "all":
        h = hidden(probes, "all", layer)  # [M, K, H]
        m, k, _ = h.shape
        per_sample = max(1, min(m, size // k))
        pos = subsample(m, per_sample)
        x = np.asarray(h[pos], dtype=np.float32).reshape(len(pos) * k, -1)
        sample_pos = probes["hidden_all_index"].astype(int)[pos]
        scen = np.repeat(scen_all[sample_pos], k)
        label = np.repeat(label_all[sample_pos], k)
        pred = np.repeat(pred_all[sample_pos], k)
        branch = np.tile(np.arange(k), len(pos))
    else:
        raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
    facts = pd.DataFrame({
        "scenario": [names[i] for i in scen], "branch": [names[i] for i in branch],
        "label": np.where(label == 1, "clicked", "not clicked"), "pred": pred,
    })
    facts["hover"] = "sample from " + facts["scenario"] + " · branch " + facts["branch"]
    return x, facts


EXACT_NEIGHBOURS_MAX = 1500  # points; above this, approximate neighbours (NN-descent)


def fit_umap(x: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    import umap  # imported lazily: importing umap/numba costs seconds

    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, max(2, len(x) - 1)),
                        min_dist=0.1, random_state=seed, low_memory=True, n_jobs=1,
                        n_epochs=200,  # UMAP's default 500 epochs below 10k points triples the cost
                        # below 4,096 points UMAP computes exact neighbours in pure numba: 11 s for
                        # 4,000 states of 256 dims against 1.6 s with NN-descent. Small maps keep
                        # the exact path: its first-use compile is ~15 s shorter than NN-descent's
                        force_approximation_algorithm=len(x) > EXACT_NEIGHBOURS_MAX)
    return reducer.fit_transform(x).astype(np.float32)


def cache_file(cache_dir: Path, probes_path: Path, view: str, layer: int, size: int) -> Path:
    st = probes_path.stat()
    key = f"{CACHE_VERSION}|{probes_path.resolve()}|{st.st_mtime_ns}|{st.st_size}|{view}|{layer}|{size}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return cache_dir / f"{probes_path.parent.name}-{view}-L{layer}-n{size}-{digest}.npy"


def embed(probes: dict, probes_path: Path, cache_dir: Path, view: str, layer: int, size: int,
          names: list[str]) -> tuple[pd.DataFrame, bool]:
    """2-D coordinates + facts per point, and whether they came from the cache file."""
    x, facts = points(probes, view, layer, size, names)
    path = cache_file(cache_dir, probes_path, view, layer, size)
    coords = None
    if path.exists():
        try:
            coords = np.load(path, allow_pickle=False)
            if coords.shape != (len(x), 2):
                coords = None
        except (OSError, ValueError):
            coords = None
    from_cache = coords is not None
    if coords is None:
        coords = fit_umap(x)
        try:  # best effort: a read-only artifacts folder still works, just without the file cache
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:6]}.tmp.npy")
            np.save(tmp, coords, allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            pass
    facts = facts.assign(x=coords[:, 0], y=coords[:, 1])
    return facts, from_cache
