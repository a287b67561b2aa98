"""Threads: the adaptive thread policy, results that do not depend on the thread count, and no
library the engine calls changing torch's thread count."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A fresh process, as a training job is: torch at one thread, then the calls that run numba,
# OpenMP or BLAS code of other libraries in the training path (UMAP maps through numba, the
# logistic-regression baseline through scikit-learn / scipy), torch's count read after each.
CHILD = r"""
import json, sys
import numpy as np
import torch
from saml_core import maps
from saml_core.bench_speed import random_data
from saml_core.config import ModelConfig
from saml_core.run_config import RunConfig
from saml_core.models import build_model, registry
torch.set_num_threads(1)
seen = {"start": torch.get_num_threads()}
rng = np.random.default_rng(0)
probes = {"scenario": rng.integers(0, 3, 200), "hidden_own_0": rng.normal(size=(200, 16)).astype(np.float32),
          "hidden_all_0": rng.normal(size=(40, 3, 16)).astype(np.float32), "hidden_all_index": np.arange(40)}
maps.compute_maps(probes)
seen["after UMAP and PCA maps"] = torch.get_num_threads()
data = random_data(n_train=600, n_valid=200, n_test=200, k=3, seq_len=4, vocab=20)
cfg = RunConfig(run_id="lr", model="lr_te", dataset="random", seed=0)
model = build_model("lr_te", data.spec, cfg.model_config)
registry.get("lr_te").fit(model, data, cfg.train_config, seed=0, device=torch.device("cpu"), run_dir=None)
seen["after the logistic regression"] = torch.get_num_threads()
print(json.dumps(seen))
"""


def test_no_library_changes_torchs_thread_count():
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(seen.values()) == {1}, seen


def _on_one_and_two_threads(fn):
    import torch

    before = torch.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            out.append(fn())
        return out
    finally:
        torch.set_num_threads(before)


def _grads(module_or_fn, x, *params):
    import torch

    for p in params:
        p.grad = None
    x = x.clone().requires_grad_()
    y = module_or_fn(x)
    y.backward(torch.randn(y.shape, generator=torch.Generator().manual_seed(5)).to(y.dtype))
    return [t.grad.clone() for t in (x, *params)]


def test_layer_norm_and_softmax_gradients_do_not_depend_on_the_thread_count():
    """torch's own layer-norm backward (weight and bias gradients in per-thread partial sums) and
    softmax backward gave other roundings on 2 threads than on 1, and with them every gradient
    upstream: the engine's replacements give the same bits, and torch's values within rounding."""
    import torch

    from saml_core.models.layers import LayerNorm, softmax

    x = torch.randn(8192, 24, generator=torch.Generator().manual_seed(1))
    norm = LayerNorm(24)
    torch.nn.init.normal_(norm.weight)
    ln1, ln2 = _on_one_and_two_threads(lambda: _grads(norm, x, norm.weight, norm.bias))
    for a, b in zip(ln1, ln2):
        assert torch.equal(a, b)
    w64, b64 = norm.weight.detach().double().requires_grad_(), norm.bias.detach().double().requires_grad_()
    ref = _grads(lambda t: torch.nn.functional.layer_norm(t, (24,), w64, b64), x.double(), w64, b64)
    for a, b in zip(ln1, ref):  # against float64: sums over 8192 rows
        torch.testing.assert_close(a, b.float(), rtol=1e-4, atol=1e-4)
    scores = torch.randn(2048, 4, 31, generator=torch.Generator().manual_seed(2))
    sm1, sm2 = _on_one_and_two_threads(lambda: _grads(softmax, scores))
    assert torch.equal(sm1[0], sm2[0])
    torch.testing.assert_close(sm1[0], _grads(lambda t: torch.softmax(t, -1), scores)[0])


@pytest.mark.parametrize("per_scenario", [False, True])
def test_fused_attention_gradients_do_not_depend_on_the_thread_count(per_scenario):
    """The attention layer's hand-written backward (`_TargetAttention`: weight gradients as
    matmuls over the batch, biases and layer norms as plain sums) at the bench's sizes: the
    same bits on 1 and 2 threads, outputs and every gradient."""
    import torch

    from saml_core.models.layers import SequenceAttention

    tokens = torch.randn(4096, 31, 24, generator=torch.Generator().manual_seed(6))
    mask = torch.rand(4096, 31, generator=torch.Generator().manual_seed(7)) > 0.3
    mask[:, -1] = True
    scenario = torch.randint(0, 10, (4096,), generator=torch.Generator().manual_seed(8))

    def run():
        att = SequenceAttention(24, 4, 8, 64, "target", num_scenarios=10 if per_scenario else 0)
        for p in att.parameters():
            torch.nn.init.normal_(p, std=0.3)
        return _grads(lambda t: att(t, mask, scenario), tokens, *att.parameters())

    for a, b in zip(*_on_one_and_two_threads(run)):
        assert torch.equal(a, b)


def test_fused_relu_layers_gradients_do_not_depend_on_the_thread_count():
    """The MLP as one node (`_ReluLayers`) at the bench's sizes (89 -> 256 -> 128 -> 1, 4096 rows):
    the same bits on 1 and 2 threads, hidden layers used downstream as well."""
    import torch

    from saml_core.models.layers import MLP

    x = torch.randn(4096, 89, generator=torch.Generator().manual_seed(9))

    def run():
        mlp = MLP(89, (256, 128))
        return _grads(lambda t: torch.cat([mlp(t)[0][0][:, :4], mlp(t)[1].unsqueeze(1)], 1), x, *mlp.parameters())

    for a, b in zip(*_on_one_and_two_threads(run)):
        assert torch.equal(a, b)


def test_star_statistics_do_not_depend_on_the_thread_count():
    """STAR's per-scenario batch mean and variance as scatter-adds: the same bits on 1 and 2
    threads (a [K, B] x [B, D] matmul summed in another order on 2 threads), forward and backward."""
    import torch

    from saml_core.models.star import PartitionedNorm

    x = torch.randn(4096, 89, generator=torch.Generator().manual_seed(3))
    scenario = torch.randint(0, 10, (4096,), generator=torch.Generator().manual_seed(4))

    def run():
        pn = PartitionedNorm(10, 89)
        pn.train()
        return _grads(lambda t: pn(t, scenario), x, pn.gamma, pn.scenario_gamma) + [pn.running_var.clone()]

    for a, b in zip(*_on_one_and_two_threads(run)):
        assert torch.equal(a, b)


def test_adaptive_policy_counts_other_processes_cpu_time(monkeypatch):
    """Decisions from /proc readings: nothing else busy -> every core; others using a core or
    more of two -> one thread; a fixed count or OMP_NUM_THREADS is kept."""
    import torch

    from saml_core import runtime

    clock = {"t": 0.0, "busy": 0.0, "own": 0.0}
    monkeypatch.setattr(runtime.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(runtime, "_machine_busy_seconds", lambda: clock["busy"])
    monkeypatch.setattr(runtime, "_own_cpu_seconds", lambda: clock["own"])
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        policy = runtime.ThreadPolicy(0, interval=0.5, cores=2)
        policy.apply()
        assert policy.adaptive and torch.get_num_threads() == 1
        for own, others, want in [(1.0, 0.1, 2), (1.9, 0.05, 2), (1.0, 1.0, 1), (0.7, 1.3, 1), (1.0, 0.2, 2)]:
            clock["t"] += 1.0
            clock["own"] += own
            clock["busy"] += own + others
            policy.tick()
            assert torch.get_num_threads() == want, (own, others)
        clock["t"] += 0.1  # within the interval: no new decision
        clock["busy"] += 0.1 * 2
        policy.tick()
        assert torch.get_num_threads() == 2
        assert policy.describe() == {"mode": "adaptive", "cores": 2, "decisions_by_threads": {1: 2, 2: 3}}
        fixed = runtime.ThreadPolicy(1, cores=2)
        fixed.apply()
        assert not fixed.adaptive and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert not runtime.ThreadPolicy(0, cores=2).adaptive
    finally:
        torch.set_num_threads(before)


def test_adaptive_policy_steps_aside_for_busy_processes():
    """Real processes: with a busy loop on every core, the policy takes one thread."""
    import multiprocessing as mp
    import time

    import torch

    from saml_core import bench_process, runtime

    cores = runtime.usable_cores()
    if runtime._machine_busy_seconds() is None or cores < 2:
        pytest.fail("needs Linux /proc/stat and 2 cores")
    procs = [mp.get_context("spawn").Process(target=bench_process._busy_loop, daemon=True) for _ in range(cores)]
    before = torch.get_num_threads()
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)
        policy = runtime.ThreadPolicy(0, interval=0.5)
        policy.apply()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.6:
            sum(range(20000))  # some work of ours between the ticks, as a training loop has
            policy.tick()
        assert policy.ticks and set(policy.ticks) == {1}, policy.ticks
    finally:
        for p in procs:
            p.terminate()
            p.join()
        torch.set_num_threads(before)


def test_maps_in_the_background_process_equal_maps_in_place(tmp_path):
    """Within an experiment the maps come from a background process: the same arrays as computed
    in place (PCA exactly, UMAP's shape), written when the experiment waits for it; a run whose
    probes cannot be read is named in the log and does not stop the others."""
    import numpy as np

    from saml_core import artifacts as art
    from saml_core import maps

    rng = np.random.default_rng(0)
    probes = {"scenario": rng.integers(0, 3, 120).astype(np.int16),
              "hidden_own_0": rng.normal(size=(120, 8)).astype(np.float16),
              "hidden_all_0": rng.normal(size=(20, 3, 8)).astype(np.float16),
              "hidden_all_index": np.arange(20, dtype=np.int32)}
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    art.save_npz(good / "probes.npz", probes)
    (bad / "probes.npz").write_bytes(b"not an npz")
    logged = []
    maps.begin_background()
    try:
        maps.store(good, probes)
        maps.store(bad, probes)
        assert maps._WORKER is not None and maps._WORKER.jobs == 2
    finally:
        maps.end_background(logged.append)
    stored = art.load_npz(good / "maps.npz")
    inline = maps.compute_maps(art.load_npz(good / "probes.npz"))
    assert sorted(stored) == sorted(inline)
    for key in inline:
        assert stored[key].shape == inline[key].shape
        if key.startswith("pca"):
            np.testing.assert_array_equal(stored[key], inline[key])
    assert not (bad / "maps.npz").exists()
    assert len(logged) == 1 and "bad" in logged[0]


def test_the_map_process_runs_only_beside_training_that_leaves_it_a_core(monkeypatch):
    from saml_core import maps, runtime

    for cores, ranks, expected in ((2, 1, True), (2, 2, False), (1, 2, False), (4, 2, True), (4, 4, False)):
        monkeypatch.setattr(runtime, "usable_cores", lambda c=cores: c)
        assert maps.background_has_a_core(ranks) is expected, (cores, ranks)
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    maps.begin_background(2)  # 2 ranks on 2 cores: no process, maps in place
    try:
        assert maps._WORKER is None
    finally:
        maps.end_background()
