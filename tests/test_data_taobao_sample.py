"""taobao-sample: the real DMR sample, de-duplicated, split by user, 5 city levels."""
import numpy as np
import pandas as pd
import pytest
import torch

from saml_core.data import load_dataset
from saml_core.data import taobao


@pytest.fixture(scope="module")
def data():
    return load_dataset("taobao-sample")


def test_city_levels_and_natural_ctr(data):
    assert data.spec.scenario_names == tuple(f"city level {i}" for i in range(5))
    n = len(data.train) + len(data.valid) + len(data.test)
    assert n == 2304  # 500 - 196 duplicates + 2000
    ctr = float(torch.cat([data.train.label, data.valid.label, data.test.label]).mean())
    assert 0.04 < ctr < 0.06  # the oversampled positives are gone
    assert data.info["caveats"] and data.kind == "taobao"
    assert data.category_field == "cate_id"


def test_users_never_cross_splits():
    table = taobao.read_sample()
    df = pd.read_csv(taobao.SAMPLE_FILE)
    uid = pd.concat([df[df.split == "train"].drop_duplicates(), df[df.split == "test"]]).uid.to_numpy()
    split = table.frame["split"].to_numpy()
    per_user = pd.Series(split).groupby(uid).nunique()
    assert (per_user == 1).all()


def test_sequence_is_most_recent_behaviours_last(data):
    """seq_len 15 keeps the LAST 15 of the 50 stored behaviours (the file is left-padded)."""
    table = taobao.read_sample()
    cate = table.seqs["hist_cate"]
    # left padding: zeros only before the first real behaviour
    first_real = np.argmax(cate != 0, axis=1)
    assert all((cate[i, first_real[i]:] != 0).all() for i in range(0, len(cate), 97))
    short = load_dataset("taobao-sample", seq_len=5)
    assert torch.equal(short.train.seq, data.train.seq[:, :, -5:])
    # the raw id of the last position is the 50th stored behaviour
    train = table.take(table.frame["split"].to_numpy() == "train")
    j = data.spec.cat_index("cate_id")
    vocab_last = data.train.seq[:, 0, -1]
    target_same = (train.seqs["hist_cate"][:, -1] == train.frame["cate_id"].to_numpy())
    assert torch.equal((vocab_last == data.train.cat[:, j])[torch.from_numpy(target_same)],
                       torch.ones(int(target_same.sum()), dtype=torch.bool))
