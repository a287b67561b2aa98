"""`python -m saml_core benchmark movielens:DIR`: the accuracy benchmark on a public log that anyone
can re-run (`bench` measures speed; this measures what the models reach).

What it trains, as experiments under fixed names in the artifacts root (PREFIX = `bench-ml100k`,
`bench-ml1m`, ... from the size of the log; `--prefix` overrides it):
- `PREFIX-<protocol>`: every registered model, tuned (`--tune`, docs/ENGINE.md: the same 9-setting
  budget for each, chosen on validation), `--seeds` model seeds (at least 5) on data seed 0, on
  each protocol of `PROTOCOLS` (the random 8:1:1 split of Scenario-Wise-Rec, and a per-user time
  split);
- `PREFIX-<protocol>-noseq` and `PREFIX-<protocol>-swr` (`VARIANTS`): BST, SAML and the other
  baseline with the best within-scenario AUC on that protocol, without the behaviour sequences,
  and with Scenario-Wise-Rec's feature set only: what the sequence and the other features add.
  They train at the settings their protocol's main experiment chose (`--tuning-from`): the
  difference then measures the features, not another round of selection (and costs no trials).
Each experiment skips what is finished and resumes what is not, so an interrupted benchmark (it is
hours of CPU) goes on where it stopped when the same command is run again; it prints every
training and the progress of the whole benchmark with an ETA. Then the tables
(saml_core/benchmark_tables.py) are printed and, with `--write`, regenerated in README.md and
BENCHMARKS.md between their markers.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from saml_core.config import ConfigError

# protocol -> (movielens options, what it is)
PROTOCOLS = {
    "random": ({"split": "random"}, "random 8:1:1 split of the ratings, seeded by the data seed (Scenario-Wise-Rec's "
                                    "protocol)"),
    "user-time": ({"split": "user-time"}, "per-user time split: each user's last 10 % of ratings by time are the test "
                                          "rows, the 10 % before them the validation rows"),
}
# variant -> (what it trains with, what the difference to all features measures); its dataset
# options come from `variant_options`
VARIANTS = {"noseq": ("without the behaviour sequences", "the sequence adds"),
            "swr": ("Scenario-Wise-Rec's feature set only", "the other features add")}
ABLATED = ("bst", "saml")  # plus the best other baseline of each protocol
MIN_SEEDS = 5
DATA_SEED = 0


def variant_options(variant: str, sequences: list[str]) -> dict:
    if variant == "noseq":
        return {"exclude": list(sequences)}
    return {"features": "swr"}


def size_tag(n_ratings: int) -> str:
    """'ml100k' for 100,000 ratings, 'ml1m' for 1,000,209, ..."""
    return f"ml{round(n_ratings / 1e6)}m" if n_ratings >= 500_000 else f"ml{round(n_ratings / 1e3)}k"


@dataclass
class Step:
    """One experiment of the benchmark; `runs` is None until known (the ablations' best baseline)."""

    name: str
    protocol: str
    variant: str | None
    runs: list[str] | None


def best_baseline(doc: dict) -> str | None:
    """The baseline other than BST with the highest mean within-scenario AUC in a report."""
    from saml_core.models import registry

    reference = registry.reference_id()
    rows = [s for s in doc["summary"] if s["role"] == "baseline" and s["model"] != reference and not s.get("sweep")
            and (s.get("within_auc") or {}).get("mean") is not None]
    return max(rows, key=lambda s: s["within_auc"]["mean"])["model"] if rows else None


def ablated_models(doc: dict, models: list[str]) -> list[str]:
    best = best_baseline(doc)
    return [m for m in dict.fromkeys([*ABLATED, *([best] if best else [])]) if m in models]


class Eta:
    """Progress of the whole benchmark: trainings (runs and tuning trials) done of all planned, and
    an ETA from each model's measured seconds per training (its finished runs and trials in any
    experiment of the benchmark, this invocation or an earlier one; a model not measured yet
    counts the mean of those measured)."""

    def __init__(self, root: Path, steps: list[Step], models: list[str], seeds: int,
                 log: Callable[[str], None]):
        self.root, self.steps, self.models, self.seeds, self.log = root, steps, models, seeds, log
        self.t0 = time.monotonic()
        self.done_before = {key for key, fin, _ in self._units() if fin}

    def _units(self):
        """(model, finished?, seconds or None) of every planned training."""
        from saml_core import artifacts as art
        from saml_core import config, tuning

        out = []  # ((experiment, model, unit), finished, seconds)
        for step in self.steps:
            # not known yet: the ablated models and a baseline (None) that the main experiment will choose
            runs = step.runs if step.runs is not None else [*(m for m in ABLATED if m in self.models), None]
            for m in runs:
                # the ablations train at their main experiment's choices: no trials of their own
                grid = 0 if step.variant else len(tuning.grid_points(m)) if m else config.grid_size(config.TUNE_GRID)
                for i in range(grid):
                    trial = tuning.read_trial(tuning.trial_dir(self.root / step.name, m, i)) if m else None
                    out.append(((step.name, m, f"t{i}"), trial is not None, (trial or {}).get("seconds")))
                for s in range(self.seeds):
                    metrics = None
                    if m is not None:
                        try:
                            metrics = art.read_json(self.root / step.name / f"{m}-d{DATA_SEED}-s{s}" / "metrics.json")
                        except art.ArtifactError:
                            metrics = None
                    out.append(((step.name, m, f"s{s}"), metrics is not None, (metrics or {}).get("train_seconds")))
        return out

    def line(self) -> str:
        """'[benchmark] 37/412 trainings done, 1.2 h in this run, ETA ~5.1 h'. The recorded seconds are
        training only; the ETA scales them by wall time / recorded time of this run's trainings (data
        loading, evaluation, probes, other work on the machine)."""
        units = self._units()
        done = sum(1 for _, fin, _ in units if fin)
        costs: dict = {}
        for (_, m, _), fin, sec in units:
            if fin and isinstance(sec, (int, float)) and m is not None:
                costs.setdefault(m, []).append(float(sec))
        mean = {m: sum(v) / len(v) for m, v in costs.items()}
        overall = sum(mean.values()) / len(mean) if mean else None
        elapsed = time.monotonic() - self.t0
        recorded_now = sum(sec for key, fin, sec in units if fin and key not in self.done_before
                           and isinstance(sec, (int, float)))
        scale = elapsed / recorded_now if recorded_now > 0 else 1.0
        eta = None if overall is None else scale * sum(mean.get(key[1], overall) for key, fin, _ in units if not fin)
        return (f"[benchmark] {done}/{len(units)} trainings done, {_dur(elapsed)} in this run, "
                + (f"ETA ~{_dur(eta)}" if eta is not None else "ETA after the first trainings"))

    def tick(self) -> None:
        self.log(self.line())


def _dur(seconds: float) -> str:
    seconds = max(float(seconds), 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run(dataset: str, *, root: Path, seeds: int = MIN_SEEDS, preset: str | None = None, device: str = "auto",
        threads: int = 0, models: list[str] | None = None, protocols: list[str] | None = None,
        prefix: str | None = None, should_stop=None, command: str | None = None,
        log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> tuple[str, list[Step]]:
    """Train (or resume) every experiment of the benchmark; returns (prefix, steps)."""
    from saml_core.data import load_dataset
    from saml_core.experiments import ExperimentConfig, run_experiment
    from saml_core.presets import settings_for
    from saml_core.models import registry
    from saml_core.report import report

    models = list(models or registry.ids())
    protocols = list(protocols or PROTOCOLS)
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ConfigError(f"--protocols: unknown {', '.join(unknown)}; known: {', '.join(PROTOCOLS)}")
    from saml_core.data import registry as datasets

    needed = {k for p in protocols for k in PROTOCOLS[p][0]} | {k for v in VARIANTS for k in variant_options(v, [])}
    missing = sorted(needed - set(datasets.get(dataset).options))
    if missing:
        raise ConfigError(f"the benchmark runs on movielens:DIR: it needs the dataset option(s) "
                          f"{', '.join(sorted(needed))}, and {dataset} has no {', '.join(missing)}")
    s = settings_for(dataset, preset, train={"device": device, "num_threads": threads})
    base_options = dict(s.pop("dataset_options"))
    # the log's size names the experiments; its behaviour sequences are what "noseq" leaves out
    data = load_dataset(dataset, seed=DATA_SEED, **{**base_options, **PROTOCOLS[protocols[0]][0]})
    sequences = [q.name for q in data.spec.seq_fields]
    prefix = prefix or f"bench-{size_tag(len(data.train) + len(data.valid) + len(data.test))}"
    del data
    steps = [Step(f"{prefix}-{p}", p, None, models) for p in protocols]
    steps += [Step(f"{prefix}-{p}-{v}", p, v, None) for p in protocols for v in VARIANTS]
    eta = Eta(root, steps, models, seeds, log)

    def train(step: Step, tuned_in: str | None = None) -> None:
        options = {**base_options, **PROTOCOLS[step.protocol][0],
                   **(variant_options(step.variant, sequences) if step.variant else {})}
        cfg = ExperimentConfig(name=step.name, dataset=dataset, dataset_options=options, runs=step.runs, seeds=seeds,
                               data_seeds=[DATA_SEED], tuned=True, tuning_from=tuned_in, keep_weights="first-run",
                               **s)
        log(f"[benchmark] {step.name}: {len(step.runs)} models x {seeds} seeds, "
            + (f"at the settings tuned in {tuned_in}" if tuned_in else "tuned"))
        eta.tick()
        run_experiment(cfg, root, should_stop=should_stop, command=command, log=log, on_unit_done=eta.tick)

    for p in protocols:
        main = next(x for x in steps if x.protocol == p and x.variant is None)
        train(main)
        ablated = ablated_models(report(root, main.name), models)
        for step in (x for x in steps if x.protocol == p and x.variant is not None):
            step.runs = ablated
            if ablated:  # at the full-feature experiment's choices: the ablation measures the features alone
                train(step, tuned_in=main.name)
    return prefix, steps
