"""Models: SAML (+ ablations) and the baselines, built through the model registry
(`registry.py`; the contract every model follows: `base.py`, docs/MODELS.md). Models never read files."""
from __future__ import annotations

from saml_core.models import registry
from saml_core.models.base import ScenarioModel


def build_model(model_id: str, spec, cfg, options: dict | None = None) -> ScenarioModel:
    """The registered model `model_id` for this feature spec and sizes (ModelConfig)."""
    return registry.build(model_id, spec, cfg, options)


__all__ = ["ScenarioModel", "build_model", "registry"]
