"""Read API over `artifacts/` for the dashboard and the `report` command (docs/ARTIFACTS.md): the
experiments and their runs as stored. The report over them is `report.py`; re-evaluating a
stored model (which loads data and torch) is `reevaluate.py`.

Imports no torch at import time, and never writes: reading an experiment changes nothing on
disk. One broken run never prevents the others from loading: its `Run.error` says what is wrong
and names the file; its `state` says where it stands (finished, running, interrupted, ...).
Reads stay inside the artifacts root: an experiment folder, a run folder or a file in them that
is a link leading outside it is not followed (the experiment or run is shown broken, saying so),
and only regular files are read (`artifacts.open_regular`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from saml_core import artifacts as art
from saml_core import liveness
from saml_core.artifacts import ArtifactError
from saml_core.config import MAX_SEED

__all__ = ["ArtifactError", "Experiment", "ExperimentSummary", "Run", "default_root", "list_experiments",
           "load_experiment", "experiment_path"]

# run states: finished | running | queued | cancelled | interrupted | failed | broken
STATE_WORDS = {"finished": "finished", "running": "training now", "queued": "waiting to be trained",
               "cancelled": "cancelled (finished epochs kept; resume to continue)",
               "interrupted": "interrupted (the training process stopped; resume to continue)",
               "failed": "failed", "broken": "cannot be read"}


# The project's own artifacts/ folder: the CLI writes, and the dashboard reads, the same
# experiments whatever the working directory.
PROJECT_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def default_root() -> Path:
    """$SAML_ARTIFACTS (a relative path counts from the working directory), else the project's
    artifacts/ folder."""
    env = os.environ.get("SAML_ARTIFACTS", "").strip()
    return Path(env).expanduser() if env else PROJECT_ARTIFACTS


def _root(root) -> Path:
    return default_root() if root is None else Path(root)


# Every file of a run folder that the readers open: one linked outside the root breaks the run.
RUN_FILES = ("status.json", "config.json", "history.json", "metrics.json", "model.pt", "predictions.npz",
             "probes.npz", "maps.npz", "transfer.json", "importance.json")


def check_inside(path: Path, root) -> None:
    """ArtifactError unless `path`, links followed, lies inside the artifacts root (a folder of
    a shared root may be a link to anywhere on the machine; readers do not go there)."""
    base = Path(root).resolve()
    try:
        real = Path(path).resolve()
    except (OSError, RuntimeError) as exc:  # a link loop
        raise ArtifactError(path, f"cannot be resolved ({exc}); not read") from None
    if real != base and base not in real.parents:
        raise ArtifactError(path, f"a link to {real}, outside the artifacts root {base}; not followed")


def experiment_path(root, name: str) -> Path:
    """The folder of experiment `name` under the artifacts root; a name that is not a plain
    folder name (a path, '..', an absolute path) is refused: reads stay inside the root."""
    from saml_core.config import ConfigError, check_name

    try:
        check_name(name)
    except ConfigError as exc:
        raise ArtifactError(_root(root) / str(name)[:80], f"not an experiment name ({exc})") from None
    return _root(root) / name


@dataclass
class ExperimentSummary:
    name: str
    path: Path
    dataset: str | None
    dataset_kind: str | None
    scenario_names: list[str]
    n_runs: int
    n_finished: int
    created: str | None
    state: str
    error: str | None = None
    sweep: str | None = None  # the size a sensitivity sweep varies (config "sweep"), None otherwise


@dataclass
class Run:
    run_id: str
    path: Path
    model: str | None = None
    seed: int | None = None
    data_seed: int = 0
    sweep: dict | None = None
    label: str | None = None
    role: str = "baseline"
    config: dict = field(default_factory=dict)
    metrics: dict | None = None
    history: list[dict] = field(default_factory=list)
    status: dict | None = None
    state: str = "queued"
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.error is None and self.metrics is not None

    @property
    def group(self) -> str:
        """Runs that differ only by seeds: model id (+ sweep setting)."""
        return f"{self.model}" + (f"-{self.sweep['name']}{self.sweep['value']}" if self.sweep else "")

    @property
    def has_probes(self) -> bool:
        return (self.path / "probes.npz").exists()

    def load_probes(self) -> dict[str, np.ndarray]:
        arrays = art.load_npz(self.path / "probes.npz")
        art.check_probes(self.path / "probes.npz", arrays, len(self.config.get("feature_spec", {})
                                                               .get("scenario_names", [])) or None)
        return arrays

    def load_maps(self) -> dict[str, np.ndarray] | None:
        """maps.npz (2-D maps stored by the training job), or None when absent or unreadable: the
        dashboard then computes what it needs."""
        path = self.path / "maps.npz"
        if not path.exists():
            return None
        try:
            return {k: v for k, v in art.load_npz(path).items() if v.ndim == 2 and v.shape[1] == 2}
        except ArtifactError:
            return None

    def load_predictions(self) -> np.ndarray | None:
        p = self.path / "predictions.npz"
        if not p.exists():
            return None
        pred = art.load_npz(p).get("pred")
        if pred is None or pred.ndim != 1:
            raise ArtifactError(p, "no 1-D 'pred' array")
        return pred


@dataclass
class Experiment:
    name: str
    path: Path
    dataset: str
    dataset_kind: str
    dataset_info: dict
    scenario_names: list[str]
    scenario_noun: tuple[str, str]
    traffic_share: dict
    test_counts: dict
    oracle_auc: dict | None
    true_similarity: np.ndarray | None
    data_similarity: np.ndarray | None
    created: str | None
    command: str | None
    status: dict | None
    state: str
    runs: list[Run]
    data_seeds: list[int]
    raw: dict

    def run(self, run_id: str) -> Run:
        for r in self.runs:
            if r.run_id == run_id:
                return r
        raise KeyError(f"experiment {self.name!r} has no run {run_id!r}")

    @property
    def dropped_scenarios(self) -> list[dict]:
        seen, out = set(), []
        for split in (self.raw.get("splits") or {}).values():
            for d in split.get("dropped_scenarios") or []:
                if isinstance(d, dict) and d.get("scenario") not in seen:
                    seen.add(d.get("scenario"))
                    out.append(d)
        return out


def _read_status(path: Path, root=None) -> dict | None:
    try:
        if root is not None and os.path.lexists(path):
            check_inside(path, root)
        return art.read_json(path)
    except ArtifactError:
        return None


def live_state(status: dict | None) -> str | None:
    """A status file's state, with "running" turned into "interrupted" when its writer is gone."""
    if not status:
        return None
    state = status.get("state")
    if state == "running" and liveness.alive(status) is False:
        return "interrupted"
    return state if isinstance(state, str) else None


