"""Experiments: a group of runs compared on the same data (docs/ARTIFACTS.md).

The default comparison set is the registry's default models (the paper's Tables III/IV:
BST-Individual, BST, SAML and its three ablations). Model seeds and data seeds repeat every run;
sweeps vary one size (paper Fig. 2). Re-running an experiment skips finished runs whose full
configuration equals the requested one, resumes unfinished ones from their last finished epoch,
and refuses to mix other settings into an existing experiment.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from saml_core import artifacts as art
from saml_core import evaluate as ev
from saml_core import maps
from saml_core.config import (MAX_SEED, MAX_SEEDS, ConfigError, ModelConfig, TrainConfig,
                              build_dataclass, check_int, check_name, resolve_for_data, run_id_for)
from saml_core.experiment_state import (ExperimentLock, ExperimentProgress, StatusWriter, config_differences,
                                        first_differences,
                                        now_iso)
from saml_core.run_config import RunConfig

SWEEPS = {"emb": (8, 12, 16, 24, 32), "heads": (4, 8, 12, 16), "depth": (2, 3, 4, 5)}
SWEEP_RUNS = ("bst", "saml")
KEEP_WEIGHTS = ("all", "first-run", "first-run-main")
# Run ids of earlier versions, still accepted on the command line.
ALIASES = {"saml:full": "saml", "saml:no_gate": "saml_no_gate", "saml:no_aux": "saml_no_aux",
           "saml:no_gate_mut": "saml_no_gate_mut"}


def parse_runs(text: str | list | tuple) -> list[str]:
    """Model ids from a comma list ("default" = the registry's default set)."""
    from saml_core.models import registry

    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        ids = registry.default_ids() if item == "default" else [ALIASES.get(item, item)]
        for model_id in ids:
            if registry.find(model_id) is None:
                raise ConfigError(f"--runs: unknown model {item!r}; known: default, {', '.join(registry.ids())}")
            if model_id not in out:
                out.append(model_id)
    if not out:
        raise ConfigError("--runs is empty")
    return out


def depth_mlp(base: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """MLP of `depth` layers continuing the base sizes by halving (min 8)."""
    sizes = list(base[:depth])
    while len(sizes) < depth:
        sizes.append(max(8, sizes[-1] // 2))
    return tuple(sizes)


def sweep_configs(sweep: str | None, base: ModelConfig) -> list[tuple[dict | None, ModelConfig]]:
    if sweep is None:
        return [(None, base)]
    values = SWEEPS[sweep]
    if sweep == "emb":
        return [({"name": "emb", "value": v}, dataclasses.replace(base, d_g=v)) for v in values]
    if sweep == "heads":
        return [({"name": "heads", "value": v}, dataclasses.replace(base, heads=v)) for v in values]
    return [({"name": "depth", "value": v}, dataclasses.replace(base, mlp=depth_mlp(base.mlp, v), mutual_layers=None))
            for v in values]


@dataclass
class ExperimentConfig:
    """Everything that defines an experiment; `to_dict`/`from_dict` round-trip it (job specs)."""

    name: str
    dataset: str = "synthetic-countries"
    dataset_options: dict = field(default_factory=dict)  # load_dataset options (the data seed aside)
    runs: list = field(default_factory=lambda: ["default"])
    seeds: int = 1
    first_seed: int = 0  # model seeds first_seed .. first_seed + seeds - 1
    data_seeds: list = field(default_factory=lambda: [0])
    sweep: str | None = None
    preset: str = ""  # training preset the settings started from (for the record)
    model_config: ModelConfig = field(default_factory=ModelConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    model_options: dict = field(default_factory=dict)  # {model id: {option: value}}
    probe_size: int = 3000
    probe_hidden_all: int = 300
    # "first-run": model.pt and hidden states of each model's first run only; "first-run-main": of
    # the first run of each method and baseline (ablations keep metrics, predictions and probe
    # summaries only): demo storage
    keep_weights: str = "all"
    # fair training (saml_core.tuning): each model's learning rate and embedding decay (its own
    # grid for models that declare one) chosen on validation before its seeds are trained
    tuned: bool = False
    # reuse the choices of another tuned experiment of the same artifacts root (no trials here):
    # the benchmark's feature ablations train at their full-feature experiment's settings
    tuning_from: str | None = None

    def __post_init__(self):
        from saml_core.data import registry as datasets
        from saml_core.data.types import DataError

        check_name(self.name)
        datasets.parse(self.dataset)
        if not isinstance(self.dataset_options, dict) or "seed" in self.dataset_options:
            raise ConfigError("dataset options must be a mapping without 'seed' (use data seeds)")
        try:  # sizes refused now, not when the data is loaded in a job
            datasets.check_options(self.dataset, self.dataset_options)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        self.runs = parse_runs(self.runs)
        check_int("--seeds", self.seeds, 1, MAX_SEEDS)
        check_int("first seed", self.first_seed, 0, MAX_SEED - MAX_SEEDS)
        self.data_seeds = list(self.data_seeds)
        if not self.data_seeds or len(self.data_seeds) > MAX_SEEDS:
            raise ConfigError(f"data seeds: give 1 to {MAX_SEEDS}, got {len(self.data_seeds)}")
        for d in self.data_seeds:
            check_int("data seed", d, 0, MAX_SEED)
        if len(set(self.data_seeds)) != len(self.data_seeds):
            raise ConfigError(f"data seeds repeat a value: {self.data_seeds}")
        if self.sweep is not None and self.sweep not in SWEEPS:
            raise ConfigError(f"--sweep must be one of {', '.join(SWEEPS)}, got {self.sweep!r}")
        if not isinstance(self.tuned, bool):
            raise ConfigError(f"tuned must be true or false, got {self.tuned!r}")
        if self.tuning_from is not None:
            check_name(self.tuning_from, "--tuning-from experiment")
            if not self.tuned:
                raise ConfigError("--tuning-from reuses another experiment's tuning: it needs --tune")
            if self.tuning_from == self.name:
                raise ConfigError("--tuning-from names this experiment itself; tune it with --tune alone")
        if self.tuned and self.sweep is not None:
            raise ConfigError("--tune compares models at their best settings; a --sweep varies one size at fixed "
                              "settings: run them as two experiments")
        if self.keep_weights not in KEEP_WEIGHTS:
            raise ConfigError(f"keep_weights must be one of {', '.join(KEEP_WEIGHTS)}, got {self.keep_weights!r}")
        unknown = sorted(set(self.model_options) - set(self.runs))
        if unknown:
            raise ConfigError(f"model options given for model(s) not in the experiment: {', '.join(unknown)}")
        check_int("probe size", self.probe_size, 1, 1_000_000)
        check_int("probe samples through every branch", self.probe_hidden_all, 0, 1_000_000)
        self.plan()  # every run's own checks (model options) now, not after hours of training

    def _keeps(self, model: str, seed: int, data_seed: int) -> bool:
        from saml_core.models import registry

        if self.keep_weights == "all":
            return True
        first = seed == self.first_seed and data_seed == self.data_seeds[0]
        return first and (self.keep_weights == "first-run" or registry.get(model).role != "ablation")

    def plan(self) -> list[RunConfig]:
        """Every run of the experiment, in training order (data seed, model seed, sweep, model)."""
        runs = []
        for data_seed in self.data_seeds:
            for seed in range(self.first_seed, self.first_seed + self.seeds):
                for sweep, mcfg in sweep_configs(self.sweep, self.model_config):
                    for model in self.runs:
                        runs.append(RunConfig(
                            run_id=run_id_for(model, seed, data_seed, sweep), model=model, seed=seed,
                            data_seed=data_seed, experiment=self.name, dataset=self.dataset,
                            dataset_options=dict(self.dataset_options), sweep=sweep,
                            model_options=dict(self.model_options.get(model, {})), model_config=mcfg,
                            train_config=self.train_config, probe_size=self.probe_size,
                            probe_hidden_all=self.probe_hidden_all,
                            keep_weights=self._keeps(model, seed, data_seed)))
        return runs

    def tuning_base(self, model: str) -> RunConfig:
        """The run a model's tuning trials start from: its first data seed's, first model seed's run."""
        return next(r for r in self.plan() if r.model == model and r.seed == self.first_seed
                    and r.data_seed == self.data_seeds[0])

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model_config"] = self.model_config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentConfig":
        """Rebuild and validate (a job spec is untrusted input: every field is checked)."""
        if not isinstance(d, dict):
            raise ConfigError(f"an experiment specification must be a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown experiment option(s): {', '.join(unknown)}")
        kw = dict(d)
        kw["model_config"] = build_dataclass(ModelConfig, d.get("model_config", {}))
        kw["train_config"] = build_dataclass(TrainConfig, d.get("train_config", {}))
        try:
            return cls(**kw)
        except TypeError as exc:
            raise ConfigError(f"experiment specification: {exc}") from None


def dataset_facts(data) -> dict:
    """The facts of one data seed's split: shares, counts, oracle, similarities, probe subset.
    train_counts (train rows and clicks per scenario) give the report its reference predictors
    (each scenario's train click rate; the overall one) without the test labels."""
    names = list(data.spec.scenario_names)
    k = len(names)
    tr_s, tr_y = data.train.scenario.numpy(), data.train.label.numpy()
    te_s, te_y = data.test.scenario.numpy(), data.test.label.numpy()
    share = np.bincount(tr_s, minlength=k) / max(len(tr_s), 1)
    facts = {
        "traffic_share": {n: float(share[i]) for i, n in enumerate(names)},
        "test_counts": {n: {"n": int((te_s == i).sum()), "positives": int(te_y[te_s == i].sum())}
                        for i, n in enumerate(names)},
        "train_counts": {n: {"n": int((tr_s == i).sum()), "positives": int(tr_y[tr_s == i].sum())}
                         for i, n in enumerate(names)},
        "oracle_auc": None, "oracle_auc_overall": None, "data_similarity": None,
        "dropped_scenarios": data.info.get("dropped_scenarios") or [],
    }
    if data.test.oracle_prob is not None:
        per = ev.scenario_metrics(te_y, data.test.oracle_prob.numpy(), te_s, names, with_ci=False)
        facts["oracle_auc"] = {n: per["per_scenario"][n]["auc"] for n in names}
        facts["oracle_auc_overall"] = per["overall"]["auc"]
    if data.category_field is not None:
        ci = data.spec.cat_index(data.category_field)
        facts["data_similarity"] = ev.data_similarity(data.train.cat[:, ci].numpy(), data.train.label.numpy(), tr_s, k)
    return facts


def _combine_facts(splits: dict[str, dict], names: list[str]) -> dict:
    """Experiment-level facts over data seeds: shares and oracle AUCs averaged, counts summed."""
    facts = list(splits.values())

    def mean_of(key, sub=None):
        vals = [f[key] if sub is None else (f[key] or {}).get(sub) for f in facts]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else None

    out = {
        "traffic_share": {n: mean_of("traffic_share", n) for n in names},
        "test_counts": {n: {"n": sum(f["test_counts"][n]["n"] for f in facts),
                            "positives": sum(f["test_counts"][n]["positives"] for f in facts)} for n in names},
        "oracle_auc": ({n: mean_of("oracle_auc", n) for n in names} if facts[0]["oracle_auc"] else None),
        "oracle_auc_overall": mean_of("oracle_auc_overall"),
        "data_similarity": None,
    }
    sims = [np.asarray(f["data_similarity"], dtype=float) for f in facts if f["data_similarity"] is not None]
    if sims:
        out["data_similarity"] = np.mean(sims, axis=0)
    return out


def run_is_finished(run_dir: Path) -> bool:
    try:
        metrics = art.read_json(run_dir / "metrics.json")
    except art.ArtifactError:
        return False
    return (run_dir / "model.pt").exists() or metrics.get("weights_kept") is False


def wanted_config(cfg: ExperimentConfig, rcfg: RunConfig, records: dict) -> tuple[dict, set[str]]:
    """The config.json a run of `cfg` must have (as JSON), and the paths still open: a tuned run
    whose model's choice is not known yet may hold any value of its tuned settings."""
    from saml_core import tuning

    if not cfg.tuned:
        return art.clean_json(rcfg.to_dict()), set()
    record = records.get(rcfg.model)
    if record is not None:
        return art.clean_json(tuning.apply(rcfg, record["chosen"], record).to_dict()), set()
    base = cfg.tuning_base(rcfg.model)
    pending = tuning.apply(rcfg, {}, tuning.pending_record(rcfg, base.seed, base.data_seed))
    return art.clean_json(pending.to_dict()), tuning.tuned_paths(rcfg.model) | tuning.RESULT_PATHS


# Left behind by a writer killed in the middle of artifacts.atomic_write_bytes (kill -9, power loss).
_TEMP_FILE = re.compile(r"^\..+\.tmp$")
# What an experiment folder holds before its experiment.json exists (nothing a reader lists).
_PRE_EXPERIMENT_FILE = re.compile(r"^(\.lock|experiment_status\.json|test_labels-d\d+\.npz|\..+\.tmp)$")


def _remove_temp_files(exp_dir: Path, log) -> None:
    """Delete temporary files of killed writers (only called while holding the experiment lock:
    no other process writes to this experiment)."""
    trials = exp_dir / "tuning"
    trial_dirs = [t for m in (trials.iterdir() if trials.is_dir() and not trials.is_symlink() else [])
                  if m.is_dir() and not m.is_symlink() for t in m.iterdir() if t.is_dir() and not t.is_symlink()]
    for path in [exp_dir, *(p for p in exp_dir.iterdir() if p.is_dir() and not p.is_symlink()), *trial_dirs]:
        for sub in [path, *((path / "submodels").iterdir() if (path / "submodels").is_dir() else [])]:
            for f in sub.iterdir() if sub.is_dir() else []:
                if _TEMP_FILE.match(f.name) and f.is_file() and not f.is_symlink():
                    f.unlink(missing_ok=True)
                    log(f"removed {f} (left by an interrupted write)")


def _remove_if_never_started(exp_dir: Path) -> None:
    """After a failure before experiment.json was written (bad data, full disk, cancel while loading
    data): remove the folder when it holds only this command's own bookkeeping, so no empty
    experiment is left behind. Anything else in it (an earlier experiment's files) stays."""
    try:
        names = os.listdir(exp_dir)
        if "experiment.json" in names or not all(_PRE_EXPERIMENT_FILE.match(n) for n in names):
            return
        shutil.rmtree(exp_dir)
    except OSError:
        pass


def _check_identity(cfg: ExperimentConfig, previous: dict | None, plan: list[RunConfig], exp_dir: Path,
                    overwrite: bool, log, records: dict | None = None) -> None:
    """Refuse to mix settings into an experiment: same dataset, and every existing run directory
    of the plan holds the same configuration (or --overwrite removes it). A tuned run is compared
    with its model's chosen setting (`records`: model -> tuning record) where that is known, else
    with everything but its tuned settings."""
    if previous is not None and (previous.get("dataset") != cfg.dataset
                                 or (previous.get("dataset_options") or {}) != cfg.dataset_options):
        raise ConfigError(
            f"experiment {cfg.name!r} already exists with dataset {previous.get('dataset')!r} "
            f"{previous.get('dataset_options') or {}}; choose another --name")
    for rcfg in plan:
        path = exp_dir / rcfg.run_id / "config.json"
        if not path.exists():
            continue
        try:
            stored = art.read_json(path)
        except art.ArtifactError:
            stored = {}
        wanted, still_open = wanted_config(cfg, rcfg, records or {})
        diff = config_differences(stored, wanted, ignore=still_open)
        if not diff:
            continue
        if not overwrite:
            raise ConfigError(f"experiment {cfg.name!r} already has run {rcfg.run_id} trained with other settings "
                              f"({first_differences(diff)}); use another --name, or --overwrite to retrain it")
        log(f"{rcfg.run_id}: other settings than requested, removed (--overwrite)")
        shutil.rmtree(exp_dir / rcfg.run_id)


def _data_for(cfg: ExperimentConfig, data_seed: int):
    from saml_core.data import load_dataset

    return load_dataset(cfg.dataset, seed=data_seed, **cfg.dataset_options)


def train_settings(cfg: ExperimentConfig, data) -> dict:
    """The settings every model is trained with on this data (data-derived values filled in)."""
    tcfg = resolve_for_data(cfg.train_config, len(data.train), int(data.valid.label.sum().item()))
    return {"lr": tcfg.lr, "batch_size": tcfg.batch_size, "patience": tcfg.patience, "min_epochs": tcfg.min_epochs,
            "epochs": tcfg.epochs, "weight_decay": tcfg.weight_decay,
            "derived": [k for k in ("batch_size", "patience", "min_epochs") if not getattr(cfg.train_config, k)]}


def run_experiment(cfg: ExperimentConfig, root: str | Path, *, status_file: str | Path | None = None,
                   should_stop: Callable[[], bool] | None = None, command: str | None = None,
                   overwrite: bool = False, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                   dist=None, on_unit_done: Callable[[], None] | None = None) -> Path:
    """Train every planned run that is not finished yet; returns the experiment directory.
    `on_unit_done` is called after each run or tuning trial this call trains (or fails).

    With `dist` (saml_core.distributed; this process is rank 0 of a torchrun launch) everything
    here (lock, status, artifacts) stays in this process; the other ranks load each data seed's
    data when told and train the data-parallel runs with it."""
    from saml_core import tuning
    from saml_core.train import Cancelled, TrainingFailed, train_run

    if cfg.tuned and dist is not None:
        raise ConfigError("--tune trains its trials in one process: run it without torchrun (or with one process)")
    exp_dir = Path(root) / cfg.name
    exp_dir.mkdir(parents=True, exist_ok=True)
    plan = cfg.plan()
    paths = [exp_dir / "experiment_status.json"] + ([Path(status_file)] if status_file else [])
    with ExperimentLock(exp_dir):
        status = StatusWriter(paths, {"state": "running", "experiment": cfg.name, "run_id": None, "run_index": 0,
                                      "n_runs": len(plan), "epoch": 0, "epochs": cfg.train_config.epochs, "step": 0,
                                      "steps": 0, "loss": None, "eta_seconds": None, "progress": 0.0,
                                      "submodel": None, "message": "loading data"})
        try:
            _remove_temp_files(exp_dir, log)
            status.write(force=True)
            exp_file = exp_dir / "experiment.json"
            previous = art.read_json(exp_file) if exp_file.exists() else None
            records: dict = {}  # model -> tuning record (tuned experiments)
            if cfg.tuned and cfg.tuning_from:
                records = tuning.borrowed_records(Path(root), cfg.tuning_from, cfg.runs)
            elif cfg.tuned:
                for model in cfg.runs:
                    tuning.check_trials(exp_dir, cfg.tuning_base(model), overwrite, log)
                    record = tuning.stored_record(exp_dir, cfg.tuning_base(model))
                    if record is not None:
                        records[model] = record
            _check_identity(cfg, previous, plan, exp_dir, overwrite, log, records)
            doc = _experiment_doc(cfg, previous, plan, command)
            if records:
                doc["tuning"] = {**(doc.get("tuning") or {}), **records}
            untuned = [m for m in cfg.runs if cfg.tuned and m not in records]
            n_grid = {m: len(tuning.grid_points(m)) for m in untuned}
            progress = ExperimentProgress(len(plan) + sum(n_grid.values()),
                                          sum(run_is_finished(exp_dir / r.run_id) for r in plan)
                                          + sum(tuning.finished_trials(exp_dir, m) for m in untuned), on_unit_done)
            failed: list[str] = []
            t_exp = time.perf_counter()
            maps.begin_background(dist.world if dist is not None else 1)  # maps while the next runs train
            for data_seed in cfg.data_seeds:
                todo = [r for r in plan if r.data_seed == data_seed]
                key = str(data_seed)
                tune_here = bool(untuned) and data_seed == cfg.data_seeds[0]
                if key in doc["splits"] and "train_counts" in doc["splits"][key] and not tune_here and \
                        all(run_is_finished(exp_dir / r.run_id) for r in todo):
                    for r in todo:  # nothing to train on this data seed: no need to load its data
                        log(f"[{plan.index(r) + 1}/{len(plan)}] {r.run_id}: finished earlier, skipped")
                    continue
                status.write(force=True, message=f"loading data (data seed {data_seed})")
                data = _data_for(cfg, data_seed)
                for warning in data.info.get("warnings") or []:  # legal but suspicious data (label leakage, ...)
                    log(f"warning: {warning}")
                if dist is not None:  # the other ranks load the same data (deterministic)
                    dist.send({"op": "load", "dataset": cfg.dataset, "options": cfg.dataset_options,
                               "seed": data_seed})
                if len(cfg.data_seeds) > 1 and not data.info.get("seed_dependent", True):
                    raise ConfigError(f"{cfg.dataset}: the split does not depend on the data seed "
                                      "(a fixed split), so several data seeds would repeat the same data; use one")
                _record_split(doc, exp_dir, cfg, data, data_seed)
                art.write_json(exp_file, doc)
                pidx = np.asarray(doc["splits"][key]["probe_index"], dtype=np.int64)
                if tune_here:
                    records.update(_tune(cfg, untuned, n_grid, data, exp_dir, status, progress, should_stop, log,
                                         failed))
                    untuned = []
                    doc["tuning"] = {**(doc.get("tuning") or {}), **records}
                    art.write_json(exp_file, doc)
                    _check_identity(cfg, None, plan, exp_dir, overwrite, log, records)  # runs vs the choices
                for rcfg in todo:
                    i = plan.index(rcfg) + 1
                    run_dir = exp_dir / rcfg.run_id
                    if cfg.tuned:
                        if rcfg.model not in records:  # its tuning failed: said above, counted as failed
                            progress.run_finished()
                            continue
                        rcfg = tuning.apply(rcfg, records[rcfg.model]["chosen"], records[rcfg.model])
                    if run_is_finished(run_dir):
                        log(f"[{i}/{len(plan)}] {rcfg.run_id}: finished earlier, skipped")
                        continue
                    try:
                        _train_one(rcfg, i, plan, data, run_dir, pidx, status, progress, should_stop, log,
                                   train_run, Cancelled, dist)
                    except TrainingFailed as exc:  # this run has no result; the others still can
                        failed.append(rcfg.run_id)
                        progress.run_finished()
                        log(f"    {rcfg.run_id}: FAILED: {exc}")
            maps.end_background(log)
            doc["updated"], doc["wall_seconds_last_invocation"] = now_iso(), time.perf_counter() - t_exp
            art.write_json(exp_file, doc)
            if failed:
                status.write(force=True, state="failed", progress=1.0, eta_seconds=0,
                             message=f"{len(failed)} of {len(plan)} runs failed: {', '.join(failed)}")
                raise TrainingFailed(f"{len(failed)} of {len(plan)} runs failed ({', '.join(failed)}); "
                                     "each run's status.json says why, the other runs finished")
            status.write(force=True, state="finished", message=f"{len(plan)} runs finished", eta_seconds=0,
                         progress=1.0)
            return exp_dir
        except Cancelled:
            status.final(state="cancelled", message="cancelled; finished runs and epochs are kept")
            _remove_if_never_started(exp_dir)
            raise
        except KeyboardInterrupt:
            if all(run_is_finished(exp_dir / r.run_id) for r in plan):  # it came after the last run was saved
                status.final(state="finished", message=f"{len(plan)} runs finished", eta_seconds=0, progress=1.0)
            else:
                status.final(state="interrupted", message="interrupted; finished runs and epochs are kept")
                _remove_if_never_started(exp_dir)
            raise
        except TrainingFailed:
            raise
        except BaseException as exc:
            status.final(state="failed", message=f"{type(exc).__name__}: {exc}")
            _remove_if_never_started(exp_dir)
            raise
        finally:  # stopped early: the maps of the runs finished so far, unless cancelled
            maps.end_background(log, wait=status.base.get("state") not in ("cancelled", "interrupted"))


def _tune(cfg: ExperimentConfig, models: list[str], n_grid: dict, data, exp_dir: Path, status, progress,
          should_stop, log, failed: list[str]) -> dict:
    """Each model's tuning trials on this (the first) data seed's split: model -> record. A model
    whose every trial diverged gets no record; its runs are listed as failed."""
    from saml_core import tuning
    from saml_core.models import registry

    records = {}
    for j, model in enumerate(models):
        label = registry.get(model).label
        log(f"[tune {j + 1}/{len(models)}] {label}: {n_grid[model]} settings on data seed {cfg.data_seeds[0]}, "
            f"model seed {cfg.first_seed}, chosen on validation AUC")

        def start(i, n, point, label=label):
            status.write(force=True, phase="tuning", run_id=None, epoch=0, step=0, submodel=None,
                         message=f"tuning {label}: setting {i + 1}/{n} ({tuning.describe(point)})")

        def on_progress(e: dict):
            fraction, eta = progress.update(e)
            status.write(force=bool(e.get("epoch_finished")), progress=fraction, eta_seconds=eta,
                         submodel=e.get("submodel"), **{k: e.get(k) for k in ("epoch", "epochs", "step", "steps",
                                                                               "loss")})

        def done():
            progress.run_finished()
            status.write(force=True, progress=progress.fraction, eta_seconds=progress.eta())

        try:
            records[model] = tuning.tune(cfg.tuning_base(model), data, exp_dir, should_stop=should_stop, log=log,
                                         on_trial_start=start, on_progress=on_progress, on_trial_done=done)
        except tuning.TuningFailed as exc:
            log(f"    tuning {model}: FAILED: {exc}")
            failed.extend(r.run_id for r in cfg.plan() if r.model == model)
    status.write(force=True, phase="training")
    return records


def _experiment_doc(cfg: ExperimentConfig, previous: dict | None, plan: list[RunConfig], command: str | None) -> dict:
    from saml_core.data import registry as datasets

    previous = previous or {}
    run_ids = list(previous.get("runs", []))
    run_ids += [r.run_id for r in plan if r.run_id not in run_ids]
    entry = datasets.get(cfg.dataset)
    return {**previous, "name": cfg.name, "dataset": cfg.dataset, "dataset_options": cfg.dataset_options,
            "dataset_kind": previous.get("dataset_kind", entry.kind), "created": previous.get("created", now_iso()),
            "updated": now_iso(), "command": command or previous.get("command"), "config": cfg.to_dict(),
            "runs": run_ids, "splits": dict(previous.get("splits") or {}),
            "data_seeds": sorted(set(previous.get("data_seeds") or []) | set(cfg.data_seeds))}


def _record_split(doc: dict, exp_dir: Path, cfg: ExperimentConfig, data, data_seed: int) -> None:
    """experiment.json fields of one data seed (kept from an earlier invocation where present:
    the probe subset must not move under finished runs), then the experiment-level summary."""
    from saml_core.probes import probe_index

    names = list(data.spec.scenario_names)
    if doc.get("scenario_names") not in (None, names):
        raise ConfigError(f"data seed {data_seed} gives other scenarios ({', '.join(names)}) than the experiment's "
                          f"({', '.join(doc['scenario_names'])}), e.g. after dropping a small one; use one data seed "
                          "or change min_positives")
    key = str(data_seed)
    old = doc["splits"].get(key) or {}
    facts = dataset_facts(data)
    facts["probe_index"] = old.get("probe_index") or probe_index(data.test, cfg.probe_size, seed=0).tolist()
    facts["train_settings"] = train_settings(cfg, data)
    doc["splits"][key] = facts
    art.save_npz(exp_dir / f"test_labels-d{data_seed}.npz",
                 {"label": data.test.label.numpy().astype(np.int8),
                  "scenario": data.test.scenario.numpy().astype(np.int16)})
    doc.update({"dataset_kind": data.kind, "dataset_info": data.info, "scenario_names": names,
                "scenario_noun": list(data.scenario_noun),
                "true_similarity": None if data.true_similarity is None else np.asarray(data.true_similarity, float),
                "scenario_groups": data.info.get("scenario_groups"),
                "data_similarity_field": data.category_field,
                "train_settings": doc["splits"][str(min(int(k) for k in doc["splits"]))]["train_settings"]})
    doc.update(_combine_facts({k: v for k, v in doc["splits"].items()}, names))


def _train_one(rcfg, i, plan, data, run_dir, pidx, status, progress, should_stop, log, train_run, Cancelled,
               dist=None):
    from saml_core.models import registry

    log(f"[{i}/{len(plan)}] {rcfg.run_id}: training ({rcfg.label})")
    status.write(force=True, run_id=rcfg.run_id, run_index=i, epoch=0, step=0, submodel=None,
                 message=f"training {rcfg.label}")
    run_status = StatusWriter([run_dir / "status.json"], {"state": "running", "run_id": rcfg.run_id})

    def on_progress(e: dict):
        fields = {k: e.get(k) for k in ("epoch", "epochs", "step", "steps", "loss")}
        fraction, eta = progress.update(e)
        sub = e.get("submodel")
        msg = f"training {rcfg.label}" + (f" — {sub} ({e['submodel_index']}/{e['n_submodels']})" if sub else "")
        force = bool(e.get("epoch_finished"))
        status.write(force=force, message=msg, progress=fraction, eta_seconds=eta, submodel=sub, **fields)
        run_status.write(force=force, message=msg, **fields)

    try:
        if dist is not None and not callable(registry.get(rcfg.model).fit):  # data-parallel with the others
            with dist.training({"run": rcfg.to_dict(), "run_dir": str(run_dir)}):
                metrics = train_run(rcfg, data, run_dir, progress=on_progress, should_stop=should_stop,
                                    probe_index=pidx, dist=dist)
        else:  # e.g. the LR baseline's own fit (sklearn): here alone, the others wait
            metrics = train_run(rcfg, data, run_dir, progress=on_progress, should_stop=should_stop, probe_index=pidx)
    except Cancelled:
        run_status.final(state="cancelled", message="cancelled; finished epochs kept")
        raise
    except KeyboardInterrupt:
        run_status.final(state="interrupted", message="interrupted; finished epochs kept")
        raise
    except Exception as exc:
        run_status.final(state="failed", message=f"{type(exc).__name__}: {exc}")
        raise
    progress.run_finished()
    status.write(force=True, progress=progress.fraction, eta_seconds=progress.eta())
    run_status.write(force=True, state="finished", message=f"test AUC {metrics['overall']['auc']:.4f}")
    log(f"    {rcfg.run_id}: test AUC {metrics['overall']['auc']:.4f} "
        f"({metrics['epochs_run']} epochs, {metrics['train_seconds']:.0f}s)")


def read_spec(path: str | Path) -> ExperimentConfig:
    """An experiment specification file (JSON of `ExperimentConfig.to_dict()`), validated."""
    from saml_core.config import read_spec_file

    return read_spec_file(path, ExperimentConfig.from_dict, "experiment specification")
