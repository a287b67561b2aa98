"""`python -m saml_core benchmark`: end to end on small simulated data (shrunk: a few models, two
seeds, two settings per tuning grid, one protocol; the protocol's and the feature set's options
stand in for the MovieLens ones), checking that every table cell it writes is the report's
number in the right column, that the ablation differences pair the right runs, that a re-run
trains nothing and rewrites the same text, and that the docs change only between the markers."""
import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest

from saml_core import benchmark, benchmark_tables as tables, evaluate as ev, tuning

REPO = Path(__file__).resolve().parents[1]
SMALL_GRID = {"train_config": {"lr": (1e-3, 1e-4), "embedding_decay": (0.0,)}}
SMALL_LR_GRID = {"model_options": {"smoothing": (5.0, 80.0), "C": (0.01,)}}
MODELS = "bst,lr_te,mmoe"
PREFIX = "bench-t"


def _variant_options(variant, sequences):
    # the simulator has no "features" option: its Scenario-Wise-Rec stand-in drops the brand field
    return {"exclude": list(sequences)} if variant == "noseq" else {"exclude": ["brand"]}


def _main(argv):
    from saml_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(tuning, "grid_spec", lambda m: SMALL_LR_GRID if m == "lr_te" else SMALL_GRID)
    mp.setattr(benchmark, "PROTOCOLS", {"random": ({}, "the simulator's own split")})
    mp.setattr(benchmark, "variant_options", _variant_options)
    tmp = tmp_path_factory.mktemp("bench")
    docs = tmp / "docs"
    docs.mkdir()
    for name in tables.DOC_FILES:
        shutil.copy(REPO / name, docs / name)
    argv = ["benchmark", "synthetic-countries", "--smoke", "--seeds", "2", "--models", MODELS, "--preset", "quick",
            "--threads", "1", "--prefix", PREFIX, "--protocols", "random", "--artifacts", str(tmp / "art"),
            "--docs-dir", str(docs), "--write"]
    try:
        rc, out, err = _main(argv)
    finally:
        mp.undo()  # the other tests run the real benchmark settings
    assert rc == 0, err
    return {"root": tmp / "art", "docs": docs, "argv": argv, "out": out, "err": err}


def _tables(text: str) -> list[list[list[str]]]:
    """Every markdown table of `text`: rows of cells (header first, the --- row left out)."""
    found, cur = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|(-+\|)+", line):
                cur.append([c.strip() for c in line.strip("|").split("|")])
        elif cur:
            found.append(cur)
            cur = []
    return found


def _rows(table):
    head = table[0]
    return [dict(zip(head, row)) for row in table[1:]]


def _block(text):
    start = text.index(tables.begin_marker(PREFIX))
    end = text.index(tables.end_marker(PREFIX)) + len(tables.end_marker(PREFIX))
    return text[start:end]


def test_tables_are_the_reports_numbers_in_the_right_columns(bench):
    from saml_core.registry import report

    doc = report(bench["root"], f"{PREFIX}-random")
    text = (bench["docs"] / "README.md").read_text()
    main, per_scenario, ablation = _tables(_block(text))[:3]
    rows = {r["model"]: r for r in _rows(main)}
    assert {s["label"] for s in doc["summary"]} | {f"*{r['label']}* (reference, no training)"
                                                   for r in doc["references"]} == set(rows)
    for s in doc["summary"]:
        row = rows[s["label"]]
        assert row["within-scenario AUC"] == tables.ms(s["within_auc"])
        assert row["pooled AUC"] == tables.ms(s["auc"])
        assert row["logloss"] == tables.ms(s["logloss"])
        assert row["within-scenario AUC"] != row["pooled AUC"]  # a swapped column would show
        v = s["vs_reference"]
        if s["model"] == "bst":
            assert row["vs BST, within (p)"] == row["vs BST, pooled (p)"] == "reference"
        else:
            assert row["vs BST, within (p)"].startswith(v["within"]["verdict"])
            assert row["vs BST, pooled (p)"].startswith(v["overall"]["verdict"])
        chosen = doc["tuning"][s["model"]]["chosen"]
        assert row["chosen setting"] == tuning.describe(chosen)
    for ref in doc["references"]:
        row = rows[f"*{ref['label']}* (reference, no training)"]
        assert row["within-scenario AUC"] == tables.ms(ref["within_auc"]) and row["pooled AUC"] == tables.ms(ref["auc"])
        assert row["logloss"] == tables.ms(ref["logloss"])
    names = doc["scenario_names"]
    cells = {r["model"]: r for r in _rows(per_scenario)}
    for s in doc["summary"]:
        runs = [r for r in doc["runs"] if r["group"] == s["group"] and r["overall"]]
        for n in names:
            assert cells[s["label"]][f"{n} AUC"] == tables.ms(s["per_scenario"][n]["auc"])
            assert cells[s["label"]][f"{n} logloss"] == tables.ms(ev.mean_std(r["per_scenario"][n]["logloss"]
                                                                                for r in runs))
    # the per-run within-scenario AUCs the differences pair are the ones the report averages
    within = tables.run_within(doc)
    for s in doc["summary"]:
        mine = ev.mean_std(v for k, v in within.items() if k[0] == s["model"])
        assert mine["mean"] == pytest.approx(s["within_auc"]["mean"], abs=1e-12) and mine["n"] == 2


