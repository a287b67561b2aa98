"""Encoder: raw table -> contiguous tensors. Fitted on the TRAIN split only (no leakage).

- categorical fields: vocabulary of train values (sorted), index = 2 + rank; unseen -> OOV (1)
- a sequence field shares the vocabulary of its item field; that vocabulary is built from the
  train values of the item field AND of its sequences; PAD (0) fills empty positions
- numeric fields: (x - train mean) / train std; missing -> 0 (the train mean)
- sequences: the last `seq_len` behaviours, most recent LAST (right-aligned), with a mask

Everything is whole-column numpy/pandas work: no Python loop over rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from saml_core.data.schema import RawTable, Schema
from saml_core.data.types import (
    OOV_INDEX,
    PAD_INDEX,
    CatField,
    DataError,
    EncodedSplit,
    FeatureSpec,
    SeqField,
    check_seq_len,
)

_FIRST_ID = 2  # 0 = PAD, 1 = OOV


_DENSE_LIMIT = 50_000_000  # integer ids below this use O(1) array lookups instead of hashing
# Embedding rows of one field (SAML also keeps scenarios x rows of its scenario-specific table).
# The raw Taobao tables, the largest source, have about 1.1M users and 0.9M ads; an id column
# with more distinct train values is a row id or needs min_count.
MAX_VOCAB = 10_000_000


def _dense_ints(values: np.ndarray) -> bool:
    return (values.dtype.kind in "iu" and values.size > 0 and int(values.min()) >= 0
            and int(values.max()) < _DENSE_LIMIT)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    if _dense_ints(values):
        seen = np.zeros(int(values.max()) + 1, dtype=bool)
        seen[values] = True
        return np.flatnonzero(seen).astype(values.dtype)
    values = pd.unique(pd.Series(values).dropna())
    try:
        return np.sort(np.asarray(values))
    except TypeError:  # mixed types: order by their text
        return np.asarray(sorted(values, key=str), dtype=object)


class Encoder:
    def __init__(self, schema: Schema, seq_len: int, source: str = "data", min_count: int = 1):
        """min_count: a categorical value seen fewer times in train (its field and the sequences
        sharing its vocabulary) is out of vocabulary: ids seen a handful of times get one shared
        row instead of rows that can only learn noise."""
        check_seq_len(seq_len, f"{source}: seq_len")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise DataError(f"{source}: min_count must be a whole number >= 1, got {min_count!r}")
        self.min_count = min_count
        self.schema = schema
        self.seq_len = int(seq_len)
        self.source = source  # names the file in error messages
        self.vocabs: dict[str, pd.Index] = {}
        self.num_mean: np.ndarray | None = None
        self.num_std: np.ndarray | None = None
        self.scenario_values: tuple | None = None

    # ---- fitting (train split only) -------------------------------------------------
    def fit(self, train: RawTable) -> "Encoder":
        return self.fit_many([train])

    def fit_many(self, parts) -> "Encoder":
        """Fit on the train split given as an iterable of RawTable parts (out-of-core sources).

        Vocabularies are the union of the parts' values; numeric statistics are accumulated as
        count / sum / sum of squares, so the result equals fitting on the concatenation.
        """
        s = self.schema
        uniques: dict[str, list] = {name: [] for name in s.categorical}
        counts: dict[str, pd.Series] = {name: pd.Series(dtype=np.int64) for name in s.categorical}
        scen: list = []
        count = np.zeros(len(s.numeric))
        total = np.zeros(len(s.numeric))
        total_sq = np.zeros(len(s.numeric))
        rows = 0
        for train in parts:
            rows += len(train)
            if s.scenario_values is None:
                scen = [_sorted_unique(np.concatenate([*scen, train.frame[s.scenario].to_numpy()]))]
            valid = self._valid(train) if s.sequences else None
            for name in s.categorical:
                col = [*uniques[name], train.frame[name].to_numpy()]
                col += [train.seqs[q.name][valid] for q in s.sequences if q.item_field == name]
                if self.min_count > 1:
                    values = pd.Series(np.concatenate(col[len(uniques[name]):])).value_counts()
                    counts[name] = counts[name].add(values, fill_value=0)
                uniques[name] = [_sorted_unique(np.concatenate(col))]
            if s.numeric:
                x = train.frame[list(s.numeric)].to_numpy(dtype=np.float64)
                ok = np.isfinite(x)
                count += ok.sum(axis=0)
                total += np.where(ok, x, 0).sum(axis=0)
                total_sq += np.where(ok, x * x, 0).sum(axis=0)
        if rows == 0:
            raise DataError(f"{self.source}: the train split is empty")
        self.scenario_values = (
            tuple(s.scenario_values) if s.scenario_values is not None else tuple(scen[0])
        )
        self.vocabs = {name: pd.Index(v[0]) for name, v in uniques.items()}
        if self.min_count > 1:
            for name in s.categorical:
                frequent = counts[name][counts[name] >= self.min_count].index
                self.vocabs[name] = self.vocabs[name][self.vocabs[name].isin(frequent)]
        for name, vocab in self.vocabs.items():  # before any embedding table is sized by it
            if len(vocab) > MAX_VOCAB:
                raise DataError(f"{self.source}: column '{name}' has {len(vocab):,} distinct values in the train split; "
                                f"at most {MAX_VOCAB:,} get an embedding row (is it a row id? values seen fewer "
                                "than min_count times share one row)")
        mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        var = np.where(count > 0, total_sq / np.maximum(count, 1) - mean**2, 1.0)
        std = np.sqrt(np.maximum(var, 0))
        self.num_mean = mean
        self.num_std = np.where(std > 1e-12, std, 1.0)
        return self

    @property
    def spec(self) -> FeatureSpec:
        s = self.schema
        names = s.scenario_names or tuple(str(v) for v in self.scenario_values)
        return FeatureSpec(
            scenario_names=tuple(names),
            cat_fields=tuple(
                CatField(n, len(self.vocabs[n]) + _FIRST_ID) for n in s.categorical
            ),
            num_fields=tuple(s.numeric),
            seq_fields=tuple(SeqField(q.name, q.item_field) for q in s.sequences),
            seq_len=self.seq_len,
        )

    # ---- transform ---------------------------------------------------------------------
    def _valid(self, table: RawTable) -> np.ndarray:
        """[N, W] bool: True where a real behaviour sits (right-aligned)."""
        width = next(iter(table.seqs.values())).shape[1] if table.seqs else 0
        lengths = table.seq_lengths
        if lengths is None:
            lengths = np.full(len(table), width)
        return np.arange(width)[None, :] >= (width - np.minimum(lengths, width))[:, None]

    def _lookup(self, name: str, values: np.ndarray) -> np.ndarray:
        vocab = self.vocabs[name]
        if _dense_ints(values) and (len(vocab) == 0 or (
                vocab.dtype.kind in "iu" and 0 <= int(vocab.min()) and int(vocab.max()) < _DENSE_LIMIT)):
            table = np.full(max(int(values.max()), int(vocab.max()) if len(vocab) else 0) + 1,
                            OOV_INDEX, dtype=np.int64)
            table[vocab.to_numpy()] = np.arange(len(vocab)) + _FIRST_ID
            return table[values]
        idx = vocab.get_indexer(values)
        return np.where(idx < 0, OOV_INDEX, idx + _FIRST_ID).astype(np.int64)

    def scenario_index(self, values: np.ndarray, split: str = "data") -> np.ndarray:
        index = pd.Index(self.scenario_values).get_indexer(values)
        if (index < 0).any():
            bad = pd.Series(values[index < 0]).unique()[:5]
            raise DataError(
                f"{self.source}: column '{self.schema.scenario}' in the {split} split has "
                f"scenario value(s) {', '.join(repr(str(b)) for b in bad)} not among the "
                f"train scenarios {[str(v) for v in self.scenario_values]}"
            )
        return index.astype(np.int64)

    def transform(self, table: RawTable, split: str = "data") -> EncodedSplit:
        s, n, L = self.schema, len(table), self.seq_len
        scenario = self.scenario_index(table.frame[s.scenario].to_numpy(), split)
        label = table.frame[s.label].to_numpy(dtype=np.float32)
        cat = np.empty((n, len(s.categorical)), dtype=np.int64)
        for j, name in enumerate(s.categorical):
            cat[:, j] = self._lookup(name, table.frame[name].to_numpy())
        if s.numeric:
            x = table.frame[list(s.numeric)].to_numpy(dtype=np.float64)
            num = ((x - self.num_mean) / self.num_std).astype(np.float32)
            num = np.nan_to_num(num, nan=0.0)
        else:
            num = np.zeros((n, 0), dtype=np.float32)

        seq = np.zeros((n, len(s.sequences), L), dtype=np.int64)
        if s.sequences:
            valid = self._valid(table)
            width = valid.shape[1]
            take = min(L, width)  # keep the `take` most recent behaviours
            valid = valid[:, width - take:]
            for j, q in enumerate(s.sequences):
                raw = table.seqs[q.name][:, width - take:]
                ids = np.full(raw.shape, PAD_INDEX, dtype=np.int64)
                ids[valid] = self._lookup(q.item_field, raw[valid])
                seq[:, j, L - take:] = ids
            mask = np.zeros((n, L), dtype=bool)
            mask[:, L - take:] = valid
        else:
            mask = np.zeros((n, L), dtype=bool)

        oracle = None
        if table.oracle_prob is not None:
            oracle = torch.from_numpy(np.ascontiguousarray(table.oracle_prob, dtype=np.float32))
        return EncodedSplit(
            scenario=torch.from_numpy(scenario),
            label=torch.from_numpy(np.ascontiguousarray(label)),
            cat=torch.from_numpy(cat),
            num=torch.from_numpy(np.ascontiguousarray(num)),
            seq=torch.from_numpy(seq),
            seq_mask=torch.from_numpy(mask),
            oracle_prob=oracle,
        )
