"""The model registry: one entry per trainable model. Everything that lists, builds, labels,
colours or compares models reads it: CLI choices, the experiment planner, the trainer, the
report's baseline, the pages and the retrain form. Adding a model = one file + one `register`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from saml_core.config import ConfigError

ROLES = ("method", "ablation", "baseline")
# alpha: SAML's similarity coefficients; gate: its gates; hidden: branch hidden states (hidden-states
# page, maps stored by training); relations: its own scenario-relationship matrices
# (metrics.json); transfer: its per-scenario parts score another scenario's rows when the rows'
# scenario index is set to that scenario (transfer.json; the model routes by `batch.scenario` only)
PROBES = ("alpha", "gate", "hidden", "relations", "transfer")
REFERENCE = "bst"  # the baseline every model is compared with (RelaImpr, paired tests)


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
    order: int = 100  # position in tables and legends
    # what `--tune` searches for this model: {"train_config" | "model_options": {name: values}};
    # None = config.TUNE_GRID. A model's own grid has as many points as TUNE_GRID (the same budget)
    tune_grid: dict | None = None


_ENTRIES: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.role not in ROLES:
        raise ValueError(f"model {entry.id!r}: role must be one of {ROLES}, got {entry.role!r}")
    if entry.id in _ENTRIES:
        raise ValueError(f"model {entry.id!r} is registered twice")
    unknown = sorted(set(entry.probes) - set(PROBES))
    if unknown:
        raise ValueError(f"model {entry.id!r}: unknown probe(s) {unknown}; known: {PROBES}")
    if ("transfer" in entry.probes) != bool(entry.transfer_how):
        raise ValueError(f"model {entry.id!r}: a model with the 'transfer' probe says how (transfer_how), "
                         "and only such a model")
    if entry.tune_grid is not None:
        from saml_core.tuning import check_grid

        check_grid(entry.id, entry.tune_grid, entry.options)
    _ENTRIES[entry.id] = entry
    return entry


def unregister(model_id: str) -> None:
    """For tests that register a toy model."""
    _ENTRIES.pop(model_id, None)


def entries() -> list[ModelEntry]:
    _load_builtin()
    return sorted(_ENTRIES.values(), key=lambda e: (e.order, e.id))


def ids() -> list[str]:
    return [e.id for e in entries()]


def get(model_id: str) -> ModelEntry:
    _load_builtin()
    try:
        return _ENTRIES[model_id]
    except KeyError:
        raise ConfigError(f"unknown model {model_id!r}; known models: {', '.join(ids())}") from None


def find(model_id: str | None) -> ModelEntry | None:
    """The entry, or None for an id this version does not know (an old or foreign run)."""
    _load_builtin()
    return _ENTRIES.get(model_id) if model_id else None


def with_probe(probe: str) -> list[ModelEntry]:
    """The entries that expose `probe` (one of PROBES), in table order."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; known: {PROBES}")
    return [e for e in entries() if probe in e.probes]


def default_ids() -> list[str]:
    return [e.id for e in entries() if e.default]


def resolve_options(model_id: str, options: dict | None) -> dict:
    """The model's options with defaults filled in; unknown names are a clear error."""
    entry = get(model_id)
    options = dict(options or {})
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        known = ", ".join(entry.options) or "none"
        raise ConfigError(f"model {model_id!r} has no option(s) {', '.join(unknown)} (its options: {known})")
    return {**entry.options, **options}


def build(model_id: str, spec, cfg, options: dict | None = None):
    entry = get(model_id)
    return entry.build(spec, cfg, **resolve_options(model_id, options))


_LOADED = False


def _load_builtin() -> None:
    """Import the built-in model files once; each registers its own entries at import."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)


# Model files that register themselves (one line per model file).
BUILTIN_MODULES = (
    "saml_core.models.entries",
)
