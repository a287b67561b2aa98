"""aliexpress:DIR - countries from folders, seeded validation cut by search page, train-only
encoding, checked rows, the parquet cache; on a fixture in the exact per-country layout
(tests/fixtures/aliexpress/README.md: real rows, artificial countries)."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from saml_core.data import OOV_INDEX, DataError, load_dataset
from saml_core.data import aliexpress, flatlog
from saml_core.data.aliexpress import CATEGORICAL, NUMERIC, load_aliexpress, valid_mask

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "aliexpress"
CODES = ("ES", "FR", "NL")  # alphabetical: the scenario order


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("aliexpress_cache")


@pytest.fixture(scope="module")
def data(cache):
    return load_dataset(f"aliexpress:{FIXTURE}", cache_dir=str(cache))


def reference(seed=0, root=FIXTURE):
    """Rows in load order (country, file, line) with their split, read with pandas."""
    frames = []
    for k, code in enumerate(CODES):
        for which in ("train", "test"):
            f = pd.read_csv(root / f"AliExpress_{code}" / f"{which}.csv")
            f["k"] = k
            f["split"] = 2 if which == "test" else np.where(valid_mask(f.search_id.to_numpy(), seed), 1, 0)
            frames.append(f)
    return pd.concat(frames, ignore_index=True)


def _copy(tmp_path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "ae")
    return tmp_path / "ae"


def test_countries_splits_and_labels(data):
    ref = reference()
    assert data.spec.scenario_names == CODES and data.scenario_noun == ("country", "countries")
    assert data.kind == "aliexpress" and data.name.startswith("aliexpress:")
    assert (len(data.train), len(data.valid), len(data.test)) == tuple(np.bincount(ref.split, minlength=3))
    assert len(data.train) + len(data.valid) == 100 and len(data.test) == 20
    for s, split in enumerate((data.train, data.valid, data.test)):
        part = ref[ref.split == s]
        assert split.scenario.tolist() == part.k.tolist()
        assert split.label.tolist() == part.click.astype(float).tolist()
    assert data.test.scenario.bincount().tolist() == [7, 6, 7]  # ES, FR, NL test.csv rows


def test_validation_is_a_cut_of_whole_search_pages(data):
    ref = reference()
    train_pages = set(ref.search_id[ref.split == 0])
    valid_pages = set(ref.search_id[ref.split == 1])
    assert valid_pages and not (train_pages & valid_pages)
    assert len(data.valid) == int((ref.split == 1).sum()) > 0
    # the cut is a property of the page id and the seed, not of the row order
    ids = np.arange(200_000)
    share = valid_mask(ids, 0).mean()
    assert abs(share - aliexpress.VALID_FRACTION) < 0.005
    assert valid_mask(ids[::-1], 0)[::-1].tolist() == valid_mask(ids, 0).tolist()


def test_features_encoded_with_train_rows_only(data):
    ref = reference()
    train = ref[ref.split == 0]
    assert [f.name for f in data.spec.cat_fields] == list(CATEGORICAL)
    assert data.spec.num_fields == NUMERIC and data.spec.seq_fields == () and data.spec.seq_len == 1
    for j, c in enumerate(CATEGORICAL):
        vocab = np.sort(train[c].unique())
        assert data.spec.cat_fields[j].vocab_size == len(vocab) + 2
        for s, split in enumerate((data.train, data.valid, data.test)):
            values = ref[ref.split == s][c].to_numpy()
            pos = np.searchsorted(vocab, values)
            known = (pos < len(vocab)) & (vocab[np.minimum(pos, len(vocab) - 1)] == values)
            want = np.where(known, pos + 2, OOV_INDEX)
            assert split.cat[:, j].tolist() == want.tolist(), (c, s)
    x = train[list(NUMERIC)].to_numpy(np.float32).astype(np.float64)
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    want = (ref[ref.split == 2][list(NUMERIC)].to_numpy(np.float32) - mean) / std
    assert np.allclose(data.test.num.numpy(), want, atol=1e-4)
    assert not data.train.seq_mask.any() and data.train.seq.shape == (len(data.train), 0, 1)


def test_value_seen_only_in_test_is_oov(tmp_path, cache):
    root = _copy(tmp_path)
    path = root / "AliExpress_NL" / "test.csv"
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[7] = "987654"  # categorical_7 of the first NL test row: never in any train file
    lines[1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    data = load_aliexpress(root, cache_dir=tmp_path / "c")
    j = CATEGORICAL.index("categorical_7")
    first_nl = int(np.flatnonzero(data.test.scenario.numpy() == CODES.index("NL"))[0])
    assert int(data.test.cat[first_nl, j]) == OOV_INDEX


def test_determinism_by_seed(data, cache):
    again = load_aliexpress(FIXTURE, cache_dir=cache, seed=0)
    for a, b in ((again.train, data.train), (again.valid, data.valid), (again.test, data.test)):
        assert torch.equal(a.cat, b.cat) and torch.equal(a.num, b.num) and torch.equal(a.label, b.label)
    other = load_aliexpress(FIXTURE, cache_dir=cache, seed=1)
    ref1 = reference(seed=1)
    assert len(other.valid) == int((ref1.split == 1).sum())
    assert set(reference(0).search_id[reference(0).split == 1]) != set(ref1.search_id[ref1.split == 1])
    assert torch.equal(other.test.label, data.test.label)  # the test files do not move
    assert other.info["seed"] == 1


def _mutate(root: Path, line: int, column: str, value: str, file="AliExpress_FR/train.csv") -> Path:
    path = root / file
    lines = path.read_text().splitlines()
    names = lines[0].split(",")
    fields = lines[line - 1].split(",")
    if column == "<drop>":
        fields = fields[:-1]
    else:
        fields[names.index(column)] = value
    lines[line - 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("column,value,message", [
    ("<drop>", "", r"line 5 has 81 field\(s\), expected 82 as in the header"),
    ("numerical_12", "abc", r"line 5, column 'numerical_12': the value 'abc' is not a number"),
    ("click", "2", r"line 5, column 'click': the value is 2; the label must be 0 or 1"),
    ("numerical_40", "inf", r"line 5, column 'numerical_40': the value is infinite"),
    ("categorical_3", "1.5", r"line 5, column 'categorical_3': the value '1.5' is not an integer id"),
    ("categorical_3", "", r"line 5, column 'categorical_3': the value is empty"),
])
def test_malformed_row_names_file_line_and_column(tmp_path, column, value, message):
    root = _copy(tmp_path)
    path = _mutate(root, 5, column, value)
    with pytest.raises(DataError, match=message) as err:
        load_aliexpress(root, cache_dir=tmp_path / "c")
    text = str(err.value)
    assert text.startswith(str(path)) and "\n" not in text
    assert not list((tmp_path / "c").glob("aliexpress-*"))  # a failed build leaves no cache


@pytest.mark.parametrize("piece_bytes", [flatlog.BLOCK_BYTES, 2000])
def test_error_line_numbers_are_exact_across_pieces_and_empty_lines(tmp_path, monkeypatch, piece_bytes):
    root = _copy(tmp_path)
    path = root / "AliExpress_ES" / "train.csv"
    lines = path.read_text().splitlines()
    lines.insert(10, "")  # an empty line: skipped, but it still counts as a line
    path.write_text("\n".join(lines) + "\n")
    _mutate(root, 30, "click", "7", file="AliExpress_ES/train.csv")
    monkeypatch.setattr(flatlog, "BLOCK_BYTES", piece_bytes)  # 2000: many pieces of a few rows
    with pytest.raises(DataError, match=r"train\.csv: line 30, column 'click': the value is 7"):
        load_aliexpress(root, cache_dir=tmp_path / "c")


def test_small_pieces_give_the_same_data(tmp_path, monkeypatch, data):
    monkeypatch.setattr(flatlog, "BLOCK_BYTES", 1500)
    again = load_aliexpress(FIXTURE, cache_dir=tmp_path / "c")
    assert torch.equal(again.train.num, data.train.num) and torch.equal(again.test.cat, data.test.cat)


def test_folder_problems(tmp_path):
    root = _copy(tmp_path)
    shutil.rmtree(root / "AliExpress_ES")
    shutil.rmtree(root / "AliExpress_FR")
    with pytest.raises(DataError, match=r"SAML compares scenarios: .* has one country \(NL\)"):
        load_aliexpress(root, cache_dir=tmp_path / "c")
    (root / "AliExpress_FR").mkdir()
    (root / "AliExpress_FR" / "train.csv").write_text("x\n")
    with pytest.raises(DataError, match=r"AliExpress_FR: missing test\.csv"):
        load_aliexpress(root, cache_dir=tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no AliExpress_<country> folder"):
        load_aliexpress(tmp_path / "empty", cache_dir=tmp_path / "c")
    header = (FIXTURE / "AliExpress_NL" / "train.csv").read_text().splitlines()[0]
    (root / "AliExpress_FR" / "train.csv").write_text(header.replace("click,", "clicked,") + "\n")
    (root / "AliExpress_FR" / "test.csv").write_text(header + "\n")
    with pytest.raises(DataError, match=r"AliExpress_FR/train\.csv: missing column\(s\) click"):
        load_aliexpress(root, cache_dir=tmp_path / "c")


def test_cache_is_reused_and_invalidated_when_a_file_changes(tmp_path, monkeypatch):
    root = _copy(tmp_path)
    first = load_aliexpress(root, cache_dir=tmp_path / "c")
    (old,) = (tmp_path / "c").glob("aliexpress-*")

    def boom(*a, **k):
        raise AssertionError("the CSVs were read again")

    with monkeypatch.context() as m:
        m.setattr(flatlog, "read_blocks", boom)
        again = load_aliexpress(root, cache_dir=tmp_path / "c")
    assert torch.equal(again.test.num, first.test.num)

    _mutate(root, 2, "click", "0", file="AliExpress_NL/test.csv")  # first NL test row: a click
    changed = load_aliexpress(root, cache_dir=tmp_path / "c")
    (new,) = (tmp_path / "c").glob("aliexpress-*")  # rebuilt, the stale cache removed
    assert new != old
    nl = changed.test.scenario == CODES.index("NL")
    assert changed.test.label[nl].sum() == first.test.label[nl].sum() - 1


def test_models_build_train_and_predict_without_sequences(data, one_torch_thread):
    from saml_core.config import ModelConfig, TrainConfig
    from saml_core.models import build_model, registry
    from saml_core.train import fit, predict

    cfg = ModelConfig(d_g=4, d_s=2, heads=2, head_dim=4, ff_dim=8, mlp=(16, 8))
    batch = data.train.take(torch.arange(8))
    for model_id in registry.ids():
        out = build_model(model_id, data.spec, cfg)(batch)
        assert out["logit"].shape == (8,) and torch.isfinite(out["logit"]).all(), model_id
    for model_id in ("saml", "bst"):
        model = build_model(model_id, data.spec, cfg)
        fit(model, data.train, data.valid, TrainConfig(epochs=1, patience=1, batch_size=32, device="cpu"),
            seed=0, device=torch.device("cpu"))
        p = predict(model, data.test, torch.device("cpu"))
        assert p.shape == (20,) and np.isfinite(p).all()


def test_bench_fixture_is_in_the_per_country_layout(tmp_path):
    from saml_core.data.bench_raw import AE_COUNTRIES, write_aliexpress_fixture

    facts = write_aliexpress_fixture(tmp_path / "raw", rows=6_000)
    header = (tmp_path / "raw" / "AliExpress_NL" / "train.csv").read_text().splitlines()[0]
    assert header == (FIXTURE / "AliExpress_NL" / "train.csv").read_text().splitlines()[0]
    data = load_aliexpress(tmp_path / "raw", cache_dir=tmp_path / "c")
    assert data.spec.scenario_names == tuple(sorted(AE_COUNTRIES))
    assert len(data.train) + len(data.valid) + len(data.test) == sum(int(6_000 * s) for s in AE_COUNTRIES.values())
    assert facts["csv_bytes"] > 0 and len(data.valid) > 0
