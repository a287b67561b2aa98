"""The encoder: fitted on train only, OOV/PAD conventions, right-aligned truncation, streaming fit."""
import numpy as np
import pandas as pd
import pytest
import torch

from saml_core.data import DataError, OOV_INDEX, PAD_INDEX
from saml_core.data.encoder import Encoder
from saml_core.data.schema import RawTable, Schema, SeqColumn

SCHEMA = Schema(scenario="s", label="y", categorical=("item", "colour"), numeric=("x",),
                sequences=(SeqColumn("hist", "item"),), scenario_values=("a", "b"))


def table(items, colours, xs, hist, lengths, scen=None):
    n = len(items)
    return RawTable(
        frame=pd.DataFrame({"s": scen or ["a", "b"] * (n // 2) + ["a"] * (n % 2), "y": [0, 1] * (n // 2) + [0] * (n % 2),
                            "item": items, "colour": colours, "x": xs}),
        seqs={"hist": np.asarray(hist)}, seq_lengths=np.asarray(lengths),
    )


TRAIN = table([10, 11, 12, 10], ["red", "blue", "red", "red"], [1.0, 2.0, 3.0, 6.0],
              [[0, 0, 20], [0, 21, 22], [23, 24, 25], [0, 0, 0]], [1, 2, 3, 0])
TEST = table([10, 99], ["green", "blue"], [3.0, np.nan], [[98, 10, 20], [0, 0, 97]], [3, 1])


def test_vocab_and_stats_from_train_only():
    enc = Encoder(SCHEMA, seq_len=3).fit(TRAIN)
    out = enc.transform(TEST)
    # item vocabulary = train items + train history items: 10,11,12,20..25 -> 9 values
    assert enc.spec.cat_fields[0].vocab_size == 9 + 2
    assert out.cat[1, 0] == OOV_INDEX  # item 99 only in test
    assert out.cat[0, 1] == OOV_INDEX  # colour green only in test
    assert out.cat[1, 1] != OOV_INDEX  # blue seen in train
    mean, std = np.mean([1, 2, 3, 6]), np.std([1, 2, 3, 6])
    assert np.isclose(out.num[0, 0].item(), (3 - mean) / std, atol=1e-6)
    assert out.num[1, 0].item() == 0.0  # missing -> train mean
    assert np.isclose(enc.num_mean[0], mean)
    # sequences: unknown history items -> OOV, padding -> PAD, mask where real
    assert out.seq[0, 0].tolist()[0] == OOV_INDEX  # 98
    assert out.seq[1, 0].tolist()[:2] == [PAD_INDEX, PAD_INDEX] and out.seq[1, 0, 2] == OOV_INDEX
    assert out.seq_mask.tolist() == [[True, True, True], [False, False, True]]
    # sorted vocabulary: a shared id means the same thing in the target and the history
    tr = enc.transform(TRAIN)
    assert tr.seq[0, 0, 2] == enc.vocabs["item"].get_loc(20) + 2
    assert tr.cat[0, 0] == tr.cat[3, 0]


def test_truncation_keeps_most_recent_and_padding_left():
    enc = Encoder(SCHEMA, seq_len=2).fit(TRAIN)
    out = enc.transform(TRAIN)
    full = Encoder(SCHEMA, seq_len=5).fit(TRAIN).transform(TRAIN)
    assert torch.equal(out.seq, full.seq[:, :, -2:])
    assert full.seq_mask[2].tolist() == [False, False, True, True, True]
    assert not full.seq_mask[3].any()
    for t in (out.cat, out.seq, out.num, out.seq_mask):
        assert t.is_contiguous()


def test_streaming_fit_equals_whole_fit():
    whole = Encoder(SCHEMA, seq_len=3).fit(TRAIN)
    parts = Encoder(SCHEMA, seq_len=3).fit_many([TRAIN.take(np.array([0, 1])), TRAIN.take(np.array([2, 3]))])
    for name in SCHEMA.categorical:
        assert list(whole.vocabs[name]) == list(parts.vocabs[name])
    assert np.allclose(whole.num_mean, parts.num_mean) and np.allclose(whole.num_std, parts.num_std)
    a, b = whole.transform(TEST), parts.transform(TEST)
    assert torch.equal(a.cat, b.cat) and torch.equal(a.seq, b.seq) and torch.equal(a.num, b.num)


def test_unknown_scenario_is_named():
    enc = Encoder(SCHEMA, seq_len=3, source="log.csv").fit(TRAIN)
    bad = table([10], ["red"], [1.0], [[0, 0, 20]], [1], scen=["zz"])
    with pytest.raises(DataError, match=r"log\.csv: column 's' in the test split has scenario value\(s\) 'zz'"):
        enc.transform(bad, "test")
