"""Models: SAML (+ ablations) and the baselines, built through the model registry
(`model_registry.py`, published here as `saml_core.models.registry`; the contract every model
follows: `base.py`, docs/MODELS.md). Models never read files. Importing this package (e.g. for the registry's labels) does not import torch."""
from __future__ import annotations

from saml_core.models import model_registry as registry


def build_model(model_id: str, spec, cfg, options: dict | None = None):
    """The registered model `model_id` for this feature spec and sizes (ModelConfig)."""
    return registry.build(model_id, spec, cfg, options)


def __getattr__(name: str):
    if name == "ScenarioModel":  # the contract's base class, imported on demand (torch)
        from saml_core.models.base import ScenarioModel

        return ScenarioModel
    raise AttributeError(name)


__all__ = ["ScenarioModel", "build_model", "registry"]
