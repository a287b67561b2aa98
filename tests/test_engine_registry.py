"""The model registry: a new model is one class + one registry entry and then trains, reports and
shows everywhere; failing runs are failed runs; fair settings for per-scenario models; the simple
baseline does not leak; the embedding-table knobs act on the rows a step touched."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from saml_core import registry as reads
from saml_core.bench_speed import random_data
from saml_core.config import ModelConfig, TrainConfig, derived_stopping
from saml_core.run_config import RunConfig
from saml_core.experiments import ExperimentConfig, run_experiment
from saml_core.presets import settings_for
from saml_core.models import registry
from saml_core.models.base import ScenarioModel
from saml_core.models.layers import MLP, GlobalFeatures
from saml_core.train import TrainingFailed, train_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ToyModel(ScenarioModel):
    """The whole of a new model: BST's input block, an MLP, a per-scenario bias."""

    def __init__(self, spec, cfg, bias_scale: float = 1.0):
        super().__init__()
        self.features = GlobalFeatures(spec, cfg.d_g, cfg.heads, cfg.head_dim, cfg.ff_dim, cfg.attn_readout)
        self.mlp = MLP(self.features.output_dim, cfg.mlp)
        self.bias = torch.nn.Parameter(torch.zeros(spec.num_scenarios))
        self.bias_scale = bias_scale

    def forward(self, batch, probes=False):
        _, logit = self.mlp(self.features(batch))
        out = {"logit": logit + self.bias_scale * self.bias[batch.scenario]}
        if probes:
            out["probes"] = {"scenario_bias": self.bias[batch.scenario].detach()[:, None]}
        return out

    def relations(self, probes, k):
        b = self.bias.detach().numpy()
        return {"bias_distance": -np.abs(b[:, None] - b[None, :])}


class NaNModel(ToyModel):
    def forward(self, batch, probes=False):
        out = super().forward(batch, probes)
        out["logit"] = out["logit"] * float("nan")
        return out


@pytest.fixture()
def toy_models():
    registry.register(registry.ModelEntry(
        id="toy", label="Toy", color="#123456", role="baseline", order=90, build=ToyModel,
        options={"bias_scale": 1.0}, probes=("relations",), description="A toy model for the registry test."))
    registry.register(registry.ModelEntry(
        id="nan_model", label="Diverges", color="#654321", role="baseline", order=91, build=NaNModel,
        description="Always NaN."))
    yield
    registry.unregister("toy")
    registry.unregister("nan_model")


