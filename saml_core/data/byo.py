"""`csv:SCHEMA_FILE`: bring your own click log (CSV or Parquet) described by a YAML/JSON schema.

The schema format is documented in docs/DATA.md; datasets/byo_example/ ships a working example.
Every mismatch raises DataError naming the file, the column and the offending value; "row N"
is the 0-based data row (the CSV header is not counted).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from saml_core.data.build import encode_splits
from saml_core.data.schema import RawTable, Schema, SeqColumn
from saml_core.data.types import DataError, MultiScenarioData

TOP_KEYS = {"data", "scenario", "scenarios", "label", "categorical", "numeric", "sequences",
            "split", "seq_len", "title", "description", "category_field"}
SEQ_KEYS = {"column", "item_field", "sep", "order"}
SPLIT_KEYS = {"column", "test", "valid"}
OTHER_SEPARATORS = (",", ";", "|", "^", "\t", "#")
DEFAULT_SEQ_LEN = 20
NA_TOKEN = "<NA>"  # a missing categorical value is a value of its own


# ---- schema file ------------------------------------------------------------------------
def _fail(path, msg: str) -> DataError:
    return DataError(f"{path}: {msg}")


def _str_list(spec: dict, key: str, path) -> list[str]:
    value = spec.get(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(path, f"'{key}' must be a list of column names, got {value!r}")
    return value


def read_schema_file(path: str | Path) -> dict:
    """Parse and validate the schema file; returns a normalised dict."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "schema file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        spec = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise _fail(path, f"cannot parse the schema file: {str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise _fail(path, f"the schema must be a mapping of keys, got {type(spec).__name__}")
    unknown = sorted(set(spec) - TOP_KEYS)
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(TOP_KEYS))}")
    for key in ("data", "scenario", "label"):
        if not spec.get(key):
            raise _fail(path, f"required key '{key}' is missing")
    files = spec["data"] if isinstance(spec["data"], list) else [spec["data"]]
    if not files or not all(isinstance(f, str) and f for f in files):
        raise _fail(path, f"'data' must be a file name or a list of file names, got {spec['data']!r}")
    for key in ("scenario", "label"):
        if not isinstance(spec[key], str):
            raise _fail(path, f"'{key}' must be a column name, got {spec[key]!r}")
    categorical = _str_list(spec, "categorical", path)
    numeric = _str_list(spec, "numeric", path)

    sequences = []
    for i, s in enumerate(spec.get("sequences") or []):
        if not isinstance(s, dict) or not s.get("column") or not s.get("item_field"):
            raise _fail(path, f"sequences[{i}] needs 'column' and 'item_field', got {s!r}")
        bad = sorted(set(s) - SEQ_KEYS)
        if bad:
            raise _fail(path, f"sequences[{i}]: unknown key(s) {', '.join(bad)}; valid: {', '.join(sorted(SEQ_KEYS))}")
        if s["item_field"] not in categorical:
            raise _fail(path, f"sequences[{i}] ('{s['column']}'): item_field '{s['item_field']}' "
                        "must be one of the categorical columns")
        order = s.get("order", "oldest_first")
        if order not in ("oldest_first", "newest_first"):
            raise _fail(path, f"sequences[{i}]: order must be oldest_first or newest_first, got {order!r}")
        sep = s.get("sep", "|")
        if not isinstance(sep, str) or not sep:
            raise _fail(path, f"sequences[{i}]: 'sep' must be a non-empty string, got {sep!r}")
        sequences.append({"column": s["column"], "item_field": s["item_field"], "sep": sep, "order": order})

    split = spec.get("split")
    if not isinstance(split, dict) or not split.get("column"):
        raise _fail(path, "'split' must give at least 'column' (the day/time column), "
                    "e.g. split: {column: day, test: last, valid: last}")
    bad = sorted(set(split) - SPLIT_KEYS)
    if bad:
        raise _fail(path, f"split: unknown key(s) {', '.join(bad)}; valid: {', '.join(sorted(SPLIT_KEYS))}")
    split = {"column": split["column"], "test": _plain(split.get("test", "last")),
             "valid": _plain(split.get("valid", "last"))}
    _check_rule(split["test"], "test", path, allow_fraction=False)
    _check_rule(split["valid"], "valid", path, allow_fraction=True)

    scenarios = spec.get("scenarios")
    if scenarios is not None:
        if not isinstance(scenarios, list) or not scenarios:
            raise _fail(path, f"'scenarios' must be a non-empty list, got {scenarios!r}")
        scenarios = [str(v) for v in scenarios]
        if len(set(scenarios)) != len(scenarios):
            raise _fail(path, f"'scenarios' lists a value twice: {scenarios}")
    seq_len = spec.get("seq_len", DEFAULT_SEQ_LEN)
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1:
        raise _fail(path, f"'seq_len' must be a positive integer, got {seq_len!r}")
    category_field = spec.get("category_field")
    if category_field is not None and category_field not in categorical:
        raise _fail(path, f"'category_field' {category_field!r} must be one of the categorical columns")
    return {
        "path": path,
        "files": [(path.parent / f) for f in files],
        "scenario": spec["scenario"],
        "scenarios": scenarios,
        "label": spec["label"],
        "categorical": categorical,
        "numeric": numeric,
        "sequences": sequences,
        "split": split,
        "seq_len": seq_len,
        "title": spec.get("title"),
        "description": spec.get("description"),
        "category_field": category_field,
    }


