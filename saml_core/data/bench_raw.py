"""`python -m saml_core data bench-raw`: time and peak memory of the out-of-core pipelines.

Writes a synthetic fixture in the exact raw format of a source, scaled up (`--source taobao`:
the four Tianchi tables, N behaviour rows; `aliexpress`: AliExpress_<country>/train.csv and
test.csv; `aliccp`: ali_ccp_{train,val,test}.csv; N rows), then runs, each in a fresh process so
that its peak RSS (VmHWM) is its own (`movielens`: ML-1M's ratings.dat/users.dat/movies.dat with N
ratings, loaded into memory in three fresh processes; nothing is cached, so there is no build):
  1. the out-of-core cache build (stream, check / join, write parquet);
  2. a load from the cache into tensors in memory (train-only fit + encoding; `mapped=False`);
  3. the first mapped load: the same encoding into the .npy store, then memory-mapped;
  4. with `--train-steps N`: a fresh process maps the store and trains SAML for N steps (one
     validation pass, test predictions), reporting anonymous (RssAnon) and file-backed
     (RssFile: pages of the mapped files) resident memory separately, per phase.
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

from saml_core.data import aliccp, aliexpress, movielens, taobao_raw

D0 = taobao_raw.DAY0 - taobao_raw.TZ_OFFSET  # 2017-05-06 00:00 Beijing time
CHUNK = 1_000_000
SOURCES = ("taobao", "aliexpress", "aliccp", "movielens")


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


def _peak_rss_mb() -> float:
    """This process's own peak RSS. Linux keeps ru_maxrss across fork + exec, so a child started
    by a big parent (the fixture writer) would report the parent's peak; VmHWM belongs to the
    process's own address space."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)


