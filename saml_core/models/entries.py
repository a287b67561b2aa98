"""The built-in models: one registry entry each (fields: `registry.ModelEntry`)."""
from __future__ import annotations

from saml_core.models.bst import BST, BSTIndividual
from saml_core.models.bst_scenario import BSTScenario
from saml_core.models.lr_te import TargetEncodingLR, fit_lr_te
from saml_core.models.mmoe import MMoE
from saml_core.models.ple import PLE
from saml_core.models.registry import ModelEntry, register
from saml_core.models.saml import SAML
from saml_core.models.shared_bottom import SharedBottom
from saml_core.models.star import STAR


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

# multi-scenario baselines (docs/BASELINES.md): all on BST's input block, so they differ from BST
# only in how the network is split between scenarios
register(ModelEntry(
    id="bst_scenario", label="BST + scenario", color="#9ECAE9", role="baseline", order=30,
    build=lambda spec, cfg: BSTScenario(spec, cfg), probes=("relations",),
    description="BST with the scenario as one more categorical feature (its own embedding)."))
register(ModelEntry(
    id="shared_bottom", label="SharedBottom", color="#9D755D", role="baseline", order=31,
    build=lambda spec, cfg: SharedBottom(spec, cfg),
    description="A shared MLP bottom and one tower per scenario; a sample is scored by its scenario's tower."))
register(ModelEntry(
    id="mmoe", label="MMoE", color="#EECA3B", role="baseline", order=32,
    build=lambda spec, cfg, **opts: MMoE(spec, cfg, **opts), options={"n_experts": 4},
    probes=("relations",),
    description="Multi-gate mixture of experts: shared experts, one softmax gate and one tower per scenario."))
register(ModelEntry(
    id="ple", label="PLE", color="#FF9DA6", role="baseline", order=33,
    build=lambda spec, cfg, **opts: PLE(spec, cfg, **opts),
    options={"n_shared_experts": 2, "n_specific_experts": 1, "n_levels": 2}, probes=("relations",),
    description="Progressive layered extraction: shared and per-scenario experts in stacked levels, "
                "per-scenario gates and towers (n_levels=1 is CGC)."))
register(ModelEntry(
    id="star", label="STAR", color="#6F4E9C", role="baseline", order=34,
    build=lambda spec, cfg: STAR(spec, cfg), probes=("relations",),
    description="Star topology: each scenario's network is a shared network's weights times its own, "
                "with partitioned normalisation and an auxiliary scenario network."))
