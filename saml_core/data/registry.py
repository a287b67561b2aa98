"""The dataset registry: one entry per data source. `load_dataset`, `data describe`, the CLI's
presets, the experiment planner and the retrain form read it; adding a source = one module
with a loader + one `register`.

A dataset is named `NAME` (built in) or `NAME:PATH` (a file or folder of the user's)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from saml_core.data.types import DataError, MultiScenarioData, check_seq_len


@dataclass(frozen=True)
class DatasetEntry:
    name: str  # "synthetic-countries", or the prefix of NAME:PATH ("csv", "taobao-raw")
    title: str  # what it is, for the form and `describe`
    kind: str  # synthetic | taobao | byo | ... (the dashboard's badge)
    load: Callable  # load(path or None, *, name, seed, **options) -> MultiScenarioData
    preset: str = "public"  # default training preset (saml_core.config.PRESETS)
    takes_path: bool = False  # NAME:PATH form
    path_hint: str = ""  # what PATH is, e.g. "schema file (YAML/JSON)"
    # does the data seed change the data (simulator, random split)? A fixed split (a time
    # column, given files) makes several data seeds pointless: the experiment says so
    seeded: bool = True
    options: dict = field(default_factory=dict)  # load options and their defaults
    quick_options: dict = field(default_factory=dict)  # options under the "quick" preset
    scenario_noun: tuple[str, str] = ("scenario", "scenarios")  # before the data says otherwise
    # () -> the names of the behaviour sequences, which the `exclude` option accepts (`--no-sequences`
    # excludes them all); a function so that naming a dataset imports nothing. None: no such option
    sequences: Callable[[], tuple[str, ...]] | None = None


_ENTRIES: dict[str, DatasetEntry] = {}


def register(entry: DatasetEntry) -> DatasetEntry:
    if entry.name in _ENTRIES:
        raise ValueError(f"dataset {entry.name!r} is registered twice")
    _ENTRIES[entry.name] = entry
    return entry


def entries() -> list[DatasetEntry]:
    _load_builtin()
    return list(_ENTRIES.values())


def usage() -> str:
    return ", ".join(f"{e.name}:{e.path_hint.split(' ')[0].upper() or 'PATH'}" if e.takes_path else e.name
                     for e in entries())


def parse(name: str) -> tuple[DatasetEntry, str | None]:
    """DATASET string -> (entry, path or None); a clear error for an unknown or malformed name."""
    _load_builtin()
    if not isinstance(name, str) or not name:
        raise DataError(f"unknown dataset {name!r}; valid names: {usage()}")
    if name in _ENTRIES and not _ENTRIES[name].takes_path:
        return _ENTRIES[name], None
    prefix, sep, path = name.partition(":")
    entry = _ENTRIES.get(prefix)
    if entry is None or not entry.takes_path:
        raise DataError(f"unknown dataset {name!r}; valid names: {usage()}")
    if not path:
        raise DataError(f"{prefix}: give the {entry.path_hint}, e.g. {prefix}:path/to/it")
    return entry, path


def get(name: str) -> DatasetEntry:
    return parse(name)[0]


def check_options(name: str, options: dict) -> None:
    """The sizes among a dataset's options, bounded before anything loads (DataError)."""
    if options.get("seq_len") is not None:
        check_seq_len(options["seq_len"], f"{name}: seq_len (--seq-len)")


def sequence_names(name: str) -> tuple[str, ...]:
    """The behaviour sequences of dataset `name`, as the `exclude` option names them: what
    `--no-sequences` excludes. A source whose sequences cannot be excluded is a clear error."""
    entry = get(name)
    if entry.sequences is None or "exclude" not in entry.options:
        having = ", ".join(e.name for e in entries() if e.sequences is not None and "exclude" in e.options)
        raise DataError(f"{name}: leaving out the behaviour sequences (--no-sequences) is not an option of "
                        f"{entry.name} (datasets that have it: {having or 'none'})")
    return tuple(entry.sequences())


def load(name: str, *, seed: int = 0, **options) -> MultiScenarioData:
    entry, path = parse(name)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise DataError(f"{name}: option(s) {', '.join(f'{k}={given[k]!r}' for k in unknown)} do not apply "
                        f"(options of {entry.name}: {valid})")
    check_options(name, given)
    kwargs = {**entry.options, **given}
    data = entry.load(path, name=name, seed=seed, **kwargs) if entry.takes_path else \
        entry.load(name=name, seed=seed, **kwargs)
    data.info.setdefault("seed_dependent", entry.seeded)
    return data


_LOADED = False


def _load_builtin() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        import saml_core.data.sources  # noqa: F401  (registers the built-in sources)
