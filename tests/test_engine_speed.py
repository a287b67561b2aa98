"""Exactness of the speed-ups: each fast path equals its plain formula, outputs and gradients."""
import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from saml_core.bench_speed import random_data
from saml_core.config import ModelConfig
from saml_core.models.bst import BST
from saml_core.models.layers import SequenceAttention
from saml_core.models.saml import SAML
from saml_core.optim import ModelAdam

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _value_before_pooling(att, tokens, mask, scenario):
    """`_target_query` as it was: the value projection of every token, then the weighted sum."""
    b, t, d = tokens.shape
    h, dh = att.heads, att.head_dim
    inner = h * dh
    xt = tokens[:, -1, :]
    if att.per_scenario:
        w = att.qk_weight[scenario]
        q = torch.baddbmm(att.qk_bias[scenario].unsqueeze(1)[..., :inner], xt.unsqueeze(1), w[..., :inner]).squeeze(1)
        wk = w[..., inner:].reshape(b, d, h, dh).permute(0, 2, 3, 1)  # [B, h, dh, D]
    else:
        q = F.linear(xt, att.qk.weight[:inner], att.qk.bias[:inner])
        wk = att.qk.weight[inner:].view(1, h, dh, d)
    r = (q.view(b, h, dh, 1) * wk).sum(2)
    scores = torch.bmm(r, tokens.transpose(1, 2)) * (dh ** -0.5)
    p = torch.softmax(scores.masked_fill(~mask[:, None, :], float("-inf")), dim=-1)
    if att.training and att.dropout > 0:
        p = F.dropout(p, att.dropout)
    v = att.value_proj()(tokens).view(b, t, h, dh)
    attn = (p.transpose(1, 2).unsqueeze(-1) * v).sum(1).reshape(b, inner)
    x = att.norm1(xt + att.out(attn))
    return att.norm2(x + att.ff(x))


def _attention_case(per_scenario, dropout):
    torch.manual_seed(0)
    att = SequenceAttention(12, 3, 4, 16, "target", num_scenarios=5 if per_scenario else 0, dropout=dropout).double()
    if per_scenario:
        torch.nn.init.normal_(att.qk_bias)
    torch.nn.init.normal_(att.value.bias)  # a non-zero value bias: the pooled form must carry it
    tokens = torch.randn(40, 7, 12, dtype=torch.double, requires_grad=True)
    mask = torch.rand(40, 7) > 0.4
    mask[:, -1] = True
    return att, tokens, mask, torch.randint(0, 5, (40,))


