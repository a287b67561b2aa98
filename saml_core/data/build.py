"""Shared last step of every source: choose the scenarios, check the splits, fit the encoder on
train, encode.

Scenario selection (`encode_splits`):
- `drop_scenarios`: scenarios removed from every split on request;
- `min_positives=m` (default `evaluate.MIN_CLASS`, the fewest clicks and non-clicks a paired
  test accepts): a scenario is kept only when its test split has at least m clicks AND at least m
  non-clicks (else its AUC cannot be tested) and its train split at least one click (else
  nothing to learn); the others are removed from every split, and `info["dropped_scenarios"]`
  says which and why, with the counts (`judge_scenarios`: the one rule, also applied by the
  out-of-core loaders). `min_positives=None` is the strict mode of sources whose scenario set is
  fixed by design (the simulator's countries, the Taobao city levels): a scenario without train
  samples or clicks is an error instead, and a small one stays (its tests say "n/a" with counts);
- fewer than two scenarios left is an error for every source: SAML compares scenarios.
"""
from __future__ import annotations

from dataclasses import replace

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from saml_core.data.encoder import Encoder, _sorted_unique
from saml_core.evaluate import MIN_CLASS
from saml_core.data.schema import RawTable, Schema
from saml_core.data.types import DataError, MultiScenarioData


def check_scenario_counts(schema: Schema, values, n: np.ndarray, pos: np.ndarray, source: str) -> None:
    """Strict mode. n, pos: [K] train samples and positives per scenario (in `values` order)."""
    for j, value in enumerate(values):
        if n[j] == 0:
            raise DataError(
                f"{source}: column '{schema.scenario}': scenario {str(value)!r} has no samples "
                "in the train split"
            )
        if pos[j] == 0:
            raise DataError(
                f"{source}: column '{schema.scenario}': scenario {str(value)!r} has no positive "
                f"'{schema.label}' in the train split ({int(n[j])} samples, all 0)"
            )


