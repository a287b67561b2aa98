"""Multi-scenario baselines (docs/BASELINES.md): BST + scenario, SharedBottom, MMoE, PLE, STAR.

Shapes, gradients, weights-only round trip, scenario routing (a scenario's own parameters move
only its own samples), gates and relations against hand-set values, STAR's partitioned
normalisation and star FC against hand computations, and a short real training of each."""
import inspect
import math

import numpy as np
import pytest
import torch

from saml_core import artifacts as art
from saml_core.bench_speed import random_data
from saml_core.config import ModelConfig, TrainConfig
from saml_core.data import load_dataset
from saml_core.models import build_model, registry
from saml_core.models.star import PartitionedNorm
from saml_core.optim import ModelAdam
from saml_core.train import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

K = 4
CFG = ModelConfig(d_g=4, heads=2, head_dim=4, ff_dim=8, mlp=(16, 8))
NEW = ("bst_scenario", "shared_bottom", "mmoe", "ple", "star")
PLE_OPTS = {"n_specific_experts": 2}  # two experts per scenario: catches a mix-up of expert slots


@pytest.fixture(scope="module")
def data():
    return random_data(n_train=512, n_valid=128, n_test=128, k=K, seq_len=6, vocab=30)


def _build(model_id, spec, seed=0, **options):
    torch.manual_seed(seed)
    return build_model(model_id, spec, CFG, options)


def _batch(data, n=128):
    b = data.train.take(torch.arange(n))
    assert torch.bincount(b.scenario, minlength=K).min() >= 2  # every scenario, with a variance
    return b


def _train_steps(model, data, steps=3, lr=1e-2):
    opt = ModelAdam(model, lr)
    model.train()
    for i in range(steps):
        b = data.train.take(torch.arange(i * 128, (i + 1) * 128))
        opt.zero_grad()
        model.loss(model(b), b.label).backward()
        opt.step()


# ---- contract: shapes, gradients, weights-only round trip, determinism ----------------------

@pytest.mark.parametrize("model_id", NEW)
def test_forward_shapes_finite_loss_and_every_parameter_gets_a_gradient(data, model_id):
    model = _build(model_id, data.spec, **(PLE_OPTS if model_id == "ple" else {})).train()
    b = _batch(data)
    out = model(b)
    assert out["logit"].shape == (len(b),)
    loss = model.loss(out, b.label)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.count_nonzero(p.grad.to_dense()) > 0, name


@pytest.mark.parametrize("model_id", NEW)
def test_weights_only_round_trip_reproduces_eval_outputs(data, model_id, tmp_path):
    model = _build(model_id, data.spec)
    _train_steps(model, data)  # weights (and STAR's moving statistics) away from their init
    model.eval()
    b = _batch(data)
    with torch.no_grad():
        ref = model(b, probes=True)
    art.save_model(tmp_path / "model.pt", model)
    fresh = _build(model_id, data.spec, seed=1).eval()
    with torch.no_grad():
        assert not torch.equal(fresh(b)["logit"], ref["logit"])
    art.load_state_dict_into(fresh, tmp_path / "model.pt")  # torch.load(weights_only=True)
    with torch.no_grad():
        got = fresh(b, probes=True)
    assert torch.equal(got["logit"], ref["logit"])
    assert set(got.get("probes", {})) == set(ref.get("probes", {}))
    for name, t in ref.get("probes", {}).items():
        assert torch.equal(got["probes"][name], t), name
    if model_id == "star":  # the moving statistics travel in the state dict
        state = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
        assert {"pn.running_mean", "pn.running_var"} <= set(state)
        assert torch.count_nonzero(state["pn.running_mean"]) > 0


@pytest.mark.parametrize("model_id", NEW)
def test_same_seed_same_model_and_outputs(data, model_id):
    a, b_ = _build(model_id, data.spec).eval(), _build(model_id, data.spec).eval()
    for (na, ta), (_, tb) in zip(a.state_dict().items(), b_.state_dict().items()):
        assert torch.equal(ta, tb), na
    b = _batch(data)
    with torch.no_grad():
        assert torch.equal(a(b)["logit"], b_(b)["logit"])