class _Memory:
    """Peaks of this process's anonymous and file-backed resident memory (RssAnon, RssFile of
    /proc/self/status), sampled every `every` seconds by a thread. Mapped data lives in the page
    cache: its pages count as RssFile while mapped, and the kernel drops them under pressure, so
    RssAnon is the memory the process really needs. (A spike shorter than the interval can be
    missed; VmHWM, the peak of both together, is reported beside it.)"""

    def __init__(self, every: float = 0.005):
        import threading

        self.every, self.peak = every, {"RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def now() -> dict:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":")[0]
                if key in ("RssAnon", "RssFile", "VmHWM"):
                    out[key] = int(line.split()[1]) / 1024  # MB
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        cur = self.now()
        for k in self.peak:
            self.peak[k] = max(self.peak[k], cur[k])

    def phase(self) -> dict:
        """Peaks since the last call (then they restart from now)."""
        self.sample()
        out = {"peak_anon_mb": round(self.peak["RssAnon"]), "peak_file_mb": round(self.peak["RssFile"])}
        cur = self.now()
        self.peak = {"RssAnon": cur["RssAnon"], "RssFile": cur["RssFile"]}
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _train_child(load, steps: int) -> dict:
    """Load (mapped) and train SAML for `steps` steps with the dataset's preset (one validation
    pass over the whole validation split), then the test predictions and metrics, as a run does."""
    import torch

    from saml_core import evaluate as ev
    from saml_core.config import ModelConfig, TrainConfig, resolve_for_data
    from saml_core.experiments import dataset_facts
    from saml_core.models import build_model
    from saml_core.train import fit, predict

    torch.set_num_threads(1)
    mem = _Memory()
    imports = mem.phase()
    t0 = time.perf_counter()
    data = load()
    facts = dataset_facts(data)  # what an experiment computes over whole columns before training
    loaded = {**mem.phase(), "seconds": round(time.perf_counter() - t0, 1), "mapped": data.train.mapped,
              "test_clicks": sum(v["positives"] for v in facts["test_counts"].values())}
    torch.manual_seed(0)
    model = build_model("saml", data.spec, ModelConfig(d_g=12, d_s=4, mlp=(128, 64)))  # the public preset
    tcfg = resolve_for_data(TrainConfig(lr=5e-4, batch_size=128, epochs=1, patience=1, min_epochs=1,
                                        max_train_batches=steps, device="cpu"), len(data.train), 1)
    t0 = time.perf_counter()
    res = fit(model, data.train, data.valid, tcfg, seed=0, device=torch.device("cpu"))
    trained = {**mem.phase(), "seconds": round(time.perf_counter() - t0, 1), "steps": steps,
               "valid_rows": len(data.valid), "valid_auc": round(res.best_valid_auc, 4)}
    t0 = time.perf_counter()
    pred = predict(model, data.test, torch.device("cpu"))
    auc = ev.auc(data.test.label.numpy(), pred)
    tested = {**mem.phase(), "seconds": round(time.perf_counter() - t0, 1), "test_rows": len(data.test),
              "test_auc": round(auc, 4)}
    model_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    mem.close()
    return {"imports": imports, "load": loaded, "train": trained, "test": tested,
            "model_params_mb": round(model_mb), "vm_hwm_mb": round(_Memory.now()["VmHWM"]),
            "train_rows": len(data.train)}


def _child(phase: str, directory: str, cache: str, n_buckets: int, source: str = "taobao",
           steps: int = 300) -> None:
    """Runs in a fresh process; prints its timing and its own peak RSS as JSON."""
    imports_mb = _peak_rss_mb()
    t0, cpu0 = time.perf_counter(), time.process_time()
    if phase != "train":
        mem = _Memory()
    if phase == "train":
        load = (lambda: taobao_raw.load_raw(directory, cache_dir=cache)) if source == "taobao" else \
            (lambda: FLAT[source]["load"](directory, cache_dir=cache))
        print(json.dumps(_train_child(load, steps)))
        return
    if source == "taobao" and phase == "build":
        folder = taobao_raw.build_cache(directory, cache, n_buckets=n_buckets or None)
        manifest = json.loads((folder / "manifest.json").read_text())
        extra = {**manifest["stats"], "n_buckets": manifest["n_buckets"]}
    elif source == "taobao":
        data = taobao_raw.load_raw(directory, cache_dir=cache, mapped=phase == "load")  # "load-memory": in RAM
        extra = {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)}
    elif source == "movielens":
        data = movielens.load_movielens(directory)
        extra = {"train": len(data.train), "valid": len(data.valid), "test": len(data.test),
                 "tensor_mb": _tensor_mb(data)}
    elif phase == "build":
        folder, manifest = FLAT[source]["build"](directory, cache)
        extra = {"rows": sum(f["rows"] for f in manifest["files"].values()),
                 "row_groups": sum(f["row_groups"] for f in manifest["files"].values()),
                 "cache_mb": sum(p.stat().st_size for p in folder.iterdir()) / 2**20}
    else:
        data = FLAT[source]["load"](directory, cache_dir=cache, mapped=phase == "load")
        extra = {"train": len(data.train), "valid": len(data.valid), "test": len(data.test),
                 "tensor_mb": _tensor_mb(data)}
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    peak_mb = _peak_rss_mb()
    split = mem.phase()
    mem.close()
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": peak_mb, "imports_rss_mb": imports_mb, **split, **extra}))


def _tensor_mb(data) -> float:
    return sum(getattr(sp, f).numel() * getattr(sp, f).element_size() for sp in (data.train, data.valid, data.test)
               for f in ("scenario", "label", "cat", "num", "seq", "seq_mask")) / 2**20


