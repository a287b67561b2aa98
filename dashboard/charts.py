"""Plotly figures built from plain DataFrames/arrays (pure functions, unit-tested).

Every figure has a title, axis titles and a legend (or a colour bar) so that it reads on its
own in a screenshot; the plain-words caption under it lives in `explain`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.colors import model_color, model_sort_key

RELAIMPR_CAP = 100
_FONT = dict(family="Source Sans Pro, Arial, sans-serif", size=13)


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 430, legend_title: str | None = None) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left"), font=_FONT, height=height,
        margin=dict(l=60, r=20, t=60, b=60), template="plotly_white",
        legend=dict(title=dict(text=legend_title or ""), orientation="v"),
        showlegend=True,
    )
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def training_curves(hist: pd.DataFrame, metric: str = "valid_auc") -> go.Figure:
    """Validation AUC (or train loss) by epoch, one line per run."""
    names = {"valid_auc": "Validation AUC", "train_loss": "Training loss", "valid_logloss": "Validation logloss"}
    fig = go.Figure()
    for run_id, sub in hist.sort_values("epoch").groupby("run_id", sort=False):
        label = sub["label"].iloc[0]
        seed = sub["seed"].iloc[0]
        fig.add_trace(go.Scatter(
            x=sub["epoch"], y=sub[metric], mode="lines+markers", name=f"{label} (seed {seed})",
            line=dict(color=model_color(label)), legendgroup=label,
            hovertemplate=f"{label}<br>epoch %{{x}}<br>{names.get(metric, metric)} %{{y:.4f}}<extra></extra>",
        ))
    fig.data = tuple(sorted(fig.data, key=lambda t: model_sort_key(t.legendgroup)))
    fig.update_xaxes(dtick=1, tickformat="d")
    return _layout(fig, f"{names.get(metric, metric)} during training", "Epoch",
                   names.get(metric, metric), height=380, legend_title="Run")


def per_scenario_bars(summary: pd.DataFrame, scenario_names: list[str], show_oracle: bool = True) -> go.Figure:
    """Grouped bars of AUC per scenario and model with error bars, oracle marks, significance stars."""
    fig = go.Figure()
    labels = sorted(summary["label"].unique(), key=model_sort_key)
    multi = bool((summary["seeds"] > 1).any()) if not summary.empty else False
    err_name = "mean ± std over seeds" if multi else "95 % confidence interval"
    for lab in labels:
        sub = summary[summary["label"] == lab].set_index("scenario").reindex(scenario_names).dropna(subset=["auc"])
        fig.add_trace(go.Bar(
            x=list(sub.index), y=sub["auc"], name=lab, marker_color=model_color(lab),
            error_y=dict(type="data", symmetric=False, array=sub["err_high"], arrayminus=sub["err_low"],
                         thickness=1.2, width=3),
            customdata=np.stack([sub["ci_low"], sub["ci_high"], sub["n"], sub["seeds"]], axis=-1),
            hovertemplate=(f"<b>{lab}</b> · %{{x}}<br>AUC %{{y:.4f}}<br>95 %% CI %{{customdata[0]:.4f}}–"
                           "%{customdata[1]:.4f}<br>test samples %{customdata[2]:,}<br>"
                           "seeds %{customdata[3]}<extra></extra>").replace("%%", "%"),
        ))
    if show_oracle and not summary.empty and summary["oracle_auc"].notna().any():
        orc = summary.drop_duplicates("scenario").set_index("scenario").reindex(scenario_names)
        fig.add_trace(go.Scatter(
            x=scenario_names, y=orc["oracle_auc"], mode="markers", name="Oracle (best possible)",
            marker=dict(symbol="line-ew-open", size=26, color="black", line=dict(width=2.5)),
            hovertemplate="%{x}<br>oracle AUC %{y:.4f}<extra></extra>",
        ))
    sig = summary[summary["significant"]] if not summary.empty else summary
    if len(sig):
        top = summary.assign(top=summary["auc"] + summary["err_high"].fillna(0)).groupby("scenario")["top"].max()
        fig.add_trace(go.Scatter(
            x=list(sig["scenario"]), y=[top[s] + 0.01 for s in sig["scenario"]], mode="markers",
            marker=dict(symbol="star", size=14, color=model_color("SAML"), line=dict(width=1, color="black")),
            name="SAML significantly better than BST (p < 0.05)",
            customdata=sig["p_value"], hovertemplate="%{x}: paired test p = %{customdata:.2g}<extra></extra>",
        ))
    lo = np.nanmin(summary["auc"] - summary["err_low"].fillna(0)) if not summary.empty else 0.5
    hi_vals = [np.nanmax(summary["auc"] + summary["err_high"].fillna(0))] if not summary.empty else [1.0]
    if show_oracle and not summary.empty and summary["oracle_auc"].notna().any():
        hi_vals.append(np.nanmax(summary["oracle_auc"]))
    hi = max(hi_vals)
    pad = max((hi - lo) * 0.12, 0.01)
    fig.update_layout(barmode="group", bargap=0.2)
    fig.update_yaxes(range=[max(lo - pad, 0.0), min(hi + pad, 1.0)])
    return _layout(fig, f"Test AUC per scenario (error bars: {err_name})", "Scenario", "AUC (higher is better)",
                   height=460, legend_title="Model")


def relaimpr_bars(summary: pd.DataFrame, scenario_names: list[str]) -> go.Figure:
    fig = go.Figure()
    for lab in sorted(summary["label"].unique(), key=model_sort_key):
        if lab == "BST":
            continue
        sub = summary[summary["label"] == lab].set_index("scenario").reindex(scenario_names).dropna(subset=["auc"])
        fig.add_trace(go.Bar(x=list(sub.index), y=sub["relaimpr"], name=lab, marker_color=model_color(lab),
                             hovertemplate=f"{lab} · %{{x}}<br>RelaImpr %{{y:+.2f}} %<extra></extra>"))
    fig.add_hline(y=0, line_color="#444", line_width=1)
    fig.update_layout(barmode="group")
    title = "Relative improvement over BST per scenario"
    vals = summary.loc[summary["label"] != "BST", "relaimpr"].abs()
    if len(vals) and np.nanmax(vals) > RELAIMPR_CAP:
        # Where BST is near AUC 0.5 the ratio explodes; keep the readable range, hover has the value.
        fig.update_yaxes(range=[-RELAIMPR_CAP, RELAIMPR_CAP])
        title += f" (axis cut at ±{RELAIMPR_CAP} %)"
    return _layout(fig, title, "Scenario", "RelaImpr vs BST (%)", height=380, legend_title="Model")


def traffic_share_bar(traffic_share: dict, scenario_names: list[str], colors: dict) -> go.Figure:
    fig = go.Figure()
    for s in scenario_names:  # one trace per scenario: the legend doubles as the colour key
        fig.add_trace(go.Bar(x=[s], y=[100 * traffic_share.get(s, np.nan)], name=s, marker_color=colors[s],
                             hovertemplate="%{x}: %{y:.1f} % of training samples<extra></extra>"))
    fig.update_layout(barmode="overlay")
    return _layout(fig, "Traffic share of each scenario", "Scenario", "Share of training samples (%)",
                   height=380, legend_title="Scenario")


def heatmap(mat: np.ndarray, names: list[str], title: str, colorbar: str,
            counts: np.ndarray | None = None, zmin: float | None = None, zmax: float | None = None,
            row_title: str = "Scenario of the sample (row)", col_title: str = "Compared with branch (column)",
            height: int = 470, show_values: bool = True) -> go.Figure:
    """Scenario × scenario heatmap; hover shows value and the number of samples behind each row."""
    m = np.asarray(mat, dtype=np.float64)
    cnt = np.zeros(len(names), dtype=int) if counts is None else np.asarray(counts, dtype=int)
    custom = np.repeat(cnt[:, None], len(names), axis=1)
    text = [["—" if not np.isfinite(v) else f"{v:.3f}" for v in row] for row in m]
    hover = ("row %{y} vs column %{x}<br>value %{z:.4f}" +
             ("<br>samples in row: %{customdata:,}" if counts is not None else "") + "<extra></extra>")
    fig = go.Figure(go.Heatmap(
        z=m, x=names, y=names, customdata=custom, text=text, texttemplate="%{text}" if show_values else None,
        textfont=dict(size=10), colorscale="Viridis", zmin=zmin, zmax=zmax,
        colorbar=dict(title=dict(text=colorbar)), hovertemplate=hover, name=colorbar,
    ))
    fig.update_yaxes(autorange="reversed")
    fig = _layout(fig, title, col_title, row_title, height=height)
    fig.update_layout(showlegend=False)  # a heatmap's legend is its colour bar
    return fig


def alpha_cdf(cdf_df: pd.DataFrame, source: str, colors: dict) -> go.Figure:
    fig = go.Figure()
    for name, sub in cdf_df.groupby("against", sort=False):
        fig.add_trace(go.Scatter(x=sub["alpha"], y=sub["cdf"], mode="lines", name=name,
                                 line=dict(color=colors.get(name), width=2),
                                 hovertemplate=f"{source} vs {name}<br>α ≤ %{{x:.4f}} for %{{y:.0%}} of samples<extra></extra>"))
    return _layout(fig, f"How strongly {source} listens to each other scenario (cumulative distribution of α)",
                   f"Similarity coefficient α of {source} towards the other scenario",
                   f"Share of {source} samples with α ≤ x", height=430, legend_title="Other scenario")


def gate_distributions(gate_df: pd.DataFrame, names: list[str], colors: dict) -> go.Figure:
    fig = go.Figure()
    for s in names:
        vals = gate_df.loc[gate_df["scenario"] == s, "gate"]
        if len(vals) == 0:
            continue
        fig.add_trace(go.Box(y=vals, name=s, marker_color=colors.get(s), boxmean=True,
                             hovertemplate=f"{s}<br>g %{{y:.3f}}<extra></extra>"))
    return _layout(fig, "Gate coefficient g per scenario (how much each borrows from the others)",
                   "Scenario", "Gate coefficient g (0 = keeps to itself, 1 = borrows fully)",
                   height=420, legend_title="Scenario")


def gate_vs_traffic_scatter(df: pd.DataFrame, colors: dict) -> go.Figure:
    fig = go.Figure()
    for _, row in df.iterrows():
        fig.add_trace(go.Scatter(
            x=[100 * row["traffic_share"]], y=[row["gate_mean"]], mode="markers+text", name=row["scenario"],
            text=[row["scenario"]], textposition="top center",
            marker=dict(size=13, color=colors.get(row["scenario"])),
            hovertemplate=(f"{row['scenario']}<br>traffic %{{x:.1f}} %<br>mean g %{{y:.3f}}"
                           f"<br>{int(row['samples']):,} samples<extra></extra>"),
        ))
    if len(df):  # room for the text labels of the right-most and top points
        xmax = 100 * float(np.nanmax(df["traffic_share"]))
        fig.update_xaxes(range=[0, xmax * 1.2 + 2])
    return _layout(fig, "Mean gate coefficient vs traffic share", "Share of training samples (%)",
                   "Mean gate coefficient g", height=400, legend_title="Scenario")


def umap_scatter(df: pd.DataFrame, color_by: str, title: str, colors: dict | None = None,
                 color_title: str = "") -> go.Figure:
    """2-D embedding; categorical colouring gets one trace per value, numeric a colour scale."""
    fig = go.Figure()
    hover = "%{customdata[0]}<br>label %{customdata[1]}<br>prediction %{customdata[2]:.3f}<extra></extra>"
    custom_cols = ["hover", "label", "pred"]
    if pd.api.types.is_numeric_dtype(df[color_by]) and color_by not in ("label",):
        fig.add_trace(go.Scattergl(
            x=df["x"], y=df["y"], mode="markers", name=color_title or color_by,
            marker=dict(size=4, color=df[color_by], colorscale="Viridis", opacity=0.75,
                        colorbar=dict(title=dict(text=color_title or color_by))),
            customdata=df[custom_cols].to_numpy(), hovertemplate=hover,
        ))
    else:
        values = list(dict.fromkeys(df[color_by].tolist()))
        if colors:
            values = [v for v in colors if v in set(values)] + [v for v in values if v not in colors]
        for v in values:
            sub = df[df[color_by] == v]
            fig.add_trace(go.Scattergl(
                x=sub["x"], y=sub["y"], mode="markers", name=str(v),
                marker=dict(size=4, opacity=0.75, color=(colors or {}).get(v)),
                customdata=sub[custom_cols].to_numpy(), hovertemplate=hover,
            ))
    fig = _layout(fig, title, "UMAP dimension 1", "UMAP dimension 2", height=560,
                  legend_title=color_title or color_by)
    fig.update_layout(legend=dict(itemsizing="constant"))
    return fig
