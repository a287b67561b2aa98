"""Run analyses end to end: the transfer matrix and per-scenario permutation importance that the
training job writes (real training on small data), the analyses job that computes them for runs
that lack them, their summaries in the report, and the agreement of every relation signal."""
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from saml_core import analyses, importance, jobs
from saml_core import artifacts as art
from saml_core import evaluate as ev
from saml_core.analyses_job import AnalysesSpec, submit
from saml_core.config import ConfigError
from saml_core.run_config import RunConfig
from saml_core.data.types import CatField, EncodedSplit, FeatureSpec, MultiScenarioData, SeqField
from saml_core.presets import settings_for
from saml_core.models import registry as models
from saml_core.registry import load_experiment, load_run, report, report_markdown

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, root):
    return subprocess.run([sys.executable, "-m", "saml_core", *args, "--artifacts", str(root)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


# ---- a planted log: field fa drives clicks in scenario A only, fb in B only -----------------------
def _planted_split(n: int, rng) -> EncodedSplit:
    """Scenarios A and B (half the rows each). fa takes values 2..6 in A, where it drives the clicks,
    and is 7 throughout B; fb the other way round. A shuffle within B leaves fa exactly as it was, so
    its importance there is exactly 0, and a shuffle that crosses scenarios brings A's values, whose
    effects the model learned, into B. `noise` (a field), x (a number) and the sequence drive nothing."""
    s = np.repeat([0, 1], n // 2)
    draw = 2 + rng.integers(0, 5, n)
    fa, fb = np.where(s == 0, draw, 7), np.where(s == 1, draw, 7)
    noise = 2 + rng.integers(0, 10, n)
    z = np.where(draw < 4, 2.5, -2.5) - 0.5
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    length = rng.integers(1, 7, n)
    mask = np.arange(6)[None, :] >= (6 - length)[:, None]
    seq = rng.integers(2, 12, (n, 1, 6)) * mask[:, None, :]
    return EncodedSplit(scenario=torch.as_tensor(s), label=torch.as_tensor(y, dtype=torch.float32),
                        cat=torch.as_tensor(np.stack([fa, fb, noise], 1)),
                        num=torch.as_tensor(rng.normal(size=(n, 1)), dtype=torch.float32),
                        seq=torch.as_tensor(seq), seq_mask=torch.as_tensor(mask))


PLANTED = {("A", "fa"), ("B", "fb")}


@pytest.fixture(scope="module")
def planted(tmp_path_factory, one_torch_thread):
    """A BST trained (quick preset) on the planted log by the real training job; its run folder."""
    from saml_core.train import train_run

    rng = np.random.default_rng(0)
    spec = FeatureSpec(("A", "B"), (CatField("fa", 12), CatField("fb", 12), CatField("noise", 12)), ("x",),
                       (SeqField("hist", "noise"),), 6)
    data = MultiScenarioData("planted", spec, _planted_split(6000, rng), _planted_split(2000, rng),
                             _planted_split(2000, rng), kind="byo")
    s = settings_for("synthetic-countries", "quick")
    cfg = RunConfig(run_id="bst-d0-s0", model="bst", model_config=s["model_config"], train_config=s["train_config"])
    run_dir = tmp_path_factory.mktemp("planted") / "p" / "bst-d0-s0"
    train_run(cfg, data, run_dir)
    return SimpleNamespace(run_dir=run_dir, data=data)


def _summary(run_dir: Path) -> dict:
    """importance_summary of the one run in `run_dir`: {(scenario, input): cell}."""
    run = load_run(run_dir, ["A", "B"], root=run_dir.parent.parent)
    exp = SimpleNamespace(scenario_names=["A", "B"], scenario_noun=("scenario", "scenarios"), runs=[run])
    (m,) = analyses.importance_summary(exp)["models"]
    return {(c["scenario"], c["input"]): c for c in m["cells"]}, m


def _check_planted(cells: dict) -> None:
    """Exactly the plant: the AUC drop's CI excludes 0 for fa in A and fb in B, and is exactly 0
    (AUC drop and logloss rise, every repeat) for fa in B and fb in A; the inputs that drive
    nothing stay far below the planted ones."""
    for scen, inp in PLANTED:
        assert cells[scen, inp]["drop_auc"]["ci_low"] > 0.05, (scen, inp, cells[scen, inp]["drop_auc"])
    for scen, inp in (("B", "fa"), ("A", "fb")):
        for key in ("drop_auc", "drop_logloss"):
            c = cells[scen, inp][key]
            assert (c["mean"], c["ci_low"], c["ci_high"]) == (0.0, 0.0, 0.0), (scen, inp, key, c)
    for (scen, inp), c in cells.items():
        if inp not in ("fa", "fb"):
            assert abs(c["drop_auc"]["mean"]) < 0.03, (scen, inp, c["drop_auc"])


def test_importance_finds_exactly_the_planted_fields(planted):
    doc = json.loads((planted.run_dir / "importance.json").read_text())
    assert doc["schema_version"] == 1 and doc["scenarios"] == ["A", "B"]
    assert [(i["name"], i["kind"]) for i in doc["inputs"]] == [("fa", "categorical"), ("fb", "categorical"),
                                                               ("noise", "categorical"), ("x", "numeric"),
                                                               ("hist", "sequence")]
    assert np.shape(doc["drop_auc"]) == (2, 5, importance.N_REPEATS) == np.shape(doc["drop_logloss"])
    assert doc["rows_cap"] == importance.ROWS_CAP and doc["base"]["A"]["n"] == importance.ROWS_CAP
    assert doc["seconds"] > 0 and doc["train_seconds"] > 0
    cells, m = _summary(planted.run_dir)
    _check_planted(cells)
    differs = {d["input"]: d for d in m["differs"]}
    assert differs["fa"]["significant"] and differs["fb"]["significant"]
    assert "fa" not in m["matters_nowhere"] and "fb" not in m["matters_nowhere"]
    assert "most in A" in m["sentences"][0] and "most in B" in m["sentences"][0]


def _broken_cross(batch, at, source, donor, inp):
    """Draws donors from every scenario's rows."""
    everyone = torch.randperm(len(source), generator=torch.Generator().manual_seed(0))[:len(donor)]
    _real_shuffle(batch, at, source, everyone, inp)


def _broken_column(batch, at, source, donor, inp):
    """Shuffles the next categorical column."""
    if inp.kind == "categorical":
        inp = importance.Input(inp.name, inp.kind, (inp.column + 1) % source.cat.shape[1])
    _real_shuffle(batch, at, source, donor, inp)


_real_shuffle = importance.shuffle_into


@pytest.mark.parametrize("broken, where", [(_broken_cross, r"\('B', 'fa', 'drop_auc'"),
                                           (_broken_column, r"\('[AB]', 'f[ab]', \{")])
def test_the_planted_check_fails_for_a_shuffle_that_crosses_scenarios_or_hits_another_column(
        planted, tmp_path, monkeypatch, broken, where):
    from saml_core.train import load_run_model, predict

    _, model = load_run_model(planted.run_dir, spec=planted.data.spec)
    monkeypatch.setattr(importance, "shuffle_into", broken)
    doc = importance.permutation_importance(lambda b: predict(model, b, torch.device("cpu"), 8192),
                                            planted.data.test, planted.data.spec, "bst", 1.0)
    run_dir = tmp_path / "p" / "bst-d0-s0"
    shutil.copytree(planted.run_dir, run_dir)
    art.write_json(run_dir / "importance.json", doc, versioned=False)
    with pytest.raises(AssertionError, match=where):
        _check_planted(_summary(run_dir)[0])


def test_each_shuffled_copy_changes_one_input_within_its_own_scenario_only():
    """Scoring by a fingerprint of every column of a row: copy (s, i, r) must be s's rows with input i
    taken from s's rows in the order of `permutations`, nothing else changed."""
    rng = np.random.default_rng(1)
    test = _planted_split(60, rng)
    spec = FeatureSpec(("A", "B"), (CatField("fa", 12), CatField("fb", 12), CatField("noise", 12)), ("x",),
                       (SeqField("hist", "noise"),), 6)
    w = [torch.as_tensor(rng.normal(size=n), dtype=torch.float64) for n in (3, 1, 6, 6, 1)]

    def fingerprint(b: EncodedSplit) -> np.ndarray:
        return (b.cat.double() @ w[0] + b.num.double() @ w[1] + b.seq[:, 0].double() @ w[2]
                + b.seq_mask.double() @ w[3] + b.scenario.double() * w[4]).numpy()

    inputs = importance.inputs_of(spec)
    positions = [np.arange(0, 30), np.arange(30, 60)]
    got = importance._shuffled_predictions(fingerprint, test, positions, inputs, 2, 7, chunk_rows=50)
    for s, pos in enumerate(positions):
        for i, inp in enumerate(inputs):
            for r, perm in enumerate(importance.permutations(len(pos), 2, 7, s, i)):
                want = test.take(torch.as_tensor(pos))
                importance.shuffle_into(want, slice(0, len(pos)), test, torch.as_tensor(pos[perm]), inp)
                np.testing.assert_allclose(got[s, i, r], fingerprint(want))
                others = test.take(torch.as_tensor(pos))  # what a shuffle of another input leaves
                if inp.kind == "categorical":
                    assert torch.equal(want.cat[:, inp.column], test.cat[pos[perm], inp.column])
                    keep = [j for j in range(3) if j != inp.column]
                    assert torch.equal(want.cat[:, keep], others.cat[:, keep])
                    assert torch.equal(want.seq, others.seq) and torch.equal(want.num, others.num)
                elif inp.kind == "sequence":  # every channel and the mask, whole rows, together
                    assert torch.equal(want.seq, test.seq[pos[perm]])
                    assert torch.equal(want.seq_mask, test.seq_mask[pos[perm]])
                    assert torch.equal(want.cat, others.cat)


# ---- a fresh quick experiment: both artifacts, the transfer matrix against the models themselves ---
RUNS = "bst_individual,saml,lr_te"


def _n_inputs() -> int:
    """The simulator's inputs as importance counts them: every field, and the behaviour sequence as one."""
    from saml_core.data import load_dataset

    spec = load_dataset("synthetic-countries", size="small").spec
    return len(spec.cat_fields) + len(spec.num_fields) + (1 if spec.seq_fields else 0)


@pytest.fixture(scope="module")
def quick_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyses")
    out = _cli("experiment", "--dataset", "synthetic-countries", "--name", "q", "--quick", "--threads", "1",
               "--runs", RUNS, root=root)
    assert out.returncode == 0, out.stderr
    assert (f"importance: {_n_inputs()} inputs x {importance.N_REPEATS} repeats on at most {importance.ROWS_CAP} test "
            "rows per country") in out.stderr
    return root


def test_a_fresh_quick_experiment_has_both_artifacts(quick_root):
    exp = load_experiment(quick_root, "q")
    for run in exp.runs:
        entry = models.get(run.model)
        assert (run.path / "transfer.json").exists() == ("transfer" in entry.probes), run.run_id
        assert (run.path / "importance.json").exists(), run.run_id
        imp = analyses.read_importance(run, exp.scenario_names)
        assert imp["drop_auc"].shape == (10, _n_inputs(), importance.N_REPEATS)
    assert [e.id for e in models.with_probe("transfer")] == ["saml", "saml_no_gate", "saml_no_aux", "bst_individual"]
    assert analyses.missing(exp) == {}


def test_transfer_diagonal_is_the_models_own_auc_and_cells_use_the_columns_rows(quick_root):
    from saml_core.train import load_run_model, predict

    exp = load_experiment(quick_root, "q")
    label, scen = (np.load(quick_root / "q" / "test_labels-d0.npz")[k] for k in ("label", "scenario"))
    for run in (exp.run("bst_individual-d0-s0"), exp.run("saml-d0-s0")):
        doc = analyses.read_transfer(run, exp.scenario_names)
        own = [run.metrics["per_scenario"][s]["auc"] for s in exp.scenario_names]
        np.testing.assert_allclose(np.diag(doc["auc"]), own, atol=1e-9)  # every scenario under the cap
        assert doc["n"] == [exp.test_counts[s]["n"] for s in exp.scenario_names]
        assert np.allclose(np.diag(doc["loss"]), 0)
        assert np.nanmax(np.abs(doc["auc"] - np.diag(doc["auc"])[None, :])) > 0.01  # routing changes the scores
    # BST-Individual's sub-model s, called directly on t's rows (no routing at all), gives cell (s, t)
    from saml_core.data import load_dataset

    data = load_dataset("synthetic-countries", seed=0, **exp.raw["dataset_options"])
    run = exp.run("bst_individual-d0-s0")
    _, model = load_run_model(run.path, spec=data.spec)
    doc = analyses.read_transfer(run, exp.scenario_names)
    for s, t in [(0, 1), (2, 9), (9, 0), (1, 2)]:
        rows = torch.as_tensor(np.flatnonzero(scen == t))
        pred = predict(model.models[s], data.test.subset(rows), torch.device("cpu"), 8192)
        assert abs(ev.auc(label[scen == t], pred) - doc["auc"][s, t]) < 1e-9, (s, t)


def test_the_analyses_job_computes_them_for_runs_that_lack_them(quick_root, tmp_path):
    root = tmp_path / "art"
    shutil.copytree(quick_root, root)
    exp_dir = root / "q"
    before = {f: json.loads((exp_dir / "saml-d0-s0" / f).read_text()) for f in ("transfer.json", "importance.json")}
    for f in before:
        (exp_dir / "saml-d0-s0" / f).unlink()
    (exp_dir / "lr_te-d0-s0" / "importance.json").unlink()
    assert analyses.missing(load_experiment(root, "q")) == {"saml-d0-s0": ["transfer", "importance"],
                                                           "lr_te-d0-s0": ["importance"]}
    q = jobs.JobQueue(root / ".jobs")
    job = submit(q, "q")
    assert json.loads(q.spec_path(job.job_id).read_text()) == {"kind": "analyses", "experiment": "q", "runs": None}
    done = jobs.wait(q, job.job_id, timeout=300)
    assert (done.state, done.kind) == ("finished", "analyses"), (done.error, done.log_tail)
    assert done.progress() == 1.0 and "[1/2] saml-d0-s0: transfer, importance" in done.log_tail
    assert analyses.missing(load_experiment(root, "q")) == {}
    for f, old in before.items():  # the same numbers as the training job's (same seeds, same weights)
        new = json.loads((exp_dir / "saml-d0-s0" / f).read_text())
        for key in ("auc", "loss", "drop_auc", "drop_logloss", "var_auc"):
            if key in old:
                np.testing.assert_allclose(np.array(new[key], float), np.array(old[key], float), atol=1e-6)


def test_analyses_specs_are_validated_and_a_bad_name_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown analyses option"):
        jobs.validate_job({"kind": "analyses", "experiment": "q", "argv": ["rm"]})
    with pytest.raises(ConfigError, match="run id"):
        AnalysesSpec.from_dict({"kind": "analyses", "experiment": "q", "runs": ["../x"]})
    with pytest.raises(ConfigError, match="unknown job kind"):
        jobs.validate_job({"kind": "shell", "name": "q"})
    out = _cli("analyses", "nope", root=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "nope" in out.stderr


def test_report_json_and_markdown_carry_transfer_importance_and_relations(quick_root):
    out = _cli("report", "q", "--format", "json", root=quick_root)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    labels = [m["label"] for m in doc["transfer"]["models"]]
    assert labels == ["SAML", "BST-Individual"]
    m = doc["transfer"]["models"][1]
    assert np.shape(m["auc"]) == (10, 10) and m["how"] == models.get("bst_individual").transfer_how
    assert m["sentence"].startswith("BST-Individual (1 run")
    imp = doc["importance"]["models"]
    assert [x["label"] for x in imp] == ["SAML", "BST-Individual", "LR (target encoding)"]
    assert len(imp[0]["cells"]) == 10 * _n_inputs() and len(imp[0]["differs"]) == _n_inputs()
    rows = analyses.importance_table(doc["importance"], tuple(doc["scenario_noun"]))
    assert len(rows) == 3 * 10 * _n_inputs() and {"country", "input", "AUC drop CI low"} <= set(rows[0])
    rel = doc["relations"]
    kinds = {s["kind"] for s in rel["signals"]}
    assert {"alpha", "cka", "transfer", "importance", "data", "planted"} <= kinds
    with_truth = [p for p in rel["pairs"] if "planted" in (p["a"], p["b"])]
    assert len(with_truth) == len(rel["signals"]) - 1
    assert all(0 < p <= 1 for x in rel["pairs"] for p in x["p_values"])
    assert "planted similarity" in rel["sentence"]
    md = report_markdown(doc)
    for heading in ("## Transfer", "## Input importance per country", "## Which countries are alike"):
        assert heading in md


def test_the_report_of_an_experiment_without_the_new_artifacts(tmp_path):
    """The shipped demo as built before transfer.json / importance.json existed."""
    shutil.copytree(REPO / "artifacts" / "demo", tmp_path / "demo")
    for f in list((tmp_path / "demo").glob("*/transfer.json")) + list((tmp_path / "demo").glob("*/importance.json")):
        f.unlink()
    exp = load_experiment(tmp_path, "demo")
    assert set(analyses.missing(exp)) == {r.run_id for r in exp.runs if (r.path / "model.pt").exists()}
    doc = report(tmp_path, "demo")
    assert "## Transfer" not in report_markdown(doc)
    assert doc["transfer"]["models"] == [] and doc["importance"]["models"] == []
    rel = doc["relations"]
    assert {s["kind"] for s in rel["signals"]} >= {"alpha", "planted", "data"} and rel["runs"] == 6


# ---- the statistics -------------------------------------------------------------------------------
def test_agreement_matrix_gives_matrix_agreements_numbers_with_missing_entries():
    rng = np.random.default_rng(0)
    base = rng.random((7, 7))
    mats = [base + 0.4 * rng.random((7, 7)) for _ in range(4)] + [rng.random((7, 7))]
    mats[1][2, 4] = mats[1][4, 2] = np.nan
    rho, p = ev.agreement_matrix(mats, n_perm=199)
    for a in range(5):
        for b in range(a + 1, 5):
            one = ev.matrix_agreement(mats[a], mats[b], n_perm=199)
            assert (rho[a, b], p[a, b]) == (one["spearman"], one["p_value"])
    assert p[0, 2] < 0.05 and p[0, 4] > 0.05


def test_differs_test_separates_equal_from_different_scenarios():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 0.05, (3, 1))  # a seed moving every scenario together cancels out
    same = 0.1 + seed_effect + rng.normal(0, 0.005, (3, 4))
    assert analyses.differs_test(same, np.full((3, 4), 0.005 ** 2))["p_value"] > 0.05
    apart = same + np.array([0.0, 0.0, 0.08, 0.0])
    got = analyses.differs_test(apart, np.full((3, 4), 0.005 ** 2))
    assert got["p_value"] < 1e-4 and got["df"] == 3
