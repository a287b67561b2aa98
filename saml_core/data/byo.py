"""`csv:SCHEMA_FILE`: bring your own click log (CSV/TSV, gzipped or not, or Parquet) described
by a YAML/JSON schema.

The schema format is documented in docs/DATA.md; datasets/byo_example/ ships a working example.
Every mismatch raises a one-line DataError naming the file, the column and the offending value;
"row N" is the 0-based data row (the CSV header is not counted), "line N" the line of the file.
Input that is legal but probably a mistake (label leakage, scenario names differing only by case
or spacing, ids written two ways) is said in `info["warnings"]`, which `data describe`, the
experiment's log and the dashboard show.
"""
from __future__ import annotations

import csv
import gzip
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from saml_core.data.build import encode_splits
from saml_core.data.checks import id_format_warnings, leakage_warnings, scenario_spelling_warnings
from saml_core.evaluate import MIN_CLASS
from saml_core.data.schema import RawTable, Schema, SeqColumn
from saml_core.data.types import MAX_SCENARIOS, DataError, MultiScenarioData, check_seq_len

TOP_KEYS = {"data", "scenario", "scenarios", "label", "categorical", "numeric", "sequences",
            "split", "seq_len", "title", "description", "category_field", "min_positives",
            "drop_scenarios", "scenario_noun"}
SEQ_KEYS = {"column", "item_field", "sep", "order"}
SPLIT_KEYS = {"method", "column", "test", "valid", "format"}
SPLIT_METHODS = ("time", "random", "group")
DATA_KEYS = ("train", "valid", "test")
OTHER_SEPARATORS = (",", ";", "|", "^", "\t", "#")  # any occurrence is an error
LIST_LOOKS = (" ", "/")  # an error only when most values contain one and `sep` never occurs
DEFAULT_SEQ_LEN = 20
NA_TOKEN = "<NA>"  # a missing categorical value is a value of its own
# pandas' default missing-value markers, spelled out so the scenario column can use its own list
PANDAS_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
MAX_ABS_NUMERIC = 1e150  # beyond this, x*x overflows float64 when the train std is computed
TRAIN, VALID, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VALID: "validation", TEST: "test"}
MAX_SCHEMA_BYTES = 1 << 20  # a schema is a few dozen lines; more is not a schema
MAX_TEXT = {"title": 300, "description": 10_000}  # characters, for the dashboard's header and help
MAX_MESSAGE = 800  # an error is one line to read, whatever the file holds
SHOWN_COLUMNS = 30  # header names listed in a "missing column" error
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # a line break, tab, NUL, ... in a name


# ---- schema file ------------------------------------------------------------------------
def _fail(path, msg: str) -> DataError:
    text = f"{path}: {msg}"
    if len(text) > MAX_MESSAGE:
        text = f"{text[:MAX_MESSAGE]}... ({len(text):,} characters in all)"
    return DataError(text)


class _Int(int):
    """A YAML integer that remembers how it was written (`0121` stays "0121" as a name)."""

    text: str


class _Float(float):
    text: str


class _SchemaLoader(yaml.SafeLoader):
    """YAML without its surprises in a schema: yes/no/on/off (and NO, Norway's code) and dates
    stay text, and numbers remember their spelling so an unquoted `301` can name a column.
    Anchors and aliases are refused where they occur: a few lines of aliases expand into
    billions of values (and as many characters in an error that shows one)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors (&name) and aliases (*name) are not allowed in a schema file; write "
                "the values out", event.start_mark)
        return super().compose_node(parent, index)


_SchemaLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _number_with_text(kind, build):
    def construct(loader, node):
        value = kind(build(loader, node))
        value.text = node.value
        return value
    return construct


_SchemaLoader.add_constructor("tag:yaml.org,2002:int",
                              _number_with_text(_Int, yaml.SafeLoader.construct_yaml_int))
_SchemaLoader.add_constructor("tag:yaml.org,2002:float",
                              _number_with_text(_Float, yaml.SafeLoader.construct_yaml_float))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _plain(value):
    """Schema values without the YAML wrappers (for comparisons and JSON)."""
    if isinstance(value, _Int):
        return int(value)
    if isinstance(value, _Float):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _text(value, where: str, path, what: str = "column name") -> str:
    """A column name or scenario value as text. Numbers are accepted as written in the file
    (YAML reads `301` as a number; the header says "301"), so quoting is optional."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (_Int, _Float)):
        return value.text
    if _is_number(value):  # JSON numbers
        return str(value)
    raise _fail(path, f"{where}: {_plain(value)!r} is not a {what}; write each {what} as text")


def _str_list(spec: dict, key: str, path) -> list[str]:
    value = spec.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    return [_text(v, key, path) for v in value]


