"""A declared schema of a multi-scenario click log, and the raw (not yet encoded) table.

Every source turns its files into a `RawTable` that follows a `Schema`; the encoder
(`encoder.py`) then fits vocabularies and statistics on the train table only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SeqColumn:
    """A behaviour-sequence field. It shares the vocabulary of the categorical `item_field`."""

    name: str
    item_field: str
    sep: str = "|"  # only used when the sequence is stored as a joined string (CSV)


@dataclass(frozen=True)
class Schema:
    scenario: str  # column holding the scenario of each sample
    label: str  # 0/1 click column
    categorical: tuple[str, ...]
    numeric: tuple[str, ...] = ()
    sequences: tuple[SeqColumn, ...] = ()
    day: str | None = None  # day / time column used for splitting
    # Ordered scenario values (as they appear in the column). None: sorted train values.
    scenario_values: tuple | None = None
    # Display names for the scenarios, same order; None: str(value).
    scenario_names: tuple[str, ...] | None = None

    def __post_init__(self):
        for s in self.sequences:
            if s.item_field not in self.categorical:
                raise ValueError(
                    f"sequence '{s.name}' shares the vocabulary of '{s.item_field}', "
                    "which is not a categorical field"
                )

    @property
    def columns(self) -> list[str]:
        cols = [self.scenario, self.label, *self.categorical, *self.numeric]
        return cols + ([self.day] if self.day else [])


@dataclass
class RawTable:
    """Samples before encoding.

    frame: one row per sample with the scalar columns of the schema.
    seqs: sequence name -> [N, W] array of raw values, right-aligned (most recent LAST);
          positions left of a row's length are ignored.
    seq_lengths: [N] number of real behaviours per row (shared by all sequence fields).
    oracle_prob: [N] true click probability (simulator only).
    """

    frame: pd.DataFrame
    seqs: dict[str, np.ndarray] = field(default_factory=dict)
    seq_lengths: np.ndarray | None = None
    oracle_prob: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, rows: np.ndarray) -> "RawTable":
        """rows: boolean mask or integer index."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return RawTable(
            frame=self.frame.iloc[rows].reset_index(drop=True),
            seqs={k: v[rows] for k, v in self.seqs.items()},
            seq_lengths=None if self.seq_lengths is None else self.seq_lengths[rows],
            oracle_prob=None if self.oracle_prob is None else self.oracle_prob[rows],
        )
