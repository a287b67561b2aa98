"""SharedBottom (Caruana 1997, "Multitask Learning"; the standard hard-parameter-sharing
baseline), with scenarios as tasks.

    x = BST's input block (global embeddings + transformer over the behaviour sequence)  [B, D]
    h = shared ReLU MLP (the bottom) on x                                                 [B, H]
    logit = tower_s(h): the tower of the sample's own scenario s (ReLU MLP + linear output)

Sizes: `split_bottom_tower(cfg.mlp)`: the bottom takes every hidden layer of cfg.mlp but the last,
the towers the last one, so bottom + tower is as deep as BST's MLP (256-128: bottom 256, towers
128 -> 1). The K towers are weight stacks; each sample goes through its own scenario's tower only
(StackedMLP.own: one matmul per scenario on exactly its rows), so it trains only that tower.
"""
from __future__ import annotations

from torch import nn

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.base import ScenarioModel
from saml_core.models.bst import global_features
from saml_core.models.layers import StackedMLP, split_bottom_tower


class SharedBottom(ScenarioModel):
    def __init__(self, spec: FeatureSpec, cfg: ModelConfig):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.k = spec.num_scenarios
        self.features = global_features(spec, cfg)
        bottom, tower = split_bottom_tower(cfg.mlp)
        dims = (self.features.output_dim,) + bottom
        layers = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()] + ([nn.Dropout(cfg.dropout)] if cfg.dropout > 0 else [])
        self.bottom = nn.Sequential(*layers)
        self.towers = StackedMLP(self.k, bottom[-1], tower, cfg.dropout, logit=True)

    def forward(self, batch, probes: bool = False) -> dict:
        h = self.bottom(self.features(batch))  # [B, H]
        logit = self.towers.own(h, batch.scenario)  # [B]: each row through its scenario's tower
        return {"logit": logit}
