"""STAR: Star Topology Adaptive Recommender (Sheng et al., CIKM 2021, "One Model to Serve All"),
with scenarios as the paper's domains.

    x   = BST's input block                                                     [B, D]
    z   = PN(x, s): partitioned normalisation (below)
    s_m = star-topology FCN on z: layer l of scenario s has weight W^l (.) W_s^l and bias
          b^l + b_s^l (shared centre times / plus the scenario's own part), ReLU between layers
    s_a = auxiliary network on [scenario embedding, x]: one ReLU layer + linear output
    logit = s_m + s_a            (the paper's prediction is sigmoid(s_m + s_a))

Partitioned normalisation (PN), per feature:
    train: z = (gamma * gamma_s) (x - mu) / sqrt(var + eps) + (beta + beta_s),
           mu, var = statistics of the mini-batch
    test:  mu, var = the moving averages E_s, Var_s of the sample's own scenario s
The paper samples each mini-batch from one domain, so "the mini-batch statistics" are statistics
of one scenario. Our trainer mixes scenarios in a batch, so PN uses each scenario's rows of the
batch (the same thing as splitting the batch by scenario), and updates that scenario's moving
averages only. That keeps training and testing consistent: a row is always normalised with its
own scenario's statistics.

Choices the paper leaves open (ours; docs/BASELINES.md):
- PN sits on the FCN's input x (the paper's figure: embedding -> PN -> star FCN); the FCN's hidden
  layers have no normalisation. BatchNorm defaults: momentum 0.1, eps 1e-5, biased batch
  variance to normalise, unbiased for the moving average.
- A scenario with a single row in a batch has no batch variance: that row is normalised with its
  scenario's moving averages, which it does not update. A scenario absent from the batch is
  untouched. Moving averages start at mean 0, variance 1.
- FCN: the hidden sizes of cfg.mlp and a star output layer (every layer, output included, is a
  star layer). Init: the shared W^l, b^l as nn.Linear; W_s = 1 and b_s = 0, so every scenario
  starts as the shared network and moves away from it only as its own data asks.
- Auxiliary network: input = scenario-indicator embedding (size cfg.d_g) + x (the paper feeds
  "the domain indicator and other features depicting the domain"; we have no domain-level
  features); one hidden layer of cfg.mlp[-1] units, no separate loss (its logit is part of the
  served logit).

Relations (from the weights, not the probes): `weight_similarity` [K, K] = cosine between the
scenarios' effective FCN weights W (.) W_s (all layers flattened and concatenated, biases left
out), and `weight_shift_similarity` [K, K] = cosine between W (.) (W_s - 1), i.e. how each
scenario's network moved away from the shared centre.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.base import ScenarioModel, cosine_matrix
from saml_core.models.bst import global_features
from saml_core.models.layers import EMB_INIT_STD, MLP, select_branches
from saml_core.models.layers import ScenarioGroups


class PartitionedNorm(nn.Module):
    """PN over features [B, D]: shared and per-scenario scale/bias, per-scenario statistics."""

    def __init__(self, num_scenarios: int, dim: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.scenario_gamma = nn.Parameter(torch.ones(num_scenarios, dim))
        self.scenario_beta = nn.Parameter(torch.zeros(num_scenarios, dim))
        # buffers: saved in state_dict, moved by .to(), never trained
        self.register_buffer("running_mean", torch.zeros(num_scenarios, dim))
        self.register_buffer("running_var", torch.ones(num_scenarios, dim))

    def forward(self, x: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        # statistics in the buffers' precision, also under autocast
        with torch.autocast(x.device.type, enabled=False):
            x = x.to(self.running_mean.dtype)
            if self.training:
                mean, var = self._batch_statistics(x, scenario)  # [B, D] each: the row's scenario's
            else:
                mean, var = self.running_mean[scenario], self.running_var[scenario]
            z = (x - mean) * torch.rsqrt(var + self.eps)
            return (z * (self.gamma * self.scenario_gamma.index_select(0, scenario))
                    + (self.beta + self.scenario_beta.index_select(0, scenario)))

    def _batch_statistics(self, x: torch.Tensor, scenario: torch.Tensor):
        k, d = self.running_mean.shape
        count = torch.bincount(scenario, minlength=k).to(x.dtype)  # [K]
        denom = count.clamp_min(1).unsqueeze(1)
        # per-scenario sums as scatter-adds, not a [K, B] x [B, D] matmul, whose summation order
        # (and so the whole run's numbers) changed with the thread count
        mean = x.new_zeros(k, d).index_add(0, scenario, x) / denom  # [K, D]
        var = x.new_zeros(k, d).index_add(0, scenario, (x - mean.index_select(0, scenario)).square()) / denom  # [K, D], biased
        enough = (count >= 2).unsqueeze(1)  # a variance needs two rows
        row_mean = torch.where(enough[scenario], mean.index_select(0, scenario), self.running_mean[scenario])
        row_var = torch.where(enough[scenario], var.index_select(0, scenario), self.running_var[scenario])
        with torch.no_grad():
            unbiased = var * count.unsqueeze(1) / (count - 1).clamp_min(1).unsqueeze(1)
            self.running_mean.copy_(torch.where(enough, torch.lerp(self.running_mean, mean, self.momentum),
                                                self.running_mean))
            self.running_var.copy_(torch.where(enough, torch.lerp(self.running_var, unbiased, self.momentum),
                                               self.running_var))
        return row_mean, row_var


class StarLinear(nn.Module):
    """One star-topology FC layer: shared W [in, out], b [out]; per scenario W_s [K, in, out],
    b_s [K, 1, out]. Scenario s: y = x @ (W (.) W_s) + (b + b_s)."""

    def __init__(self, num_scenarios: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_dim).uniform_(-bound, bound))
        self.scenario_weight = nn.Parameter(torch.ones(num_scenarios, in_dim, out_dim))
        self.scenario_bias = nn.Parameter(torch.zeros(num_scenarios, 1, out_dim))

    def forward(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """x [C, c, in] row groups; onehot [C, K]: group c belongs to scenario branch[c]. -> [C, c, out]."""
        w = self.weight * select_branches(self.scenario_weight, onehot)  # [C, in, out]
        b = self.bias + select_branches(self.scenario_bias, onehot)  # [C, 1, out]
        return torch.matmul(x, w) + b


class STAR(ScenarioModel):
    def __init__(self, spec: FeatureSpec, cfg: ModelConfig):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.k = spec.num_scenarios
        self.features = global_features(spec, cfg)
        d = self.features.output_dim
        self.pn = PartitionedNorm(self.k, d)
        dims = (d,) + cfg.mlp + (1,)
        self.fcn = nn.ModuleList(StarLinear(self.k, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.scenario_embedding = nn.Embedding(self.k, cfg.d_g)
        nn.init.normal_(self.scenario_embedding.weight, std=EMB_INIT_STD)
        self.aux = MLP(cfg.d_g + d, cfg.mlp[-1:], cfg.dropout)

    def forward(self, batch, probes: bool = False) -> dict:
        x = self.features(batch)  # [B, D]
        s = batch.scenario
        groups = ScenarioGroups(s, self.k)
        h = groups.group(self.pn(x, s).to(x.dtype))  # [C, c, D]
        for layer in self.fcn[:-1]:
            h = self.dropout(F.relu(layer(h, groups.onehot)))
        star_logit = groups.ungroup(self.fcn[-1](h, groups.onehot).squeeze(-1))  # [B]
        _, aux_logit = self.aux(torch.cat([self.scenario_embedding(s).to(x.dtype), x], dim=1))
        return {"logit": star_logit + aux_logit}

    @torch.no_grad()
    def relations(self, probes: dict, k: int) -> dict[str, np.ndarray]:
        """weight_similarity / weight_shift_similarity [K, K] (module docstring); needs no probes."""
        shared = torch.cat([layer.weight.flatten() for layer in self.fcn]).double()  # [P]
        specific = torch.cat([layer.scenario_weight.reshape(self.k, -1) for layer in self.fcn], 1).double()  # [K, P]
        effective = shared * specific
        return {"weight_similarity": cosine_matrix(effective.cpu().numpy()),
                "weight_shift_similarity": cosine_matrix((effective - shared).cpu().numpy())}
