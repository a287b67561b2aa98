"""Splitting the log into train, validation and test as the schema says: by a time column, at
random, or by groups (seeded).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from saml_core.data.byo.byo_schema import TEST, TRAIN, VALID, _fail, _plain


def _rule_value(v, values: pd.Series, sp: dict, path):
    """A rule's value (`from`, `values`) parsed like the column's values."""
    dates = isinstance(values.dtype, pd.DatetimeTZDtype)
    try:
        if dates:
            got = pd.to_datetime(str(_plain(v)), format=sp["format"] or "ISO8601", utc=True)
        else:
            got = float(_plain(v))
    except (TypeError, ValueError, OverflowError):
        got = None
    if got is None or pd.isna(got):
        kind = (f"a date in the format {sp['format']!r}" if sp["format"] else "an ISO date") if dates else "a number"
        raise _fail(path, f"split column '{sp['column']}': the rule cannot compare its values ({_plain(v)!r} is not "
                    f"{kind}, as the column's values are)")
    return got


def _rule_mask(values: pd.Series, rule, rng: np.random.Generator, sp: dict, path) -> np.ndarray:
    if rule == "last":
        return (values == values.max()).to_numpy()
    (key, v), = rule.items()
    if key == "values":
        return values.isin([_rule_value(x, values, sp, path) for x in v]).to_numpy()
    if key == "from":
        return (values >= _rule_value(v, values, sp, path)).to_numpy()
    return rng.random(len(values)) < v  # fraction


def _random_split(n: int, test: float, valid: float, rng: np.random.Generator) -> np.ndarray:
    """Exactly round(f * n) rows each, drawn without replacement."""
    perm = rng.permutation(n)
    n_test, n_valid = round(test * n), round(valid * n)
    out = np.full(n, TRAIN, dtype=np.int8)
    out[perm[:n_test]] = TEST
    out[perm[n_test:n_test + n_valid]] = VALID
    return out


def _group_split(groups: np.ndarray, test: float, valid: float, rng: np.random.Generator) -> np.ndarray:
    """Whole groups (e.g. users) in random order fill test, then validation, up to about the
    fractions of ROWS (a group goes where the middle of its rows falls), the rest is train."""
    codes, uniq = pd.factorize(groups)
    sizes = np.bincount(codes, minlength=len(uniq))
    order = rng.permutation(len(uniq))
    centre = (np.cumsum(sizes[order]) - sizes[order] / 2) / len(groups)
    of_group = np.empty(len(uniq), dtype=np.int8)
    of_group[order] = np.where(centre < test, TEST, np.where(centre < test + valid, VALID, TRAIN))
    return of_group[codes]


def assign_splits(cfg: dict, frame: pd.DataFrame, part: np.ndarray, seed: int) -> np.ndarray:
    """[N] TRAIN / VALID / TEST per row."""
    sp, path = cfg["split"], cfg["path"]
    if sp["method"] == "files":
        return part.copy()
    rng = np.random.default_rng(seed)
    out = np.where(part == TEST, TEST, TRAIN).astype(np.int8)
    pool = np.flatnonzero(part != TEST)  # every row, or the train file's rows
    if sp["method"] == "random":
        out[pool] = _random_split(len(pool), sp["test"] or 0.0, sp["valid"], rng)
    elif sp["method"] == "group":
        out[pool] = _group_split(frame[sp["column"]].to_numpy()[pool], sp["test"] or 0.0, sp["valid"], rng)
    else:
        values = frame[sp["column"]].iloc[pool].reset_index(drop=True)
        is_test = (_rule_mask(values, sp["test"], rng, sp, path) if sp["test"] is not None
                   else np.zeros(len(pool), dtype=bool))
        rest = np.flatnonzero(~is_test)
        is_valid = _rule_mask(values.iloc[rest].reset_index(drop=True), sp["valid"], rng, sp, path)
        out[pool[is_test]] = TEST
        out[pool[rest[is_valid]]] = VALID
    return out


def _describe_split(sp: dict) -> str:
    if sp["method"] == "files":
        return "the data files"
    shown = {k: v for k, v in sp.items() if v is not None}
    return "split {" + ", ".join(f"{k}: {v}" for k, v in shown.items()) + "}"
