"""The hidden-state explorer's data (no Streamlit, no file access): the points of a view and layer
with one row of facts each (scenario, branch, click, prediction, error, the sample's categorical
fields decoded by the training job), their 2-D map (the training job's maps.npz, or fitted now by
saml_core.maps for another size), nearest neighbours in the hidden space, what a selection is made
of against all points shown, and the exports (TensorBoard Projector's two TSV files, a CSV).

Nothing here writes: a map of another size is kept in the server's memory by the page's cache
(st.cache_data), never on disk."""
from __future__ import annotations

import html
import io

import numpy as np
import pandas as pd

from saml_core import maps
from saml_core.maps import VIEWS, hidden_layers, n_points, stored_size, subsample  # noqa: F401  (re-exported)

BASE_COLUMNS = ("point", "scenario", "branch", "label", "pred", "error")
FIELD_PREFIX = "field: "  # a decoded categorical field's column in the facts
MAX_FIELD_VALUES = 100_000  # a values table longer than this is not ours: the field is not shown


def hidden(probes: dict, view: str, layer: int) -> np.ndarray:
    return probes[f"hidden_{view}_{layer}"]


def fields(probes: dict) -> tuple[dict[str, np.ndarray], str | None]:
    """({field name: [N] value text per probe sample}, why none or some are missing or None).
    Runs trained before the training job stored them have none; a malformed entry (codes out of
    range, lengths that differ) leaves that field out."""
    n = len(probes["scenario"])
    names = probes.get("field_names")
    if names is None:
        return {}, ("this run stored no field values of its samples (it was trained before the training job "
                    "stored them, or its data loader keeps no vocabulary): retrain it to colour by a field")
    out, bad = {}, []
    for j, name in enumerate(np.asarray(names).astype(str).tolist()):
        codes, table = probes.get(f"field_codes_{j}"), probes.get(f"field_values_{j}")
        ok = (codes is not None and table is not None and codes.ndim == 1 and len(codes) == n
              and table.ndim == 1 and 0 < len(table) <= MAX_FIELD_VALUES and codes.dtype.kind in "iu"
              and (n == 0 or (int(codes.min()) >= 0 and int(codes.max()) < len(table))))
        if ok:
            out[name] = np.asarray(table).astype(str)[codes]
        else:
            bad.append(name)
    return out, (f"field{'s' if len(bad) > 1 else ''} {', '.join(bad)} stored in a form this version cannot read"
                 if bad else None)


