"""Shared last step of every source: check the splits, fit the encoder on train, encode."""
from __future__ import annotations

import numpy as np

from saml_core.data.encoder import Encoder
from saml_core.data.schema import RawTable, Schema
from saml_core.data.types import DataError, MultiScenarioData


def check_train_scenarios(schema: Schema, train: RawTable, enc: Encoder, source: str) -> None:
    """Every declared scenario needs train samples and train positives, or nothing can be learned."""
    idx = enc.scenario_index(train.frame[schema.scenario].to_numpy(), "train")
    labels = train.frame[schema.label].to_numpy(dtype=np.float64)
    k = len(enc.scenario_values)
    n = np.bincount(idx, minlength=k)
    pos = np.bincount(idx, weights=labels, minlength=k)
    check_scenario_counts(schema, enc.scenario_values, n, pos, source)


def check_scenario_counts(schema: Schema, values, n: np.ndarray, pos: np.ndarray, source: str) -> None:
    """n, pos: [K] train samples and positives per scenario (in `values` order)."""
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


def encode_splits(
    *,
    name: str,
    kind: str,
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
) -> MultiScenarioData:
    for split_name, table in (("validation", valid), ("test", test)):
        if len(table) == 0:
            raise DataError(f"{source}: the {split_name} split is empty")
    enc = Encoder(schema, seq_len, source=source).fit(train)
    check_train_scenarios(schema, train, enc, source)
    return MultiScenarioData(
        name=name,
        kind=kind,
        spec=enc.spec,
        train=enc.transform(train, "train"),
        valid=enc.transform(valid, "validation"),
        test=enc.transform(test, "test"),
        info=info,
        true_similarity=true_similarity,
        category_field=category_field,
        scenario_noun=tuple(scenario_noun),
    )