def _run_child(phase: str, directory: Path, cache: Path, n_buckets: int, source: str = "taobao",
               steps: int = 0) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "saml_core.data.bench_raw", phase, str(directory), str(cache), str(n_buckets), source,
         str(steps)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench-raw {source} {phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_raw(behaviours: int = 3_000_000, impressions: int | None = None, workdir: str | None = None,
              bucket_rows: int | None = None, train_steps: int = 0) -> dict:
    """Write the fixture, build the cache, load from it (into memory, and into the memory-mapped
    store), and with `train_steps` train on the mapped data; return the measured figures."""
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="saml_bench_raw_"))
    try:
        t0 = time.perf_counter()
        fixture = write_raw_fixture(tmp / "raw", behaviours, impressions)
        write_s = time.perf_counter() - t0
        n_buckets = max(1, -(-behaviours // bucket_rows)) if bucket_rows else 0  # 0: pipeline default
        build = _run_child("build", tmp / "raw", tmp / "cache", n_buckets)
        in_memory = _run_child("load-memory", tmp / "raw", tmp / "cache", n_buckets)
        load = _run_child("load", tmp / "raw", tmp / "cache", n_buckets)
        train = _run_child("train", tmp / "raw", tmp / "cache", n_buckets, steps=train_steps) if train_steps else None
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
            "load_from_cache_s": round(in_memory["seconds"], 1),  # into tensors in memory (mapped=False)
            "load_peak_rss_mb": round(in_memory["peak_rss_mb"]),
            **_mapped_figures(load, train),
        }
    finally:
        if not workdir:
            shutil.rmtree(tmp, ignore_errors=True)


# ---- flat logs: AliExpress countries, Ali-CCP domains ------------------------------------------
AE_COUNTRIES = {"NL": 0.17, "ES": 0.31, "FR": 0.25, "US": 0.27}  # share of rows per country
AE_VOCAB = (10, 4, 4, 3, 3, 8, 60, 30, 20, 2, 2, 2, 2, 2, 2, 2)  # categorical_1..16: small ids
CCP_DOMAINS = {1: 0.378, 2: 0.0075, 3: 0.6145}  # shares of field 301 in the full data
CCP_VOCAB = {"101": 240_000, "121": 98, "122": 14, "124": 3, "125": 8, "126": 4, "127": 4, "128": 3,
             "129": 5, "205": 460_000, "206": 6_000, "207": 200_000, "210": 80_000, "216": 60_000,
             "508": 6_000, "509": 50_000, "702": 60_000, "853": 40_000, "109_14": 5, "110_14": 5,
             "127_14": 5, "150_14": 5}


def _numbers(rng, m: int, digits: int) -> np.ndarray:
    """Values in [0, 1) rounded like the real files, half of them 0."""
    x = np.round(rng.random(m), digits)
    x[rng.random(m) < 0.5] = 0.0
    return x


def _write_chunks(path: Path, rows: int, make, header: str) -> None:
    for start in range(0, rows, CHUNK):
        _write_csv(path, make(start, min(CHUNK, rows - start)), header=header, append=start > 0)


def write_aliexpress_fixture(folder: str | Path, rows: int, seed: int = 0) -> dict:
    """Random AliExpress_<country>/{train,test}.csv: 4 countries, 70 / 30 % train / test rows,
    search pages of 20 rows, 2.5 % clicks."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    names = ["search_id", *aliexpress.CATEGORICAL, *aliexpress.NUMERIC, "click", "conversion"]
    page = 0

    def make(start, m):
        nonlocal page
        cols = {"search_id": page + np.arange(m) // 20}
        page += -(-m // 20)
        for c, v in zip(aliexpress.CATEGORICAL, AE_VOCAB):
            cols[c] = rng.integers(0, v, m)
        for c in aliexpress.NUMERIC:
            cols[c] = _numbers(rng, m, 6)
        click = (rng.random(m) < 0.025).astype(np.int64)
        cols["click"], cols["conversion"] = click, click * (rng.random(m) < 0.02)
        return cols

    size = 0
    for code, share in AE_COUNTRIES.items():
        sub = folder / f"AliExpress_{code}"
        sub.mkdir(parents=True, exist_ok=True)
        n = max(int(rows * share), 100)
        for which, m in (("train", int(n * 0.7)), ("test", n - int(n * 0.7))):
            _write_chunks(sub / f"{which}.csv", m, make, ",".join(names))
            size += (sub / f"{which}.csv").stat().st_size
    return {"rows": rows, "csv_bytes": size}


def write_aliccp_fixture(folder: str | Path, rows: int, seed: int = 0) -> dict:
    """Random ali_ccp_{train,val,test}.csv (50 / 25 / 25 %): 301 in 1, 2, 3 with the full data's
    shares, ids with about the full data's vocabulary sizes, 4 % clicks."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    domains, shares = np.array(list(CCP_DOMAINS)), np.array(list(CCP_DOMAINS.values()))
    names = ["click", "purchase", *aliccp.CATEGORICAL[:18], "301", *aliccp.CATEGORICAL[18:], *aliccp.NUMERIC]

    def make(start, m):
        click = (rng.random(m) < 0.04).astype(np.int64)
        cols = {"click": click, "purchase": click * (rng.random(m) < 0.01)}
        for c in names[2:]:
            if c == "301":
                cols[c] = domains[rng.choice(len(domains), m, p=shares / shares.sum())]
            elif c in CCP_VOCAB:
                cols[c] = rng.integers(0, CCP_VOCAB[c], m)
            else:
                cols[c] = _numbers(rng, m, 4)
        return {c: cols[c] for c in names}

    size = 0
    for stem, frac in (("train", 0.5), ("val", 0.25), ("test", 0.25)):
        path = folder / f"ali_ccp_{stem}.csv"
        _write_chunks(path, max(int(rows * frac), 100), make, ",".join(names))
        size += path.stat().st_size
    return {"rows": rows, "csv_bytes": size}


FLAT = {
    "aliexpress": {"write": write_aliexpress_fixture, "build": aliexpress.build, "load": aliexpress.load_aliexpress},
    "aliccp": {"write": write_aliccp_fixture, "build": aliccp.build, "load": aliccp.load_aliccp},
}


def bench_flat(source: str, rows: int = 1_000_000, workdir: str | None = None, train_steps: int = 0) -> dict:
    """The same measurement for a flat log: fixture of `rows` rows, cache build, load (in memory;
    into the mapped store), training on the mapped data with `train_steps`."""
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"saml_bench_{source}_"))
    try:
        t0 = time.perf_counter()
        fixture = FLAT[source]["write"](tmp / "raw", rows)
        write_s = time.perf_counter() - t0
        build = _run_child("build", tmp / "raw", tmp / "cache", 0, source)
        load = _run_child("load-memory", tmp / "raw", tmp / "cache", 0, source)  # mapped=False
        mapped = _run_child("load", tmp / "raw", tmp / "cache", 0, source)
        train = _run_child("train", tmp / "raw", tmp / "cache", 0, source, steps=train_steps) if train_steps else None
        n = build["rows"]
        return {
            "source": source,
            "rows": n,
            "csv_mb": round(fixture["csv_bytes"] / 2**20, 1),
            "fixture_write_s": round(write_s, 1),
            "imports_rss_mb": round(build["imports_rss_mb"]),
            "cache_build_s": round(build["seconds"], 1),
            "cache_build_rows_per_s": round(n / build["seconds"]),
            "cache_build_peak_rss_mb": round(build["peak_rss_mb"]),
            "csv_pieces": build["row_groups"],
            "cache_mb": round(build["cache_mb"], 1),
            "load_from_cache_s": round(load["seconds"], 1),
            "load_rows_per_s": round(n / load["seconds"]),
            "load_peak_rss_mb": round(load["peak_rss_mb"]),
            "encoded_tensors_mb": round(load["tensor_mb"]),
            "load_peak_minus_tensors_mb": round(load["peak_rss_mb"] - load["tensor_mb"]),
            **_mapped_figures(mapped, train, rows_from=load),
        }
    finally:
        if not workdir:
            shutil.rmtree(tmp, ignore_errors=True)


