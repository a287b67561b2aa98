"""taobao-raw: join, drop, strictly-prior sequences, train-only fitting, cache; on a fixture in
the exact raw Tianchi format (tests/fixtures/taobao_raw/README.md lists its edge cases)."""
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from saml_core.data import DataError, OOV_INDEX, load_dataset
from saml_core.data import taobao_raw

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "taobao_raw"
D0 = 1494000000  # 2017-05-06 00:00 Beijing time


def _rows(name):
    with open(FIXTURE / name, newline="") as f:
        reader = csv.DictReader(f)
        return [{k.strip(): v for k, v in r.items()} for r in reader]


def reference():
    """Naive row-by-row reference of what every kept impression must carry."""
    profiles = {int(r["userid"]): r for r in _rows("user_profile.csv")}
    beh = [(int(r["user"]), int(r["time_stamp"]), r["cate"]) for r in _rows("behavior_log.csv")]
    out = []
    for r in _rows("raw_sample.csv"):
        u, ts = int(r["user"]), int(r["time_stamp"])
        day = (ts - D0) // 86400
        if u not in profiles or not 0 <= day <= 7:
            continue
        prior = sorted((t, c) for (bu, t, c) in beh if bu == u and t < ts)
        level = profiles[u]["new_user_class_level"].strip() or "0"
        out.append({"user": u, "ts": ts, "day": day, "level": int(level), "clk": int(r["clk"]),
                    "hist": [int(c) for _, c in prior[-15:]]})
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("taobao_cache")


@pytest.fixture(scope="module")
def data(cache):
    return load_dataset(f"taobao-raw:{FIXTURE}", cache_dir=cache)


