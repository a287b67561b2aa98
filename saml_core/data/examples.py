"""Write a simulated log as a plain CSV in the bring-your-own format (datasets/byo_example/)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from saml_core.data import synthetic

EXAMPLE_SCHEMA = """\
# Bring-your-own schema (format: docs/DATA.md). Paths are relative to this file.
title: Example log (simulated countries, CSV)
data: log.csv
scenario: country
scenarios: [RU, BR, ES, US, FR, PL, NL, CL, UA, Others]
scenario_noun: [country, countries]
label: click
categorical: [user_id, item_id, category, brand, shop, price_bucket, age_group, gender, hour, device]
numeric: [price, user_activity]
sequences:
  - {column: hist_item, item_field: item_id, sep: "|", order: oldest_first}
  - {column: hist_category, item_field: category, sep: "|", order: oldest_first}
category_field: category
split: {column: day, test: last, valid: last}
seq_len: 10
"""


def _join(arr: np.ndarray, lengths: np.ndarray, keep: int) -> pd.Series:
    """[N, W] right-aligned ids -> 'a|b|c' of the last min(len, keep) items (oldest first)."""
    w = arr.shape[1]
    tail = pd.DataFrame(arr[:, w - keep:]).astype(str)
    tail = tail.where(np.arange(keep)[None, :] >= (keep - np.minimum(lengths, keep))[:, None], "")
    return tail.agg("|".join, axis=1).str.strip("|")


def write_synthetic_csv(folder: str | Path, n_samples: int = 8000, seed: int = 7,
                        keep: int = 10) -> Path:
    """Simulate `n_samples` impressions and write log.csv + schema.yaml into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table, _ = synthetic.generate(n_samples, seed)
    df = table.frame.copy()
    df["price"] = df["price"].round(2)
    df["user_activity"] = df["user_activity"].round(3)
    df["hist_item"] = _join(table.seqs["hist_item"], table.seq_lengths, keep)
    df["hist_category"] = _join(table.seqs["hist_category"], table.seq_lengths, keep)
    df = df.sort_values("day", kind="stable").reset_index(drop=True)
    df.to_csv(folder / "log.csv", index=False)
    (folder / "schema.yaml").write_text(EXAMPLE_SCHEMA, encoding="utf-8")
    return folder / "schema.yaml"
