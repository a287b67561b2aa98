"""Out-of-core loading of flat public click logs: one CSV row per impression, no behaviour
sequences. Shared by `aliexpress.py` (AliExpress countries) and `aliccp.py` (Ali-CCP domains).

Cache build (once per set of input files):
  every CSV is cut into ~BLOCK_BYTES pieces at line ends; each piece is parsed by pyarrow with
  the declared column types and checked (field count, integer ids, numbers, a 0/1 label, no
  inf). A bad row is a one-line DataError naming the file, the line (1 = header) and the
  column. The piece is appended as one row group to a parquet file of the cache. The cache
  folder is keyed by a fingerprint of the inputs (paths, sizes, modification times), built in a
  temporary folder and moved into place only when complete (an interrupted build is never
  reused); older caches of the same folder are removed once a new one is complete.
Load:
  pass 1 fits the encoder on the train rows only (`Encoder.fit_many`, row group by row group)
  and counts rows per split and scenario; pass 2 encodes row group by row group into
  preallocated tensors: by default .npy files of an encoded store in the cache folder
  (`encoded-v<version>-<options>/`, built once, memory-mapped on every load: peak memory = one
  row group, and training reads only its batches' rows); in memory with mapped=False
  (peak memory = the encoded tensors + one row group).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from saml_core.data.build import check_scenario_counts
from saml_core.data.encoder import Encoder
from saml_core.data.schema import RawTable, Schema
from saml_core.data.taobao_raw import _copy_into, default_cache_dir
from saml_core.data.types import (MAPPED_VERSION, DataError, EncodedSplit, FeatureSpec, build_splits,
                                  read_mapped_splits)

CACHE_VERSION = 1
BLOCK_BYTES = 32 << 20  # CSV piece size: bounds the memory of the build
SPLITS = ("train", "validation", "test")
NO_SEQ_LEN = 1  # no behaviour sequences: the (all-PAD) sequence mask has width 1
F32_MAX = float(np.finfo(np.float32).max)  # numbers are stored and encoded as float32


@dataclass(frozen=True)
class Layout:
    """The columns of one CSV kind that we read; other columns are skipped (not parsed)."""

    categorical: tuple[str, ...]  # integer ids
    numeric: tuple[str, ...]  # floats; an empty cell is a missing value (-> train mean)
    label: str  # 0/1
    ids: tuple[str, ...] = ()  # other integer columns kept in the cache (search_id, the scenario)
    track_values: str | None = None  # integer column whose distinct values the manifest lists

    @property
    def int_columns(self) -> tuple[str, ...]:
        return self.ids + self.categorical

    @property
    def columns(self) -> tuple[str, ...]:
        return self.ids + self.categorical + self.numeric + (self.label,)


@dataclass(frozen=True)
class Source:
    key: str  # name of the parquet file in the cache and of the entry in the manifest
    path: Path


# ---- reading and checking one CSV ---------------------------------------------------------
def header(path: Path) -> list[str]:
    with open(path, "r", encoding="utf-8-sig", errors="replace") as f:
        line = f.readline().rstrip("\r\n")
    return [c.strip().strip('"') for c in line.split(",")] if line else []


def check_header(path: Path, layout: Layout) -> list[str]:
    names = header(path)
    missing = [c for c in layout.columns if c not in names]
    if missing:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; the header has "
                        f"{len(names)} column(s): {shown or '(empty file)'}")
    return names


def _lines(block: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without '\\r') byte offsets of the lines of a block."""
    buf = np.frombuffer(block, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    ends = nl if len(buf) == 0 or buf[-1] == 10 else np.append(nl, len(buf))
    starts = np.concatenate([[0], nl + 1])[: len(ends)]
    cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    return starts, ends - cr


def _row_lines(block: bytes, first_line: int) -> np.ndarray:
    """File line number of each parsed row (pyarrow skips empty lines)."""
    starts, ends = _lines(block)
    return first_line + np.flatnonzero(ends > starts)


def _field_count_error(path: Path, block: bytes, first_line: int, n_fields: int) -> DataError | None:
    buf = np.frombuffer(block, dtype=np.uint8)
    starts, ends = _lines(block)
    commas = np.flatnonzero(buf == 44)
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    bad = np.flatnonzero((ends > starts) & (fields != n_fields))
    if len(bad) == 0:
        return None
    i = int(bad[0])
    return DataError(f"{path}: line {first_line + i} has {int(fields[i])} field(s), expected "
                     f"{n_fields} as in the header")


_INT_RE = r"^\s*[+-]?[0-9]+\s*$"


def _conversion_error(path: Path, block: bytes, first_line: int, names: list[str],
                      layout: Layout) -> DataError | None:
    """Re-read a block that failed to convert as text and name its first bad cell."""
    table = pacsv.read_csv(
        pa.py_buffer(block), read_options=pacsv.ReadOptions(column_names=names),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in layout.columns},
                                             include_columns=list(layout.columns)))
    lines = _row_lines(block, first_line)
    found: list[tuple[int, int, str, str, str]] = []  # (row, column order, column, value, what)
    for j, c in enumerate(layout.columns):
        text = table.column(c).combine_chunks()
        if c in layout.int_columns:
            bad = ~np.asarray(pc.fill_null(pc.match_substring_regex(text, _INT_RE), False))
            what = "is not an integer id"
        else:
            values = pd.to_numeric(pd.Series(text.to_pandas()), errors="coerce")
            blank = np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True))
            bad = values.isna().to_numpy() & ~blank
            what = "is not 0 or 1" if c == layout.label else "is not a number"
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            found.append((r, j, c, text[r].as_py(), what))
    if not found:
        return None
    r, _, c, value, what = min(found)
    return DataError(f"{path}: line {int(lines[r])}, column '{c}': the value {value!r} {what}")