# ---- MovieLens: ML-1M's own files ----------------------------------------------------------------
def _write_dat(path: Path, columns: dict) -> None:
    """'::'-separated lines without a header (pyarrow writes tabs; none occurs in the values)."""
    buf = pa.BufferOutputStream()
    pacsv.write_csv(pa.table(columns), buf, write_options=pacsv.WriteOptions(
        include_header=False, delimiter="\t", quoting_style="none"))
    path.write_bytes(buf.getvalue().to_pybytes().replace(b"\t", b"::"))


def write_movielens_fixture(folder: str | Path, rows: int, seed: int = 0) -> dict:
    """Random ratings.dat / users.dat / movies.dat ('::', ML-1M's sizes: 6,040 users, 3,952 movies,
    age and occupation codes, 1-3 genres a movie), `rows` ratings with whole-second timestamps
    over ML-1M's time span, a tenth of them sharing a second with the user's previous rating."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_users, n_movies = 6040, 3952
    genres = movielens.GENRES[1:]
    titles = [f"{i}::Movie {i}: a title ({rng.integers(1919, 2001)})::"
              + "|".join(genres[g] for g in sorted(rng.choice(len(genres), rng.integers(1, 4), replace=False)))
              for i in range(1, n_movies + 1)]  # 3,952 lines, not rows
    (folder / "movies.dat").write_text("\n".join(titles) + "\n", encoding="latin-1")
    ages = np.array((1, 18, 25, 35, 45, 50, 56))
    users = pd.DataFrame({"u": np.arange(1, n_users + 1), "g": rng.choice(["F", "M"], n_users),
                          "a": ages[rng.integers(0, 7, n_users)], "o": rng.integers(0, 21, n_users),
                          "z": rng.integers(10000, 99999, n_users)})
    _write_dat(folder / "users.dat", {c: users[c].to_numpy() for c in users})
    user = np.sort(rng.integers(1, n_users + 1, rows))
    ts = rng.integers(956_703_932, 1_046_454_590, rows)
    same = np.r_[False, (rng.random(rows - 1) < 0.1) & (user[1:] == user[:-1])]
    ts[same] = ts[np.flatnonzero(same) - 1]
    _write_dat(folder / "ratings.dat", {"u": user, "i": rng.integers(1, n_movies + 1, rows),
                                        "r": rng.integers(1, 6, rows), "t": ts})
    return {"rows": rows, "bytes": sum(p.stat().st_size for p in folder.iterdir())}


def bench_movielens(rows: int = 1_000_209, workdir: str | None = None, rounds: int = 3) -> dict:
    """Load time and peak RSS of movielens:DIR on an ML-1M-sized fixture, each round in a fresh
    process (the spread of the rounds says how much a busy machine moved the figures)."""
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="saml_bench_movielens_"))
    try:
        t0 = time.perf_counter()
        fixture = write_movielens_fixture(tmp / "ml-1m", rows)
        write_s = time.perf_counter() - t0
        runs = [_run_child("load-memory", tmp / "ml-1m", tmp / "unused", 0, "movielens") for _ in range(rounds)]
        seconds = sorted(r["seconds"] for r in runs)
        cpu = sorted(r["cpu_seconds"] for r in runs)  # CPU time: what a busy shared machine moves least
        peak = sorted(r["peak_rss_mb"] for r in runs)
        return {
            "source": "movielens (ML-1M format)",
            "rows": rows,
            "files_mb": round(fixture["bytes"] / 2**20, 1),
            "fixture_write_s": round(write_s, 1),
            "rounds": rounds,
            "load_s_min_median_max": [round(seconds[0], 2), round(seconds[len(seconds) // 2], 2),
                                      round(seconds[-1], 2)],
            "load_cpu_s_min_median_max": [round(cpu[0], 2), round(cpu[len(cpu) // 2], 2), round(cpu[-1], 2)],
            "load_rows_per_s_median": round(rows / seconds[len(seconds) // 2]),
            "imports_rss_mb": round(runs[0]["imports_rss_mb"]),
            "load_peak_rss_mb_min_max": [round(peak[0]), round(peak[-1])],
            "encoded_tensors_mb": round(runs[0]["tensor_mb"]),
            "encoded_train_valid_test": [runs[0]["train"], runs[0]["valid"], runs[0]["test"]],
        }
    finally:
        if not workdir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]))


def _mapped_figures(mapped: dict, train: dict | None, rows_from: dict | None = None) -> dict:
    """The first memory-mapped load's figures (it encodes into the store) and the training on it;
    the split sizes from `rows_from` (the in-memory load) when given."""
    rows = rows_from or mapped
    return {"load_mapped_first_s": round(mapped["seconds"], 1),
            "load_mapped_first_peak_anon_mb": mapped["peak_anon_mb"],
            "load_mapped_first_peak_file_mb": mapped["peak_file_mb"],
            "encoded_train_valid_test": [rows["train"], rows["valid"], rows["test"]],
            **({"train_on_mapped": train} if train else {})}
