"""Experiments: a group of runs on the same data split (docs/ARTIFACTS.md).

The default comparison set is the paper's (Tables III/IV): BST-Individual, BST, SAML and its
three ablations. Options add seeds and the sensitivity sweeps of Fig. 2 (embedding size,
attention heads, MLP depth; BST vs SAML). Re-running an experiment skips finished runs and
resumes unfinished ones from their last finished epoch.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from saml_core import artifacts as art
from saml_core import evaluate as ev
from saml_core.config import ConfigError, ModelConfig, RunConfig, TrainConfig, VARIANTS, run_id_for

DEFAULT_RUNS = ("bst_individual", "bst", "saml:full", "saml:no_gate", "saml:no_aux", "saml:no_gate_mut")

# The shipped demo (`python -m saml_core demo`, also the dashboard's "Build the demo"): the
# default comparison set on both datasets, stored compactly -- float16 weights and 100 probe
# samples through every branch -- so that the two experiments together stay under 30 MB.
DEMO_EXPERIMENTS = (("demo", "synthetic-countries"), ("taobao-demo", "taobao-sample"))
DEMO_OPTIONS = ("--weights-dtype", "float16", "--probe-hidden-all", "100")
SWEEPS = {"emb": (8, 12, 16, 24, 32), "heads": (4, 8, 12, 16), "depth": (2, 3, 4, 5)}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_runs(text: str | list[str] | tuple) -> list[tuple[str, str | None]]:
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        model, _, variant = item.partition(":")
        if model not in ("saml", "bst", "bst_individual"):
            raise ConfigError(f"--runs: unknown model {model!r} in {item!r} (saml:VARIANT, bst, bst_individual)")
        if model == "saml":
            variant = variant or "full"
            if variant not in VARIANTS:
                raise ConfigError(f"--runs: unknown SAML variant {variant!r} (one of {', '.join(VARIANTS)})")
        elif variant:
            raise ConfigError(f"--runs: {model} takes no variant (got {item!r})")
        out.append((model, variant or None))
    if not out:
        raise ConfigError("--runs is empty")
    return out


def depth_mlp(base: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """MLP of `depth` layers continuing the base sizes by halving (min 8)."""
    sizes = list(base[:depth])
    while len(sizes) < depth:
        sizes.append(max(8, sizes[-1] // 2))
    return tuple(sizes)


@dataclass
class ExperimentConfig:
    name: str
    dataset: str = "synthetic-countries"
    dataset_options: dict = field(default_factory=dict)  # kwargs of load_dataset
    runs: list = field(default_factory=lambda: list(DEFAULT_RUNS))
    seeds: int = 1
    first_seed: int = 0  # seeds first_seed .. first_seed + seeds - 1
    sweep: str | None = None
    model_config: ModelConfig = field(default_factory=ModelConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    probe_size: int = 3000
    probe_hidden_all: int = 300

    def __post_init__(self):
        if not self.name or any(c in self.name for c in "/\\") or self.name.startswith("."):
            raise ConfigError(f"invalid experiment name {self.name!r} (no slashes, not starting with '.')")
        if self.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {self.seeds}")
        if self.sweep is not None and self.sweep not in SWEEPS:
            raise ConfigError(f"--sweep must be one of {', '.join(SWEEPS)}, got {self.sweep!r}")

    def plan(self) -> list[RunConfig]:
        """Every run of the experiment, in training order."""
        pairs = parse_runs(self.runs)
        variants: list[tuple[str, ModelConfig]] = [("", self.model_config)]
        if self.sweep == "emb":
            variants = [(f"-emb{v}", dataclasses.replace(self.model_config, d_g=v)) for v in SWEEPS["emb"]]
        elif self.sweep == "heads":
            variants = [(f"-heads{v}", dataclasses.replace(self.model_config, heads=v)) for v in SWEEPS["heads"]]
        elif self.sweep == "depth":
            variants = [(f"-depth{v}", dataclasses.replace(self.model_config, mlp=depth_mlp(self.model_config.mlp, v),
                                                           mutual_layers=None)) for v in SWEEPS["depth"]]
        runs = []
        for seed in range(self.first_seed, self.first_seed + self.seeds):
            for suffix, mcfg in variants:
                for model, variant in pairs:
                    runs.append(RunConfig(
                        run_id=run_id_for(model, variant, seed, suffix), model=model, variant=variant, seed=seed,
                        experiment=self.name, dataset=self.dataset, dataset_options=dict(self.dataset_options),
                        model_config=mcfg, train_config=self.train_config, probe_size=self.probe_size,
                        probe_hidden_all=self.probe_hidden_all))
        return runs

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model_config"]["mlp"] = list(self.model_config.mlp)
        return d


class StatusWriter:
    """experiment_status.json (+ an extra --status-file), written atomically, throttled."""

    def __init__(self, paths: list[Path], base: dict, min_interval: float = 0.5):
        self.paths, self.base, self.min_interval = paths, dict(base), min_interval
        self._last = 0.0

    def write(self, force: bool = False, **fields) -> None:
        self.base.update(fields)
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        doc = {**self.base, "updated": now_iso(), "pid": os.getpid()}
        for p in self.paths:
            art.write_json(p, doc)


def dataset_facts(data) -> dict:
    """experiment.json fields derived from the data (shares, counts, oracle, similarities)."""
    names = list(data.spec.scenario_names)
    k = len(names)
    tr_s = data.train.scenario.numpy()
    te_s, te_y = data.test.scenario.numpy(), data.test.label.numpy()
    share = np.bincount(tr_s, minlength=k) / max(len(tr_s), 1)
    facts = {
        "scenario_names": names,
        "traffic_share": {n: float(share[i]) for i, n in enumerate(names)},
        "test_counts": {n: {"n": int((te_s == i).sum()), "positives": int(te_y[te_s == i].sum())}
                        for i, n in enumerate(names)},
        "oracle_auc": None, "true_similarity": None, "data_similarity": None,
    }
    if data.test.oracle_prob is not None:
        op = data.test.oracle_prob.numpy()
        per = ev.scenario_metrics(te_y, op, te_s, names, with_ci=False)
        facts["oracle_auc"] = {n: per["per_scenario"][n]["auc"] for n in names}
        facts["oracle_auc_overall"] = per["overall"]["auc"]
    if data.true_similarity is not None:
        facts["true_similarity"] = np.asarray(data.true_similarity, dtype=float)
    if data.category_field is not None:
        ci = data.spec.cat_index(data.category_field)
        facts["data_similarity"] = ev.data_similarity(data.train.cat[:, ci].numpy(), data.train.label.numpy(), tr_s, k)
        facts["data_similarity_field"] = data.category_field
    return facts


def run_is_finished(run_dir: Path) -> bool:
    try:
        art.read_json(run_dir / "metrics.json")
        return (run_dir / "model.pt").exists()
    except art.ArtifactError:
        return False


def run_experiment(cfg: ExperimentConfig, root: str | Path, *, status_file: str | Path | None = None,
                   should_stop: Callable[[], bool] | None = None, command: str | None = None,
                   log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> Path:
    """Train every planned run that is not finished yet; returns the experiment directory."""
    from saml_core.data import load_dataset
    from saml_core.probes import probe_index
    from saml_core.train import Cancelled, train_run

    exp_dir = Path(root) / cfg.name
    exp_dir.mkdir(parents=True, exist_ok=True)
    plan = cfg.plan()
    paths = [exp_dir / "experiment_status.json"] + ([Path(status_file)] if status_file else [])
    status = StatusWriter(paths, {"state": "running", "experiment": cfg.name, "run_id": None, "run_index": 0,
                                  "n_runs": len(plan), "epoch": 0, "epochs": cfg.train_config.epochs, "step": 0,
                                  "steps": 0, "loss": None, "eta_seconds": None, "message": "loading data"})
    status.write(force=True)
    try:
        exp_file = exp_dir / "experiment.json"
        previous = art.read_json(exp_file) if exp_file.exists() else None
        if previous is not None and (previous.get("dataset") != cfg.dataset
                                     or previous.get("dataset_options", {}) != cfg.dataset_options):
            raise ConfigError(
                f"experiment {cfg.name!r} already exists with dataset {previous.get('dataset')!r} "
                f"{previous.get('dataset_options', {})}; choose another --name")
        data = load_dataset(cfg.dataset, **cfg.dataset_options)
        if previous is not None and previous.get("probe_index") is not None:
            pidx = np.asarray(previous["probe_index"], dtype=np.int64)
        else:
            pidx = probe_index(data.test, cfg.probe_size, seed=0)
        art.save_npz(exp_dir / "test_labels.npz", {"label": data.test.label.numpy().astype(np.int8),
                                                   "scenario": data.test.scenario.numpy().astype(np.int16)})
        run_ids = list(previous.get("runs", [])) if previous else []
        run_ids += [r.run_id for r in plan if r.run_id not in run_ids]
        doc = {"name": cfg.name, "dataset": cfg.dataset, "dataset_options": cfg.dataset_options,
               "dataset_kind": data.kind, "dataset_info": data.info, **dataset_facts(data),
               "created": (previous or {}).get("created", now_iso()), "updated": now_iso(),
               "command": command or (previous or {}).get("command"), "config": cfg.to_dict(),
               "runs": run_ids, "probe_index": pidx.tolist()}
        art.write_json(exp_file, doc)
        t_exp = time.perf_counter()
        for i, rcfg in enumerate(plan, start=1):
            run_dir = exp_dir / rcfg.run_id
            if run_is_finished(run_dir):
                log(f"[{i}/{len(plan)}] {rcfg.run_id}: finished earlier, skipped")
                continue
            log(f"[{i}/{len(plan)}] {rcfg.run_id}: training ({rcfg.label})")
            status.write(force=True, run_id=rcfg.run_id, run_index=i, epoch=0, step=0,
                         message=f"training {rcfg.label}")
            run_status = StatusWriter([run_dir / "status.json"], {"state": "running", "run_id": rcfg.run_id})

            def progress(e: dict, rcfg=rcfg):
                fields = {k: e.get(k) for k in ("epoch", "epochs", "step", "steps", "loss", "eta_seconds")}
                msg = f"training {rcfg.label}" + (f" [{e['submodel']}]" if "submodel" in e else "")
                status.write(force=bool(e.get("epoch_finished")), message=msg, **fields)
                run_status.write(force=bool(e.get("epoch_finished")), message=msg, **fields)

            try:
                metrics = train_run(rcfg, data, run_dir, progress=progress, should_stop=should_stop, probe_index=pidx)
            except Cancelled:
                run_status.write(force=True, state="cancelled", message="cancelled; finished epochs kept")
                raise
            except Exception as exc:
                run_status.write(force=True, state="failed", message=f"{type(exc).__name__}: {exc}")
                raise
            run_status.write(force=True, state="finished", message=f"test AUC {metrics['overall']['auc']:.4f}")
            log(f"    {rcfg.run_id}: test AUC {metrics['overall']['auc']:.4f} "
                f"({metrics['epochs_run']} epochs, {metrics['train_seconds']:.0f}s)")
        doc["updated"], doc["wall_seconds_last_invocation"] = now_iso(), time.perf_counter() - t_exp
        art.write_json(exp_file, doc)
        status.write(force=True, state="finished", message=f"{len(plan)} runs finished", eta_seconds=0)
        return exp_dir
    except Cancelled:
        status.write(force=True, state="cancelled", message="cancelled; finished runs and epochs are kept")
        raise
    except BaseException as exc:
        status.write(force=True, state="failed", message=f"{type(exc).__name__}: {exc}")
        raise
