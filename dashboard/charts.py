"""Plotly figures built from plain DataFrames/arrays (pure functions, unit-tested).

Every figure has a title, axis titles and a legend or a colour bar (never both saying the same),
so that it reads on its own in a screenshot; the plain-words caption under it lives in
`explain`. Models are keyed by registry id (colour, order); labels are only displayed.
"""
from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.colors import ORACLE_COLOR, model_color, model_sort_key
from saml_core.models import registry as model_registry

RELAIMPR_CAP = 100
_FONT = dict(family="Source Sans Pro, Arial, sans-serif", size=13)
DIVERGING = "RdBu_r"  # centred scales: blue below the reference, red above
# Charts are at least ~440 px wide (pages put them side by side only when both get that much, see
# ui.row), where about 60 characters of title fit; longer titles wrap instead of being cut off.
TITLE_CHARS = 60
_TITLE_LINE_PX = 22
_LEGEND_ROW_PX = 22
_ASSUMED_WIDTH_PX = 600  # for estimating how many rows a horizontal legend takes
WEBGL_FROM_POINTS = 2500
# Plotly's "plotly_white" look, cut to the trace types these charts draw: setting the whole
# template copies and validates defaults for ~25 trace types on every figure (measured: the
# correlations page's warm render 0.80 s -> 0.69 s on a 2-core AMD EPYC; BENCHMARKS.md,
# Dashboard). Same layout, same defaults for the traces drawn here.
TRACE_TYPES = ("bar", "box", "heatmap", "scatter", "scattergl")


def _template() -> go.layout.Template:
    import plotly.io as pio

    white = pio.templates["plotly_white"]
    return go.layout.Template(layout=white.layout, data={t: white.data[t] for t in TRACE_TYPES if white.data[t]})


TEMPLATE = _template()


def wrap_title(text: str, width: int = TITLE_CHARS) -> list[str]:
    """The title's lines, broken between words (a Plotly title never wraps by itself)."""
    return textwrap.wrap(text, width, break_long_words=False) or [""]


def legend_rows(names: list[str], width_px: int = _ASSUMED_WIDTH_PX, title: str = "") -> int:
    """Rows a horizontal legend takes at `width_px` (entries ~40 px + 7 px per character)."""
    if not names:
        return 0
    rows, used = 1, 7 * len(title) + 10 if title else 0
    for n in names:
        w = 40 + 7 * len(n)
        if used and used + w > width_px:
            rows, used = rows + 1, 0
        used += w
    return rows


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 430, legend_title: str | None = None,
            legend: bool = True) -> go.Figure:
    """Title at the top (wrapped), the legend as rows under it (a legend at the side takes a third
    of a narrow chart's width), axis titles; the figure grows by what title and legend take."""
    lines = wrap_title(title)
    # Plotly lifts a title of several lines ~14 px above a one-line title's top: pad it back down
    pad = 10 if len(lines) == 1 else 24
    top = pad + 4 + _TITLE_LINE_PX * len(lines)
    shown = [t.name for t in fig.data if t.name and t.showlegend is not False] if legend else []
    rows = legend_rows(shown, title=legend_title or "")
    height += _TITLE_LINE_PX * (len(lines) - 1) + _LEGEND_ROW_PX * rows
    fig.update_layout(
        title=dict(text="<br>".join(lines), x=0.0, xanchor="left", yref="container", y=1.0, yanchor="top",
                   pad=dict(t=pad)),
        font=_FONT, height=height, margin=dict(l=60, r=20, t=top + 16, b=60), template=TEMPLATE,
        legend=dict(title=dict(text=legend_title or ""), orientation="h", yref="container", y=1 - (top + 4) / height,
                    yanchor="top", x=0.0, xanchor="left"),
        showlegend=legend,
    )
    fig.update_layout(xaxis_title=x, yaxis_title=y)  # not update_yaxes: a second axis keeps its own title
    return fig


