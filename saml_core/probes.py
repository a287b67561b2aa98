"""What a trained SAML learned, on a fixed evaluation subset of the test split: per sample its
scenario, label, prediction, alpha and gate of every mutual unit, and branch hidden states
(own branch for all, every branch for a subsample). Layout: docs/ARTIFACTS.md, probes.npz."""
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
    picks = [rng.choice(np.flatnonzero(scen == s), want[s], replace=False) for s in range(k) if want[s]]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


@torch.no_grad()
def compute_probes(model, split: EncodedSplit, index: np.ndarray, device, hidden_all: int = 1000,
                   batch_size: int = 2048) -> dict[str, np.ndarray]:
    model.eval()
    index = np.asarray(index, dtype=np.int64)
    sub = split.take(torch.as_tensor(index, device=split.label.device))
    chunks: dict[str, list] = {}
    for start in range(0, len(index), batch_size):
        b = sub.take(torch.arange(start, min(start + batch_size, len(index)))).to(device)
        out = model(b, probes=True)
        chunks.setdefault("pred", []).append(torch.sigmoid(out["logit"].float()).cpu())
        for l, h in enumerate(out["hidden_own"]):
            chunks.setdefault(f"hidden_own_{l}", []).append(h.float().cpu())
        for l, h in enumerate(out["hidden_all"]):
            chunks.setdefault(f"hidden_all_{l}", []).append(h.float().cpu())
        if "alpha" in out:
            chunks.setdefault("alpha", []).append(out["alpha"].float().cpu())
            chunks.setdefault("gate", []).append(out["gate"].float().cpu())
            chunks.setdefault("alpha_all", []).append(out["alpha_all"].float().cpu())
    rng = np.random.default_rng(0)
    m = min(hidden_all, len(index))
    sub_pos = np.sort(rng.choice(len(index), m, replace=False)) if m else np.zeros(0, dtype=np.int64)
    res = {
        "index": index, "scenario": sub.scenario.cpu().numpy().astype(np.int16),
        "label": sub.label.cpu().numpy().astype(np.int8),
        "pred": torch.cat(chunks["pred"]).numpy().astype(np.float32),
        "hidden_all_index": sub_pos.astype(np.int32),
        "mutual_layers": np.asarray(getattr(model, "mutual_layers", ()), dtype=np.int16),
    }
    for key, parts in chunks.items():
        if key.startswith("hidden_own_"):
            res[key] = torch.cat(parts).numpy().astype(np.float16)  # [N, H_l]
        elif key.startswith("hidden_all_"):
            res[key] = torch.cat(parts)[sub_pos].numpy().astype(np.float16)  # [M, K, H_l]
    if "alpha" in chunks:
        res["alpha"] = torch.cat(chunks["alpha"], dim=1).numpy().astype(np.float32)  # [Ly, N, K]
        res["gate"] = torch.cat(chunks["gate"], dim=1).numpy().astype(np.float32)  # [Ly, N]
        res["alpha_all"] = torch.cat(chunks["alpha_all"], dim=1)[:, sub_pos].numpy().astype(np.float16)  # [Ly, M, K, K]
    return res
