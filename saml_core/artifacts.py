"""Run-directory files (docs/ARTIFACTS.md): versioned, written atomically, loaded safely.

Every reader turns a missing, truncated, corrupted or incompatible file into an
`ArtifactError` whose message names the file. Writers never leave a half-written file: they
write a temporary file in the same directory, fsync it and `os.replace` it into place.

The artifacts folder is shared, so readers take nothing for granted: only regular files are
read (a FIFO or a device in place of a file is refused without waiting on it), and their size is
bounded before anything is allocated (MAX_JSON_BYTES, MAX_NPZ_BYTES).
"""
from __future__ import annotations

import functools
import io
import json
import math
import os
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 2
# A JSON artifact is at most a few MB (the demo's largest is 40 KB; 200 scenarios' alpha matrices
# and per-scenario histories stay far below): a larger one is not ours and is not read.
MAX_JSON_BYTES = 64 << 20
# Arrays of one npz file, uncompressed (the demo's largest probes.npz holds about 2 MB).
MAX_NPZ_BYTES = 4 << 30
# Counts a training run records; anything beyond (a negative count, 1e20 epochs) is a corrupted file.
MAX_EPOCHS = 1_000_000
MAX_COUNT = 10**12


class ArtifactError(RuntimeError):
    """A run/experiment file is missing, corrupted or from an incompatible version."""

    def __init__(self, path, reason: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {reason}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temporary file in the same folder + fsync + rename: a reader sees the old file or
    the new one, never half of one. A failed write (full disk, I/O error) leaves no temporary file
    and the old file untouched, and raises ArtifactError naming the file and the reason."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ArtifactError(path, f"cannot write ({exc.strerror or exc}); nothing was changed") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def clean_json(obj):
    """JSON-safe: numpy scalars/arrays to Python, tuples to lists, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean_json(obj.tolist())
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
    atomic_write_bytes(path, json.dumps(clean_json(obj), indent=1, allow_nan=False).encode())


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(path: Path, mode: int) -> ArtifactError:
    kind = next((word for test, word in _KINDS if test(mode)), "not a plain file")
    return ArtifactError(path, f"not a regular file ({kind}); not read")


def check_regular(path: str | Path) -> None:
    """The file exists and is a regular file (links followed), checked without opening it: opening
    a FIFO waits for a writer, opening a device may do anything."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ArtifactError(path, "file is missing") from None
    except OSError as exc:
        raise ArtifactError(path, f"cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)


def open_regular(path: str | Path):
    """A binary file object of a regular file, opened without blocking (O_NONBLOCK, the same
    rule as the job queue's reads: a file swapped for a FIFO after the check is still refused)."""
    path = Path(path)
    check_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ArtifactError(path, f"cannot read ({exc.strerror or exc})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_regular(path, st.st_mode)
    return os.fdopen(fd, "rb")


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (checked before reading)."""
    path = Path(path)
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise ArtifactError(path, f"larger than {limit} bytes ({size} bytes); not read")
        data = f.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise ArtifactError(path, f"larger than {limit} bytes; not read")
    return data


def read_json(path: str | Path, versioned: bool = True) -> dict:
    path = Path(path)
    data = read_regular(path, MAX_JSON_BYTES)
    try:
        obj = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ArtifactError(path, "corrupted JSON (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: also integers beyond Python's digit limit
        raise ArtifactError(path, f"corrupted or truncated JSON ({str(exc)[:200]})") from None
    if not isinstance(obj, dict):
        raise ArtifactError(path, "expected a JSON object")
    if versioned:
        check_version(path, obj.get("schema_version"))
    return obj


def check_version(path, version) -> None:
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version != SCHEMA_VERSION:
        raise ArtifactError(
            path, f"incompatible schema_version {version!r} (this saml_core reads {SCHEMA_VERSION}); "
            "re-run the experiment to rebuild it"
        )


def check_fields(path, obj: dict, required: dict[str, type]) -> None:
    """Each required field is present with the given type, or a clear error naming it."""
    for key, kind in required.items():
        value = obj.get(key)
        if value is None:
            raise ArtifactError(path, f"field '{key}' is missing")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ArtifactError(path, f"field '{key}' should be {kind.__name__}, got {type(value).__name__} {value!r:.40}")


def check_count(path, where: str, value, hi: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi):
        raise ArtifactError(path, f"{where} should be a whole number from 0 to {hi:,}, got {_short(value)}")


def _short(value) -> str:
    """repr of a value read from a file, cut to a readable length (an integer of 400 digits)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
    return text if len(text) <= 40 else text[:40] + "..."


def _finite_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)  # an int beyond float range raises OverflowError
    except OverflowError:
        return False


def _check_auc_cell(path, where: str, cell) -> None:
    if not isinstance(cell, dict):
        raise ArtifactError(path, f"{where} is not an object")
    for key in ("auc", "ci_low", "ci_high", "logloss"):
        v = cell.get(key)
        if v is not None and not _finite_number(v):
            raise ArtifactError(path, f"{where}.{key} should be a number, got {_short(v)}")
    for key in ("n", "positives"):
        check_count(path, f"{where}.{key}", cell.get(key), MAX_COUNT)
    auc = cell.get("auc")
    if auc is not None and not 0.0 <= auc <= 1.0:
        raise ArtifactError(path, f"{where}.auc = {auc} is not in [0, 1]")


def check_metrics(path, metrics: dict, scenario_names: list[str] | None) -> None:
    """metrics.json: an overall AUC and a cell for every scenario of the experiment; the counts
    and times the report averages are numbers a training run can have."""
    for key in ("epochs_run", "best_epoch"):
        check_count(path, f"field '{key}'", metrics.get(key), MAX_EPOCHS)
    seconds = metrics.get("train_seconds")
    if seconds is not None and not (_finite_number(seconds) and seconds >= 0):
        raise ArtifactError(path, f"field 'train_seconds' should be a number of seconds, got {_short(seconds)}")
    if not isinstance(metrics.get("overall"), dict):
        raise ArtifactError(path, "field 'overall' is missing")
    _check_auc_cell(path, "overall", metrics["overall"])
    if metrics["overall"].get("auc") is None:
        raise ArtifactError(path, "overall.auc is missing")
    per = metrics.get("per_scenario")
    if not isinstance(per, dict):
        raise ArtifactError(path, "field 'per_scenario' is missing")
    for name in scenario_names or per:
        if name not in per:
            raise ArtifactError(path, f"per_scenario has no entry for scenario {name!r} of the experiment")
        _check_auc_cell(path, f"per_scenario[{name!r}]", per[name])


def check_probes(path, arrays: dict, k: int | None) -> None:
    """probes.npz: per-sample arrays of one length, scenario indices within range."""
    for key in ("scenario", "label", "pred"):
        if key not in arrays:
            raise ArtifactError(path, f"array '{key}' is missing")
    n = len(arrays["scenario"])
    for key in ("label", "pred", "index"):
        if key in arrays and arrays[key].shape[:1] != (n,):
            raise ArtifactError(path, f"array '{key}' has {arrays[key].shape[:1]} rows, expected {n}")
    if k is not None and n and (arrays["scenario"].min() < 0 or arrays["scenario"].max() >= k):
        raise ArtifactError(path, f"array 'scenario' has values outside 0..{k - 1}")
    for key, expect in (("alpha", 3), ("gate", 2)):
        if key in arrays and (arrays[key].ndim != expect or arrays[key].shape[1] != n):
            raise ArtifactError(path, f"array '{key}' has shape {arrays[key].shape}, expected {expect} dims with "
                                      f"{n} samples on axis 1")


@functools.lru_cache(maxsize=64)
def _expected_shapes(key: str) -> dict:
    """{tensor name: shape} of the model a config describes, built on the 'meta' device (no
    memory, no compute); cached, since the runs of an experiment share a handful of configs."""
    import torch

    from saml_core.run_config import RunConfig
    from saml_core.data.types import FeatureSpec
    from saml_core.models import build_model

    d = json.loads(key)
    cfg = RunConfig.from_dict({"run_id": "check", **d})
    spec = FeatureSpec.from_dict(d["feature_spec"])
    with torch.device("meta"):
        model = build_model(cfg.model, spec, cfg.model_config, cfg.model_options)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_model_file(path, config: dict, recorded_shapes: dict | None = None) -> None:
    """model.pt exists, is a weights-only saml_core file of this schema version, and its tensors
    have the names and shapes of the model: those the training job recorded in metrics.json
    (`recorded_shapes`; read without torch, saml_core.model_file), else those of the model its
    config.json describes (built on the 'meta' device: no memory, no compute)."""
    path = Path(path)
    check_regular(path)
    if isinstance(recorded_shapes, dict):
        from saml_core.model_file import ModelFileError, read_header

        try:
            version, got = read_header(path)
        except ModelFileError as exc:
            raise ArtifactError(path, str(exc)) from None
        check_version(path, version)
        try:
            expected = {str(k): tuple(int(x) for x in v) for k, v in recorded_shapes.items()}
        except (TypeError, ValueError):
            raise ArtifactError(path.parent / "metrics.json", "weight_shapes is not {name: shape}") from None
        _compare_shapes(path, got, expected)
        return
    import torch

    state = load_torch(path, mmap=True)
    if not isinstance(state, dict) or "schema_version" not in state:
        raise ArtifactError(path, "not a saml_core model file (no schema_version)")
    version = state["schema_version"]
    check_version(path, int(version) if isinstance(version, torch.Tensor) and version.numel() == 1 else version)
    weights = state.get("state_dict")
    if not isinstance(weights, dict):
        raise ArtifactError(path, "no state_dict")
    from saml_core.models.layers import merge_field_tables

    weights = merge_field_tables(dict(weights))  # files of the one-table-per-field layout load merged
    try:
        expected = _expected_shapes(json.dumps({k: config.get(k) for k in (
            "model", "model_options", "model_config", "feature_spec")}, sort_keys=True))
    except Exception as exc:  # a config this version cannot build: say so, do not guess
        raise ArtifactError(Path(path).parent / "config.json", f"cannot rebuild the model ({exc})") from None
    _compare_shapes(path, {k: tuple(v.shape) for k, v in weights.items() if isinstance(v, torch.Tensor)}, expected)


def _compare_shapes(path: Path, got: dict, expected: dict) -> None:
    if got != expected:
        missing = sorted(set(expected) - set(got))[:3]
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])[:3]
        detail = "; ".join(filter(None, [f"missing {missing}" if missing else "",
                                         f"other shapes {wrong}" if wrong else "",
                                         f"unexpected {sorted(set(got) - set(expected))[:3]}"
                                         if set(got) - set(expected) else ""]))
        raise ArtifactError(path, f"weights do not match the model in config.json ({detail})")


