"""Bring-your-own logs: the shipped example loads; every bad input gives a clear DataError."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from saml_core.data import DataError, OOV_INDEX, load_dataset
from saml_core.data.byo import load_byo

EXAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "byo_example" / "schema.yaml"

SCHEMA = """\
data: {data}
scenario: market
{scenarios}label: click
categorical: [item, cat]
numeric: [price]
sequences:
  - {{column: hist, item_field: item, sep: "|"}}
split: {{column: day, test: last, valid: last}}
seq_len: 4
min_positives: 1
"""
# (min_positives 1: these logs are tiny, 2 clicks per market in test; the default rule, 10 clicks
# and 10 non-clicks, would leave no market: test_default_rule_needs_ten_clicks_and_non_clicks)


def good_frame() -> pd.DataFrame:
    rows = []
    for day in range(4):
        for m, market in enumerate(["A", "B", "C"]):
            for i in range(6):
                rows.append({
                    "day": day, "market": market, "click": int(i % 3 == 0),
                    "item": f"i{(i + m) % 5}", "cat": f"c{i % 2}", "price": float(day * 10 + i),
                    "hist": "|".join(f"i{(i + k) % 5}" for k in range(1 + i % 3)),
                })
    return pd.DataFrame(rows)


def write(tmp_path, df, scenarios=None, name="log.csv", schema_text=None):
    if name.endswith(".parquet"):
        df.to_parquet(tmp_path / name, index=False)
    else:
        df.to_csv(tmp_path / name, index=False)
    sc = f"scenarios: {scenarios}\n" if scenarios else ""
    text = schema_text if schema_text is not None else SCHEMA.format(data=name, scenarios=sc)
    (tmp_path / "schema.yaml").write_text(text)
    return tmp_path / "schema.yaml"


def test_example_loads():
    data = load_dataset(f"csv:{EXAMPLE}")
    assert data.kind == "byo"
    # 8,000 rows: only the big countries have 10 clicks and 10 non-clicks on the test day (the
    # default rule); the others are left out, each with its counts
    assert data.spec.scenario_names == ("RU", "BR", "Others")
    dropped = data.info["dropped_scenarios"]
    assert [d["scenario"] for d in dropped] == ["ES", "US", "FR", "PL", "NL", "CL", "UA"]
    for d in dropped:
        assert d["test_positives"] < 10 and "min_positives 10" in d["reason"], d
        assert d["reason"].startswith(f"{d['test_positives']} click")
    y, s = data.test.label.numpy(), data.test.scenario.numpy()
    assert all(10 <= y[s == j].sum() <= (s == j).sum() - 10 for j in range(3))
    assert data.spec.seq_len == 10 and data.category_field == "category"
    assert len(data.test) > 0 and len(data.valid) > 0


def test_good_log_splits_and_train_only_fitting(tmp_path):
    df = good_frame()
    df.loc[df.day == 3, "cat"] = "only_in_test"
    path = write(tmp_path, df)
    data = load_byo(path)
    assert data.spec.scenario_names == ("A", "B", "C")
    assert len(data.test) == 18 and len(data.valid) == 18 and len(data.train) == 36
    j = data.spec.cat_index("cat")
    assert (data.test.cat[:, j] == OOV_INDEX).all()  # a value seen only in test -> OOV
    # normalisation uses the train mean/std only (days 0-1)
    train_price = df[df.day <= 1].price.to_numpy()
    expect = (df[df.day == 3].price.to_numpy() - train_price.mean()) / train_price.std()
    assert np.allclose(np.sort(data.test.num[:, 0].numpy()), np.sort(expect), atol=1e-5)
    assert abs(float(data.train.num[:, 0].mean())) < 1e-5


def test_sequences_right_aligned_oldest_first(tmp_path):
    df = good_frame().iloc[[0, 1, 6, 7]].copy()  # a clicked and an unclicked row of market A and of B
    df = pd.concat([df.assign(day=d) for d in range(3)], ignore_index=True)
    df["hist"] = "i1|i2|i3"
    df["item"] = "i1"
    data = load_byo(write(tmp_path, df))
    seq = data.train.seq[0, 0]
    assert seq[0] == 0 and bool((seq[1:] > 1).all())  # 3 items right-aligned in L=4
    assert data.train.seq_mask[0].tolist() == [False, True, True, True]
    # the vocabulary is sorted, so i1 < i2 < i3 in index and the order is kept
    assert seq[1] < seq[2] < seq[3]


def test_parquet_input(tmp_path):
    data = load_byo(write(tmp_path, good_frame(), name="log.parquet"))
    assert len(data.train) == 36


def _err(tmp_path, df, match, **kw):  # noqa: D103
    with pytest.raises(DataError, match=match) as exc:
        load_byo(write(tmp_path, df, **kw))
    assert "\n" not in str(exc.value)  # one line, for the CLI's one `error: ...` line


def test_missing_column(tmp_path):
    _err(tmp_path, good_frame().drop(columns=["price"]), r"log\.csv: missing column\(s\) 'price'")


def test_non_binary_label(tmp_path):
    df = good_frame()
    df.loc[5, "click"] = 2
    _err(tmp_path, df, r"log\.csv: label column 'click' has the non-binary value .*2.* at row 5")


def test_nan_label(tmp_path):
    df = good_frame().astype({"click": float})
    df.loc[7, "click"] = np.nan
    _err(tmp_path, df, r"log\.csv: label column 'click' is empty \(NaN\) at row 7")


def test_wrong_separator(tmp_path):
    df = good_frame()
    df["hist"] = df["hist"].str.replace("|", ",")
    _err(tmp_path, df, r"log\.csv: sequence column 'hist' row \d+: value 'i\d,i\d.*' contains ','.*separator '\|'")


def test_scenario_without_train_positives_is_dropped_and_said(tmp_path):
    # It used to stop everything; now the scenario leaves every split and the data says why.
    df = good_frame()
    df.loc[(df.market == "B") & (df.day <= 1), "click"] = 0
    data = load_byo(write(tmp_path, df))
    assert data.spec.scenario_names == ("A", "C")
    assert len(data.train) == 24 and len(data.test) == 12 and len(data.valid) == 12
    assert data.info["dropped_scenarios"] == [{
        "scenario": "B", "reason": "0 clicks in the train split",
        "train_positives": 0, "test_positives": 2, "test_negatives": 4}]


def test_declared_scenario_without_train_samples_is_dropped(tmp_path):
    data = load_byo(write(tmp_path, good_frame(), scenarios="[A, B, C, D]"))
    assert data.spec.scenario_names == ("A", "B", "C")
    (d,) = data.info["dropped_scenarios"]
    assert d["scenario"] == "D" and d["reason"].startswith("no samples in the train split")


def test_scenario_only_in_test_is_dropped(tmp_path):
    df = good_frame()
    df.loc[df.index[-1], "market"] = "Z"  # last day = test
    data = load_byo(write(tmp_path, df))
    assert data.spec.scenario_names == ("A", "B", "C") and len(data.test) == 17
    assert [d["scenario"] for d in data.info["dropped_scenarios"]] == ["Z"]


def test_scenario_not_in_declared_list(tmp_path):
    df = good_frame()
    df.loc[3, "market"] = "Q"
    _err(tmp_path, df, r"log\.csv: column 'market' has the scenario value 'Q'", scenarios="[A, B, C]")


def test_non_numeric_value(tmp_path):
    df = good_frame().astype({"price": object})
    df.loc[4, "price"] = "cheap"
    _err(tmp_path, df, r"log\.csv: numeric column 'price' has the non-numeric value 'cheap' at row 4")


@pytest.mark.parametrize("text, match", [
    ("data: [unclosed", r"schema\.yaml: cannot parse the schema file"),
    ("- a\n- b\n", r"schema\.yaml: the schema must be a mapping"),
    ("data: log.csv\nlabel: click\n", r"schema\.yaml: required key 'scenario' is missing"),
    ("data: log.csv\nscenario: market\nlabel: click\ncolour: red\n", r"unknown key\(s\) colour"),
    ("data: nope.csv\nscenario: market\nlabel: click\nsplit: {column: day}\n", r"nope\.csv: data file not found"),
    ("data: log.csv\nscenario: market\nlabel: click\ncategorical: [item]\n"
     "sequences: [{column: hist, item_field: cat}]\nsplit: {column: day}\n",
     r"item_field 'cat' must be one of the categorical columns"),
    ("data: log.csv\nscenario: market\nlabel: click\nsplit: {column: day, test: middle}\n",
     r"split\.test: unsupported rule 'middle'"),
])
def test_bad_schema_files(tmp_path, text, match):
    _err(tmp_path, good_frame(), match, schema_text=text)


def test_missing_schema_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.yaml: schema file not found"):
        load_dataset(f"csv:{tmp_path / 'nope.yaml'}")


def test_json_schema(tmp_path):
    df = good_frame()
    df.to_csv(tmp_path / "log.csv", index=False)
    (tmp_path / "s.json").write_text(
        '{"data": "log.csv", "scenario": "market", "label": "click", "categorical": ["item"],'
        ' "split": {"column": "day", "test": {"values": [3]}, "valid": {"fraction": 0.2}}, "min_positives": 1}'
    )
    data = load_byo(tmp_path / "s.json")
    assert len(data.test) == 18 and len(data.train) + len(data.valid) == 54
    assert torch.equal(data.train.seq, torch.zeros(len(data.train), 0, data.spec.seq_len, dtype=torch.int64))


def test_date_strings_and_yaml_dates(tmp_path):
    df = good_frame()
    df["day"] = df["day"].map(lambda d: f"2024-01-0{d + 1}")
    text = SCHEMA.format(data="log.csv", scenarios="").replace(
        "split: {column: day, test: last, valid: last}",
        "split: {column: day, test: {from: 2024-01-04}, valid: {values: [2024-01-03]}}")
    data = load_byo(write(tmp_path, df, schema_text=text))
    assert len(data.test) == 18 and len(data.valid) == 18
    import json
    json.dumps(data.info)  # the rule (a YAML date) is reported as text


def test_rule_type_mismatch_is_clear(tmp_path):
    text = SCHEMA.format(data="log.csv", scenarios="").replace(
        "split: {column: day, test: last, valid: last}", "split: {column: day, test: {from: soon}}")
    _err(tmp_path, good_frame(), r"split column 'day': the rule cannot compare its values", schema_text=text)


def test_parquet_list_sequences(tmp_path):
    df = good_frame()
    df["hist"] = df["hist"].str.split("|")  # a list column, as Parquet users often store it
    data = load_byo(write(tmp_path, df, name="log.parquet"))
    ref = load_byo(write(tmp_path, good_frame(), name="log2.csv"))
    assert torch.equal(data.test.seq, ref.test.seq) and torch.equal(data.train.seq_mask, ref.train.seq_mask)


# ---- splits without a time column, separate files, seeds ---------------------------------
def with_users(df: pd.DataFrame) -> pd.DataFrame:
    """30 users; `uid` is the user as a number, so the split of every row can be read back."""
    df = df.copy()
    df["user"] = [f"u{i % 30}" for i in range(len(df))]
    df["uid"] = [float(i % 30) for i in range(len(df))]
    return df


def schema_with(split: str, extra: str = "", numeric: str = "[price]") -> str:
    return (SCHEMA.format(data="log.csv", scenarios="")
            .replace("split: {column: day, test: last, valid: last}", f"split: {split}")
            .replace("numeric: [price]", f"numeric: {numeric}") + extra)


def test_random_split_by_row_is_seeded(tmp_path):
    path = write(tmp_path, good_frame(), schema_text=schema_with("{method: random, test: 0.2, valid: 0.1}"))
    a, b, c = load_byo(path, seed=0), load_byo(path, seed=0), load_byo(path, seed=1)
    assert (len(a.train), len(a.valid), len(a.test)) == (72 - 14 - 7, 7, 14)  # round(f * 72) rows
    assert torch.equal(a.test.num, b.test.num) and torch.equal(a.valid.cat, b.valid.cat)
    assert not torch.equal(a.test.num, c.test.num)
    assert a.info["seed"] == 0 and a.info["split"]["method"] == "random"


def test_group_split_keeps_each_user_in_one_split(tmp_path):
    df = with_users(good_frame())
    path = write(tmp_path, df, schema_text=schema_with("{method: group, column: user, test: 0.2, valid: 0.1}",
                                                       numeric="[uid]"))
    data = load_byo(path, seed=3)
    users = [set(np.round(s.num[:, 0].numpy(), 4)) for s in (data.train, data.valid, data.test)]
    assert users[0] and users[1] and users[2]
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])
    assert 0.1 < len(data.test) / len(df) < 0.3
    again = load_byo(path, seed=3)
    assert torch.equal(data.test.num, again.test.num)


def test_time_split_unchanged_and_valid_fraction_is_seeded(tmp_path):
    path = write(tmp_path, good_frame(), schema_text=schema_with("{column: day, test: last, valid: {fraction: 0.3}}"))
    a, b = load_byo(path), load_byo(path, seed=5)
    assert len(a.test) == len(b.test) == 18  # the time rule does not depend on the seed
    assert not torch.equal(a.valid.num, b.valid.num)


def test_separate_files(tmp_path):
    df = good_frame()
    df[df.day <= 1].to_csv(tmp_path / "train.csv", index=False)
    df[df.day == 2].to_csv(tmp_path / "valid.csv", index=False)
    df[df.day == 3].to_csv(tmp_path / "test.csv", index=False)
    text = SCHEMA.format(data="{train: train.csv, valid: valid.csv, test: test.csv}", scenarios="").replace(
        "split: {column: day, test: last, valid: last}\n", "")
    (tmp_path / "schema.yaml").write_text(text)
    data = load_dataset(f"csv:{tmp_path / 'schema.yaml'}")
    ref = load_byo(write(tmp_path, df, name="all.csv"))  # the same rows split by day
    assert torch.equal(data.test.num, ref.test.num) and torch.equal(data.valid.seq, ref.valid.seq)
    assert data.info["data_files"] == ["train.csv", "valid.csv", "test.csv"]


def test_separate_files_cut_valid_from_train(tmp_path):
    df = good_frame()
    df[df.day <= 2].to_csv(tmp_path / "train.csv", index=False)
    df[df.day == 3].to_csv(tmp_path / "test.csv", index=False)
    text = SCHEMA.format(data="{train: train.csv, test: test.csv}", scenarios="").replace(
        "split: {column: day, test: last, valid: last}", "split: {valid: 0.25}")
    (tmp_path / "schema.yaml").write_text(text)
    a = load_byo(tmp_path / "schema.yaml")
    assert (len(a.train), len(a.valid), len(a.test)) == (54 - 14, 14, 18)  # round(0.25 * 54)
    b = load_byo(tmp_path / "schema.yaml", seed=9)
    assert torch.equal(a.test.label, b.test.label) and not torch.equal(a.valid.label, b.valid.label)


@pytest.mark.parametrize("data, split, match", [
    ("{train: train.csv, test: test.csv}", "", r"data names train and test files but no valid file: cut validation rows from train with split: \{valid: 0\.1\}"),
    ("{train: train.csv, test: test.csv}", "split: {test: 0.2, valid: 0.1}\n", r"split\.test: the test rows come from data\.test"),
    ("{train: train.csv, valid: train.csv, test: test.csv}", "", r"data\.valid names 'train\.csv', which is already in data\.train"),
    ("{train: train.csv}", "", r"data: 'test' is missing"),
    ("log.csv", "split: {method: random, test: 0.2}\n", r"split\.valid \(a fraction of the rows\) is required by method random"),
    ("log.csv", "split: {method: random, test: 0, valid: 0.1}\n", r"split\.test must be a fraction between 0 and 1 \(exclusive\), got 0"),
    ("log.csv", "split: {method: random, test: 1.5, valid: 0.1}\n", r"split\.test must be a fraction .* got 1\.5"),
    ("log.csv", "split: {method: random, test: 0.6, valid: 0.4}\n", r"split\.test \+ split\.valid = 1 leaves no train rows"),
    ("log.csv", "split: {method: group, test: 0.2, valid: 0.1}\n", r"split\.column is required by method group"),
    ("log.csv", "split: {method: random, column: user, test: 0.2, valid: 0.1}\n", r"split\.column is not used by method random"),
    ("log.csv", "split: {method: stratified, test: 0.2, valid: 0.1}\n", r"split\.method: unknown method 'stratified'"),
    ("log.csv", "", r"'split' is required"),
])
def test_bad_split_specs(tmp_path, data, split, match):
    good_frame().to_csv(tmp_path / "log.csv", index=False)
    text = SCHEMA.format(data=data, scenarios="").replace("split: {column: day, test: last, valid: last}\n", split)
    (tmp_path / "schema.yaml").write_text(text)
    with pytest.raises(DataError, match=r"schema\.yaml: " + match):
        load_byo(tmp_path / "schema.yaml")


# ---- min_positives, drop_scenarios, fewer than two scenarios -------------------------------
def test_scenario_without_test_positives_is_dropped(tmp_path):
    df = good_frame()
    df.loc[(df.market == "C") & (df.day == 3), "click"] = 0
    data = load_byo(write(tmp_path, df))
    assert data.spec.scenario_names == ("A", "B")
    assert data.info["dropped_scenarios"] == [{
        "scenario": "C", "reason": "0 clicks and 6 non-clicks in the test split (min_positives 1: at least 1 of each)",
        "train_positives": 4, "test_positives": 0, "test_negatives": 6}]


def test_min_positives_and_drop_scenarios(tmp_path):
    df = good_frame()
    text = SCHEMA.format(data="log.csv", scenarios="").replace("min_positives: 1", "min_positives: 2") + \
        "drop_scenarios: [C]\n"
    data = load_byo(write(tmp_path, df, schema_text=text))
    assert data.spec.scenario_names == ("A", "B") and data.info["min_positives"] == 2
    assert data.info["dropped_scenarios"] == [{"scenario": "C", "reason": "listed in drop_scenarios",
                                               "train_positives": 4, "test_positives": 2, "test_negatives": 4}]
    a_test = df.index[(df.market == "A") & (df.day == 3) & (df.click == 1)]  # 2 clicks
    df.loc[a_test[1], "click"] = 0
    _err(tmp_path, df, r"log\.csv: SAML compares scenarios: this log has one \(B\); dropped: "
                       r"'A' \(1 click and 5 non-clicks in the test split \(min_positives 2: at least 2 of each\)\), "
                       r"'C' \(listed in drop_scenarios\)$", schema_text=text)


def test_default_rule_needs_ten_clicks_and_non_clicks(tmp_path):
    """Without min_positives the rule is evaluate.MIN_CLASS: a market is kept only with 10 test
    clicks and 10 test non-clicks (and a train click); the counts are said."""
    rows = [{"day": d, "market": m, "click": int(i < clicks), "item": f"i{i % 5}", "cat": "c", "price": 1.0,
             "hist": "i1"}
            for d in range(4) for m, clicks, n in (("A", 10, 20), ("B", 9, 30), ("C", 12, 25)) for i in range(n)]
    text = SCHEMA.format(data="log.csv", scenarios="").replace("min_positives: 1\n", "")
    data = load_byo(write(tmp_path, pd.DataFrame(rows), schema_text=text))
    assert data.spec.scenario_names == ("A", "C") and data.info["min_positives"] == 10
    assert data.info["dropped_scenarios"] == [{
        "scenario": "B", "reason": "9 clicks and 21 non-clicks in the test split (min_positives 10: at least 10 of "
                                   "each)", "train_positives": 18, "test_positives": 9, "test_negatives": 21}]
    rows = [r for j, r in enumerate(rows) if not (r["market"] == "C" and r["day"] == 3 and j % 25 >= 21)]
    with pytest.raises(DataError, match=r"this log has one \(A\); dropped: 'B' .*'C' \(12 clicks and 9 non-clicks"):
        load_byo(write(tmp_path, pd.DataFrame(rows), schema_text=text))


def test_drop_scenarios_unknown_name(tmp_path):
    text = SCHEMA.format(data="log.csv", scenarios="") + "drop_scenarios: [Q]\n"
    _err(tmp_path, good_frame(), r"log\.csv: drop_scenarios lists 'Q', which is not a scenario of this data \(A, B, C\)",
         schema_text=text)


def test_one_scenario_is_an_error_naming_it(tmp_path):
    df = good_frame()
    df = df[df.market == "A"]
    _err(tmp_path, df, r"log\.csv: SAML compares scenarios: this log has one \(A\)$")
    text = SCHEMA.format(data="log.csv", scenarios="") + "scenario_noun: market\n"
    _err(tmp_path, df, r"SAML compares markets: this log has one \(A\)", schema_text=text)
    df = good_frame().assign(click=0)
    df.loc[df.day == 0, "click"] = 1  # clicks only in train: no scenario can be evaluated
    _err(tmp_path, df, r"SAML compares scenarios: this log has none left; dropped: 'A' \(0 clicks and 6 non-clicks in "
                       r"the test split")


def test_fewer_than_two_scenarios_fails_for_every_source():
    from saml_core.data.build import encode_splits
    from saml_core.data.schema import RawTable, Schema

    frame = pd.DataFrame({"s": [5, 5, 5, 5], "y": [0, 1, 0, 1], "c": ["a", "b", "a", "b"]})
    t = RawTable(frame=frame)
    with pytest.raises(DataError, match=r"^sim: SAML compares countries: this log has one \(RU\)$"):
        encode_splits(name="x", schema=Schema(scenario="s", label="y", categorical=("c",),
                                                                scenario_values=(5,), scenario_names=("RU",)),
                      train=t, valid=t, test=t, seq_len=2, source="sim", info={},
                      scenario_noun=("country", "countries"), min_positives=None)


def test_strict_sources_still_fail_on_a_scenario_without_positives():
    from saml_core.data.build import encode_splits
    from saml_core.data.schema import RawTable, Schema

    frame = pd.DataFrame({"s": [1, 2, 1, 2], "y": [1, 0, 1, 0], "c": ["a", "b", "a", "b"]})
    t = RawTable(frame=frame)
    with pytest.raises(DataError, match=r"src: column 's': scenario '2' has no positive 'y' in the train split"):
        encode_splits(name="x", schema=Schema(scenario="s", label="y", categorical=("c",)),
                      train=t, valid=t, test=t, seq_len=2, source="src", info={}, min_positives=None)
    sim = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
    frame = pd.DataFrame({"s": [1, 2, 3] * 2, "y": [1, 1, 1, 0, 0, 0], "c": ["a"] * 6})
    t = RawTable(frame=frame)
    data = encode_splits(name="x", schema=Schema(scenario="s", label="y", categorical=("c",),
                                                                   scenario_values=(1, 2, 3)),
                         train=t, valid=t, test=t, seq_len=2, source="src", info={}, true_similarity=sim,
                         drop_scenarios=["2"], min_positives=None)
    assert data.spec.scenario_names == ("1", "3") and data.true_similarity.tolist() == [[1.0, 0.2], [0.2, 1.0]]


# ---- scenario values trimmed and canonical; blank scenarios --------------------------------
def test_scenario_values_are_trimmed_and_numbers_compared_by_value(tmp_path):
    df = good_frame()
    df["market"] = df["market"].map({"A": "1", "B": "2", "C": "3"}).astype(object)
    df.loc[df.index % 3 == 1, "market"] = df["market"] + ".0"
    df.loc[df.index % 3 == 2, "market"] = " " + df["market"] + " "
    data = load_byo(write(tmp_path, df))
    assert data.spec.scenario_names == ("1", "2", "3")
    assert len(data.train) == 36


def test_declared_scenarios_compare_by_value_and_keep_na_text(tmp_path):
    df = good_frame()
    df["market"] = df["market"].map({"A": "NA", "B": "NO", "C": "10"})  # Namibia, Norway, a code
    text = SCHEMA.format(data="log.csv", scenarios="scenarios: [NO, NA, 10.0]\n")
    (tmp_path / "schema.yaml").write_text(text)
    df.to_csv(tmp_path / "log.csv", index=False)
    data = load_byo(tmp_path / "schema.yaml")
    assert data.spec.scenario_names == ("NO", "NA", "10")  # YAML's NO is not False here


def test_blank_scenarios_are_an_error_naming_rows(tmp_path):
    df = good_frame().astype({"market": object})
    for row in (3, 8, 20, 21, 30, 41, 50):
        df.loc[row, "market"] = [None, "", "  ", "nan", "NA", None, "null"][row % 7]
    _err(tmp_path, df, r"log\.csv: scenario column 'market' is empty or a missing-value marker at 7 rows "
                       r"\(first: 3, 8, 20, 21, 30\); every row needs a scenario")


# ---- numeric overflow --------------------------------------------------------------------
@pytest.mark.parametrize("value, match", [
    ("inf", r"numeric column 'price' has the value 'inf' at row 4, which is infinite or overflows"),
    ("1e309", r"numeric column 'price' has the value '1e309' at row 4, which is infinite or overflows"),
    ("-Infinity", r"numeric column 'price' has the value '-Infinity' at row 4, which is infinite"),
    ("1e200", r"numeric column 'price' has the value '1e200' at row 4, which is beyond ±1e\+150"),
])
def test_infinite_numeric_values_are_errors(tmp_path, value, match):
    df = good_frame().astype({"price": object})
    df.loc[4, "price"] = value
    _err(tmp_path, df, r"log\.csv: " + match + r".* \(1 row \(4\)\)")


def test_blank_numeric_value_is_missing(tmp_path):
    df = good_frame()
    df.loc[df.day == 0, "price"] = np.nan
    data = load_byo(write(tmp_path, df))
    assert torch.isfinite(data.train.num).all()


# ---- leaks -------------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, match", [
    ("categorical: [item, cat]", "categorical: [item, cat, click]",
     r"the label column 'click' is also listed under categorical: it would leak the answer"),
    ("numeric: [price]", "numeric: [price, click]", r"the label column 'click' is also listed under numeric"),
    ("{column: hist, item_field: item", "{column: click, item_field: item",
     r"the label column 'click' is also listed under sequences"),
    ("scenario: market", "scenario: click", r"the label column 'click' is also the scenario column"),
    ("numeric: [price]", "numeric: [price, day]", r"the split column 'day' is also listed under numeric: the test split is cut on its values"),
    ("split: {column: day,", "split: {column: market,", r"the split column 'market' is also the scenario column"),
    ("split: {column: day, test: last, valid: last}", "split: {method: group, column: item, test: 0.2, valid: 0.1}",
     r"the split column 'item' is also listed under categorical: with a group split every test value is unseen"),
])
def test_label_or_split_column_as_a_feature(tmp_path, old, new, match):
    text = SCHEMA.format(data="log.csv", scenarios="").replace(old, new)
    _err(tmp_path, good_frame(), r"schema\.yaml: " + match, schema_text=text)


# ---- rows with more fields than the header ------------------------------------------------
def _csv_lines(df: pd.DataFrame) -> list[str]:
    return df.to_csv(index=False).splitlines()


@pytest.mark.parametrize("row", [0, 40])
def test_row_with_more_fields_than_header(tmp_path, row):
    lines = _csv_lines(good_frame())
    lines[1 + row] += ",surplus"  # line 1 is the header
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "schema.yaml").write_text(SCHEMA.format(data="log.csv", scenarios=""))
    with pytest.raises(DataError, match=rf"log\.csv: line {row + 2} has 8 fields but the header has 7: "
                                        r"'.*,surplus'; a value that contains the separator ',' must be quoted") as exc:
        load_byo(tmp_path / "schema.yaml")
    assert ("row names" in str(exc.value)) == (row == 0)  # R's write.csv: one field more from line 2 on


def test_line_number_counts_blank_lines_and_quoted_values(tmp_path):
    df = good_frame().astype({"cat": object})
    df.loc[2, "cat"] = "a, quoted\nvalue"  # quoted by the writer: one field over two lines
    lines = _csv_lines(df)
    lines.insert(10, "")
    lines[20] += ",x"
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "schema.yaml").write_text(SCHEMA.format(data="log.csv", scenarios=""))
    with pytest.raises(DataError, match=r"log\.csv: line 21 has 8 fields"):
        load_byo(tmp_path / "schema.yaml")
    lines[20] = lines[20][:-2]  # without the surplus field the file loads, quoted comma and all
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    assert len(load_byo(tmp_path / "schema.yaml").train) == 36


# ---- sequence separators and truncation ----------------------------------------------------
@pytest.mark.parametrize("other", [" ", "/"])
def test_sequence_written_with_an_undeclared_list_separator(tmp_path, other):
    df = good_frame()
    df["hist"] = df["hist"].str.replace("|", other)
    _err(tmp_path, df, rf"log\.csv: sequence column 'hist': the declared separator '\|' never occurs, but "
                       rf"\d+ of 72 values contain '{other}' \(row \d+: 'i\d{other}i\d.*'\); if they are lists, "
                       rf"declare sep: '{other}'$")


def test_single_token_sequences_with_spaces_are_not_flagged(tmp_path):
    df = good_frame()
    df["item"] = df["item"].where(df.index % 4 != 0, "red shoe")
    df["hist"] = df["item"]  # histories of one item; a few ids contain a space
    data = load_byo(write(tmp_path, df))
    assert int(data.train.seq_mask.sum()) == len(data.train)


def test_long_histories_are_truncated_while_parsing(tmp_path):
    import time
    import tracemalloc

    df = pd.concat([good_frame()] * 5, ignore_index=True)  # 360 rows
    df.loc[0, "hist"] = "|".join(f"x{i}" for i in range(200_000))
    path = write(tmp_path, df)
    tracemalloc.start()
    start = time.perf_counter()
    data = load_byo(path)
    took = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert took < 20 and peak < 150e6, (took, peak)
    # only the seq_len (4) most recent items ever reach the vocabulary
    assert data.spec.cat_fields[0].vocab_size == 2 + 5 + 4


@pytest.mark.parametrize("order, expect", [("oldest_first", [6, 7, 8, 9]), ("newest_first", [3, 2, 1, 0])])
def test_truncation_keeps_the_most_recent_items(tmp_path, order, expect):
    df = good_frame()
    df["item"] = [f"x{i % 10}" for i in range(len(df))]
    df["hist"] = "|".join(f"x{i}" for i in range(10))
    text = SCHEMA.format(data="log.csv", scenarios="").replace('sep: "|"}', f'sep: "|", order: {order}}}')
    data = load_byo(write(tmp_path, df, schema_text=text))
    assert (data.test.seq[:, 0] - 2).tolist() == [expect] * len(data.test)  # id = 2 + rank of "x<d>"


# ---- file formats ------------------------------------------------------------------------
@pytest.mark.parametrize("name, sep, compression", [
    ("log.tsv", "\t", None), ("log.tsv.gz", "\t", "gzip"), ("log.csv.gz", ",", "gzip")])
def test_tsv_and_gzip_files(tmp_path, name, sep, compression):
    df = good_frame()
    df.to_csv(tmp_path / name, sep=sep, index=False, compression=compression)
    (tmp_path / "schema.yaml").write_text(SCHEMA.format(data=name, scenarios=""))
    data = load_byo(tmp_path / "schema.yaml")
    ref = load_byo(write(tmp_path, df, name="ref.csv"))
    assert torch.equal(data.test.seq, ref.test.seq) and torch.equal(data.train.num, ref.train.num)


def test_gzip_row_with_more_fields(tmp_path):
    lines = _csv_lines(good_frame())
    lines[5] += ",x"
    import gzip
    with gzip.open(tmp_path / "log.csv.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    (tmp_path / "schema.yaml").write_text(SCHEMA.format(data="log.csv.gz", scenarios=""))
    with pytest.raises(DataError, match=r"log\.csv\.gz: line 6 has 8 fields but the header has 7"):
        load_byo(tmp_path / "schema.yaml")


# ---- YAML: line numbers, names that look like numbers ---------------------------------------
def test_yaml_error_names_the_line(tmp_path):
    text = "data: log.csv\nscenario: market\nlabel: click\ncategorical: [item, cat\nsplit: {column: day}\n"
    _err(tmp_path, good_frame(), r"schema\.yaml: cannot parse the schema file at line \d, column \d+: "
                                 r"expected ',' or '\]', but got .* \(while parsing a flow sequence that starts at "
                                 r"line 4, column 14\)$", schema_text=text)


def test_numeric_column_names_need_no_quotes(tmp_path):
    df = good_frame().rename(columns={"item": "101", "cat": "0121", "market": "301"})
    text = SCHEMA.format(data="log.csv", scenarios="").replace("categorical: [item, cat]", "categorical: [101, 0121]")
    text = text.replace("item_field: item", "item_field: 101").replace("scenario: market", "scenario: 301")
    data = load_byo(write(tmp_path, df, schema_text=text))  # 0121 is not read as octal 81
    assert [f.name for f in data.spec.cat_fields] == ["101", "0121"]
    assert data.spec.scenario_names == ("A", "B", "C")


def test_a_list_is_not_a_column_name(tmp_path):
    text = SCHEMA.format(data="log.csv", scenarios="").replace("categorical: [item, cat]", "categorical: [item, [cat]]")
    _err(tmp_path, good_frame(), r"schema\.yaml: categorical: \['cat'\] is not a column name", schema_text=text)


# ---- scenario noun -----------------------------------------------------------------------
@pytest.mark.parametrize("line, noun", [
    ("", ("scenario", "scenarios")), ("scenario_noun: market\n", ("market", "markets")),
    ("scenario_noun: [country, countries]\n", ("country", "countries"))])
def test_scenario_noun(tmp_path, line, noun):
    data = load_byo(write(tmp_path, good_frame(), schema_text=SCHEMA.format(data="log.csv", scenarios="") + line))
    assert data.scenario_noun == noun


def test_bad_scenario_noun(tmp_path):
    text = SCHEMA.format(data="log.csv", scenarios="") + "scenario_noun: [a, b, c]\n"
    _err(tmp_path, good_frame(), r"'scenario_noun' must be a word or \[singular, plural\]", schema_text=text)