def read_blocks(path: Path, layout: Layout) -> Iterator[pa.Table]:
    """The checked rows of one CSV, piece by piece, typed: ints int64, numbers float32, label int8."""
    names = check_header(path, layout)
    types = {c: pa.int64() for c in layout.int_columns}
    types.update({c: pa.float64() for c in layout.numeric})
    types[layout.label] = pa.float64()  # accepts "1.0"; checked to be 0/1 below
    convert = pacsv.ConvertOptions(column_types=types, include_columns=list(layout.columns),
                                   null_values=[""], strings_can_be_null=False)
    read = pacsv.ReadOptions(column_names=names, use_threads=True)
    line = 2  # line number of the next piece's first line (line 1 = header)
    with open(path, "rb") as f:
        f.readline()
        rest = b""
        while True:
            chunk = f.read(BLOCK_BYTES)
            data = rest + chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # a line longer than a piece: read on
                    rest = data
                    continue
            else:
                cut = len(data)
            block, rest = data[:cut], data[cut:]
            if block and not block.isspace():  # (isspace stops at the first other byte; strip would copy)
                yield _parse_block(path, block, line, names, layout, read, convert)
            line += block.count(b"\n")
            if not chunk:
                break


def _parse_block(path, block, first_line, names, layout, read, convert) -> pa.Table:
    try:
        t = pacsv.read_csv(pa.py_buffer(block), read_options=read, convert_options=convert)
    except pa.ArrowInvalid as exc:
        err = (_field_count_error(path, block, first_line, len(names))
               or _conversion_error(path, block, first_line, names, layout))
        if err is None:  # not one of the row problems we can pin down
            last = first_line + block.count(b"\n")
            err = DataError(f"{path}: cannot parse lines {first_line}-{last}: {str(exc).splitlines()[0]}")
        raise err from None
    problems = []  # (row, column order, column, what is wrong)
    for j, c in enumerate(layout.columns):
        col = t.column(c)
        if c in layout.int_columns:
            if col.null_count:
                problems.append((_first(col.is_null()), j, c, "is empty (an integer id is required)"))
        else:
            x = col.to_numpy(zero_copy_only=False)
            if c == layout.label:
                bad = ~np.isin(x, (0.0, 1.0))  # NaN (empty) is bad too
                if bad.any():
                    r = int(np.flatnonzero(bad)[0])
                    shown = "empty" if np.isnan(x[r]) else f"{x[r]:g}"
                    problems.append((r, j, c, f"is {shown}; the label must be 0 or 1"))
            else:
                big = np.abs(x) > F32_MAX  # inf, or a number that float32 storage would make inf
                if big.any():
                    r = int(np.flatnonzero(big)[0])
                    what = "is infinite" if np.isinf(x[r]) else f"{x[r]:g} is out of the float32 range"
                    problems.append((r, j, c, what))
    if problems:
        r, _, c, what = min(problems)
        line = int(_row_lines(block, first_line)[r])
        raise DataError(f"{path}: line {line}, column '{c}': the value {what}")
    cols = {c: t.column(c) for c in layout.int_columns}
    cols.update({c: pc.cast(t.column(c), pa.float32()) for c in layout.numeric})
    cols[layout.label] = pc.cast(t.column(layout.label), pa.int8())
    return pa.table(cols)


def _first(mask: pa.ChunkedArray) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


# ---- the cache ------------------------------------------------------------------------------
def _dir_key(directory: Path) -> str:
    return hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:8]