def load_run(path: Path, scenario_names: list[str] | None = None, root=None) -> Run:
    """root: the artifacts root (default: the folder above the experiment's)."""
    from saml_core.models import registry as models

    run = Run(run_id=path.name, path=path)
    try:
        root = path.parent.parent if root is None else root
        check_inside(path, root)
        for name in RUN_FILES:
            if os.path.lexists(path / name):
                check_inside(path / name, root)
    except ArtifactError as exc:
        run.state, run.error = "broken", str(exc)
        return run
    run.status = _read_status(path / "status.json")
    status_state = live_state(run.status)
    if not (path / "config.json").exists():
        run.state = status_state if status_state in ("cancelled", "interrupted", "failed") else "queued"
        run.error = f"{path.name}: {STATE_WORDS[run.state]}"
        return run
    try:
        cfg = art.read_json(path / "config.json")
        art.check_fields(path / "config.json", cfg, {"model": str, "seed": int})
        for key in ("seed", "data_seed"):  # shown in tables: a 100-digit seed is a corrupted file
            art.check_count(path / "config.json", f"field '{key}'", cfg.get(key), MAX_SEED)
        run.config = cfg
        run.model, run.seed = cfg["model"], cfg["seed"]
        run.data_seed = cfg.get("data_seed", 0) if isinstance(cfg.get("data_seed", 0), int) else 0
        run.sweep = cfg.get("sweep") if isinstance(cfg.get("sweep"), dict) else None
        entry = models.find(run.model)
        run.label = entry.label if entry else str(cfg.get("label") or run.model)
        run.role = entry.role if entry else "baseline"
    except ArtifactError as exc:
        run.state, run.error = "broken", str(exc)
        return run
    try:
        if (path / "history.json").exists():
            run.history = [e for e in art.read_json(path / "history.json").get("epochs", []) if isinstance(e, dict)]
    except ArtifactError as exc:
        run.state, run.error = "broken", str(exc)
        return run
    if not (path / "metrics.json").exists():
        run.state = status_state if status_state in ("running", "cancelled", "interrupted", "failed") else "queued"
        reason = (run.status or {}).get("message") if run.state == "failed" else None
        run.error = f"{path.name}: {STATE_WORDS[run.state]}" + (f": {reason}" if reason else "")
        return run
    try:
        metrics = art.read_json(path / "metrics.json")
        art.check_metrics(path / "metrics.json", metrics, scenario_names)
        if metrics.get("weights_kept", True) is not False:
            art.check_model_file(path / "model.pt", cfg, metrics.get("weight_shapes"))
        run.metrics, run.state = metrics, "finished"
    except ArtifactError as exc:
        run.metrics, run.state, run.error = None, "broken", str(exc)
    return run


