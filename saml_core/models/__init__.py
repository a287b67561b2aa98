"""Models: SAML (+ ablations), BST, BST-Individual. Models never read files."""
from __future__ import annotations

from torch import nn

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.bst import BST, BSTIndividual
from saml_core.models.saml import SAML


def build_model(model: str, variant: str | None, spec: FeatureSpec, cfg: ModelConfig) -> nn.Module:
    if model == "saml":
        return SAML(spec, cfg, variant or "full")
    if model == "bst":
        return BST(spec, cfg)
    if model == "bst_individual":
        return BSTIndividual(spec, cfg)
    raise ValueError(f"unknown model {model!r}")


__all__ = ["BST", "BSTIndividual", "SAML", "build_model"]
