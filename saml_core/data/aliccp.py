"""`aliccp:DIR`: Ali-CCP (Alibaba Click and Conversion Prediction, Tianchi dataset 408), with the
domains of field 301 as scenarios, as the Scenario-Wise-Rec benchmark does.

DIR holds the three processed CSVs of the common layout (torch-rechub's
`examples/ranking/data/ali-ccp/preprocess_ali_ccp.py` writes them from the official Tianchi
files; Scenario-Wise-Rec reads the same layout):

    DIR/ali_ccp_train.csv   DIR/ali_ccp_val.csv   DIR/ali_ccp_test.csv
    (or the same names with a `_sample` suffix: ali_ccp_train_sample.csv, ...)

Header: click, purchase, then the field ids 101, 121, 122, 124, 125, 126, 127, 128, 129, 205,
206, 207, 210, 216, 508, 509, 702, 853, 301, 109_14, 110_14, 127_14, 150_14 (label-encoded
ids) and D109_14, D110_14, D127_14, D150_14, D508, D509, D702, D853 (min-max scaled numbers).

Scenario = field 301 (the values present in the train file, named "domain <value>"; in the
full data 1, 2, 3, which Scenario-Wise-Rec calls domains 0, 1, 2). A domain without a click in
the train file has nothing to learn: it is left out of every split and listed in
`info["dropped_scenarios"]` with its counts, as a `csv:` log does (`build.judge_scenarios`; the
files' test split is the benchmark's and is kept whole, so its size is not judged here). Field 301 is not a feature
(the scenario enters the models as the scenario index). Features: the 22 other id fields
(categorical) and the 8 D-fields (numeric); label = click; purchase is not used. The official
train / validation / test split of the files is kept (validation and test are the two halves of
the official test file).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from saml_core.data.build import judge_scenarios, too_few_scenarios
from saml_core.data.flatlog import Layout, Source, build_cache, encode, read_groups, store_for
from saml_core.data.schema import RawTable, Schema
from saml_core.data.types import DataError, MultiScenarioData

SPLIT_FILES = ("train", "val", "test")  # file stems, in split order
SCENARIO = "301"
CATEGORICAL = ("101", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206", "207",
               "210", "216", "508", "509", "702", "853", "109_14", "110_14", "127_14", "150_14")
NUMERIC = ("D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853")
LAYOUT = Layout(categorical=CATEGORICAL, numeric=NUMERIC, label="click", ids=(SCENARIO,),
                track_values=SCENARIO)
SCENARIO_NOUN = ("domain", "domains")
OFFICIAL_FILES = ("sample_skeleton_train.csv", "common_features_train.csv",
                  "sample_skeleton_test.csv", "common_features_test.csv")


def split_files(directory: str | Path) -> list[Path]:
    """The train, validation and test CSVs in DIR: ali_ccp_{train,val,test}.csv, else the
    `_sample` names; never a mix of the two."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a folder (aliccp:DIR needs the folder that holds "
                        "ali_ccp_train.csv, ali_ccp_val.csv, ali_ccp_test.csv)")
    for suffix in ("", "_sample"):
        paths = [directory / f"ali_ccp_{s}{suffix}.csv" for s in SPLIT_FILES]
        present = [p.is_file() for p in paths]
        if all(present):
            return paths
        if any(present):
            missing = [p.name for p, ok in zip(paths, present) if not ok]
            raise DataError(f"{directory}: missing {', '.join(missing)} (the train, val and test "
                            "files must all be there)")
    hint = ""
    if any((directory / f).is_file() for f in OFFICIAL_FILES):
        hint = ("; the official Tianchi files (sample_skeleton_*.csv, common_features_*.csv) must "
                "first be converted to this layout, see datasets/PUBLIC.md")
    raise DataError(f"{directory}: no ali_ccp_train.csv, ali_ccp_val.csv, ali_ccp_test.csv{hint}")


def build(directory: str | Path, cache_dir: str | Path | None = None) -> tuple[Path, dict]:
    """Build (or reuse) the parquet cache of DIR; returns its folder and manifest."""
    directory = Path(directory)
    sources = [Source(stem, path) for stem, path in zip(SPLIT_FILES, split_files(directory))]
    return build_cache("aliccp", directory, sources, LAYOUT, cache_dir)