def _matrix(x, path: Path, key: str, k: int):
    if x is None:
        return None
    try:
        m = np.array([[np.nan if v is None else v for v in row] for row in x], dtype=float)
    except (TypeError, ValueError):
        raise ArtifactError(path, f"field '{key}' is not a matrix of numbers") from None
    if m.shape != (k, k):
        raise ArtifactError(path, f"field '{key}' has shape {m.shape}, expected ({k}, {k})")
    return m


def load_experiment(root, name: str) -> Experiment:
    root = _root(root)
    path = experiment_path(root, name)
    file = path / "experiment.json"
    check_inside(path, root)
    check_inside(file, root)
    raw = art.read_json(file)
    art.check_fields(file, raw, {"name": str, "dataset": str, "scenario_names": list, "runs": list})
    names = [str(n) for n in raw["scenario_names"]]
    k = len(names)
    for key in ("traffic_share", "test_counts", "oracle_auc"):
        if raw.get(key) is not None and (not isinstance(raw[key], dict) or set(raw[key]) != set(names)):
            raise ArtifactError(file, f"field '{key}' does not list exactly the scenarios {names}")
    run_ids = raw["runs"]
    if not all(isinstance(r, str) and r and "/" not in r and not r.startswith(".") for r in run_ids):
        raise ArtifactError(file, "field 'runs' must list run folder names")
    status = _read_status(path / "experiment_status.json", root)
    noun = raw.get("scenario_noun")
    noun = tuple(noun) if isinstance(noun, list) and len(noun) == 2 and all(isinstance(w, str) for w in noun) \
        else ("scenario", "scenarios")
    return Experiment(
        name=raw["name"], path=path, dataset=raw["dataset"], dataset_kind=str(raw.get("dataset_kind") or "byo"),
        dataset_info=raw.get("dataset_info") if isinstance(raw.get("dataset_info"), dict) else {},
        scenario_names=names, scenario_noun=noun, traffic_share=raw.get("traffic_share") or {},
        test_counts=raw.get("test_counts") or {}, oracle_auc=raw.get("oracle_auc"),
        true_similarity=_matrix(raw.get("true_similarity"), file, "true_similarity", k),
        data_similarity=_matrix(raw.get("data_similarity"), file, "data_similarity", k),
        created=raw.get("created"), command=raw.get("command"), status=status,
        state=live_state(status) or "unknown", runs=[load_run(path / rid, names, root) for rid in run_ids],
        data_seeds=[d for d in raw.get("data_seeds", [0]) if isinstance(d, int)] or [0], raw=raw)


def _sweep_of(raw: dict) -> str | None:
    cfg = raw.get("config")
    sweep = cfg.get("sweep") if isinstance(cfg, dict) else None
    return sweep if isinstance(sweep, str) else None


def list_experiments(root=None) -> list[ExperimentSummary]:
    root = _root(root)
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                    and (p / "experiment.json").exists()):
        state = live_state(_read_status(d / "experiment_status.json", root)) or "unknown"
        try:
            check_inside(d, root)
            check_inside(d / "experiment.json", root)
            raw = art.read_json(d / "experiment.json")
            runs = raw.get("runs", [])
            if not isinstance(runs, list):
                raise ArtifactError(d / "experiment.json", "field 'runs' is not a list")
            n_fin = sum(1 for r in runs if isinstance(r, str) and (d / r / "metrics.json").exists())
            out.append(ExperimentSummary(
                name=d.name, path=d, dataset=raw.get("dataset"), dataset_kind=raw.get("dataset_kind"),
                scenario_names=list(raw.get("scenario_names") or []), n_runs=len(runs), n_finished=n_fin,
                created=raw.get("created"), state=state, sweep=_sweep_of(raw)))
        except ArtifactError as exc:
            out.append(ExperimentSummary(name=d.name, path=d, dataset=None, dataset_kind=None, scenario_names=[],
                                         n_runs=0, n_finished=0, created=None, state="unknown", error=str(exc)))
    return out
