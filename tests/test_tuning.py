"""Fair training (`--tune`, saml_core/tuning.py) on small simulated data: the choice is the grid's
best VALIDATION AUC and test labels cannot move it, every seed trains with it and records it,
BST-Individual's sub-models share it, trials resume after an interruption and are skipped once
finished, and the experiment's identity check treats the choice correctly."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from saml_core import tuning
from saml_core.config import ConfigError
from saml_core.experiments import ExperimentConfig, run_experiment
from saml_core.presets import settings_for

# Two settings of each grid keep these tests fast; the full grids are tested on their own below.
SMALL_GRID = {"train_config": {"lr": (1e-3, 1e-4), "embedding_decay": (0.0,)}}
SMALL_LR_GRID = {"model_options": {"smoothing": (5.0, 80.0), "C": (0.01,)}}


def _small_grid(model_id):
    return SMALL_LR_GRID if model_id == "lr_te" else SMALL_GRID
CONTRACT_KEYS = {"grid", "valid_auc", "chosen", "trials_run_on_seed"}


def _cfg(name, runs="bst,bst_individual,lr_te", seeds=2, **train):
    s = settings_for("synthetic-countries", "quick", train={"num_threads": 1, **train})
    return ExperimentConfig(name=name, runs=runs, seeds=seeds, tuned=True, **s)


def _quiet(_):
    pass


@pytest.fixture()
def small_grid(monkeypatch):
    monkeypatch.setattr(tuning, "grid_spec", _small_grid)


@pytest.fixture(scope="module")
def tuned_root(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(tuning, "grid_spec", _small_grid)
    root = tmp_path_factory.mktemp("tuned")
    run_experiment(_cfg("tuned"), root, log=_quiet)
    yield root
    mp.undo()


def _trials(root, name, model):
    return [json.loads((p / "trial.json").read_text())
            for p in sorted((root / name / "tuning" / model).iterdir(), key=lambda p: int(p.name[1:]))]


def test_the_choice_is_the_best_validation_auc_and_every_seed_trains_with_it(tuned_root):
    exp = json.loads((tuned_root / "tuned/experiment.json").read_text())
    assert set(exp["tuning"]) == {"bst", "bst_individual", "lr_te"}
    for model, record in exp["tuning"].items():
        trials = _trials(tuned_root, "tuned", model)
        assert [t["valid_auc"] for t in trials] == record["valid_auc"]
        assert [t["setting"] for t in trials] == record["grid"] == tuning.grid_points(model)
        aucs = np.array(record["valid_auc"], dtype=float)
        best = int(np.argmax(aucs))  # the first of equal maxima, as the choice on a tie
        assert record["chosen_index"] == best and record["chosen"] == record["grid"][best]
        assert len(set(aucs.tolist())) > 1  # the settings differ, so the choice is a real one
        assert record["trials_run_on_seed"] == 0 and record["trials_run_on_data_seed"] == 0
        for seed in (0, 1):
            cfg = json.loads((tuned_root / f"tuned/{model}-d0-s{seed}/config.json").read_text())
            assert CONTRACT_KEYS <= set(cfg["tuning"]) and cfg["tuning"] == record
            for section, settings in record["chosen"].items():
                assert {k: cfg[section][k] for k in settings} == settings
    # the trial's number is the validation AUC of the model the run of that seed and setting trains:
    # the seed-0 run (same seed, same setting) reaches exactly it at its best epoch
    for model in ("bst", "lr_te"):
        record = exp["tuning"][model]
        history = json.loads((tuned_root / f"tuned/{model}-d0-s0/history.json").read_text())["epochs"]
        best = max(r["valid_auc"] for r in history)
        assert best == pytest.approx(record["valid_auc"][record["chosen_index"]], abs=1e-12)
    # BST-Individual: one choice for all its per-scenario sub-models
    lr = exp["tuning"]["bst_individual"]["chosen"]["train_config"]["lr"]
    subs = json.loads((tuned_root / "tuned/bst_individual-d0-s1/metrics.json").read_text())["submodels"]
    assert subs and {v["lr"] for v in subs.values() if "lr" in v} == {lr}


def test_report_states_the_tuning(tuned_root):
    from saml_core.registry import report, report_markdown

    doc = report(tuned_root, "tuned")
    assert set(doc["tuning"]) == {"bst", "bst_individual", "lr_te"}
    md = report_markdown(doc)
    chosen = doc["tuning"]["bst"]["chosen"]["train_config"]
    assert f"BST lr {chosen['lr']:g}, embedding_decay {chosen['embedding_decay']:g}" in md
    assert "lr tuned per model" in md


def test_test_labels_cannot_move_the_choice(small_grid, tmp_path):
    from saml_core.data import load_dataset

    cfg = _cfg("x", runs="bst,lr_te", seeds=1)
    data = load_dataset(cfg.dataset, seed=0, **cfg.dataset_options)
    flipped = replace(data, test=replace(data.test, label=1 - data.test.label))
    shuffled_valid = replace(data, valid=replace(data.valid, label=data.valid.label[
        np.random.default_rng(0).permutation(len(data.valid))]))
    for model in ("bst", "lr_te"):
        base = cfg.tuning_base(model)
        as_is = tuning.tune(base, data, tmp_path / "a", log=_quiet)
        with_flipped_test = tuning.tune(base, flipped, tmp_path / "b", log=_quiet)
        assert with_flipped_test == as_is  # every validation AUC and the choice
        # while the validation labels do decide: shuffled, the trials score about chance
        other = tuning.tune(base, shuffled_valid, tmp_path / "c", log=_quiet)
        assert other["valid_auc"] != as_is["valid_auc"] and all(abs(a - 0.5) < 0.1 for a in other["valid_auc"])


def test_an_interrupted_tuning_resumes_and_skips_finished_trials(small_grid, tmp_path):
    from saml_core.train import Cancelled

    cfg = _cfg("resume", runs="bst", seeds=1)
    t2 = tmp_path / "resume/tuning/bst/t2"
    # stop as soon as the second trial has checkpointed its first epoch (inside its second epoch)
    with pytest.raises(Cancelled):
        run_experiment(cfg, tmp_path, should_stop=lambda: (t2 / "checkpoint.pt").exists(), log=_quiet)
    t1 = tmp_path / "resume/tuning/bst/t1"
    assert (t1 / "trial.json").exists() and not (t1 / "checkpoint.pt").exists()
    assert not (t2 / "trial.json").exists() and (t2 / "checkpoint.pt").exists()
    assert not (tmp_path / "resume/bst-d0-s0").exists()
    before = (t1 / "trial.json").stat().st_mtime_ns
    lines = []
    run_experiment(cfg, tmp_path, log=lines.append)
    assert (t1 / "trial.json").stat().st_mtime_ns == before
    assert any("bst t1/2" in line and "finished earlier, skipped" in line for line in lines)
    resumed = json.loads((t2 / "trial.json").read_text())
    assert resumed["resumed_from"] == 1 and not (t2 / "checkpoint.pt").exists()
    # the same trials and choice as a tuning that was never interrupted
    run_experiment(replace(cfg, name="whole"), tmp_path, log=_quiet)
    a = json.loads((tmp_path / "resume/experiment.json").read_text())["tuning"]
    b = json.loads((tmp_path / "whole/experiment.json").read_text())["tuning"]
    assert a == b
    # a re-run trains nothing
    lines = []
    run_experiment(cfg, tmp_path, log=lines.append)
    assert not any("valid AUC" in line and "skipped" not in line for line in lines)
    assert any("bst-d0-s0: finished earlier, skipped" in line for line in lines)


def test_identity_check_compares_runs_with_the_choice(tuned_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tuned_root, root)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*.json")}
    lines = []
    run_experiment(_cfg("tuned"), root, log=lines.append)  # the same request: everything skipped
    # every run skipped; the stored trials gave the choices without loading the data
    assert sum("finished earlier, skipped" in line for line in lines) == 6
    assert not any("tuning" in line for line in lines)
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p.name in ("config.json", "trial.json"))
    with pytest.raises(ConfigError, match=r"bst-d0-s0.*tuning: tuned \(--tune\) -> not tuned"):
        run_experiment(replace(_cfg("tuned", runs="bst"), tuned=False), root, log=_quiet)
    with pytest.raises(ConfigError, match=r"tuning trial bst t1 .*train_config.epochs: 2 -> 3"):
        run_experiment(_cfg("tuned", runs="bst", epochs=3), root, log=_quiet)
    # a stored run whose tuned setting is not the choice of the stored trials is refused
    cfg_file = root / "tuned/bst-d0-s1/config.json"
    stored = json.loads(cfg_file.read_text())
    record = stored["tuning"]
    other = record["grid"][1 - record["chosen_index"]]["train_config"]["lr"]
    stored["train_config"]["lr"] = other
    cfg_file.write_text(json.dumps(stored))
    with pytest.raises(ConfigError, match=r"bst-d0-s1 .*train_config.lr"):
        run_experiment(_cfg("tuned", runs="bst"), root, log=_quiet)
    # without trials on disk the tuned settings are open until tuning has chosen again
    shutil.rmtree(root / "tuned/tuning/bst")
    from saml_core.experiments import wanted_config

    cfg = _cfg("tuned", runs="bst")
    _, still_open = wanted_config(cfg, cfg.plan()[0], {})
    assert {"train_config.lr", "train_config.embedding_decay", "tuning.chosen"} <= still_open


def test_every_model_gets_the_same_budget(monkeypatch):
    from saml_core import config
    from saml_core.models import registry

    monkeypatch.setattr(tuning, "grid_spec", lambda m: registry.get(m).tune_grid or config.TUNE_GRID)
    assert tuning.grid_points("lr_te")[0] == {"model_options": {"smoothing": 5.0, "C": 0.01}}
    assert tuning.grid_points("saml")[1] == {"train_config": {"lr": 1e-3, "embedding_decay": 0.1}}
    for entry in registry.entries():
        points = tuning.grid_points(entry.id)
        assert len(points) == config.grid_size(config.TUNE_GRID) == 9
        assert len({json.dumps(p, sort_keys=True) for p in points}) == 9
    with pytest.raises(ValueError, match="common budget"):
        config.check_grid("toy", {"train_config": {"lr": (1e-3, 1e-4)}}, {})
    with pytest.raises(ValueError, match="unknown model_options"):
        config.check_grid("toy", {"model_options": {"depth": (1, 2, 3), "width": (1, 2, 3)}}, {"width": 1})


def test_tune_is_refused_with_a_sweep(tmp_path, capsys):
    from saml_core.cli import main

    rc = main(["experiment", "--dataset", "synthetic-countries", "--name", "x", "--tune", "--sweep", "emb",
               "--artifacts", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "--sweep" in err and not any(tmp_path.iterdir())


def test_tuning_from_reuses_another_experiments_choice_without_trials(tuned_root):
    """--tuning-from: an ablation of the same log trains at the full-feature experiment's choice (no
    trials of its own), its runs record where the choice came from; a model the source did not tune
    is refused before anything trains."""
    source = json.loads((tuned_root / "tuned/experiment.json").read_text())["tuning"]
    s = settings_for("synthetic-countries", "quick", train={"num_threads": 1},
                     dataset_options={"exclude": ["hist_item"]})
    cfg = ExperimentConfig(name="ablation", runs="bst", seeds=1, tuned=True, tuning_from="tuned", **s)
    run_experiment(cfg, tuned_root, log=_quiet)
    assert not (tuned_root / "ablation" / "tuning").exists()
    record = json.loads((tuned_root / "ablation/bst-d0-s0/config.json").read_text())["tuning"]
    assert record["from_experiment"] == "tuned" and record["chosen"] == source["bst"]["chosen"]
    run_cfg = json.loads((tuned_root / "ablation/bst-d0-s0/config.json").read_text())
    for key, value in source["bst"]["chosen"]["train_config"].items():
        assert run_cfg["train_config"][key] == value
    with pytest.raises(ConfigError, match="no finished tuning of star"):
        run_experiment(ExperimentConfig(name="ablation2", runs="star", seeds=1, tuned=True, tuning_from="tuned", **s),
                       tuned_root, log=_quiet)
    with pytest.raises(ConfigError, match="needs --tune"):
        ExperimentConfig(name="ablation3", runs="bst", tuning_from="tuned", **s)