def test_ablation_rows_pair_the_same_seeds_of_the_right_experiments(bench):
    from saml_core.registry import report

    main = report(bench["root"], f"{PREFIX}-random")
    noseq = report(bench["root"], f"{PREFIX}-random-noseq")
    swr = report(bench["root"], f"{PREFIX}-random-swr")
    best = benchmark.best_baseline(main)
    assert best in ("lr_te", "mmoe")
    assert {s["model"] for s in noseq["summary"]} == {s["model"] for s in swr["summary"]} == {"bst", best}
    noseq_runs = _configs(bench["root"], f"{PREFIX}-random-noseq")
    assert noseq_runs and not any(r["feature_spec"]["seq_fields"] for r in noseq_runs)
    text = (bench["docs"] / "BENCHMARKS.md").read_text()
    ablation = _rows(_tables(_block(text))[2])
    assert [r["model"] for r in ablation] == [next(s["label"] for s in main["summary"] if s["model"] == m)
                                             for m in ("bst", best)]
    for r in ablation:
        model = next(s for s in main["summary"] if s["label"] == r["model"])["model"]
        cell = {x["model"]: x for x in main["summary"]}[model]
        assert r["all features"] == tables.ms(cell["within_auc"])
        for doc, col, effect in ((noseq, "without the behaviour sequences", "the sequence adds"),
                                 (swr, "Scenario-Wise-Rec's feature set only", "the other features add")):
            other = {x["model"]: x for x in doc["summary"]}[model]
            assert r[col] == tables.ms(other["within_auc"])
            diff = float(r[effect].split()[0])  # every seed of both is finished: mean of diffs = diff of means
            assert diff == pytest.approx(cell["within_auc"]["mean"] - other["within_auc"]["mean"], abs=6e-5)
            assert re.search(r"\(higher in [0-2] of 2\)$", r[effect])
    assert "**What the sequence adds:**" in text and "**What the other features add:**" in text


def _configs(root, name):
    import json

    return [json.loads(p.read_text()) for p in (root / name).glob("*-d0-s*/config.json")]


def test_progress_eta_and_a_rerun_that_trains_nothing_and_rewrites_the_same_text(bench):
    assert "[benchmark]" in bench["err"] and "ETA ~" in bench["err"]
    before = {n: (bench["docs"] / n).read_bytes() for n in tables.DOC_FILES}
    mp = pytest.MonkeyPatch()
    mp.setattr(tuning, "grid_spec", lambda m: SMALL_LR_GRID if m == "lr_te" else SMALL_GRID)
    mp.setattr(benchmark, "PROTOCOLS", {"random": ({}, "the simulator's own split")})
    mp.setattr(benchmark, "variant_options", _variant_options)
    try:
        rc, out, err = _main(bench["argv"])
    finally:
        mp.undo()
    assert rc == 0, err
    assert "test AUC" not in err and "valid AUC" not in err and "finished earlier, skipped" in err
    assert out == bench["out"]
    assert {n: (bench["docs"] / n).read_bytes() for n in tables.DOC_FILES} == before


