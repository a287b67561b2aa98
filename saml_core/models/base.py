"""The model contract every model of the registry follows (docs/MODELS.md).

A model is an `nn.Module` built as `Model(spec, cfg, **options)` from the dataset's
`FeatureSpec`, the shared sizes in `ModelConfig` and its own options (registry entry). It never
reads files. The trainer, the probes, the report and the pages only use what is below.

    forward(batch, probes=False) -> dict
        "logit"      [B]  the served click logit of every sample (its own scenario's output)
        "aux_logit"  [B]  optional: an auxiliary head trained by `loss` as well
        "probes"     dict, only with probes=True: name -> tensor, batch dimension FIRST
                     (per-sample values: gate weights, hidden states, ...). Stored in
                     probes.npz under the same names by the default `collect_probes`.
    loss(out, label) -> scalar   binary cross-entropy of "logit" (+ aux_weight * that of "aux_logit")
    collect_probes(split, index, device, hidden_all) -> dict[str, np.ndarray]
        the per-sample arrays of probes.npz on the experiment's probe subset
    relations(probes, k) -> dict[str, np.ndarray]
        what the model says about how scenarios relate, as named matrices with K rows
        ([K, K] similarities or [K, E] profiles); {} when it has no such signal
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ScenarioModel(nn.Module):
    """Defaults of the contract; subclasses implement `forward`."""

    aux_weight: float = 1.0

    def loss(self, out: dict, label: torch.Tensor) -> torch.Tensor:
        loss = F.binary_cross_entropy_with_logits(out["logit"].float(), label)
        if "aux_logit" in out:
            loss = loss + self.aux_weight * F.binary_cross_entropy_with_logits(out["aux_logit"].float(), label)
        return loss

    @torch.no_grad()
    def probe_outputs(self, split, index: np.ndarray, device, batch_size: int = 2048):
        """(the probe rows of `split`, {"pred": [N], name: [N, ...] for every out["probes"] tensor}),
        concatenated over batches, batch first."""
        self.eval()
        sub = split.take(torch.as_tensor(np.asarray(index, dtype=np.int64), device=split.label.device))
        chunks: dict[str, list] = {}
        for start in range(0, len(sub), batch_size):
            b = sub.take(torch.arange(start, min(start + batch_size, len(sub)))).to(device)
            out = self(b, probes=True)
            chunks.setdefault("pred", []).append(torch.sigmoid(out["logit"].float()).cpu())
            for name, t in (out.get("probes") or {}).items():
                chunks.setdefault(name, []).append(t.float().cpu())
        return sub, {name: torch.cat(parts) for name, parts in chunks.items()}

    def collect_probes(self, split, index: np.ndarray, device, hidden_all: int = 300,
                       batch_size: int = 2048) -> dict[str, np.ndarray]:
        """Scenario, label, prediction and every tensor of out["probes"] on rows `index` of `split`."""
        sub, outs = self.probe_outputs(split, index, device, batch_size)
        res = {"index": np.asarray(index, dtype=np.int64), "scenario": sub.scenario.cpu().numpy().astype(np.int16),
               "label": sub.label.cpu().numpy().astype(np.int8)}
        res.update({name: t.numpy().astype(np.float32) for name, t in outs.items()})
        return res

    def relations(self, probes: dict[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
        return {}


def scenario_mean(values: np.ndarray, scenario: np.ndarray, k: int) -> np.ndarray:
    """Mean of per-sample rows by scenario: values [N, ...] -> [K, ...] (NaN for absent scenarios)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full((k,) + values.shape[1:], np.nan)
    for s in range(k):
        m = scenario == s
        if m.any():
            out[s] = values[m].mean(axis=0)
    return out


def cosine_matrix(rows: np.ndarray) -> np.ndarray:
    """[K, D] -> [K, K] cosine similarity between rows (NaN for a zero or missing row)."""
    rows = np.asarray(rows, dtype=np.float64).reshape(rows.shape[0], -1)
    norm = np.linalg.norm(rows, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = rows / norm[:, None]
    return unit @ unit.T