def training_curves(hist: pd.DataFrame, metric: str = "valid_auc") -> go.Figure:
    """Validation AUC (or train loss) by epoch, one line per run, one legend entry per model (with
    several seeds a legend per run would be longer than the chart); the hover names the run."""
    names = {"valid_auc": "Validation AUC", "train_loss": "Training loss", "valid_logloss": "Validation logloss"}
    fig = go.Figure()
    data = hist.dropna(subset=[metric])
    multi_data = data["data_seed"].nunique() > 1
    runs = sorted(data.sort_values("epoch").groupby("run_id", sort=False), key=lambda kv: model_sort_key(
        kv[1]["model"].iloc[0]))
    seen: set[str] = set()
    for run_id, sub in runs:
        model, label, seed = sub["model"].iloc[0], sub["label"].iloc[0], sub["seed"].iloc[0]
        run = f"{label} (seed {seed}" + (f", data {sub['data_seed'].iloc[0]})" if multi_data else ")")
        fig.add_trace(go.Scatter(
            x=sub["epoch"], y=sub[metric], mode="lines+markers", name=label, legendgroup=model, meta=model,
            showlegend=model not in seen, line=dict(color=model_color(model)),
            hovertemplate=f"{run}<br>epoch %{{x}}<br>{names.get(metric, metric)} %{{y:.4f}}<extra></extra>",
        ))
        seen.add(model)
    fig.update_xaxes(dtick=1, tickformat="d")
    several = data.groupby("model")["run_id"].nunique().max() > 1 if len(data) else False
    return _layout(fig, f"{names.get(metric, metric)} during training", "Epoch", names.get(metric, metric),
                   height=380, legend_title="Model (one line per run)" if several else "Model")


def per_scenario_auc(long_df: pd.DataFrame, names: list[str], noun_one: str, show_oracle: bool = True,
                     focus: str | None = None) -> go.Figure:
    """AUC per scenario and model as points with error bars (an AUC axis need not start at 0, bars
    would), oracle dashes, and the focus model's verdicts against BST (★ better, ▼ worse); focus
    None = the registry's choice among the models shown."""
    fig = go.Figure()
    models = sorted(long_df["model"].unique(), key=model_sort_key) if not long_df.empty else []
    if focus is None:
        focus = model_registry.focus_id(models)
    multi = bool((long_df["runs"] > 1).any()) if not long_df.empty else False
    err_name = "± std over runs" if multi else "95 % confidence interval"
    for m in models:
        sub = long_df[long_df["model"] == m].set_index("scenario").reindex(names).dropna(subset=["auc"])
        label = sub["label"].iloc[0] if len(sub) else m
        fig.add_trace(go.Scatter(
            x=list(sub.index), y=sub["auc"], name=label, mode="markers", meta=m,
            marker=dict(color=model_color(m), size=10, symbol="circle"),
            error_y=dict(type="data", symmetric=False, array=sub["err_high"], arrayminus=sub["err_low"],
                         thickness=1.5, width=4, color=model_color(m)),
            customdata=np.stack([sub["ci_low"], sub["ci_high"], sub["n"], sub["runs"]], axis=-1),
            hovertemplate=(f"<b>{label}</b> · %{{x}}<br>AUC %{{y:.4f}}<br>95 %% CI %{{customdata[0]:.4f}}–"
                           "%{customdata[1]:.4f}<br>test samples %{customdata[2]:,}<br>"
                           "runs %{customdata[3]}<extra></extra>").replace("%%", "%"),
        ))
    tops = []
    if show_oracle and not long_df.empty and long_df["oracle_auc"].notna().any():
        orc = long_df.drop_duplicates("scenario").set_index("scenario").reindex(names)
        fig.add_trace(go.Scatter(
            x=names, y=orc["oracle_auc"], mode="markers", name="Oracle (best possible)", meta="oracle",
            marker=dict(symbol="line-ew-open", size=30, color=ORACLE_COLOR, line=dict(width=2.5)),
            hovertemplate="%{x}<br>oracle AUC %{y:.4f}<extra></extra>"))
        tops.append(np.nanmax(orc["oracle_auc"]))
    if not long_df.empty:
        top = (long_df["auc"] + long_df["err_high"].fillna(0)).groupby(long_df["scenario"]).max()
        tops.append(float(top.max()))
        f = long_df[long_df["model"] == focus]
        for verdict, symbol, word in (("better", "star", "better than"), ("worse", "triangle-down", "worse than")):
            hit = f[f["verdict"] == verdict]
            if len(hit):
                fig.add_trace(go.Scatter(
                    x=list(hit["scenario"]), y=[top[s] + 0.012 for s in hit["scenario"]], mode="markers",
                    meta=f"verdict-{verdict}", name=f"{hit['label'].iloc[0]} significantly {word} BST",
                    marker=dict(symbol=symbol, size=14, color=model_color(focus), line=dict(width=1, color="black")),
                    customdata=hit["p_holm"],
                    hovertemplate="%{x}: paired test, Holm-adjusted p = %{customdata:.2g}<extra></extra>"))
    lo = float(np.nanmin(long_df["auc"] - long_df["err_low"].fillna(0))) if not long_df.empty else 0.5
    hi = max(tops) if tops else 1.0
    pad = max((hi - lo) * 0.1, 0.01)
    fig.update_layout(scattermode="group", scattergap=0.5)
    fig.update_yaxes(range=[max(lo - pad, 0.0), min(hi + 2 * pad, 1.0)])
    return _layout(fig, f"Test AUC per {noun_one} ({err_name})", noun_one.capitalize(), "AUC (higher is better)",
                   height=470, legend_title="Model")


