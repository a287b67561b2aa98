"""Data-parallel training (saml_core.distributed): 2 gloo processes against one process.

Tolerance. The two processes train on the same global batches as one process (scenario-
stratified halves of each batch, losses weighted so that DDP's gradient average is the whole
batch's gradient), so they differ from one process only by float summation order. Measured on
taobao-sample (bst, saml, bst_individual, lr_te; quick preset, batch 64, 3 epochs, one thread):
test AUC, per-scenario AUC and validation AUC of every epoch identical; predictions within
9e-8, logloss within 4e-9, train loss within 1e-7. Asserted with margin: AUCs within 1e-4,
predictions within 1e-5, losses within 1e-5.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp

from saml_core import artifacts as art
from saml_core.bench_speed import random_data
from saml_core.config import ConfigError, ModelConfig
from saml_core.distributed import Dist, from_env, rank_rows, unused_parameters

ROOT = Path(__file__).resolve().parents[1]
CFG = ModelConfig(d_g=4, d_s=2, heads=2, head_dim=4, ff_dim=8, mlp=(16, 8))
# tiny probe subset: UMAP of the probe states (rank 0's post-processing) would JIT-compile for
# ~35 s with numba; NUMBA_DISABLE_JIT below makes the maps of these few points instant
ARGS = ["--dataset", "taobao-sample", "--quick", "--threads", "1", "--probe-size", "2", "--probe-hidden-all", "1",
        "--batch-size", "64", "--epochs", "3", "--patience", "3", "--min-epochs", "3"]
RUNS = "bst,saml,bst_individual,lr_te"


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "NUMBA_DISABLE_JIT": "1"}


def _single(root: Path, name: str, runs: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "saml_core", "experiment", "--name", name, "--runs", runs, *ARGS,
           "--artifacts", str(root)]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, cwd=ROOT)


def _torchrun(root: Path, name: str, runs: str, **kw):
    """2 gloo processes; each rank gets its own artifacts root (rank<R>), so that anything a
    worker wrote would show up in root/rank1."""
    inner = (f"SAML_ARTIFACTS={root}/rank$RANK exec {sys.executable} -m saml_core experiment --name {name} "
             f"--runs {runs} " + " ".join(ARGS))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--no-python", "sh", "-c", inner]
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            **kw)


def _run_dirs(exp: Path) -> list[str]:
    return sorted(p.name for p in exp.iterdir() if p.is_dir())


def _metrics(run: Path) -> tuple[dict, dict, np.ndarray]:
    return (json.loads((run / "metrics.json").read_text()), json.loads((run / "history.json").read_text()),
            np.load(run / "predictions.npz")["pred"])


# ---- the batch split ------------------------------------------------------------------------
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_rank_rows_are_disjoint_stratified_and_cover_the_batch(world):
    gen = torch.Generator().manual_seed(world)
    for size in (1, 2, 7, 64, 513):
        scen = torch.randint(0, 5, (size,), generator=gen)
        parts = [rank_rows(scen, r, world) for r in range(world)]
        allpos = torch.cat(parts)
        assert sorted(allpos.tolist()) == list(range(size))  # disjoint, union = the batch
        for k in range(5):  # every rank holds each scenario's rows to within one
            counts = [int((scen[p] == k).sum()) for p in parts]
            assert max(counts) - min(counts) <= 1


def test_unused_parameter_probe_finds_structural_gaps_and_leaves_no_trace(one_torch_thread, tmp_path):
    """DDP looks for unused parameters only where a one-scenario batch leaves some without
    gradient (here: positional embeddings of data without sequences)."""
    from saml_core.data.aliccp import load_aliccp
    from saml_core.models import build_model
    from saml_core.optim import ModelAdam

    with_seq = random_data(n_train=200, n_valid=10, n_test=10, k=4, seq_len=6, vocab=30)
    no_seq = load_aliccp(ROOT / "tests" / "fixtures" / "ali_ccp", cache_dir=tmp_path)
    for model_id in ("saml", "bst", "mmoe", "star"):
        for data, want in ((with_seq, []), (no_seq, ["positions"])):
            torch.manual_seed(0)
            model = build_model(model_id, data.spec, CFG)
            before = {k: v.clone() for k, v in model.state_dict().items()}
            rng = torch.get_rng_state()
            found = unused_parameters(model, data.train, torch.device("cpu"), ModelAdam(model, 1e-3).sparse)
            assert [n.split(".")[-1] for n in found] == want, (model_id, found)
            assert torch.equal(torch.get_rng_state(), rng)
            assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # incl. STAR's statistics
            assert all(p.grad is None for p in model.parameters())


# ---- gradients of 2 gloo processes = the gradient of the whole batch ------------------------
def _grad_worker(rank: int, world: int, store: str, out: str) -> None:
    from saml_core.optim import ModelAdam
    from saml_core.train import _ddp_forward

    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    dist = Dist(rank=rank, world=world, local_rank=rank, backend="gloo", device=torch.device("cpu"))
    data = random_data(n_train=200, n_valid=10, n_test=10, k=4, seq_len=6, vocab=30)
    result = {}
    for model_id in ("saml", "bst"):
        torch.manual_seed(0)
        from saml_core.models import build_model

        model = build_model(model_id, data.spec, CFG)
        opt = ModelAdam(model, 1e-3)
        net = dist.wrap(model, opt.sparse, bool(unused_parameters(model, data.train, torch.device("cpu"), opt.sparse)))
        for name, batch in (("odd", torch.arange(3, 40)), ("one_row", torch.tensor([5]))):
            scaled, shown, stop = _ddp_forward(net, model, data.train, batch, torch.device("cpu"), dist, None)
            opt.zero_grad()
            scaled.backward()
            dist.sync_sparse_grads(opt.sparse)
            result[f"{model_id}/{name}/loss"] = shown.detach().clone()
            for n, p in model.named_parameters():
                if p.grad is not None:
                    result[f"{model_id}/{name}/{n}"] = p.grad.to_dense() if p.grad.is_sparse else p.grad.clone()
    torch.save(result, f"{out}.{rank}")
    tdist.destroy_process_group()


def test_two_gloo_processes_give_the_whole_batch_gradient(tmp_path, one_torch_thread, monkeypatch):
    """Dense (DDP) and sparse (all-gathered) gradients of 2 ranks equal one process's gradient of
    the same batch, also for a batch of one row (rank 1 then holds a weight-0 row)."""
    import types

    from saml_core.models import build_model

    # Spawned workers re-run the parent's __main__ file; after an AppTest in the same session
    # that is a Streamlit page, so they get a bare __main__ instead.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    out = str(tmp_path / "grads")
    mp.spawn(_grad_worker, args=(2, str(tmp_path / "store"), out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    data = random_data(n_train=200, n_valid=10, n_test=10, k=4, seq_len=6, vocab=30)
    checked = 0
    for model_id in ("saml", "bst"):
        torch.manual_seed(0)
        model = build_model(model_id, data.spec, CFG)
        model.train()
        for name, batch in (("odd", torch.arange(3, 40)), ("one_row", torch.tensor([5]))):
            model.zero_grad(set_to_none=True)
            b = data.train.take(batch)
            loss = model.loss(model(b), b.label)
            loss.backward()
            assert abs(float(ranks[0][f"{model_id}/{name}/loss"]) - loss.item()) < 1e-6
            for n, p in model.named_parameters():
                want = p.grad.to_dense() if p.grad.is_sparse else p.grad
                for r in range(2):  # both ranks hold the same gradient
                    got = ranks[r][f"{model_id}/{name}/{n}"]
                    assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), (model_id, name, n, r)
                checked += 1
    assert checked > 40


# ---- the CLI under torchrun ------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_and_one(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    t0 = time.perf_counter()
    proc = _torchrun(root, "cmp", RUNS)
    single = _single(root / "single", "cmp", RUNS)
    out, err = proc.communicate(timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    assert proc.returncode == 0, err[-3000:]
    return root, time.perf_counter() - t0


def test_two_gloo_processes_match_one_process(two_and_one):
    root, _ = two_and_one
    one, two = root / "single" / "cmp", root / "rank0" / "cmp"
    assert not (root / "rank1").exists()  # rank 1 wrote nothing at all
    assert _run_dirs(one) == _run_dirs(two) == sorted(f"{m}-d0-s0" for m in RUNS.split(","))
    for run in _run_dirs(one):
        assert sorted(p.name for p in (one / run).iterdir()) == sorted(p.name for p in (two / run).iterdir())
        m1, h1, p1 = _metrics(one / run)
        m2, h2, p2 = _metrics(two / run)
        assert np.abs(p1 - p2).max() <= 1e-5, run
        assert abs(m1["overall"]["auc"] - m2["overall"]["auc"]) <= 1e-4, run
        assert abs(m1["overall"]["logloss"] - m2["overall"]["logloss"]) <= 1e-5, run
        for s, v in m1["per_scenario"].items():
            assert v["auc"] is None or abs(v["auc"] - m2["per_scenario"][s]["auc"]) <= 1e-4, (run, s)
        assert len(h1["epochs"]) == len(h2["epochs"]) and m1["best_epoch"] == m2["best_epoch"], run
        for a, b in zip(h1["epochs"], h2["epochs"]):
            assert abs(a["valid_auc"] - b["valid_auc"]) <= 1e-4, run
            if a["train_loss"] is not None:
                assert abs(a["train_loss"] - b["train_loss"]) <= 1e-5, run
        parallel = m2["train_settings"].get("distributed")
        if run.startswith("lr_te"):  # its own (sklearn) fit: on rank 0 alone
            assert parallel is None
        else:
            assert parallel["world_size"] == 2 and parallel["backend"] == "gloo"
    status = json.loads((two / "experiment_status.json").read_text())
    assert status["state"] == "finished"


def test_killed_two_process_run_resumes_from_rank0_checkpoint(two_and_one, tmp_path):
    """SIGTERM to torchrun in SAML's second epoch: every rank stops at the same step, rank 0
    keeps its checkpoint; the same command again resumes from it and ends with exactly the
    uninterrupted two-process run's results."""
    root, _ = two_and_one
    run = tmp_path / "rank0" / "kill" / "saml-d0-s0"
    proc = _torchrun(tmp_path, "kill", "saml")
    deadline = time.time() + 240
    while not (run / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, "the run finished before it could be interrupted"
    assert json.loads((run / "status.json").read_text())["state"] == "cancelled", err[-3000:]
    saved = art.load_torch(run / "checkpoint.pt")
    assert 1 <= int(saved["epoch"]) < 3
    again = _torchrun(tmp_path, "kill", "saml")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    assert not (run / "checkpoint.pt").exists()
    m1, h1, p1 = _metrics(root / "rank0" / "cmp" / "saml-d0-s0")
    m2, h2, p2 = _metrics(run)
    # the finished epochs come from the checkpoint (their timings too): it resumed, not restarted
    assert h2["epochs"][:int(saved["epoch"])] == saved["history"]
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in h1["epochs"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in h2["epochs"]]
    assert np.array_equal(p1, p2) and m1["overall"] == m2["overall"]


# ---- errors -----------------------------------------------------------------------------------
def test_nccl_without_gpus_is_a_clear_error(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="nccl needs CUDA GPUs; none is available"):
        from_env("nccl", "auto")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="nccl needs CUDA GPUs"):
        from_env("nccl", "cpu")
    cmd = [sys.executable, "-m", "saml_core", "experiment", "--name", "x", "--dist-backend", "nccl", *ARGS,
           "--artifacts", "/nonexistent"]
    out = subprocess.run(cmd, env={**_env(), "WORLD_SIZE": "1"}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: --dist-backend nccl needs CUDA GPUs; none is available"]
