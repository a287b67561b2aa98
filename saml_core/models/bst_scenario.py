"""BST + scenario feature: what a practitioner tries first. The scenario index becomes one more
categorical feature: its own embedding table [K, d_g], looked up by the sample's scenario and
concatenated to BST's input block x, then BST's MLP. One network for all scenarios; the scenario
can shift and rescale its first layer's input, nothing more.

Relation (from the weights): `embedding_similarity` [K, K] = cosine between the scenarios'
embeddings. It is small (d_g numbers per scenario) and starts from random vectors, so read it as
a rough hint, not a measurement.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.base import ScenarioModel, cosine_matrix
from saml_core.models.bst import global_features
from saml_core.models.layers import EMB_INIT_STD, MLP


class BSTScenario(ScenarioModel):
    def __init__(self, spec: FeatureSpec, cfg: ModelConfig):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.features = global_features(spec, cfg)
        # dense (not sparse like the other tables): K rows, nearly all of them in every batch
        self.scenario_embedding = nn.Embedding(spec.num_scenarios, cfg.d_g)
        nn.init.normal_(self.scenario_embedding.weight, std=EMB_INIT_STD)
        self.mlp = MLP(self.features.output_dim + cfg.d_g, cfg.mlp, cfg.dropout)

    def forward(self, batch, probes: bool = False) -> dict:
        x = self.features(batch)  # [B, D]
        e = self.scenario_embedding(batch.scenario).to(x.dtype)  # [B, d_g]
        _, logit = self.mlp(torch.cat([x, e], dim=1))
        return {"logit": logit}

    @torch.no_grad()
    def relations(self, probes: dict, k: int) -> dict[str, np.ndarray]:
        return {"embedding_similarity": cosine_matrix(self.scenario_embedding.weight.double().cpu().numpy())}
