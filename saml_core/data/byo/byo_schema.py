"""The schema file of a log of the user's own (`csv:SCHEMA_FILE`, docs/DATA.md): its parser and
checks, and the vocabulary reading and splitting share with it (errors name the file and key).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from saml_core.evaluate import MIN_CLASS
from saml_core.data.types import MAX_SCENARIOS, DataError, check_seq_len


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
