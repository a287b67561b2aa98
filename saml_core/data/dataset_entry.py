"""What a dataset registry entry holds, and the table of entries. The built-in sources
(`sources.py`) register here; everything else reads the table through `dataset_registry.py`, which imports
`sources.py` first, so the two never import each other."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

@dataclass(frozen=True)
class DatasetEntry:
    name: str  # "synthetic-countries", or the prefix of NAME:PATH ("csv", "taobao-raw")
    title: str  # what it is, for the form and `describe`
    kind: str  # synthetic | taobao | byo | ... (recorded in experiment.json; finds the badge of old experiments)
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
    # the dashboard's badge over every page of an experiment on data of this kind (markdown: what
    # the data is, in the analyst's words) and its icon
    badge: str = ""
    badge_icon: str = ":material/description:"
    # simulated with a planted truth: the badge is a warning (results are not about real users)
    simulated: bool = False
    default: bool = False  # the dataset a new experiment starts from (one entry)


ENTRIES: dict[str, DatasetEntry] = {}


def register(entry: DatasetEntry) -> DatasetEntry:
    if entry.name in ENTRIES:
        raise ValueError(f"dataset {entry.name!r} is registered twice")
    ENTRIES[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """For tests that register a throw-away dataset."""
    ENTRIES.pop(name, None)