def _domain_counts(cache: Path, stem: str, domains: list) -> tuple[np.ndarray, np.ndarray]:
    """([K] rows, [K] clicks) per domain of one cached file: two columns, row group by row group."""
    rows, clicks = np.zeros(len(domains), dtype=np.int64), np.zeros(len(domains), dtype=np.int64)
    index = {d: j for j, d in enumerate(domains)}
    for batch in pq.ParquetFile(cache / f"{stem}.parquet").iter_batches(columns=[SCENARIO, "click"]):
        dom, click = batch.column(0).to_numpy(), batch.column(1).to_numpy().astype(np.int64)
        values, where = np.unique(dom, return_inverse=True)
        at = np.array([index.get(v, -1) for v in values.tolist()])[where]  # distinct values, not rows
        ok = at >= 0
        rows += np.bincount(at[ok], minlength=len(domains))
        clicks += np.bincount(at[ok], weights=click[ok], minlength=len(domains)).astype(np.int64)
    return rows, clicks


def load_aliccp(directory: str | Path, *, name: str | None = None, seq_len: int | None = None,
                cache_dir: str | Path | None = None, seed: int = 0, mapped: bool = True) -> MultiScenarioData:
    """Load DIR (see the module docstring). seq_len and seed are accepted for the common
    signature and ignored: there are no behaviour sequences (L = 1) and the splits are the files'.
    mapped: the encoded splits are memory-mapped files of the cache, else tensors in memory."""
    directory = Path(directory)
    paths = split_files(directory)
    cache, manifest = build(directory, cache_dir)
    files = manifest["files"]
    domains = files["train"]["values"]
    if len(domains) < 2:
        raise DataError(f"SAML compares scenarios: {paths[0]} has one domain (field {SCENARIO} = "
                        f"{domains[0]} in every row); Ali-CCP needs its domains 1, 2, 3")
    for stem, path in zip(SPLIT_FILES[1:], paths[1:]):
        unseen = sorted(set(files[stem]["values"]) - set(domains))
        if unseen:
            raise DataError(f"{path}: column '{SCENARIO}' has the domain value(s) "
                            f"{', '.join(map(str, unseen))}, which the train file "
                            f"{paths[0].name} does not have (its domains: {', '.join(map(str, domains))})")
    names = [f"domain {d}" for d in domains]
    (train_n, train_pos), (test_n, test_pos) = (_domain_counts(cache, stem, domains) for stem in ("train", "test"))
    kept, dropped = judge_scenarios(names, train_n, train_pos, test_n, test_pos, min_positives=0)
    if len(kept) < 2:
        raise too_few_scenarios(str(paths[0]), names, kept, dropped, SCENARIO_NOUN)
    domains = [domains[j] for j in kept]
    schema = Schema(scenario=SCENARIO, label="click", categorical=CATEGORICAL, numeric=NUMERIC,
                    scenario_values=tuple(domains), scenario_names=tuple(f"domain {d}" for d in domains))

    def parts():
        for s, stem in enumerate(SPLIT_FILES):
            for frame in read_groups(cache, stem):
                if dropped:
                    frame = frame[frame[SCENARIO].isin(domains)].reset_index(drop=True)
                yield RawTable(frame=frame), np.full(len(frame), s, dtype=np.int64)

    store = store_for(cache, "all" if not dropped else "domains-" + "-".join(map(str, domains)))
    spec, (train, valid, test) = encode(schema, parts, str(directory), store if mapped else None)
    info = {
        "title": f"Ali-CCP (Tianchi 408), {len(domains)} domains of field 301",
        "simulated": False,
        "source_folder": directory.name,
        "cache": str(cache),
        "split": (f"the files: train {paths[0].name}, validation {paths[1].name}, test {paths[2].name} "
                  "(validation and test: the two halves of the official test file)"),
        "files": {stem: {"file": f["file"], "rows": f["rows"], "clicks": f["positives"],
                         "domains": f["values"]} for stem, f in files.items()},
        "dropped_scenarios": dropped,
        "caveats": [
            "Domain d = field 301 value d; Scenario-Wise-Rec numbers the same domains from 0 "
            "(its domain 0/1/2 = our domain 1/2/3). In the full data domain 2 is under 1% of the rows.",
            "Field 301 is the scenario, not a feature; Scenario-Wise-Rec also feeds it to its models "
            "as an id field.",
            "The preprocessing maps ids seen fewer than 10 times in the official train file to 0 and "
            "min-max scales the D-fields over all splits; we standardise the D-fields again with "
            "train statistics.",
            "Validation and test are a random halving of the official test file, not a time split.",
        ],
        "provenance": "Alibaba Tianchi dataset 408 (Ali-CCP), processed CSVs in the layout of "
                      "torch-rechub / Scenario-Wise-Rec",
    }
    return MultiScenarioData(name=name or f"aliccp:{directory}", spec=spec,
                             train=train, valid=valid, test=test, info=info,
                             category_field=None, scenario_noun=SCENARIO_NOUN)