def within_auc_chart(frame: pd.DataFrame, noun_one: str, noun_many: str) -> go.Figure:
    """The headline chart: each model's within-scenario AUC (best on top) with its whisker, and
    the 0.5 that knowing only each scenario's click rate earns (the reference rows)."""
    multi = bool((frame["runs"] > 1).any()) if not frame.empty else False
    fig = go.Figure()
    for _, r in frame.iloc[::-1].iterrows():  # Plotly draws the first category at the bottom
        fig.add_trace(go.Scatter(
            x=[r["within_auc"]], y=[r["label"]], mode="markers", name=r["label"], meta=r["group"], showlegend=False,
            marker=dict(color=model_color(r["model"]), size=11),
            error_x=dict(type="data", symmetric=False, array=[r["err_high"]], arrayminus=[r["err_low"]],
                         thickness=1.5, width=4, color=model_color(r["model"])),
            hovertemplate=f"<b>{r['label']}</b><br>within-{noun_one} AUC %{{x:.4f}}<br>runs {r['runs']}"
                          "<extra></extra>"))
    fig.add_vline(x=0.5, line_dash="dash", line_color="#555", line_width=1.5,
                  annotation_text=f"0.5: {noun_one} click rate only", annotation_position="top right",
                  annotation_font=dict(size=11, color="#555"))
    lo = float(np.nanmin(frame["within_auc"] - frame["err_low"].fillna(0))) if not frame.empty else 0.5
    hi = float(np.nanmax(frame["within_auc"] + frame["err_high"].fillna(0))) if not frame.empty else 0.6
    pad = max((max(hi, 0.5) - min(lo, 0.5)) * 0.08, 0.005)
    fig.update_xaxes(range=[min(lo, 0.5) - pad, max(hi, 0.5) + pad])
    err = "± std over runs" if multi else "95 % confidence interval"
    return _layout(fig, f"Within-{noun_one} AUC per model ({err})", f"AUC within each {noun_one}, weighted by test "
                   f"samples (higher is better)", "", height=90 + 30 * max(len(frame), 1), legend=False)