# ---- scenario routing --------------------------------------------------------------------------

def _scenario_slices(model_id, model, j):
    """(tensor, index along dim 0) pairs: everything that belongs to scenario j alone."""
    if model_id == "bst_scenario":
        return [(model.scenario_embedding.weight, j)]
    if model_id == "star":
        fcn = [(layer.scenario_weight, j) for layer in model.fcn] + [(layer.scenario_bias, j) for layer in model.fcn]
        pn = [(model.pn.scenario_gamma, j), (model.pn.scenario_beta, j),
              (model.pn.running_mean, j), (model.pn.running_var, j)]
        return fcn + pn + [(model.scenario_embedding.weight, j)]
    towers = [(t, j) for layer in list(model.towers.layers) + [model.towers.head] for t in (layer.weight, layer.bias)]
    if model_id == "shared_bottom":
        return towers
    if model_id == "mmoe":
        return towers + [(model.gates.weight, j)]
    if model_id == "ple":  # two levels: the last level's specific experts (the lower ones feed the
        # shared gate, next test), and every level's gate of j (the level-0 one feeds only j's path)
        m = model.n_specific
        own = slice(j * m, (j + 1) * m)
        experts = [(t, own) for layer in model.specific[-1].layers for t in (layer.weight, layer.bias)]
        return towers + experts + [(gate.weight, j) for gate in model.gates]
    raise AssertionError(model_id)


@pytest.mark.parametrize("model_id", NEW)
def test_perturbing_scenario_j_parameters_moves_scenario_j_samples_only(data, model_id):
    model = _build(model_id, data.spec, **(PLE_OPTS if model_id == "ple" else {})).eval()
    b = _batch(data)
    j = 1
    with torch.no_grad():
        before = model(b)["logit"]
        slices = _scenario_slices(model_id, model, j)
        assert slices
        gen = torch.Generator().manual_seed(0)
        for t, idx in slices:  # positive noise keeps running_var positive
            t[idx] += torch.rand(t[idx].shape, generator=gen)
        after = model(b)["logit"]
    mine = b.scenario == j
    assert torch.equal(after[~mine], before[~mine])  # exactly: other scenarios never read them
    assert (after[mine] - before[mine]).abs().min() > 0


@pytest.mark.parametrize("model_id", NEW)
def test_scenario_j_samples_train_scenario_j_parameters_only(data, model_id):
    model = _build(model_id, data.spec, **(PLE_OPTS if model_id == "ple" else {})).train()
    j = 2
    b = data.train.take(torch.nonzero(data.train.scenario == j).squeeze(1)[:64])
    model.loss(model(b), b.label).backward()
    for t, idx in _scenario_slices(model_id, model, j):
        if not t.requires_grad:  # moving statistics
            continue
        others = torch.ones(t.shape[0], dtype=torch.bool)
        others[idx] = False
        assert torch.count_nonzero(t.grad[others]) == 0
        assert torch.count_nonzero(t.grad[idx]) > 0


def test_ple_lower_level_experts_reach_other_scenarios_through_the_shared_gate(data):
    """PLE's cross-scenario channel (module docstring): with two levels, scenario j's level-0
    specific experts feed the shared gate every sample reads; with one level (CGC) they don't."""
    b = _batch(data)
    j = 1
    others = b.scenario != j
    for n_levels, reaches in ((2, True), (1, False)):
        model = _build("ple", data.spec, n_levels=n_levels, **PLE_OPTS).eval()
        m = model.n_specific
        with torch.no_grad():
            before = model(b)["logit"]
            for layer in model.specific[0].layers:
                layer.weight[j * m:(j + 1) * m] += 0.5
            after = model(b)["logit"]
        assert (not torch.equal(after[others], before[others])) == reaches, n_levels


def test_star_training_rows_depend_on_their_own_scenario_only(data):
    """PN's batch statistics are per scenario: scenario k's rows score the same with or without
    the other scenarios' rows in the batch."""
    model = _build("star", data.spec).train()
    b = _batch(data)
    k = 2
    idx = torch.nonzero(b.scenario == k).squeeze(1)
    full = model(b)["logit"][idx]
    alone = model(b.take(idx))["logit"]
    torch.testing.assert_close(alone, full)