def sorted_scenarios(values: np.ndarray) -> tuple:
    """Distinct scenario values in display order: numerically when all look like numbers
    ("2" before "10"), else sorted."""
    uniq = _sorted_unique(np.asarray(values))
    if uniq.dtype == object and len(uniq):
        num = pd.to_numeric(pd.Series(uniq, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        if not np.isnan(num).any():
            uniq = uniq[np.argsort(num, kind="stable")]
    return tuple(uniq)


def _counts(table: RawTable, schema: Schema, values: tuple) -> tuple[np.ndarray, np.ndarray]:
    """([K] samples, [K] positives) per scenario; rows with other values are not counted."""
    idx = pd.Index(values).get_indexer(table.frame[schema.scenario].to_numpy())
    ok = idx >= 0
    labels = table.frame[schema.label].to_numpy(dtype=np.float64)[ok]
    k = len(values)
    return (np.bincount(idx[ok], minlength=k).astype(np.int64),
            np.bincount(idx[ok], weights=labels, minlength=k).astype(np.int64))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def judge_scenarios(names, train_n, train_pos, test_n, test_pos, min_positives: int | None,
                    listed=frozenset()) -> tuple[list[int], list[dict]]:
    """The one rule for too-small scenarios -> (indices kept, dropped entries). [K] counts per
    scenario: train rows and clicks, test rows and clicks. Kept: not listed (drop_scenarios),
    and with min_positives m: at least m test clicks and m test non-clicks and one train click.
    min_positives None: only the listed ones are dropped (strict mode checks the rest)."""
    dropped, kept = [], []
    for j, name in enumerate(names):  # K scenarios, not rows
        reasons = ["listed in drop_scenarios"] if j in listed else []
        clicks, non_clicks = int(test_pos[j]), int(test_n[j] - test_pos[j])
        if min_positives is not None:
            if train_n[j] == 0:
                reasons.append("no samples in the train split")
            elif train_pos[j] < 1:
                reasons.append("0 clicks in the train split")
            if clicks < min_positives or non_clicks < min_positives:
                reasons.append(f"{_plural(clicks, 'click')} and {_plural(non_clicks, 'non-click')} in the test "
                               f"split (min_positives {min_positives}: at least {min_positives} of each)")
        if reasons:
            dropped.append({"scenario": name, "reason": "; ".join(reasons), "train_positives": int(train_pos[j]),
                            "test_positives": clicks, "test_negatives": non_clicks})
        else:
            kept.append(j)
    return kept, dropped


def too_few_scenarios(source: str, names, kept: list[int], dropped: list[dict],
                      scenario_noun: tuple[str, str]) -> DataError:
    """The error for fewer than two scenarios left (SAML compares scenarios)."""
    _, nouns = scenario_noun
    why = ("; dropped: " + ", ".join(f"{d['scenario']!r} ({d['reason']})" for d in dropped)) if dropped else ""
    has = f"one ({names[kept[0]]})" if kept else ("none left" if dropped else "none")
    return DataError(f"{source}: SAML compares {nouns}: this log has {has}{why}")


def select_scenarios(
    schema: Schema, train: RawTable, test: RawTable, *, source: str,
    min_positives: int | None = MIN_CLASS, drop_scenarios: Sequence = (),
    scenario_noun: tuple[str, str] = ("scenario", "scenarios"), pool: Sequence[RawTable] = (),
) -> tuple[tuple, tuple[str, ...], list[int], list[dict]]:
    """-> (kept values, kept display names, kept indices into the full scenario list, dropped).

    The full list: the schema's declared values, else the sorted values of train (strict mode)
    or of every table in `pool` (drop mode, so a scenario seen only in test is dropped by name
    instead of failing at encoding time).
    """
    if schema.scenario_values is not None:
        values = tuple(schema.scenario_values)
    else:
        tables = list(pool) if min_positives is not None and pool else [train]
        values = sorted_scenarios(np.concatenate([t.frame[schema.scenario].to_numpy() for t in tables]))
    names = tuple(schema.scenario_names) if schema.scenario_names else tuple(str(v) for v in values)
    train_n, train_pos = _counts(train, schema, values)
    test_n, test_pos = _counts(test, schema, values)

    listed = set()
    for d in drop_scenarios:
        hit = [j for j, (v, nm) in enumerate(zip(values, names)) if str(d) in (str(v), nm)]
        if not hit:
            raise DataError(f"{source}: drop_scenarios lists {str(d)!r}, which is not a {scenario_noun[0]} "
                            f"of this data ({', '.join(names)})")
        listed.update(hit)
    kept, dropped = judge_scenarios(names, train_n, train_pos, test_n, test_pos, min_positives, listed)
    if min_positives is None:
        check_scenario_counts(schema, [values[j] for j in kept], train_n[kept], train_pos[kept], source)
    if len(kept) < 2:
        raise too_few_scenarios(source, names, kept, dropped, scenario_noun)
    return tuple(values[j] for j in kept), tuple(names[j] for j in kept), kept, dropped


def check_both_classes(train: RawTable, schema: Schema, source: str) -> None:
    """The train split has clicks and non-clicks: with one class there is nothing to learn (and
    the logistic regression baseline stops with a traceback)."""
    label = train.frame[schema.label].to_numpy()
    if len(label) and label.min() == label.max():
        only = "clicks" if label[0] else "non-clicks"
        raise DataError(f"{source}: the train split has only {only} (label '{schema.label}' is {int(label[0])} in all "
                        f"{len(label):,} rows); a click model learns from both: check the label and the split")


def encode_splits(
    *,
    name: str,
    schema: Schema,
    train: RawTable,
    valid: RawTable,
    test: RawTable,
    seq_len: int,
    source: str,
    info: dict,
    true_similarity: np.ndarray | None = None,
    category_field: str | None = None,
    scenario_noun: tuple[str, str] = ("scenario", "scenarios"),
    min_positives: int | None = MIN_CLASS,
    drop_scenarios: Sequence = (),
    min_count: int = 1,
    exclude: Sequence = (),
) -> MultiScenarioData:
    """min_positives: an int = drop the scenarios too small to learn or test (default
    MIN_CLASS; see the module docstring); None = strict (a scenario without train samples or
    positives is an error). drop_scenarios: values or names."""
    if len(train) == 0:
        raise DataError(f"{source}: the train split is empty")
    for split_name, table in (("validation", valid), ("test", test)):
        if len(table) == 0:
            raise DataError(f"{source}: the {split_name} split is empty")
    values, names, kept, dropped = select_scenarios(
        schema, train, test, source=source, min_positives=min_positives, drop_scenarios=drop_scenarios,
        scenario_noun=scenario_noun, pool=(train, valid, test))
    schema = dataclasses.replace(schema, scenario_values=values, scenario_names=names)
    if dropped:
        keep = list(values)
        train, valid, test = (t.take(t.frame[schema.scenario].isin(keep).to_numpy()) for t in (train, valid, test))
        gone = ", ".join(d["scenario"] for d in dropped)
        for split_name, table in (("train", train), ("validation", valid), ("test", test)):
            if len(table) == 0:
                raise DataError(f"{source}: the {split_name} split is empty after dropping {gone}")
        if true_similarity is not None:
            true_similarity = true_similarity[np.ix_(kept, kept)]
    info = {**info, "dropped_scenarios": dropped}
    check_both_classes(train, schema, source)
    if exclude:  # a feature ablation: categorical fields (with the sequences sharing them) and sequences left out
        seq_names = tuple(q.name for q in schema.sequences)
        unknown = sorted(set(exclude) - set(schema.categorical) - set(seq_names))
        if unknown:
            raise DataError(f"{source}: exclude names {', '.join(unknown)}, which are neither categorical fields "
                            f"({', '.join(schema.categorical)}) nor behaviour sequences "
                            f"({', '.join(seq_names) or 'none'})")
        if category_field in exclude:
            category_field = None
        schema = replace(schema, categorical=tuple(c for c in schema.categorical if c not in exclude),
                         sequences=tuple(q for q in schema.sequences
                                         if q.item_field not in exclude and q.name not in exclude))
        info = {**info, "excluded_fields": list(exclude)}
    enc = Encoder(schema, seq_len, source=source, min_count=min_count).fit(train)
    return MultiScenarioData(
        name=name,
        spec=enc.spec,
        train=enc.transform(train, "train"),
        valid=enc.transform(valid, "validation"),
        test=enc.transform(test, "test"),
        info=info,
        true_similarity=true_similarity,
        category_field=category_field,
        scenario_noun=tuple(scenario_noun),
        values={name: vocab.to_numpy() for name, vocab in enc.vocabs.items()},
    )
