"""SAML: Scenario-aware Mutual Learning (see the method spec, sections 1-3).

Read top to bottom:
  1. features(): scenario-aware embedding + global / scenario-specific attention
     -> e_ind (scenario-independent) and e_dep (scenario-dependent).
  2. the auxiliary MLP on e_ind (own loss); its hidden layers a^l feed every branch.
  3. the multi-branch network, eq. (4) read literally: h_k^{l+1} = relu(W_k^l h~_k^l + U_k^l a^l
     + b_k^l) with h^0 = e_dep and a^0 = e_ind (aux input), a^l = aux hidden layer l; the mutual
     unit, eq. (6)-(8), after each hidden layer: h~_k = h_k + g_k sum_j alpha_kj stopgrad(h_j).
  4. the gradient mask: a sample of scenario s is scored, and trains, through branch s only.

Speed (training): every branch's state is needed by the mutual unit, but only the sample's own
branch receives gradient (the others enter detached). So all K branches run forward-only under
no_grad, and the own branch runs with gradient on the batch sorted by scenario: its layer outputs
are read from the all-branch pass (the same values), its mutual units and its backward are
written by hand (`SegmentLinear`: one matmul per scenario segment; `_OwnMutual`), so the
autograd graph of the branches is a handful of nodes. Evaluation without probes runs the same
all-branch pass and scores only the own branch. `forward_reference` is the plain
all-branches-with-autograd version; tests check that both give the same outputs and gradients.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.base import ScenarioModel, scenario_mean
from saml_core.models.layers import BranchLinear, MLP, MutualUnit, ScenarioAwareEmbedding, SequenceAttention
from saml_core.models.segments import ScenarioOrder, SegmentLinear


class _OwnMutual(torch.autograd.Function):
    """The mutual unit (eq. 6-8) of the own branch only, with a hand-written backward: h [B, H]
    (branch `branch[b]` on sample b), gate weights [K, H] and biases [K]; h_all [B, K, H] every
    branch's state on the same samples and norm_all [B, K] its norms (the all-branch pass: no
    gradient). h~ = h + g * sum_j alpha_j h_all[j], alpha = softmax_{j != own}(cos(h, h_all[j])),
    g = sigmoid(w_own . h + b_own). The backward reads h_all twice as two batched matmuls and
    makes no [B, K, H] temporary (autograd of the same formula made three)."""

    @staticmethod
    def forward(ctx, h, gate_weight, gate_bias, h_all, norm_all, branch):
        k = h_all.shape[1]
        n = h.norm(dim=-1, keepdim=True).clamp_min_(1e-8)  # F.normalize's max(|h|, eps)
        c = torch.bmm(h_all, (h / n).unsqueeze(2)).squeeze(2).div_(norm_all)  # cos [B, K]
        alpha = torch.softmax(c.masked_fill_(F.one_hot(branch, k).bool(), float("-inf")), dim=-1)
        w_own, b_own = gate_weight.index_select(0, branch), gate_bias.index_select(0, branch)
        g = torch.sigmoid_((h * w_own).sum(-1).add_(b_own))  # [B]
        mix = torch.bmm(alpha.unsqueeze(1), h_all).squeeze(1)  # [B, H]
        ctx.save_for_backward(h, n, h_all, norm_all, alpha, g, mix, w_own, branch)
        ctx.gate_shape = gate_weight.shape
        return torch.addcmul(h, g.unsqueeze(-1), mix)

    @staticmethod
    def backward(ctx, dout):
        h, n, h_all, norm_all, alpha, g, mix, w_own, branch = ctx.saved_tensors
        dg = (dout * mix).sum(-1)  # [B]
        dalpha = torch.bmm(h_all, (dout * g.unsqueeze(-1)).unsqueeze(2)).squeeze(2)  # [B, K]
        dc = alpha * (dalpha - (alpha * dalpha).sum(-1, keepdim=True))  # softmax; 0 on the own branch
        du = torch.bmm((dc / norm_all).unsqueeze(1), h_all).squeeze(1)  # [B, H]
        unit = h / n
        # through u = h / max(|h|, eps): the projection off u where |h| > eps, du / eps below
        proj = torch.where(n > 1e-8, unit * (unit * du).sum(-1, keepdim=True), torch.zeros_like(du))
        dzg = dg * g * (1 - g)  # through the gate's sigmoid
        dh = dout + (du - proj) / n + dzg.unsqueeze(-1) * w_own
        dw = db = None
        if ctx.needs_input_grad[1]:
            dw = h.new_zeros(ctx.gate_shape).index_add_(0, branch, dzg.unsqueeze(-1) * h)
        if ctx.needs_input_grad[2]:
            db = h.new_zeros(ctx.gate_shape[0]).index_add_(0, branch, dzg)
        return dh, dw, db, None, None, None


VARIANTS = ("full", "no_gate", "no_aux", "no_gate_mut")


class SAML(ScenarioModel):
    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, variant: str = "full"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"SAML variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        self.spec, self.cfg, self.variant = spec, cfg, variant
        self.aux_weight = cfg.aux_weight
        self.k = spec.num_scenarios
        self.context_dtype: torch.dtype | None = None  # dtype of the forward-only all-branch pass
        self.use_aux = variant in ("full", "no_gate")
        self.use_branches = variant != "no_gate_mut"
        self.use_mutual = variant in ("full", "no_aux")
        depth = len(cfg.mlp)
        self.mutual_layers = tuple(range(depth)) if cfg.mutual_layers is None else tuple(cfg.mutual_layers)
        if not self.use_mutual:
            self.mutual_layers = ()

        # 1. scenario-aware feature representation
        self.embedding = ScenarioAwareEmbedding(spec, cfg.d_g, cfg.d_s, cfg.sparse_embeddings)
        d = self.embedding.token_dim
        self.has_seq = d > 0
        attn_dim = 0
        if self.has_seq:
            args = (d, cfg.heads, cfg.head_dim, cfg.ff_dim, cfg.attn_readout)
            self.global_attention = SequenceAttention(*args, dropout=cfg.dropout)
            self.scenario_attention = SequenceAttention(
                *args, num_scenarios=self.k, shared_value=self.global_attention.value, dropout=cfg.dropout
            )
            attn_dim = self.global_attention.output_dim
        n_num = len(spec.num_fields)
        ind_dim = self.embedding.global_dim + attn_dim + n_num
        dep_dim = self.embedding.scenario_dim + attn_dim + n_num
        if cfg.dep_includes_global:
            dep_dim += self.embedding.global_dim

        # 2. auxiliary network (in no_gate_mut: the one unified MLP on all features)
        if self.use_aux:
            self.aux = MLP(ind_dim, cfg.mlp, cfg.dropout)
        elif not self.use_branches:
            self.aux = MLP(ind_dim + dep_dim, cfg.mlp, cfg.dropout)

        # 3. multi-branch network: K branches as weight stacks
        if self.use_branches:
            in_dim = dep_dim if self.use_aux else dep_dim + ind_dim
            dims = (in_dim,) + cfg.mlp
            self.branch_w = nn.ModuleList(BranchLinear(self.k, a, b) for a, b in zip(dims[:-1], dims[1:]))
            if self.use_aux:  # U_k^l: aux layer output a^l (a^0 = e_ind) into branch layer l+1
                aux_dims = (ind_dim,) + cfg.mlp[:-1]
                self.branch_u = nn.ModuleList(
                    BranchLinear(self.k, a, h, bias=False) for a, h in zip(aux_dims, cfg.mlp)
                )
            self.branch_out = BranchLinear(self.k, cfg.mlp[-1], 1)
            self.mutual = nn.ModuleDict(
                {str(l): MutualUnit(self.k, cfg.mlp[l]) for l in self.mutual_layers}
            )
            if cfg.branch_init == "shared":
                self._share_branch_init()

    @torch.no_grad()
    def _share_branch_init(self) -> None:
        """Give every branch (and gate) branch 0's initial weights: the stacks' first dim is K."""
        stacks = [self.branch_w, self.branch_out, self.mutual] + ([self.branch_u] if self.use_aux else [])
        for module in stacks:
            for p in module.parameters():
                p.copy_(p[:1].expand_as(p))

    def compile_dense(self, **options) -> None:
        """Opt-in `torch.compile` (options: its keyword arguments) of the dense parts: both
        attentions, the auxiliary MLP, the forward-only all-branch pass and the own-branch mutual
        unit. Left eager: the sparse embedding lookups (compiled autograd does not take sparse
        gradients) and the own branch's per-scenario segments, whose sizes change every batch
        (compiled code is specialised to them: one recompilation per size pattern). Parameter
        names are unchanged. Measured on CPU (docs/ENGINE.md): ~1.1x per training step after
        about a minute of compilation, so it is off by default."""
        if self.has_seq:
            self.global_attention.compile(**options)
            self.scenario_attention.compile(**options)
        if hasattr(self, "aux"):
            self.aux.compile(**options)
        if self.use_branches:
            self._context_pass = torch.compile(self._context_pass, **options)
            for unit in self.mutual.values():
                unit.forward_own = torch.compile(unit.forward_own, **options)

    # 1 ------------------------------------------------------------------------------------
    def features(self, batch):
        """-> e_ind [B, ind_dim], e_dep [B, dep_dim]."""
        s = batch.scenario
        e_glob, e_scen, tokens = self.embedding(batch.cat, s, batch.seq, with_scenario=True)
        ind, dep = [e_glob], [e_scen]
        if self.has_seq:
            mask = torch.cat([batch.seq_mask, torch.ones_like(batch.seq_mask[:, :1])], dim=1)
            ind.append(self.global_attention(tokens, mask))
            dep.append(self.scenario_attention(tokens, mask, scenario=s))
        if batch.num.shape[1]:
            ind.append(batch.num)
            dep.append(batch.num)
        if self.cfg.dep_includes_global:
            dep.append(e_glob)
        return torch.cat(ind, dim=1), torch.cat(dep, dim=1)

    # 3 ------------------------------------------------------------------------------------
    def _layer(self, l: int, h_prev, aux_in):
        """Eq. (4) for all K branches: h_prev [K, N, .] or shared [N, .]; aux_in[l] = a^l [N, .]."""
        w = self.branch_w[l]
        if not self.use_aux:
            return F.relu(w(h_prev))
        u, a = self.branch_u[l], aux_in[l]
        if h_prev.dim() == a.dim():  # same rows: one matmul on [h, a] with stacked [W; U]
            weight = torch.cat([w.weight, u.weight], dim=1)
            return F.relu(torch.matmul(torch.cat([h_prev, a], dim=-1), weight) + w.bias)
        return F.relu(w(h_prev) + u(a))

    def _branches_all(self, x, aux_hidden, keep: bool):
        """Every branch on every sample (x: [B, in], shared). Returns logits [K, B] and, if keep,
        per layer a dict: h [K, B, H] (before the mutual unit) and, where a mutual unit sits,
        alpha [B, K, K], g [K, B]."""
        h, states = x, []
        for l in range(len(self.cfg.mlp)):
            h = self._layer(l, h, aux_hidden)
            st = {"h": h}
            if str(l) in self.mutual:
                h, st["alpha"], st["g"] = self.mutual[str(l)].forward_all(h)
            if keep:
                states.append(st)
        return self.branch_out(h).squeeze(-1), states

    def _branches_own(self, x, aux_hidden, order: ScenarioOrder, states):
        """Own branch only, with gradient, on a scenario-sorted batch (x, aux_hidden and `states`
        in `order`): per layer one matmul per scenario segment, the mutual unit against the
        detached all-branch `states`. Returns logits [B] (sorted)."""
        h = x
        # the all-branch pass in the model dtype holds each layer's output of the own branch too
        reuse = states is not None and states[0]["h"].dtype == x.dtype and states[0].get("exact", False)
        for l in range(len(self.cfg.mlp)):
            w = self.branch_w[l]
            given = states[l]["h"] if reuse else None
            if self.use_aux:  # [h, a] times the stacked [W; U] of the segment's branch
                h = SegmentLinear.apply(torch.cat([h, aux_hidden[l]], 1),
                                         torch.cat([w.weight, self.branch_u[l].weight], 1), w.bias, order, True, given)
            else:
                h = SegmentLinear.apply(h, w.weight, w.bias, order, True, given)
            if str(l) in self.mutual:
                st, unit = states[l], self.mutual[str(l)]
                h = _OwnMutual.apply(h, unit.gate_weight, unit.gate_bias, st["h"], st["norm"], order.scenario)
        return SegmentLinear.apply(h, self.branch_out.weight, self.branch_out.bias, order, False, None).squeeze(-1)

    # forward ------------------------------------------------------------------------------
    def _branch_inputs(self, batch):
        """-> x (the branches' input), aux_hidden (a^l per layer, None without aux), out (aux_logit)."""
        e_ind, e_dep = self.features(batch)
        out = {}
        if self.use_aux:
            aux_hidden, out["aux_logit"] = self.aux(e_ind)
            return e_dep, [e_ind] + aux_hidden[:-1], out  # a^0 = e_ind, a^l = aux hidden l
        return torch.cat([e_dep, e_ind], dim=1), None, out

    def forward(self, batch, probes: bool = False) -> dict:
        if not self.use_branches:  # w/o gate&mut: one unified MLP
            e_ind, e_dep = self.features(batch)
            return {"logit": self.aux(torch.cat([e_ind, e_dep], dim=1))[1]}
        if probes:
            x, aux_hidden, out = self._branch_inputs(batch)
            s = batch.scenario
            logits, states = self._branches_all(x, aux_hidden, keep=True)
            idx = torch.arange(s.shape[0], device=s.device)
            out["logit"] = logits[s, idx]
            out["probes"] = self._probe_tensors(states, s, idx)
            return out
        if not torch.is_grad_enabled() and self.mutual_layers:  # evaluation
            x, aux_hidden, out = self._branch_inputs(batch)
            out["logit"] = self._own_logits(x, aux_hidden, batch.scenario)
            return out
        # training (and evaluation without mutual units): own branch on the scenario-sorted batch
        order = ScenarioOrder(batch.scenario, self.k)
        x, aux_hidden, out = self._branch_inputs(batch.take(order.order))
        states = None
        if self.mutual_layers:
            states = self._context_pass(x, aux_hidden)  # forward-only, every branch
        out["logit"] = self._branches_own(x, aux_hidden, order, states)
        return {key: order.unsort(v) for key, v in out.items()}

    @torch.no_grad()
    def _own_logits(self, x, aux_in, s):
        """Evaluation without probes (model with mutual units): each sample's own-branch logit [B].
        The forward-only all-branch pass in the model dtype, then the last layer's mixing and the
        output for the own branch only (`_branches_all` mixes and scores all K). Same logits as
        `_branches_all` (tested)."""
        last = len(self.cfg.mlp) - 1
        st = self._context_pass(x, aux_in, dtype=x.dtype)[last]
        idx = torch.arange(s.shape[0], device=s.device)
        h = st["h"][idx, s]  # [B, H] own branch
        if str(last) in self.mutual:
            h = self.mutual[str(last)].forward_own(h, st["h"], st["norm"], s)[0]
        out = self.branch_out
        return torch.baddbmm(out.bias[s], h.unsqueeze(1), out.weight[s]).view(-1)

    @torch.no_grad()
    def _context_pass(self, x, aux_in, dtype: torch.dtype | None = None):
        """All branches, forward only: per layer the states h_j [B, K, H] (and their norms) that
        the mutual unit mixes into the own branch. Same maths as `_branches_all`, laid out
        sample-major with in-place ops; the last layer's mixing is skipped (no one reads it).
        The matmuls run in `dtype`, else `context_dtype` (bfloat16 on CUDA in training: these
        values get no gradient), else the model dtype."""
        # precision set here, not by an enclosing autocast (CUDA training runs under one): its
        # casts would mix dtypes within the in-place and out= ops below
        with torch.autocast(x.device.type, enabled=False):
            return self._context_states(x, aux_in, dtype or self.context_dtype or x.dtype)

    def _context_states(self, x, aux_in, dt: torch.dtype):
        b, k = x.shape[0], self.k
        depth = len(self.cfg.mlp)
        h, states = None, []
        for l in range(depth):
            w = self.branch_w[l]
            out = w.weight.shape[2]
            u_in = None
            if l == 0:
                inp, weight = x, w.weight  # shared rows: one [B, in] x [in, K*H] matmul
                if self.use_aux:
                    inp, weight = torch.cat([x, aux_in[0]], 1), torch.cat([weight, self.branch_u[0].weight], 1)
                z = torch.addmm(w.bias.reshape(1, k * out).to(dt), inp.to(dt),
                                weight.permute(1, 0, 2).reshape(-1, k * out).to(dt)).view(b, k, out)
            else:
                per_branch = torch.bmm(h.transpose(0, 1).to(dt), w.weight.to(dt))  # [K, B, H]
                if self.use_aux:
                    u = self.branch_u[l].weight
                    u_in = torch.addmm(w.bias.reshape(1, k * out).to(dt), aux_in[l].to(dt),
                                       u.permute(1, 0, 2).reshape(-1, k * out).to(dt)).view(b, k, out)
                    z = u_in.add_(per_branch.transpose(0, 1))
                else:
                    z = per_branch.transpose(0, 1) + w.bias.transpose(0, 1).to(dt)
            z = z.to(x.dtype).relu_()  # context states kept in the model dtype
            st = {"h": z, "exact": dt == x.dtype}  # exact: the own branch may reuse its rows
            if str(l) in self.mutual:
                st["norm"] = z.norm(dim=-1).clamp_min_(1e-8)  # [B, K]
                if l < depth - 1:  # h~ of every branch feeds the next layer
                    z = self.mutual[str(l)].mix_context(z, st["norm"])
            states.append(st)
            h = z
        return states

    def forward_reference(self, batch) -> dict:
        """Naive version: all branches with autograd, own output picked. Same maths as forward."""
        x, aux_hidden, out = self._branch_inputs(batch)
        s = batch.scenario
        logits, _ = self._branches_all(x, aux_hidden, keep=False)
        out["logit"] = logits[s, torch.arange(s.shape[0], device=s.device)]
        return out

    def _probe_tensors(self, states, s, idx) -> dict:
        """Batch-first probe tensors (the contract); collect_probes stores them in ARTIFACTS.md layout."""
        p = {}
        for l, st in enumerate(states):
            p[f"hidden_all_{l}"] = st["h"].transpose(0, 1)  # [B, K, H]
            p[f"hidden_own_{l}"] = st["h"][s, idx]  # [B, H]
        if self.mutual_layers:
            p["alpha_all"] = torch.stack([states[l]["alpha"] for l in self.mutual_layers], dim=1)  # [B, Ly, K, K]
            p["alpha"] = p["alpha_all"][idx, :, s, :]  # [B, Ly, K]
            p["gate"] = torch.stack([states[l]["g"][s, idx] for l in self.mutual_layers], dim=1)  # [B, Ly]
        return p

    # loss: eq. (5), own-branch BCE + aux_weight * L_aux (ScenarioModel.loss)

    # probes -------------------------------------------------------------------------------
    @torch.no_grad()
    def collect_probes(self, split, index, device, hidden_all: int = 300, batch_size: int = 2048) -> dict:
        """Per sample of the probe subset: prediction, alpha and gate of every mutual unit, the own
        branch's hidden states; every branch's hidden states for a subsample of `hidden_all`
        (layout: docs/ARTIFACTS.md, probes.npz)."""
        index = np.asarray(index, dtype=np.int64)
        sub, outs = self.probe_outputs(split, index, device, batch_size)
        rng = np.random.default_rng(0)
        m = min(hidden_all, len(index))
        sub_pos = np.sort(rng.choice(len(index), m, replace=False)) if m else np.zeros(0, dtype=np.int64)
        res = {"index": index, "scenario": sub.scenario.cpu().numpy().astype(np.int16),
               "label": sub.label.cpu().numpy().astype(np.int8),
               "pred": outs.pop("pred").numpy().astype(np.float32),
               "hidden_all_index": sub_pos.astype(np.int32),
               "mutual_layers": np.asarray(self.mutual_layers, dtype=np.int16)}
        for key, t in outs.items():  # batch first
            if key.startswith("hidden_own_"):
                res[key] = t.numpy().astype(np.float16)  # [N, H_l]
            elif key.startswith("hidden_all_"):
                res[key] = t[sub_pos].numpy().astype(np.float16)  # [M, K, H_l]
            elif key == "alpha":
                res[key] = t.transpose(0, 1).numpy().astype(np.float32)  # [Ly, N, K]
            elif key == "gate":
                res[key] = t.transpose(0, 1).numpy().astype(np.float32)  # [Ly, N]
            elif key == "alpha_all":
                res[key] = t[sub_pos].transpose(0, 1).numpy().astype(np.float16)  # [Ly, M, K, K]
        return res

    def relations(self, probes: dict, k: int) -> dict[str, np.ndarray]:
        """Mean alpha of each scenario's samples against every branch, per mutual unit ([K, K])."""
        if "alpha" not in probes:
            return {}
        scen = np.asarray(probes["scenario"]).astype(int)
        return {f"alpha_unit{l + 1}": scenario_mean(probes["alpha"][l], scen, k)
                for l in range(probes["alpha"].shape[0])}
