"""Fair training (`experiment --tune`): every model gets the same budget, a small grid of settings
chosen on the validation split, before its seeds are trained.

The practice of FuxiCTR's and Scenario-Wise-Rec's tuners: a grid of settings (the cartesian
product of a few values per setting), each trained once on one seed with early stopping on
validation, the setting with the best validation AUC kept, then every seed trained with it.
Here:
- The grid: `config.TUNE_GRID` (learning rate x embedding decay, 9 points) for every model, or a
  model's own grid of the same size (`ModelEntry.tune_grid`; the logistic regression's smoothing
  x C). Its points in declared order, the first setting varying slowest.
- The trials: on the experiment's first data seed and first model seed only (trial `i` of model
  `m` in `tuning/<m>/t<i>/`, i = 1..9: config.json at its start, checkpoint.pt while it trains, trial.json
  when it is done). Each trains exactly as the run of that seed and setting would
  (`train.train_trial`) and is scored by the AUC of its predictions on the validation split,
  pooled over scenarios (the criterion early stopping uses). Nothing reads the test split.
- The choice: the highest validation AUC (the first in grid order on a tie); a setting that
  diverged has none and is never chosen. BST-Individual's sub-models share one choice: a choice
  per scenario would give it K times the selection of the other models from the same budget.
- The record (config.json `"tuning"` of every tuned run, experiment.json `"tuning"`):
  {"grid", "valid_auc", "chosen", "chosen_index", "trials_run_on_seed", "trials_run_on_data_seed",
  "metric"}.
Trials resume like runs: a finished trial (trial.json) is skipped, an unfinished one resumes
from its last finished epoch, and one with other settings is refused (or redone with
--overwrite). Every file is written atomically.
"""
from __future__ import annotations

import dataclasses
import itertools
import shutil
from pathlib import Path
from typing import Callable

from saml_core import artifacts as art
from saml_core import config
from saml_core.config import TUNE_GRID, ConfigError
from saml_core.run_config import RunConfig


class TuningFailed(RuntimeError):
    """No setting of a model's grid gave a validation AUC: its runs cannot be trained tuned."""

METRIC = "validation AUC, pooled over scenarios (the early-stopping criterion); first data seed and model seed"
TUNING_DIR = "tuning"


def grid_spec(model_id: str) -> dict:
    """{"train_config" | "model_options": {setting: values}} searched for this model."""
    from saml_core.models import registry

    return registry.get(model_id).tune_grid or TUNE_GRID


def grid_points(model_id: str) -> list[dict]:
    """Every setting of the model's grid, e.g. {"train_config": {"lr": 0.001, "embedding_decay": 0.0}}."""
    spec = grid_spec(model_id)
    keys = [(section, name) for section, settings in spec.items() for name in settings]
    points = []
    for values in itertools.product(*(spec[section][name] for section, name in keys)):
        point: dict = {}
        for (section, name), value in zip(keys, values):
            point.setdefault(section, {})[name] = value
        points.append(point)
    return points


def tuned_paths(model_id: str) -> set[str]:
    """config.json paths that tuning sets ("train_config.lr", "model_options.smoothing", ...)."""
    return {f"{section}.{name}" for section, settings in grid_spec(model_id).items() for name in settings}


def describe(point: dict) -> str:
    """'lr 0.001, embedding_decay 1' for logs and the report."""
    return ", ".join(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"
                     for settings in point.values() for name, value in settings.items())


def apply(rcfg: RunConfig, point: dict, tuning: dict | None = None, run_id: str | None = None) -> RunConfig:
    """`rcfg` trained with the setting `point` (and the tuning record to store with it)."""
    train = dataclasses.replace(rcfg.train_config, **point.get("train_config", {}))
    options = {**rcfg.model_options, **point.get("model_options", {})}
    return dataclasses.replace(rcfg, train_config=train, model_options=options, tuning=tuning,
                               run_id=run_id or rcfg.run_id)


def pending_record(rcfg: RunConfig, trial_seed: int, trial_data_seed: int) -> dict:
    """What a tuned run's record holds before its choice is known (for the identity check)."""
    return {"grid": art.clean_json(grid_points(rcfg.model)), "trials_run_on_seed": trial_seed,
            "trials_run_on_data_seed": trial_data_seed, "metric": METRIC}


# What an unknown choice leaves open in a tuned run's config.json.
RESULT_PATHS = {"tuning.valid_auc", "tuning.chosen", "tuning.chosen_index"}


def trial_dir(exp_dir: Path, model: str, index: int) -> Path:
    return Path(exp_dir) / TUNING_DIR / model / f"t{index + 1}"


def trial_config(base: RunConfig, index: int, point: dict) -> RunConfig:
    """Trial `index` of the model of `base` (its first-seed, first-data-seed run): that run with the
    grid's setting, no weights kept."""
    return dataclasses.replace(apply(base, point, run_id=f"{base.model}-tune-t{index + 1}"), keep_weights=False)


def read_trial(path: Path) -> dict | None:
    """A finished trial's trial.json, or None (not finished, or unreadable: trained again)."""
    try:
        doc = art.read_json(path / "trial.json")
    except art.ArtifactError:
        return None
    return doc if "valid_auc" in doc else None


def stored_record(exp_dir: Path, base: RunConfig) -> dict | None:
    """The model's record from its finished trials on disk (each identical to the trial that
    `base` asks for), or None while any trial is missing."""
    from saml_core.experiment_state import config_differences, first_differences

    results = []
    for i, point in enumerate(grid_points(base.model)):
        doc = read_trial(trial_dir(exp_dir, base.model, i))
        if doc is None or config_differences(doc.get("config") or {}, _wanted(trial_config(base, i, point))):
            return None
        results.append(doc)
    return make_record(base, results)


