"""The built-in models: one registry entry each (fields: `registry.ModelEntry`).

Builders import their model file when called, so naming, labelling and colouring models (the
dashboard's first page) does not import torch."""
from __future__ import annotations

import importlib

from saml_core.models.model_entry import ModelEntry, register


def _lazy(module: str, name: str, **fixed):
    """A builder or fit function that imports `module` only when called."""
    def call(*args, **kwargs):
        return getattr(importlib.import_module(f"saml_core.models.{module}"), name)(*args, **fixed, **kwargs)

    call.__qualname__ = f"{module}.{name}"
    return call


# How SAML's branch s scores scenario t's rows: SAML routes a row by its scenario index alone
# (scenario-specific embeddings and attention, own branch, that branch's gate and alpha row), so
# setting the index to s gives exactly what SAML would predict had the row been logged in s.
_SAML_HOW = ("Scenario t's test rows pass through SAML with their scenario index set to s: s's scenario-specific "
             "embeddings and attention, branch s, and branch s's gate and similarity row in the mutual unit, which "
             "mixes in the other branches' states computed on the same s-routed rows; the shared embeddings, "
             "attention and auxiliary network and every feature value stay the row's own.")


register(ModelEntry(
    id="bst_individual", label="BST-Individual", color="#9E9E9E", role="baseline", order=10, default=True,
    build=_lazy("bst", "BSTIndividual"), fit="per_scenario", probes=("transfer",),
    transfer_how="Scenario s's own BST (trained on s's rows only) scores scenario t's test rows as they are.",
    description="One separate BST per scenario, each trained on its own scenario's data only."))
register(ModelEntry(
    id="bst", label="BST", color="#4C78A8", role="baseline", order=20, default=True, reference=True,
    build=_lazy("bst", "BST"),
    description="One Behavior Sequence Transformer for all scenarios; it does not see the scenario."))
register(ModelEntry(
    id="saml", label="SAML", color="#E45756", role="method", order=1, default=True, build=_lazy("saml", "SAML", variant="full"),
    probes=("alpha", "gate", "hidden", "relations", "transfer"), transfer_how=_SAML_HOW,
    description="Scenario-aware Mutual Learning: one branch per scenario; each branch listens to the "
                "branches most similar to it (similarity α, gate g)."))
register(ModelEntry(
    id="saml_no_gate", label="SAML w/o gate", color="#F58518", role="ablation", order=2, default=True,
    build=_lazy("saml", "SAML", variant="no_gate"), probes=("hidden", "transfer"),
    transfer_how="Scenario t's test rows pass through the model with their scenario index set to s: s's "
                 "scenario-specific embeddings and attention, then branch s (in this ablation the branches never "
                 "exchange states); the shared embeddings, attention and auxiliary network and every feature value "
                 "stay the row's own.",
    description="SAML without the mutual unit: the branches never listen to each other (g = 0)."))
register(ModelEntry(
    id="saml_no_aux", label="SAML w/o aux", color="#B279A2", role="ablation", order=3, default=True,
    build=_lazy("saml", "SAML", variant="no_aux"), probes=("alpha", "gate", "hidden", "relations", "transfer"),
    transfer_how=_SAML_HOW.replace(" and auxiliary network", ""),
    description="SAML without the auxiliary network: all features go straight into the branches."))
register(ModelEntry(
    id="saml_no_gate_mut", label="SAML w/o gate&mut", color="#72B7B2", role="ablation", order=4, default=True,
    build=_lazy("saml", "SAML", variant="no_gate_mut"),
    description="SAML without branches: one unified network on scenario-aware features."))
register(ModelEntry(
    id="lr_te", label="LR (target encoding)", color="#54A24B", role="baseline", order=25,
    build=_lazy("lr_te", "TargetEncodingLR"), options={"crosses": True, "smoothing": 20.0, "folds": 5, "C": None},
    fit=_lazy("lr_te", "fit_lr_te"),
    # its training has no learning rate and no embeddings: the same budget (3 x 3 settings chosen on
    # validation) over what regularises it, the encodings' smoothing and the regression's C
    tune_grid={"model_options": {"smoothing": (5.0, 20.0, 80.0), "C": (0.01, 0.1, 1.0)}},
    description="A strong simple baseline: logistic regression on each value's train click rate, per "
                "scenario too (target encoding with scenario crosses)."))

# multi-scenario baselines (docs/BASELINES.md): all on BST's input block, so they differ from BST
# only in how the network is split between scenarios
register(ModelEntry(
    id="bst_scenario", label="BST + scenario", color="#9ECAE9", role="baseline", order=30,
    build=_lazy("bst_scenario", "BSTScenario"), probes=("relations",),
    description="BST with the scenario as one more categorical feature (its own embedding)."))
register(ModelEntry(
    id="shared_bottom", label="SharedBottom", color="#9D755D", role="baseline", order=31,
    build=_lazy("shared_bottom", "SharedBottom"),
    description="A shared MLP bottom and one tower per scenario; a sample is scored by its scenario's tower."))
register(ModelEntry(
    id="mmoe", label="MMoE", color="#EECA3B", role="baseline", order=32,
    build=_lazy("mmoe", "MMoE"), options={"n_experts": 4},
    probes=("relations",),
    description="Multi-gate mixture of experts: shared experts, one softmax gate and one tower per scenario."))
register(ModelEntry(
    id="ple", label="PLE", color="#FF9DA6", role="baseline", order=33,
    build=_lazy("ple", "PLE"),
    options={"n_shared_experts": 2, "n_specific_experts": 1, "n_levels": 2}, probes=("relations",),
    description="Progressive layered extraction: shared and per-scenario experts in stacked levels, "
                "per-scenario gates and towers (n_levels=1 is CGC)."))
register(ModelEntry(
    id="star", label="STAR", color="#6F4E9C", role="baseline", order=34,
    build=_lazy("star", "STAR"), probes=("relations",),
    description="Star topology: each scenario's network is a shared network's weights times its own, "
                "with partitioned normalisation and an auxiliary scenario network."))
