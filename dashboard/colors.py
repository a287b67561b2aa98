"""One colour per scenario (the same on every page); a model's colour comes from its registry entry."""
from __future__ import annotations

# Plotly's "D3" qualitative palette, then "Dark24" for experiments with many scenarios.
_SCENARIO_PALETTE = [
    "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD",
    "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF",
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100",
    "#750D86", "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D",
]
UNKNOWN_MODEL_COLOR = "#7F7F7F"
ORACLE_COLOR = "#000000"


def scenario_colors(scenario_names: list[str]) -> dict[str, str]:
    """Colour by scenario position in the experiment's scenario order (stable across pages)."""
    return {name: _SCENARIO_PALETTE[i % len(_SCENARIO_PALETTE)] for i, name in enumerate(scenario_names)}


def category_colors(values: list[str]) -> dict[str, str]:
    """One colour per value of a field on the hidden-state map, in the order given."""
    return {v: _SCENARIO_PALETTE[i % len(_SCENARIO_PALETTE)] for i, v in enumerate(values)}


def model_color(model_id: str) -> str:
    from saml_core.models import registry

    entry = registry.find(model_id)
    return entry.color if entry else UNKNOWN_MODEL_COLOR


def model_sort_key(model_id: str) -> tuple[int, str]:
    from saml_core.models import registry

    entry = registry.find(model_id)
    return (entry.order if entry else 10_000, str(model_id))