def fingerprint(kind: str, directory: Path, sources: list[Source]) -> str:
    parts = [f"v{CACHE_VERSION}", kind, str(directory.resolve())]
    for s in sources:
        st = s.path.stat()
        parts.append(f"{s.key}:{s.path.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def build_cache(kind: str, directory: Path, sources: list[Source], layout: Layout,
                cache_dir: str | Path | None = None) -> tuple[Path, dict]:
    """Build (or reuse) the parquet cache of `sources`; returns its folder and manifest."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    prefix = f"{kind}-{_dir_key(directory)}-"
    folder = root / (prefix + fingerprint(kind, directory, sources))
    if (folder / "manifest.json").is_file():
        return folder, json.loads((folder / "manifest.json").read_text())
    tmp = root / f".building-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise DataError(f"{root}: cannot create the cache folder ({exc.strerror}); "
                        "choose another with cache_dir / --cache-dir or $SAML_CACHE_DIR") from None
    try:
        files = {s.key: _write_source(s, layout, tmp) for s in sources}
        manifest = {"version": CACHE_VERSION, "kind": kind, "source": directory.name, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if folder.exists():  # a concurrent build finished first: keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in root.glob(prefix + "*"):  # caches of earlier versions of these files
        if old != folder and (old / "manifest.json").is_file():
            shutil.rmtree(old, ignore_errors=True)
    return folder, json.loads((folder / "manifest.json").read_text())


def _write_source(source: Source, layout: Layout, folder: Path) -> dict:
    rows = positives = groups = 0
    values: set = set()
    writer = None
    try:
        for table in read_blocks(source.path, layout):
            if writer is None:
                # no dictionaries: on wide numeric rows they cost 3x the write and 6x the read time
                writer = pq.ParquetWriter(folder / f"{source.key}.parquet", table.schema, use_dictionary=False)
            writer.write_table(table)
            rows += table.num_rows
            positives += int(pc.sum(table.column(layout.label)).as_py() or 0)
            groups += 1
            if layout.track_values:
                values.update(np.unique(table.column(layout.track_values).to_numpy()).tolist())
    finally:
        if writer is not None:
            writer.close()
    if rows == 0:
        raise DataError(f"{source.path}: no data rows (only a header)")
    return {"file": source.path.name, "rows": rows, "positives": positives, "row_groups": groups,
            "values": sorted(values)}


def read_groups(folder: Path, key: str) -> Iterator[pd.DataFrame]:
    """The cached rows of one source, one row group (one CSV piece) at a time."""
    pf = pq.ParquetFile(folder / f"{key}.parquet")
    for i in range(pf.num_row_groups):
        yield pf.read_row_group(i).to_pandas()


# ---- encoding ------------------------------------------------------------------------------
def store_for(cache: Path, options: str) -> Path:
    """The encoded store of a cache folder for the load options that change the encoding."""
    return cache / f"encoded-v{MAPPED_VERSION}-{options}"


def encode(schema: Schema, parts: Callable[[], Iterator[tuple[RawTable, np.ndarray]]],
           source: str, store: Path | None = None) -> tuple[FeatureSpec, list[EncodedSplit]]:
    """Fit on the train rows and encode all rows into preallocated tensors; returns the spec and
    [train, valid, test].

    parts(): a fresh iterator of (table, split) pairs, split [N] with 0 train, 1 validation,
    2 test. schema.scenario_values must be declared (the scenarios are known from the files).
    store: a folder for the encoded splits as memory-mapped .npy files (`types.write_mapped_splits`):
    reused when complete (no pass over the data at all), else built; None: tensors in memory.
    """
    if store is not None:
        found = read_mapped_splits(store)
        if found is not None:
            return found
    values = pd.Index(schema.scenario_values)
    k = len(values)
    counts = np.zeros(3, dtype=np.int64)
    n_scen = np.zeros(k, dtype=np.int64)
    pos_scen = np.zeros(k, dtype=np.int64)

    def train_parts():
        for table, split in parts():
            counts[:] += np.bincount(split, minlength=3)
            train = _rows(table, split == 0)
            raw = train.frame[schema.scenario].to_numpy()
            idx = values.get_indexer(raw)
            if (idx < 0).any():
                raise DataError(f"{source}: column '{schema.scenario}' has the scenario value "
                                f"{raw[idx < 0][0]!r}, not among {list(schema.scenario_values)}")
            n_scen[:] += np.bincount(idx, minlength=k)
            pos_scen[:] += np.bincount(idx, weights=train.frame[schema.label].to_numpy(np.float64),
                                       minlength=k).astype(np.int64)
            yield train

    enc = Encoder(schema, NO_SEQ_LEN, source=source).fit_many(train_parts())
    for name, c in zip(SPLITS, counts):
        if c == 0:
            raise DataError(f"{source}: the {name} split is empty")
    check_scenario_counts(schema, enc.scenario_values, n_scen, pos_scen, source)

    def fill(out):
        filled = [0, 0, 0]
        for table, split in parts():
            for s in range(3):
                rows = split == s
                n = int(rows.sum())
                if n:
                    _copy_into(out[s], enc.transform(_rows(table, rows), SPLITS[s]), filled[s])
                    filled[s] += n

    return build_splits(enc.spec, counts.tolist(), fill, store)


def _rows(table: RawTable, mask: np.ndarray) -> RawTable:
    return table if mask.all() else table.take(mask)  # a whole file in one split: no copy