def make_record(base: RunConfig, results: list[dict]) -> dict:
    points = grid_points(base.model)
    aucs = [r.get("valid_auc") for r in results]
    finite = [(a, i) for i, a in enumerate(aucs) if isinstance(a, (int, float))]
    if not finite:
        raise TuningFailed(f"{base.model}: no setting of the tuning grid gave a validation AUC (every trial "
                          "diverged, or the validation split holds one class); tuning cannot choose")
    best = max(a for a, _ in finite)
    chosen = min(i for a, i in finite if a == best)  # a tie: the first in grid order
    return art.clean_json({"grid": points, "valid_auc": aucs, "chosen": points[chosen], "chosen_index": chosen,
                           "trials_run_on_seed": base.seed, "trials_run_on_data_seed": base.data_seed,
                           "metric": METRIC})


def _wanted(rcfg: RunConfig) -> dict:
    return art.clean_json(rcfg.to_dict())


def check_trials(exp_dir: Path, base: RunConfig, overwrite: bool, log: Callable[[str], None]) -> None:
    """Refuse trials (finished or not) stored with other settings than `base` asks for, or remove
    them with --overwrite; nothing is trained here."""
    from saml_core.experiment_state import config_differences, first_differences

    for i, point in enumerate(grid_points(base.model)):
        path = trial_dir(exp_dir, base.model, i)
        if not (path / "config.json").exists():
            continue
        try:
            stored = art.read_json(path / "config.json")
        except art.ArtifactError:
            stored = {}
        diff = config_differences(stored, _wanted(trial_config(base, i, point)))
        if not diff:
            continue
        if not overwrite:
            raise ConfigError(f"experiment {base.experiment!r} already has tuning trial {base.model} t{i + 1} run with "
                              f"other settings ({first_differences(diff)}); use another --name, or --overwrite to redo it")
        log(f"tuning {base.model} t{i + 1}: other settings than requested, removed (--overwrite)")
        shutil.rmtree(path)


def tune(base: RunConfig, data, exp_dir: Path, *, should_stop=None, log: Callable[[str], None] = print,
         on_trial_start: Callable[[int, int, dict], None] | None = None,
         on_progress: Callable[[dict], None] | None = None,
         on_trial_done: Callable[[], None] | None = None) -> dict:
    """Run the model's trials that are not finished (on `data`, the first data seed's split) and
    return its record. A trial is done when its trial.json is written; its resume state is then
    removed."""
    from saml_core.train import train_trial

    points = grid_points(base.model)
    results = []
    for i, point in enumerate(points):
        path = trial_dir(exp_dir, base.model, i)
        tcfg = trial_config(base, i, point)
        done = read_trial(path)
        if done is not None:
            log(f"    tuning {base.model} t{i + 1}/{len(points)} ({describe(point)}): finished earlier, skipped")
            results.append(done)
            continue
        if on_trial_start is not None:
            on_trial_start(i, len(points), point)
        result = train_trial(tcfg, data, path, progress=on_progress, should_stop=should_stop)
        art.write_json(path / "trial.json", {"model": base.model, "index": i, "setting": point,
                                             "config": _wanted(tcfg), **result})
        (path / "checkpoint.pt").unlink(missing_ok=True)
        shutil.rmtree(path / "submodels", ignore_errors=True)
        shown = f"valid AUC {result['valid_auc']:.4f}" if result["valid_auc"] is not None else \
            f"no valid AUC ({result['failed'] or 'one class in validation'})"
        log(f"    tuning {base.model} t{i + 1}/{len(points)} ({describe(point)}): {shown} "
            f"({result.get('epochs_run', 0)} epochs, {result['seconds']:.0f}s)")
        results.append(art.clean_json(result))
        if on_trial_done is not None:
            on_trial_done()
    record = make_record(base, results)
    log(f"    tuning {base.model}: chosen {describe(record['chosen'])} "
        f"(valid AUC {record['valid_auc'][record['chosen_index']]:.4f})")
    return record


def borrowed_records(root: Path, source: str, models: list[str]) -> dict:
    """model -> the tuning record of experiment `source` (in the same artifacts root), reused without
    trials: an ablation of the same log (fewer features) trained at the setting its full-feature
    experiment chose, so the ablation measures the features and not another selection. The record
    says where the choice came from (`"from_experiment"`)."""
    config.check_name(source, "--tuning-from experiment")
    path = Path(root) / source / "experiment.json"
    try:
        doc = art.read_json(path)
    except art.ArtifactError as exc:
        raise ConfigError(f"--tuning-from {source}: {exc}") from None
    tuned = doc.get("tuning") if isinstance(doc.get("tuning"), dict) else {}
    missing = [m for m in models if not isinstance(tuned.get(m), dict) or not isinstance(tuned[m].get("chosen"), dict)]
    if missing:
        raise ConfigError(f"--tuning-from {source}: that experiment holds no finished tuning of "
                          f"{', '.join(missing)}; tune them there first (or tune here with --tune alone)")
    return {m: {**tuned[m], "from_experiment": source} for m in models}


def finished_trials(exp_dir: Path, model: str) -> int:
    return sum(read_trial(trial_dir(exp_dir, model, i)) is not None for i in range(len(grid_points(model))))
