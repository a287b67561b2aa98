"""BST (Behavior Sequence Transformer) baselines.

BST: global embeddings + one transformer layer over behaviour sequence + target item + one MLP,
trained on all scenarios together. BSTIndividual: K independent BSTs, sub-model k serves (and is
trained on) scenario k only; the trainer trains and early-stops each on its own data
(registry entry `fit="per_scenario"`).
"""
from __future__ import annotations

import torch

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.base import ScenarioModel
from saml_core.models.layers import MLP, GlobalFeatures


def global_features(spec: FeatureSpec, cfg: ModelConfig) -> GlobalFeatures:
    return GlobalFeatures(spec, cfg.d_g, cfg.heads, cfg.head_dim, cfg.ff_dim, cfg.attn_readout,
                          dropout=cfg.dropout, sparse=cfg.sparse_embeddings)


class BST(ScenarioModel):
    def __init__(self, spec: FeatureSpec, cfg: ModelConfig):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.features = global_features(spec, cfg)
        self.mlp = MLP(self.features.output_dim, cfg.mlp, cfg.dropout)

    def forward(self, batch, probes: bool = False) -> dict:
        _, logit = self.mlp(self.features(batch))
        return {"logit": logit}

    def compile_dense(self, **options) -> None:
        """Opt-in `torch.compile` of the attention and the MLP (the sparse embedding lookups stay
        eager); parameter names are unchanged. Off by default (see SAML.compile_dense)."""
        if self.features.has_seq:
            self.features.attention.compile(**options)
        self.mlp.compile(**options)


class BSTIndividual(ScenarioModel):
    """One BST per scenario; a sample is scored by its scenario's BST."""

    def __init__(self, spec: FeatureSpec, cfg: ModelConfig):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.models = torch.nn.ModuleList(BST(spec, cfg) for _ in spec.scenario_names)

    def forward(self, batch, probes: bool = False) -> dict:
        # Evaluation only (each sub-model is trained on its own scenario by the trainer); the loop
        # over K sub-models runs on scenario subsets, not in a training hot path.
        logit = torch.zeros(batch.scenario.shape[0], device=batch.scenario.device)
        for k, model in enumerate(self.models):
            idx = torch.nonzero(batch.scenario == k).squeeze(1)
            if idx.numel():
                logit[idx] = model(batch.take(idx))["logit"].to(logit.dtype)
        return {"logit": logit}