def _parse_text(path: Path, text: str):
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.load(text, Loader=_SchemaLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise _fail(path, "cannot parse the schema file: it is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise _fail(path, f"cannot parse the schema file at line {exc.lineno}, column {exc.colno}: "
                    f"{exc.msg}") from None
    except yaml.MarkedYAMLError as exc:
        mark, ctx = exc.problem_mark, ""
        if exc.context and exc.context_mark is not None:
            ctx = (f" ({exc.context} that starts at line {exc.context_mark.line + 1}, "
                   f"column {exc.context_mark.column + 1})")
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _fail(path, f"cannot parse the schema file{where}: {exc.problem}{ctx}") from None
    except yaml.YAMLError as exc:
        raise _fail(path, f"cannot parse the schema file: {str(exc).splitlines()[0]}") from None


def _files(value, where: str, path) -> list[str]:
    files = value if isinstance(value, list) else [value]
    if not files or not all(isinstance(f, str) and f for f in files):
        raise _fail(path, f"'{where}' must be a file name or a list of file names, got {_plain(value)!r}")
    return files


def _data_parts(spec: dict, path: Path) -> tuple[list[tuple[Path, int | None]], bool, bool]:
    """-> ([(file, TRAIN/VALID/TEST or None = split by the rule)], separate files?, valid file?)"""
    data = spec["data"]
    if not isinstance(data, dict):
        files = _files(data, "data", path)
        for f in files:
            _inside(path, f)
        return [(path.parent / f, None) for f in files], False, False
    bad = sorted(set(data) - set(DATA_KEYS))
    if bad:
        raise _fail(path, f"data: unknown key(s) {', '.join(map(str, bad))}; valid: train, test, valid")
    for key in ("train", "test"):
        if not data.get(key):
            raise _fail(path, f"data: '{key}' is missing; give data: {{train: ..., test: ..., valid: ...}} "
                        "(valid optional) or one file to split")
    parts, seen = [], {}
    for key, code in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        for f in (_files(data[key], f"data.{key}", path) if data.get(key) else []):
            full = _inside(path, f)
            if full in seen:  # the same rows in two splits would be measured on what was learned
                raise _fail(path, f"data.{key} names {f!r}, which is already in data.{seen[full]}")
            seen[full] = key
            parts.append((path.parent / f, code))
    return parts, True, bool(data.get("valid"))


def _inside(path: Path, name: str) -> Path:
    """The data file `name` of schema `path`, resolved; it must lie in the schema file's folder or
    below it (links followed), and is refused unread otherwise: a schema that a server reads must
    not make it open, and echo the header of, a file elsewhere on the machine."""
    folder = path.parent.resolve()
    full = (path.parent / name).resolve()
    if folder not in full.parents:
        raise _fail(path, f"data file {name!r} is outside the schema file's folder ({folder}); put the data in "
                    "that folder or below it")
    return full


def _fraction(value, where: str, path) -> float:
    if not _is_number(value) or not 0 < float(value) < 1:
        raise _fail(path, f"{where} must be a fraction between 0 and 1 (exclusive), got {_plain(value)!r}")
    return float(value)


SPLIT_EXAMPLES = ("split: {column: day, test: last, valid: last} (a day/time column), "
                  "{method: random, test: 0.2, valid: 0.1} or {method: group, column: user_id, "
                  "test: 0.2, valid: 0.1}")


def _parse_split(split, path, separate: bool, valid_file: bool) -> dict:
    """-> {"method": files|time|random|group, "column": str|None, "test": rule|fraction|None,
    "valid": rule|fraction|None}. With separate files the test rows are given, so only `valid`
    is a rule (applied to the train file), and nothing when a valid file is given too."""
    if valid_file:
        if split is not None:
            raise _fail(path, "'split' is not used when data names train, valid and test files; remove it")
        return {"method": "files", "column": None, "test": None, "valid": None}
    if not isinstance(split, dict):
        if separate:
            raise _fail(path, "data names train and test files but no valid file: cut validation rows "
                        "from train with split: {valid: 0.1} (a fraction, or a rule on a day column, "
                        "e.g. {column: day, valid: last}), or add data.valid")
        raise _fail(path, f"'split' is required, e.g. {SPLIT_EXAMPLES}")
    bad = sorted(set(split) - SPLIT_KEYS)
    if bad:
        raise _fail(path, f"split: unknown key(s) {', '.join(map(str, bad))}; valid: {', '.join(sorted(SPLIT_KEYS))}")
    method = split.get("method", "time" if split.get("column") is not None else "random")
    if method not in SPLIT_METHODS:
        raise _fail(path, f"split.method: unknown method {method!r}; use one of: {', '.join(SPLIT_METHODS)}")
    if separate and "test" in split:
        raise _fail(path, "split.test: the test rows come from data.test; remove split.test")
    column = split.get("column")
    fmt = split.get("format")
    if fmt is not None and (method != "time" or not isinstance(fmt, str) or "%" not in fmt):
        raise _fail(path, f"split.format: {_plain(fmt)!r} is not a date format of a time split; use one such as "
                    "'%d/%m/%Y' (day/month/year) with split: {column: day, format: ...}")
    if method == "random" and column is not None:
        raise _fail(path, "split.column is not used by method random (rows are drawn at random); "
                    "use method: group to keep each value of a column in one split")
    if method in ("time", "group"):
        if column is None:
            raise _fail(path, f"split.column is required by method {method}, e.g. {SPLIT_EXAMPLES}")
        column = _text(column, "split.column", path)
    if method == "time":
        test = None if separate else _plain(split.get("test", "last"))
        valid = _plain(split.get("valid", "last"))
        if test is not None:
            _check_rule(test, "test", path, allow_fraction=False)
        _check_rule(valid, "valid", path, allow_fraction=True)
        return {"method": method, "column": column, "test": test, "valid": valid, "format": fmt}
    for key in ("valid",) if separate else ("test", "valid"):
        if key not in split:
            raise _fail(path, f"split.{key} (a fraction of the {'train ' if separate else ''}rows) is "
                        f"required by method {method}, e.g. {SPLIT_EXAMPLES}")
    test = None if separate else _fraction(split["test"], "split.test", path)
    valid = _fraction(split["valid"], "split.valid", path)
    if (test or 0) + valid >= 1:
        raise _fail(path, f"split.test + split.valid = {(test or 0) + valid:g} leaves no train rows; "
                    "their sum must be below 1")
    return {"method": method, "column": column, "test": test, "valid": valid}


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
        if key == "fraction" and allow_fraction and _is_number(value) and 0 < value < 1:
            return
    options = "last, {values: [...]}, {from: VALUE}" + (", {fraction: 0.1}" if allow_fraction else "")
    raise _fail(path, f"split.{which}: unsupported rule {rule!r}; use one of: {options}")


def _check_leaks(cfg: dict, path) -> None:
    """The label (or the split column) among the features makes results meaningless."""
    label, split_col, scenario = cfg["label"], cfg["split"]["column"], cfg["scenario"]
    features = {"categorical": cfg["categorical"], "numeric": cfg["numeric"],
                "sequences": [s["column"] for s in cfg["sequences"]]}
    if scenario == label:
        raise _fail(path, f"the label column '{label}' is also the scenario column: it would leak the answer")
    for kind, cols in features.items():
        if label in cols:
            raise _fail(path, f"the label column '{label}' is also listed under {kind}: it would leak "
                        f"the answer; remove it from {kind}")
    if split_col is None:
        return
    if split_col == label:
        raise _fail(path, f"the split column '{split_col}' is the label column; split on a day, time or "
                    "group column")
    if split_col == scenario:
        raise _fail(path, f"the split column '{split_col}' is also the scenario column: the test split "
                    "would hold scenarios that train never saw")
    why = {"time": "the test split is cut on its values, so test rows carry values train never has "
                   "(a later day) and the model would learn the split, not the clicks",
           "group": "with a group split every test value is unseen in train (out of vocabulary)"}
    for kind, cols in features.items():
        if split_col in cols:
            raise _fail(path, f"the split column '{split_col}' is also listed under {kind}: "
                        f"{why[cfg['split']['method']]}; remove it from {kind} or split on another column")


def _read_schema_text(path: Path) -> str:
    if not path.is_file():  # a FIFO or a device is never opened: reading one could wait forever
        raise _fail(path, "not a regular file; not read" if path.exists() else "schema file not found")
    size = path.stat().st_size
    if size > MAX_SCHEMA_BYTES:
        raise _fail(path, f"the schema file is larger than 1 MiB ({size:,} bytes); a schema is a few dozen lines")
    with open(path, "rb") as f:
        return f.read(MAX_SCHEMA_BYTES + 1)[:MAX_SCHEMA_BYTES].decode("utf-8", errors="replace")


def _optional_text(spec: dict, key: str, path) -> str | None:
    """title / description: text (a number counts as written), at most MAX_TEXT characters."""
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, (_Int, _Float)):
        value = value.text
    if not isinstance(value, str):
        raise _fail(path, f"'{key}' must be text, got {type(_plain(value)).__name__} {_plain(value)!r}")
    if len(value) > MAX_TEXT[key]:
        raise _fail(path, f"'{key}' has {len(value):,} characters; at most {MAX_TEXT[key]:,}")
    return value


