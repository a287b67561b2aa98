"""Dashboard settings: where the artifacts live and whether retraining is allowed."""
from __future__ import annotations

import os
from pathlib import Path

TRUE_WORDS = {"1", "true", "yes", "on"}


def artifacts_root() -> Path:
    """$SAML_ARTIFACTS, else ./artifacts next to app.py's working directory."""
    return Path(os.environ.get("SAML_ARTIFACTS") or "artifacts").expanduser()


def demo_mode(secrets=None) -> bool:
    """Read-only demo mode: env SAML_DEMO_MODE=1, or `demo_mode = true` in .streamlit/secrets.toml.

    In demo mode the Retrain page and the "build the demo" button are hidden, so nobody starts
    a long training run in front of an audience.
    """
    if os.environ.get("SAML_DEMO_MODE", "").strip().lower() in TRUE_WORDS:
        return True
    if secrets is not None:
        try:
            value = secrets.get("demo_mode", False)
        except Exception:  # no secrets file at all is the normal case
            return False
        return str(value).strip().lower() in TRUE_WORDS
    return False
