"""Dashboard settings: where the artifacts live and whether retraining is allowed."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Spellings of a yes/no setting, compared after stripping spaces and lower-casing.
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})
ENV_VAR = "SAML_DEMO_MODE"
SECRET_KEY = "demo_mode"
DATA_DIR_VAR = "SAML_DATA_DIR"
PROJECT_DATASETS = Path(__file__).resolve().parents[1] / "datasets"


def artifacts_root() -> Path:
    """$SAML_ARTIFACTS, else the artifacts/ folder next to app.py (`streamlit run path/to/app.py`
    from any working directory finds the same experiments as the CLI): saml_core's default."""
    from saml_core.store import default_root

    return default_root()


def data_dir() -> Path:
    """The only folder whose files the Retrain form takes as a dataset (a schema file, a folder of
    raw tables): $SAML_DATA_DIR (a relative path counts from the working directory), else the
    project's datasets/ folder. A browser user must not make the server read its other files."""
    env = os.environ.get(DATA_DIR_VAR, "").strip()
    return (Path(env).expanduser() if env else PROJECT_DATASETS).resolve()


@dataclass(frozen=True)
class DemoMode:
    """Whether read-only demo mode is on, and a warning to show when a setting was not understood."""

    on: bool
    warning: str | None = None


def parse_flag(value) -> bool | None:
    """True/False for a recognised yes/no value (bool, 0/1, or a word of TRUE_WORDS/FALSE_WORDS in
    any case, with spaces), None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def _secret(secrets) -> tuple[object, str | None]:
    """(value of `demo_mode` in the Streamlit secrets or None, why they could not be read or None)."""
    if secrets is None:
        return None, None
    try:
        return secrets.get(SECRET_KEY, None), None
    except Exception as exc:  # noqa: BLE001 - Streamlit raises its own error types here
        # No secrets file at all is the normal case (Streamlit says so with this error id); a file
        # that exists but cannot be parsed might hold `demo_mode = true`, so it must not count as "off".
        if getattr(exc, "error_id", None) == "no-secrets-found" or type(exc) is FileNotFoundError:
            return None, None
        return None, f"the Streamlit secrets cannot be read ({str(exc).splitlines()[0][:200]})"


def demo_mode_setting(secrets=None) -> DemoMode:
    """Read-only demo mode, from env SAML_DEMO_MODE and `demo_mode` in .streamlit/secrets.toml.

    Fail safe, because the mode exists to keep a long training run from starting in front of an
    audience: the mode is ON when either source says yes, and ALSO when either source holds a value
    that is not a recognised yes/no spelling (e.g. "maybe", "enable") or the secrets cannot be read;
    `warning` then says which setting was not understood, for the UI to show. Unset or empty
    settings count as "no"."""
    problems: list[str] = []
    on = False
    raw_env = os.environ.get(ENV_VAR)
    if raw_env is not None and raw_env.strip():
        flag = parse_flag(raw_env)
        if flag is None:
            problems.append(f"{ENV_VAR}={raw_env.strip()[:40]!r} is not a yes/no value")
        on = on or flag is not False
    value, unreadable = _secret(secrets)
    if unreadable:
        problems.append(unreadable)
        on = True
    elif value is not None and not (isinstance(value, str) and not value.strip()):
        flag = parse_flag(value)
        if flag is None:
            problems.append(f"secrets {SECRET_KEY} = {str(value)[:40]!r} is not a yes/no value")
        on = on or flag is not False
    if not problems:
        return DemoMode(on)
    words = "1/0, true/false, yes/no, on/off, y/n, t/f"
    return DemoMode(True, "Read-only demo mode is ON to be safe: " + "; ".join(problems) + f" (use {words}).")


def demo_mode(secrets=None) -> bool:
    """In demo mode the Retrain page and the "build the demo" button are hidden (see
    `demo_mode_setting` for the rules; `demo_mode_warning` for the text to show)."""
    return demo_mode_setting(secrets).on


def demo_mode_warning(secrets=None) -> str | None:
    return demo_mode_setting(secrets).warning
