"""`movielens:DIR`: MovieLens ratings as a multi-scenario click log (docs/DATA.md, `movielens:DIR`).

DIR holds one of the layouts users download, recognised by its files:

- ML-100k as GroupLens ships it: `u.data` (user, item, rating, timestamp; tab-separated),
  `u.user` (id|age|gender|occupation|zip) and `u.item` (id|title|release date|video date|URL|19
  genre flags), `|`-separated, latin-1;
- ML-1M as GroupLens ships it: `ratings.dat`, `users.dat` (age as ML-1M's age code, occupation as
  its code 0-20), `movies.dat` (genres `A|B`), `::`-separated, latin-1;
- RecBole's atomic files `NAME.inter`, `NAME.user`, `NAME.item` (tab-separated, typed headers such
  as `user_id:token`; e.g. ml-100k.inter).

Default protocol: Scenario-Wise-Rec's (Li et al., arXiv 2412.17374; its MovieLens script): a rating
above 3 is a click, the scenario is the user's age group ({1, 18}, {25}, {35, 45, 50, 56} of
ML-1M's age codes; ages in years are cut at the same ages), and the ratings are split at random
8:1:1 with the data seed. The options (other scenarios, a per-user time split, Scenario-Wise-Rec's
own feature set): docs/DATA.md.

Every row carries the user's behaviour sequence: the movies the user rated STRICTLY before the
rating's second (ratings of the same second are left out: their order is unknown), most recent
last. It lists every rated movie, clicked or not, and never a rating: under the random split a
train row's history can name a movie whose rating is a test row, and a history that kept only
the clicked movies would tell the model that test label.

Everything is whole-column numpy/pandas work: one sort of all ratings by (user, time, item) gives
every row's history by L vectorised gathers.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from saml_core.data.build import encode_splits
from saml_core.data.schema import RawTable, Schema, SeqColumn
from saml_core.data.types import DataError, MultiScenarioData

# GroupLens' genre list (ML-100k's u.genre, the order of u.item's flags); ML-1M uses the same names.
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")
# Scenario-Wise-Rec's age groups of ML-1M's age codes: {1, 18}, {25}, {35, 45, 50, 56}. A code is the
# lower end of its age range (18 = 18-24), so the same cut-offs group ages in years (ML-100k).
AGE_CUTS = (25, 35)
AGE_GROUPS = ("under 25", "25-34", "35 and over")
GENDERS = ("F", "M")
GENDER_NAMES = ("female", "male")
# ML-1M's occupation codes (its README)
ML1M_OCCUPATIONS = ("other", "academic/educator", "artist", "clerical/admin", "college/grad student",
                    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
                    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
                    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer")

SCENARIOS = {"age": ("age group", "age groups"), "occupation": ("occupation", "occupations"),
             "gender": ("gender", "genders")}
SPLITS = ("random", "user-time")
FEATURES = ("all", "swr")
TRAIN_FRACTION, VALID_FRACTION = 0.8, 0.1  # random split (Scenario-Wise-Rec's 8:1:1)
HOLDOUT_FRACTION = 0.1  # user-time split: each user's last 10 % test, the 10 % before validation
DEFAULT_SEQ_LEN = 20
MAX_SEQ_LEN = 1000  # the history tensor is rows x seq_len: a bound on what one option can allocate
ZIP_PREFIX = 2  # characters of the zip code kept: about a US state (finer prefixes ~ one per user)
MIN_RATING, MAX_RATING = 0.5, 5.0

# features="all": every attribute the files hold, plus the behaviour sequences
ALL_SCHEMA = dict(categorical=("user_id", "item_id", "gender", "age", "occupation", "zip_prefix", "genre",
                               "genres", "year"),
                  sequences=(SeqColumn("hist_item", "item_id"), SeqColumn("hist_genre", "genre")))
# features="swr": Scenario-Wise-Rec's MovieLens features (ids, gender, occupation, full zip code, first
# genre as categorical, age as a number), no sequences
SWR_SCHEMA = dict(categorical=("user_id", "item_id", "gender", "occupation", "zip", "genre"), numeric=("age",))


@dataclass(frozen=True)
class Layout:
    name: str  # shown in info and errors
    title: str  # the dataset's short name
    ratings: str
    users: str
    items: str

    @property
    def files(self) -> tuple[str, str, str]:
        return self.ratings, self.users, self.items


ML100K = Layout("ML-100k (GroupLens files)", "ML-100k", "u.data", "u.user", "u.item")
ML1M = Layout("ML-1M (GroupLens files)", "ML-1M", "ratings.dat", "users.dat", "movies.dat")


def _atomic(stem: str) -> Layout:
    return Layout(f"RecBole atomic files ({stem})", stem, f"{stem}.inter", f"{stem}.user", f"{stem}.item")


LOOKED_FOR = ("u.data + u.user + u.item (ML-100k), ratings.dat + users.dat + movies.dat (ML-1M), "
              "or NAME.inter + NAME.user + NAME.item (RecBole atomic files, e.g. ml-100k.inter)")


def detect(folder: Path) -> Layout:
    """The layout of the MovieLens files in `folder` (GroupLens ML-100k, then ML-1M, then atomic)."""
    if not folder.exists():
        raise DataError(f"{folder}: folder not found (movielens:DIR needs the folder holding {LOOKED_FOR})")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (movielens:DIR needs the folder holding {LOOKED_FOR})")
    stems = sorted(p.stem for p in folder.glob("*.inter") if p.is_file())
    candidates = [ML100K, ML1M, *(_atomic(s) for s in stems)]
    for layout in candidates:
        if all((folder / f).is_file() for f in layout.files):
            return layout
    for layout in candidates:  # part of a layout: say what is missing
        have = [f for f in layout.files if (folder / f).is_file()]
        if have:
            missing = [f for f in layout.files if f not in have]
            raise DataError(f"{folder}: has {', '.join(have)} but not {', '.join(missing)} "
                            f"({layout.title} needs all three: {' + '.join(layout.files)})")

    def holds_ratings(sub: Path) -> bool:
        return sub.is_dir() and ((sub / "u.data").is_file() or (sub / "ratings.dat").is_file()
                                 or any(sub.glob("*.inter")))

    nested = [p.name for p in sorted(folder.iterdir()) if holds_ratings(p)]
    hint = f"; the subfolder {nested[0]} holds some: use movielens:{folder / nested[0]}" if nested else ""
    raise DataError(f"{folder}: no MovieLens files found; looked for {LOOKED_FOR}{hint}")


# ---- reading one file ----------------------------------------------------------------------------
def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror})") from None


def _data_lines(path: Path, data: bytes, sep: str, n_fields: int, first: int, encoding: str,
                shown_sep: str) -> np.ndarray:
    """1-based numbers of the data lines (from line `first`, blank lines skipped as the parser skips
    them), so that row r of the parsed table is line lines[r]. A line with another number of fields
    is an error naming it (the parser would shift or pad it silently)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    if len(arr) and arr[-1] != 10:
        ends = np.append(ends, len(arr))
    starts = np.r_[0, ends[:-1] + 1].astype(np.int64)
    seps = np.flatnonzero(arr == ord(sep))
    fields = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
    length = ends - starts
    cr = length > 0
    cr[cr] = arr[ends[cr] - 1] == 13
    blank = length - cr == 0
    number = np.arange(1, len(starts) + 1)
    keep = (number >= first) & ~blank
    bad = np.flatnonzero(keep & (fields != n_fields))
    if len(bad):
        i = int(bad[0])
        text = data[starts[i]:ends[i]].decode(encoding, "replace").rstrip("\r").replace(sep, shown_sep)
        raise DataError(f"{path}: line {i + 1} has {int(fields[i])} field(s), expected {n_fields}: {text[:80]!r}")
    return number[keep]


