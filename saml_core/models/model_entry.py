"""What a model registry entry holds, and the table of entries. The built-in models
(`entries.py`) register here; everything else reads the table through `model_registry.py`, which
imports `entries.py` first, so the two never import each other."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from saml_core.config import check_grid

ROLES = ("method", "ablation", "baseline")
# alpha: SAML's similarity coefficients; gate: its gates; hidden: branch hidden states (hidden-states
# page, maps stored by training); relations: its own scenario-relationship matrices
# (metrics.json); transfer: its per-scenario parts score another scenario's rows when the rows'
# scenario index is set to that scenario (transfer.json; the model routes by `batch.scenario` only)
PROBES = ("alpha", "gate", "hidden", "relations", "transfer")


@dataclass(frozen=True)
class ModelEntry:
    id: str  # stable id: config.json "model", run ids, CLI --runs
    label: str  # display name
    color: str  # one colour on every chart
    role: str  # method | ablation | baseline
    build: Callable  # build(spec, ModelConfig, **options) -> ScenarioModel
    description: str  # one sentence for the retrain form and the pages
    options: dict = field(default_factory=dict)  # the model's own options and their defaults
    # how the trainer fits it: "joint" (one fit on all scenarios), "per_scenario" (the model has
    # `.models[k]`, each fitted on scenario k's rows), or a callable fit(model, data, tcfg, ...)
    fit: object = "joint"
    # what the model exposes about scenarios (PROBES): the pages and analyses ask for these
    probes: tuple[str, ...] = ()
    # with "transfer": one sentence saying how scenario s's part of the model scores scenario t's
    # rows (stored in transfer.json, shown under the matrix)
    transfer_how: str = ""
    default: bool = False  # in the default comparison set
    # the baseline every model is compared with (RelaImpr, paired tests, the pages' verdicts):
    # exactly one entry says so
    reference: bool = False
    order: int = 100  # position in tables and legends
    # what `--tune` searches for this model: {"train_config" | "model_options": {name: values}};
    # None = config.TUNE_GRID. A model's own grid has as many points as TUNE_GRID (the same budget)
    tune_grid: dict | None = None


ENTRIES: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.role not in ROLES:
        raise ValueError(f"model {entry.id!r}: role must be one of {ROLES}, got {entry.role!r}")
    if entry.id in ENTRIES:
        raise ValueError(f"model {entry.id!r} is registered twice")
    unknown = sorted(set(entry.probes) - set(PROBES))
    if unknown:
        raise ValueError(f"model {entry.id!r}: unknown probe(s) {unknown}; known: {PROBES}")
    if ("transfer" in entry.probes) != bool(entry.transfer_how):
        raise ValueError(f"model {entry.id!r}: a model with the 'transfer' probe says how (transfer_how), "
                         "and only such a model")
    if entry.reference and any(e.reference for e in ENTRIES.values()):
        raise ValueError(f"model {entry.id!r}: the reference model is already "
                         f"{next(e.id for e in ENTRIES.values() if e.reference)!r}")
    if entry.tune_grid is not None:
        check_grid(entry.id, entry.tune_grid, entry.options)
    ENTRIES[entry.id] = entry
    return entry


def unregister(model_id: str) -> None:
    """For tests that register a toy model."""
    ENTRIES.pop(model_id, None)
