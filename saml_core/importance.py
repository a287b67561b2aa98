"""Per-scenario permutation importance of a trained model (importance.json, docs/ARTIFACTS.md).

For every scenario s and every input i (each categorical field, each numeric field, and the
behaviour sequence as a whole: all its channels and its mask, which they share), the values of i
are shuffled among s's own test rows only, the rows are scored again, and the drop of s's AUC and
the rise of its logloss against the unshuffled rows are recorded, `n_repeats` times with
permutations drawn from `random_state` (scikit-learn's `permutation_importance` conventions, one
pooled model there; here per scenario, and with sequences). Each drop also gets its test-sampling
variance: the paired DeLong variance of AUC(unshuffled) - AUC(shuffled) on the same rows, and the
variance of the mean per-row logloss difference; the summaries (saml_core.analyses) combine them
with the spread over repeats and seeds.

Cost: (1 + inputs x n_repeats) predictions of at most `rows_cap` test rows per scenario, packed
into large batches (every input and repeat of several scenarios in one call). The defaults keep it
under a fifth of the run's own training time on the default simulator (docs/ENGINE.md, Analyses).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from saml_core import evaluate as ev
from saml_core.analyses import VERSION
from saml_core.data.types import EncodedSplit, FeatureSpec
from saml_core.transfer import Score, capped_rows, class_weights

# Defaults chosen for the cost bound (docs/ENGINE.md, Run analyses): 13 inputs x 2 repeats x at
# most 400 rows per scenario is ~108k scored rows on the default simulator. SAML, whose evaluation
# is the slowest per row, is the tightest model: 3 repeats (160k rows) measured 16 % of its training
# time on a lightly loaded machine and 22 % on a busy one; the CIs of 2 repeats on 400 rows were 12 %
# wider than those of 3 (the test rows' sampling dominates the shuffles' spread), those of 3
# repeats on 300 rows (the same cost) 21 % wider.
ROWS_CAP = 400
N_REPEATS = 2
RANDOM_STATE = 0
CHUNK_ROWS = 32768  # rows per scoring call: every input and repeat of several scenarios at once
KINDS = ("categorical", "numeric", "sequence")


@dataclass(frozen=True)
class Input:
    name: str
    kind: str  # one of KINDS
    column: int = -1  # column of EncodedSplit.cat / .num (-1: the sequence)
    fields: tuple[str, ...] = ()  # the sequence's channels

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, **({"fields": list(self.fields)} if self.fields else {})}


def inputs_of(spec: FeatureSpec) -> list[Input]:
    """Every input a row carries: categorical fields, numeric fields, then the behaviour sequence
    (its channels are attributes of the same behaviours and share one mask, so they move as one;
    named by its channels joined with '+')."""
    out = [Input(f.name, "categorical", j) for j, f in enumerate(spec.cat_fields)]
    out += [Input(name, "numeric", j) for j, name in enumerate(spec.num_fields)]
    if spec.seq_fields:
        names = tuple(f.name for f in spec.seq_fields)
        out.append(Input("+".join(names), "sequence", -1, names))
    return out


def shuffle_into(batch: EncodedSplit, at: slice, source: EncodedSplit, donor: torch.Tensor, inp: Input) -> None:
    """In place: rows `at` of `batch` take input `inp` from rows `donor` of `source` (a sequence:
    every channel and the mask, whole rows); every other column stays."""
    if inp.kind == "categorical":
        batch.cat[at, inp.column] = source.cat[donor, inp.column]
    elif inp.kind == "numeric":
        batch.num[at, inp.column] = source.num[donor, inp.column]
    else:
        batch.seq[at] = source.seq[donor]
        batch.seq_mask[at] = source.seq_mask[donor]


def permutations(n: int, n_repeats: int, random_state: int, scenario: int, input_index: int) -> np.ndarray:
    """[n_repeats, n]: the shuffles of one input in one scenario, drawn from (random_state,
    scenario, input) alone, so a cell does not depend on which other cells are computed."""
    rng = np.random.default_rng([random_state, scenario, input_index])
    return np.stack([rng.permutation(n) for _ in range(n_repeats)]) if n else np.zeros((n_repeats, 0), np.int64)


def _shuffled_predictions(score: Score, sub: EncodedSplit, positions: list[np.ndarray], inputs: list[Input],
                          n_repeats: int, random_state: int, chunk_rows: int) -> dict:
    """{(s, i, r): predictions [n_s]} of every shuffled copy, scored in chunks of ~chunk_rows rows."""
    out: dict = {}
    pending: list = []  # (key, positions, donor positions, input)
    size = 0

    def flush():
        nonlocal pending, size
        if not pending:
            return
        rows = torch.as_tensor(np.concatenate([p for _, p, _, _ in pending]))
        batch = sub.take(rows)  # a copy: the shuffles write into it
        start = 0
        for _, p, donor, inp in pending:
            shuffle_into(batch, slice(start, start + len(p)), sub, torch.as_tensor(donor), inp)
            start += len(p)
        pred = score(batch)
        start = 0
        for key, p, _, _ in pending:
            out[key] = pred[start:start + len(p)]
            start += len(p)
        pending, size = [], 0

    for s, pos in enumerate(positions):
        if not len(pos):
            continue
        for i, inp in enumerate(inputs):
            for r, perm in enumerate(permutations(len(pos), n_repeats, random_state, s, i)):
                pending.append(((s, i, r), pos, pos[perm], inp))
                size += len(pos)
                if size >= chunk_rows:
                    flush()
    flush()
    return out


def permutation_importance(score: Score, test: EncodedSplit, spec: FeatureSpec, model_id: str,
                           train_seconds: float | None, n_repeats: int = N_REPEATS,
                           random_state: int = RANDOM_STATE, rows_cap: int = ROWS_CAP,
                           chunk_rows: int = CHUNK_ROWS) -> dict:
    """importance.json's content for a model (`score`: its click probabilities of a split).

    drop_auc[s][i][r] = AUC(s's rows) - AUC(s's rows with input i shuffled among them, repeat r);
    drop_logloss the same for the logloss the other way round (shuffled - unshuffled), so that both
    are positive when the input matters. Rows: `transfer.capped_rows` (all of a scenario's test rows
    up to `rows_cap`, else a sample within each class; the loglosses weight the classes back).
    var_auc[s][i]: the paired DeLong variance of the drop averaged over the repeats (from the
    covariance of all the AUCs on the same rows); var_logloss[s][i]: that of the mean logloss rise
    (weighted per-row differences averaged over the repeats). Neither holds the shuffles' own
    spread, which the summaries take from the repeats."""
    t0 = time.perf_counter()
    names = list(spec.scenario_names)
    k = len(names)
    inputs = inputs_of(spec)
    scen_all, label_all = test.scenario.cpu().numpy(), test.label.cpu().numpy()
    rows = capped_rows(scen_all, label_all, k, rows_cap)
    bounds = np.cumsum([0] + [len(r) for r in rows])
    sub = test.take(torch.as_tensor(np.concatenate(rows).astype(np.int64), device=test.label.device)).to("cpu")
    positions = [np.arange(bounds[s], bounds[s + 1]) for s in range(k)]
    base_pred = score(sub)
    shuffled = _shuffled_predictions(score, sub, positions, inputs, n_repeats, random_state, chunk_rows)
    label = sub.label.numpy()
    n_in = len(inputs)
    drop_auc = np.full((k, n_in, n_repeats), np.nan)
    drop_ll = np.full((k, n_in, n_repeats), np.nan)
    var_auc, var_ll = np.full((k, n_in), np.nan), np.full((k, n_in), np.nan)
    contrast = np.concatenate([[1.0], np.full(n_repeats, -1.0 / n_repeats)])  # AUC0 - mean_r AUC_r
    base = {}
    for s, pos in enumerate(positions):
        y, p0 = label[pos], base_pred[pos]
        clicks, non = ev.class_counts(y)
        in_s = scen_all == s
        w = class_weights(y, int(label_all[in_s].sum()), int((~label_all[in_s].astype(bool)).sum()))
        l0 = ev.row_logloss(y, p0)
        base[names[s]] = {"auc": None, "logloss": float(np.average(l0, weights=w)) if len(y) else None,
                          "n": int(len(y)), "positives": clicks}
        if not len(y):
            continue
        both = clicks > 0 and non > 0
        for i in range(n_in):
            preds = np.stack([shuffled[(s, i, r)] for r in range(n_repeats)])  # [R, n]
            diff = np.stack([ev.row_logloss(y, p) for p in preds]) - l0  # [R, n]
            drop_ll[s, i] = np.average(diff, axis=1, weights=w)
            mean_diff = diff.mean(0)
            mu = np.average(mean_diff, weights=w)
            var_ll[s, i] = float(np.sum(w ** 2 * (mean_diff - mu) ** 2) / w.sum() ** 2)
            if both:  # AUC defined
                a, cov = ev.delong(y, np.vstack([p0[None], preds]))  # [1 + R], their covariance
                base[names[s]]["auc"] = float(a[0])
                drop_auc[s, i] = a[0] - a[1:]
                var_auc[s, i] = max(float(contrast @ cov @ contrast), 0.0)
    return {"schema_version": VERSION, "model": model_id, "scenarios": names,
            "inputs": [inp.to_dict() for inp in inputs], "n_repeats": n_repeats, "random_state": random_state,
            "rows_cap": rows_cap, "base": base, "drop_auc": drop_auc, "drop_logloss": drop_ll,
            "var_auc": var_auc, "var_logloss": var_ll, "seconds": time.perf_counter() - t0,
            "train_seconds": train_seconds}