@dataclass
class Table:
    """One parsed file: `frame` with our column names, the file's own name of each column (for
    errors) and the line number of each row."""

    path: Path
    frame: pd.DataFrame
    shown: dict
    lines: np.ndarray

    def fail(self, bad: np.ndarray, column: str, values, why: str) -> None:
        """One error for the first True of `bad` (a row mask), naming file, line, column, value."""
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            n = int(bad.sum())
            more = f" ({n:,} rows)" if n > 1 else ""
            raise DataError(f"{self.path}: line {self.lines[i]}, column '{self.shown.get(column, column)}': the "
                            f"value {str(values[i])[:40]!r} {why}{more}")

    def unique(self, column: str) -> None:
        ids = self.frame[column].to_numpy()
        self.fail(pd.Series(ids).duplicated().to_numpy(), column, ids, "appears a second time (each id once)")


def _parse(path: Path, data: bytes, sep: str, columns: dict, *, first: int, encoding: str, ints: tuple = (),
           floats: tuple = (), shown_sep: str | None = None) -> Table:
    """columns: our name -> the file's own name, in file order. Whole-file C parsing with typed
    numeric columns (~5x faster than text columns on 1M rows); only when that fails is the file read
    as text to name the bad value. shown_sep: the file's own separator, where `data` has `sep`."""
    lines = _data_lines(path, data, sep, len(columns), first, encoding, shown_sep or sep)
    names = list(columns)
    # a byte that is not valid in the encoding becomes U+FFFD: titles are never used, ids are checked
    kwargs = dict(sep=sep, header=None, names=names, skiprows=first - 1, quoting=csv.QUOTE_NONE,
                  encoding=encoding, encoding_errors="replace", na_filter=False, engine="c")
    dtype = {c: (np.int64 if c in ints else np.float64 if c in floats else str) for c in names}
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=dtype, **kwargs)
    except (ValueError, OverflowError):
        frame = pd.read_csv(io.BytesIO(data), dtype=str, **kwargs)
        for c in (*ints, *floats):
            frame[c] = _numbers(frame[c], path, lines, columns[c], integer=c in ints)
    if len(frame) != len(lines):  # the parser and the line scan disagree: an odd line break
        raise DataError(f"{path}: read {len(frame):,} rows but the file has {len(lines):,} data lines; "
                        "check for stray line breaks")
    table = Table(path, frame, columns, lines)
    for c in floats:
        x = frame[c].to_numpy()
        table.fail(~np.isfinite(x), c, x, "is not a finite number")
    return table