def _check_listed_once(categorical: list, numeric: list, sequences: list, path) -> None:
    """A column is one kind of feature, listed once: two encodings of one column would be two
    features the model cannot tell apart (and pandas reads it once)."""
    seen: dict[str, str] = {}
    for kind, cols in (("categorical", categorical), ("numeric", numeric),
                       ("sequences", [s["column"] for s in sequences])):
        for c in cols:
            if seen.get(c) == kind:
                raise _fail(path, f"{kind} lists {c!r} twice")
            if c in seen:
                raise _fail(path, f"column {c!r} is listed under both {seen[c]} and {kind}; a column is one kind "
                            "of feature")
            seen[c] = kind


def read_schema_file(path: str | Path) -> dict:
    """Parse and validate the schema file; returns a normalised dict."""
    path = Path(path)
    spec = _parse_text(path, _read_schema_text(path))
    if not isinstance(spec, dict):
        raise _fail(path, f"the schema must be a mapping of keys, got {type(spec).__name__}")
    unknown = sorted(map(str, set(spec) - TOP_KEYS))
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(TOP_KEYS))}")
    for key in ("data", "scenario", "label"):
        if spec.get(key) is None or spec.get(key) == "":
            raise _fail(path, f"required key '{key}' is missing")
    parts, separate, valid_file = _data_parts(spec, path)
    scenario = _text(spec["scenario"], "scenario", path)
    label = _text(spec["label"], "label", path)
    categorical = _str_list(spec, "categorical", path)
    numeric = _str_list(spec, "numeric", path)

    sequences = []
    for i, s in enumerate(spec.get("sequences") or []):
        if not isinstance(s, dict) or not s.get("column") or not s.get("item_field"):
            raise _fail(path, f"sequences[{i}] needs 'column' and 'item_field', got {_plain(s)!r}")
        bad = sorted(map(str, set(s) - SEQ_KEYS))
        if bad:
            raise _fail(path, f"sequences[{i}]: unknown key(s) {', '.join(bad)}; valid: {', '.join(sorted(SEQ_KEYS))}")
        column = _text(s["column"], f"sequences[{i}].column", path)
        item_field = _text(s["item_field"], f"sequences[{i}].item_field", path)
        if item_field not in categorical:
            raise _fail(path, f"sequences[{i}] ('{column}'): item_field '{item_field}' "
                        "must be one of the categorical columns")
        order = s.get("order", "oldest_first")
        if order not in ("oldest_first", "newest_first"):
            raise _fail(path, f"sequences[{i}]: order must be oldest_first or newest_first, got {order!r}")
        sep = s.get("sep", "|")
        if not isinstance(sep, str) or not sep:
            raise _fail(path, f"sequences[{i}]: 'sep' must be a non-empty string, got {_plain(sep)!r}")
        sequences.append({"column": column, "item_field": item_field, "sep": sep, "order": order})
    _check_listed_once(categorical, numeric, sequences, path)

    split = _parse_split(spec.get("split"), path, separate, valid_file)

    scenarios = spec.get("scenarios")
    if scenarios is not None:
        if not isinstance(scenarios, list) or not scenarios:
            raise _fail(path, f"'scenarios' must be a non-empty list, got {_plain(scenarios)!r}")
        if len(scenarios) > MAX_SCENARIOS:
            raise _fail(path, f"'scenarios' lists {len(scenarios)} scenarios; at most {MAX_SCENARIOS} are supported "
                        "(SAML trains a branch per scenario)")
        raw = [_text(v, "scenarios", path, "scenario value") for v in scenarios]
        scenarios = canonical_scenarios(pd.Series(raw, dtype=object)).tolist()
        twice = sorted({s for s in scenarios if scenarios.count(s) > 1})
        if twice:
            raise _fail(path, f"'scenarios' lists {', '.join(map(repr, twice))} twice (values are "
                        f"compared trimmed, numbers by value: '1' = '1.0'): {raw}")
    drop = spec.get("drop_scenarios") or []
    drop = drop if isinstance(drop, list) else [drop]
    drop = canonical_scenarios(pd.Series([_text(v, "drop_scenarios", path, "scenario value") for v in drop],
                                         dtype=object)).tolist()
    min_positives = spec.get("min_positives", MIN_CLASS)  # the one rule's default (build.judge_scenarios)
    if not isinstance(min_positives, int) or isinstance(min_positives, bool) or min_positives < 1:
        raise _fail(path, f"'min_positives' must be a positive integer, got {_plain(min_positives)!r}")
    noun = spec.get("scenario_noun", ["scenario", "scenarios"])
    noun = [noun] if isinstance(noun, str) else noun
    if (not isinstance(noun, list) or not 1 <= len(noun) <= 2
            or not all(isinstance(w, str) and w.strip() for w in noun)):
        raise _fail(path, "'scenario_noun' must be a word or [singular, plural], e.g. scenario_noun: market "
                    f"or [country, countries]; got {_plain(noun)!r}")
    noun = (noun[0].strip(), noun[1].strip() if len(noun) == 2 else noun[0].strip() + "s")

    try:
        seq_len = check_seq_len(spec.get("seq_len", DEFAULT_SEQ_LEN), "'seq_len'",
                                zero_hint="leave 'sequences' out to use no behaviour sequences")
    except DataError as exc:
        raise _fail(path, str(exc)) from None
    category_field = spec.get("category_field")
    if category_field is not None:
        category_field = _text(category_field, "category_field", path)
        if category_field not in categorical:
            raise _fail(path, f"'category_field' {category_field!r} must be one of the categorical columns")
    cfg = {
        "path": path,
        "parts": parts,
        "files": [p for p, _ in parts],
        "scenario": scenario,
        "scenarios": scenarios,
        "label": label,
        "categorical": categorical,
        "numeric": numeric,
        "sequences": sequences,
        "split": split,
        "seq_len": int(seq_len),
        "title": _optional_text(spec, "title", path),
        "description": _optional_text(spec, "description", path),
        "category_field": category_field,
        "min_positives": int(min_positives),
        "drop_scenarios": drop,
        "scenario_noun": noun,
    }
    _check_leaks(cfg, path)
    return cfg


