"""Leaving the behaviour sequences out: the `exclude` option takes sequence names, `--no-sequences`
records them all, and every registered model trains and predicts with zero sequences."""
import argparse
import math

import numpy as np
import pytest
import torch

from saml_core.commands import add_commands, settings_from_args
from saml_core.config import ModelConfig, TrainConfig
from saml_core.run_config import RunConfig
from saml_core.data import DataError, load_dataset
from saml_core.data.dataset_registry import sequence_names
from saml_core.models import registry
from saml_core.train import load_run_model, predict, train_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEQS = ("hist_item", "hist_category", "hist_brand")


@pytest.fixture(scope="module")
def no_seq():
    data = load_dataset("synthetic-countries", size="small", exclude=SEQS)
    # a slice of each split: a few optimizer steps per model, not a real training
    for name, n in (("train", 3000), ("valid", 1500), ("test", 1500)):
        setattr(data, name, getattr(data, name).take(torch.arange(n)))
    return data


def test_exclude_takes_sequence_names_and_keeps_their_item_fields():
    assert sequence_names("synthetic-countries") == SEQS
    one = load_dataset("synthetic-countries", size="small", exclude=("hist_item",))
    assert [q.name for q in one.spec.seq_fields] == ["hist_category", "hist_brand"]
    assert one.spec.cat_index("item_id") >= 0  # the target's item id stays a feature
    assert one.train.seq.shape[1] == 2 and one.info["excluded_fields"] == ["hist_item"]
    with pytest.raises(DataError, match="neither categorical fields .* nor behaviour sequences .*hist_item"):
        load_dataset("synthetic-countries", size="small", exclude=("hist_nothing",))


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(["experiment", *argv])


def test_no_sequences_flag_records_every_sequence_name_as_the_exclude_option():
    s = settings_from_args(_args("--dataset", "synthetic-countries", "--no-sequences", "--exclude-fields", "shop"))
    assert s["dataset_options"]["exclude"] == ["shop", *SEQS]
    s = settings_from_args(_args("--dataset", "taobao-sample", "--no-sequences"))
    assert s["dataset_options"]["exclude"] == ["hist_cate", "hist_brand", "hist_btag"]
    assert "exclude" not in settings_from_args(_args("--dataset", "taobao-sample"))["dataset_options"]
    with pytest.raises(DataError, match="--no-sequences.*not an option of csv"):
        settings_from_args(_args("--dataset", "csv:x.yaml", "--no-sequences"))


@pytest.mark.parametrize("model_id", registry.ids())
def test_every_model_trains_and_predicts_without_sequences(no_seq, model_id, tmp_path):
    assert no_seq.spec.seq_fields == () and no_seq.train.seq.shape[1] == 0
    cfg = RunConfig(run_id=f"{model_id}-noseq", model=model_id,
                    model_config=ModelConfig(d_g=4, d_s=2, heads=2, head_dim=4, ff_dim=8, mlp=(16, 8)),
                    train_config=TrainConfig(epochs=1, patience=1, min_epochs=1, batch_size=512, device="cpu"))
    metrics = train_run(cfg, no_seq, tmp_path, probe_index=np.arange(200))
    assert math.isfinite(metrics["overall"]["auc"])
    _, model = load_run_model(tmp_path)  # the saved weights load and predict the stored scores
    pred = predict(model, no_seq.test, torch.device("cpu"))
    assert pred.shape == (len(no_seq.test),) and np.isfinite(pred).all() and pred.std() > 0
    np.testing.assert_allclose(pred, np.load(tmp_path / "predictions.npz")["pred"], rtol=1e-5, atol=1e-6)
    assert not any("attention" in name for name in model.state_dict())  # no sequence block was built