def _numbers(col: pd.Series, path: Path, lines: np.ndarray, column: str, integer: bool) -> np.ndarray:
    x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(x)
    if integer:
        bad |= (x != np.floor(x)) | (np.abs(x) >= 2.0**53)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = str(col.iloc[i])
        what = "is empty" if not value.strip() else f"{value[:40]!r} is not {'an integer' if integer else 'a number'}"
        raise DataError(f"{path}: line {lines[i]}, column '{column}': the value {what}")
    return x.astype(np.int64) if integer else x


# ---- the three layouts -> ratings, users, items ----------------------------------------------------
@dataclass
class Files:
    """The three files in one form. ratings: user, item (int64), rating (float64), timestamp (int64
    seconds after `_check`); users: user, age (int64), gender ('F'/'M'), occupation (text), zip
    (text); items: item, year (int64, 0 = unknown), genres (int64 bit set over GENRES)."""

    layout: Layout
    ratings: Table
    users: Table
    items: Table


def _genre_bits(table: Table, text: pd.Series, sep: str, column: str) -> np.ndarray:
    """'Action|Comedy' -> bit set over GENRES; an unknown genre name is an error."""
    dummies = text.str.get_dummies(sep=sep)
    unknown = [g for g in dummies.columns if g not in GENRES]
    if unknown:
        table.fail(dummies[unknown[0]].to_numpy() > 0, column, text.to_numpy(),
                   f"names the genre {unknown[0]!r}, which is not a MovieLens genre ({', '.join(GENRES)})")
    bits = np.zeros(len(text), dtype=np.int64)
    for g in dummies.columns:  # at most 19 genres, not rows
        bits |= (dummies[g].to_numpy().astype(np.int64) > 0) << GENRES.index(g)
    return bits


def _year(text: pd.Series, pattern: str) -> np.ndarray:
    """Release year from text (0 when absent: ML-100k's 'unknown' movie, RecBole's 'unkonwn' or 'V')."""
    found = text.str.extract(pattern, expand=False)
    return pd.to_numeric(found, errors="coerce").fillna(0).to_numpy(dtype=np.int64)


def _items(table: Table, year: np.ndarray, genres: np.ndarray) -> Table:
    frame = pd.DataFrame({"item": table.frame["item"].to_numpy(), "year": year, "genres": genres})
    return Table(table.path, frame, table.shown, table.lines)