# ---- data files -------------------------------------------------------------------------
def _file_kind(path: Path) -> str:
    """"parquet" or the CSV separator, from the file name (a .gz suffix is decompressed)."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    for ext, sep in ((".csv", ","), (".tsv", "\t"), (".txt", ",")):
        if name.endswith(ext) or name.endswith(ext + ".gz"):
            return sep
    raise _fail(path, f"unsupported data file type {''.join(path.suffixes)!r}; use .csv, .tsv, .txt "
                "(each optionally .gz) or .parquet")


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _first_long_record(path: Path, sep: str, expected: int) -> tuple[int, int, str] | None:
    """Error path only: (line, fields, text) of the first record with too many fields, by the
    csv module, whose line_num is the file's own line (blank lines and quoted newlines count)."""
    old = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # history cells can be megabytes
    try:
        with _open_text(path) as f:
            reader = csv.reader(f, delimiter=sep)
            for fields in reader:
                if len(fields) > expected:
                    return reader.line_num, len(fields), sep.join(fields)
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(old)
    return None


def _check_field_counts(path: Path, sep: str) -> None:
    """Fail on a row with more fields than the header. pandas drops the extra fields silently
    when usecols is given (and takes the first column as the index when the first row is long),
    so the whole file is pre-scanned by pyarrow's CSV tokenizer: one column is converted, the
    others are only counted (0.35 s for 1M rows, 110 MB). Fewer fields are left to pandas (missing)."""
    import pyarrow.csv as pcsv

    found: list = []

    def on_bad(row):
        if row.actual_columns > row.expected_columns:
            found.append(row)
            return "error"  # stop at the first one
        return "skip"

    try:
        reader = pcsv.open_csv(
            pa.input_stream(str(path), compression="detect"),
            read_options=pcsv.ReadOptions(use_threads=False, autogenerate_column_names=True,
                                          block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter=sep, newlines_in_values=True, invalid_row_handler=on_bad),
            convert_options=pcsv.ConvertOptions(include_columns=["f0"], column_types={"f0": pa.binary()}),
        )
        for _ in reader:
            pass
    except (pa.ArrowException, OSError):
        if not found:  # a tokenizer disagreement or a read error: pandas has the last word
            return
    if not found:
        return
    row = found[0]
    where = _first_long_record(path, sep, row.expected_columns)
    line, fields, text = where if where else (row.number, row.actual_columns, row.text)
    hint = (" (or, if every row has one field more than the header, the file has row names, as R's "
            "write.csv writes them: write it without)") if line == 2 and fields == row.expected_columns + 1 else ""
    raise _fail(path, f"line {line} has {fields} fields but the header has {row.expected_columns}: "
                f"{text[:80]!r}; a value that contains the separator {sep!r} must be quoted{hint}")


