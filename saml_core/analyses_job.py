"""The analyses job: the transfer matrix and input importance of an experiment's finished runs that
lack them (trained before these existed, or whose files were removed), computed from each run's
stored model.pt on its data seed's test split.

`AnalysesSpec` is the job's validated specification (what `saml_core.jobs` stores and the worker
runs as `python -m saml_core analyses --spec FILE`); `submit` is what the dashboard's button calls;
`compute_missing` does the work (the `analyses` command). Importing this module loads no torch.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from saml_core.config import ConfigError, check_name, read_spec_file

KIND = "analyses"
MAX_RUNS = 10_000


@dataclass(frozen=True)
class AnalysesSpec:
    """Compute the missing analyses of experiment `experiment` (of the runs `runs` only, when given)."""

    experiment: str
    runs: tuple[str, ...] | None = None
    kind = KIND

    def __post_init__(self):
        check_name(self.experiment)
        if self.runs is not None:
            if not isinstance(self.runs, (list, tuple)) or not 1 <= len(self.runs) <= MAX_RUNS:
                raise ConfigError(f"runs must be a list of 1 to {MAX_RUNS:,} run ids")
            for r in self.runs:
                check_name(r, "run id")
            object.__setattr__(self, "runs", tuple(self.runs))

    @property
    def name(self) -> str:  # the experiment the job writes into (jobs.Job.experiment)
        return self.experiment

    dataset = None  # read from the experiment when the job runs

    def to_dict(self) -> dict:
        return {"kind": KIND, "experiment": self.experiment, "runs": None if self.runs is None else list(self.runs)}

    @classmethod
    def from_dict(cls, d) -> "AnalysesSpec":
        """Rebuild and validate (a job specification is untrusted input)."""
        if not isinstance(d, dict):
            raise ConfigError(f"an analyses specification must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"kind", "experiment", "runs"})
        if unknown:
            raise ConfigError(f"unknown analyses option(s): {', '.join(map(str, unknown))}")
        if d.get("kind") != KIND:
            raise ConfigError(f"an analyses specification has kind {KIND!r}, got {d.get('kind')!r:.40}")
        return cls(experiment=d.get("experiment"), runs=d.get("runs"))


def submit(queue, experiment: str, runs: list[str] | None = None, title: str | None = None):
    """Queue the analyses job of `experiment` on a `saml_core.jobs.JobQueue` (the dashboard's
    button); returns the Job. ConfigError when the name is not valid."""
    spec = AnalysesSpec(experiment, tuple(runs) if runs else None)
    return queue.submit(spec, title or f"Transfer and importance for {experiment}")


def read_spec(path) -> AnalysesSpec:
    return read_spec_file(path, AnalysesSpec.from_dict, "analyses specification")


def compute_missing(root, spec: AnalysesSpec, *, device: str = "auto", threads: int = 0,
                    status_file=None, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> dict:
    """Compute what the runs of the experiment lack (`analyses.missing`), data seed by data seed,
    holding the experiment's lock (no training writes to it meanwhile). Returns {run id: files
    written}. A run named in `spec.runs` that is not in the experiment is an error; one that lacks
    nothing is skipped."""
    from saml_core import analyses
    from saml_core.experiment_state import StatusWriter
    from saml_core.store import load_experiment
    from saml_core.runtime import resolve_device, setup_cpu

    exp = load_experiment(root, spec.experiment)
    if spec.runs is not None:
        unknown = [r for r in spec.runs if r not in {x.run_id for x in exp.runs}]
        if unknown:
            raise ConfigError(f"experiment {exp.name!r} has no run(s) {', '.join(unknown)}")
    todo = {rid: what for rid, what in analyses.missing(exp).items() if spec.runs is None or rid in spec.runs}
    dev = resolve_device(device)
    if dev.type == "cpu":
        setup_cpu(threads)
    status = StatusWriter([Path(status_file)] if status_file else [],
                          {"state": "running", "experiment": exp.name, "progress": 0.0, "n_runs": len(todo),
                           "run_index": 0, "message": "starting"})
    try:
        return _compute(exp, todo, dev, status, log)
    except BaseException as exc:
        status.final(state="failed", message=f"{type(exc).__name__}: {exc}")
        raise


def _compute(exp, todo: dict, dev, status, log) -> dict:
    import torch

    from saml_core.data import load_dataset
    from saml_core.experiment_state import ExperimentLock
    from saml_core.models import registry as models
    from saml_core.run_analyses import scoring_batch, write_run_analyses
    from saml_core.train import load_run_model, predict

    done: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    with ExperimentLock(exp.path):
        status.write(force=True)
        if not todo:
            log(f"{exp.name}: every run that keeps its weights has its transfer matrix and importance")
        runs = [r for r in exp.runs if r.run_id in todo]
        for d in sorted({r.data_seed for r in runs}):
            status.write(force=True, message=f"loading data (data seed {d})")
            data = load_dataset(exp.dataset, seed=d, **(exp.raw.get("dataset_options") or {}))
            if list(data.spec.scenario_names) != exp.scenario_names:
                raise ConfigError(f"{exp.dataset} (data seed {d}) now gives other scenarios than the experiment's: "
                                  "its data changed since it was trained")
            for run in (r for r in runs if r.data_seed == d):
                i = len(done) + 1
                status.write(force=True, run_id=run.run_id, run_index=i, progress=(i - 1) / len(todo),
                             message=f"{run.run_id}: {', '.join(todo[run.run_id])}")
                log(f"[{i}/{len(todo)}] {run.run_id}: {', '.join(todo[run.run_id])}")
                _, model = load_run_model(run.path, spec=data.spec)
                model.to(dev)
                batch = scoring_batch(dev, int((run.config.get("train_config") or {}).get("eval_batch_size") or 8192))
                done[run.run_id] = write_run_analyses(
                    models.get(run.model), data, run.path, lambda split, m=model: predict(m, split, dev, batch),
                    train_seconds=run.metrics.get("train_seconds"), keep_weights=True,
                    only=tuple(todo[run.run_id]), log=log)
                del model
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
        status.write(force=True, state="finished", progress=1.0, eta_seconds=0,
                     message=f"{len(done)} run{'s' * (len(done) != 1)} completed in {time.perf_counter() - t0:.0f} s")
    return done