def points(probes: dict, view: str, layer: int, size: int, names: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """The vectors [P, H] and one row of facts per point: point number, scenario, branch, click,
    predicted probability, error (|click - prediction|), each decoded field, and the hover text."""
    x, rows, branch = maps.points(probes, view, layer, size)
    scen = probes["scenario"].astype(int)[rows]
    label = probes["label"].astype(int)[rows]
    pred = probes["pred"].astype(np.float64)[rows]
    facts = pd.DataFrame({
        "point": np.arange(len(rows)), "scenario": [names[i] for i in scen], "branch": [names[i] for i in branch],
        "label": np.where(label == 1, "clicked", "not clicked"), "pred": pred, "error": np.abs(label - pred),
    })
    decoded, _ = fields(probes)
    for name, vals in decoded.items():
        facts[FIELD_PREFIX + name] = vals[rows]
    facts["hover"] = hover_text(facts, view)
    return x, facts


def point_count(probes: dict, view: str, layer: int, size: int) -> int:
    """How many points `points` gives for this request (the "all" view takes whole samples)."""
    if view == "own":
        return min(size, n_points(probes, view, layer))
    m, k = probes[f"hidden_all_{layer}"].shape[:2]
    return max(1, min(m, size // k)) * k


def typical_distance(x: np.ndarray, sample: int = 300) -> float:
    """Median euclidean distance between two of the first `sample` points: the scale the
    neighbours' distances are read against."""
    x = np.asarray(x[:sample], dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
    return float(np.median(d[np.triu_indices(len(x), 1)])) if len(x) > 1 else 0.0


def field_columns(facts: pd.DataFrame) -> list[str]:
    return [c for c in facts.columns if c.startswith(FIELD_PREFIX)]


def hover_text(facts: pd.DataFrame, view: str) -> list[str]:
    """One block per point: where it comes from, click and prediction, then every field. Values
    come from the user's data: escaped, so they show as text (Plotly reads a few HTML tags)."""
    cols = field_columns(facts)
    names = [html.escape(c[len(FIELD_PREFIX):]) for c in cols]
    vals = [facts[c].astype(str).map(html.escape).to_numpy() for c in cols]
    scen = facts["scenario"].astype(str).map(html.escape).to_numpy()
    branch = facts["branch"].astype(str).map(html.escape).to_numpy()
    out = []
    for i, (point, label, pred) in enumerate(zip(facts["point"], facts["label"], facts["pred"])):
        text = (f"<b>point {point}</b> · {scen[i]}" + (f" · branch {branch[i]}" if view == "all" else "")
                + f"<br>{label} · predicted {pred:.3f}")
        out.append(text + "".join(f"<br>{n}: {v[i]}" for n, v in zip(names, vals)))
    return out


def stored(maps_file: dict | None, method: str, view: str, layer: int, size: int) -> np.ndarray | None:
    """The training job's map for exactly this request, if it has one."""
    key = f"{method}_{view}_{layer}"
    if not maps_file or key not in maps_file or maps_file[key].shape != (size, 2):
        return None
    return maps_file[key]


def embed(probes: dict, view: str, layer: int, size: int, names: list[str], method: str = "umap",
          maps_file: dict | None = None) -> tuple[np.ndarray, pd.DataFrame, str]:
    """(vectors, facts with the 2-D coordinates x, y, "stored" or "computed"): the training job's
    map when it has this one, else fitted now."""
    x, facts = points(probes, view, layer, size, names)
    coords, source = stored(maps_file, method, view, layer, len(x)), "stored"
    if coords is None:
        coords, source = maps.fit(method, x), "computed"
    return x, facts.assign(x=coords[:, 0], y=coords[:, 1]), source


def neighbours(x: np.ndarray, i: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The k points nearest to point i in the hidden space itself (euclidean; not on the 2-D map,
    which distorts distances): (indices [k], distances [k]), nearest first, i itself left out.
    One matrix-vector product over all points: exact, ~1 ms for 5,000 states of 256 dims."""
    x = np.asarray(x, dtype=np.float64)
    d2 = np.maximum(np.einsum("ij,ij->i", x, x) - 2.0 * (x @ x[i]) + float(x[i] @ x[i]), 0.0)  # [P]
    d2[i] = np.inf
    k = min(k, len(x) - 1)
    if k <= 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    idx = np.argpartition(d2, k - 1)[:k]
    idx = idx[np.argsort(d2[idx], kind="stable")]
    return idx, np.sqrt(d2[idx])


def composition(facts: pd.DataFrame, chosen: np.ndarray, by: str) -> pd.DataFrame:
    """Share of each value of column `by` among the chosen points against all points shown, and
    the ratio of the two ("lift": 2 = twice as common in the selection); most chosen first."""
    sel = facts[by].iloc[chosen].value_counts()
    allv = facts[by].value_counts()
    df = pd.DataFrame({"value": sel.index, "selected": sel.to_numpy()})
    df["% of selection"] = 100 * df["selected"] / max(len(chosen), 1)
    df["% of all shown"] = 100 * df["value"].map(allv).to_numpy() / max(len(facts), 1)
    df["lift"] = df["% of selection"] / df["% of all shown"]
    return df


def selection_summary(facts: pd.DataFrame, chosen: np.ndarray, top: int = 3) -> dict:
    """What a selection is made of, against every point shown: counts, click rate, mean
    prediction, per scenario (and branch), and each field's most common values."""
    chosen = np.asarray(chosen, dtype=int)
    sub = facts.iloc[chosen]
    clicked = (facts["label"] == "clicked").to_numpy()
    rows = []
    for col in field_columns(facts):
        comp = composition(facts, chosen, col).head(top)
        for r in comp.itertuples(index=False):
            rows.append({"field": col[len(FIELD_PREFIX):], "value": r[0], "selected": r[1],
                         "% of selection": r[2], "% of all shown": r[3], "lift": r[4]})
    return {"n": len(chosen), "of": len(facts),
            "click_rate": float(clicked[chosen].mean()) if len(chosen) else None,
            "click_rate_all": float(clicked.mean()) if len(facts) else None,
            "pred_mean": float(sub["pred"].mean()) if len(chosen) else None,
            "pred_mean_all": float(facts["pred"].mean()) if len(facts) else None,
            "scenario": composition(facts, chosen, "scenario"), "branch": composition(facts, chosen, "branch"),
            "fields": pd.DataFrame(rows, columns=["field", "value", "selected", "% of selection",
                                                  "% of all shown", "lift"])}


def metadata_columns(facts: pd.DataFrame) -> list[str]:
    return [c for c in facts.columns if c not in ("hover", "x", "y")]


def _tsv_cell(value) -> str:
    """A metadata cell as the Projector reads it: one line, no tab (they would shift the columns)."""
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return " ".join(text.replace("\t", " ").split()) or "(empty)"


def projector_files(x: np.ndarray, facts: pd.DataFrame) -> tuple[str, str]:
    """TensorBoard Projector's two files (its "Load" dialog, or projector_config.pbtxt):
    vectors.tsv: one point per line, its H values separated by tabs, no header;
    metadata.tsv: a header line naming the columns, then one line per point in the same order."""
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(x, dtype=np.float64), fmt="%.6g", delimiter="\t")
    cols = metadata_columns(facts)
    lines = ["\t".join(_tsv_cell(c) for c in cols)]
    lines += ["\t".join(_tsv_cell(v) for v in row) for row in facts[cols].itertuples(index=False)]
    return buf.getvalue(), "\n".join(lines) + "\n"


def csv_file(x: np.ndarray, facts: pd.DataFrame) -> str:
    """Every point shown in one CSV: its facts, its map coordinates and its hidden state (h1..hH)."""
    hidden_cols = pd.DataFrame(np.asarray(x, dtype=np.float64), columns=[f"h{i + 1}" for i in range(x.shape[1])])
    coords = [c for c in ("x", "y") if c in facts]
    out = pd.concat([facts[metadata_columns(facts) + coords].reset_index(drop=True), hidden_cols], axis=1)
    return out.to_csv(index=False, float_format="%.6g")
