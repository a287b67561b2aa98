"""Model maths: optimized SAML == naive reference, gradient mask, mutual unit, ablations."""
import pytest
import torch

from saml_core.bench_speed import random_data
from saml_core.config import ModelConfig
from saml_core.models import build_model

# independent branch weights: identical branches would hide a branch mix-up in these checks
CFG = ModelConfig(d_g=4, d_s=2, heads=2, head_dim=4, ff_dim=8, mlp=(16, 8), branch_init="independent")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _saml_id(variant: str) -> str:
    return "saml" if variant == "full" else f"saml_{variant}"


@pytest.fixture(scope="module")
def data():
    return random_data(n_train=256, n_valid=64, n_test=64, k=4, seq_len=6, vocab=30)


def _batch(data, n=96):
    return data.train.take(torch.arange(n))


@pytest.mark.parametrize("variant", ["full", "no_gate", "no_aux"])
def test_optimized_forward_and_gradients_equal_naive(data, variant):
    torch.manual_seed(0)
    model = build_model(_saml_id(variant), data.spec, CFG).double()
    b = _batch(data)
    b.num = b.num.double()
    fast = model(b)
    loss_fast = model.loss({k: v for k, v in fast.items()}, b.label.double())
    grads_fast = torch.autograd.grad(loss_fast, [p for p in model.parameters()], allow_unused=True)
    ref = model.forward_reference(b)
    loss_ref = model.loss(ref, b.label.double())
    grads_ref = torch.autograd.grad(loss_ref, [p for p in model.parameters()], allow_unused=True)
    torch.testing.assert_close(fast["logit"], ref["logit"])
    for (name, _), gf, gr in zip(model.named_parameters(), grads_fast, grads_ref):
        if gf is None or gr is None:
            assert gf is None and gr is None or (gf if gr is None else gr).abs().sum() == 0, name
            continue
        torch.testing.assert_close(gf.to_dense(), gr.to_dense(), msg=name)
    with torch.no_grad():  # evaluation path (all branches, no grouping) gives the same scores
        torch.testing.assert_close(model(b)["logit"], ref["logit"].detach())


@pytest.mark.parametrize("variant", ["full", "no_gate", "no_aux"])
def test_gradient_mask_leaves_other_branches_untouched(data, variant):
    torch.manual_seed(0)
    model = build_model(_saml_id(variant), data.spec, CFG)
    s = 2
    idx = torch.nonzero(data.train.scenario == s).squeeze(1)[:64]
    b = data.train.take(idx)
    model.zero_grad()
    model.loss(model(b), b.label).backward()
    stacks = [p for n, p in model.named_parameters() if n.startswith(("branch_", "mutual"))]
    assert stacks
    for p in stacks:
        g = p.grad
        assert g is not None
        others = torch.cat([g[k].flatten() for k in range(data.spec.num_scenarios) if k != s])
        assert torch.count_nonzero(others) == 0
        assert torch.count_nonzero(g[s]) > 0
    # scenario-specific embedding rows and attention projections of other scenarios: zero too
    qk = model.scenario_attention.qk_weight.grad
    assert torch.count_nonzero(torch.cat([qk[k].flatten() for k in range(4) if k != s])) == 0


def test_alpha_rows_sum_to_one_and_exclude_self(data):
    torch.manual_seed(0)
    model = build_model("saml", data.spec, CFG).eval()
    b = _batch(data)
    with torch.no_grad():
        out = model(b, probes=True)
    pr, s = out["probes"], b.scenario  # batch-first probe tensors (models/base.py)
    alpha = pr["alpha"]
    assert alpha.shape == (len(b), 2, 4)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(len(b), 2))
    assert torch.all(alpha[torch.arange(len(b)), :, s] == 0)
    aa = pr["alpha_all"]
    assert torch.all(torch.diagonal(aa, dim1=2, dim2=3) == 0)
    assert torch.all((pr["gate"] > 0) & (pr["gate"] < 1))
    assert pr["hidden_all_0"].shape == (len(b), 4, 16) and pr["hidden_own_1"].shape == (len(b), 8)


def test_no_gate_is_independent_branches(data):
    """w/o gate: a sample's score depends on its own branch only (other branches' weights can
    change arbitrarily); with the gate it does not."""
    b = _batch(data)
    s0 = b.scenario == 0
    for variant, independent in [("no_gate", True), ("full", False)]:
        torch.manual_seed(0)
        model = build_model(_saml_id(variant), data.spec, CFG).eval()
        with torch.no_grad():
            before = model(b)["logit"]
            for layer in model.branch_w:
                layer.weight[1:].normal_()
            after = model(b)["logit"]
        same = torch.allclose(before[s0], after[s0])
        assert same == independent, variant
        assert not torch.allclose(before[~s0], after[~s0])


