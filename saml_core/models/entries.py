"""The built-in models: one registry entry each (fields: `registry.ModelEntry`)."""
from __future__ import annotations

from saml_core.models.bst import BST, BSTIndividual
from saml_core.models.lr_te import TargetEncodingLR, fit_lr_te
from saml_core.models.registry import ModelEntry, register
from saml_core.models.saml import SAML


def _saml(variant: str):
    def build(spec, cfg):
        return SAML(spec, cfg, variant)

    return build


register(ModelEntry(
    id="bst_individual", label="BST-Individual", color="#9E9E9E", role="baseline", order=10, default=True,
    build=lambda spec, cfg: BSTIndividual(spec, cfg), fit="per_scenario",
    description="One separate BST per scenario, each trained on its own scenario's data only."))
register(ModelEntry(
    id="bst", label="BST", color="#4C78A8", role="baseline", order=20, default=True,
    build=lambda spec, cfg: BST(spec, cfg),
    description="One Behavior Sequence Transformer for all scenarios; it does not see the scenario."))
register(ModelEntry(
    id="saml", label="SAML", color="#E45756", role="method", order=1, default=True, build=_saml("full"),
    probes=("alpha", "gate", "hidden", "relations"),
    description="Scenario-aware Mutual Learning: one branch per scenario; each branch listens to the "
                "branches most similar to it (similarity α, gate g)."))
register(ModelEntry(
    id="saml_no_gate", label="SAML w/o gate", color="#F58518", role="ablation", order=2, default=True,
    build=_saml("no_gate"), probes=("hidden",),
    description="SAML without the mutual unit: the branches never listen to each other (g = 0)."))
register(ModelEntry(
    id="saml_no_aux", label="SAML w/o aux", color="#B279A2", role="ablation", order=3, default=True,
    build=_saml("no_aux"), probes=("alpha", "gate", "hidden", "relations"),
    description="SAML without the auxiliary network: all features go straight into the branches."))
register(ModelEntry(
    id="saml_no_gate_mut", label="SAML w/o gate&mut", color="#72B7B2", role="ablation", order=4, default=True,
    build=_saml("no_gate_mut"),
    description="SAML without branches: one unified network on scenario-aware features."))
register(ModelEntry(
    id="lr_te", label="LR (target encoding)", color="#54A24B", role="baseline", order=25,
    build=lambda spec, cfg, crosses=True, smoothing=20.0, folds=5: TargetEncodingLR(spec, cfg, crosses, smoothing,
                                                                                    folds),
    options={"crosses": True, "smoothing": 20.0, "folds": 5}, fit=fit_lr_te,
    description="A strong simple baseline: logistic regression on each value's train click rate, per "
                "scenario too (target encoding with scenario crosses)."))
