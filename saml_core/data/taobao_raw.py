"""`taobao-raw:DIR`: the raw Tianchi "Ad Display/Click Data on Taobao.com" tables, out of core.

DIR holds the four raw CSV tables, exactly as published:
  raw_sample.csv    user,time_stamp,adgroup_id,pid,nonclk,clk          (26 M impressions)
  ad_feature.csv    adgroup_id,cate_id,campaign_id,customer,brand,price
  user_profile.csv  userid,cms_segid,cms_group_id,final_gender_code,age_level,pvalue_level,
                    shopping_level,occupation,new_user_class_level      (header has a trailing space)
  behavior_log.csv  user,time_stamp,btag,cate,brand                     (~700 M rows, ~20 GB)

Pipeline (bounded memory: nothing holds more than one CSV block or one user bucket):
  1. user_profile and ad_feature are small: read whole.
  2. raw_sample is streamed block by block: impressions whose user has no profile are dropped,
     days outside 2017-05-06..13 (Beijing time, UTC+8) are dropped, ad features are joined, and
     rows are appended to one of B bucket files (Arrow IPC) by hash(user).
  3. behavior_log is streamed block by block: behaviours of users without impressions are
     dropped, the rest go to the same user buckets.
  4. Per bucket (vectorised): sort behaviours by (user, time); for every impression, a
     searchsorted on the key user * 2^32 + time finds the behaviours STRICTLY before it; the
     last `hist` of them (category, brand, behaviour type) form its sequence, most recent last.
  5. The joined buckets are the cache (parquet under cache_dir, default ~/.cache/saml_core,
     keyed by the folder and the input files' sizes and mtimes);
     a manifest written last marks it complete, so an interrupted build is never reused.
Loading then fits the encoder on the train buckets and encodes bucket by bucket into
preallocated tensors: by default .npy files of an encoded store in the cache folder
(`encoded-v<version>-seq<L>/`), built once and memory-mapped by every later load, so that
neither loading nor training holds the encoded log in memory (`mapped=False`: in memory).

Scenario = new_user_class_level (city level); a missing level becomes level 0, as in the DMR
preprocessing of the taobao-sample file. Split: train 2017-05-06..11, validation 05-12 (the last
train day), test 05-13. Behaviour types: pv=1, cart=2, fav=3, buy=4; the shown ad itself gets 0
in the target's btag field.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from saml_core.data.build import check_scenario_counts
from saml_core.data.encoder import Encoder
from saml_core.data.schema import RawTable
from saml_core.data.taobao import (AD, CITY_LEVELS, DEFAULT_SEQ_LEN, PROFILE, SCENARIO_NOUN, SCHEMA as SAMPLE_SCHEMA,
                                   TARGET_BTAG)
from saml_core.data.types import (MAPPED_VERSION, DataError, EncodedSplit, MultiScenarioData, build_splits,
                                  read_mapped_splits)

CACHE_VERSION = 1
DAY0 = pd.Timestamp("2017-05-06").value // 10**9  # seconds, UTC midnight
TZ_OFFSET = 8 * 3600  # Taobao days are Beijing days
N_DAYS, VALID_DAY, TEST_DAY = 8, 6, 7  # day 6 = 2017-05-12, day 7 = 2017-05-13
BLOCK_BYTES = 32 << 20  # CSV block size: bounds the memory of the streaming passes
BUCKET_BEHAVIOURS = 2_000_000  # target behaviour rows per user bucket (smaller: less memory, faster sorts)
BTAG_CODES = {"pv": 1, "cart": 2, "fav": 3, "buy": 4}

FILES = {
    "raw_sample": ("user", "time_stamp", "adgroup_id", "pid", "nonclk", "clk"),
    "ad_feature": ("adgroup_id", "cate_id", "campaign_id", "customer", "brand", "price"),
    "user_profile": ("userid", "cms_segid", "cms_group_id", "final_gender_code", "age_level",
                     "pvalue_level", "shopping_level", "occupation", "new_user_class_level"),
    "behavior_log": ("user", "time_stamp", "btag", "cate", "brand"),
}
# the same fields as the joined sample; the raw log also has a day to split on
SCHEMA = replace(SAMPLE_SCHEMA, day="day")
assert PROFILE == FILES["user_profile"][1:-1], "profile fields of the sample and the raw table differ"


# ---- reading the raw tables ----------------------------------------------------------------
def _path(directory: Path, table: str) -> Path:
    path = directory / f"{table}.csv"
    if not path.is_file():
        raise DataError(f"{path}: missing raw table '{table}.csv' (expected in {directory})")
    return path


def _header(path: Path) -> list[str]:
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        return [c.strip() for c in f.readline().rstrip("\r\n").split(",")]


def _check_header(path: Path, table: str) -> list[str]:
    names = _header(path)
    missing = [c for c in FILES[table] if c not in names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; the header is {names}")
    return names


def _stream(path: Path, table: str, types: dict):
    """Record batches of a raw CSV, columns named without stray spaces, NULL -> null.

    We cut the file into ~BLOCK_BYTES pieces at line ends ourselves and parse each piece with
    pyarrow: its own streaming reader reads ahead without bound when the consumer is slower.
    """
    names = _check_header(path, table)
    convert = pacsv.ConvertOptions(
        column_types={k: v for k, v in types.items() if k in names},
        include_columns=list(types), null_values=["", "NULL", "null", "NaN"],
        strings_can_be_null=True,
    )
    read = pacsv.ReadOptions(column_names=names, use_threads=True)
    with open(path, "rb") as f:
        f.readline()  # header
        rest = b""
        while True:
            chunk = f.read(BLOCK_BYTES)
            data = rest + chunk
            if not chunk:
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # a line longer than a block: read on
                    rest = data
                    continue
            rest = data[cut:]
            if data[:cut].strip():
                try:
                    parsed = pacsv.read_csv(pa.py_buffer(memoryview(data)[:cut]),
                                            read_options=read, convert_options=convert)
                except pa.ArrowInvalid as exc:
                    raise DataError(f"{path}: cannot parse the raw table: {str(exc).splitlines()[0]}") from None
                yield from parsed.to_batches()
            if not chunk:
                break


def _require(batch: pa.RecordBatch, columns: tuple[str, ...], path: Path) -> None:
    """Ids and times must be present: a row without them cannot be placed in time or joined."""
    for c in columns:
        col = batch.column(c)
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{path}: column '{c}' is empty in a row (row {row} of a block): "
                            f"{batch.slice(row, 1).to_pylist()[0]}")


def _read_small(path: Path, table: str, types: dict) -> pd.DataFrame:
    batches = list(_stream(path, table, types))
    if not batches:
        return pd.DataFrame({k: pd.Series(dtype="float64") for k in types})
    return pa.Table.from_batches(batches).to_pandas()


def _pid_codes(col: pa.Array, path: Path) -> pa.Array:
    """'430548_1007' -> 4305481007 (int64): a compact, order-free code of the position id."""
    digits = pc.replace_substring(col, "_", "")
    try:
        if col.null_count:
            raise pa.ArrowInvalid("empty pid")
        return pc.cast(digits, pa.int64())
    except pa.ArrowInvalid:
        bad = [v for v in col.to_pylist() if v is None or not v.replace("_", "").isdigit()][:1]
        raise DataError(f"{path}: column 'pid' has the unexpected value {bad[0]!r} "
                        "(expected digits_digits like 430548_1007)") from None


# ---- stage 1: partition impressions and behaviours by user ---------------------------------
class _Buckets:
    """One Arrow IPC stream per user bucket, opened lazily (unbuffered: memory stays flat)."""

    def __init__(self, folder: Path, prefix: str, n: int):
        self.folder, self.prefix, self.n = folder, prefix, n
        self.writers: dict[int, tuple] = {}

    def path(self, b: int) -> Path:
        return self.folder / f"{self.prefix}-{b:04d}.arrow"

    def write(self, table: pa.Table, user: np.ndarray) -> None:
        bucket = _bucket_of(user, self.n)
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(self.n + 1))
        for b in range(self.n):
            lo, hi = bounds[b], bounds[b + 1]
            if hi > lo:
                part = table.take(pa.array(order[lo:hi]))
                if b not in self.writers:
                    sink = pa.OSFile(str(self.path(b)), "wb")
                    self.writers[b] = (sink, pa.ipc.new_stream(sink, part.schema))
                self.writers[b][1].write_table(part)

    def close(self) -> None:
        for sink, writer in self.writers.values():
            writer.close()
            sink.close()


def _bucket_of(user: np.ndarray, n: int) -> np.ndarray:
    return ((user.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32) % np.uint64(n)).astype(np.int64)


def _partition(directory: Path, work: Path, n_buckets: int, hist: int) -> dict:
    stats = {"impressions_read": 0, "impressions_kept": 0, "no_profile": 0, "out_of_range": 0,
             "behaviours_read": 0, "behaviours_kept": 0}
    profile_path = _path(directory, "user_profile")
    profile = _read_small(profile_path, "user_profile",
                          {c: pa.float64() if c != "userid" else pa.int64() for c in FILES["user_profile"]})
    ads_path = _path(directory, "ad_feature")
    ads = _read_small(ads_path, "ad_feature",
                      {"adgroup_id": pa.int64(), "cate_id": pa.int64(), "campaign_id": pa.int64(),
                       "customer": pa.int64(), "brand": pa.int64(), "price": pa.float64()})
    if profile["userid"].isna().any():
        raise DataError(f"{profile_path}: column 'userid' is empty in a row")
    if profile["userid"].duplicated().any():
        raise DataError(f"{profile_path}: userid {int(profile.loc[profile['userid'].duplicated(), 'userid'].iloc[0])} "
                        "appears twice")
    # The city level drives the scenario; a missing level is level 0 (DMR convention).
    level = profile["new_user_class_level"].fillna(0).astype(np.int64)
    bad = ~level.isin(CITY_LEVELS)
    if bad.any():
        raise DataError(f"{profile_path}: column 'new_user_class_level' has the value "
                        f"{int(level[bad].iloc[0])}; expected one of {list(CITY_LEVELS[1:])} or empty")
    profile["new_user_class_level"] = level
    for c in PROFILE:  # missing profile values (e.g. pvalue_level) are a value of their own: -1
        profile[c] = profile[c].fillna(-1).astype(np.int64)
    for c in AD:
        ads[c] = ads[c].fillna(-1).astype(np.int64)  # NULL brand -> -1

    max_user = int(max(profile["userid"].max() if len(profile) else 0, 0))
    has_profile = np.zeros(max_user + 2, dtype=bool)
    has_profile[profile["userid"].to_numpy()] = True
    profile_idx = np.full(max_user + 2, -1, dtype=np.int64)
    profile_idx[profile["userid"].to_numpy()] = np.arange(len(profile))
    ads = ads.drop_duplicates("adgroup_id").set_index("adgroup_id")

    imp_buckets = _Buckets(work, "imp", n_buckets)
    users_with_imp = np.zeros(max_user + 2, dtype=bool)
    raw_path = _path(directory, "raw_sample")
    lo_ts, hi_ts = DAY0 - TZ_OFFSET, DAY0 - TZ_OFFSET + N_DAYS * 86400
    for batch in _stream(raw_path, "raw_sample", {"user": pa.int64(), "time_stamp": pa.int64(),
                                                   "adgroup_id": pa.int64(), "pid": pa.string(),
                                                   "clk": pa.int64()}):
        stats["impressions_read"] += batch.num_rows
        _require(batch, ("user", "time_stamp", "adgroup_id", "clk"), raw_path)
        user = batch.column("user").to_numpy(zero_copy_only=False)
        ts = batch.column("time_stamp").to_numpy(zero_copy_only=False)
        clk = batch.column("clk").to_numpy(zero_copy_only=False)
        if not np.isin(clk, (0, 1)).all():
            raise DataError(f"{raw_path}: column 'clk' has the value {clk[~np.isin(clk, (0, 1))][0]}; expected 0 or 1")
        known = (user >= 0) & (user <= max_user)
        known[known] = has_profile[user[known]]
        in_range = (ts >= lo_ts) & (ts < hi_ts)
        stats["no_profile"] += int((~known).sum())
        stats["out_of_range"] += int((known & ~in_range).sum())
        keep = np.flatnonzero(known & in_range)
        if len(keep) == 0:
            continue
        u, t = user[keep], ts[keep]
        p = profile.iloc[profile_idx[u]]
        ad = ads.reindex(batch.column("adgroup_id").to_numpy(zero_copy_only=False)[keep])
        out = {"user": u, "time_stamp": t, "day": (t + TZ_OFFSET - DAY0) // 86400,
               "clk": clk[keep].astype(np.int8),
               "pid": _pid_codes(batch.column("pid").take(pa.array(keep)), raw_path).to_numpy(zero_copy_only=False)}
        for c in PROFILE + ("new_user_class_level",):
            out[c] = p[c].to_numpy()
        out["adgroup_id"] = ad.index.to_numpy()
        for c in AD[1:]:  # an ad missing from ad_feature gets -1 (-> OOV) everywhere
            out[c] = ad[c].fillna(-1).to_numpy(dtype=np.int64)
        out["price"] = ad["price"].to_numpy(dtype=np.float64)
        imp_buckets.write(pa.table(out), u)
        users_with_imp[u] = True
        stats["impressions_kept"] += len(keep)
    imp_buckets.close()

    beh_buckets = _Buckets(work, "beh", n_buckets)
    beh_path = _path(directory, "behavior_log")
    for batch in _stream(beh_path, "behavior_log", {"user": pa.int64(), "time_stamp": pa.int64(),
                                                     "btag": pa.string(), "cate": pa.int64(),
                                                     "brand": pa.int64()}):
        stats["behaviours_read"] += batch.num_rows
        _require(batch, ("user", "time_stamp"), beh_path)
        user = batch.column("user").to_numpy(zero_copy_only=False)
        ts = batch.column("time_stamp").to_numpy(zero_copy_only=False)
        keep = (user >= 0) & (user <= max_user) & (ts < hi_ts)
        keep[keep] = users_with_imp[user[keep]]
        keep = np.flatnonzero(keep)
        if len(keep) == 0:
            continue
        btag_txt = batch.column("btag").take(pa.array(keep))
        btag = np.zeros(len(keep), dtype=np.int8)
        for name, code in BTAG_CODES.items():
            btag[pc.equal(btag_txt, name).to_numpy(zero_copy_only=False) == True] = code  # noqa: E712
        if (btag == 0).any():
            bad = btag_txt.to_pylist()[int(np.flatnonzero(btag == 0)[0])]
            raise DataError(f"{beh_path}: column 'btag' has the value {bad!r}; expected pv, cart, fav or buy")
        out = {"user": user[keep], "time_stamp": ts[keep], "btag": btag,
               "cate": _fill(batch.column("cate").take(pa.array(keep))),
               "brand": _fill(batch.column("brand").take(pa.array(keep)))}
        beh_buckets.write(pa.table(out), user[keep])
        stats["behaviours_kept"] += len(keep)
    beh_buckets.close()
    return stats


def _fill(col: pa.Array) -> np.ndarray:
    return pc.fill_null(col, -1).to_numpy(zero_copy_only=False).astype(np.int64)


# ---- stage 2: per bucket, the last `hist` behaviours strictly before each impression ------
def last_behaviours(imp_user: np.ndarray, imp_ts: np.ndarray, beh_user: np.ndarray,
                    beh_ts: np.ndarray, hist: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the behaviour arrays ([N, hist], right-aligned, -1 = none) and lengths [N].

    Behaviour arrays must be sorted by (user, time). Strictly before: same-second behaviours are
    excluded, because their order relative to the impression is unknown.
    """
    key = beh_user.astype(np.int64) * (1 << 32) + beh_ts.astype(np.int64)
    end = np.searchsorted(key, imp_user.astype(np.int64) * (1 << 32) + imp_ts.astype(np.int64), side="left")
    start = np.searchsorted(key, imp_user.astype(np.int64) * (1 << 32), side="left")
    length = np.minimum(end - start, hist)
    idx = end[:, None] - hist + np.arange(hist)[None, :]
    idx = np.where(np.arange(hist)[None, :] >= hist - length[:, None], idx, -1)
    return idx, length


