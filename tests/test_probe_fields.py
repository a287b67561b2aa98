"""What the hidden-state explorer shows of a probe sample: its categorical fields decoded by the
training job (saml_core.probes.probe_fields), checked against the raw values of the same rows."""
import numpy as np
import pandas as pd

from saml_core.data.build import encode_splits
from saml_core.data.schema import RawTable, Schema
from saml_core.probes import FIELD_VALUE_CHARS, UNSEEN, probe_fields

SCHEMA = Schema(scenario="s", label="y", categorical=("item", "colour"), scenario_values=("a", "b"))
LONG = "x" * (FIELD_VALUE_CHARS + 20)


def table(items, colours) -> RawTable:
    n = len(items)
    return RawTable(frame=pd.DataFrame({"s": ["a", "b"] * (n // 2), "y": [0, 1, 1, 0] * (n // 4),
                                        "item": items, "colour": colours}))


def test_probe_fields_decode_each_sample_to_its_own_value():
    train = table([10, 11, 12, 13, 10, 11, 12, 13], ["red", "blue", LONG, "red"] * 2)
    test = table([13, 99, 10, 12], ["blue", "red", "green", LONG])  # 99 and green: not in train
    data = encode_splits(name="t", schema=SCHEMA, train=train, valid=train, test=test, seq_len=1,
                         source="t", info={}, min_positives=None)
    index = np.array([3, 0, 1])  # probe rows in any order
    out = probe_fields(data, index)
    assert list(out["field_names"]) == ["item", "colour"]
    decoded = {name: out[f"field_values_{j}"][out[f"field_codes_{j}"]] for j, name in enumerate(out["field_names"])}
    assert list(decoded["item"]) == ["12", "13", UNSEEN]
    assert list(decoded["colour"]) == [LONG[:FIELD_VALUE_CHARS - 1] + "…", "blue", "red"]
    assert all(len(out[f"field_codes_{j}"]) == len(index) for j in range(2))
    # a loader that keeps no vocabulary: nothing is made up
    data.values = {}
    assert probe_fields(data, index) == {}
