"""Datasets: every source ends as a `MultiScenarioData` (see `types.py`).

    load_dataset("synthetic-countries", seed=0, size="small")
    load_dataset("taobao-sample")
    load_dataset("taobao-raw:/path/to/tianchi_tables", cache_dir="...")
    load_dataset("csv:my_log/schema.yaml")
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from saml_core.data.types import MultiScenarioData

# Re-exported from types.py on first use: types.py imports torch, and naming a dataset (the
# registry, the dashboard's badge) must not.
_TYPES = ("OOV_INDEX", "PAD_INDEX", "CatField", "DataError", "EncodedSplit", "FeatureSpec", "MultiScenarioData",
          "SeqField")


def __getattr__(name: str):
    if name == "registry":  # the dataset registry, published under this name (`dataset_registry.py`)
        from saml_core.data import dataset_registry

        return dataset_registry
    if name in _TYPES:
        from saml_core.data import types

        return getattr(types, name)
    raise AttributeError(f"module 'saml_core.data' has no attribute {name!r}")


def load_dataset(name: str, *, seed: int = 0, **options) -> MultiScenarioData:
    """Load a dataset by its DATASET string (`dataset_registry.py`: the sources and their options).

    seed: the data seed (simulated data, random splits; sources with a fixed split ignore it).
    options: the source's own options, e.g. size="small" (simulator), seq_len=L, cache_dir=DIR
        (taobao-raw); an option a source does not have is a DataError naming it.
    """
    from saml_core.data import dataset_registry

    return dataset_registry.load(name, seed=seed, **options)


def describe_dataset(name: str, *, seed: int = 0, **options) -> dict:
    """Per-scenario samples, positives, CTR and traffic share per split (+ oracle AUC if known)."""
    from saml_core.data.stats import summary

    return summary(load_dataset(name, seed=seed, **options))
