"""Warnings about a log that loads but is probably wrong (docs/DATA.md, Errors and warnings).

Each function returns sentences for `info["warnings"]`, which `data describe`, the experiment's
log (and its job log) and the dashboard show, and experiment.json keeps. They never fail: the
input is legal, only suspicious.

- label leakage: a feature that predicts the label almost perfectly on the train split;
- scenario names that differ only in upper/lower case or spacing ('US' and 'us', 'New York' and
  'New  York'): separate scenarios, probably meant as one;
- ids written two ways ('12' and '12.0', '7' and '007'): different ids, probably meant as one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from saml_core.data.stats import auc
from saml_core.data.types import MultiScenarioData

# A feature whose train AUC exceeds this predicts the clicks almost perfectly: real click logs
# give single features AUCs around 0.5-0.7, a copy of the label gives 1.0.
LEAK_AUC = 0.99
# Fewer clicks or non-clicks than this in train: an AUC that high can happen by chance.
LEAK_MIN_CLASS = 10
SHOWN = 3  # examples named in one warning


def leakage_warnings(data: MultiScenarioData) -> list[str]:
    """A categorical feature whose values' click rates, or a numeric feature whose values,
    separate clicks from non-clicks on the train split with AUC > LEAK_AUC.

    A categorical value's click rate is computed out of fold (two halves of the train rows, each
    scored with the rates of the other), so an id unique to each row, whose in-sample rate is
    its own label, scores the prior and no AUC at all; a copy of the label scores 1.0 either way.
    A numeric feature counts in either direction (AUC below 1 - LEAK_AUC too). Behaviour
    sequences are not checked."""
    y = data.train.label.numpy() > 0.5
    positives = int(y.sum())
    if min(positives, len(y) - positives) < LEAK_MIN_CLASS:
        return []
    fold = np.random.default_rng(0).integers(0, 2, len(y))
    found = []
    cat = data.train.cat.numpy()
    for j, f in enumerate(data.spec.cat_fields):
        a = auc(y, _out_of_fold_rate(cat[:, j], y, fold, f.vocab_size))
        if a is not None and a > LEAK_AUC:
            found.append((f.name, "categorical", a, "the click rates of its values"))
    num = data.train.num.numpy()
    for j, name in enumerate(data.spec.num_fields):
        a = auc(y, num[:, j])
        if a is not None and max(a, 1 - a) > LEAK_AUC:
            found.append((name, "numeric", max(a, 1 - a), "its values"))
    return [f"column '{name}' predicts the label almost perfectly on the train split (AUC {a:.3f} of {how}, above "
            f"{LEAK_AUC}): it probably copies or follows from the click (label leakage), which makes every result "
            f"meaningless; remove it from {kind} unless its value is known before the impression"
            for name, kind, a, how in found]


def _out_of_fold_rate(ids: np.ndarray, y: np.ndarray, fold: np.ndarray, size: int) -> np.ndarray:
    """[N] smoothed click rate of each row's value, from the rows of the other fold."""
    out = np.empty(len(ids), dtype=np.float64)
    for f in (0, 1):
        mine, other = fold == f, fold != f
        prior = y[other].mean() if other.any() else 0.5
        shows = np.bincount(ids[other], minlength=size)
        clicks = np.bincount(ids[other], weights=y[other], minlength=size)
        out[mine] = ((clicks + prior) / (shows + 1.0))[ids[mine]]
    return out


def scenario_spelling_warnings(values: pd.Series, noun: tuple[str, str]) -> list[str]:
    """Distinct scenario names equal when case and whitespace are ignored."""
    groups = _groups(pd.unique(values.dropna()), lambda v: "".join(str(v).split()).casefold())
    if not groups:
        return []
    shown = "; ".join(" and ".join(map(repr, g)) for g in groups[:SHOWN])
    more = f" (and {len(groups) - SHOWN} more such groups)" if len(groups) > SHOWN else ""
    return [f"{noun[1]} {shown}{more} differ only in upper/lower case or spacing: they are kept apart as different "
            f"{noun[1]}; if they are one, write them one way in the data"]


def id_format_warnings(table, categorical: list[str], sequences: dict[str, str]) -> list[str]:
    """Per categorical column (with the items of the sequences sharing its vocabulary): distinct
    values that are the same number written two ways."""
    out = []
    for col in categorical:
        parts = [pd.unique(table.frame[col].dropna())]
        parts += [pd.unique(pd.Series(arr.ravel()).dropna()) for name, arr in table.seqs.items()
                  if sequences.get(name) == col]
        uniq = pd.unique(pd.Series(np.concatenate(parts), dtype=object).astype(str))
        number = pd.to_numeric(pd.Series(uniq), errors="coerce").to_numpy(dtype=np.float64)
        finite = np.isfinite(number)
        groups = _groups(uniq[finite], dict(zip(uniq[finite], number[finite])).get)
        if groups:
            shown = "; ".join(" and ".join(map(repr, g)) for g in groups[:SHOWN])
            count = f"{len(groups):,} such pairs" if len(groups) > 1 else "one such pair"
            out.append(f"column '{col}' has ids written two ways ({shown}; {count}): they are different ids to the "
                       "model; if they are the same, write them one way")
    return out


def _groups(values, key) -> list[list]:
    """Groups of two or more distinct values with the same key, each sorted, in order of their first value."""
    by: dict = {}
    for v in values:
        by.setdefault(key(v), []).append(v)
    return sorted((sorted(g, key=str) for g in by.values() if len(g) > 1), key=lambda g: str(g[0]))