def _plain(value):
    """YAML turns 2017-05-13 into a date: compare (and report) it as the ISO text instead."""
    import datetime

    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _check_rule(rule, which: str, path, allow_fraction: bool) -> None:
    """test/valid: "last" | {"values": [...]} | {"from": v} | (valid only) {"fraction": f}."""
    if rule == "last":
        return
    if isinstance(rule, dict) and len(rule) == 1:
        (key, value), = rule.items()
        if key == "values" and isinstance(value, list) and value:
            return
        if key == "from" and value is not None:
            return
        if key == "fraction" and allow_fraction and isinstance(value, (int, float)) and 0 < value < 1:
            return
    options = "last, {values: [...]}, {from: VALUE}" + (", {fraction: 0.1}" if allow_fraction else "")
    raise _fail(path, f"split.{which}: unsupported rule {rule!r}; use one of: {options}")


# ---- data files -------------------------------------------------------------------------
def _read_file(path: Path, columns: list[str], text_cols: set[str],
               list_seps: dict[str, str] | None = None) -> pd.DataFrame:
    """list_seps: sequence column -> separator; a Parquet list column is joined with it."""
    if not path.is_file():
        raise _fail(path, "data file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.compute as pc
            import pyarrow.parquet as pq

            have = pq.read_schema(path).names
            missing = [c for c in columns if c not in have]
            if missing:
                raise _fail(path, f"missing column(s) {', '.join(repr(c) for c in missing)}; "
                            f"the file has: {', '.join(have)}")
            table = pq.read_table(path, columns=columns)
            for c, sep in (list_seps or {}).items():
                kind = table.schema.field(c).type
                if pa.types.is_list(kind) or pa.types.is_large_list(kind):
                    joined = pc.binary_join(pc.cast(table.column(c), pa.list_(pa.string())), sep)
                    table = table.set_column(table.schema.get_field_index(c), c, joined)
            df = table.to_pandas()
        elif suffix in (".csv", ".tsv", ".txt") or suffix == ".gz":
            head = pd.read_csv(path, nrows=0, sep="\t" if suffix == ".tsv" else ",")
            have = list(head.columns)
            missing = [c for c in columns if c not in have]
            if missing:
                raise _fail(path, f"missing column(s) {', '.join(repr(c) for c in missing)}; "
                            f"the file has: {', '.join(have)}")
            df = pd.read_csv(path, usecols=columns, sep="\t" if suffix == ".tsv" else ",",
                             dtype={c: str for c in text_cols}, keep_default_na=True)
        else:
            raise _fail(path, f"unsupported data file type {suffix!r}; use .csv, .tsv or .parquet")
    except DataError:
        raise
    except Exception as exc:  # parser errors of any kind: name the file, keep it to one line
        raise _fail(path, f"cannot read the data file: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    for c in text_cols:  # Parquet (or numbers) -> text, so ids compare equal across columns
        df[c] = df[c].astype("string").fillna(NA_TOKEN).astype(object)
    return df


def _show(value) -> str:
    """repr of a cell without numpy's type wrapper (np.int64(2) -> 2)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_label(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    nan = num.isna().to_numpy()
    if nan.any():
        row = int(np.flatnonzero(nan)[0])
        value = raw.iloc[row]
        what = "is empty (NaN)" if pd.isna(value) else f"has the non-numeric value {_show(value)}"
        raise _fail(path, f"label column '{col}' {what} at row {row}; labels must be 0 or 1")
    bad = ~num.isin([0, 1]).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _fail(path, f"label column '{col}' has the non-binary value {_show(raw.iloc[row])} at row {row} "
                    f"(values seen: {[v.item() for v in np.sort(pd.unique(num))[:10]]}); labels must be 0 or 1")
    return num.to_numpy(dtype=np.int8)


def _check_numeric(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    bad = (num.isna() & raw.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _fail(path, f"numeric column '{col}' has the non-numeric value {_show(raw.iloc[row])} at row {row}")
    return num.to_numpy(dtype=np.float64)


def parse_sequence_column(col: pd.Series, sep: str, order: str, path, name: str
                          ) -> tuple[np.ndarray, np.ndarray]:
    """'a|b|c' strings -> ([N, W] object array right-aligned (most recent last), [N] lengths)."""
    text = col.astype(object).where(col.notna() & (col.astype(str) != NA_TOKEN), "")
    text = pd.Series(text, dtype=object).astype(str).str.strip()
    for other in OTHER_SEPARATORS:
        if other == sep:
            continue
        hit = text.str.contains(other, regex=False).to_numpy()
        if hit.any():
            row = int(np.flatnonzero(hit)[0])
            raise _fail(path, f"sequence column '{name}' row {row}: value {text.iloc[row][:60]!r} contains "
                        f"{other!r}, but the schema declares the separator {sep!r}")
    parts = text.str.split(sep, regex=False, expand=True)
    if parts.shape[1] == 0:
        return np.empty((len(col), 0), dtype=object), np.zeros(len(col), dtype=np.int64)
    left = parts.to_numpy(dtype=object)  # [N, W] left-aligned, None past the end
    missing = pd.isna(left) | (left == "")
    lengths = (~missing).sum(axis=1)
    hole = (missing & (np.arange(left.shape[1])[None, :] < lengths[:, None])).any(axis=1)
    if hole.any():  # an empty item inside a row, e.g. "3||5"
        row = int(np.flatnonzero(hole)[0])
        raise _fail(path, f"sequence column '{name}' row {row}: empty item in "
                    f"{text.iloc[row][:60]!r} (separator {sep!r})")
    W = left.shape[1]
    cols = np.arange(W)[None, :]
    if order == "newest_first":  # reverse the real items of each row
        src = np.where(cols < lengths[:, None], lengths[:, None] - 1 - cols, cols)
        left = np.take_along_axis(left, src, axis=1)
    src = cols - (W - lengths)[:, None]  # right-align: column c takes item c - (W - len)
    right = np.take_along_axis(left, np.clip(src, 0, W - 1), axis=1)
    right[src < 0] = None
    return right, lengths.astype(np.int64)


def _read_all(cfg: dict) -> RawTable:
    seq_cols = [s["column"] for s in cfg["sequences"]]
    split_col = cfg["split"]["column"]
    columns = list(dict.fromkeys(
        [cfg["scenario"], cfg["label"], *cfg["categorical"], *cfg["numeric"], *seq_cols, split_col]
    ))
    text_cols = {cfg["scenario"], *cfg["categorical"], *seq_cols}
    frames, seqs, lengths = [], {c: [] for c in seq_cols}, []
    for path in cfg["files"]:
        df = _read_file(path, columns, text_cols, {s["column"]: s["sep"] for s in cfg["sequences"]})
        df[cfg["label"]] = _check_label(df, cfg["label"], path)
        for c in cfg["numeric"]:
            df[c] = _check_numeric(df, c, path)
        if df[split_col].isna().any():
            row = int(np.flatnonzero(df[split_col].isna().to_numpy())[0])
            raise _fail(path, f"split column '{split_col}' is empty at row {row}")
        if cfg["scenarios"] is not None:
            known = df[cfg["scenario"]].isin(cfg["scenarios"]).to_numpy()
            if not known.all():
                row = int(np.flatnonzero(~known)[0])
                value = df[cfg["scenario"]].iloc[row]
                raise _fail(path, f"column '{cfg['scenario']}' has the scenario value {value!r} at row {row}, which is "
                            f"not in the schema's scenarios {cfg['scenarios']}")
        file_len = None
        for s in cfg["sequences"]:
            arr, ln = parse_sequence_column(df[s["column"]], s["sep"], s["order"], path, s["column"])
            if file_len is not None and not np.array_equal(ln, file_len[1]):
                row = int(np.flatnonzero(ln != file_len[1])[0])
                raise _fail(path, f"sequence columns '{file_len[0]}' and '{s['column']}' have different "
                            f"lengths at row {row} ({file_len[1][row]} vs {ln[row]})")
            file_len = (s["column"], ln)
            seqs[s["column"]].append(arr)
        if file_len is not None:
            lengths.append(file_len[1])
        frames.append(df.drop(columns=seq_cols))
    frame = pd.concat(frames, ignore_index=True)
    seq_arrays = {}
    for c, parts in seqs.items():
        width = max(p.shape[1] for p in parts)
        seq_arrays[c] = np.concatenate(  # right-align files of different widths
            [np.concatenate([np.full((len(p), width - p.shape[1]), None, dtype=object), p], axis=1) for p in parts]
        )
    return RawTable(frame=frame, seqs=seq_arrays,
                    seq_lengths=np.concatenate(lengths) if lengths else None)


def _rule_mask(values: pd.Series, rule, rng: np.random.Generator | None = None) -> np.ndarray:
    if rule == "last":
        return (values == values.max()).to_numpy()
    (key, v), = rule.items()
    if key == "values":
        return values.isin(v).to_numpy()
    if key == "from":
        return (values >= v).to_numpy()
    return rng.random(len(values)) < v  # fraction


def load_byo(schema_file: str | Path, *, name: str | None = None, seq_len: int | None = None
             ) -> MultiScenarioData:
    cfg = read_schema_file(schema_file)
    path = cfg["path"]
    table = _read_all(cfg)
    split_values = table.frame[cfg["split"]["column"]]
    try:
        is_test = _rule_mask(split_values, cfg["split"]["test"])
        rest = np.flatnonzero(~is_test)
        is_valid_rest = _rule_mask(split_values.iloc[rest].reset_index(drop=True), cfg["split"]["valid"],
                                   np.random.default_rng(0))
    except TypeError as exc:
        raise _fail(path, f"split column '{cfg['split']['column']}': the rule cannot compare its values ({exc})") from None
    is_valid = np.zeros(len(table), dtype=bool)
    is_valid[rest[is_valid_rest]] = True
    is_train = ~is_test & ~is_valid
    files = ", ".join(str(f.name) for f in cfg["files"])
    for split_name, m in (("train", is_train), ("validation", is_valid), ("test", is_test)):
        if not m.any():
            raise _fail(path, f"split rule {cfg['split']} on column '{cfg['split']['column']}' leaves the "
                        f"{split_name} split empty (data: {files})")
    schema = Schema(
        scenario=cfg["scenario"],
        label=cfg["label"],
        categorical=tuple(cfg["categorical"]),
        numeric=tuple(cfg["numeric"]),
        sequences=tuple(SeqColumn(s["column"], s["item_field"], s["sep"]) for s in cfg["sequences"]),
        day=cfg["split"]["column"],
        scenario_values=tuple(cfg["scenarios"]) if cfg["scenarios"] else None,
        scenario_names=tuple(cfg["scenarios"]) if cfg["scenarios"] else None,
    )
    info = {
        "title": cfg["title"] or f"Your log: {files}",
        "description": cfg["description"],
        "simulated": False,
        "samples": len(table),
        "schema_file": path.name,
        "data_files": [f.name for f in cfg["files"]],
        "split": cfg["split"],
        "caveats": [],
    }
    category_field = cfg["category_field"] or next(
        (c for c in cfg["categorical"] if "cat" in c.lower()), None)
    return encode_splits(
        name=name or f"csv:{schema_file}",
        kind="byo",
        schema=schema,
        train=table.take(is_train),
        valid=table.take(is_valid),
        test=table.take(is_test),
        seq_len=seq_len or cfg["seq_len"],
        source=files,
        info=info,
        category_field=category_field,
    )
