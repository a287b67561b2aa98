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
"""


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
    assert data.spec.scenario_names[0] == "RU" and len(data.spec.scenario_names) == 10
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
    df = good_frame().iloc[:1].copy()
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
    with pytest.raises(DataError, match=match):
        load_byo(write(tmp_path, df, **kw))


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


def test_scenario_without_positives(tmp_path):
    df = good_frame()
    df.loc[(df.market == "B") & (df.day <= 1), "click"] = 0
    _err(tmp_path, df, r"column 'market': scenario 'B' has no positive 'click' in the train split")


def test_declared_scenario_without_train_samples(tmp_path):
    _err(tmp_path, good_frame(), r"column 'market': scenario 'D' has no samples in the train split",
         scenarios="[A, B, C, D]")


def test_unknown_scenario_at_test_time(tmp_path):
    df = good_frame()
    df.loc[df.index[-1], "market"] = "Z"  # last day = test
    _err(tmp_path, df, r"log\.csv: column 'market' in the test split has scenario value\(s\) 'Z'")


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
        ' "split": {"column": "day", "test": {"values": [3]}, "valid": {"fraction": 0.2}}}'
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
