"""The read API under its published name (docs/ARTIFACTS.md): the experiments as stored
(`store.py`), their report (`report.py`) and re-evaluation of a stored run (`reevaluate.py`).
Imports no torch and never writes."""
from __future__ import annotations

from saml_core.reevaluate import reevaluate
from saml_core.report import report, report_markdown
from saml_core.store import (STATE_WORDS, ArtifactError, Experiment, ExperimentSummary, Run, default_root,
                             experiment_path, list_experiments, load_experiment, load_run)

__all__ = ["ArtifactError", "Experiment", "ExperimentSummary", "Run", "STATE_WORDS", "default_root",
           "experiment_path", "list_experiments", "load_experiment", "load_run", "report", "report_markdown",
           "reevaluate"]
