"""One colour per scenario (the same on every page) and one per model."""
from __future__ import annotations

# Plotly's "D3" qualitative palette, then "Dark24" for experiments with many scenarios.
_SCENARIO_PALETTE = [
    "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD",
    "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF",
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100",
    "#750D86", "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D",
]

MODEL_COLORS = {
    "BST-Individual": "#9E9E9E",
    "BST": "#4C78A8",
    "SAML": "#E45756",
    "SAML w/o gate": "#F58518",
    "SAML w/o aux": "#B279A2",
    "SAML w/o gate&mut": "#72B7B2",
    "Oracle": "#000000",
}

MODEL_ORDER = list(MODEL_COLORS)[:-1]


def scenario_colors(scenario_names: list[str]) -> dict[str, str]:
    """Colour by scenario position in the experiment's scenario order (stable across pages)."""
    return {name: _SCENARIO_PALETTE[i % len(_SCENARIO_PALETTE)] for i, name in enumerate(scenario_names)}


def model_color(label: str) -> str:
    return MODEL_COLORS.get(label, "#54A24B")


def model_sort_key(label: str) -> tuple[int, str]:
    return (MODEL_ORDER.index(label) if label in MODEL_ORDER else len(MODEL_ORDER), label)
