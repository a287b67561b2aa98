"""The transfer matrix of a trained model (transfer.json, docs/ARTIFACTS.md): how well scenario
s's part of the model scores scenario t's test rows, for every pair (s, t).

A model with the registry's "transfer" probe routes a row to its per-scenario parts by the row's
scenario index alone (BST-Individual: sub-model s; SAML: s's scenario-specific embeddings and
attention, branch s, its gate and similarity row). So cell (s, t) is the AUC of the model's
predictions for t's test rows with their scenario index set to s, and the diagonal is the model
as it serves t. Each column uses the same rows for every source (all of t's test rows, or a
seeded sample of `rows_cap` of them drawn within each class: `capped_rows`), so the loss of AUC
against t's own part is a paired DeLong test on them. Cost: K predictions of the capped test
rows (printed by the training job).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from scipy import stats

from saml_core import evaluate as ev
from saml_core.analyses import VERSION
from saml_core.data.types import EncodedSplit

# Test rows per target scenario. A column's AUCs share these rows; 1,000 rows hold ~70 clicks at
# the simulator's 7 % click rate (AUC standard error ~0.035; the paired loss against the column's
# own part is much tighter), and the matrix costs K x (K x 1,000) predictions: ~6 % of SAML's
# training time on the default simulator (docs/ENGINE.md, Analyses: costs).
ROWS_CAP = 1000
SEED = 0  # which rows a capped scenario keeps

Score = Callable[[EncodedSplit], np.ndarray]  # click probabilities of every row of a split


def capped_rows(scenario: np.ndarray, label: np.ndarray, k: int, cap: int, seed: int = SEED) -> list[np.ndarray]:
    """Per scenario s: the positions of its rows, or, when it has more than `cap`, a seeded sample
    of `cap` of them drawn within each class: up to half of them clicks, the rest non-clicks (more
    of either when the other runs out). Within-class sampling leaves the AUC's expected value as
    it is and gives it far more clicks than a uniform sample of a log with few clicks (the AUC's
    variance is dominated by the rarer class); a logloss must weight the classes back
    (`class_weights`). Sorted; the draw of s depends on (seed, s) only."""
    label = np.asarray(label).astype(bool)
    out = []
    for s in range(k):
        idx = np.flatnonzero(scenario == s)
        if len(idx) > cap:
            rng = np.random.default_rng([seed, s])
            pos, neg = idx[label[idx]], idx[~label[idx]]
            n_pos = min(len(pos), max(cap // 2, cap - len(neg)))
            n_neg = min(len(neg), cap - n_pos)
            idx = np.sort(np.concatenate([rng.choice(pos, n_pos, replace=False),
                                          rng.choice(neg, n_neg, replace=False)]))
        out.append(idx)
    return out


def class_weights(label_sample: np.ndarray, clicks: int, non_clicks: int) -> np.ndarray:
    """Per sampled row: how many rows of its class in the whole scenario it stands for (1 when
    nothing was left out), so that weighted means estimate the scenario's own."""
    y = np.asarray(label_sample).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return np.where(y, clicks / max(n_pos, 1), non_clicks / max(n_neg, 1)).astype(np.float64)


def as_scenario(split: EncodedSplit, s: int) -> EncodedSplit:
    """The same rows with every scenario index set to s (features untouched)."""
    return EncodedSplit(scenario=torch.full_like(split.scenario, s), label=split.label, cat=split.cat, num=split.num,
                        seq=split.seq, seq_mask=split.seq_mask)


def too_small_reason(clicks: int, non_clicks: int, noun: str = "scenario") -> str | None:
    """Why a target's column cannot be compared (None when it can)."""
    if clicks + non_clicks == 0:
        return f"no test rows in this {noun}"
    if clicks < ev.MIN_CLASS or non_clicks < ev.MIN_CLASS:
        return (f"{ev.counts_text([(clicks, non_clicks)])} in its test rows: the AUC needs at least {ev.MIN_CLASS} "
                f"clicks and {ev.MIN_CLASS} non-clicks to be compared")
    return None


def transfer_matrix(score: Score, test: EncodedSplit, names: list[str], how: str, model_id: str,
                    rows_cap: int = ROWS_CAP, noun: str = "scenario") -> dict:
    """transfer.json's content for a model (`score`: its click probabilities of a split)."""
    t0 = time.perf_counter()
    k = len(names)
    rows = capped_rows(test.scenario.cpu().numpy(), test.label.cpu().numpy(), k, rows_cap)
    order = np.concatenate(rows).astype(np.int64)
    sub = test.take(torch.as_tensor(order, device=test.label.device)).to("cpu")
    label = sub.label.numpy()
    bounds = np.cumsum([0] + [len(r) for r in rows])
    preds = np.stack([score(as_scenario(sub, s)) for s in range(k)])  # [K sources, rows of every target]
    auc, lo, hi = (np.full((k, k), np.nan) for _ in range(3))
    loss, loss_lo, loss_hi = (np.full((k, k), np.nan) for _ in range(3))
    n, positives, too_small = [], [], {}
    z = stats.norm.ppf(0.975)
    for t in range(k):
        cols = slice(bounds[t], bounds[t + 1])
        y = label[cols]
        clicks, non = ev.class_counts(y)
        n.append(int(len(y)))
        positives.append(clicks)
        why = too_small_reason(clicks, non, noun)
        if why:
            too_small[names[t]] = why
        if not clicks or not non:
            continue
        a, cov = ev.delong(y, preds[:, cols])  # a [K], cov [K, K]: every source on t's rows
        for s in range(k):
            auc[s, t], lo[s, t], hi[s, t] = ev.auc_interval(float(a[s]), float(cov[s, s]))
            diff = float(a[t] - a[s])  # AUC t's own part loses when s's part scores its rows
            loss[s, t] = diff
            if s != t:
                half = z * np.sqrt(max(float(cov[s, s] + cov[t, t] - 2 * cov[s, t]), 0.0))
                loss_lo[s, t], loss_hi[s, t] = diff - half, diff + half
    return {"schema_version": VERSION, "model": model_id, "how": how, "scenarios": list(names), "rows_cap": rows_cap,
            "auc": auc, "ci_low": lo, "ci_high": hi, "loss": loss, "loss_ci_low": loss_lo, "loss_ci_high": loss_hi,
            "n": n, "positives": positives, "too_small": too_small, "seconds": time.perf_counter() - t0}