def test_no_gate_mut_and_bst_shapes(data):
    b = _batch(data)
    for model_id in ["saml_no_gate_mut", "bst", "bst_individual", "lr_te"]:
        m = build_model(model_id, data.spec, CFG)
        out = m(b)
        assert out["logit"].shape == (len(b),)
        assert torch.isfinite(m.loss(out, b.label))


@pytest.mark.parametrize("per_scenario", [False, True])
def test_target_query_attention_equals_full_self_attention(per_scenario):
    from saml_core.models.layers import SequenceAttention

    torch.manual_seed(0)
    att = SequenceAttention(12, 3, 4, 16, "target", num_scenarios=5 if per_scenario else 0).double()
    if per_scenario:
        torch.nn.init.normal_(att.qk_bias)
    tokens = torch.randn(40, 7, 12, dtype=torch.double, requires_grad=True)
    mask = torch.rand(40, 7) > 0.4
    mask[:, -1] = True
    s = torch.randint(0, 5, (40,))
    fast = att(tokens, mask, s)
    att.use_sdpa = True
    ref = att(tokens, mask, s)
    torch.testing.assert_close(fast, ref)
    g1 = torch.autograd.grad(fast.sum(), tokens)[0]
    g2 = torch.autograd.grad(ref.sum(), tokens)[0]
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("variant", ["full", "no_aux"])
def test_shared_branch_init_starts_branches_identical_then_training_separates_them(data, variant):
    from dataclasses import replace

    torch.manual_seed(0)
    model = build_model(_saml_id(variant), data.spec, replace(CFG, branch_init="shared"))
    stacks = {n: p for n, p in model.named_parameters() if n.startswith(("branch_", "mutual"))}
    for name, p in stacks.items():
        assert torch.equal(p, p[:1].expand_as(p)), name
    # identical branches see identical inputs: every alpha row is uniform over the other branches
    b = _batch(data)
    with torch.no_grad():
        alpha = model(b, probes=True)["probes"]["alpha"]
    torch.testing.assert_close(alpha.sum(-1), torch.ones_like(alpha.sum(-1)))
    assert torch.allclose(alpha[alpha > 0], torch.full_like(alpha[alpha > 0], 1 / 3))
    # one step on scenario 1 moves branch 1 only
    opt = torch.optim.SGD([p for p in stacks.values()], lr=0.1)
    idx = torch.nonzero(data.train.scenario == 1).squeeze(1)[:64]
    sb = data.train.take(idx)
    model.loss(model(sb), sb.label).backward()
    opt.step()
    w = model.branch_w[0].weight
    assert not torch.equal(w[1], w[0]) and torch.equal(w[0], w[2])

    independent = build_model(_saml_id(variant), data.spec, CFG)
    assert not torch.equal(independent.branch_w[0].weight[0], independent.branch_w[0].weight[1])


@pytest.mark.parametrize("variant", ["full", "no_aux"])
def test_own_branch_reading_the_all_branch_pass_equals_computing_it(data, variant):
    """Training reads the own branch's layer outputs from the all-branch pass; computing them per
    scenario segment instead (what a bf16 all-branch pass makes it do) gives the same logits and
    gradients (float64)."""
    torch.manual_seed(0)
    model = build_model(_saml_id(variant), data.spec, CFG).double()
    b = _batch(data)
    b.num = b.num.double()
    params = list(model.parameters())
    results = []
    for reuse in (True, False):
        original = model._context_states

        def context(*args, **kwargs):
            states = original(*args, **kwargs)
            for st in states:
                st["exact"] = reuse
            return states

        model._context_states = context
        out = model(b)
        grads = torch.autograd.grad(model.loss(out, b.label.double()), params, allow_unused=True)
        results.append((out["logit"], grads))
        del model._context_states
    (l1, g1), (l2, g2) = results
    torch.testing.assert_close(l1, l2)
    for (name, _), a, c in zip(model.named_parameters(), g1, g2):
        if a is None or c is None:
            assert a is None and c is None, name
            continue
        torch.testing.assert_close(a.to_dense(), c.to_dense(), msg=name)