def matrix_heatmap(mat, rows: list[str], cols: list[str], title: str, colorbar: str, *, hover: list[list[str]],
                   center: float | None = 0.0, marks: np.ndarray | None = None, grey: np.ndarray | None = None,
                   grey_hover: list[list[str]] | None = None, row_title: str = "", col_title: str = "",
                   height: int = 470, value_format: str = "+.3f") -> go.Figure:
    """A heatmap whose cells say in their hover what they hold (`hover`, one text per cell), with
    "✓" after the value where `marks` is True (e.g. holds in every seed) and cells left out
    (`grey`: e.g. a scenario with too few clicks) drawn grey with the reason as hover."""
    m = np.asarray(mat, dtype=np.float64)
    marks = np.zeros(m.shape, dtype=bool) if marks is None else np.asarray(marks, dtype=bool)
    grey = np.zeros(m.shape, dtype=bool) if grey is None else np.asarray(grey, dtype=bool)
    shown = np.where(grey, np.nan, m)
    text = [["" if not np.isfinite(v) else format(v, value_format) + (" ✓" if mk else "") for v, mk in zip(row, mrow)]
            for row, mrow in zip(shown, marks)]
    kw: dict = {"colorscale": "Viridis"}
    if center is not None:
        span = np.nanmax(np.abs(shown - center)) if np.isfinite(shown).any() else 1.0
        span = span if span > 0 else 1.0
        kw = {"colorscale": DIVERGING, "zmid": center, "zmin": center - span, "zmax": center + span}
    fig = go.Figure(go.Heatmap(z=shown, x=cols, y=rows, text=text, texttemplate="%{text}", textfont=dict(size=10),
                               customdata=np.array(hover, dtype=object), hovertemplate="%{customdata}<extra></extra>",
                               colorbar=dict(title=dict(text=colorbar, side="right"), thickness=14), name=colorbar,
                               **kw))
    if grey.any():
        fig.add_trace(go.Heatmap(z=np.where(grey, 1.0, np.nan), x=cols, y=rows, showscale=False, name="left out",
                                 colorscale=[[0, "#D9D9D9"], [1, "#D9D9D9"]], hoverongaps=False,
                                 customdata=np.array(grey_hover or [[""] * len(cols)] * len(rows), dtype=object),
                                 hovertemplate="%{customdata}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, col_title, row_title, height=height, legend=False)


def relaimpr_axis(values, cap: float = RELAIMPR_CAP) -> tuple[list[float], list[float]]:
    """Y range of the RelaImpr chart and the values it cuts off. The range is scaled to the values
    and always shows 0; a value beyond ±cap (a model far from guessing when BST is barely above it)
    is cut at the cap on its own side only, so the others stay readable, and only when some value
    is within the cap (a chart of nothing but extremes shows them)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return [-1.0, 1.0], []
    inside = v[np.abs(v) <= cap]
    shown = inside if inside.size else v
    lo, hi = min(0.0, float(shown.min())), max(0.0, float(shown.max()))
    pad = 0.12 * max(hi - lo, 1.0)
    cut = [float(x) for x in v if abs(x) > cap] if inside.size else []
    lo = -cap if any(x < -cap for x in cut) else lo - pad
    hi = cap if any(x > cap for x in cut) else hi + pad
    return [lo, hi], cut


def relaimpr_bars(long_df: pd.DataFrame, names: list[str], noun_one: str, reference: str | None = None) -> go.Figure:
    """RelaImpr vs BST per scenario; only where BST is clearly above chance (else the value is None).
    reference None = the registry's reference model."""
    reference = model_registry.reference_id() if reference is None else reference
    fig = go.Figure()
    sub_all = long_df[long_df["model"] != reference] if not long_df.empty else long_df
    for m in sorted(sub_all["model"].unique(), key=model_sort_key) if not sub_all.empty else []:
        sub = sub_all[sub_all["model"] == m].set_index("scenario").reindex(names)
        fig.add_trace(go.Bar(x=names, y=sub["relaimpr"], name=sub["label"].dropna().iloc[0], meta=m,
                             marker_color=model_color(m),
                             hovertemplate="%{x}<br>RelaImpr %{y:+.2f} %<extra></extra>"))
    fig.add_hline(y=0, line_color="#444", line_width=1)
    fig.update_layout(barmode="group")
    title = f"Relative improvement over BST per {noun_one}"
    values = sub_all["relaimpr"].tolist() if not sub_all.empty else []
    rng, cut = relaimpr_axis(values)
    fig.update_yaxes(range=rng)
    if cut:
        side = "±" if min(cut) < 0 < max(cut) else "−" if min(cut) < 0 else "+"
        title += f" (axis cut at {side}{RELAIMPR_CAP}\u00a0%)"  # no-break space: the wrap keeps "100 %" whole
        for _, r in sub_all[sub_all["relaimpr"].abs() > RELAIMPR_CAP].iterrows():
            fig.add_annotation(x=r["scenario"], y=rng[1] if r["relaimpr"] > 0 else rng[0], showarrow=False,
                               text=f"{r['label']}: {r['relaimpr']:+.0f} %", yshift=-10 if r["relaimpr"] > 0 else 10,
                               font=dict(size=11, color="#333"), bgcolor="rgba(255,255,255,0.8)")
    missing = [n for n in names if sub_all.empty or sub_all[sub_all["scenario"] == n]["relaimpr"].isna().all()]
    for n in missing:
        fig.add_annotation(x=n, y=0, text="n/a", showarrow=False, yshift=9, font=dict(size=11, color="#777"))
    return _layout(fig, title, noun_one.capitalize(), "RelaImpr vs BST (%)", height=380, legend_title="Model")


def traffic_share_bar(traffic_share: dict, scenario_names: list[str], colors: dict, noun_one: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=scenario_names, y=[100 * (traffic_share.get(s) or np.nan) for s in scenario_names],
                           marker_color=[colors[s] for s in scenario_names],
                           hovertemplate="%{x}: %{y:.1f} % of training samples<extra></extra>"))
    return _layout(fig, f"Traffic share of each {noun_one}", noun_one.capitalize(), "Share of training samples (%)",
                   height=380, legend=False)


def _decimals(m: np.ndarray) -> int:
    """Enough decimals that the cells' differences show (0.2496 vs 0.2504 must not both read 0.250)."""
    v = m[np.isfinite(m)]
    if v.size < 2 or np.ptp(v) == 0:
        return 3
    return int(min(6, max(3, math.ceil(-math.log10(np.ptp(v))))))


def heatmap(mat: np.ndarray, names: list[str], title: str, colorbar: str, *, counts: np.ndarray | None = None,
            center: float | None = None, row_title: str = "row", col_title: str = "column", height: int = 470,
            show_values: bool = True, value_format: str | None = None, names_cols: list[str] | None = None
            ) -> go.Figure:
    """Matrix heatmap; with `center` a diverging scale symmetric around it (the even split, 0, ...).
    Hover shows the value and, with `counts`, how many samples stand behind each row."""
    m = np.asarray(mat, dtype=np.float64)
    cols = names_cols or names
    cnt = np.zeros(len(names), dtype=int) if counts is None else np.asarray(counts, dtype=int)
    custom = np.repeat(cnt[:, None], len(cols), axis=1)
    fmt = value_format or f".{_decimals(m)}f"
    text = [["—" if not np.isfinite(v) else format(v, fmt) for v in row] for row in m]
    hover = ("row %{y} · column %{x}<br>value %{z:" + fmt + "}" +
             ("<br>samples in row: %{customdata:,}" if counts is not None else "") + "<extra></extra>")
    kw: dict = {"colorscale": "Viridis"}
    if center is not None:
        span = np.nanmax(np.abs(m - center)) if np.isfinite(m).any() else 1.0
        span = span if span > 0 else 1.0
        kw = {"colorscale": DIVERGING, "zmid": center, "zmin": center - span, "zmax": center + span}
    fig = go.Figure(go.Heatmap(
        z=m, x=cols, y=names, customdata=custom, text=text, texttemplate="%{text}" if show_values else None,
        textfont=dict(size=10), colorbar=dict(title=dict(text=colorbar, side="right"), thickness=14),
        hovertemplate=hover, name=colorbar, **kw))  # a colour-bar title along the bar: long ones fit
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, col_title, row_title, height=height, legend=False)


