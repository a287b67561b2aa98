"""The contract between data sources and everything downstream.

Every source (simulator, Taobao, bring-your-own) ends as a `MultiScenarioData`: a
`FeatureSpec` describing the encoded columns, and three `EncodedSplit`s of contiguous
tensors. Models read only the spec; the trainer slices splits by index, never per row.

Index conventions (shared by all categorical fields and sequences):
  0 = padding (sequences only), 1 = out-of-vocabulary, 2.. = values seen in train.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

PAD_INDEX = 0
OOV_INDEX = 1


class DataError(ValueError):
    """Bad input data. The message names the file, column and offending value."""


@dataclass(frozen=True)
class CatField:
    name: str
    vocab_size: int  # including PAD and OOV rows


@dataclass(frozen=True)
class SeqField:
    name: str
    item_field: str  # the categorical field whose vocabulary (and embedding table) it shares


@dataclass(frozen=True)
class FeatureSpec:
    scenario_names: tuple[str, ...]  # K, in scenario-index order
    cat_fields: tuple[CatField, ...]  # columns of EncodedSplit.cat, in order
    num_fields: tuple[str, ...]  # columns of EncodedSplit.num, in order
    seq_fields: tuple[SeqField, ...]  # channels of EncodedSplit.seq, in order
    seq_len: int  # L

    @property
    def num_scenarios(self) -> int:
        return len(self.scenario_names)

    def cat_index(self, name: str) -> int:
        return [f.name for f in self.cat_fields].index(name)

    def to_dict(self) -> dict:
        return {
            "scenario_names": list(self.scenario_names),
            "cat_fields": [{"name": f.name, "vocab_size": f.vocab_size} for f in self.cat_fields],
            "num_fields": list(self.num_fields),
            "seq_fields": [{"name": f.name, "item_field": f.item_field} for f in self.seq_fields],
            "seq_len": self.seq_len,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        return cls(
            scenario_names=tuple(d["scenario_names"]),
            cat_fields=tuple(CatField(f["name"], int(f["vocab_size"])) for f in d["cat_fields"]),
            num_fields=tuple(d["num_fields"]),
            seq_fields=tuple(SeqField(f["name"], f["item_field"]) for f in d["seq_fields"]),
            seq_len=int(d["seq_len"]),
        )


@dataclass
class EncodedSplit:
    """One split as contiguous tensors (N samples). Batching is `split.take(index_tensor)`."""

    scenario: torch.Tensor  # [N] int64 in 0..K-1
    label: torch.Tensor  # [N] float32 in {0,1}
    cat: torch.Tensor  # [N, F_cat] int64
    num: torch.Tensor  # [N, F_num] float32, normalised with train statistics
    seq: torch.Tensor  # [N, F_seq, L] int64, PAD=0, most recent behaviour last (right-aligned)
    seq_mask: torch.Tensor  # [N, L] bool, True where a real behaviour sits
    oracle_prob: torch.Tensor | None = None  # [N] float32, true click probability (simulator only)

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def take(self, index: torch.Tensor) -> "EncodedSplit":
        return EncodedSplit(
            scenario=self.scenario[index],
            label=self.label[index],
            cat=self.cat[index],
            num=self.num[index],
            seq=self.seq[index],
            seq_mask=self.seq_mask[index],
            oracle_prob=None if self.oracle_prob is None else self.oracle_prob[index],
        )

    def to(self, device) -> "EncodedSplit":
        return EncodedSplit(
            **{k: (None if v is None else v.to(device)) for k, v in self.__dict__.items()}
        )


@dataclass
class MultiScenarioData:
    name: str  # the DATASET string it was loaded from, e.g. "synthetic-countries"
    kind: str  # "synthetic" | "taobao" | "byo"
    spec: FeatureSpec
    train: EncodedSplit
    valid: EncodedSplit
    test: EncodedSplit
    # Human-facing description: title, size, caveats, provenance; JSON-serialisable.
    info: dict = field(default_factory=dict)
    # Simulator only: the planted K x K scenario-similarity matrix (rows/cols in scenario order).
    true_similarity: np.ndarray | None = None
    # Name of the categorical field used for the data-derived scenario similarity
    # (overlap of clicked-category distributions); None if the source has no such field.
    category_field: str | None = None
    # What one scenario is called in this data, (singular, plural): pages, captions and CSV
    # headers use it ("country"/"countries", "city level"/"city levels", a schema's own noun).
    scenario_noun: tuple[str, str] = ("scenario", "scenarios")