def save_torch(path: str | Path, obj) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path: str | Path, map_location="cpu", mmap: bool = False):
    """torch.load(weights_only=True) with clear errors. Never unpickles anything else: a file that
    is not plain tensors and containers is refused (torch's advice to retry with
    weights_only=False is not passed on: that would run code from the file)."""
    import torch

    path = Path(path)
    check_regular(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/zip errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights_only" in str(exc) or "Unpickl" in type(exc).__name__:
            first = "it holds more than plain tensors, and is refused unread"
        raise ArtifactError(path, f"corrupted, truncated or not a weights-only checkpoint ({type(exc).__name__}: "
                                  f"{first[:160]})") from None


def load_state_dict_into(model, path: str | Path, state=None) -> None:
    """Load model.pt into `model`; a state dict that does not fit the model is incompatible."""
    path = Path(path)
    state = load_torch(path) if state is None else state
    if not isinstance(state, dict) or state.get("schema_version") is None:
        raise ArtifactError(path, "not a saml_core model file (no schema_version)")
    version = state["schema_version"]
    check_version(path, int(version) if hasattr(version, "numel") and version.numel() == 1 else version)
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
    with open_regular(path) as f:
        try:
            total = sum(info.file_size for info in zipfile.ZipFile(f).infolist())
            if total > MAX_NPZ_BYTES:
                raise ArtifactError(path, f"its arrays take {total} bytes, more than {MAX_NPZ_BYTES}; not read")
            f.seek(0)
            with np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ArtifactError:
            raise
        except Exception as exc:  # zipfile, zlib (flipped bytes in a member), pickle refusal, I/O, ...
            raise ArtifactError(path, f"corrupted or truncated array file ({type(exc).__name__}: "
                                      f"{str(exc)[:160]})") from None
    version = arrays.pop("schema_version", None)
    check_version(path, version.item() if isinstance(version, np.ndarray) and version.size == 1
                  and version.dtype.kind in "iu" else version)
    return arrays
