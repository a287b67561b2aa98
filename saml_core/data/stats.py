"""Per-scenario counts and AUC of encoded splits (vectorised; no model involved)."""
from __future__ import annotations

import numpy as np

from saml_core.data.types import EncodedSplit, MultiScenarioData


def auc(label: np.ndarray, score: np.ndarray) -> float | None:
    """AUC (saml_core.evaluate), None if one class is missing."""
    from saml_core.evaluate import auc as _auc

    value = _auc(np.asarray(label) > 0.5, np.asarray(score, dtype=np.float64))
    return value if np.isfinite(value) else None


def split_counts(split: EncodedSplit, k: int) -> tuple[np.ndarray, np.ndarray]:
    """([K] samples, [K] positives) of one split."""
    sc = split.scenario.numpy()
    return (
        np.bincount(sc, minlength=k),
        np.bincount(sc, weights=split.label.numpy().astype(np.float64), minlength=k).astype(np.int64),
    )


def oracle_auc(split: EncodedSplit, k: int) -> list[float | None] | None:
    """Per-scenario AUC of the true click probability (simulator only), else None."""
    if split.oracle_prob is None:
        return None
    sc, y, p = split.scenario.numpy(), split.label.numpy(), split.oracle_prob.numpy()
    return [auc(y[sc == j], p[sc == j]) for j in range(k)]


def summary(data: MultiScenarioData) -> dict:
    """JSON-ready description: per scenario and split, samples, positives, CTR, traffic share."""
    names = list(data.spec.scenario_names)
    k = len(names)
    splits = {"train": data.train, "valid": data.valid, "test": data.test}
    counts = {s: split_counts(sp, k) for s, sp in splits.items()}
    total_n = sum(c[0] for c in counts.values())
    total_pos = sum(c[1] for c in counts.values())
    oracle = oracle_auc(data.test, k)
    overall_oracle = (
        auc(data.test.label.numpy(), data.test.oracle_prob.numpy())
        if data.test.oracle_prob is not None else None
    )
    scenarios = []
    for j, name in enumerate(names):
        row = {"scenario": name}
        for s, (n, pos) in counts.items():
            row[s] = {
                "samples": int(n[j]),
                "positives": int(pos[j]),
                "ctr": float(pos[j] / n[j]) if n[j] else None,
                "share": float(n[j] / n.sum()) if n.sum() else None,
            }
        row["total"] = {
            "samples": int(total_n[j]),
            "positives": int(total_pos[j]),
            "ctr": float(total_pos[j] / total_n[j]) if total_n[j] else None,
            "share": float(total_n[j] / total_n.sum()),
        }
        row["oracle_auc"] = None if oracle is None else oracle[j]
        scenarios.append(row)
    return {
        "dataset": data.name,
        "kind": data.kind,
        "title": data.info.get("title", data.name),
        "feature_spec": data.spec.to_dict(),
        "splits": {
            s: {"samples": int(c[0].sum()), "positives": int(c[1].sum()),
                "ctr": float(c[1].sum() / max(c[0].sum(), 1))}
            for s, c in counts.items()
        },
        "oracle_auc_overall": overall_oracle,
        "scenarios": scenarios,
        "scenario_noun": list(data.scenario_noun),
        "dropped_scenarios": data.info.get("dropped_scenarios", []),
        "true_similarity": None if data.true_similarity is None else data.true_similarity.round(4).tolist(),
        "info": data.info,
    }