# ---- the vectorised maths against per-sample loops over the papers' equations ----------------

def _mlp_of_stack(stack, i, v):
    """MLP i of a StackedMLP on one row v (its head, if any, gives a scalar)."""
    for layer in stack.layers:
        v = torch.relu(v @ layer.weight[i] + layer.bias[i, 0])
    return v if stack.head is None else (v @ stack.head.weight[i] + stack.head.bias[i, 0])[0]


def _mix(weights, vectors):
    return sum(w * v for w, v in zip(weights, vectors))


def _shared_bottom_reference(model, x, s):
    return _mlp_of_stack(model.towers, s, model.bottom(x)), {}


def _mmoe_reference(model, x, s):
    experts = [_mlp_of_stack(model.experts, e, x) for e in range(model.n_experts)]
    gate = torch.softmax(x @ model.gates.weight[s], dim=-1)  # g_s(x) = softmax(W_s x)
    return _mlp_of_stack(model.towers, s, _mix(gate, experts)), {"expert_gates": gate}


def _ple_reference(model, x, s):
    """Every scenario's path at every level, the shared path with its gate below the last level."""
    k, m, n_shared = model.k, model.n_specific, model.n_shared
    task, shared_in = [x] * k, x
    own_gates, shared_gates = [], []
    for l in range(model.n_levels):
        specific = [[_mlp_of_stack(model.specific[l], t * m + i, task[t]) for i in range(m)] for t in range(k)]
        shared = [_mlp_of_stack(model.shared[l], j, shared_in) for j in range(n_shared)]
        if l < model.n_levels - 1:
            ws = torch.softmax(model.shared_gates[l](shared_in), dim=-1)
            shared_in = _mix(ws, [e for per_task in specific for e in per_task] + shared)
            shared_gates.append(ws)
        gates = [torch.softmax(task[t] @ model.gates[l].weight[t], dim=-1) for t in range(k)]
        task = [_mix(gates[t], specific[t] + shared) for t in range(k)]
        own_gates.append(gates[s])
    probes = {"expert_gates": torch.stack(own_gates)}
    if shared_gates:
        probes["shared_gates"] = torch.stack(shared_gates)
    return _mlp_of_stack(model.towers, s, task[s]), probes


@pytest.mark.parametrize("model_id,options,reference", [
    ("shared_bottom", {}, _shared_bottom_reference),
    ("mmoe", {"n_experts": 3}, _mmoe_reference),
    ("ple", {"n_levels": 1, "n_specific_experts": 2}, _ple_reference),
    ("ple", {"n_levels": 2, "n_specific_experts": 2, "n_shared_experts": 3}, _ple_reference),
    ("ple", {"n_levels": 3, "n_specific_experts": 2, "n_shared_experts": 1}, _ple_reference),
])
def test_logits_and_probes_equal_a_per_sample_reference(data, model_id, options, reference):
    model = _build(model_id, data.spec, **options).eval()
    b = _batch(data, 64)
    with torch.no_grad():
        got = model(b, probes=True)
        x = model.features(b)
        refs = [reference(model, x[r], int(b.scenario[r])) for r in range(len(b))]
    torch.testing.assert_close(got["logit"], torch.stack([logit for logit, _ in refs]))
    assert set(got.get("probes", {})) == set(refs[0][1])
    for name, t in got.get("probes", {}).items():
        torch.testing.assert_close(t, torch.stack([p[name] for _, p in refs]), msg=name)


# ---- gates and relations (MMoE, PLE) -------------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"n_experts": 1}, {"n_experts": 7}])
def test_mmoe_gates_are_probability_vectors(data, options):
    model = _build("mmoe", data.spec, **options).eval()
    b = _batch(data)
    with torch.no_grad():
        g = model(b, probes=True)["probes"]["expert_gates"]
    assert g.shape == (len(b), model.n_experts)
    assert (g >= 0).all()
    torch.testing.assert_close(g.sum(-1), torch.ones(len(b)))


