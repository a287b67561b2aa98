"""Published numbers on the public datasets (datasets/anchors/published.csv), to show beside
ours. They come from other code with other settings (per-country models, other embedding sizes,
other splits): context for the size of the numbers, never a like-for-like comparison.
datasets/anchors/README.md says where each number comes from.

    published_anchors("aliexpress:/data/ae")   # or "aliexpress", "aliccp", "taobao-raw:DIR", ...
    -> [{"dataset": "aliexpress", "model": "PLE", "scenario": "NL", "metric": "auc",
         "value": 0.7292, "source": ..., "source_file_or_table": ..., "settings": ..., "note": ...}, ...]

`scenario` is the scenario name as our loader names it ("NL", "domain 2") or "overall".
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

ANCHORS_FILE = Path(__file__).resolve().parents[1] / "datasets" / "anchors" / "published.csv"
COLUMNS = ("dataset", "model", "scenario", "metric", "value", "source", "source_file_or_table",
           "settings", "note")
# dataset kind or the part of a DATASET string before ":" -> the `dataset` value in the file.
# "taobao" is the kind of both taobao-raw and taobao-sample; the published numbers are for the full
# tables, so pass the DATASET string where the two must be told apart ("taobao-sample" has none).
ALIASES = {"aliexpress": "aliexpress", "aliccp": "aliccp", "ali-ccp": "aliccp",
           "taobao-raw": "taobao-raw", "taobao": "taobao-raw"}


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    table = pd.read_csv(ANCHORS_FILE, dtype=str, keep_default_na=False)
    if tuple(table.columns) != COLUMNS:
        raise ValueError(f"{ANCHORS_FILE}: columns {list(table.columns)}, expected {list(COLUMNS)}")
    table["value"] = table["value"].astype(float)
    return table


def dataset_key(dataset_kind_or_name: str) -> str | None:
    """The anchors' dataset for a kind ("aliexpress") or DATASET string ("aliccp:/data"), else None."""
    return ALIASES.get(str(dataset_kind_or_name).split(":", 1)[0].strip().lower())


def published_anchors(dataset_kind_or_name: str) -> list[dict]:
    """Published numbers for this dataset, in file order (model, then scenario); [] if none."""
    key = dataset_key(dataset_kind_or_name)
    if key is None:
        return []
    table = _table()
    return table[table["dataset"] == key].to_dict("records")
