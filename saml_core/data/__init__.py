"""Datasets: every source ends as a `MultiScenarioData` (see `types.py`).

    load_dataset("synthetic-countries", seed=0, size="small")
    load_dataset("taobao-sample")
    load_dataset("taobao-raw:/path/to/tianchi_tables", cache_dir="...")
    load_dataset("csv:my_log/schema.yaml")
"""
from __future__ import annotations

from pathlib import Path

from saml_core.data.types import (  # noqa: F401  (re-exported)
    OOV_INDEX,
    PAD_INDEX,
    CatField,
    DataError,
    EncodedSplit,
    FeatureSpec,
    MultiScenarioData,
    SeqField,
)

DATASET_NAMES = ("synthetic-countries", "taobao-sample", "taobao-raw:DIR", "csv:SCHEMA_FILE")


def _unknown(name: str) -> DataError:
    return DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    size: str | None = None,
    cache_dir: str | Path | None = None,
    seq_len: int | None = None,
) -> MultiScenarioData:
    """Load a dataset by its DATASET string.

    seed: simulator seed (other sources are deterministic and ignore it).
    size: simulator preset "small" | "default" | "large"; other sources accept only None.
    cache_dir: where taobao-raw keeps its parquet cache (default: $SAML_CACHE_DIR, else
        ~/.cache/saml_core).
    seq_len: behaviour-sequence length L (default: 30 simulator, 15 Taobao, schema file for csv).
    """
    if not isinstance(name, str) or not name:
        raise _unknown(str(name))
    if name != "synthetic-countries" and size is not None:
        raise DataError(f"{name}: option size={size!r} only applies to synthetic-countries")
    if name == "synthetic-countries":
        from saml_core.data import synthetic

        return synthetic.load(name=name, seed=seed, size=size, seq_len=seq_len)
    if name == "taobao-sample":
        from saml_core.data import taobao

        return taobao.load_sample(name=name, seq_len=seq_len)
    if name.startswith("taobao-raw:"):
        from saml_core.data import taobao_raw

        directory = name.split(":", 1)[1]
        if not directory:
            raise DataError("taobao-raw: give the folder of the raw tables, e.g. taobao-raw:/data/taobao")
        return taobao_raw.load_raw(directory, name=name, cache_dir=cache_dir, seq_len=seq_len)
    if name.startswith("csv:"):
        from saml_core.data import byo

        schema_file = name.split(":", 1)[1]
        if not schema_file:
            raise DataError("csv: give the schema file, e.g. csv:my_log/schema.yaml")
        return byo.load_byo(schema_file, name=name, seq_len=seq_len)
    raise _unknown(name)


def describe_dataset(
    name: str,
    *,
    seed: int = 0,
    size: str | None = None,
    cache_dir: str | Path | None = None,
    seq_len: int | None = None,
) -> dict:
    """Per-scenario samples, positives, CTR and traffic share per split (+ oracle AUC if known)."""
    from saml_core.data.stats import summary

    data = load_dataset(name, seed=seed, size=size, cache_dir=cache_dir, seq_len=seq_len)
    return summary(data)
