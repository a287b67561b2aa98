"""What a model.pt holds, read without torch: its schema version and the name and shape of every
tensor of its state dict.

Listing an experiment checks every kept model file (docs/ARTIFACTS.md). Doing that through
torch costs a fresh dashboard process ~2 s of `import torch` before its first page can draw,
so the listing reads the file's header instead: torch's zip layout (`<archive>/data.pkl` plus one
`<archive>/data/<key>` entry per storage) is opened with zipfile, every entry's CRC is verified,
and data.pkl is unpickled by an unpickler that knows only the four names a saml_core model file
uses (tensor rebuild, ordered dict, storage types) and returns inert descriptions for them. Any
other name is refused unread: nothing in the file is ever called.
"""
from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

STORAGE_BYTES = {"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "DoubleStorage": 8,
                 "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
                 "BoolStorage": 1}


class ModelFileError(ValueError):
    """The file is not a readable saml_core model file; the message says why."""


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _Storage:
    kind: str
    key: str
    numel: int


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    storage: _Storage
    offset: int


def _rebuild_tensor(storage, offset, size, stride, *rest):
    if not isinstance(storage, _Storage):
        raise ModelFileError("a tensor without a storage")
    return TensorInfo(tuple(int(s) for s in size), storage, int(offset))


class _HeaderUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in STORAGE_BYTES:
            return _StorageType(name)
        raise ModelFileError(f"it refers to {module}.{name}, which a model file never holds; refused unread")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise ModelFileError("an unknown storage reference")
        return _Storage(pid[1].name, str(pid[2]), int(pid[4]))


def read_header(path: str | Path) -> tuple[int, dict[str, tuple[int, ...]]]:
    """(schema version, {tensor name: shape} of the state dict) of a model.pt, or ModelFileError."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl")]
            if len(pkl) != 1:
                raise ModelFileError("not a torch zip file (no data.pkl)")
            bad = z.testzip()  # reads every entry and checks its CRC
            if bad is not None:
                raise ModelFileError(f"entry {bad} is corrupted")
            prefix = pkl[0][: -len("data.pkl")]
            obj = _HeaderUnpickler(io.BytesIO(z.read(pkl[0]))).load()
            sizes = {n[len(prefix) + len("data/"):]: z.getinfo(n).file_size for n in names
                     if n.startswith(prefix + "data/")}
            if not isinstance(obj, dict) or "schema_version" not in obj or not isinstance(obj.get("state_dict"), dict):
                raise ModelFileError("not a saml_core model file (no schema_version and state_dict)")
            for info in [obj["schema_version"], *obj["state_dict"].values()]:
                if isinstance(info, TensorInfo):
                    want = info.storage.numel * STORAGE_BYTES[info.storage.kind]
                    if sizes.get(info.storage.key) != want:
                        raise ModelFileError(f"storage {info.storage.key} holds {sizes.get(info.storage.key)} bytes, "
                                             f"expected {want}")
            version = obj["schema_version"]
            if isinstance(version, TensorInfo):
                if version.shape != () or version.storage.kind not in ("LongStorage", "IntStorage"):
                    raise ModelFileError("schema_version is not one integer")
                width = STORAGE_BYTES[version.storage.kind]
                raw = z.read(f"{prefix}data/{version.storage.key}")[version.offset * width:(version.offset + 1) * width]
                order = z.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names else "little"
                version = int.from_bytes(raw, "big" if order == "big" else "little", signed=True)
            shapes = {str(k): v.shape for k, v in obj["state_dict"].items() if isinstance(v, TensorInfo)}
            return version, shapes
    except ModelFileError:
        raise
    except Exception as exc:  # zip, CRC, pickle and layout errors of a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelFileError(f"corrupted, truncated or not a weights-only checkpoint ({type(exc).__name__}: "
                             f"{first[:160]})") from None