def bar_effects(values: dict[str, float], colors: dict, title: str, x_title: str, y_title: str,
                compare: dict[str, float] | None = None, compare_name: str = "") -> go.Figure:
    """One bar per scenario (e.g. each branch's column effect), optionally a second series as
    diamonds on a right-hand axis. No legend: each axis title says which series it carries."""
    names = list(values)
    fig = go.Figure(go.Bar(x=names, y=[values[n] for n in names], marker_color=[colors.get(n) for n in names],
                           name=y_title, hovertemplate="%{x}: %{y:+.4f}<extra></extra>"))
    fig.add_hline(y=0, line_color="#444", line_width=1)
    fig = _layout(fig, title, x_title, f"{y_title} (bars)" if compare else y_title, height=380, legend=False)
    if compare:
        fig.add_trace(go.Scatter(x=names, y=[compare.get(n) for n in names], yaxis="y2", mode="markers",
                                 name=compare_name, marker=dict(symbol="diamond", size=11, color="#333"),
                                 hovertemplate="%{x}: %{y:.1f} %<extra></extra>"))
        top = max((v for v in compare.values() if v is not None and np.isfinite(v)), default=1.0)
        fig.update_layout(yaxis2=dict(title=dict(text=f"{compare_name} (◆)"), overlaying="y", side="right",
                                      showgrid=False, range=[0, 1.1 * top], tickmode="auto", nticks=6),
                          margin=dict(r=70))
    return fig


