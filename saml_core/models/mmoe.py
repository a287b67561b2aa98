"""MMoE: Multi-gate Mixture-of-Experts (Ma et al., KDD 2018), with scenarios as tasks.

    x = BST's input block                                               [B, D]
    f_e(x), e = 1..E: E experts, each a ReLU MLP on x                   [E, B, H]
    g_k(x) = softmax(W_k x): one gate per scenario k over the experts   [E] per sample
    logit = t_s( sum_e g_s(x)_e f_e(x) ): the sample's own scenario s picks its gate and tower

As in the paper the gate is linear in the experts' input with no bias; each scenario's gate and
tower are trained by its own samples only, the experts by everyone.

Sizes: `split_bottom_tower(cfg.mlp)`: every expert has the hidden layers a shared bottom would
have (all of cfg.mlp but the last), the towers the last one (256-128: experts 256 wide, towers
128 -> 1). So one expert costs what SharedBottom's bottom costs, and E experts E times that, as in
the paper, where each expert is as large as the shared-bottom network it replaces.

Probe `expert_gates` [B, E]: each sample's own-scenario gate weights. Relations: `gate_profile`
[K, E] (mean gate weights per scenario) and `gate_similarity` [K, K] (cosine of the profiles).
"""
from __future__ import annotations

import numpy as np
import torch

from saml_core.config import ConfigError, ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.base import ScenarioModel, cosine_matrix, scenario_mean
from saml_core.models.bst import global_features
from saml_core.models.layers import BranchLinear, StackedMLP, split_bottom_tower


def count_option(name: str, value, minimum: int = 1) -> int:
    """An integer model option >= minimum, or a ConfigError (a ValueError) naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class MMoE(ScenarioModel):
    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, n_experts: int = 4):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.k = spec.num_scenarios
        self.n_experts = count_option("n_experts", n_experts)
        self.features = global_features(spec, cfg)
        d = self.features.output_dim
        bottom, tower = split_bottom_tower(cfg.mlp)
        self.experts = StackedMLP(self.n_experts, d, bottom, cfg.dropout)
        self.gates = BranchLinear(self.k, d, self.n_experts, bias=False)  # W_k: [K, D, E]
        self.towers = StackedMLP(self.k, bottom[-1], tower, cfg.dropout, logit=True)

    def forward(self, batch, probes: bool = False) -> dict:
        x = self.features(batch)  # [B, D]
        s = batch.scenario
        experts = self.experts(x)  # [E, B, H]
        # every scenario's gate logits are one small matmul ([K, B, E], E tiny); keep the own one
        gate_logits = self.gates(x)[s, torch.arange(s.shape[0], device=s.device)]  # [B, E]
        gate = torch.softmax(gate_logits.float(), dim=-1)
        mixed = torch.einsum("be,ebh->bh", gate.to(experts.dtype), experts)  # [B, H]
        out = {"logit": self.towers.own(mixed, s)}
        if probes:
            out["probes"] = {"expert_gates": gate}
        return out

    def relations(self, probes: dict, k: int) -> dict[str, np.ndarray]:
        """gate_profile [K, E]: mean own-scenario gate weights of each scenario's samples (rows sum
        to 1); gate_similarity [K, K]: cosine between those profiles (1 = same expert mix)."""
        if "expert_gates" not in probes:
            return {}
        profile = scenario_mean(probes["expert_gates"], np.asarray(probes["scenario"]).astype(int), k)
        return {"gate_profile": profile, "gate_similarity": cosine_matrix(profile)}
