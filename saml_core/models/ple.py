"""PLE: Progressive Layered Extraction (Tang et al., RecSys 2020), with scenarios as tasks.

One extraction level = CGC (Customized Gate Control): every scenario k has `n_specific_experts`
experts of its own, all scenarios share `n_shared_experts` experts, and scenario k's gate mixes
its own experts and the shared ones:

    S_k = [E_k,1 .. E_k,m, E_sh,1 .. E_sh,m_sh]          (G = m + m_sh experts)
    g_k = softmax(W_k input_k) . S_k                     (linear gate, no bias, as in the paper)

PLE stacks `n_levels` such levels. At level j scenario k's experts and gate read g_k of level
j-1, the shared experts read g_sh of level j-1, where g_sh is a shared gate over ALL experts of
the level (every scenario's specific experts and the shared ones); the last level has no shared
gate. Level 0 reads x = BST's input block. The served logit is the tower of the sample's own
scenario s on g_s of the last level.

What this means for a sample of scenario s: at every level but the last, the shared gate reads
every scenario's specific experts on this sample, so those (and the paths feeding them) run for
all K scenarios; that is PLE's cross-scenario channel, and a scenario-s sample trains the lower
levels' specific experts of other scenarios through it. At the last level only scenario s's
experts, gate and tower run (each on exactly the rows of its scenario: one matmul per scenario).

Sizes: `split_bottom_tower(cfg.mlp)`: every expert of every level has the hidden layers of a
shared bottom (cfg.mlp but the last), the towers the last one; n_levels = 2 therefore makes the
expert part twice as deep as SharedBottom's bottom, as in the paper (each level is a full layer
of experts). Defaults: 2 shared experts, 1 specific expert per scenario, 2 levels (the paper's
PLE; n_levels = 1 is CGC).

Probes: `expert_gates` [B, L, G]: the own scenario's gate weights per level (its m specific
experts first, then the m_sh shared ones); with L >= 2 also `shared_gates` [B, L-1, K*m + m_sh]:
the shared gate's weights per level below the last (scenario k's specific experts at k*m..k*m+m-1,
then the shared ones).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.base import ScenarioModel, cosine_matrix, scenario_mean
from saml_core.models.bst import global_features
from saml_core.models.layers import BranchLinear, StackedMLP, split_bottom_tower
from saml_core.models.mmoe import count_option


class PLE(ScenarioModel):
    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, n_shared_experts: int = 2,
                 n_specific_experts: int = 1, n_levels: int = 2):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.k = k = spec.num_scenarios
        self.n_shared = count_option("n_shared_experts", n_shared_experts)
        self.n_specific = m = count_option("n_specific_experts", n_specific_experts)
        self.n_levels = count_option("n_levels", n_levels)
        self.features = global_features(spec, cfg)
        bottom, tower = split_bottom_tower(cfg.mlp)
        h = bottom[-1]
        in_dims = [self.features.output_dim] + [h] * (self.n_levels - 1)
        n_gated = m + self.n_shared  # G: experts one scenario's gate mixes
        # specific experts of level l: one stack of K*m MLPs, expert i of scenario k at k*m + i
        self.specific = nn.ModuleList(StackedMLP(k * m, d, bottom, cfg.dropout) for d in in_dims)
        self.shared = nn.ModuleList(StackedMLP(self.n_shared, d, bottom, cfg.dropout) for d in in_dims)
        self.gates = nn.ModuleList(BranchLinear(k, d, n_gated, bias=False) for d in in_dims)  # W_k [K, in, G]
        self.shared_gates = nn.ModuleList(  # levels below the last: over all K*m + m_sh experts
            nn.Linear(d, k * m + self.n_shared, bias=False) for d in in_dims[:-1])
        self.towers = StackedMLP(k, h, tower, cfg.dropout, logit=True)

    def forward(self, batch, probes: bool = False) -> dict:
        x = self.features(batch)  # [B, D]
        s = batch.scenario
        rows = torch.arange(s.shape[0], device=s.device)
        k, m = self.k, self.n_specific
        # task_in: the scenario paths' input to the level: x for all at level 0 ([B, D]); then
        # every scenario's path [K, B, H] while a lower level follows, else the own path [B, H]
        task_in, shared_in = x, x
        own_gates, shared_gates = [], []

        for l in range(self.n_levels - 1):  # lower levels: the shared gate reads every scenario's experts
            # expert k*m + i reads scenario k's input
            specific = self.specific[l](task_in if l == 0 else task_in.repeat_interleave(m, dim=0))  # [K*m, B, H]
            shared = self.shared[l](shared_in)  # [m_sh, B, H]
            b, hdim = specific.shape[1], specific.shape[2]
            gate_logits = self.gates[l](task_in).float()  # [K, B, G]
            ws = torch.softmax(self.shared_gates[l](shared_in).float(), dim=-1)  # [B, K*m + m_sh]
            experts = torch.cat([specific, shared], dim=0)  # [K*m + m_sh, B, H]
            shared_in = (ws.t().unsqueeze(-1).to(experts.dtype) * experts).sum(0)  # [B, H]
            shared_gates.append(ws)
            if l < self.n_levels - 2:  # the next level is a lower one too: every scenario's path
                w = torch.softmax(gate_logits, dim=-1).to(experts.dtype)  # [K, B, G]
                task_in = (torch.einsum("kbi,kibh->kbh", w[..., :m], specific.view(k, m, b, hdim))
                           + torch.einsum("kbj,jbh->kbh", w[..., m:], shared))  # [K, B, H]
                own_gates.append(w[s, rows].float())
            else:  # the next level is the last: the own path only
                w = torch.softmax(gate_logits[s, rows], dim=-1)  # [B, G]
                # the own scenario's m experts: a gather along the expert axis of the sample-major
                # [B, K*m, H] (its backward a scatter within each row, not a scatter over [K*m, B, H])
                pick = (s.view(-1, 1) * m + torch.arange(m, device=s.device)).view(-1, m, 1).expand(-1, m, hdim)
                own_specific = specific.transpose(0, 1).gather(1, pick)  # [B, m, H]
                own = torch.cat([own_specific, shared.transpose(0, 1)], dim=1)  # [B, G, H]
                task_in = (w.unsqueeze(-1).to(own.dtype) * own).sum(1)  # [B, H]
                own_gates.append(w)

        # last level: the own scenario only; expert i of scenario s is expert s*m + i, run on exactly
        # the rows that use it (StackedMLP.own)
        specific = torch.stack([self.specific[-1].own(task_in, s * m + i) for i in range(m)], dim=1)  # [B, m, H]
        own = torch.cat([specific, self.shared[-1](shared_in).transpose(0, 1)], dim=1)  # [B, G, H]
        w = torch.softmax(self.gates[-1](task_in)[s, rows].float(), dim=-1)  # [B, G]
        mixed = (w.unsqueeze(-1).to(own.dtype) * own).sum(1)  # [B, H]
        own_gates.append(w)
        out = {"logit": self.towers.own(mixed, s)}
        if probes:
            out["probes"] = {"expert_gates": torch.stack(own_gates, dim=1)}  # [B, L, G]
            if shared_gates:
                out["probes"]["shared_gates"] = torch.stack(shared_gates, dim=1)  # [B, L-1, K*m + m_sh]
        return out

    def relations(self, probes: dict, k: int) -> dict[str, np.ndarray]:
        """Per scenario (rows), means over its samples:
        gate_profile [K, G]: last-level own-gate weights (m specific experts, then m_sh shared);
        shared_share [K, L]: total weight on the shared experts at each level;
        shared_gate_similarity [K, K]: cosine between scenarios' mean weights on the shared
            experts (all levels concatenated): 1 = they draw on the shared experts alike;
        cross_expert_use_l{l} [K, K] (L >= 2, one per shared gate, l = 1..L-1): entry [k, j] is
            the weight the shared gate of level l puts, on scenario k's samples, on scenario j's
            specific experts (the rest of each row goes to the shared experts)."""
        if "expert_gates" not in probes:
            return {}
        scen = np.asarray(probes["scenario"]).astype(int)
        gates = np.asarray(probes["expert_gates"], dtype=np.float64)  # [N, L, G]
        n, m = gates.shape[0], self.n_specific
        shared_part = gates[:, :, m:]  # [N, L, m_sh]
        out = {"gate_profile": scenario_mean(gates[:, -1], scen, k),
               "shared_share": scenario_mean(shared_part.sum(-1), scen, k),
               "shared_gate_similarity": cosine_matrix(scenario_mean(shared_part.reshape(n, -1), scen, k))}
        if "shared_gates" in probes:
            sg = np.asarray(probes["shared_gates"], dtype=np.float64)  # [N, L-1, K*m + m_sh]
            for l in range(sg.shape[1]):
                by_scenario = sg[:, l, :k * m].reshape(n, k, m).sum(-1)  # [N, K]
                out[f"cross_expert_use_l{l + 1}"] = scenario_mean(by_scenario, scen, k)
        return out
