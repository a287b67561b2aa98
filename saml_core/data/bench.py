"""`python -m saml_core data bench-raw`: time and peak memory of the raw-Taobao pipeline.

Writes a synthetic fixture in the exact raw Tianchi format (scaled up to N behaviour rows),
then runs, each in a fresh process so that its peak RSS (ru_maxrss) is its own:
  1. the out-of-core cache build (stream, partition by user, join per bucket, write parquet);
  2. a load from the cache (train-only fit + encoding into tensors).
The fixture's values are random (not real data); only the format and the sizes matter here.
"""
from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from saml_core.data import taobao_raw

D0 = taobao_raw.DAY0 - taobao_raw.TZ_OFFSET  # 2017-05-06 00:00 Beijing time
CHUNK = 1_000_000


def _write_csv(path: Path, columns: dict, header: str | None = None, append: bool = False) -> None:
    table = pa.table(columns)
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with open(path, "ab" if append else "wb") as f:
        if not append:
            f.write(((header or ",".join(columns)) + "\n").encode())
        pacsv.write_csv(table, f, write_options=opts)


def write_raw_fixture(folder: str | Path, behaviours: int, impressions: int | None = None,
                      seed: int = 0) -> dict:
    """Random tables in the exact raw format: ~100 behaviours and ~10 impressions per user."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    impressions = impressions or max(behaviours // 10, 100)
    n_users = max(behaviours // 100, 10)
    n_ads = max(impressions // 20, 50)
    n_cates, n_brands = 5000, 100_000

    users = np.arange(1, n_users + 1)
    with_profile = users[rng.random(n_users) < 0.95]  # ~5% of users have no profile
    n = len(with_profile)
    level = rng.integers(0, 5, n).astype(object)
    level[level == 0] = ""  # a missing city level, as in the real table
    pd.DataFrame({
        "userid": with_profile, "cms_segid": rng.integers(0, 97, n), "cms_group_id": rng.integers(0, 13, n),
        "final_gender_code": rng.integers(1, 3, n), "age_level": rng.integers(0, 7, n),
        "pvalue_level": np.where(rng.random(n) < 0.5, "", rng.integers(1, 4, n).astype(str)),
        "shopping_level": rng.integers(1, 4, n), "occupation": rng.integers(0, 2, n),
        "new_user_class_level ": level,  # the real header has this trailing space
    }).to_csv(folder / "user_profile.csv", index=False)
    ads = np.arange(1, n_ads + 1)
    brand = rng.integers(1, n_brands, n_ads).astype(object)
    brand[rng.random(n_ads) < 0.05] = "NULL"
    pd.DataFrame({
        "adgroup_id": ads, "cate_id": rng.integers(1, n_cates, n_ads), "campaign_id": rng.integers(1, 400_000, n_ads),
        "customer": rng.integers(1, 250_000, n_ads), "brand": brand, "price": rng.gamma(2.0, 100.0, n_ads).round(2),
    }).to_csv(folder / "ad_feature.csv", index=False)

    pids = np.array(["430548_1007", "430539_1007"])
    for start in range(0, impressions, CHUNK):
        m = min(CHUNK, impressions - start)
        clk = (rng.random(m) < 0.05).astype(np.int64)
        _write_csv(folder / "raw_sample.csv", {
            "user": rng.integers(1, n_users + 1, m),
            "time_stamp": D0 - 43_200 + rng.integers(0, 8 * 86_400 + 86_400, m),  # some out of range
            "adgroup_id": rng.integers(1, n_ads + 1, m), "pid": pids[rng.integers(0, 2, m)],
            "nonclk": 1 - clk, "clk": clk,
        }, append=start > 0)
    btags = np.array(["pv", "cart", "fav", "buy"])
    for start in range(0, behaviours, CHUNK):
        m = min(CHUNK, behaviours - start)
        _write_csv(folder / "behavior_log.csv", {
            "user": rng.integers(1, n_users + 1, m),
            "time_stamp": D0 - 7 * 86_400 + rng.integers(0, 16 * 86_400, m),  # some after the last impression
            "btag": btags[rng.choice(4, m, p=[0.9, 0.04, 0.03, 0.03])],
            "cate": rng.integers(1, n_cates, m), "brand": rng.integers(1, n_brands, m),
        }, append=start > 0)
    size = sum((folder / f"{t}.csv").stat().st_size for t in taobao_raw.FILES)
    return {"behaviours": behaviours, "impressions": impressions, "users": n_users, "csv_bytes": size}


def _child(phase: str, directory: str, cache: str, n_buckets: int) -> None:
    """Runs in a fresh process; prints its timing and its own peak RSS as JSON."""
    t0 = time.perf_counter()
    if phase == "build":
        folder = taobao_raw.build_cache(directory, cache, n_buckets=n_buckets or None)
        manifest = json.loads((folder / "manifest.json").read_text())
        extra = {**manifest["stats"], "n_buckets": manifest["n_buckets"]}
    else:
        data = taobao_raw.load_raw(directory, cache_dir=cache)
        extra = {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)}
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, **extra}))


def _run_child(phase: str, directory: Path, cache: Path, n_buckets: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "saml_core.data.bench", phase, str(directory), str(cache), str(n_buckets)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench-raw {phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_raw(behaviours: int = 3_000_000, impressions: int | None = None, workdir: str | None = None,
              bucket_rows: int | None = None) -> dict:
    """Write the fixture, build the cache, load from it; return the measured figures."""
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="saml_bench_raw_"))
    try:
        t0 = time.perf_counter()
        fixture = write_raw_fixture(tmp / "raw", behaviours, impressions)
        write_s = time.perf_counter() - t0
        n_buckets = max(1, -(-behaviours // bucket_rows)) if bucket_rows else 0  # 0: pipeline default
        build = _run_child("build", tmp / "raw", tmp / "cache", n_buckets)
        load = _run_child("load", tmp / "raw", tmp / "cache", n_buckets)
        return {
            "behaviour_rows": fixture["behaviours"],
            "impression_rows": fixture["impressions"],
            "users": fixture["users"],
            "csv_mb": round(fixture["csv_bytes"] / 2**20, 1),
            "user_buckets": build["n_buckets"],
            "fixture_write_s": round(write_s, 1),
            "cache_build_s": round(build["seconds"], 1),
            "cache_build_behaviour_rows_per_s": round(behaviours / build["seconds"]),
            "cache_build_peak_rss_mb": round(build["peak_rss_mb"]),
            "impressions_kept": build["impressions_kept"],
            "behaviours_kept": build["behaviours_kept"],
            "load_from_cache_s": round(load["seconds"], 1),
            "load_peak_rss_mb": round(load["peak_rss_mb"]),
            "encoded_train_valid_test": [load["train"], load["valid"], load["test"]],
        }
    finally:
        if not workdir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