def _read_ml100k(folder: Path, layout: Layout) -> Files:
    # column names as GroupLens' README names them
    path = folder / layout.ratings
    ratings = _parse(path, _bytes(path), "\t", {"user": "user id", "item": "item id", "rating": "rating",
                                               "timestamp": "timestamp"}, first=1, encoding="latin-1",
                     ints=("user", "item"), floats=("rating", "timestamp"))
    path = folder / layout.users
    users = _parse(path, _bytes(path), "|", {"user": "user id", "age": "age", "gender": "gender",
                                             "occupation": "occupation", "zip": "zip code"}, first=1,
                   encoding="latin-1", ints=("user", "age"))
    path = folder / layout.items
    flags = {f"flag_{j}": g for j, g in enumerate(GENRES)}
    items = _parse(path, _bytes(path), "|", {"item": "movie id", "title": "movie title", "release": "release date",
                                             "video": "video release date", "url": "IMDb URL", **flags},
                   first=1, encoding="latin-1", ints=("item", *flags))
    f = items.frame[list(flags)].to_numpy()
    bad = (f != 0) & (f != 1)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        items.fail(bad[:, j], f"flag_{j}", f[:, j], "is not 0 or 1 (a genre flag)")
    bits = (f.astype(np.int64) << np.arange(len(GENRES), dtype=np.int64)).sum(axis=1)
    return Files(layout, ratings, users, _items(items, _year(items.frame["release"], r"(\d{4})\s*$"), bits))


def _read_ml1m(folder: Path, layout: Layout) -> Files:
    # "::" is two characters, which only pandas' slow Python parser splits on: as one tab (no field
    # of these files holds a tab) the C parser reads 1M ratings in ~0.1 s. Names as in ML-1M's README.
    def parse(file, columns, **kw):
        path = folder / file
        return _parse(path, _bytes(path).replace(b"::", b"\t"), "\t", columns, first=1, encoding="latin-1",
                      shown_sep="::", **kw)

    ratings = parse(layout.ratings, {"user": "UserID", "item": "MovieID", "rating": "Rating",
                                     "timestamp": "Timestamp"}, ints=("user", "item"), floats=("rating", "timestamp"))
    users = parse(layout.users, {"user": "UserID", "gender": "Gender", "age": "Age", "occupation": "Occupation",
                                 "zip": "Zip-code"}, ints=("user", "age", "occupation"))
    code = users.frame["occupation"].to_numpy()
    users.fail((code < 0) | (code >= len(ML1M_OCCUPATIONS)), "occupation", code,
               f"is not an ML-1M occupation code (0-{len(ML1M_OCCUPATIONS) - 1})")
    users.frame["occupation"] = np.asarray(ML1M_OCCUPATIONS, dtype=object)[code]
    items = parse(layout.items, {"item": "MovieID", "title": "Title", "genres": "Genres"}, ints=("item",))
    return Files(layout, ratings, users,
                 _items(items, _year(items.frame["title"], r"\((\d{4})\)\s*$"),
                        _genre_bits(items, items.frame["genres"], "|", "genres")))


def _read_atomic(folder: Path, layout: Layout) -> Files:
    def parse(file: str, need: dict, ints=(), floats=()) -> Table:
        """need: our name -> accepted header names (the first present is taken)."""
        path = folder / file
        data = _bytes(path)
        head = data[:data.find(b"\n") if b"\n" in data else len(data)].decode("utf-8", "replace")
        head = head.lstrip("\ufeff").rstrip("\r")
        fields = head.split("\t")  # typed names such as user_id:token
        names = [h.split(":")[0].strip() for h in fields]
        ours = {}
        for key, accepted in need.items():
            hit = next((a for a in accepted if a in names), None)
            if hit is None:
                raise DataError(f"{path}: missing column {'/'.join(accepted)}; the header has {head[:200]!r}")
            ours[names.index(hit)] = key
        columns = {ours.get(j, f"field_{j}"): fields[j] for j in range(len(fields))}
        return _parse(path, data, "\t", columns, first=2, encoding="utf-8", ints=ints, floats=floats)

    ratings = parse(layout.ratings, {"user": ("user_id",), "item": ("item_id",), "rating": ("rating",),
                                     "timestamp": ("timestamp",)}, ints=("user", "item"), floats=("rating", "timestamp"))
    users = parse(layout.users, {"user": ("user_id",), "age": ("age",), "gender": ("gender",),
                                 "occupation": ("occupation",), "zip": ("zip_code", "zip")}, ints=("user", "age"))
    items = parse(layout.items, {"item": ("item_id",), "year": ("release_year", "year"),
                                 "genres": ("class", "genre", "genres")}, ints=("item",))
    return Files(layout, ratings, users,
                 _items(items, _year(items.frame["year"], r"^\s*(\d{4})\s*$"),
                        _genre_bits(items, items.frame["genres"], " ", "genres")))


