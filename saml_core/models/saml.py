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
no_grad, and the own branch is recomputed with gradient on samples grouped by scenario
(scenario chunks, one batched matmul per layer). `forward_reference` is the plain
all-branches-with-autograd version; a test checks both give the same outputs and gradients.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.base import ScenarioModel, scenario_mean
from saml_core.models.layers import (BranchLinear, MLP, MutualUnit, ScenarioAwareEmbedding, SequenceAttention,
                                     select_branches)


class ScenarioGroups:
    """Groups a batch by scenario into C chunks of equal size c = ceil(B/K) ([C, c, ...]; chunk i
    belongs to branch `branch[i]`), so the own-branch work is one batched matmul with at most
    2B rows whatever the traffic skew (plain per-scenario padding would cost K * max group)."""

    def __init__(self, scenario: torch.Tensor, num_scenarios: int):
        b = scenario.shape[0]
        self.c = max(-(-b // num_scenarios), 1)
        counts = torch.bincount(scenario, minlength=num_scenarios)
        chunks = -(-counts // self.c)  # chunks per scenario
        first_chunk = torch.cumsum(chunks, 0) - chunks
        starts = torch.cumsum(counts, 0) - counts
        order = torch.argsort(scenario, stable=True)
        s_sorted = scenario[order]
        rank = torch.arange(b, device=scenario.device) - starts[s_sorted]
        self.n_chunks = int(chunks.sum())
        self.slot = torch.empty_like(scenario)
        self.slot[order] = (first_chunk[s_sorted] + rank // self.c) * self.c + rank % self.c
        self.branch = torch.repeat_interleave(torch.arange(num_scenarios, device=scenario.device), chunks)
        self.onehot = F.one_hot(self.branch, num_scenarios).float()  # [C, K] chunk -> branch

    def group(self, x: torch.Tensor) -> torch.Tensor:
        """[B, ...] -> [C, c, ...] (padding rows are zeros)."""
        out = x.new_zeros((self.n_chunks * self.c,) + tuple(x.shape[1:]))
        return out.index_copy(0, self.slot, x).view((self.n_chunks, self.c) + tuple(x.shape[1:]))

    def ungroup(self, x: torch.Tensor) -> torch.Tensor:
        """[C, c, ...] -> [B, ...]."""
        return x.reshape((self.n_chunks * self.c,) + tuple(x.shape[2:]))[self.slot]


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
    def _layer(self, l: int, h_prev, aux_in, branch=None):
        """Eq. (4) for all K branches (branch=None; h_prev [K, N, .] or shared [N, .]) or for row
        groups (h_prev [C, c, .]; branch = one-hot [C, K] of each group's branch). aux_in[l] =
        a^l, shaped alike."""
        w = self.branch_w[l]
        if not self.use_aux:
            return F.relu(w(h_prev, branch))
        u, a = self.branch_u[l], aux_in[l]
        if h_prev.dim() == a.dim():  # same rows: one matmul on [h, a] with stacked [W; U]
            weight = torch.cat([w.weight, u.weight], dim=1)
            if branch is not None:
                weight = select_branches(weight, branch)
            bias = w.bias if branch is None else select_branches(w.bias, branch)
            return F.relu(torch.matmul(torch.cat([h_prev, a], dim=-1), weight) + bias)
        return F.relu(w(h_prev, branch) + u(a, branch))

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

    def _branches_own(self, x, aux_hidden, scenario, states):
        """Own branch only, with gradient: per-branch matmuls on scenario groups, the mutual unit
        in sample order against the detached all-branch `states`. Returns logits [B]."""
        groups = ScenarioGroups(scenario, self.k)
        h = groups.group(x)  # [C, c, in]
        aux_g = [groups.group(a) for a in aux_hidden] if self.use_aux else None
        for l in range(len(self.cfg.mlp)):
            h = self._layer(l, h, aux_g, groups.onehot)  # [C, c, H]
            if str(l) in self.mutual:
                st = states[l]
                hb, _, _ = self.mutual[str(l)].forward_own(groups.ungroup(h), st["h"], st["norm"], scenario)
                h = groups.group(hb)
        return groups.ungroup(self.branch_out(h, groups.onehot).squeeze(-1))

    # forward ------------------------------------------------------------------------------
    def forward(self, batch, probes: bool = False) -> dict:
        e_ind, e_dep = self.features(batch)
        s = batch.scenario
        out = {}
        if not self.use_branches:  # w/o gate&mut: one unified MLP
            hidden, logit = self.aux(torch.cat([e_ind, e_dep], dim=1))
            out["logit"] = logit
            return out
        if self.use_aux:
            aux_hidden, out["aux_logit"] = self.aux(e_ind)
            aux_hidden, x = [e_ind] + aux_hidden[:-1], e_dep  # a^0 = e_ind, a^l = aux hidden l
        else:
            aux_hidden, x = None, torch.cat([e_dep, e_ind], dim=1)

        if torch.is_grad_enabled() and not probes:
            states = None
            if self.mutual_layers:
                states = self._context_pass(x, aux_hidden)  # forward-only, every branch
            out["logit"] = self._branches_own(x, aux_hidden, s, states)
            return out
        if not probes:  # evaluation
            out["logit"] = self._own_logits(x, aux_hidden, s)
            return out

        logits, states = self._branches_all(x, aux_hidden, keep=probes)
        idx = torch.arange(s.shape[0], device=s.device)
        out["logit"] = logits[s, idx]
        if probes:
            out["probes"] = self._probe_tensors(states, s, idx)
        return out

    @torch.no_grad()
    def _own_logits(self, x, aux_in, s):
        """Evaluation without probes: each sample's own-branch logit [B]. With mutual units, the
        forward-only all-branch pass in the model dtype, then the last layer's mixing and the
        output for the own branch only (`_branches_all` mixes and scores all K); without them,
        the own branch alone. Same logits as `_branches_all` (tested)."""
        if not self.mutual_layers:  # branches never read each other: own branch only
            return self._branches_own(x, aux_in, s, None)
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
        dt = dtype or self.context_dtype or x.dtype
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
            st = {"h": z}
            if str(l) in self.mutual:
                st["norm"] = z.norm(dim=-1).clamp_min_(1e-8)  # [B, K]
                if l < depth - 1:  # h~ of every branch feeds the next layer
                    z = self.mutual[str(l)].mix_context(z, st["norm"])
            states.append(st)
            h = z
        return states

    def forward_reference(self, batch) -> dict:
        """Naive version: all branches with autograd, own output picked. Same maths as forward."""
        e_ind, e_dep = self.features(batch)
        s = batch.scenario
        out = {}
        if self.use_aux:
            aux_hidden, out["aux_logit"] = self.aux(e_ind)
            aux_hidden, x = [e_ind] + aux_hidden[:-1], e_dep
        else:
            aux_hidden, x = None, torch.cat([e_dep, e_ind], dim=1)
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
        self.eval()
        index = np.asarray(index, dtype=np.int64)
        sub = split.take(torch.as_tensor(index, device=split.label.device))
        chunks: dict[str, list] = {}
        for start in range(0, len(index), batch_size):
            b = sub.take(torch.arange(start, min(start + batch_size, len(index)))).to(device)
            out = self(b, probes=True)
            chunks.setdefault("pred", []).append(torch.sigmoid(out["logit"].float()).cpu())
            for name, t in out.get("probes", {}).items():
                chunks.setdefault(name, []).append(t.float().cpu())
        rng = np.random.default_rng(0)
        m = min(hidden_all, len(index))
        sub_pos = np.sort(rng.choice(len(index), m, replace=False)) if m else np.zeros(0, dtype=np.int64)
        res = {"index": index, "scenario": sub.scenario.cpu().numpy().astype(np.int16),
               "label": sub.label.cpu().numpy().astype(np.int8),
               "pred": torch.cat(chunks.pop("pred")).numpy().astype(np.float32),
               "hidden_all_index": sub_pos.astype(np.int32),
               "mutual_layers": np.asarray(self.mutual_layers, dtype=np.int16)}
        for key, parts in chunks.items():
            t = torch.cat(parts)  # batch first
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
