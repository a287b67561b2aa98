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


def display_width(text: str) -> int:
    """Terminal columns (independent of the code under test): CJK characters take two."""
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cell_ends(line: str) -> list[int]:
    """Display column where each cell of a table line ends (cells are split by 2+ spaces)."""
    import re
    return [display_width(line[:m.end()]) for m in re.finditer(r"\S+(?: \S+)*", line)]


def test_describe_table_aligned_with_wide_names_and_big_counts():
    from saml_core.data.data_cli import format_table

    def counts(n, pos):
        return {"samples": n, "positives": pos, "ctr": pos / n if n else None, "share": 0.5}

    desc = {"title": "t", "dataset": "csv:x", "oracle_auc_overall": None, "info": {"caveats": []},
            "scenario_noun": ["market", "markets"],
            "splits": {s: {"samples": 10_000_000, "positives": 123_456, "ctr": 0.0123} for s in ("train", "valid", "test")},
            "scenarios": [
                {"scenario": name, "oracle_auc": None, "train": counts(n, p), "valid": counts(1, 0),
                 "test": counts(n // 10, p // 10), "total": counts(n + n // 10 + 1, p + p // 10)}
                for name, n, p in [("华东区", 10_000_000, 654_321), ("a rather long market name", 12, 3), ("B", 0, 0)]],
            "dropped_scenarios": [{"scenario": "东京", "reason": "0 positives in the test split (min_positives 1)",
                                   "train_positives": 7, "test_positives": 0}]}
    out = format_table(desc).splitlines()
    head = next(i for i, line in enumerate(out) if line.startswith("---")) - 1
    table = out[head:head + 5]  # header, rule, 3 scenarios
    assert len({display_width(line) for line in table}) == 1, table
    assert table[0].startswith("market ")  # the data's own noun
    ends = [_cell_ends(line) for line in (table[0], *table[2:])]
    assert all(e[1:] == ends[0][1:] for e in ends), table  # every numeric column ends at one column
    assert "10,000,000" in table[2] and "华东区" in table[2]
    assert [display_width(line) for line in out[1:4]] == [display_width(out[1])] * 3  # split lines too
    assert out[-1] == ("dropped market 东京: 0 positives in the test split (min_positives 1) "
                       "(positives: train 7, test 0)")


def test_describe_byo_reports_dropped_scenarios(tmp_path, capsys):
    import pandas as pd

    rows = [{"day": d, "m": m, "click": int(i % 3 == 0 and not (m == "Z" and d == 3)), "item": f"i{i}"}
            for d in range(4) for m in ("华东", "B", "Z") for i in range(6)]
    pd.DataFrame(rows).to_csv(tmp_path / "log.csv", index=False)
    (tmp_path / "s.yaml").write_text("data: log.csv\nscenario: m\nlabel: click\ncategorical: [item]\n"
                                     "split: {column: day}\nscenario_noun: market\nmin_positives: 1\n",
                                     encoding="utf-8")
    assert main(["data", "describe", f"csv:{tmp_path / 's.yaml'}"]) == 0
    out = capsys.readouterr().out
    assert ("dropped market Z: 0 clicks and 6 non-clicks in the test split (min_positives 1: at least 1 of each) "
            "(positives: train 4, test 0)") in out
    assert "华东" in out and "\nmarket " in out
    assert main(["data", "describe", f"csv:{tmp_path / 's.yaml'}", "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert [r["scenario"] for r in desc["scenarios"]] == ["B", "华东"]
    assert desc["dropped_scenarios"] == [{"scenario": "Z", "reason": "0 clicks and 6 non-clicks in the test split "
                                                                     "(min_positives 1: at least 1 of each)",
                                          "train_positives": 4, "test_positives": 0, "test_negatives": 6}]
    assert desc["info"]["dropped_scenarios"] == desc["dropped_scenarios"]
