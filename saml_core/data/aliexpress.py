"""`aliexpress:DIR`: the AliExpress search logs (Tianchi dataset 74690), countries as scenarios.

DIR holds one folder per country, in the per-country layout of the published benchmarks
(easezyc/Multitask-Recommendation-Library turns the official Tianchi zips into it with its
`data/preprocess.py` and shares the result; torch-rechub reads the same columns):

    DIR/AliExpress_NL/train.csv   DIR/AliExpress_NL/test.csv
    DIR/AliExpress_ES/train.csv   DIR/AliExpress_ES/test.csv   ... (any of NL, ES, FR, US, RU)

Each CSV has the header `search_id, categorical_1..16, numerical_1..63, click, conversion`.
Scenarios = the country folders present (name = the code after `AliExpress_`, in alphabetical
order). Label = click; categorical_1..16 are categorical ids, numerical_1..63 numeric;
search_id (the search result page) and conversion are not features, as in the published runs.
No behaviour sequences.

Splits: test = the country's test.csv (Tianchi split the logs in time); validation = a seeded
cut of VALID_FRACTION of the search pages (search_id) of the country's train.csv, so the items of
one result page stay together; train = the rest. The cut depends on `seed` only, not on row order.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from saml_core.data.flatlog import Layout, Source, build_cache, encode, read_groups, store_for
from saml_core.data.schema import RawTable, Schema
from saml_core.data.types import DataError, MultiScenarioData

COUNTRY_DIR = re.compile(r"^AliExpress_([A-Za-z]{2,3})$")
CATEGORICAL = tuple(f"categorical_{i}" for i in range(1, 17))
NUMERIC = tuple(f"numerical_{i}" for i in range(1, 64))
LAYOUT = Layout(categorical=CATEGORICAL, numeric=NUMERIC, label="click", ids=("search_id",))
VALID_FRACTION = 0.10
SCENARIO_NOUN = ("country", "countries")
_GOLDEN = 0x9E3779B97F4A7C15


def countries(directory: str | Path) -> list[tuple[str, Path]]:
    """(code, folder) of every AliExpress_<code> folder in DIR, sorted by code."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a folder (aliexpress:DIR needs the folder that holds "
                        "AliExpress_NL/, AliExpress_ES/, ...)")
    found = {}
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        m = COUNTRY_DIR.match(sub.name)
        if not m:
            continue
        code = m.group(1).upper()
        if code in found:
            raise DataError(f"{directory}: two folders for the country {code}: {found[code].name}, {sub.name}")
        missing = [f for f in ("train.csv", "test.csv") if not (sub / f).is_file()]
        if missing:
            raise DataError(f"{sub}: missing {' and '.join(missing)} (each country folder needs "
                            "train.csv and test.csv)")
        found[code] = sub
    if not found:
        raise DataError(f"{directory}: no AliExpress_<country> folder with train.csv and test.csv "
                        "(expected e.g. AliExpress_NL/train.csv)")
    if len(found) < 2:
        (code,) = found
        raise DataError(f"SAML compares scenarios: {directory} has one country ({code}); "
                        "add at least one more AliExpress_<country> folder")
    return sorted(found.items())


def valid_mask(search_id: np.ndarray, seed: int, fraction: float = VALID_FRACTION) -> np.ndarray:
    """True for the rows whose search page falls in the validation cut (splitmix64 of id + seed)."""
    x = search_id.astype(np.uint64) + np.uint64((int(seed) * _GOLDEN) % 2**64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return x < np.uint64(int(fraction * 2**64))


def build(directory: str | Path, cache_dir: str | Path | None = None) -> tuple[Path, dict]:
    """Build (or reuse) the parquet cache of DIR; returns its folder and manifest."""
    directory = Path(directory)
    sources = [Source(f"{code}-{which}", folder / f"{which}.csv")
               for code, folder in countries(directory) for which in ("train", "test")]
    return build_cache("aliexpress", directory, sources, LAYOUT, cache_dir)


def load_aliexpress(directory: str | Path, *, name: str | None = None, seq_len: int | None = None,
                    cache_dir: str | Path | None = None, seed: int = 0, mapped: bool = True) -> MultiScenarioData:
    """Load DIR (see the module docstring). seq_len is accepted for the common signature and
    ignored: there are no behaviour sequences (the spec has none and L = 1). mapped: the encoded
    splits are memory-mapped files of the cache (one store per seed: the validation cut), else
    tensors in memory (`flatlog.encode`)."""
    directory = Path(directory)
    codes = [c for c, _ in countries(directory)]
    cache, manifest = build(directory, cache_dir)
    schema = Schema(scenario="country", label="click", categorical=CATEGORICAL, numeric=NUMERIC,
                    scenario_values=tuple(range(len(codes))), scenario_names=tuple(codes))

    def parts():
        for k, code in enumerate(codes):
            for which in ("train", "test"):
                for frame in read_groups(cache, f"{code}-{which}"):
                    frame["country"] = k
                    if which == "test":
                        split = np.full(len(frame), 2, dtype=np.int64)
                    else:
                        split = valid_mask(frame["search_id"].to_numpy(), seed).astype(np.int64)
                    yield RawTable(frame=frame), split

    spec, (train, valid, test) = encode(schema, parts, str(directory),
                                        store_for(cache, f"seed{seed}") if mapped else None)
    files = manifest["files"]
    info = {
        "title": f"AliExpress search logs (Tianchi 74690), {len(codes)} countries",
        "simulated": False,
        "source_folder": directory.name,
        "cache": str(cache),
        "seed": seed,
        "split": (f"test = each country's test.csv (later in time); validation = {VALID_FRACTION:.0%} "
                  f"of the search pages (search_id) of each train.csv, seeded cut (seed {seed}); "
                  "train = the rest"),
        "files": {k: {"file": f"{k.split('-')[0]}/{v['file']}", "rows": v["rows"],
                      "clicks": v["positives"]} for k, v in files.items()},
        "caveats": [
            "Published AliExpress numbers train one model per country (with click and "
            "conversion tasks); here one model sees every country's clicks: not the same setting.",
            "Whether a categorical id means the same in every country is not documented; the "
            "models here share one embedding table across countries.",
            "No behaviour sequences: sequence-based parts of the models (attention) are unused.",
            "search_id and conversion are not used as features.",
        ],
        "provenance": "Alibaba Tianchi dataset 74690 (AliExpress Searching System Dataset), per-country "
                      "CSVs as produced by easezyc/Multitask-Recommendation-Library data/preprocess.py",
    }
    return MultiScenarioData(name=name or f"aliexpress:{directory}", spec=spec,
                             train=train, valid=valid, test=test, info=info,
                             category_field=None, scenario_noun=SCENARIO_NOUN)