@pytest.mark.parametrize("options", [{}, {"n_levels": 1},
                                     {"n_levels": 3, "n_specific_experts": 2, "n_shared_experts": 1}])
def test_ple_gates_are_probability_vectors(data, options):
    model = _build("ple", data.spec, **options).eval()
    b = _batch(data)
    with torch.no_grad():
        p = model(b, probes=True)["probes"]
    n_levels, m, m_sh = model.n_levels, model.n_specific, model.n_shared
    assert p["expert_gates"].shape == (len(b), n_levels, m + m_sh)
    if n_levels == 1:
        assert "shared_gates" not in p
    else:
        assert p["shared_gates"].shape == (len(b), n_levels - 1, K * m + m_sh)
    for g in p.values():
        assert (g >= 0).all()
        torch.testing.assert_close(g.sum(-1), torch.ones(g.shape[:-1]))


def test_mmoe_relations_from_hand_set_gates(data):
    model = _build("mmoe", data.spec, n_experts=3)
    probes = {"scenario": np.array([0, 0, 1, 3], dtype=np.int16),
              "expert_gates": np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0]], dtype=np.float32)}
    rel = model.relations(probes, K)
    assert set(rel) == {"gate_profile", "gate_similarity"}
    np.testing.assert_allclose(rel["gate_profile"][[0, 1, 3]], [[0.5, 0.5, 0], [0, 0, 1], [0.5, 0.5, 0]])
    assert np.isnan(rel["gate_profile"][2]).all()  # no sample of scenario 2
    sim = rel["gate_similarity"]
    assert sim.shape == (K, K)
    np.testing.assert_allclose(sim[np.ix_([0, 1, 3], [0, 1, 3])], [[1, 0, 1], [0, 1, 0], [1, 0, 1]], atol=1e-12)
    assert model.relations({"scenario": probes["scenario"]}, K) == {}


def test_mmoe_zero_gate_weights_give_uniform_profiles(data):
    """Through the real pipeline (collect_probes): W_k = 0 -> every gate is uniform."""
    model = _build("mmoe", data.spec, n_experts=4)
    with torch.no_grad():
        model.gates.weight.zero_()
    probes = model.collect_probes(data.valid, np.arange(len(data.valid)), torch.device("cpu"))
    assert probes["expert_gates"].shape == (len(data.valid), 4)
    rel = model.relations(probes, K)
    np.testing.assert_allclose(rel["gate_profile"], np.full((K, 4), 0.25), rtol=1e-6)
    np.testing.assert_allclose(rel["gate_similarity"], np.ones((K, K)), rtol=1e-6)


def test_ple_relations_from_hand_set_gates(data):
    model = _build("ple", data.spec, n_levels=2, n_specific_experts=2, n_shared_experts=2)
    # G = 2 specific + 2 shared; the shared gate has K*2 + 2 = 10 slots (scenario k at 2k, 2k+1)
    expert_gates = np.array([[[0.1, 0.1, 0.3, 0.5], [0.5, 0.1, 0.4, 0.0]],
                             [[1.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.1, 0.8]]])
    shared_gates = np.array([[[0.05, 0.05, 0.2, 0.0, 0.3, 0.0, 0.0, 0.0, 0.25, 0.15]],
                             [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 0.25, 0.5, 0.0]]])
    probes = {"scenario": np.array([0, 1]), "expert_gates": expert_gates, "shared_gates": shared_gates}
    rel = model.relations(probes, K)
    assert set(rel) == {"gate_profile", "shared_share", "shared_gate_similarity", "cross_expert_use_l1"}
    np.testing.assert_allclose(rel["gate_profile"][:2], [[0.5, 0.1, 0.4, 0.0], [0.1, 0.0, 0.1, 0.8]])
    np.testing.assert_allclose(rel["shared_share"][:2], [[0.8, 0.4], [0.0, 0.9]])
    a, c = np.array([0.3, 0.5, 0.4, 0.0]), np.array([0.0, 0.0, 0.1, 0.8])  # shared parts, levels concatenated
    assert rel["shared_gate_similarity"][0, 1] == pytest.approx(a @ c / np.linalg.norm(a) / np.linalg.norm(c))
    np.testing.assert_allclose(rel["cross_expert_use_l1"][:2], [[0.1, 0.2, 0.3, 0.0], [0.0, 0.0, 0.0, 0.5]])
    for name in rel:
        assert rel[name].shape[0] == K
        assert np.isnan(rel[name][2:]).all()  # scenarios without samples


