"""saml_core: train, checkpoint, evaluate and probe SAML and its baselines (no UI code here)."""

__version__ = "0.1.0"