def read_files(folder: str | Path) -> Files:
    folder = Path(folder).expanduser()
    layout = detect(folder)
    read = _read_ml100k if layout is ML100K else _read_ml1m if layout is ML1M else _read_atomic
    files = read(folder, layout)
    _check(files)
    return files


def _check(f: Files) -> None:
    ratings, users, items = f.ratings.frame, f.users.frame, f.items.frame
    if len(ratings) == 0:
        raise DataError(f"{f.ratings.path}: no ratings")
    r = ratings["rating"].to_numpy()
    f.ratings.fail((r < MIN_RATING) | (r > MAX_RATING), "rating", r,
                   f"is not a MovieLens rating ({MIN_RATING:g} to {MAX_RATING:g} stars)")
    t = ratings["timestamp"].to_numpy()
    f.ratings.fail((t < 0) | (t >= 2.0**53), "timestamp", t, "is not a time in seconds")
    ratings["timestamp"] = np.floor(t).astype(np.int64)
    f.users.unique("user")
    f.items.unique("item")
    age = users["age"].to_numpy()
    f.users.fail((age < 0) | (age > 150), "age", age, "is not an age (0-150)")
    gender = users["gender"].astype(str).str.strip().str.upper().to_numpy(dtype=object)
    f.users.fail(~np.isin(gender, GENDERS), "gender", users["gender"].to_numpy(), "is not F or M")
    users["gender"] = gender
    users["occupation"] = users["occupation"].astype(str).str.strip().to_numpy(dtype=object)
    users["zip"] = users["zip"].astype(str).str.strip().str.upper().to_numpy(dtype=object)
    for col, other in (("user", f.users), ("item", f.items)):
        ids = ratings[col].to_numpy()
        missing = pd.Index(other.frame[col].to_numpy()).get_indexer(ids) < 0
        f.ratings.fail(missing, col, ids, f"is not in {other.path.name}")


# ---- ratings -> one row per rating with its features and history -----------------------------------
def first_genre(bits: np.ndarray) -> np.ndarray:
    """Index in GENRES of the lowest set bit: a movie's first genre in GroupLens' order (0 = unknown
    when none is set)."""
    low = bits & -bits
    return np.where(bits > 0, np.log2(np.maximum(low, 1)).astype(np.int64), 0)


@dataclass
class Ratings:
    """All ratings sorted by (user, time, item), with their features; `table(rows)` is the raw table
    of some of them, so each split's history is gathered once, for its own rows only.

    columns: frame column -> [N] values. Text attributes (gender, occupation, zip) are codes of
    their sorted values: pandas' string columns cost ~1 s per million rows to build and look up.
    history: sequence name -> [N] the per-rating value its history lists (item id, first genre).
    user_start: [N] first row of the rating's user; earlier: [N] first row of the rating's
    (user, second), so rows user_start..earlier-1 are the user's ratings at an earlier second."""

    columns: dict
    history: dict
    user_start: np.ndarray
    earlier: np.ndarray
    seq_len: int

    def __len__(self) -> int:
        return len(self.user_start)

    def table(self, rows: np.ndarray | None = None) -> RawTable:
        """rows: boolean mask or index (None = all). Histories: the last seq_len earlier ratings,
        most recent last, 0 on the left where there are fewer."""
        idx = np.arange(len(self)) if rows is None else np.asarray(rows)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        frame = pd.DataFrame({k: v[idx] for k, v in self.columns.items()})
        if not self.history:
            return RawTable(frame=frame)
        width, start, stop = self.seq_len, self.user_start[idx], self.earlier[idx]
        seqs = {name: np.zeros((len(idx), width), dtype=values.dtype) for name, values in self.history.items()}
        for k in range(width):  # width gathers over all rows, not a loop over rows
            pos = stop - width + k
            ok = pos >= start
            pos = np.maximum(pos, 0)
            for name, values in self.history.items():
                seqs[name][:, k] = np.where(ok, values[pos], 0)
        return RawTable(frame=frame, seqs=seqs, seq_lengths=np.minimum(stop - start, width))


def _starts(new: np.ndarray) -> np.ndarray:
    """[N] bool, True where a run starts -> [N] index of the run's first row."""
    return np.maximum.accumulate(np.where(new, np.arange(len(new)), 0))