def test_ple_zero_gate_weights_give_uniform_shares(data):
    model = _build("ple", data.spec, n_levels=2, n_specific_experts=1, n_shared_experts=3)
    with torch.no_grad():
        for gate in list(model.gates) + list(model.shared_gates):
            gate.weight.zero_()
    probes = model.collect_probes(data.valid, np.arange(len(data.valid)), torch.device("cpu"))
    rel = model.relations(probes, K)
    np.testing.assert_allclose(rel["gate_profile"], np.full((K, 4), 0.25), rtol=1e-6)
    np.testing.assert_allclose(rel["shared_share"], np.full((K, 2), 0.75), rtol=1e-6)
    np.testing.assert_allclose(rel["cross_expert_use_l1"], np.full((K, K), 1 / 7), rtol=1e-6)
    np.testing.assert_allclose(rel["shared_gate_similarity"], np.ones((K, K)), rtol=1e-6)


def test_bst_scenario_embedding_similarity(data):
    model = _build("bst_scenario", data.spec)
    with torch.no_grad():
        w = model.scenario_embedding.weight
        w[1] = 3 * w[0]
        w[2] = -w[0]
    sim = model.relations({}, K)["embedding_similarity"]
    assert sim.shape == (K, K)
    assert sim[0, 1] == pytest.approx(1) and sim[0, 2] == pytest.approx(-1)


# ---- STAR: partitioned normalisation, star FC, relations ----------------------------------

def _random_pn(k, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    pn = PartitionedNorm(k, d)
    with torch.no_grad():
        for t in (pn.gamma, pn.beta, pn.scenario_gamma, pn.scenario_beta, pn.running_mean):
            t.copy_(torch.randn(t.shape, generator=g))
        pn.running_var.copy_(torch.rand(pn.running_var.shape, generator=g) + 0.5)
    return pn


def test_pn_eval_uses_each_scenarios_moving_statistics():
    pn = _random_pn(3, 5).eval()
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(1))
    s = torch.tensor([0, 2, 2, 1, 0, 2, 1])
    mean0, var0 = pn.running_mean.clone(), pn.running_var.clone()
    got = pn(x, s)
    for r in range(7):
        k = int(s[r])
        want = ((x[r] - mean0[k]) / torch.sqrt(var0[k] + 1e-5) * (pn.gamma * pn.scenario_gamma[k])
                + pn.beta + pn.scenario_beta[k])
        torch.testing.assert_close(got[r], want)
    assert torch.equal(pn.running_mean, mean0) and torch.equal(pn.running_var, var0)  # eval: no update


def test_pn_training_uses_each_scenarios_batch_statistics_and_updates_its_moving_averages():
    pn = _random_pn(4, 3).train()
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(2))
    s = torch.tensor([0, 1, 0, 1, 1, 0, 2, 1, 0])  # scenario 2: one row; scenario 3: none
    mean0, var0 = pn.running_mean.clone(), pn.running_var.clone()
    got = pn(x, s)
    for k in (0, 1):
        rows = x[s == k]
        mu, var = rows.mean(0), rows.var(0, unbiased=False)
        want = (rows - mu) / torch.sqrt(var + 1e-5) * (pn.gamma * pn.scenario_gamma[k]) + pn.beta + pn.scenario_beta[k]
        torch.testing.assert_close(got[s == k], want)
        torch.testing.assert_close(pn.running_mean[k], 0.9 * mean0[k] + 0.1 * mu)
        torch.testing.assert_close(pn.running_var[k], 0.9 * var0[k] + 0.1 * rows.var(0, unbiased=True))
    # the single row of scenario 2 is normalised with scenario 2's moving statistics
    want2 = ((x[6] - mean0[2]) / torch.sqrt(var0[2] + 1e-5) * (pn.gamma * pn.scenario_gamma[2])
             + pn.beta + pn.scenario_beta[2])
    torch.testing.assert_close(got[6], want2)
    for k in (2, 3):  # no batch variance / no rows: moving statistics untouched
        assert torch.equal(pn.running_mean[k], mean0[k]) and torch.equal(pn.running_var[k], var0[k])
    got.square().sum().backward()
    assert torch.isfinite(pn.scenario_gamma.grad).all() and pn.scenario_gamma.grad[3].abs().sum() == 0


