"""`python -m saml_core data describe` through the real entry point."""
import json
import subprocess
import sys
from pathlib import Path

from saml_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_describe_synthetic_json(capsys):
    assert main(["data", "describe", "synthetic-countries", "--size", "small", "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    names = [r["scenario"] for r in desc["scenarios"]]
    assert names == ["RU", "BR", "ES", "US", "FR", "PL", "NL", "CL", "UA", "Others"]
    shares = {r["scenario"]: r["total"]["share"] for r in desc["scenarios"]}
    assert abs(sum(shares.values()) - 1) < 1e-9 and shares["Others"] > shares["RU"] > shares["UA"]
    for r in desc["scenarios"]:
        assert 0.5 < r["oracle_auc"] < 1
        assert r["test"]["positives"] <= r["test"]["samples"]
        assert r["total"]["samples"] == sum(r[s]["samples"] for s in ("train", "valid", "test"))
    assert len(desc["true_similarity"]) == 10


def test_describe_taobao_sample_table(capsys):
    assert main(["data", "describe", "taobao-sample"]) == 0
    out = capsys.readouterr().out
    for level in range(5):
        assert f"city level {level}" in out
    assert "oracle AUC" not in out and "caveat:" in out


def test_bad_dataset_is_one_clear_line(capsys):
    assert main(["data", "describe", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset 'nope'; valid names:") and "Traceback" not in err


def test_subprocess_bad_schema_file(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "saml_core", "data", "describe", f"csv:{tmp_path / 'missing.yaml'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 2
    assert "missing.yaml: schema file not found" in proc.stderr and "Traceback" not in proc.stderr
