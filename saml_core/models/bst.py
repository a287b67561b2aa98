"""BST (Behavior Sequence Transformer) baselines.

BST: global embeddings + one transformer layer over behaviour sequence + target item + one MLP,
trained on all scenarios together. BSTIndividual: K independent BSTs, sub-model k serves (and is
trained on) scenario k only; the trainer trains and early-stops each on its own data.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.layers import MLP, ScenarioAwareEmbedding, SequenceAttention


class BST(nn.Module):
    def __init__(self, spec: FeatureSpec, cfg: ModelConfig):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.embedding = ScenarioAwareEmbedding(spec, cfg.d_g, 0, cfg.sparse_embeddings)
        d = self.embedding.token_dim
        self.has_seq = d > 0
        attn_dim = 0
        if self.has_seq:
            self.attention = SequenceAttention(d, cfg.heads, cfg.head_dim, cfg.ff_dim, cfg.attn_readout,
                                               dropout=cfg.dropout)
            attn_dim = self.attention.output_dim
        self.mlp = MLP(self.embedding.global_dim + attn_dim + len(spec.num_fields), cfg.mlp, cfg.dropout)

    def forward(self, batch, probes: bool = False) -> dict:
        e_glob, _, tokens = self.embedding(batch.cat, batch.scenario, batch.seq, with_scenario=False)
        parts = [e_glob]
        if self.has_seq:
            mask = torch.cat([batch.seq_mask, torch.ones_like(batch.seq_mask[:, :1])], dim=1)
            parts.append(self.attention(tokens, mask))
        if batch.num.shape[1]:
            parts.append(batch.num)
        _, logit = self.mlp(torch.cat(parts, dim=1))
        return {"logit": logit}

    def loss(self, out: dict, label: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(out["logit"].float(), label)


class BSTIndividual(nn.Module):
    """One BST per scenario; a sample is scored by its scenario's BST."""

    def __init__(self, spec: FeatureSpec, cfg: ModelConfig):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.models = nn.ModuleList(BST(spec, cfg) for _ in spec.scenario_names)

    def forward(self, batch, probes: bool = False) -> dict:
        # Evaluation only (each sub-model is trained on its own scenario by the trainer); the loop
        # over K sub-models runs on scenario subsets, not in a training hot path.
        logit = torch.zeros(batch.scenario.shape[0], device=batch.scenario.device)
        for k, model in enumerate(self.models):
            idx = torch.nonzero(batch.scenario == k).squeeze(1)
            if idx.numel():
                logit[idx] = model(batch.take(idx))["logit"].to(logit.dtype)
        return {"logit": logit}

    def loss(self, out: dict, label: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(out["logit"].float(), label)
