"""The model registry: one entry per trainable model. Everything that lists, builds, labels,
colours or compares models reads it: CLI choices, the experiment planner, the trainer, the
report's baseline, the pages and the retrain form. Adding a model = one file + one `register`.
"""
from __future__ import annotations

from saml_core.config import ConfigError
from saml_core.models import entries as _builtin  # noqa: F401  (registers the built-in models at import)
# the registry's API: the entry type, its vocabularies and (un)registering
from saml_core.models.model_entry import ENTRIES, PROBES, ROLES, ModelEntry, register, unregister  # noqa: F401


def entries() -> list[ModelEntry]:
    return sorted(ENTRIES.values(), key=lambda e: (e.order, e.id))


def ids() -> list[str]:
    return [e.id for e in entries()]


def get(model_id: str) -> ModelEntry:
    try:
        return ENTRIES[model_id]
    except KeyError:
        raise ConfigError(f"unknown model {model_id!r}; known models: {', '.join(ids())}") from None


def find(model_id: str | None) -> ModelEntry | None:
    """The entry, or None for an id this version does not know (an old or foreign run)."""
    return ENTRIES.get(model_id) if model_id else None


def with_probe(probe: str) -> list[ModelEntry]:
    """The entries that expose `probe` (one of PROBES), in table order."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; known: {PROBES}")
    return [e for e in entries() if probe in e.probes]


def default_ids() -> list[str]:
    return [e.id for e in entries() if e.default]


def reference_id() -> str:
    """The model every other is compared with (the entry with `reference=True`)."""
    return next(e.id for e in entries() if e.reference)


def main_ids(ids: list[str] | None = None) -> list[str]:
    """The models a page shows first: the default set without the ablations, among `ids` (default:
    every registered model), in the given order."""
    ids = [e.id for e in entries()] if ids is None else ids
    return [m for m in ids if (e := find(m)) is not None and e.default and e.role != "ablation"]


def focus_id(ids: list[str], reference: str | None = None) -> str | None:
    """The model whose verdicts a page marks among `ids`: the first method, else the first that is
    not the reference, else the first; None for no ids."""
    reference = reference_id() if reference is None else reference
    method = [m for m in ids if (e := find(m)) is not None and e.role == "method"]
    return (method or [m for m in ids if m != reference] or list(ids) or [None])[0]


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
