"""Read API over `artifacts/` for the dashboard and the `report` command (docs/ARTIFACTS.md).

Imports no torch at import time. One broken run never prevents the others from loading: its
`Run.error` says what is wrong and names the file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from saml_core import artifacts as art
from saml_core import evaluate as ev
from saml_core.artifacts import ArtifactError

__all__ = ["ArtifactError", "Experiment", "ExperimentSummary", "Run", "default_root", "list_experiments",
           "load_experiment", "report", "reevaluate"]


def default_root() -> Path:
    return Path(os.environ.get("SAML_ARTIFACTS") or "artifacts")


def _root(root) -> Path:
    return default_root() if root is None else Path(root)


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


@dataclass
class Run:
    run_id: str
    path: Path
    model: str | None = None
    variant: str | None = None
    seed: int | None = None
    label: str | None = None
    config: dict = field(default_factory=dict)
    metrics: dict | None = None
    history: list[dict] = field(default_factory=list)
    status: dict | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.error is None and self.metrics is not None

    @property
    def has_probes(self) -> bool:
        return (self.path / "probes.npz").exists()

    def load_probes(self) -> dict[str, np.ndarray]:
        return art.load_npz(self.path / "probes.npz")

    def load_predictions(self) -> np.ndarray | None:
        p = self.path / "predictions.npz"
        return art.load_npz(p)["pred"] if p.exists() else None


@dataclass
class Experiment:
    name: str
    path: Path
    dataset: str
    dataset_kind: str
    dataset_info: dict
    scenario_names: list[str]
    traffic_share: dict
    test_counts: dict
    oracle_auc: dict | None
    true_similarity: np.ndarray | None
    data_similarity: np.ndarray | None
    created: str | None
    command: str | None
    status: dict | None
    runs: list[Run]
    raw: dict

    def run(self, run_id: str) -> Run:
        for r in self.runs:
            if r.run_id == run_id:
                return r
        raise KeyError(f"experiment {self.name!r} has no run {run_id!r}")


def _read_status(path: Path) -> dict | None:
    try:
        return art.read_json(path)
    except ArtifactError:
        return None


def load_run(path: Path) -> Run:
    run = Run(run_id=path.name, path=path)
    run.status = _read_status(path / "status.json")
    try:
        cfg = art.read_json(path / "config.json")
        run.config = cfg
        run.model, run.variant, run.seed, run.label = cfg.get("model"), cfg.get("variant"), cfg.get("seed"), cfg.get("label")
    except ArtifactError as exc:
        run.error = str(exc)
        return run
    hist = path / "history.json"
    try:
        if hist.exists():
            run.history = list(art.read_json(hist).get("epochs", []))
    except ArtifactError as exc:
        run.error = str(exc)
        return run
    if not (path / "metrics.json").exists():
        state = (run.status or {}).get("state", "not started")
        run.error = f"{path / 'metrics.json'}: run not finished (state: {state})"
        return run
    try:
        run.metrics = art.read_json(path / "metrics.json")
        if not (path / "model.pt").exists():
            raise ArtifactError(path / "model.pt", "file is missing")
    except ArtifactError as exc:
        run.metrics, run.error = None, str(exc)
    return run


def _matrix(x):
    if x is None:
        return None
    return np.array([[np.nan if v is None else v for v in row] for row in x], dtype=float)


def load_experiment(root, name: str) -> Experiment:
    path = _root(root) / name
    raw = art.read_json(path / "experiment.json")
    try:
        runs = [load_run(path / rid) for rid in raw["runs"]]
        return Experiment(
            name=raw["name"], path=path, dataset=raw["dataset"], dataset_kind=raw.get("dataset_kind"),
            dataset_info=raw.get("dataset_info") or {}, scenario_names=list(raw["scenario_names"]),
            traffic_share=raw.get("traffic_share") or {}, test_counts=raw.get("test_counts") or {},
            oracle_auc=raw.get("oracle_auc"), true_similarity=_matrix(raw.get("true_similarity")),
            data_similarity=_matrix(raw.get("data_similarity")), created=raw.get("created"),
            command=raw.get("command"), status=_read_status(path / "experiment_status.json"), runs=runs, raw=raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(path / "experiment.json", f"missing or malformed field ({exc})") from None


def list_experiments(root=None) -> list[ExperimentSummary]:
    root = _root(root)
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and (p / "experiment.json").exists()):
        status = _read_status(d / "experiment_status.json")
        try:
            raw = art.read_json(d / "experiment.json")
            runs = list(raw.get("runs", []))
            n_fin = sum(1 for r in runs if (d / r / "metrics.json").exists() and (d / r / "model.pt").exists())
            out.append(ExperimentSummary(
                name=d.name, path=d, dataset=raw.get("dataset"), dataset_kind=raw.get("dataset_kind"),
                scenario_names=list(raw.get("scenario_names", [])), n_runs=len(runs), n_finished=n_fin,
                created=raw.get("created"), state=(status or {}).get("state", "unknown")))
        except ArtifactError as exc:
            out.append(ExperimentSummary(name=d.name, path=d, dataset=None, dataset_kind=None, scenario_names=[],
                                         n_runs=0, n_finished=0, created=None, state="unknown", error=str(exc)))
    return out


# report --------------------------------------------------------------------------------------
def _baseline_for(run: Run, runs: list[Run]) -> Run | None:
    """BST run of the same seed and sweep setting (run_id bst<suffix>-s<seed>)."""
    if run.model == "bst":
        return None
    rid = run.run_id
    suffix = rid.rsplit("-s", 1)[0]
    for prefix in ("saml-" + (run.variant or ""), "bst_individual"):
        if suffix.startswith(prefix):
            suffix = suffix[len(prefix):]
            break
    target = f"bst{suffix}-s{run.seed}"
    for r in runs:
        if r.run_id == target and r.finished:
            return r
    return None


def report(root, name: str) -> dict:
    exp = load_experiment(root, name)
    test_label = test_scen = None
    rows = []
    for run in exp.runs:
        row = {"run_id": run.run_id, "model": run.model, "variant": run.variant, "seed": run.seed,
               "label": run.label, "error": run.error, "overall": None, "per_scenario": None,
               "relaimpr_vs_bst": None, "best_epoch": None, "epochs_run": None, "train_seconds": None}
        if run.finished:
            m = run.metrics
            row.update(overall=m["overall"], best_epoch=m.get("best_epoch"), epochs_run=m.get("epochs_run"),
                       train_seconds=m.get("train_seconds"),
                       per_scenario={s: dict(v) for s, v in m["per_scenario"].items()})
            for key in ("gate_mean", "similarity_recovery", "alpha_mean"):
                if key in m:
                    row[key] = m[key]
            base = _baseline_for(run, exp.runs)
            if base is not None:
                row["relaimpr_vs_bst"] = ev.relaimpr(m["overall"]["auc"], base.metrics["overall"]["auc"])
                pa, pb = _safe_preds(run), _safe_preds(base)
                if test_label is None and pa is not None:
                    test_label, test_scen = _test_labels(exp)
                for k, s in enumerate(exp.scenario_names):
                    cell = row["per_scenario"][s]
                    cell["relaimpr_vs_bst"] = ev.relaimpr(cell["auc"], base.metrics["per_scenario"][s]["auc"])
                    if pa is not None and pb is not None and test_label is not None and len(pa) == len(test_label):
                        msk = test_scen == k
                        t = ev.paired_delong(test_label[msk], pa[msk], pb[msk])
                        cell["p_vs_bst"] = t["p_value"]
        rows.append(row)
    doc = {"schema_version": art.SCHEMA_VERSION, "experiment": exp.name, "dataset": exp.dataset,
           "dataset_kind": exp.dataset_kind, "scenario_names": exp.scenario_names,
           "traffic_share": exp.traffic_share, "test_counts": exp.test_counts,
           "oracle_auc": exp.oracle_auc, "oracle_auc_overall": exp.raw.get("oracle_auc_overall"),
           "runs": rows, "summary": _summary(rows, exp.scenario_names)}
    return doc


def _safe_preds(run: Run):
    try:
        return run.load_predictions()
    except ArtifactError:
        return None


def _test_labels(exp: Experiment):
    """Test labels/scenarios in split order: test_labels.npz, else re-derived from the dataset."""
    cache = exp.path / "test_labels.npz"
    if cache.exists():
        try:
            z = art.load_npz(cache)
            return z["label"], z["scenario"]
        except ArtifactError:
            pass
    try:
        from saml_core.data import load_dataset

        data = load_dataset(exp.dataset, **(exp.raw.get("dataset_options") or {}))
    except Exception:
        return None, None
    label, scen = data.test.label.numpy().astype(np.int8), data.test.scenario.numpy().astype(np.int16)
    art.save_npz(cache, {"label": label, "scenario": scen})
    return label, scen


def _summary(rows: list[dict], names: list[str]) -> list[dict]:
    """Mean ± std over seeds per (label, sweep setting)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r["overall"] is None:
            continue
        key = r["run_id"].rsplit("-s", 1)[0]
        groups.setdefault(key, []).append(r)
    out = []
    for key, rs in groups.items():
        out.append({"group": key, "label": rs[0]["label"], "model": rs[0]["model"], "variant": rs[0]["variant"],
                    "n_seeds": len(rs), "auc": ev.mean_std(r["overall"]["auc"] for r in rs),
                    "logloss": ev.mean_std(r["overall"]["logloss"] for r in rs),
                    "relaimpr_vs_bst": ev.mean_std(r["relaimpr_vs_bst"] for r in rs),
                    "per_scenario": {s: ev.mean_std(r["per_scenario"][s]["auc"] for r in rs) for s in names}})
    return out