def test_docs_change_only_between_the_markers(bench):
    readme, written = (REPO / "README.md").read_text(), (bench["docs"] / "README.md").read_text()
    block = _block(written)
    at = readme.index("\n## Layout\n")  # the first write: the section goes before the layout
    assert written == readme[:at] + "\n" + block + "\n" + readme[at:]
    original, written = (REPO / "BENCHMARKS.md").read_text(), (bench["docs"] / "BENCHMARKS.md").read_text()
    assert written == original.rstrip("\n") + "\n\n" + _block(written) + "\n"  # appended
    assert _block(written) == block and block + "\n" in bench["out"]


def test_markers_are_replaced_in_place_and_broken_markers_write_nothing(tmp_path):
    begin, end = tables.begin_marker("bench-x"), tables.end_marker("bench-x")
    readme = "# Title\n\nintro\n\n## Layout\n\nlayout text\n"
    first = tables.place(readme, f"{begin}\nold table\n{end}\n", "bench-x", "README.md")
    assert first == f"# Title\n\nintro\n\n{begin}\nold table\n{end}\n\n## Layout\n\nlayout text\n"
    edited = first.replace("layout text", "layout text, edited by hand") + "\nappended by hand\n"
    second = tables.place(edited, f"{begin}\nnew table\n{end}\n", "bench-x", "README.md")
    assert second == edited.replace("old table", "new table")
    other = tables.place(second, f"{tables.begin_marker('bench-y')}\ny\n{tables.end_marker('bench-y')}\n", "bench-y",
                         "BENCHMARKS.md")
    assert other.startswith(second.rstrip("\n")) and "new table" in other  # another prefix: its own section
    assert tables.place("text\n", f"{begin}\nt\n{end}\n", "bench-x", "BENCHMARKS.md") == f"text\n\n{begin}\nt\n{end}\n"
    for name in tables.DOC_FILES:
        (tmp_path / name).write_text(f"a\n{end}\nb\n{begin}\nc\n")  # END before BEGIN
    with pytest.raises(Exception, match="markers"):
        tables.write(tmp_path, "bench-x", f"{begin}\nz\n{end}\n")
    assert (tmp_path / "README.md").read_text() == f"a\n{end}\nb\n{begin}\nc\n"


def test_the_protocols_and_variants_are_options_movielens_loads(ml100k_dir):
    """What the benchmark asks of `movielens:DIR`, on the real ML-100k: each protocol's split, the
    behaviour sequences left out by name, Scenario-Wise-Rec's feature set; and the log's size names
    the experiments."""
    from saml_core.data import load_dataset

    name = f"movielens:{ml100k_dir}"
    full = load_dataset(name, seed=0, **benchmark.PROTOCOLS["random"][0])
    sequences = [q.name for q in full.spec.seq_fields]
    assert sequences and benchmark.size_tag(len(full.train) + len(full.valid) + len(full.test)) == "ml100k"
    noseq = load_dataset(name, seed=0, **benchmark.PROTOCOLS["user-time"][0],
                         **benchmark.variant_options("noseq", sequences))
    assert noseq.spec.seq_fields == ()
    assert [f.name for f in noseq.spec.cat_fields] == [f.name for f in full.spec.cat_fields]
    assert noseq.info["split"] != full.info["split"] and len(noseq.test) != len(full.test)
    swr = load_dataset(name, seed=0, **benchmark.variant_options("swr", sequences))
    assert {f.name for f in swr.spec.cat_fields} != {f.name for f in full.spec.cat_fields}


@pytest.mark.parametrize("args,needle", [
    (("benchmark", "synthetic-countries", "--seeds", "2"), "--seeds"),
    (("benchmark", "synthetic-countries", "--models", "bst"), "every registered model"),
    (("benchmark", "taobao-sample"), "movielens:DIR"),
    (("benchmark", "synthetic-countries", "--protocols", "weekly"), "--protocols"),
])
def test_cli_errors_are_one_line(tmp_path, args, needle):
    rc, _, err = _main([*args, "--artifacts", str(tmp_path)])
    assert rc == 2 and err.startswith("error:") and needle in err, err
    assert len(err.strip().splitlines()) == 1 and not any(tmp_path.iterdir())
