"""Run-directory files (docs/ARTIFACTS.md): versioned, written atomically, loaded safely.

Every reader turns a missing, truncated, corrupted or incompatible file into an
`ArtifactError` whose message names the file. Writers never leave a half-written file: they
write a temporary file in the same directory, fsync it and `os.replace` it into place.
"""
from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1


class ArtifactError(RuntimeError):
    """A run/experiment file is missing, corrupted or from an incompatible version."""

    def __init__(self, path, reason: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {reason}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _clean(obj):
    """JSON-safe: numpy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(path: str | Path, obj: dict, versioned: bool = True) -> None:
    if versioned:
        obj = {"schema_version": SCHEMA_VERSION, **obj}
    atomic_write_bytes(path, json.dumps(_clean(obj), indent=1, allow_nan=False).encode())


def read_json(path: str | Path, versioned: bool = True) -> dict:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(path, "file is missing")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(path, f"corrupted or truncated JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ArtifactError(path, "expected a JSON object")
    if versioned:
        check_version(path, obj.get("schema_version"))
    return obj


def check_version(path, version) -> None:
    if version != SCHEMA_VERSION:
        raise ArtifactError(
            path, f"incompatible schema_version {version!r} (this saml_core reads {SCHEMA_VERSION}); "
            "re-run the experiment to rebuild it"
        )


def save_torch(path: str | Path, obj) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path: str | Path, map_location="cpu"):
    """torch.load(weights_only=True) with clear errors."""
    import torch

    path = Path(path)
    if not path.exists():
        raise ArtifactError(path, "file is missing")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/zip errors
        raise ArtifactError(path, f"corrupted, truncated or not a weights-only checkpoint ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def load_state_dict_into(model, path: str | Path, state=None) -> None:
    """Load model.pt into `model`; a state dict that does not fit the model is incompatible."""
    path = Path(path)
    state = load_torch(path) if state is None else state
    if not isinstance(state, dict) or state.get("schema_version") is None:
        raise ArtifactError(path, "not a saml_core model file (no schema_version)")
    check_version(path, int(state["schema_version"]))
    weights = state.get("state_dict")
    try:
        model.load_state_dict(weights)
    except Exception as exc:
        raise ArtifactError(path, f"weights do not match the model in config.json ({str(exc).splitlines()[0]})") from None


def save_model(path: str | Path, model, dtype=None) -> None:
    """model.pt; with `dtype` (e.g. torch.float16) floating tensors are stored in it."""
    import torch

    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    save_torch(path, {"schema_version": torch.tensor(SCHEMA_VERSION), "state_dict": state})


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, schema_version=np.array(SCHEMA_VERSION), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(path, "file is missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ArtifactError(path, f"corrupted or truncated array file ({type(exc).__name__}: {exc})") from None
    check_version(path, int(arrays.pop("schema_version")) if "schema_version" in arrays else None)
    return arrays