def test_star_batch_without_a_scenario_or_with_a_single_row(data):
    model = _build("star", data.spec)
    no_2 = data.train.take(torch.nonzero(data.train.scenario != 2).squeeze(1)[:64])
    single = data.train.take(torch.tensor([0]))
    for b in (no_2, single):
        model.train()
        out = model(b)
        assert out["logit"].shape == (len(b),) and torch.isfinite(out["logit"]).all()
        model.zero_grad()
        model.loss(out, b.label).backward()
        assert torch.isfinite(model.fcn[0].weight.grad).all()
        model.eval()
        with torch.no_grad():
            assert torch.isfinite(model(b)["logit"]).all()


def test_star_logit_equals_hand_built_star_network(data):
    """Per sample s: layer l = (W^l (.) W_s^l, b^l + b_s^l), ReLU between layers, plus the aux logit."""
    model = _build("star", data.spec)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # scenario parts away from their neutral init (W_s = 1, b_s = 0)
        for layer in model.fcn:
            layer.scenario_weight.copy_(1 + 0.5 * torch.randn(layer.scenario_weight.shape, generator=g))
            layer.scenario_bias.copy_(0.5 * torch.randn(layer.scenario_bias.shape, generator=g))
    model.eval()
    b = _batch(data)
    with torch.no_grad():
        got = model(b)["logit"]
        x = model.features(b)
        z = model.pn(x, b.scenario)
        want = torch.empty(len(b))
        for r in range(len(b)):
            k, h = int(b.scenario[r]), z[r]
            for i, layer in enumerate(model.fcn):
                h = h @ (layer.weight * layer.scenario_weight[k]) + layer.bias + layer.scenario_bias[k, 0]
                if i < len(model.fcn) - 1:
                    h = torch.relu(h)
            aux_in = torch.cat([model.scenario_embedding.weight[k], x[r]])
            aux_hidden = torch.relu(model.aux.layers[0](aux_in))
            want[r] = h[0] + model.aux.head(aux_hidden)[0]
    torch.testing.assert_close(got, want)


def test_star_weight_similarity_from_hand_set_weights(data):
    model = _build("star", data.spec)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        d = [torch.randn(layer.weight.shape, generator=g) for layer in model.fcn]
        d2 = [torch.randn(layer.weight.shape, generator=g) for layer in model.fcn]
        for i, layer in enumerate(model.fcn):  # W_s - 1 per scenario: d, -d, d2, 0
            for k, delta in enumerate((d[i], -d[i], d2[i], torch.zeros_like(d[i]))):
                layer.scenario_weight[k] = 1 + delta
    rel = model.relations({}, K)
    assert set(rel) == {"weight_similarity", "weight_shift_similarity"}
    shift = rel["weight_shift_similarity"]
    assert shift[0, 1] == pytest.approx(-1)
    assert np.isnan(shift[3]).all()  # scenario 3 never moved from the shared centre
    w = torch.cat([layer.weight.detach().flatten() for layer in model.fcn]).double().numpy()
    deltas = [torch.cat([t.flatten() for t in ts]).double().numpy() for ts in (d, [-t for t in d], d2)]
    deltas.append(np.zeros_like(w))

    def cos(a, b):
        return a @ b / np.linalg.norm(a) / np.linalg.norm(b)

    for i in range(K):
        for j in range(K):  # effective weights W (.) W_s, and their shift W (.) (W_s - 1)
            assert rel["weight_similarity"][i, j] == pytest.approx(cos(w * (1 + deltas[i]), w * (1 + deltas[j])))
            if i < 3 and j < 3:
                assert shift[i, j] == pytest.approx(cos(w * deltas[i], w * deltas[j]))
    assert cos(w * deltas[0], w * deltas[2]) != pytest.approx(cos(deltas[0], deltas[2]), abs=1e-3)


