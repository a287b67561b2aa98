"""The probe subset: a fixed, stratified evaluation subset of the test split on which every run
of an experiment records what it learned (each model's `collect_probes`: for SAML alpha, gate and
branch hidden states; for MMoE/PLE gate weights; ...). Layout: docs/ARTIFACTS.md, probes.npz."""
from __future__ import annotations

import numpy as np

from saml_core.data.types import EncodedSplit


def probe_index(split: EncodedSplit, size: int, seed: int = 0) -> np.ndarray:
    """Stratified subset of `size` rows: each scenario gets a share proportional to its test
    traffic but at least min(its rows, size // (4K)), so small scenarios stay visible. Sorted
    row indices; the same for every run of an experiment (depends on split and seed only)."""
    scen = split.scenario.cpu().numpy()
    n = len(scen)
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    k = int(scen.max()) + 1 if n else 0
    counts = np.bincount(scen, minlength=k)
    floor = size // (4 * max(k, 1))
    want = np.maximum(np.round(counts / n * size), np.minimum(counts, floor)).astype(int)
    want = np.minimum(want, counts)
    while want.sum() > size:  # trim the largest groups after rounding/floors
        want[np.argmax(want)] -= 1
    while want.sum() < size:  # rounding left rows out (all shares below one half for a tiny size)
        short = np.where(want < counts, counts / n * size - want, -np.inf)
        want[np.argmax(short)] += 1
    picks = [rng.choice(np.flatnonzero(scen == s), want[s], replace=False) for s in range(k) if want[s]]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)
