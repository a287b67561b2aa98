"""Trainer: determinism, checkpoint/resume after an interruption, artifacts and clear errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from saml_core import artifacts as art
from saml_core.bench_speed import random_data
from saml_core.config import ModelConfig, TrainConfig
from saml_core.run_config import RunConfig
from saml_core.models import build_model
from saml_core.train import Cancelled, fit, load_run_model, predict, train_run

CFG = ModelConfig(d_g=4, d_s=2, heads=2, head_dim=4, ff_dim=8, mlp=(16, 8))
TCFG = TrainConfig(epochs=3, patience=3, min_epochs=1, batch_size=128, lr=3e-3, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return random_data(n_train=800, n_valid=200, n_test=400, k=4, seq_len=6, vocab=30)


def _fit(data, seed, checkpoint=None, should_stop=None, model_id="saml"):
    torch.manual_seed(123)  # same initial weights for every call
    model = build_model(model_id, data.spec, CFG)
    res = fit(model, data.train, data.valid, TCFG, seed=seed, device=torch.device("cpu"),
              checkpoint=checkpoint, should_stop=should_stop)
    return model, res


def _strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_same_seed_same_metrics(tmp_path):
    """Re-running a command (a new process, as a user does) gives identical metrics; another seed
    does not. (Within one process the first training can differ from later ones in the 9th
    digit: kernel warm-up state, not the seed.)"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def start(root, seed):
        cmd = [sys.executable, "-m", "saml_core", "train", "--dataset", "taobao-sample", "--model", "saml",
               "--quick", "--seed", str(seed), "--threads", "1", "--artifacts", str(root)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(proc):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        run = Path(json.loads(out.strip().splitlines()[-1])["run_dir"])
        return json.loads((run / "metrics.json").read_text()), json.loads((run / "history.json").read_text())

    # three separate processes at once (one thread each): as fast as two in a row on two cores
    procs = [start(tmp_path / "a", 7), start(tmp_path / "b", 7), start(tmp_path / "c", 8)]
    (m1, h1), (m2, h2), (m3, _) = (result(p) for p in procs)
    assert m1["overall"] == m2["overall"] and m1["per_scenario"] == m2["per_scenario"]
    assert _strip(h1["epochs"]) == _strip(h2["epochs"])
    assert m3["overall"]["auc"] != m1["overall"]["auc"]


def _interrupted_in_second_epoch(data, ck):
    """The uninterrupted fit (seed 3) and the checkpoint of the same fit stopped in its second
    epoch, as saved."""
    _, full = _fit(data, seed=3)
    steps = {"n": 0}
    per_epoch = -(-len(data.train) // TCFG.batch_size)

    def stop_in_second_epoch():
        steps["n"] += 1
        return steps["n"] > per_epoch + 2

    with pytest.raises(Cancelled):
        _fit(data, seed=3, checkpoint=ck, should_stop=stop_in_second_epoch)
    return full, art.load_torch(ck)


def test_resume_after_interruption_continues_from_last_finished_epoch(data, tmp_path):
    ck = tmp_path / "checkpoint.pt"
    full, saved = _interrupted_in_second_epoch(data, ck)
    assert saved["epoch"] == 1 and len(saved["history"]) == 1
    model, resumed = _fit(data, seed=3, checkpoint=ck)
    assert resumed.resumed_from == 1
    assert _strip(resumed.history) == _strip(full.history)  # same as never interrupted


def _one_table_per_field(state: dict, spec, tables: list[str]) -> dict:
    """A state in the layout before the tables were merged: features.<f>.<kind>_table.weight."""
    vocab = [f.vocab_size for f in spec.cat_fields]
    out = {}
    for key, value in state.items():
        if key in tables:
            kind = key.rsplit(".", 2)[-2]
            prefix = key[:-len(f"{kind}.weight")]
            scale = value.shape[0] // sum(vocab)
            for f, part in enumerate(value.split([v * scale for v in vocab])):
                out[f"{prefix}features.{f}.{kind}.weight"] = part.clone()
        else:
            out[key] = value
    return out


def test_checkpoint_of_the_one_table_per_field_layout_resumes(data, tmp_path):
    """A checkpoint written before the embedding tables were merged (weights, best weights and
    the sparse optimizer's moments per field) resumes to exactly the uninterrupted history."""
    ck = tmp_path / "checkpoint.pt"
    full, saved = _interrupted_in_second_epoch(data, ck)
    tables = ["embedding.global_table.weight", "embedding.scenario_table.weight"]
    sparse = saved["optimizer"]["opt1"]
    per_field = {"step": sparse["state"][0]["step"]}
    old_state = {}
    for moment in ("exp_avg", "exp_avg_sq"):
        split = _one_table_per_field({t: sparse["state"][i][moment] for i, t in enumerate(tables)}, data.spec, tables)
        old_state[moment] = split
    names = list(old_state["exp_avg"])  # field by field: global, scenario, global, ...
    names = sorted(names, key=lambda n: (int(n.split("features.")[1].split(".")[0]), "scenario" in n))
    sparse = {"state": {i: {**per_field, "exp_avg": old_state["exp_avg"][n], "exp_avg_sq": old_state["exp_avg_sq"][n]}
                        for i, n in enumerate(names)},
              "param_groups": [{**sparse["param_groups"][0], "params": list(range(len(names)))}]}
    old_model = _one_table_per_field(saved["model"], data.spec, tables)
    order = [k for k in old_model if "features." not in k]
    old_model = {**{n: old_model[n] for n in names}, **{k: old_model[k] for k in order}}
    art.save_torch(ck, {**saved, "model": old_model, "optimizer": {**saved["optimizer"], "opt1": sparse},
                        "best_state": _one_table_per_field(saved["best_state"], data.spec, tables)})
    model, resumed = _fit(data, seed=3, checkpoint=ck)
    assert resumed.resumed_from == 1
    assert _strip(resumed.history) == _strip(full.history)


def test_kill_subprocess_then_resume(tmp_path):
    """A real `experiment` process killed with SIGKILL mid-training resumes from its checkpoint."""
    root = tmp_path / "art"
    cmd = [sys.executable, "-m", "saml_core", "experiment", "--dataset", "synthetic-countries", "--name", "k",
           "--quick", "--runs", "saml", "--epochs", "2", "--patience", "2", "--batch-size", "512",
           "--artifacts", str(root), "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = root / "k" / "saml-d0-s0" / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not ck.exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not ck.exists():
        pytest.fail("no checkpoint written before the kill")
    epoch_killed = art.load_torch(ck)["epoch"]
    assert epoch_killed >= 1
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    hist = json.loads((root / "k/saml-d0-s0/history.json").read_text())["epochs"]
    assert [r["epoch"] for r in hist] == [1, 2]
    assert not ck.exists()  # finished runs keep model.pt, not the resume state


def test_checkpoint_reload_identical_predictions_and_corruption_errors(data, tmp_path):
    cfg = RunConfig(run_id="saml_no_aux-d0-s0", model="saml_no_aux", seed=1, model_config=CFG,
                    train_config=TrainConfig(epochs=1, batch_size=256, device="cpu"))
    run = tmp_path / "run"
    train_run(cfg, data, run, probe_index=np.arange(50))
    _, model = load_run_model(run)
    stored = art.load_npz(run / "predictions.npz")["pred"]
    np.testing.assert_array_equal(predict(model, data.test, torch.device("cpu")), stored)

    blob = (run / "model.pt").read_bytes()
    (run / "model.pt").write_bytes(blob[: len(blob) // 2])  # truncated
    with pytest.raises(art.ArtifactError, match="model.pt"):
        load_run_model(run)
    (run / "model.pt").write_bytes(b"garbage" * 100)
    with pytest.raises(art.ArtifactError, match="model.pt"):
        load_run_model(run)
    (run / "model.pt").write_bytes(blob)
    wrong = build_model("bst", data.spec, CFG)  # weights of another architecture
    art.save_model(run / "other.pt", wrong)
    with pytest.raises(art.ArtifactError, match="other.pt.*do not match"):
        art.load_state_dict_into(model, run / "other.pt")

    (run / "metrics.json").write_text('{"schema_version": 2, "overall": {')
    with pytest.raises(art.ArtifactError, match="metrics.json.*corrupted"):
        art.read_json(run / "metrics.json")
    (run / "metrics.json").write_text('{"schema_version": 99}')
    with pytest.raises(art.ArtifactError, match="metrics.json.*incompatible schema_version 99"):
        art.read_json(run / "metrics.json")
    p = (run / "probes.npz").read_bytes()
    (run / "probes.npz").write_bytes(p[:100])
    with pytest.raises(art.ArtifactError, match="probes.npz"):
        art.load_npz(run / "probes.npz")


@pytest.mark.parametrize("model_name", ["saml", "bst_individual"])
def test_float16_weights_are_half_the_size_and_reproduce_their_metrics(data, tmp_path, model_name):
    from saml_core import evaluate as ev

    sizes, files, aucs = {}, {}, {}
    for dtype in ("float32", "float16"):
        cfg = RunConfig(run_id=f"{model_name}-{dtype}", model=model_name, seed=3, model_config=CFG,
                        train_config=TrainConfig(epochs=1, batch_size=256, device="cpu", weights_dtype=dtype))
        run = tmp_path / dtype
        metrics = train_run(cfg, data, run)
        state = art.load_torch(run / "model.pt")["state_dict"]
        assert {v.dtype for v in state.values() if v.is_floating_point()} == {getattr(torch, dtype)}
        sizes[dtype] = sum(v.numel() * v.element_size() for v in state.values() if v.is_floating_point())
        files[dtype], aucs[dtype] = (run / "model.pt").stat().st_size, metrics["overall"]["auc"]
        # the stored metrics are those of the weights on disk, loaded into a float32 model
        _, model = load_run_model(run)
        pred = predict(model, data.test, torch.device("cpu"))
        np.testing.assert_array_equal(pred, art.load_npz(run / "predictions.npz")["pred"])
        assert ev.auc(data.test.label.numpy(), pred) == pytest.approx(metrics["overall"]["auc"], abs=1e-12)
    assert sizes["float16"] * 2 == sizes["float32"] and files["float16"] < files["float32"]
    assert aucs["float16"] == pytest.approx(aucs["float32"], abs=5e-3)


def test_corrupted_resume_checkpoint_names_the_file(data, tmp_path):
    ck = tmp_path / "checkpoint.pt"
    ck.write_bytes(b"\x00" * 64)
    with pytest.raises(art.ArtifactError, match="checkpoint.pt"):
        _fit(data, seed=0, checkpoint=ck)


def test_probes_content(data, tmp_path):
    cfg = RunConfig(run_id="saml-d0-s0", model="saml", seed=0, model_config=CFG,
                    train_config=TrainConfig(epochs=1, batch_size=256, device="cpu"), probe_hidden_all=30)
    idx = np.arange(0, 400, 2)
    train_run(cfg, data, tmp_path, probe_index=idx)
    p = art.load_npz(tmp_path / "probes.npz")
    n, k = len(idx), 4
    assert p["alpha"].shape == (2, n, k) and p["gate"].shape == (2, n)
    np.testing.assert_allclose(p["alpha"].sum(-1), 1, atol=1e-5)
    assert (p["alpha"][:, np.arange(n), p["scenario"]] == 0).all()
    assert p["hidden_own_0"].shape == (n, 16) and p["hidden_own_0"].dtype == np.float16
    assert p["hidden_all_1"].shape == (30, k, 8) and p["alpha_all"].shape == (2, 30, k, k)
    np.testing.assert_array_equal(p["index"], idx)
    # the own-branch slice of hidden_all is hidden_own on the same samples
    sub = p["hidden_all_index"]
    np.testing.assert_array_equal(p["hidden_all_0"][np.arange(30), p["scenario"][sub]], p["hidden_own_0"][sub])
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert len(m["alpha_mean"]) == 2 and "similarity_recovery" in m and set(m["gate_mean"]) == set(data.spec.scenario_names)


def test_sigterm_cancels_cleanly(tmp_path):
    root = tmp_path / "art"
    status = tmp_path / "status.json"
    cmd = [sys.executable, "-m", "saml_core", "experiment", "--dataset", "synthetic-countries", "--name", "c",
           "--quick", "--runs", "bst,saml", "--epochs", "5", "--patience", "5", "--artifacts", str(root),
           "--threads", "1", "--status-file", str(status)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            st = json.loads(status.read_text())
            if st.get("step", 0) >= 2:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    st = json.loads(status.read_text())
    assert st["state"] == "cancelled" and "kept" in st["message"]
    assert json.loads((root / "c/experiment_status.json").read_text())["state"] == "cancelled"
    assert "Traceback" not in err


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_probe_subset_has_the_asked_size_and_every_row_once(data, size):
    """--probe-size N probes N test rows, also when N is below the number of scenarios (each
    scenario's rounded share is then 0, which once gave an empty subset and a crash)."""
    from saml_core.probes import probe_index

    idx = probe_index(data.test, size)
    assert len(idx) == size and len(np.unique(idx)) == size and idx.max() < len(data.test)
    assert (np.diff(idx) > 0).all()