def alpha_cdf(cdf_df: pd.DataFrame, source: str, colors: dict, noun_one: str) -> go.Figure:
    fig = go.Figure()
    for name, sub in cdf_df.groupby("against", sort=False):
        fig.add_trace(go.Scatter(x=sub["alpha"], y=sub["cdf"], mode="lines", name=name,
                                 line=dict(color=colors.get(name), width=2),
                                 hovertemplate=f"{source} vs {name}<br>α ≤ %{{x:.4f}} for %{{y:.0%}} of samples<extra></extra>"))
    return _layout(fig, f"How strongly {source} listens to each other {noun_one} (cumulative distribution of α)",
                   f"Similarity coefficient α of {source} towards the other {noun_one}",
                   f"Share of {source} samples with α ≤ x", height=430, legend_title=f"Other {noun_one}")


def gate_distributions(gate_df: pd.DataFrame, names: list[str], colors: dict, noun_one: str,
                       gate_init: dict[str, float] | None = None) -> go.Figure:
    fig = go.Figure()
    for s in names:
        vals = gate_df.loc[gate_df["scenario"] == s, "gate"]
        if len(vals) == 0:
            continue
        fig.add_trace(go.Box(y=vals, name=s, marker_color=colors.get(s), boxmean=True, showlegend=False,
                             hovertemplate=f"{s}<br>g %{{y:.3f}}<extra></extra>"))
    if gate_init:
        xs = [s for s in names if gate_init.get(s) is not None]
        fig.add_trace(go.Scatter(x=xs, y=[gate_init[s] for s in xs], mode="markers", name="before training",
                                 marker=dict(symbol="line-ew-open", size=28, color="#333", line=dict(width=2)),
                                 hovertemplate="%{x}: g started at %{y:.3f}<extra></extra>"))
    return _layout(fig, f"Gate coefficient g per {noun_one} (how much each borrows from the others)",
                   noun_one.capitalize(), "g (0 = keeps to itself, 1 = adds all)", height=420, legend=bool(gate_init))


# Where a label can sit around its dot (Plotly textposition) and its box's offset from the dot,
# in units of (label width, label height); r is the dot's radius in px.
_LABEL_SPOTS = (("top center", -0.5, 0.0), ("bottom center", -0.5, -1.0), ("middle right", 0.0, -0.5),
                ("middle left", -1.0, -0.5), ("top right", 0.0, 0.0), ("top left", -1.0, 0.0),
                ("bottom right", 0.0, -1.0), ("bottom left", -1.0, -1.0))


def _label_box(px: float, py: float, spot: tuple, w: float, h: float, r: float) -> tuple[float, float, float, float]:
    name, fx, fy = spot
    gx = r if "right" in name else -r if "left" in name else 0.0
    gy = r if name.startswith("top") else -r if name.startswith("bottom") else 0.0
    x0, y0 = px + gx + fx * w, py + gy + fy * h
    return x0, y0, x0 + w, y0 + h


