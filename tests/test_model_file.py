"""model.pt read without torch (saml_core.model_file): what a listing checks, that it never runs
anything in the file, and that listing the shipped experiments imports no torch at all."""
from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from saml_core import artifacts as art
from saml_core.bench_speed import random_data
from saml_core.config import ModelConfig
from saml_core.model_file import ModelFileError, read_header
from saml_core.models import build_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    data = random_data(n_train=50, n_valid=10, n_test=10, k=3, seq_len=4, vocab=20)
    return build_model("saml", data.spec, ModelConfig(d_g=4, d_s=2, heads=2, mlp=(16, 8)))


@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_header_equals_what_torch_reads(model, tmp_path, dtype):
    path = tmp_path / "model.pt"
    art.save_model(path, model, dtype=dtype)
    version, shapes = read_header(path)
    state = torch.load(path, weights_only=True)
    assert version == art.SCHEMA_VERSION == int(state["schema_version"])
    assert shapes == {k: tuple(v.shape) for k, v in state["state_dict"].items()} and len(shapes) > 10


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_file_that_would_run_code_is_refused_unread(model, tmp_path):
    path, marker = tmp_path / "model.pt", tmp_path / "ran"
    _Payload.marker = marker
    buf = io.BytesIO()
    torch.save({"schema_version": torch.tensor(2), "state_dict": {"w": torch.zeros(2)}}, buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():  # same layout, data.pkl replaced by a payload
            dst.writestr(info.filename, pickle.dumps(_Payload()) if info.filename.endswith("data.pkl")
                         else src.read(info))
    with pytest.raises(ModelFileError, match="posix.system|os.system|refused unread"):
        read_header(path)
    assert not marker.exists()


def test_damaged_files_are_named_with_the_reason(model, tmp_path):
    path = tmp_path / "model.pt"
    art.save_model(path, model)
    blob = path.read_bytes()
    shapes = {k: list(v) for k, v in read_header(path)[1].items()}

    path.write_bytes(blob[: len(blob) // 2])  # truncated
    with pytest.raises(art.ArtifactError, match="model.pt.*(truncated|corrupted)"):
        art.check_model_file(path, {}, shapes)

    with zipfile.ZipFile(io.BytesIO(blob)) as z:  # one flipped byte inside a tensor's data
        info = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size > 64)
        local = blob[info.header_offset: info.header_offset + 30]  # the local header's own name/extra lengths
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    flipped = bytearray(blob)
    flipped[start + 17] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(art.ArtifactError, match="corrupted"):
        art.check_model_file(path, {}, shapes)

    path.write_bytes(blob)
    art.check_model_file(path, {}, shapes)  # intact: passes
    other = dict(shapes)
    other[next(iter(other))] = [1, 1]
    with pytest.raises(art.ArtifactError, match="do not match.*other shapes"):
        art.check_model_file(path, {}, other)

    buf = io.BytesIO()
    torch.save({"schema_version": torch.tensor(999), "state_dict": model.state_dict()}, buf)
    path.write_bytes(buf.getvalue())
    with pytest.raises(art.ArtifactError, match="999"):
        art.check_model_file(path, {}, shapes)


def test_listing_the_shipped_experiments_imports_no_torch():
    """A fresh dashboard lists every shipped run, model files checked, without `import torch`."""
    script = """
import json, sys
from saml_core import registry
runs = [r for s in registry.list_experiments() for r in registry.load_experiment(None, s.name).runs]
kept = [r for r in runs if (r.metrics or {}).get("weights_kept")]
print(json.dumps({"runs": len(runs), "kept": len(kept), "broken": [r.run_id for r in runs if r.error],
                  "torch": "torch" in sys.modules}))
"""
    env = {k: v for k, v in os.environ.items() if k != "SAML_ARTIFACTS"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["runs"] >= 84 and doc["kept"] >= 8 and doc["broken"] == []
    assert doc["torch"] is False