def _read_ipc(path: Path) -> pd.DataFrame:
    with pa.OSFile(str(path), "rb") as f:
        return pa.ipc.open_stream(f).read_all().to_pandas()


def _join_bucket(work: Path, b: int, hist: int) -> pa.Table | None:
    imp_path, beh_path = work / f"imp-{b:04d}.arrow", work / f"beh-{b:04d}.arrow"
    if not imp_path.exists():
        return None
    imp = _read_ipc(imp_path)
    imp = imp.sort_values(["user", "time_stamp"], kind="stable").reset_index(drop=True)
    if beh_path.exists():
        beh = _read_ipc(beh_path)
        order = np.lexsort((beh["time_stamp"].to_numpy(), beh["user"].to_numpy()))
        beh = beh.iloc[order].reset_index(drop=True)
    else:
        beh = pd.DataFrame({"user": np.zeros(0, np.int64), "time_stamp": np.zeros(0, np.int64),
                            "btag": np.zeros(0, np.int8), "cate": np.zeros(0, np.int64),
                            "brand": np.zeros(0, np.int64)})
    idx, length = last_behaviours(imp["user"].to_numpy(), imp["time_stamp"].to_numpy(),
                                  beh["user"].to_numpy(), beh["time_stamp"].to_numpy(), hist)
    cols = {c: imp[c].to_numpy() for c in imp.columns}
    cols["hist_len"] = length.astype(np.int16)
    safe = np.clip(idx, 0, max(len(beh) - 1, 0))
    for src, dst in (("cate", "hist_cate"), ("brand", "hist_brand"), ("btag", "hist_btag")):
        values = beh[src].to_numpy()
        arr = values[safe] if len(beh) else np.zeros(idx.shape, dtype=values.dtype)
        arr = np.where(idx >= 0, arr, 0)
        for j in range(hist):  # `hist` fixed-width columns, not rows: keeps parquet columnar
            cols[f"{dst}_{j}"] = arr[:, j]
    return pa.table(cols)


