"""Published anchors: the file's shape, the lookup by kind or DATASET string, and that the
scenario names are the ones our loaders produce."""
from pathlib import Path

import pytest

from saml_core.anchors import COLUMNS, dataset_key, published_anchors

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_lookup_by_kind_or_dataset_string():
    ae = published_anchors("aliexpress:/some/folder")
    assert ae == published_anchors("aliexpress") and len(ae) == 16
    assert all(tuple(a) == COLUMNS for a in ae)
    ple = {a["scenario"]: a["value"] for a in ae if a["model"] == "PLE"}
    assert ple == {"NL": 0.7292, "ES": 0.7273, "FR": 0.7276, "US": 0.7138}
    ccp = published_anchors("aliccp")
    star = {a["scenario"]: a["value"] for a in ccp if a["model"] == "STAR"}
    assert star == {"overall": 0.6253, "domain 1": 0.6270, "domain 2": 0.6041, "domain 3": 0.6242}
    tb = published_anchors("taobao-raw:/data/taobao")
    assert {a["model"]: a["value"] for a in tb} == {"BST": 0.651131, "DIN": 0.652399, "PPNet": 0.647442}
    assert published_anchors("taobao") == tb and dataset_key("Ali-CCP") == "aliccp"
    for name in ("taobao-sample", "synthetic-countries", "csv:x.yaml", ""):
        assert published_anchors(name) == []


def test_every_anchor_is_sourced_and_marked_not_comparable():
    for key in ("aliexpress", "aliccp", "taobao-raw"):
        for a in published_anchors(key):
            assert a["source"] and a["source_file_or_table"] and a["settings"], a
            assert "not comparable" in a["note"].lower(), a
            assert a["metric"] == "auc" and 0.5 < a["value"] < 1.0


@pytest.mark.parametrize("kind,load,folder", [("aliexpress", "load_aliexpress", "aliexpress"),
                                              ("aliccp", "load_aliccp", "ali_ccp")])
def test_scenario_names_match_our_loaders(tmp_path, kind, load, folder):
    import importlib

    module = importlib.import_module(f"saml_core.data.{kind}")
    data = getattr(module, load)(FIXTURES / folder, cache_dir=tmp_path)
    named = {a["scenario"] for a in published_anchors(kind)} - {"overall"}
    if kind == "aliexpress":  # the fixture has NL, ES, FR; the published tables also US
        assert set(data.spec.scenario_names) <= named and named == {"NL", "ES", "FR", "US"}
    else:
        assert named == set(data.spec.scenario_names)