# ---- sizes -------------------------------------------------------------------------------

def test_bottom_and_towers_split_cfg_mlp_like_bsts_depth(data):
    from saml_core.models.layers import split_bottom_tower
    assert split_bottom_tower((256, 128)) == ((256,), (128,))
    assert split_bottom_tower((64, 32, 16)) == ((64, 32), (16,))
    assert split_bottom_tower((8,)) == ((8,), ())  # the tower is the linear output layer
    model = _build("shared_bottom", data.spec)  # CFG.mlp = (16, 8)
    assert [type(m).__name__ for m in model.bottom] == ["Linear", "ReLU"] and model.bottom[0].out_features == 16
    assert [tuple(l.weight.shape) for l in model.towers.layers] == [(K, 16, 8)]
    assert tuple(model.towers.head.weight.shape) == (K, 8, 1)
    mmoe = _build("mmoe", data.spec, n_experts=3)
    assert [tuple(l.weight.shape[::2]) for l in mmoe.experts.layers] == [(3, 16)]
    ple = _build("ple", data.spec)
    assert [tuple(l.weight.shape) for l in ple.specific[1].layers] == [(K, 16, 16)]
    star = _build("star", data.spec)
    assert [tuple(l.weight.shape[1:]) for l in star.fcn] == [(16,), (8,), (1,)]


# ---- options and registry ------------------------------------------------------------------

@pytest.mark.parametrize("model_id,options,name", [
    ("mmoe", {"n_experts": 0}, "n_experts"),
    ("mmoe", {"n_experts": 2.5}, "n_experts"),
    ("mmoe", {"n_experts": True}, "n_experts"),
    ("ple", {"n_levels": 0}, "n_levels"),
    ("ple", {"n_shared_experts": 0}, "n_shared_experts"),
    ("ple", {"n_specific_experts": -1}, "n_specific_experts"),
    ("star", {"n_experts": 2}, "n_experts"),  # unknown option: the registry names it
])
def test_bad_options_are_clear_errors(data, model_id, options, name):
    value = next(iter(options.values()))
    with pytest.raises(ValueError, match=rf"{name}.*{value}|{model_id}.*{name}"):
        _build(model_id, data.spec, **options)


def test_registry_entries_of_the_baselines(data):
    entries = {e.id: e for e in registry.entries()}
    colors = [e.color.upper() for e in entries.values()]
    assert len(set(colors)) == len(colors)
    for model_id in NEW:
        e = entries[model_id]
        assert e.role == "baseline" and not e.default and e.order >= 30 and e.fit == "joint"
        model = _build(model_id, data.spec)
        # the entry's option defaults are the model's own defaults
        params = inspect.signature(type(model).__init__).parameters
        assert {n: p.default for n, p in params.items() if n not in ("self", "spec", "cfg")} == e.options


# ---- a short real training -----------------------------------------------------------------

@pytest.fixture(scope="module")
def countries():
    return load_dataset("synthetic-countries", size="small")


@pytest.mark.parametrize("model_id", NEW)
def test_short_training_on_synthetic_countries_learns(countries, model_id):
    torch.manual_seed(0)
    cfg = ModelConfig(d_g=4, heads=2, head_dim=4, ff_dim=8, mlp=(32, 16))
    model = build_model(model_id, countries.spec, cfg)
    tcfg = TrainConfig(lr=1e-2, batch_size=512, epochs=3, patience=3, min_epochs=1, device="cpu")
    res = fit(model, countries.train, countries.valid, tcfg, seed=0, device=torch.device("cpu"))
    assert res.epochs_run == 3
    assert res.best_valid_auc > 0.6, res.history
    assert all(math.isfinite(h["train_loss"]) for h in res.history)
