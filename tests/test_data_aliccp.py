"""aliccp:DIR - domains of field 301, the files' splits, train-only encoding, checked rows, the
parquet cache; on a fixture in the processed torch-rechub / Scenario-Wise-Rec layout
(tests/fixtures/ali_ccp/README.md: real rows, artificial domains)."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from saml_core.data import OOV_INDEX, DataError, load_dataset
from saml_core.data import flatlog
from saml_core.data.aliccp import CATEGORICAL, NUMERIC, load_aliccp

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "ali_ccp"
STEMS = ("train", "val", "test")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("aliccp_cache")


@pytest.fixture(scope="module")
def data(cache):
    return load_dataset(f"aliccp:{FIXTURE}", cache_dir=str(cache))


def frames(root=FIXTURE):
    return [pd.read_csv(root / f"ali_ccp_{s}.csv", dtype={c: np.int64 for c in CATEGORICAL}) for s in STEMS]


def _copy(tmp_path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "ccp")
    return tmp_path / "ccp"


def _rewrite(path: Path, edit) -> None:
    """edit(names, rows) changes the split lines in place; the file keeps its lack of a final newline."""
    text = path.read_text()
    lines = text.splitlines()
    names, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    edit(names, rows)
    end = "\n" if text.endswith("\n") else ""
    path.write_text("\n".join([",".join(names)] + [",".join(r) for r in rows]) + end)


def test_domains_splits_and_labels(data):
    train, val, test = frames()
    assert data.spec.scenario_names == ("domain 1", "domain 2", "domain 3")
    assert data.scenario_noun == ("domain", "domains") and data.kind == "aliccp"
    assert (len(data.train), len(data.valid), len(data.test)) == (100, 50, 50)
    for split, ref in ((data.train, train), (data.valid, val), (data.test, test)):
        assert split.scenario.tolist() == (ref["301"] - 1).tolist()
        assert split.label.tolist() == ref.click.astype(float).tolist()
    assert data.train.scenario.bincount().tolist() == [34, 33, 33]


def test_features_and_train_only_encoding(data):
    train, val, test = frames()
    names = [f.name for f in data.spec.cat_fields]
    assert names == list(CATEGORICAL) and "301" not in names  # the scenario is not a feature
    assert data.spec.num_fields == NUMERIC and data.spec.seq_fields == ()
    for j, c in enumerate(CATEGORICAL):
        vocab = np.sort(train[c].unique())
        assert data.spec.cat_fields[j].vocab_size == len(vocab) + 2
        for split, ref in ((data.valid, val), (data.test, test)):
            values = ref[c].to_numpy()
            pos = np.searchsorted(vocab, values)
            known = (pos < len(vocab)) & (vocab[np.minimum(pos, len(vocab) - 1)] == values)
            assert split.cat[:, j].tolist() == np.where(known, pos + 2, OOV_INDEX).tolist(), c
    # the fixture really has ids seen only after train (field 205, the item id)
    j = CATEGORICAL.index("205")
    assert (data.test.cat[:, j] == OOV_INDEX).any() and not (data.train.cat[:, j] == OOV_INDEX).any()
    x = train[list(NUMERIC)].to_numpy(np.float32).astype(np.float64)
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    want = (test[list(NUMERIC)].to_numpy(np.float32) - mean) / std
    assert np.allclose(data.test.num.numpy(), want, atol=1e-4)


def test_deterministic_and_seed_does_not_move_the_files_splits(data, cache):
    again = load_aliccp(FIXTURE, cache_dir=cache, seed=7)
    for a, b in ((again.train, data.train), (again.valid, data.valid), (again.test, data.test)):
        assert torch.equal(a.cat, b.cat) and torch.equal(a.num, b.num) and torch.equal(a.label, b.label)


@pytest.mark.parametrize("column,value,message", [
    ("<drop>", "", r"line 4 has 32 field\(s\), expected 33 as in the header"),
    ("D508", "n/a", r"line 4, column 'D508': the value 'n/a' is not a number"),
    ("click", "-1", r"line 4, column 'click': the value is -1; the label must be 0 or 1"),
    ("D853", "-inf", r"line 4, column 'D853': the value is infinite"),
    ("D702", "1e300", r"line 4, column 'D702': the value 1e\+300 is out of the float32 range"),
    ("205", "x7", r"line 4, column '205': the value 'x7' is not an integer id"),
])
def test_malformed_row_names_file_line_and_column(tmp_path, column, value, message):
    root = _copy(tmp_path)

    def edit(names, rows):
        if column == "<drop>":
            rows[2].pop()
        else:
            rows[2][names.index(column)] = value

    _rewrite(root / "ali_ccp_val.csv", edit)  # line 4 = data row 2
    with pytest.raises(DataError, match=message) as err:
        load_aliccp(root, cache_dir=tmp_path / "c")
    assert str(err.value).startswith(str(root / "ali_ccp_val.csv")) and "\n" not in str(err.value)


def test_one_domain_is_refused(tmp_path):
    root = _copy(tmp_path)
    for s in STEMS:  # as in the original sample: 301 = 1 everywhere
        _rewrite(root / f"ali_ccp_{s}.csv", lambda names, rows: [r.__setitem__(names.index("301"), "1") for r in rows])
    with pytest.raises(DataError, match=r"SAML compares scenarios: .*ali_ccp_train\.csv has one domain \(field 301 = 1"):
        load_aliccp(root, cache_dir=tmp_path / "c")


def test_domain_without_train_clicks_is_dropped_and_said(tmp_path):
    """As a csv: log does (one rule, build.judge_scenarios): left out of every split, with a note."""
    root = _copy(tmp_path)

    def no_clicks_in_domain_2(names, rows):
        for r in rows:
            if r[names.index("301")] == "2":
                r[names.index("click")] = "0"

    _rewrite(root / "ali_ccp_train.csv", no_clicks_in_domain_2)
    data = load_aliccp(root, cache_dir=tmp_path / "c", mapped=False)
    assert data.spec.scenario_names == ("domain 1", "domain 3")
    assert data.info["dropped_scenarios"] == [{"scenario": "domain 2", "reason": "0 clicks in the train split",
                                               "train_positives": 0, "test_positives": 0, "test_negatives": 17}]
    train, val, test = frames()
    assert (len(data.train), len(data.valid), len(data.test)) == (67, 33, 33)
    assert data.test.scenario.tolist() == [0 if d == 1 else 1 for d in test["301"] if d != 2]
    mapped = load_aliccp(root, cache_dir=tmp_path / "c")  # its own encoded store, not the full one's
    assert mapped.spec.scenario_names == data.spec.scenario_names and torch.equal(mapped.test.label, data.test.label)
    _rewrite(root / "ali_ccp_train.csv", lambda names, rows: [r.__setitem__(names.index("click"), "0") for r in rows
                                                             if r[names.index("301")] == "3"])
    with pytest.raises(DataError, match=r"ali_ccp_train\.csv: SAML compares domains: this log has one \(domain 1\); "
                                        r"dropped: 'domain 2' \(0 clicks in the train split\), 'domain 3' "):
        load_aliccp(root, cache_dir=tmp_path / "c")


def test_domain_missing_from_train_is_named(tmp_path):
    root = _copy(tmp_path)
    _rewrite(root / "ali_ccp_test.csv", lambda names, rows: rows[5].__setitem__(names.index("301"), "4"))
    with pytest.raises(DataError, match=r"ali_ccp_test\.csv: column '301' has the domain value\(s\) 4, "
                                        r"which the train file ali_ccp_train\.csv does not have"):
        load_aliccp(root, cache_dir=tmp_path / "c")


def test_file_names(tmp_path, data):
    root = tmp_path / "samples"
    root.mkdir()
    for s in STEMS:  # the `_sample` names of torch-rechub / Scenario-Wise-Rec's shipped samples
        shutil.copy(FIXTURE / f"ali_ccp_{s}.csv", root / f"ali_ccp_{s}_sample.csv")
    again = load_aliccp(root, cache_dir=tmp_path / "c")
    assert torch.equal(again.test.cat, data.test.cat)
    (root / "ali_ccp_val_sample.csv").unlink()
    with pytest.raises(DataError, match=r"missing ali_ccp_val_sample\.csv"):
        load_aliccp(root, cache_dir=tmp_path / "c")
    official = tmp_path / "official"
    official.mkdir()
    (official / "sample_skeleton_train.csv").write_text("")
    with pytest.raises(DataError, match=r"official Tianchi files .* must first be converted"):
        load_aliccp(official, cache_dir=tmp_path / "c")


def test_cache_is_reused_and_invalidated_when_a_file_changes(tmp_path, monkeypatch):
    root = _copy(tmp_path)
    first = load_aliccp(root, cache_dir=tmp_path / "c")
    (old,) = (tmp_path / "c").glob("aliccp-*")

    def boom(*a, **k):
        raise AssertionError("the CSVs were read again")

    with monkeypatch.context() as m:
        m.setattr(flatlog, "read_blocks", boom)
        again = load_aliccp(root, cache_dir=tmp_path / "c")
    assert torch.equal(again.train.cat, first.train.cat)

    _rewrite(root / "ali_ccp_train.csv", lambda names, rows: rows[0].__setitem__(names.index("click"), "1"))
    changed = load_aliccp(root, cache_dir=tmp_path / "c")
    (new,) = (tmp_path / "c").glob("aliccp-*")
    assert new != old and changed.train.label.sum() == first.train.label.sum() + 1


def test_bench_fixture_is_in_the_processed_layout(tmp_path):
    from saml_core.data.bench_raw import write_aliccp_fixture

    write_aliccp_fixture(tmp_path / "raw", rows=8_000)
    header = (tmp_path / "raw" / "ali_ccp_train.csv").read_text().splitlines()[0]
    assert header == (FIXTURE / "ali_ccp_train.csv").read_text().splitlines()[0]
    data = load_aliccp(tmp_path / "raw", cache_dir=tmp_path / "c")
    assert data.spec.scenario_names == ("domain 1", "domain 2", "domain 3")
    assert (len(data.train), len(data.valid), len(data.test)) == (4_000, 2_000, 2_000)
    assert 0 < int((data.train.scenario == 1).sum()) < 100  # the small domain, ~0.75 %