# ---- the cache -------------------------------------------------------------------------------
def _fingerprint(directory: Path, hist: int) -> str:
    parts = [f"v{CACHE_VERSION}", f"hist{hist}", str(directory.resolve())]
    for table in FILES:
        st = _path(directory, table).stat()
        parts.append(f"{table}:{st.st_size}:{int(st.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """$SAML_CACHE_DIR, else $XDG_CACHE_HOME/saml_core, else ~/.cache/saml_core.

    Not inside DIR: the raw tables often live on a read-only or shared disk.
    """
    if os.environ.get("SAML_CACHE_DIR"):
        return Path(os.environ["SAML_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "saml_core"


def build_cache(directory: str | Path, cache_dir: str | Path | None = None, hist: int = DEFAULT_SEQ_LEN,
                n_buckets: int | None = None) -> Path:
    """Build (or reuse) the joined parquet cache; returns its folder."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a folder (taobao-raw:DIR needs the folder of the raw tables)")
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    folder = root / f"taobao-raw-{_fingerprint(directory, hist)}"
    if (folder / "manifest.json").is_file():
        return folder
    if n_buckets is None:  # ~BUCKET_BEHAVIOURS rows per bucket (about 40 bytes per CSV row)
        size = _path(directory, "behavior_log").stat().st_size
        n_buckets = int(np.clip(size // (40 * BUCKET_BEHAVIOURS) + 1, 1, 800))
    tmp = root / f".building-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "work").mkdir(parents=True)
        (tmp / "joined").mkdir()
    except OSError as exc:
        raise DataError(f"{root}: cannot create the cache folder ({exc.strerror}); "
                        "choose another with cache_dir / --cache-dir or $SAML_CACHE_DIR") from None
    try:
        stats = _partition(directory, tmp / "work", n_buckets, hist)
        if stats["impressions_kept"] == 0:
            raise DataError(f"{directory / 'raw_sample.csv'}: no impression has a user profile and a "
                            "date in 2017-05-06..13")
        parts = []
        for b in range(n_buckets):
            joined = _join_bucket(tmp / "work", b, hist)
            if joined is not None:
                pq.write_table(joined, tmp / "joined" / f"part-{b:04d}.parquet")
                parts.append(f"part-{b:04d}.parquet")
        shutil.rmtree(tmp / "work")
        manifest = {"version": CACHE_VERSION, "hist": hist, "n_buckets": n_buckets,
                    "parts": parts, "stats": stats, "source": str(directory.name)}
        (tmp / "joined" / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if folder.exists():  # a concurrent build finished first: keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp / "joined", folder)
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


# ---- loading -----------------------------------------------------------------------------
def _read_part(path: Path, hist: int, seq_len: int) -> RawTable:
    df = pq.read_table(path).to_pandas()
    keep = min(hist, seq_len)
    seqs = {
        name: df[[f"{name}_{j}" for j in range(hist - keep, hist)]].to_numpy()
        for name in ("hist_cate", "hist_brand", "hist_btag")
    }
    frame = df[["user", "time_stamp", "day", SCHEMA.scenario, SCHEMA.label, *PROFILE, *AD,
                "pid", "price"]].copy()
    frame["btag"] = TARGET_BTAG
    return RawTable(frame=frame, seqs=seqs, seq_lengths=df["hist_len"].to_numpy().astype(np.int64))


def _split_of(day: np.ndarray) -> np.ndarray:
    return np.where(day == TEST_DAY, 2, np.where(day == VALID_DAY, 1, 0))


def load_raw(directory: str | Path, *, name: str | None = None, cache_dir: str | Path | None = None,
             seq_len: int | None = None, mapped: bool = True) -> MultiScenarioData:
    """`mapped` (default): the encoded tensors are .npy files next to the parquet cache, built
    once and memory-mapped on every load (bounded memory, a log larger than RAM trains); False:
    encoded into tensors in memory (the same values)."""
    directory = Path(directory)
    seq_len = seq_len or DEFAULT_SEQ_LEN
    hist = max(seq_len, DEFAULT_SEQ_LEN)
    folder = build_cache(directory, cache_dir, hist)
    manifest = json.loads((folder / "manifest.json").read_text())
    paths = [folder / p for p in manifest["parts"]]
    source = str(directory / "raw_sample.csv")
    store = folder / f"encoded-v{MAPPED_VERSION}-seq{seq_len}"
    found = read_mapped_splits(store) if mapped else None
    if found is not None:
        spec, out = found
    else:
        spec, out = _encode(paths, hist, seq_len, source, store if mapped else None)
    info = {
        "title": "Taobao ad display/click data (raw Tianchi tables, 5 city levels)",
        "simulated": False,
        "source_folder": directory.name,
        "cache": str(folder),
        "split": "train 2017-05-06..11, validation 2017-05-12, test 2017-05-13 (Beijing days)",
        "pipeline_stats": manifest["stats"],
        "caveats": [
            "Impressions of users without a profile are dropped; a missing city level is level 0.",
            "Behaviour sequences: the last behaviours strictly before the impression's second; "
            "behaviours in the same second are excluded.",
        ],
        "provenance": "Alibaba Tianchi dataset 56 (Ad Display/Click Data on Taobao.com)",
    }
    return MultiScenarioData(name=name or f"taobao-raw:{directory}", spec=spec,
                             train=out[0], valid=out[1], test=out[2], info=info,
                             category_field="cate_id", scenario_noun=SCENARIO_NOUN)


def _encode(paths: list[Path], hist: int, seq_len: int, source: str, store: Path | None):
    """Fit on the train days, then encode every part into the three splits: in memory, or into
    the memory-mapped store (then read back from it)."""
    # Pass 1: fit on the train days only; count rows per split and scenario.
    def train_parts():
        for p in paths:
            t = _read_part(p, hist, seq_len)
            yield t.take(_split_of(t.frame["day"].to_numpy()) == 0)

    enc = Encoder(SCHEMA, seq_len, source=source).fit_many(train_parts())
    counts = np.zeros(3, dtype=np.int64)
    n_scen = np.zeros(len(CITY_LEVELS), dtype=np.int64)
    pos_scen = np.zeros(len(CITY_LEVELS), dtype=np.int64)
    for p in paths:
        f = pq.read_table(p, columns=["day", SCHEMA.scenario, SCHEMA.label]).to_pandas()
        s = _split_of(f["day"].to_numpy())
        counts += np.bincount(s, minlength=3)
        tr = s == 0
        sc = enc.scenario_index(f[SCHEMA.scenario].to_numpy()[tr], "train")
        n_scen += np.bincount(sc, minlength=len(CITY_LEVELS))
        pos_scen += np.bincount(sc, weights=f[SCHEMA.label].to_numpy()[tr], minlength=len(CITY_LEVELS)).astype(np.int64)
    for s_name, c in zip(("train", "validation", "test"), counts):
        if c == 0:
            raise DataError(f"{source}: the {s_name} split (2017-05-06..11 / 05-12 / 05-13) is empty")
    check_scenario_counts(SCHEMA, enc.scenario_values, n_scen, pos_scen, source)

    # Pass 2: encode bucket by bucket into preallocated tensors.
    def fill(out):
        filled = [0, 0, 0]
        for p in paths:
            t = _read_part(p, hist, seq_len)
            s = _split_of(t.frame["day"].to_numpy())
            for k in range(3):
                rows = np.flatnonzero(s == k)
                if len(rows) == 0:
                    continue
                enc_part = enc.transform(t.take(rows), ("train", "validation", "test")[k])
                _copy_into(out[k], enc_part, filled[k])
                filled[k] += len(rows)

    return build_splits(enc.spec, counts.tolist(), fill, store)


def _copy_into(dst: EncodedSplit, src: EncodedSplit, at: int) -> None:
    n = len(src)
    for f in ("scenario", "label", "cat", "num", "seq", "seq_mask"):
        getattr(dst, f)[at:at + n] = getattr(src, f)
