"""`csv:SCHEMA_FILE`: bring your own click log (CSV/TSV, gzipped or not, or Parquet) described
by a YAML/JSON schema.

The schema format is documented in docs/DATA.md; datasets/byo_example/ ships a working example.
Every mismatch raises a one-line DataError naming the file, the column and the offending value;
"row N" is the 0-based data row (the CSV header is not counted), "line N" the line of the file.
Input that is legal but probably a mistake (label leakage, scenario names differing only by case
or spacing, ids written two ways) is said in `info["warnings"]`, which `data describe`, the
experiment's log and the dashboard show.

The package: `byo_schema.py` (the schema file), `byo_read.py` (the data files),
`byo_split.py` (the splits); `load_byo` here puts them together.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from saml_core.data.build import encode_splits
from saml_core.data.checks import id_format_warnings, leakage_warnings, scenario_spelling_warnings
from saml_core.data.schema import Schema, SeqColumn
from saml_core.data.types import MAX_SCENARIOS, MultiScenarioData, check_seq_len
from saml_core.data.byo.byo_schema import SPLIT_NAMES, TEST, TRAIN, VALID, _fail, _plain, read_schema_file
from saml_core.data.byo.byo_read import _read_all
from saml_core.data.byo.byo_split import _describe_split, assign_splits


def load_byo(schema_file: str | Path, *, name: str | None = None, seq_len: int | None = None,
             seed: int = 0) -> MultiScenarioData:
    """seed: the data seed of random/group splits and of validation fractions (same seed, same
    split)."""
    cfg = read_schema_file(schema_file)
    path = cfg["path"]
    seq_len = cfg["seq_len"] if seq_len is None else check_seq_len(seq_len, f"{path}: seq_len")
    table, part = _read_all(cfg, seq_len)
    _check_whole_log(cfg, table.frame)
    warnings = [*scenario_spelling_warnings(table.frame[cfg["scenario"]], cfg["scenario_noun"]),
                *id_format_warnings(table, cfg["categorical"], {s["column"]: s["item_field"] for s in cfg["sequences"]})]
    split = assign_splits(cfg, table.frame, part, seed)
    files = ", ".join(str(f.name) for f in cfg["files"])
    for code, split_name in SPLIT_NAMES.items():
        if not (split == code).any():
            raise _fail(path, f"{_describe_split(cfg['split'])} leaves the {split_name} split empty (data: {files})")
    time_col = cfg["split"]["column"] if cfg["split"]["method"] == "time" else None
    schema = Schema(
        scenario=cfg["scenario"],
        label=cfg["label"],
        categorical=tuple(cfg["categorical"]),
        numeric=tuple(cfg["numeric"]),
        sequences=tuple(SeqColumn(s["column"], s["item_field"], s["sep"]) for s in cfg["sequences"]),
        day=time_col,
        scenario_values=tuple(cfg["scenarios"]) if cfg["scenarios"] else None,
        scenario_names=tuple(cfg["scenarios"]) if cfg["scenarios"] else None,
    )
    info = {
        "title": cfg["title"] or f"Your log: {files}",
        "description": cfg["description"],
        "simulated": False,
        "samples": len(table),
        "seed": seed,
        # does another data seed give another split? (random/group/fraction rules: yes; a time
        # column or given files: no, and several data seeds would repeat the same data)
        "seed_dependent": bool((assign_splits(cfg, table.frame, part, seed + 1) != split).any()),
        "schema_file": path.name,
        "data_files": [f.name for f in cfg["files"]],
        "split": _plain(cfg["split"]),
        "min_positives": cfg["min_positives"],
        "caveats": [],
    }
    category_field = cfg["category_field"] or next(
        (c for c in cfg["categorical"] if "cat" in c.lower()), None)
    data = encode_splits(
        name=name or f"csv:{schema_file}",
        schema=schema,
        train=table.take(split == TRAIN),
        valid=table.take(split == VALID),
        test=table.take(split == TEST),
        seq_len=seq_len,
        source=files,
        info=info,
        category_field=category_field,
        scenario_noun=cfg["scenario_noun"],
        min_positives=cfg["min_positives"],
        drop_scenarios=cfg["drop_scenarios"],
    )
    data.info["warnings"] = warnings + leakage_warnings(data)
    return data


def _check_whole_log(cfg: dict, frame: pd.DataFrame) -> None:
    """What the whole log must have before any split: both label values (one alone gives nothing
    to learn or to measure, and the logistic regression baseline a traceback) and a number of
    scenarios a model can have a branch for."""
    where = ", ".join(str(f) for f in cfg["files"])
    label = frame[cfg["label"]].to_numpy()
    if len(label) and label.min() == label.max():
        raise _fail(where, f"label column '{cfg['label']}' is {int(label[0])} in all {len(label):,} rows: a click "
                    "model needs clicks (1) and non-clicks (0)")
    n = frame[cfg["scenario"]].nunique()
    if n > MAX_SCENARIOS:
        raise _fail(where, f"column '{cfg['scenario']}' has {n:,} distinct scenarios; at most {MAX_SCENARIOS} are "
                    "supported (SAML trains a branch per scenario): is it the scenario column?")