def report_markdown(doc: dict) -> str:
    names = doc["scenario_names"]
    lines = [f"# Experiment `{doc['experiment']}` — {doc['dataset']}", ""]
    lines += ["| run | model | seed | AUC | logloss | RelaImpr vs BST |", "|---|---|---|---|---|---|"]
    for r in doc["runs"]:
        if r["overall"] is None:
            lines.append(f"| {r['run_id']} | {r['label']} | {r['seed']} | — | — | {r['error']} |")
            continue
        ri = r["relaimpr_vs_bst"]
        lines.append(f"| {r['run_id']} | {r['label']} | {r['seed']} | {r['overall']['auc']:.4f} | "
                     f"{r['overall']['logloss']:.4f} | {'—' if ri is None else f'{ri:+.2f}%'} |")
    fin = [r for r in doc["runs"] if r["overall"] is not None]
    lines += ["", "Per-scenario AUC (95% DeLong CI); * = paired DeLong p < 0.05 vs BST", ""]
    head = "| scenario | share | n | pos |" + "".join(f" {r['run_id']} |" for r in fin)
    if doc.get("oracle_auc"):
        head += " oracle |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for s in names:
        tc = doc["test_counts"].get(s, {})
        line = f"| {s} | {doc['traffic_share'].get(s, 0):.3f} | {tc.get('n', '')} | {tc.get('positives', '')} |"
        for r in fin:
            c = r["per_scenario"][s]
            if c["auc"] is None:
                line += " — |"
                continue
            star = "*" if (c.get("p_vs_bst") is not None and c["p_vs_bst"] < 0.05) else ""
            ci = "" if c.get("ci_low") is None else f" [{c['ci_low']:.3f}, {c['ci_high']:.3f}]"
            line += f" {c['auc']:.4f}{star}{ci} |"
        if doc.get("oracle_auc"):
            o = doc["oracle_auc"].get(s)
            line += f" {o:.4f} |" if o is not None else " — |"
        lines.append(line)
    rec = [(r["run_id"], r["similarity_recovery"]) for r in fin if r.get("similarity_recovery")]
    if rec:
        lines += ["", "Similarity recovery (Spearman, mean alpha vs planted similarity, per mutual-unit layer):", ""]
        for rid, sr in rec:
            vals = ", ".join("—" if v is None else f"{v:+.3f}" for v in sr["spearman"])
            lines.append(f"- {rid}: {vals}")
    if any(s["n_seeds"] > 1 for s in doc["summary"]):
        lines += ["", "| group | seeds | AUC mean ± std |", "|---|---|---|"]
        for s in doc["summary"]:
            lines.append(f"| {s['group']} | {s['n_seeds']} | {s['auc']['mean']:.4f} ± {s['auc']['std']:.4f} |")
    return "\n".join(lines) + "\n"


def reevaluate(root, name: str, run_id: str, device: str = "cpu") -> dict:
    """Reload a run's model.pt, re-evaluate on the test split; metrics shaped like metrics.json
    (overall + per_scenario)."""
    import torch

    from saml_core.data import load_dataset
    from saml_core.train import evaluate_model, load_run_model

    exp = load_experiment(root, name)
    run_dir = exp.path / run_id
    data = load_dataset(exp.dataset, **(exp.raw.get("dataset_options") or {}))
    _, model = load_run_model(run_dir, spec=data.spec)
    return evaluate_model(model, data, torch.device(device))