def _overlap(a: tuple, b: tuple) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def label_positions(x: np.ndarray, y: np.ndarray, texts: list[str], width: float = 560, height: float = 280,
                    radius: float = 7, char_px: float = 7.5, line_px: float = 16) -> tuple[list[str], list[tuple]]:
    """A Plotly textposition per dot so labels cover neither each other nor other dots (greedy: the
    most crowded dots choose first, each the free spot in a fixed order of preference), and the
    label boxes in px. x, y are in [0, 1] of a plot area assumed `width` x `height` px."""
    px, py = np.asarray(x, dtype=float) * width, np.asarray(y, dtype=float) * height
    n = len(px)
    dots = [(px[i] - radius, py[i] - radius, px[i] + radius, py[i] + radius) for i in range(n)]
    crowd = [sum(np.hypot(px[i] - px[j], py[i] - py[j]) < 60 for j in range(n)) for i in range(n)]
    placed: dict[int, tuple] = {}
    spots: dict[int, str] = {}
    for i in sorted(range(n), key=lambda i: -crowd[i]):
        w, h = char_px * len(texts[i]) + 4, line_px
        best = None
        for rank, spot in enumerate(_LABEL_SPOTS):
            box = _label_box(px[i], py[i], spot, w, h, radius)
            cost = round(sum(_overlap(box, b) for b in placed.values())
                         + sum(_overlap(box, dots[j]) for j in range(n) if j != i)
                         + 2 * (w * h - _overlap(box, (0, 0, width, height))), 3)  # 2x: outside the plot
            if best is None or (cost, rank) < best[:2]:
                best = (cost, rank, spot[0], box)
        spots[i], placed[i] = best[2], best[3]
    return [spots[i] for i in range(n)], [placed[i] for i in range(n)]


def gate_vs_traffic_scatter(df: pd.DataFrame, colors: dict, noun_one: str, y: str = "gate_mean",
                            y_title: str = "Mean gate coefficient g") -> go.Figure:
    """One labelled dot per scenario. Traffic share on a log axis: a few large scenarios would
    otherwise squeeze the many small ones into one corner; labels are placed so they do not
    overlap (label_positions)."""
    d = df.dropna(subset=[y]).sort_values("traffic_share")
    d = d[d["traffic_share"] > 0]
    xs = 100 * d["traffic_share"].to_numpy(dtype=float)
    ys = d[y].to_numpy(dtype=float)
    positions = ["top center"] * len(d)
    fig = go.Figure()
    if len(d):
        lx = np.log10(xs)
        x_lo, x_hi = lx.min() - 0.12 * max(np.ptp(lx), 0.3), lx.max() + 0.12 * max(np.ptp(lx), 0.3)
        span = float(np.ptp(ys)) or 0.01
        y_lo, y_hi = float(ys.min()) - 0.2 * span, float(ys.max()) + 0.2 * span
        positions, _ = label_positions((lx - x_lo) / (x_hi - x_lo), (ys - y_lo) / (y_hi - y_lo),
                                       [str(t) for t in d["scenario"]])
        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100) if x_lo <= np.log10(t) <= x_hi]
        fig.update_xaxes(type="log", range=[x_lo, x_hi], tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
        fig.update_yaxes(range=[y_lo, y_hi])
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text", text=d["scenario"], textposition=positions,
        marker=dict(size=13, color=[colors.get(s) for s in d["scenario"]]),
        customdata=d["samples"], hovertemplate="%{text}<br>traffic %{x:.1f} %<br>" + y_title +
        " %{y:.3f}<br>%{customdata:,} samples<extra></extra>"))
    return _layout(fig, f"{y_title} vs traffic share", "Share of training samples (%, log scale)", y_title,
                   height=400, legend=False)


MAP_CATEGORIES = 15  # colours on a map; a field with more values shows its most common, the rest as "other"


def map_categories(values: pd.Series, colors: dict | None = None, limit: int = MAP_CATEGORIES) -> pd.Series:
    """The colour group of each point: its value, or "other (N values)" beyond the `limit` most
    common (a legend of 800 user ids helps nobody); values with a fixed colour are kept."""
    counts = values.value_counts()
    keep = set(counts.index[:limit]) | set(colors or {})
    if len(counts) <= len(keep & set(counts.index)):
        return values.astype(str)
    other = f"other ({len(counts) - len(keep & set(counts.index))} values)"
    return values.where(values.isin(keep), other).astype(str)