def _split(user: np.ndarray, user_start: np.ndarray, split: str, seed: int) -> np.ndarray:
    """Rows sorted by (user, ts, item) -> 0 train, 1 validation, 2 test."""
    n = len(user)
    part = np.zeros(n, dtype=np.int8)
    if split == "random":
        perm = np.random.default_rng(seed).permutation(n)
        n_train, n_valid = int(n * TRAIN_FRACTION), int(n * VALID_FRACTION)
        part[perm[n_train:n_train + n_valid]] = 1
        part[perm[n_train + n_valid:]] = 2
        return part
    first = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    count = np.repeat(np.diff(np.r_[first, n]), np.diff(np.r_[first, n]))
    hold = np.floor(count * HOLDOUT_FRACTION + 0.5).astype(np.int64)  # 10 % rounded half up
    rank = np.arange(n) - user_start  # position in the user's (time, item) order
    part[rank >= count - 2 * hold] = 1
    part[rank >= count - hold] = 2
    return part


def _codes(values: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Text values -> (int codes, the sorted distinct values)."""
    uniq = tuple(sorted(pd.unique(values), key=str))
    return pd.Index(uniq).get_indexer(values).astype(np.int64), uniq


def _small(values: np.ndarray) -> np.ndarray:
    """int32 when the values fit (the histories are rows x seq_len: half the memory)."""
    return values.astype(np.int32) if len(values) == 0 or (values.min() >= 0 and values.max() < 2**31) else values


def read_table(folder: str | Path, *, scenario: str = "age", split: str = "random", features: str = "all",
               seq_len: int = DEFAULT_SEQ_LEN, seed: int = 0) -> tuple[Ratings, Schema, dict]:
    """(ratings, schema, facts for info). Besides the schema's columns, `split` (0 train, 1 valid,
    2 test), `rating` and `timestamp`."""
    files = read_files(folder)
    r, users, items = files.ratings.frame, files.users.frame, files.items.frame
    order = np.lexsort((r["item"].to_numpy(), r["timestamp"].to_numpy(), r["user"].to_numpy()))
    user, item = r["user"].to_numpy()[order], r["item"].to_numpy()[order]
    ts, rating = r["timestamp"].to_numpy()[order], r["rating"].to_numpy()[order]
    u = pd.Index(users["user"].to_numpy()).get_indexer(user)
    i = pd.Index(items["item"].to_numpy()).get_indexer(item)
    new_user = np.r_[True, user[1:] != user[:-1]]
    user_start = _starts(new_user)
    earlier = _starts(new_user | np.r_[True, ts[1:] != ts[:-1]])

    age = users["age"].to_numpy()
    gender = pd.Index(GENDERS).get_indexer(users["gender"].to_numpy())
    occupation, occupations = _codes(users["occupation"].to_numpy())
    if scenario == "age":
        code, names = np.searchsorted(np.asarray(AGE_CUTS), age, side="right"), AGE_GROUPS
    elif scenario == "gender":
        code, names = gender, GENDER_NAMES
    else:
        code, names = occupation, occupations
    genre = first_genre(items["genres"].to_numpy())[i]
    columns = {"split": _split(user, user_start, split, seed), "scenario": code[u].astype(np.int64),
               "click": (rating > 3).astype(np.int64), "rating": rating, "timestamp": ts,
               "user_id": user, "item_id": item, "gender": gender[u], "occupation": occupation[u], "genre": genre}
    if features == "all":
        zip_prefix, _ = _codes(users["zip"].str[:ZIP_PREFIX].to_numpy(dtype=object))
        columns.update(age=age[u], zip_prefix=zip_prefix[u], genres=items["genres"].to_numpy()[i],
                       year=items["year"].to_numpy()[i])
        history, spec = {"hist_item": _small(item), "hist_genre": _small(genre)}, ALL_SCHEMA
    else:
        columns.update(zip=_codes(users["zip"].to_numpy(dtype=object))[0][u], age=age[u].astype(np.float64))
        history, spec = {}, SWR_SCHEMA
    schema = Schema(scenario="scenario", label="click", scenario_values=tuple(range(len(names))),
                    scenario_names=tuple(names), **spec)
    since_first = ts - ts[user_start]  # seconds since the user's first rating
    facts = {"layout": files.layout, "users": int(new_user.sum()), "items": int(len(np.unique(item))),
             "occupations": occupations, "within_hour_of_first": float(np.mean(since_first <= 3600)),
             "within_day_of_first": float(np.mean(since_first <= 86400))}
    return Ratings(columns, history, user_start, earlier, seq_len), schema, facts


def _choice(option: str, value, choices) -> str:
    if value not in choices:
        raise DataError(f"movielens: option {option}={value!r} is not one of {', '.join(choices)}")
    return value


def load_movielens(path: str | Path, *, name: str | None = None, seed: int = 0, scenario: str = "age",
                   split: str = "random", features: str = "all", seq_len: int | None = None, min_count: int = 1,
                   exclude=(), min_positives: int | None = 10) -> MultiScenarioData:
    """movielens:DIR (module docstring; docs/DATA.md). min_positives goes to `build.encode_splits`."""
    _choice("scenario", scenario, SCENARIOS)
    _choice("split", split, SPLITS)
    _choice("features", features, FEATURES)
    if seq_len is not None and (isinstance(seq_len, bool) or not isinstance(seq_len, int)
                                or not 1 <= seq_len <= MAX_SEQ_LEN):
        raise DataError(f"movielens: seq_len must be a whole number from 1 to {MAX_SEQ_LEN}, got {seq_len!r}")
    # features="swr" has no sequences: seq_len is accepted and the spec's length is 1 (as aliexpress)
    length = (seq_len or DEFAULT_SEQ_LEN) if features == "all" else 1
    folder = Path(path).expanduser()
    ratings, schema, facts = read_table(folder, scenario=scenario, split=split, features=features,
                                        seq_len=length, seed=seed)
    part = ratings.columns["split"]
    noun = SCENARIOS[scenario]
    n = len(ratings)
    ctr = float(ratings.columns["click"].mean())
    train, valid, test = (ratings.table(part == k) for k in range(3))
    del ratings  # the per-split tables are copies: ~130 MB less at the peak on ML-1M
    caveats = [
        f"Ratings, not impressions: a click is a rating above 3 (Scenario-Wise-Rec's rule), and every row is a "
        f"movie the user chose to rate, so the click rate ({ctr:.0%}) is far above an ad log's.",
    ]
    if split == "random":
        caveats.append(
            "Random 8:1:1 split of the ratings (Scenario-Wise-Rec's protocol): a user's later ratings can be in "
            "train while earlier ones are in test, and a train row's behaviour sequence can name a movie whose "
            "rating is a test row (never the rating itself). split=user-time tests forward in time.")
    caveats.append(
        f"{facts['within_hour_of_first']:.0%} of the ratings were given within an hour of the user's first one "
        f"({facts['within_day_of_first']:.0%} within a day): a user's earlier ratings are mostly the same sitting, "
        f"not the viewing history before the movie.")
    if scenario == "age":
        caveats.append(
            "Age groups as Scenario-Wise-Rec groups ML-1M's age codes ({1, 18}, {25}, {35, 45, 50, 56}); ages in "
            "years (ML-100k) are cut at the same ages: under 25, 25-34, 35 and over.")
    split_text = (f"random 8:1:1 of all ratings (data seed {seed})" if split == "random" else
                  "per user by time: each user's last 10 % of ratings (rounded half up; ties within a second "
                  "ordered by item id) test, the 10 % before them validation, the rest train")
    info = {
        "title": f"MovieLens {facts['layout'].title} ({n:,} ratings; scenario = {noun[0]})",
        "simulated": False,
        "samples": n,
        "users": facts["users"],
        "items": facts["items"],
        "format": facts["layout"].name,
        "files": list(facts["layout"].files),
        "protocol": {"click": "rating > 3", "scenario": scenario, "split": split, "features": features},
        "split": split_text,
        "seed_dependent": split == "random",
        "caveats": caveats,
        "provenance": "MovieLens by GroupLens Research (grouplens.org/datasets/movielens), read from the user's "
                      "folder; the project ships none (its terms forbid redistribution)",
    }
    return encode_splits(
        name=name or f"movielens:{path}",
        schema=schema,
        train=train,
        valid=valid,
        test=test,
        seq_len=length,
        source=str(folder),
        info=info,
        category_field="genre",
        scenario_noun=noun,
        min_positives=min_positives,
        min_count=min_count,
        exclude=tuple(exclude or ()),
    )
