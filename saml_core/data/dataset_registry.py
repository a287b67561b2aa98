"""The dataset registry: one entry per data source. `load_dataset`, `data describe`, the CLI's
presets, the experiment planner and the retrain form read it; adding a source = one module
with a loader + one `register`.

A dataset is named `NAME` (built in) or `NAME:PATH` (a file or folder of the user's)."""
from __future__ import annotations

from saml_core.data import sources  # noqa: F401  (registers the built-in sources at import)
from saml_core.data.dataset_entry import ENTRIES, DatasetEntry, register, unregister  # noqa: F401  (the registry's API)
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from saml_core.data.types import MultiScenarioData


def _error(message: str) -> Exception:
    """A DataError; types.py (torch) is imported only when a name is wrong, so that naming and
    listing datasets (the dashboard's badge) imports no torch."""
    from saml_core.data.types import DataError

    return DataError(message)


def entries() -> list[DatasetEntry]:
    return list(ENTRIES.values())


def by_kind(kind: str | None) -> DatasetEntry | None:
    """The first entry of this kind (its badge, whether it is simulated), or None for a kind this
    version does not know (an old or foreign experiment)."""
    return next((e for e in ENTRIES.values() if e.kind == kind), None)


def default_name() -> str:
    """The dataset a new experiment starts from."""
    return next(e.name for e in ENTRIES.values() if e.default)


def usage() -> str:
    return ", ".join(f"{e.name}:{e.path_hint.split(' ')[0].upper() or 'PATH'}" if e.takes_path else e.name
                     for e in entries())


def parse(name: str) -> tuple[DatasetEntry, str | None]:
    """DATASET string -> (entry, path or None); a clear error for an unknown or malformed name."""
    if not isinstance(name, str) or not name:
        raise _error(f"unknown dataset {name!r}; valid names: {usage()}")
    if name in ENTRIES and not ENTRIES[name].takes_path:
        return ENTRIES[name], None
    prefix, sep, path = name.partition(":")
    entry = ENTRIES.get(prefix)
    if entry is None or not entry.takes_path:
        raise _error(f"unknown dataset {name!r}; valid names: {usage()}")
    if not path:
        raise _error(f"{prefix}: give the {entry.path_hint}, e.g. {prefix}:path/to/it")
    return entry, path


def get(name: str) -> DatasetEntry:
    return parse(name)[0]


def check_options(name: str, options: dict) -> None:
    """The sizes among a dataset's options, bounded before anything loads (DataError)."""
    if options.get("seq_len") is not None:
        from saml_core.data.types import check_seq_len

        check_seq_len(options["seq_len"], f"{name}: seq_len (--seq-len)")


def sequence_names(name: str) -> tuple[str, ...]:
    """The behaviour sequences of dataset `name`, as the `exclude` option names them: what
    `--no-sequences` excludes. A source whose sequences cannot be excluded is a clear error."""
    entry = get(name)
    if entry.sequences is None or "exclude" not in entry.options:
        having = ", ".join(e.name for e in entries() if e.sequences is not None and "exclude" in e.options)
        raise _error(f"{name}: leaving out the behaviour sequences (--no-sequences) is not an option of "
                        f"{entry.name} (datasets that have it: {having or 'none'})")
    return tuple(entry.sequences())


def load(name: str, *, seed: int = 0, **options) -> MultiScenarioData:
    entry, path = parse(name)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise _error(f"{name}: option(s) {', '.join(f'{k}={given[k]!r}' for k in unknown)} do not apply "
                        f"(options of {entry.name}: {valid})")
    check_options(name, given)
    kwargs = {**entry.options, **given}
    data = entry.load(path, name=name, seed=seed, **kwargs) if entry.takes_path else \
        entry.load(name=name, seed=seed, **kwargs)
    data.info.setdefault("seed_dependent", entry.seeded)
    data.kind = entry.kind  # declared once, on the entry
    return data