def test_a_new_model_is_one_class_and_one_entry(toy_models, tmp_path, monkeypatch):
    from saml_core.cli import build_parser

    args = build_parser().parse_args(["train", "--dataset", "taobao-sample", "--model", "toy"])  # CLI choice
    assert args.model == "toy"
    cfg = ExperimentConfig(name="t", dataset="taobao-sample", runs="bst,toy", model_options={"toy": {"bias_scale": 2.0}},
                           **{k: v for k, v in settings_for("taobao-sample", "quick").items()})
    run_experiment(cfg, tmp_path, log=lambda s: None)
    stored = json.loads((tmp_path / "t/toy-d0-s0/config.json").read_text())
    assert stored["model"] == "toy" and stored["model_options"] == {"bias_scale": 2.0} and stored["label"] == "Toy"
    doc = reads.report(tmp_path, "t")
    toy = next(s for s in doc["summary"] if s["model"] == "toy")
    assert toy["label"] == "Toy" and toy["vs_reference"]["overall"]["verdict"] in (
        "better", "worse", "no detectable difference")
    assert "bias_distance" in next(r for r in doc["runs"] if r["model"] == "toy")["relations"]
    assert "| Toy |" in reads.report_markdown(doc)
    # ... and in the dashboard: every page, the retrain form
    from streamlit.testing.v1 import AppTest

    from dashboard import forms
    from dashboard_support import REPO

    assert forms.model_choices()["toy"] == "Toy"
    monkeypatch.setenv("SAML_ARTIFACTS", str(tmp_path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    assert "Toy" in set(at.dataframe[0].value["Model"])
    at.switch_page("app_pages/per_scenario.py").run()
    assert not at.exception and "Toy" in at.multiselect(key="more_models").options
    at.switch_page("app_pages/retrain.py").run()
    assert "Toy" in at.multiselect(key="rt_models").options


def test_a_diverging_run_fails_with_the_reason_and_the_others_finish(toy_models, tmp_path):
    cfg = ExperimentConfig(name="n", dataset="taobao-sample", runs="nan_model,bst",
                           **settings_for("taobao-sample", "quick"))
    with pytest.raises(TrainingFailed, match="1 of 2 runs failed"):
        run_experiment(cfg, tmp_path, log=lambda s: None)
    exp = reads.load_experiment(tmp_path, "n")
    bad, good = exp.run("nan_model-d0-s0"), exp.run("bst-d0-s0")
    assert good.finished and bad.state == "failed" and "diverged" in bad.error and "NaN" in bad.error
    assert not (tmp_path / "n/nan_model-d0-s0/metrics.json").exists()  # never "finished"
    assert json.loads((tmp_path / "n/experiment_status.json").read_text())["state"] == "failed"


def test_per_scenario_models_derive_their_own_patience(tmp_path):
    data = random_data(n_train=1200, n_valid=600, n_test=200, k=3, seq_len=4, vocab=20)
    cfg = RunConfig(run_id="bi", model="bst_individual", model_config=ModelConfig(d_g=4, heads=2, head_dim=4,
                    ff_dim=8, mlp=(8,)), train_config=TrainConfig(epochs=6, device="cpu"))
    metrics = train_run(cfg, data, tmp_path)
    scen, y = data.valid.scenario.numpy(), data.valid.label.numpy()
    for k, name in enumerate(data.spec.scenario_names):
        sub = metrics["submodels"][name]
        patience, min_epochs = derived_stopping(int(y[scen == k].sum()))
        assert (sub["patience"], sub["min_epochs"]) == (patience, min_epochs)
        assert sub["epochs_run"] >= min_epochs and sub["batch_size"] <= 1024
    assert metrics["stopped"] in ("early stopping", "epoch cap") and "improving_at_cap" in metrics


def test_lr_te_encodes_out_of_fold_so_a_row_id_cannot_leak(tmp_path):
    data = random_data(n_train=3000, n_valid=1000, n_test=1000, k=3, seq_len=4, vocab=20)
    rng = np.random.default_rng(0)
    for split in (data.train, data.valid, data.test):  # labels unrelated to every feature
        split.label = torch.from_numpy((rng.random(len(split)) < 0.3).astype(np.float32))
    n_rows = len(data.train) + len(data.valid) + len(data.test) + 2
    data.train.cat[:, 0] = torch.arange(2, len(data.train) + 2)  # a unique id per train row
    from dataclasses import replace

    from saml_core.data.types import CatField

    fields = list(data.spec.cat_fields)
    fields[0] = CatField(fields[0].name, n_rows)
    data.spec = replace(data.spec, cat_fields=tuple(fields))
    cfg = RunConfig(run_id="lr", model="lr_te", model_config=ModelConfig(), train_config=TrainConfig(device="cpu"))
    metrics = train_run(cfg, data, tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())["epochs"]
    assert max(h["valid_auc"] for h in history) < 0.56  # no signal learned from the id
    assert abs(metrics["overall"]["auc"] - 0.5) < 0.05


def test_embedding_knobs_act_on_touched_rows_only():
    from saml_core.optim import ModelAdam

    emb = torch.nn.Embedding(10, 3, sparse=True)
    head = torch.nn.Linear(3, 1)
    model = torch.nn.Sequential(emb, head)
    before = emb.weight.detach().clone()
    opt = ModelAdam(model, lr=0.1, embedding_lr_scale=0.5, embedding_decay=1.0)
    assert opt.optimizers[1].param_groups[0]["lr"] == pytest.approx(0.05)
    head(emb(torch.tensor([1, 1, 2]))).sum().backward()
    opt.step()
    assert torch.equal(emb.weight[5], before[5])  # untouched row: neither moved nor decayed
    assert not torch.equal(emb.weight[1], before[1])


BASELINES = ("bst_scenario", "shared_bottom", "mmoe", "ple", "star")


@pytest.mark.parametrize("dataset", ["taobao-sample", "synthetic-countries"])
def test_multi_scenario_baselines_train_report_and_show_their_relations(dataset, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard_support import REPO

    s = settings_for(dataset, "quick")
    s["train_config"] = TrainConfig(**{**s["train_config"].__dict__, "epochs": 1, "device": "cpu", "num_threads": 1})
    cfg = ExperimentConfig(name="b", dataset=dataset, runs=("bst", "saml") + BASELINES, **s)
    run_experiment(cfg, tmp_path, log=lambda m: None)
    doc = reads.report(tmp_path, "b")
    for model in BASELINES:
        group = next(g for g in doc["summary"] if g["model"] == model)
        v = group["vs_reference"]
        assert v["overall"]["verdict"] in ("better", "worse", "no detectable difference"), model
        assert all(v[n]["verdict"] in ("better", "worse", "no detectable difference", "n/a")
                   for n in doc["scenario_names"])
        cell = group["per_scenario"][doc["scenario_names"][0]]
        assert cell["ci_low"] <= cell["auc"]["mean"] <= cell["ci_high"]
    relations = {r["model"]: set(r.get("relations") or {}) for r in doc["runs"]}
    assert {"gate_profile", "gate_similarity"} <= relations["mmoe"] and "weight_similarity" in relations["star"]
    assert relations["ple"] and relations["bst_scenario"]
    monkeypatch.setenv("SAML_ARTIFACTS", str(tmp_path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/correlations.py").run()
    assert not at.exception, [e.value for e in at.exception]
    signals = " ".join(at.dataframe[0].value["Signal"])
    for label in ("MMoE", "PLE", "STAR", "BST + scenario"):
        assert label in signals


def test_experiment_progress_never_goes_backwards():
    from saml_core.experiment_state import ExperimentProgress

    p = ExperimentProgress(n_runs=3, done=0)
    seen = []
    for k in range(1, 4):  # a per-scenario model: each sub-model restarts its epochs and steps
        for epoch in (1, 2):
            for step in (1, 5, 10):
                f, _ = p.update({"epoch": epoch, "epochs": 20, "step": step, "steps": 10, "submodel": f"s{k}",
                                 "submodel_index": k, "n_submodels": 3})
                seen.append(f)
    p.run_finished()  # stopped early: jumps to the end of the run
    seen.append(p.fraction)
    f, _ = p.update({"epoch": 1, "epochs": 20, "step": 1, "steps": 10})  # the next run starts
    seen.append(f)
    assert seen == sorted(seen) and seen[-2] == pytest.approx(1 / 3) and seen[-1] > 1 / 3
