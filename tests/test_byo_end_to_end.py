"""Bring-your-own logs as a new user brings them: one without a time column, one as separate
train/test files, one with a scenario that has no positives. Each goes through `data describe`,
`experiment`, `report` and every dashboard page without an exception, in the log's own words."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard_support import REPO, nav, page_text

PAGES = ("per_scenario", "correlations", "hidden_states", "sweeps", "retrain")


def _log(n: int, seed: int, markets=("north", "south", "east"), silent: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    market = rng.choice(markets, n, p=[0.5, 0.3, 0.2][:len(markets)] if len(markets) == 3 else None)
    item = rng.integers(0, 60, n)
    cat = item % 7
    logit = -2.0 + 0.8 * (cat == np.where(market == "north", 1, 3)) + 0.5 * (item % 5 == 0)
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    if silent is not None:
        click[market == silent] = 0
    hist = ["|".join(f"i{x}" for x in rng.integers(0, 60, 1 + i % 5)) for i in range(n)]
    return pd.DataFrame({"market": market, "user": rng.integers(0, 400, n), "item": [f"i{x}" for x in item],
                         "cat": [f"c{x}" for x in cat], "price": rng.gamma(2.0, 5.0, n).round(2), "hist": hist,
                         "clicked": click})


SCHEMA = """\
title: {title}
data: {data}
scenario: market
scenario_noun: [market, markets]
label: clicked
categorical: [item, cat]
numeric: [price]
sequences:
  - {{column: hist, item_field: item, sep: "|"}}
split: {split}
seq_len: 5
"""


def _random_split(tmp: Path) -> Path:
    _log(3000, 1).to_csv(tmp / "log.csv", index=False)
    (tmp / "schema.yaml").write_text(SCHEMA.format(title="No time column", data="log.csv",
                                                   split="{method: group, column: user, test: 0.2, valid: 0.15}"))
    return tmp / "schema.yaml"


def _separate_files(tmp: Path) -> Path:
    _log(2400, 2).to_csv(tmp / "train.csv", index=False)
    _log(800, 3).to_csv(tmp / "test.tsv", index=False, sep="\t")
    (tmp / "schema.yaml").write_text(SCHEMA.format(title="Separate files", data="{train: train.csv, test: test.tsv}",
                                                   split="{valid: 0.15}"))
    return tmp / "schema.yaml"


def _silent_scenario(tmp: Path) -> Path:
    _log(3000, 4, markets=("north", "south", "east"), silent="east").to_csv(tmp / "log.csv", index=False)
    (tmp / "schema.yaml").write_text(SCHEMA.format(title="A market without clicks", data="log.csv",
                                                   split="{method: random, test: 0.2, valid: 0.15}"))
    return tmp / "schema.yaml"


def _cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "saml_core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("make", [_random_split, _separate_files, _silent_scenario])
def test_own_log_describe_experiment_report_and_every_page(tmp_path, monkeypatch, make):
    schema = make(tmp_path)
    dataset = f"csv:{schema}"
    desc = _cli("data", "describe", dataset, "--json")
    assert desc.returncode == 0, desc.stderr
    info = json.loads(desc.stdout)
    root = tmp_path / "art"
    runs = "bst,saml,lr_te" if make is _random_split else "bst,lr_te"  # SAML's pages once is enough
    out = _cli("experiment", "--dataset", dataset, "--name", "own", "--quick", "--threads", "1",
               "--runs", runs, "--artifacts", str(root))
    assert out.returncode == 0, out.stderr
    report = _cli("report", "own", "--format", "json", "--artifacts", str(root))
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert doc["scenario_noun"] == ["market", "markets"]
    if make is _silent_scenario:
        assert [d["scenario"] for d in info["info"]["dropped_scenarios"]] == ["east"]
        assert doc["scenario_names"] == ["north", "south"]
        assert doc["dropped_scenarios"][0]["scenario"] == "east"
    else:
        assert len(doc["scenario_names"]) == 3
    assert all(r["state"] == "finished" for r in doc["runs"])

    monkeypatch.setenv("SAML_ARTIFACTS", str(root))
    monkeypatch.delenv("SAML_DEMO_MODE", raising=False)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    assert {f"app_pages/{p}.py" for p in PAGES} <= set(nav(at)) | {"app_pages/sweeps.py"}  # sweeps: no sweep here
    for page in nav(at):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        text = page_text(at).lower() + " ".join(nav(at).values()).lower()
        assert "country" not in text and "countries" not in text, page
        page = page.removeprefix("app_pages/").removesuffix(".py")
        if page == "per_scenario":
            assert "Within-market AUC" in at.dataframe[0].value.columns  # the headline first
            assert "Market" in at.dataframe[1].value.columns
        if make is _silent_scenario and page == "overview":
            assert "Left out: **east**" in "\n".join(c.value for c in at.sidebar.caption)