def _joined(cache):
    import pandas as pd
    import pyarrow.parquet as pq

    parts = sorted(cache.glob("taobao-raw-*/part-*.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)


def test_drops_users_without_profile_and_out_of_range_days(data, cache):
    ref = reference()
    assert len(data.train) + len(data.valid) + len(data.test) == len(ref) == 23
    joined = _joined(cache)
    assert 3 not in set(joined.user)  # no profile
    assert set(joined.day) <= set(range(8))
    stats = data.info["pipeline_stats"]
    assert stats["no_profile"] == 2 and stats["out_of_range"] == 1


def test_sequences_are_strictly_before_the_impression(data, cache):
    joined = _joined(cache)
    ref = {(r["user"], r["ts"]): r for r in reference()}
    checked = 0
    for row in joined.itertuples():
        want = ref[(row.user, row.time_stamp)]["hist"]
        n = int(row.hist_len)
        got = [int(getattr(row, f"hist_cate_{j}")) for j in range(15 - n, 15)]
        assert got == want, (row.user, row.time_stamp)
        checked += 1
    assert checked == 23
    # the edge cases are really there: a same-second behaviour (6999) and later ones (9999)
    u4 = joined[(joined.user == 4) & (joined.day == 1)].iloc[0]
    assert u4.hist_len == 15 and u4.hist_cate_14 == 6019
    u1_first_test = joined[(joined.user == 1) & (joined.day == 7)].sort_values("time_stamp").iloc[0]
    assert 9999 not in [u1_first_test[f"hist_cate_{j}"] for j in range(15)]


def test_split_scenarios_and_encoding(data):
    ref = reference()
    assert len(data.test) == sum(r["day"] == 7 for r in ref)
    assert len(data.valid) == sum(r["day"] == 6 for r in ref)
    assert data.spec.scenario_names == tuple(f"city level {i}" for i in range(5))
    assert data.spec.seq_len == 15
    # the encoded mask length equals the number of strictly prior behaviours (max 15)
    lengths = sorted(int(m.sum()) for m in torch.cat([data.train.seq_mask, data.valid.seq_mask,
                                                      data.test.seq_mask]))
    assert lengths == sorted(len(r["hist"]) for r in ref)
    # behaviours after the last train impression (cate 9999) are unknown to the vocabulary
    j = [f.name for f in data.spec.seq_fields].index("hist_cate")
    test_seq = data.test.seq[:, j][data.test.seq_mask]
    assert (test_seq == OOV_INDEX).sum() >= 5  # the five 9999 behaviours
    assert not (data.train.seq[:, j][data.train.seq_mask] == OOV_INDEX).any()


def test_numeric_normalised_with_train_mean(data):
    prices = {int(r["adgroup_id"]): float(r["price"]) for r in _rows("ad_feature.csv")}
    ref_train = []
    for r in _rows("raw_sample.csv"):
        u, ts = int(r["user"]), int(r["time_stamp"])
        if u != 3 and 0 <= (ts - D0) // 86400 <= 5:
            ref_train.append(prices[int(r["adgroup_id"])])
    mean, std = np.mean(ref_train), np.std(ref_train)
    assert abs(float(data.train.num[:, 0].mean())) < 1e-5
    raw_test = np.sort(data.test.num[:, 0].numpy() * std + mean)
    ref_test = sorted(prices[int(r["adgroup_id"])] for r in _rows("raw_sample.csv")
                      if int(r["user"]) != 3 and (int(r["time_stamp"]) - D0) // 86400 == 7)
    assert np.allclose(raw_test, ref_test, atol=1e-3)


def test_second_load_uses_the_cache(data, cache, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("cache was rebuilt")

    monkeypatch.setattr(taobao_raw, "_partition", boom)
    again = load_dataset(f"taobao-raw:{FIXTURE}", cache_dir=cache)
    assert torch.equal(again.test.seq, data.test.seq) and torch.equal(again.train.cat, data.train.cat)


def test_shorter_seq_len_keeps_most_recent(data, cache):
    short = load_dataset(f"taobao-raw:{FIXTURE}", cache_dir=cache, seq_len=4)
    assert torch.equal(short.test.seq_mask, data.test.seq_mask[:, -4:])


def test_missing_table_and_column(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "raw")
    (tmp_path / "raw" / "ad_feature.csv").unlink()
    with pytest.raises(DataError, match=r"ad_feature\.csv: missing raw table"):
        load_dataset(f"taobao-raw:{tmp_path / 'raw'}", cache_dir=tmp_path / "c")
    shutil.copy(FIXTURE / "ad_feature.csv", tmp_path / "raw")
    text = (FIXTURE / "behavior_log.csv").read_text().replace("btag", "behaviour", 1)
    (tmp_path / "raw" / "behavior_log.csv").write_text(text)
    with pytest.raises(DataError, match=r"behavior_log\.csv: missing column\(s\) btag"):
        load_dataset(f"taobao-raw:{tmp_path / 'raw'}", cache_dir=tmp_path / "c")


def test_bad_btag_value(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "raw")
    text = (FIXTURE / "behavior_log.csv").read_text().replace(",pv,", ",view,", 1)
    (tmp_path / "raw" / "behavior_log.csv").write_text(text)
    with pytest.raises(DataError, match=r"behavior_log\.csv: column 'btag' has the value 'view'"):
        load_dataset(f"taobao-raw:{tmp_path / 'raw'}", cache_dir=tmp_path / "c")
    assert not list((tmp_path / "c").glob("taobao-raw-*"))  # a failed build leaves no cache


def test_last_behaviours_vectorised():
    beh_user = np.array([1, 1, 1, 2, 2])
    beh_ts = np.array([5, 7, 9, 1, 2])
    idx, length = taobao_raw.last_behaviours(np.array([1, 1, 2, 3]), np.array([7, 100, 1, 5]),
                                             beh_user, beh_ts, 2)
    assert length.tolist() == [1, 2, 0, 0]
    assert idx.tolist() == [[-1, 0], [1, 2], [-1, -1], [-1, -1]]


def test_no_trailing_newline_and_small_blocks(tmp_path, monkeypatch, data):
    """Blocks cut at line ends give the same rows whatever the block size."""
    shutil.copytree(FIXTURE, tmp_path / "raw")
    p = tmp_path / "raw" / "behavior_log.csv"
    p.write_text(p.read_text().rstrip("\n"))
    monkeypatch.setattr(taobao_raw, "BLOCK_BYTES", 100)  # many tiny blocks
    again = load_dataset(f"taobao-raw:{tmp_path / 'raw'}", cache_dir=tmp_path / "c")
    assert again.info["pipeline_stats"]["behaviours_read"] == 61
    assert torch.equal(again.test.seq_mask, data.test.seq_mask)
    assert torch.equal(again.train.label, data.train.label)


def test_bench_fixture_is_in_the_raw_format(tmp_path):
    from saml_core.data.bench_raw import write_raw_fixture

    facts = write_raw_fixture(tmp_path / "raw", behaviours=20_000, impressions=4_000)
    assert (tmp_path / "raw" / "user_profile.csv").read_text().splitlines()[0].endswith("new_user_class_level ")
    data = load_dataset(f"taobao-raw:{tmp_path / 'raw'}", cache_dir=tmp_path / "c")
    stats = data.info["pipeline_stats"]
    assert stats["behaviours_read"] == facts["behaviours"] and stats["impressions_read"] == 4_000
    assert 0 < stats["no_profile"] < 600 and stats["out_of_range"] > 0
    assert len(data.test) > 0 and data.spec.num_scenarios == 5


def test_empty_timestamp_is_named(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "raw")
    lines = (FIXTURE / "raw_sample.csv").read_text().splitlines()
    parts = lines[3].split(",")
    parts[1] = ""
    lines[3] = ",".join(parts)
    (tmp_path / "raw" / "raw_sample.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"raw_sample\.csv: column 'time_stamp' is empty"):
        load_dataset(f"taobao-raw:{tmp_path / 'raw'}", cache_dir=tmp_path / "c")


def test_default_cache_dir_and_unwritable_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAML_CACHE_DIR", str(tmp_path / "env_cache"))
    data = load_dataset(f"taobao-raw:{FIXTURE}")
    assert len(data.test) == 6 and list((tmp_path / "env_cache").glob("taobao-raw-*/manifest.json"))
    assert not (FIXTURE / ".saml_cache").exists()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match=r"cannot create the cache folder"):
        load_dataset(f"taobao-raw:{FIXTURE}", cache_dir=blocker / "sub")