def umap_scatter(df: pd.DataFrame, color_by: str, title: str, colors: dict | None = None,
                 color_title: str = "", x_title: str = "UMAP dimension 1", y_title: str = "UMAP dimension 2",
                 numeric: bool | None = None, chosen: int | None = None, neighbours: list[int] | None = None
                 ) -> go.Figure:
    """2-D map of the points; categorical colouring gets one trace per value (legend, the most
    common values first), numeric a colour scale (colour bar only, no legend). customdata[0] of
    every point is its number in `df` (what a box or lasso selection returns); the hover shows
    df["hover"]. `chosen` and its `neighbours` (in the hidden space) are ringed on top."""
    fig = go.Figure()
    hover = "%{customdata[1]}<extra></extra>"
    custom_cols = ["point", "hover"]
    # SVG draws a map of the stored size (1,000 points) faster than WebGL starts up (0.5 s less to
    # the first picture); WebGL only for the large on-demand maps.
    scatter = go.Scattergl if len(df) > WEBGL_FROM_POINTS else go.Scatter
    if numeric is None:
        numeric = pd.api.types.is_numeric_dtype(df[color_by]) and color_by != "label"
    if numeric:
        fig.add_trace(scatter(
            x=df["x"], y=df["y"], mode="markers", name=color_title or color_by, showlegend=False,
            marker=dict(size=5, color=df[color_by], colorscale="Viridis", opacity=0.8,
                        colorbar=dict(title=dict(text=color_title or color_by, side="right"), thickness=14)),
            customdata=df[custom_cols].to_numpy(), hovertemplate=hover,
        ))
    else:
        group = map_categories(df[color_by], colors)
        values = list(group.value_counts().index)
        if colors:
            values = [v for v in colors if v in set(values)] + [v for v in values if v not in colors]
        values = [v for v in values if not v.startswith("other (")] + [v for v in values if v.startswith("other (")]
        palette = _category_palette(values, colors)
        for v in values:
            sub = df[group == v]
            fig.add_trace(scatter(
                x=sub["x"], y=sub["y"], mode="markers", name=str(v),
                marker=dict(size=5, opacity=0.8, color=palette.get(v)),
                customdata=sub[custom_cols].to_numpy(), hovertemplate=hover,
            ))
    if chosen is not None:
        near = df.iloc[list(neighbours or [])]
        fig.add_trace(go.Scatter(x=near["x"], y=near["y"], mode="markers", name="nearest in the hidden space",
                                 marker=dict(size=13, symbol="circle-open", color="#111", line=dict(width=2)),
                                 customdata=near[custom_cols].to_numpy(), hovertemplate=hover, meta="neighbours"))
        me = df.iloc[[chosen]]
        fig.add_trace(go.Scatter(x=me["x"], y=me["y"], mode="markers", name=f"point {chosen}",
                                 marker=dict(size=17, symbol="star", color="#111", line=dict(width=1, color="white")),
                                 customdata=me[custom_cols].to_numpy(), hovertemplate=hover, meta="chosen"))
    fig = _layout(fig, title, x_title, y_title, height=560, legend_title=color_title or color_by,
                  legend=not numeric or chosen is not None)
    fig.update_layout(legend=dict(itemsizing="constant"))
    return fig


def _category_palette(values: list[str], colors: dict | None) -> dict:
    from dashboard.colors import category_colors

    fixed = dict(colors or {})
    rest = category_colors([v for v in values if v not in fixed and not v.startswith("other (")])
    return fixed | rest | {v: "#BBBBBB" for v in values if v.startswith("other (")}


def sweep_lines(sub: pd.DataFrame, dim: str) -> go.Figure:
    """AUC against the swept size, one line per model, with whiskers (spread or CI)."""
    fig = go.Figure()
    for m, g in sorted(sub.groupby("model", sort=False), key=lambda kv: model_sort_key(kv[0])):
        g = g.sort_values("value")
        fig.add_trace(go.Scatter(
            x=g["value"], y=g["AUC"], mode="lines+markers", name=g["Model"].iloc[0], meta=m,
            line=dict(color=model_color(m)), marker=dict(size=9),
            error_y=dict(type="data", symmetric=False, array=g["high"] - g["AUC"], arrayminus=g["AUC"] - g["low"]),
            hovertemplate="%{x}: AUC %{y:.4f}<extra></extra>"))
    title = sub["Setting"].iloc[0] if len(sub) else dim
    fig.update_xaxes(tickvals=sorted(sub["value"].unique()))
    return _layout(fig, f"Test AUC against {title.lower()}", title, "Test AUC", height=400, legend_title="Model")