def _csv_header(path: Path, sep: str) -> list[str] | None:
    """The header's names as written (pandas renames a second 'x' to 'x.1' silently), or None
    when the csv module cannot read it (pandas then has the last word)."""
    try:
        with _open_text(path) as f:
            names = next(csv.reader(f, delimiter=sep), [])
    except (csv.Error, OSError, EOFError):
        return None
    if names and names[0].startswith("\ufeff"):  # a byte order mark, as pandas drops it
        names[0] = names[0][1:]
    return names


def _check_header(path: Path, have: list[str], columns: list[str]) -> None:
    """Every column the schema uses is in the header, once; the error shows the names as repr,
    so a name with a space at the end is visible, and points at a near miss."""
    first: dict[str, int] = {}
    for i, name in enumerate(have):
        if name in first:
            raise _fail(path, f"the header names the column {name!r} twice (columns {first[name] + 1} and {i + 1}); "
                        "rename one")
        first[name] = i
    missing = [c for c in columns if c not in first]
    if not missing:
        return
    loose = {}
    for name in have:
        loose.setdefault("".join(name.split()).casefold(), []).append(name)
    hints = [f"the file has {h!r} ({_how_differs(h, m)})" for m in missing
             for h in loose.get("".join(m.split()).casefold(), [])[:2]]
    shown = ", ".join(map(repr, have[:SHOWN_COLUMNS])) + (
        f", ... ({len(have) - SHOWN_COLUMNS} more)" if len(have) > SHOWN_COLUMNS else "")
    near = f"; {'; '.join(hints)}: write the name as the header does, or fix the header" if hints else ""
    raise _fail(path, f"missing column(s) {', '.join(map(repr, missing))}{near}; the file has: {shown}")


def _how_differs(have: str, want: str) -> str:
    if have.strip() == want.strip():
        ends = [where for where, differs in (("start", have[:1].isspace() != want[:1].isspace()),
                                             ("end", have[-1:].isspace() != want[-1:].isspace())) if differs]
        space = "a space" if " " in (have + want) else "whitespace"
        return f"with {space} at the {' and the '.join(ends)}" if ends else "with other spacing"
    return "in other upper/lower case" if have.casefold() == want.casefold() else "with other spacing"