def _grads(out, att, tokens):
    return torch.autograd.grad((out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum(),
                               [tokens] + list(att.parameters()))


@pytest.mark.parametrize("per_scenario", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_value_after_pooling_equals_value_before_pooling(per_scenario, dropout):
    """Within float64 rounding (assert_close: 1e-7 relative), also with dropout thinning the
    attention weights (same RNG state, same mask) so that they no longer sum to one."""
    att, tokens, mask, s = _attention_case(per_scenario, dropout)
    att.train()
    torch.manual_seed(1)
    fast = att(tokens, mask, s)
    torch.manual_seed(1)
    ref = _value_before_pooling(att, tokens, mask, s)
    torch.testing.assert_close(fast, ref)
    for name, g1, g2 in zip(["tokens"] + [n for n, _ in att.named_parameters()], _grads(fast, att, tokens),
                            _grads(ref, att, tokens)):
        torch.testing.assert_close(g1, g2, msg=name)


@pytest.mark.parametrize("per_scenario", [False, True])
def test_target_query_parameter_gradients_equal_full_self_attention(per_scenario):
    att, tokens, mask, s = _attention_case(per_scenario, 0.0)
    fast = att(tokens, mask, s)
    att.use_sdpa = True
    ref = att(tokens, mask, s)
    torch.testing.assert_close(fast, ref)
    for name, g1, g2 in zip(["tokens"] + [n for n, _ in att.named_parameters()], _grads(fast, att, tokens),
                            _grads(ref, att, tokens)):
        torch.testing.assert_close(g1, g2, msg=name)


@pytest.mark.parametrize("per_scenario", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_fused_target_attention_equals_autograd(per_scenario, training):
    """`_TargetAttention` (one autograd node, hand-written backward) against the same layer by
    autograd (`fused = False`): outputs bit for bit (the same forward ops), every gradient within
    float64 rounding (assert_close: 1e-7 relative), with random biases and layer-norm weights so
    that no term vanishes; the key bias gets a zero gradient either way."""
    att, tokens, mask, s = _attention_case(per_scenario, 0.0)
    for p in att.parameters():
        torch.nn.init.normal_(p, std=0.5)
    att.train(training)
    res = {}
    for fused in (True, False):
        att.fused = fused
        out = att(tokens, mask, s)
        res[fused] = out, _grads(out, att, tokens)
    assert torch.equal(res[True][0], res[False][0])
    names = ["tokens"] + [n for n, _ in att.named_parameters()]
    for name, g1, g2 in zip(names, res[True][1], res[False][1]):
        torch.testing.assert_close(g1, g2, msg=name)
    assert res[True][1][0].abs().sum() > 0
    with torch.no_grad():
        att.fused = True
        torch.testing.assert_close(att(tokens, mask, s), res[False][0])


@pytest.mark.parametrize("use", ["logit", "every layer"])
def test_fused_relu_layers_equal_autograd(use):
    """`_ReluLayers` (the MLP as one node) against the MLP layer by layer through autograd: the
    same outputs, every gradient within float64 rounding, whether only the logit or also the
    hidden layers are used downstream (as SAML's branches use the auxiliary network's)."""
    from saml_core.models.layers import MLP

    torch.manual_seed(0)
    mlp = MLP(13, (16, 8)).double()
    x = torch.randn(50, 13, dtype=torch.double, requires_grad=True)
    w = [torch.randn(50, 16, dtype=torch.double), torch.randn(50, 8, dtype=torch.double),
         torch.randn(50, dtype=torch.double)]
    res = {}
    for fused in (True, False):
        mlp.fused = fused
        hidden, logit = mlp(x)
        outs = hidden + [logit] if use == "every layer" else [logit]
        loss = sum((o * wi).sum() for o, wi in zip(outs, w if use == "every layer" else w[2:]))
        res[fused] = [t.detach() for t in hidden + [logit]], torch.autograd.grad(loss, [x] + list(mlp.parameters()))
    for a, b in zip(res[True][0], res[False][0]):
        assert torch.equal(a, b)
    names = ["x"] + [n for n, _ in mlp.named_parameters()]
    for name, g1, g2 in zip(names, res[True][1], res[False][1]):
        torch.testing.assert_close(g1, g2, msg=name)
        assert g1.abs().sum() > 0, name


@pytest.mark.parametrize("model_id", ["bst", "shared_bottom"])
def test_models_with_fused_layers_equal_autograd_layers(data, model_id):
    """BST and SharedBottom (the input block every single-network baseline shares) with the
    fused attention and ReLU layers against the same model through autograd layer by layer:
    logits and every parameter gradient within float64 rounding."""
    from saml_core.models import build_model

    torch.manual_seed(0)
    model = build_model(model_id, data.spec, CFG).double()
    b = data.train.take(torch.arange(96))
    b.num = b.num.double()
    res = {}
    for fused in (True, False):
        for m in model.modules():
            if hasattr(m, "fused"):
                m.fused = fused
        out = model(b)
        params = [p for p in model.parameters()]
        res[fused] = out["logit"], torch.autograd.grad(model.loss(out, b.label.double()), params)
    torch.testing.assert_close(res[True][0], res[False][0])
    for (name, _), g1, g2 in zip(model.named_parameters(), res[True][1], res[False][1]):
        torch.testing.assert_close(g1.to_dense(), g2.to_dense(), msg=name)


# --- SAML evaluation through the all-branch training layout -----------------------------------

CFG = ModelConfig(d_g=4, d_s=2, heads=2, head_dim=4, ff_dim=8, mlp=(16, 8), branch_init="independent")


@pytest.fixture(scope="module")
def data():
    return random_data(n_train=256, n_valid=64, n_test=64, k=4, seq_len=6, vocab=30)


@pytest.mark.parametrize("variant,mutual_layers", [("full", None), ("no_aux", None), ("no_gate", None),
                                                   ("full", (0,)), ("full", (1,))])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_evaluation_logits_equal_all_branch_reference(data, variant, mutual_layers, dtype):
    """probes=False evaluation (all-branch pass in the training layout, then own branch only)
    == `_branches_all` with the own output picked (forward_reference) == the probes path;
    float64 to assert_close's 1e-7, float32 to 1e-5."""
    torch.manual_seed(0)
    model = SAML(data.spec, replace(CFG, mutual_layers=mutual_layers), variant).to(dtype).eval()
    b = data.train.take(torch.arange(200))
    b.num = b.num.to(dtype)
    tol = {} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-5}
    with torch.no_grad():
        fast = model(b)["logit"]
        ref = model.forward_reference(b)["logit"]
        probed = model(b, probes=True)["logit"]
    torch.testing.assert_close(fast, ref, **tol)
    torch.testing.assert_close(fast, probed, **tol)
    assert fast.std() > 0


def test_mixing_pass_in_blocks_equals_the_mutual_unit_formula():
    """`MutualUnit.mix_context` (forward only, blocks of samples, softmax as exp / sum) equals
    `forward_all` (the eq. 6-8 formula by autograd's ops) whatever the block size, a last block
    shorter than the others included."""
    from saml_core.models.layers import MutualUnit

    torch.manual_seed(0)
    unit = MutualUnit(5, 12).double()
    torch.nn.init.normal_(unit.gate_bias)
    h = torch.relu(torch.randn(5, 300, 12, dtype=torch.double))  # [K, B, H]
    ref = unit.forward_all(h)[0].transpose(0, 1)  # [B, K, H]
    z = h.transpose(0, 1).contiguous()
    norm = z.norm(dim=-1).clamp_min(1e-8)
    for block in (None, 7, 64, 300, 1000):
        torch.testing.assert_close(unit.mix_context(z, norm, block), ref)


@pytest.mark.parametrize("bias", [True, False])
def test_own_output_layer_equals_a_matmul_per_scenario_segment(bias):
    """`OwnOutput` (each row's output weights gathered, product and sum) against `SegmentLinear`
    with one output unit (one matrix-vector product per scenario segment): the same logits and
    gradients within float64 rounding, an absent scenario included."""
    from saml_core.models.segments import OwnOutput, ScenarioOrder, SegmentLinear

    torch.manual_seed(0)
    k, n, hdim = 5, 60, 7
    scenario = torch.randint(0, k, (n,))
    scenario[scenario == 3] = 4  # scenario 3 absent: its weights get zero gradients
    order = ScenarioOrder(scenario, k)
    h = torch.randn(n, hdim, dtype=torch.double, requires_grad=True)
    weight = torch.randn(k, hdim, 1, dtype=torch.double, requires_grad=True)
    b = torch.randn(k, 1, 1, dtype=torch.double, requires_grad=True) if bias else None
    params = [h, weight] + ([b] if bias else [])
    w = torch.randn(n, dtype=torch.double)
    fast = OwnOutput.apply(h, weight, b, order.scenario)
    ref = SegmentLinear.apply(h, weight, b, order, False, None).squeeze(-1)
    torch.testing.assert_close(fast, ref)
    grads = torch.autograd.grad((fast * w).sum(), params)
    for g1, g2 in zip(grads, torch.autograd.grad((ref * w).sum(), params)):
        torch.testing.assert_close(g1, g2)
    assert grads[1][3].abs().sum() == 0 and grads[1].abs().sum() > 0


# --- optional torch.compile of the dense parts; bf16 all-branch pass ------------------------------

def _outputs_and_grads(model, b):
    out = model(b)
    loss = model.loss(out, b.label)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return out, {n: g.to_dense() for (n, _), g in zip(model.named_parameters(), grads) if g is not None}


@pytest.mark.parametrize("model_id", ["saml", "bst"])
def test_compiled_dense_parts_equal_eager(data, model_id):  # compiles: ~40 s on a cold inductor cache
    """compile_dense (inductor) gives the eager outputs and gradients within float32 rounding
    (1e-5 absolute and relative: kernels are fused and sums reordered) and keeps parameter names."""
    torch.manual_seed(0)
    eager = SAML(data.spec, CFG, "full") if model_id == "saml" else BST(data.spec, CFG)
    compiled = SAML(data.spec, CFG, "full") if model_id == "saml" else BST(data.spec, CFG)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_dense(dynamic=False)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    b = data.train.take(torch.arange(128))
    out_e, grads_e = _outputs_and_grads(eager, b)
    out_c, grads_c = _outputs_and_grads(compiled, b)
    for key in out_e:
        torch.testing.assert_close(out_c[key], out_e[key], atol=1e-5, rtol=1e-5)
    assert grads_c.keys() == grads_e.keys()
    for name in grads_e:
        torch.testing.assert_close(grads_c[name], grads_e[name], atol=1e-5, rtol=1e-5, msg=name)


def test_bf16_all_branch_pass_stays_close_to_float32(data):
    """context_dtype=bfloat16 (default on CUDA, opt-in on CPU) rounds only the detached
    all-branch states: logits within 2e-3 absolute (bf16 keeps ~3 significant digits; logits
    here are |x| < 1), every gradient within 3 % (relative norm) of the float32 pass."""
    torch.manual_seed(0)
    model = SAML(data.spec, CFG, "full")
    b = data.train.take(torch.arange(128))
    res = {}
    for dt in (None, torch.bfloat16):
        model.context_dtype = dt
        res[dt] = _outputs_and_grads(model, b)
    (out32, g32), (out16, g16) = res[None], res[torch.bfloat16]
    diff = (out32["logit"] - out16["logit"]).abs().max()
    assert 0 < diff < 2e-3  # > 0: the bf16 pass did run
    for name, g in g32.items():
        assert (g16[name] - g).norm() <= 0.03 * g.norm() + 1e-12, name


def test_fused_adam_on_cpu_equals_foreach_adam(data):
    """ModelAdam uses torch's fused Adam kernel on CPU; after several steps the weights equal those
    of the foreach implementation within float32 rounding (1e-6)."""
    torch.manual_seed(0)
    model = SAML(data.spec, CFG, "full")
    ref, init = copy.deepcopy(model), copy.deepcopy(model)
    opt = ModelAdam(model, lr=1e-2)
    assert opt.optimizers[0].defaults["fused"]
    dense_ref = [p for n, p in ref.named_parameters() if "table" not in n]
    sparse_ref = [p for n, p in ref.named_parameters() if "table" in n]
    ref_opts = [torch.optim.Adam(dense_ref, lr=1e-2, foreach=True), torch.optim.SparseAdam(sparse_ref, lr=1e-2)]
    for step in range(4):
        b = data.train.take(torch.arange(step * 64, step * 64 + 64))
        for m, o in ((model, opt), (ref, None)):
            loss = m.loss(m(b), b.label)
            m.zero_grad(set_to_none=True)
            loss.backward()
            if o is not None:
                o.step()
        for o in ref_opts:
            o.step()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-6, msg=name)
    assert not torch.equal(model.branch_w[0].weight, init.branch_w[0].weight)  # the steps did train


@pytest.mark.parametrize("variant", ["full", "no_gate", "no_aux", "no_gate_mut"])
def test_training_and_evaluation_under_bf16_autocast(data, variant):
    """The CUDA path trains and evaluates under bf16 autocast with a bf16 all-branch pass; CPU
    autocast stands in for it here (no GPU in the test run): the in-place / out= ops of the fast
    paths must not meet autocast's dtype casts, and logits stay within 1e-2 of float32."""
    torch.manual_seed(0)
    model = SAML(data.spec, CFG, variant)
    model.context_dtype = torch.bfloat16
    b = data.train.take(torch.arange(128))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(model(b), b.label)
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        ref = model(b)["logit"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(b)["logit"]
            model(b, probes=True)
    torch.testing.assert_close(fast.float(), ref, atol=1e-2, rtol=0)


# --- embedding tables: one table per kind, row gradients summed in the lookup's backward --------

@pytest.mark.parametrize("num_rows,n_ids", [(50, 400), (5000, 40)])  # dense scatter / sort path
@pytest.mark.parametrize("sparse", [True, False])
def test_table_lookup_gradient_equals_nn_embedding(num_rows, n_ids, sparse):
    """Two lookups in one table (as a target item and its behaviour channel): the summed gradient
    equals nn.Embedding's (coalesced) within float64 rounding, for both summing paths."""
    from saml_core.models.table_rows import DENSE_ROWS_PER_ID, lookup

    assert (num_rows <= DENSE_ROWS_PER_ID * n_ids) == (num_rows == 50)
    torch.manual_seed(0)
    ref = torch.nn.Embedding(num_rows, 3, sparse=sparse).double()
    mine = copy.deepcopy(ref)
    ids = [torch.randint(0, 40, (n_ids // 4,)), torch.randint(0, 40, (n_ids // 8, 6))]  # duplicates
    ids[0][:3] = num_rows - 1
    w = [torch.randn(*i.shape, 3, dtype=torch.double) for i in ids]
    sum((ref(i) * wi).sum() for i, wi in zip(ids, w)).backward()
    outs = lookup(mine, *ids)
    for o, i in zip(outs, ids):
        torch.testing.assert_close(o, ref(i))
    sum((o * wi).sum() for o, wi in zip(outs, w)).backward()
    assert mine.weight.grad.is_sparse == sparse
    if sparse:
        got, want = mine.weight.grad, ref.weight.grad.coalesce()
        from saml_core.models.table_rows import coalesced

        got = coalesced(got)
        assert got.is_coalesced()
        assert torch.equal(got.indices(), want.indices())
        torch.testing.assert_close(got.values(), want.values())
    else:
        torch.testing.assert_close(mine.weight.grad, ref.weight.grad)


@pytest.mark.parametrize("width", [4, 3])  # float pairs, and the plain row copies of an odd width
def test_lazy_adam_equals_sparse_adam(width):
    """LazyAdam (torch's fused Adam kernel on the gradient's rows) against torch's SparseAdam over
    50 steps with rows seen in some steps only: weights and moments within float32 rounding
    (1e-6), rows never seen untouched bit for bit, and the same state layout."""
    from saml_core.optim import LazyAdam

    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(30, width))
    b = torch.nn.Parameter(a.detach().clone())
    start = a.detach().clone()
    opt_a, opt_b = LazyAdam([a], lr=0.01), torch.optim.SparseAdam([b], lr=0.01)
    for step in range(50):
        rows = torch.randint(0, 25, (12,))  # rows 25-29 never: lazy, they keep their values
        g = torch.sparse_coo_tensor(rows.unsqueeze(0), torch.randn(12, width), (30, width))
        a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert torch.equal(a[25:], start[25:]) and not torch.equal(a[:25], start[:25])
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(opt_a.state[0][key], opt_b.state[b][key], rtol=1e-6, atol=1e-7)
    assert opt_a.state[0]["step"] == opt_b.state[b]["step"] == 50
    opt_c = LazyAdam([torch.nn.Parameter(b.detach().clone())], lr=0.01)
    opt_c.load_state_dict(opt_b.state_dict())  # the same state layout as SparseAdam's


@pytest.mark.parametrize("model_id", ["saml", "bst"])
def test_files_with_one_table_per_field_load_into_the_merged_tables(data, model_id):
    """A state dict in the layout before (features.<f>.global_table / scenario_table per field,
    as in the shipped model.pt files) loads and gives the same outputs."""
    from saml_core.models import build_model

    torch.manual_seed(0)
    model = build_model(model_id, data.spec, CFG).eval()
    state = model.state_dict()
    old, prefix = {}, "embedding." if model_id == "saml" else "features.embedding."
    vocab = [f.vocab_size for f in data.spec.cat_fields]
    for key, value in state.items():
        kind = key[len(prefix):].split(".")[0] if key.startswith(prefix) else None
        if kind in ("global_table", "scenario_table"):
            scale = value.shape[0] // sum(vocab)  # K for the scenario table
            for f, part in enumerate(value.split([v * scale for v in vocab])):
                old[f"{prefix}features.{f}.{kind}.weight"] = part.clone()
        else:
            old[key] = value.clone()
    assert f"{prefix}features.3.global_table.weight" in old
    fresh = build_model(model_id, data.spec, replace(CFG, branch_init="shared")).eval()
    fresh.load_state_dict(old)
    b = data.train.take(torch.arange(64))
    with torch.no_grad():
        torch.testing.assert_close(fresh(b)["logit"], model(b)["logit"], rtol=0, atol=0)


def test_fused_adam_equals_torch_fused_adam_and_shares_its_state_layout():
    """optim.FusedAdam: torch.optim.Adam(fused=True)'s weights bit for bit (weight decay on, one
    parameter without a gradient in one step), and each loads the other's state_dict."""
    from saml_core.optim import FusedAdam

    torch.manual_seed(0)
    mine = [torch.nn.Parameter(torch.randn(7, 3)), torch.nn.Parameter(torch.randn(5))]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in mine]
    opt_mine, opt_ref = FusedAdam(mine, lr=0.01, weight_decay=0.1), torch.optim.Adam(ref, lr=0.01, weight_decay=0.1,
                                                                                       fused=True)
    for step in range(5):
        for i, (a, b) in enumerate(zip(mine, ref)):
            g = None if (step == 2 and i == 1) else torch.randn(a.shape)
            a.grad, b.grad = g, None if g is None else g.clone()
        opt_mine.step()
        opt_ref.step()
        for a, b in zip(mine, ref):
            assert torch.equal(a, b), step
    other = FusedAdam([torch.nn.Parameter(p.detach().clone()) for p in mine], lr=0.01, weight_decay=0.1)
    other.load_state_dict(opt_ref.state_dict())
    back = torch.optim.Adam([torch.nn.Parameter(p.detach().clone()) for p in ref], lr=0.01, weight_decay=0.1,
                            fused=True)
    back.load_state_dict(opt_mine.state_dict())
    for st_a, st_b in zip(other.state.values(), opt_ref.state.values()):
        assert float(st_a["step"]) == float(st_b["step"]) and torch.equal(st_a["exp_avg_sq"], st_b["exp_avg_sq"])


def test_a_training_step_imports_no_torch_dynamo():
    """torch.optim imports torch._dynamo on its first step (seconds of every training process);
    the engine's training loop does not."""
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from saml_core.bench_speed import random_data\nfrom saml_core.config import ModelConfig\n"
            "from saml_core.models import build_model\nfrom saml_core.optim import ModelAdam\n"
            "d = random_data(n_train=200, k=3, seq_len=4, vocab=20)\n"
            "m = build_model('saml', d.spec, ModelConfig(d_g=4, d_s=2, heads=2, head_dim=4, ff_dim=8, mlp=(8, 4)))\n"
            "opt = ModelAdam(m, 1e-3)\nb = d.train.take(torch.arange(64))\n"
            "loss = m.loss(m(b), b.label); opt.zero_grad(); loss.backward(); opt.step()\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_bench_counts_both_kinds_of_operator_calls_and_states_each_target(data):
    """The bench's operator counts of a SAML training step (dispatched aten operators, and
    torch.profiler's events, which count nested calls again) and its target lines: each count
    printed, each against its own target, met or not by what was measured."""
    from saml_core import bench_speed as bench

    torch.manual_seed(0)
    runner = bench._ours("saml", data.spec, CFG, data.train, 64, 64, 64)
    counts = bench.count_ops(runner)
    assert 0 < counts["dispatched"] < counts["profiler_events"]
    result = {"saml_ops_per_step": counts["dispatched"], "saml_profiler_events_per_step": 1999,
              "experiment": {"outside_training_share": 0.3, "outside_training_share_cpu": 0.2}}
    status = {v["key"]: (v["measured"], v["status"]) for v in bench.verdicts(result)}
    assert status["saml_ops_per_step"] == (counts["dispatched"], "met")
    assert status["saml_profiler_events_per_step"] == (1999, "met")
    assert status["experiment.outside_training_share"] == (0.3, "NOT met")
    assert status["experiment.outside_training_share_cpu"] == (0.2, "met")
    assert status["bst_batch256_to_1024_throughput"] == (None, "not measured")


def test_thread_table_prints_the_ceiling_any_thread_choice_reaches_beside_the_target():
    """The quiet ratio adaptive / 1 thread is bounded by 2 threads / 1 thread on the machine (a
    policy only chooses between them): the bench prints both, from the same rows."""
    from saml_core import bench_process, bench_speed

    rows = []
    for load, speeds in (("quiet", {"1 thread": (100, 200), "2 threads": (150, 240), "adaptive": (147, 236)}),
                         ("loaded", {"1 thread": (60, 120), "2 threads": (40, 70), "adaptive": (58, 121)})):
        for setting, (saml, bst) in speeds.items():
            rows.append({"setting": setting, "load": load, "repeat": 0, "load_average": 1.0, "saml": saml, "bst": bst})
    ratios = bench_process.thread_ratios(rows)
    assert ratios["saml_two_threads_to_one_thread_quiet"] == 1.5 and ratios["bst_two_threads_to_one_thread_quiet"] == 1.2
    assert ratios["saml_adaptive_to_one_thread_quiet"] == 1.47
    assert ratios["bst_adaptive_to_best_fixed_loaded"] == round(121 / 120, 3)
    threads = {"rows": rows, "busy_processes": 2, **ratios}
    lines = [line for line in bench_speed.format_threads(threads) if "2 threads / 1" in line]
    assert lines == ["  2 threads / 1 thread, quiet (the most any choice between them reaches on this machine): "
                     "SAML 1.50, BST 1.20"]
