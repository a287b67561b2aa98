"""The probe subset: a fixed, stratified evaluation subset of the test split on which every run
of an experiment records what it learned (each model's `collect_probes`: for SAML alpha, gate and
branch hidden states; for MMoE/PLE gate weights; ...), and what each probe sample is (its categorical
fields decoded to their values). Layout: docs/ARTIFACTS.md, probes.npz."""
from __future__ import annotations

import numpy as np
import torch

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


# A value longer than this is cut (with "…"): a label on a chart and in a hover, not a document.
FIELD_VALUE_CHARS = 60
UNSEEN = "(not seen in training)"  # the encoder's out-of-vocabulary id


def probe_fields(data, index: np.ndarray) -> dict[str, np.ndarray]:
    """Each categorical field of the probe samples decoded to its value, for probes.npz, so the
    dashboard shows a sample's fields without loading the dataset. Per field j (in
    `field_names`): `field_codes_<j>` [N] int32, a position in `field_values_<j>` [U] (the distinct
    values among the probe samples, text). Fields whose vocabulary the loader did not keep
    (data.values) are left out; none at all: {}."""
    index = np.asarray(index, dtype=np.int64)
    names = [f.name for f in data.spec.cat_fields if f.name in data.values]
    if not names or len(index) == 0:
        return {}
    cat = data.test.cat[torch.as_tensor(index)].cpu().numpy()  # [N, F_cat] ids
    out: dict[str, np.ndarray] = {"field_names": np.array(names, dtype=str)}
    for j, name in enumerate(names):
        vocab = data.values[name]
        ids = cat[:, data.spec.cat_index(name)]
        uniq, codes = np.unique(ids, return_inverse=True)
        shown = [_value_text(vocab[i - 2]) if 2 <= i < len(vocab) + 2 else UNSEEN for i in uniq]
        out[f"field_codes_{j}"] = codes.astype(np.int32)
        out[f"field_values_{j}"] = np.array(shown, dtype=str)
    return out


def _value_text(value) -> str:
    text = str(value)
    return text if len(text) <= FIELD_VALUE_CHARS else text[:FIELD_VALUE_CHARS - 1] + "…"
