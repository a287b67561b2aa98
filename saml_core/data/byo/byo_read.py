"""Reading the data files a schema names: format, header, field counts, then each column checked
and converted (label, numeric, scenario, sequences), every error naming the file, column and row.
"""
from __future__ import annotations

import csv
import gzip
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from saml_core.data.schema import RawTable
from saml_core.data.types import DataError
from saml_core.data.byo.byo_schema import (CONTROL, LIST_LOOKS, MAX_ABS_NUMERIC, NA_TOKEN, OTHER_SEPARATORS,
                                           PANDAS_NA, SHOWN_COLUMNS, _fail, canonical_scenarios)


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