def _read_file(path: Path, columns: list[str], text_cols: set[str], scenario: str, scenario_na: list[str],
               list_seps: dict[str, str] | None = None) -> pd.DataFrame:
    """list_seps: sequence column -> separator; a Parquet list column is joined with it.
    Text columns come back as pandas strings with missing values as NA."""
    if not path.is_file():  # a FIFO or a device is never opened: reading one could wait forever
        raise _fail(path, "not a regular file; not read" if path.exists() else "data file not found")
    kind = _file_kind(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            _check_header(path, pq.read_schema(path).names, columns)
            table = pq.read_table(path, columns=columns)
            for c, sep in (list_seps or {}).items():
                typ = table.schema.field(c).type
                if pa.types.is_list(typ) or pa.types.is_large_list(typ):
                    joined = pc.binary_join(pc.cast(table.column(c), pa.list_(pa.string())), sep)
                    table = table.set_column(table.schema.get_field_index(c), c, joined)
            df = table.to_pandas()
            for c in text_cols:
                df[c] = df[c].astype("string")
            return df
        have = _csv_header(path, kind)
        _check_header(path, have if have is not None else list(pd.read_csv(path, nrows=0, sep=kind).columns),
                      columns)
        _check_field_counts(path, kind)
        # The scenario column has its own missing markers ("NA" may be Namibia when declared).
        na = {c: list(PANDAS_NA) for c in columns}
        na[scenario] = scenario_na
        return pd.read_csv(path, usecols=columns, sep=kind, index_col=False,
                           dtype={c: str for c in text_cols}, keep_default_na=False, na_values=na)
    except DataError:
        raise
    except Exception as exc:  # parser errors of any kind: name the file, keep it to one line
        raise _fail(path, f"cannot read the data file: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None


def _show(value) -> str:
    """repr of a cell without numpy's type wrapper (np.int64(2) -> 2)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _rows(mask: np.ndarray, first: int = 5) -> str:
    """'3 rows (4, 9, 17)' / '12 rows (first: 4, 9, 17, 20, 31)'."""
    rows = np.flatnonzero(mask)
    head = ", ".join(map(str, rows[:first]))
    return f"{len(rows)} row{'s' if len(rows) != 1 else ''} ({'first: ' if len(rows) > first else ''}{head})"


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


def _raw_text(path: Path, col: str, row: int, parsed) -> str:
    """The cell as written (error path only: re-reads one column as text)."""
    kind = _file_kind(path)
    if kind == "parquet":
        return _show(parsed)
    try:
        text = pd.read_csv(path, usecols=[col], sep=kind, index_col=False, dtype=str,
                           keep_default_na=False)[col]
        return repr(text.iloc[row])
    except Exception:  # noqa: BLE001 - the parsed value is still worth showing
        return _show(parsed)


def _check_numeric(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    bad = (num.isna() & raw.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _fail(path, f"numeric column '{col}' has the non-numeric value {_show(raw.iloc[row])} at row {row}")
    x = num.to_numpy(dtype=np.float64)
    # NaN is "missing" (-> train mean); inf (also what 1e309 becomes) would turn training to NaN
    inf = np.isinf(x)
    huge = ~inf & (np.abs(np.nan_to_num(x)) > MAX_ABS_NUMERIC)
    for mask, why in ((inf, "is infinite or overflows a 64-bit float"),
                      (huge, f"is beyond ±{MAX_ABS_NUMERIC:g}, too large to normalise")):
        if mask.any():
            row = int(np.flatnonzero(mask)[0])
            raise _fail(path, f"numeric column '{col}' has the value {_raw_text(path, col, row, x[row])} at "
                        f"row {row}, which {why} ({_rows(mask)}); fix it or leave the cell empty (missing)")
    return x


def canonical_scenarios(values: pd.Series) -> pd.Series:
    """Scenario values as one spelling each: surrounding whitespace stripped, numbers by value
    ("1", "1.0", " 1 ", "01" -> "1"; "1.50" -> "1.5"). Missing stays missing. Works on the
    distinct values only, so the cost does not grow with the number of rows."""
    codes, uniq = pd.factorize(values, use_na_sentinel=True)
    text = pd.Series(np.asarray(uniq, dtype=object), dtype=object).astype(str).str.strip()
    num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    safe = np.isfinite(num) & (np.abs(np.nan_to_num(num)) < 2.0**53)  # exact in float64
    whole = safe & (num == np.round(num))
    out = text.to_numpy(dtype=object)
    out[whole] = num[whole].astype(np.int64).astype(str)
    out[safe & ~whole] = [repr(float(v)) for v in num[safe & ~whole]]  # distinct values only
    result = np.where(codes >= 0, out[np.maximum(codes, 0)] if len(out) else None, None)
    return pd.Series(result, index=values.index, dtype=object)


def _scenario_column(df: pd.DataFrame, col: str, path: Path, declared: list[str] | None) -> pd.Series:
    values = canonical_scenarios(df[col])
    odd = [v for v in pd.unique(values.dropna()) if CONTROL.search(v)]  # distinct values only
    if odd:
        row = int(np.flatnonzero(values.isin(odd).to_numpy())[0])
        raise _fail(path, f"scenario column '{col}' has the value {values.iloc[row]!r} at row {row}, which holds a "
                    "line break or another control character; a scenario name is one line of text")
    na_words = set(PANDAS_NA) - set(declared or ())
    blank = (values.isna() | values.isin(na_words)).to_numpy()
    if blank.any():
        raise _fail(path, f"scenario column '{col}' is empty or a missing-value marker at {_rows(blank)}; "
                    "every row needs a scenario (drop those rows, or declare the value in 'scenarios' "
                    "if it is a real one such as NA)")
    if declared is not None:
        known = values.isin(declared).to_numpy()
        if not known.all():
            row = int(np.flatnonzero(~known)[0])
            raise _fail(path, f"column '{col}' has the scenario value {values.iloc[row]!r} at row {row}, which "
                        f"is not in the schema's scenarios {declared} ({_rows(~known)})")
    return values


def _arrow_text(col: pd.Series) -> pa.Array:
    s = col if isinstance(col.dtype, pd.StringDtype) else col.astype("string")
    arr = pa.array(s, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def _check_separator(text: pa.Array, nonempty: np.ndarray, sep: str, path, name: str) -> None:
    for other in OTHER_SEPARATORS:
        if other in sep:
            continue
        hit = pc.match_substring(text, other).to_numpy(zero_copy_only=False)
        if hit.any():
            row = int(np.flatnonzero(hit)[0])
            raise _fail(path, f"sequence column '{name}' row {row}: value {text[row].as_py()[:60]!r} contains "
                        f"{other!r}, but the schema declares the separator {sep!r}")
    if not nonempty.any() or pc.any(pc.match_substring(text, sep)).as_py():
        return
    # `sep` never occurs, so every history is one item: a list written with another separator
    # looks like that. Only when most values contain it, so single ids with a space are fine.
    for other in LIST_LOOKS:
        if other in sep:
            continue
        hit = pc.match_substring(text, other).to_numpy(zero_copy_only=False) & nonempty
        if 2 * hit.sum() > nonempty.sum():
            row = int(np.flatnonzero(hit)[0])
            raise _fail(path, f"sequence column '{name}': the declared separator {sep!r} never occurs, but "
                        f"{hit.sum()} of {nonempty.sum()} values contain {other!r} (row {row}: "
                        f"{text[row].as_py()[:60]!r}); if they are lists, declare sep: {other!r}")


def parse_sequence_column(col: pd.Series, sep: str, order: str, path, name: str,
                          seq_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """'a|b|c' strings -> ([N, W] object array right-aligned (most recent last), [N] lengths).

    Only the `seq_len` most recent items of a row are kept (W <= seq_len), while splitting:
    pyarrow splits each string at most `seq_len` times from the recent end, so a row with 200k
    items costs one string, not 200k objects. None keeps everything.
    """
    text = pc.utf8_trim_whitespace(pc.fill_null(_arrow_text(col), ""))
    text = pc.replace_substring_regex(text, re.escape(sep) + "$", "")  # a trailing separator is tolerated
    n = len(text)
    nonempty = pc.not_equal(text, "").to_numpy(zero_copy_only=False)
    _check_separator(text, nonempty, sep, path, name)
    hole = pc.or_(pc.match_substring(text, sep + sep), pc.starts_with(text, sep)).to_numpy(zero_copy_only=False)
    if hole.any():  # an empty item inside a row, e.g. "3||5"
        row = int(np.flatnonzero(hole)[0])
        raise _fail(path, f"sequence column '{name}' row {row}: empty item in "
                    f"{text[row].as_py()[:60]!r} (separator {sep!r})")
    items = np.where(nonempty, pc.count_substring(text, sep).to_numpy(zero_copy_only=False) + 1, 0)
    limit = int(items.max()) if seq_len is None and n else (seq_len or 0)
    keep = np.minimum(items, limit).astype(np.int64)
    width = int(keep.max()) if n else 0
    if width == 0:
        return np.empty((n, 0), dtype=object), keep
    oldest_first = order == "oldest_first"
    # oldest_first: split from the right, the last pieces are the newest items;
    # newest_first: split from the left, the first pieces are the newest items.
    lists = pc.split_pattern(text, sep, max_splits=limit, reverse=oldest_first)
    offsets = lists.offsets.to_numpy()
    cols = np.arange(width)[None, :]
    real = cols >= (width - keep)[:, None]  # right-aligned: the newest item in the last column
    if oldest_first:
        src = offsets[1:, None] - width + cols
    else:
        src = offsets[:-1, None] + (width - 1 - cols)
    out = np.full((n, width), None, dtype=object)
    out[real] = lists.flatten().take(pa.array(src[real])).to_numpy(zero_copy_only=False)
    return out, keep


def _read_all(cfg: dict, seq_len: int) -> tuple[RawTable, np.ndarray]:
    """All files as one table, and per row the split its file gives (-1: split by the rule)."""
    seq_cols = [s["column"] for s in cfg["sequences"]]
    split = cfg["split"]
    split_col = split["column"]
    columns = list(dict.fromkeys(
        [cfg["scenario"], cfg["label"], *cfg["categorical"], *cfg["numeric"], *seq_cols]
        + ([split_col] if split_col else [])
    ))
    cat_cols = set(cfg["categorical"]) | ({split_col} if split["method"] == "group" else set())
    text_cols = cat_cols | {cfg["scenario"], *seq_cols}
    scenario_na = [v for v in PANDAS_NA if v not in set(cfg["scenarios"] or ())]
    frames, seqs, lengths, parts, kinds = [], {c: [] for c in seq_cols}, [], [], []
    for path, part in cfg["parts"]:
        df = _read_file(path, columns, text_cols, cfg["scenario"], scenario_na,
                        {s["column"]: s["sep"] for s in cfg["sequences"]})
        df[cfg["label"]] = _check_label(df, cfg["label"], path)
        for c in cfg["numeric"]:
            df[c] = _check_numeric(df, c, path)
        if split_col and df[split_col].isna().any():
            raise _fail(path, f"split column '{split_col}' is empty at {_rows(df[split_col].isna().to_numpy())}")
        if split["method"] == "time":
            df[split_col] = time_values(df[split_col], split["format"], path, split_col)
            kinds.append((path, "dates" if isinstance(df[split_col].dtype, pd.DatetimeTZDtype) else "numbers"))
        df[cfg["scenario"]] = _scenario_column(df, cfg["scenario"], path, cfg["scenarios"])
        for c in cat_cols:  # numbers and text alike -> text, so ids compare equal across columns
            df[c] = df[c].astype("string").fillna(NA_TOKEN).astype(object)
        file_len = None
        for s in cfg["sequences"]:
            arr, ln = parse_sequence_column(df[s["column"]], s["sep"], s["order"], path, s["column"], seq_len)
            if file_len is not None and not np.array_equal(ln, file_len[1]):
                row = int(np.flatnonzero(ln != file_len[1])[0])
                raise _fail(path, f"sequence columns '{file_len[0]}' and '{s['column']}' have different "
                            f"lengths at row {row} ({file_len[1][row]} vs {ln[row]}, counting at most "
                            f"seq_len {seq_len})")
            file_len = (s["column"], ln)
            seqs[s["column"]].append(arr)
        if file_len is not None:
            lengths.append(file_len[1])
        frames.append(df.drop(columns=seq_cols))
        parts.append(np.full(len(df), -1 if part is None else part, dtype=np.int8))
    if len({k for _, k in kinds}) > 1:
        (a, ka), (b, kb) = kinds[0], next(x for x in kinds if x[1] != kinds[0][1])
        raise _fail(b, f"split column '{split_col}' holds {kb}, but in {a.name} it holds {ka}; write one kind")
    frame = pd.concat(frames, ignore_index=True)
    seq_arrays = {}
    for c, pieces in seqs.items():
        width = max(p.shape[1] for p in pieces)
        seq_arrays[c] = np.concatenate(  # right-align files of different widths
            [np.concatenate([np.full((len(p), width - p.shape[1]), None, dtype=object), p], axis=1) for p in pieces]
        )
    table = RawTable(frame=frame, seqs=seq_arrays, seq_lengths=np.concatenate(lengths) if lengths else None)
    return table, np.concatenate(parts)


# ---- splits -----------------------------------------------------------------------------
ISO_EXAMPLE = "2024-01-31, optionally with a time: 2024-01-31 14:05"


def time_values(values: pd.Series, fmt: str | None, path, col: str) -> pd.Series:
    """A time split's column as numbers (float) or as dates (UTC), parsed explicitly, never
    compared as text ('02/01/2024' < '31/12/2023' as text). Without `fmt`, text must be numbers
    or ISO 8601 dates: day/month and month/day orders cannot be told apart, so other spellings
    need their format declared. A value that does not parse is an error naming row and value."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        return pd.to_datetime(values, utc=True)  # Parquet timestamps
    if fmt is None and pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(np.float64)
    text = values.astype("string").str.strip()
    if fmt is None:
        num = pd.to_numeric(text, errors="coerce")
        ok = num.notna().to_numpy()
        if ok.all():
            return num.astype(np.float64)
        if 2 * ok.sum() > len(ok):  # mostly numbers: the rest are typos, not dates
            row = int(np.flatnonzero(~ok)[0])
            raise _fail(path, f"split column '{col}' has the value {text.iloc[row]!r} at row {row}, which is not a "
                        f"number like the other values ({_rows(~ok)})")
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        why = (f"is not a number or an ISO date ({ISO_EXAMPLE}); dates written otherwise need their format, "
               f"e.g. split: {{column: {col}, format: '%d/%m/%Y'}}")
    else:
        parsed = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
        why = f"does not match the declared format {fmt!r}"
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _fail(path, f"split column '{col}' has the value {text.iloc[row]!r} at row {row}, which {why} "
                    f"({_rows(bad)})")
    return parsed


def _rule_value(v, values: pd.Series, sp: dict, path):
    """A rule's value (`from`, `values`) parsed like the column's values."""
    dates = isinstance(values.dtype, pd.DatetimeTZDtype)
    try:
        if dates:
            got = pd.to_datetime(str(_plain(v)), format=sp["format"] or "ISO8601", utc=True)
        else:
            got = float(_plain(v))
    except (TypeError, ValueError, OverflowError):
        got = None
    if got is None or pd.isna(got):
        kind = (f"a date in the format {sp['format']!r}" if sp["format"] else "an ISO date") if dates else "a number"
        raise _fail(path, f"split column '{sp['column']}': the rule cannot compare its values ({_plain(v)!r} is not "
                    f"{kind}, as the column's values are)")
    return got


def _rule_mask(values: pd.Series, rule, rng: np.random.Generator, sp: dict, path) -> np.ndarray:
    if rule == "last":
        return (values == values.max()).to_numpy()
    (key, v), = rule.items()
    if key == "values":
        return values.isin([_rule_value(x, values, sp, path) for x in v]).to_numpy()
    if key == "from":
        return (values >= _rule_value(v, values, sp, path)).to_numpy()
    return rng.random(len(values)) < v  # fraction


def _random_split(n: int, test: float, valid: float, rng: np.random.Generator) -> np.ndarray:
    """Exactly round(f * n) rows each, drawn without replacement."""
    perm = rng.permutation(n)
    n_test, n_valid = round(test * n), round(valid * n)
    out = np.full(n, TRAIN, dtype=np.int8)
    out[perm[:n_test]] = TEST
    out[perm[n_test:n_test + n_valid]] = VALID
    return out


def _group_split(groups: np.ndarray, test: float, valid: float, rng: np.random.Generator) -> np.ndarray:
    """Whole groups (e.g. users) in random order fill test, then validation, up to about the
    fractions of ROWS (a group goes where the middle of its rows falls), the rest is train."""
    codes, uniq = pd.factorize(groups)
    sizes = np.bincount(codes, minlength=len(uniq))
    order = rng.permutation(len(uniq))
    centre = (np.cumsum(sizes[order]) - sizes[order] / 2) / len(groups)
    of_group = np.empty(len(uniq), dtype=np.int8)
    of_group[order] = np.where(centre < test, TEST, np.where(centre < test + valid, VALID, TRAIN))
    return of_group[codes]


def assign_splits(cfg: dict, frame: pd.DataFrame, part: np.ndarray, seed: int) -> np.ndarray:
    """[N] TRAIN / VALID / TEST per row."""
    sp, path = cfg["split"], cfg["path"]
    if sp["method"] == "files":
        return part.copy()
    rng = np.random.default_rng(seed)
    out = np.where(part == TEST, TEST, TRAIN).astype(np.int8)
    pool = np.flatnonzero(part != TEST)  # every row, or the train file's rows
    if sp["method"] == "random":
        out[pool] = _random_split(len(pool), sp["test"] or 0.0, sp["valid"], rng)
    elif sp["method"] == "group":
        out[pool] = _group_split(frame[sp["column"]].to_numpy()[pool], sp["test"] or 0.0, sp["valid"], rng)
    else:
        values = frame[sp["column"]].iloc[pool].reset_index(drop=True)
        is_test = (_rule_mask(values, sp["test"], rng, sp, path) if sp["test"] is not None
                   else np.zeros(len(pool), dtype=bool))
        rest = np.flatnonzero(~is_test)
        is_valid = _rule_mask(values.iloc[rest].reset_index(drop=True), sp["valid"], rng, sp, path)
        out[pool[is_test]] = TEST
        out[pool[rest[is_valid]]] = VALID
    return out


def _describe_split(sp: dict) -> str:
    if sp["method"] == "files":
        return "the data files"
    shown = {k: v for k, v in sp.items() if v is not None}
    return "split {" + ", ".join(f"{k}: {v}" for k, v in shown.items()) + "}"


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
        kind="byo",
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
