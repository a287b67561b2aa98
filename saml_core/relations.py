"""Which scenarios are alike, by every signal an experiment has, side by side.

A relation signal is a K x K similarity of scenarios (higher = more alike), one per run or per
data seed:
- `alpha`: the pairwise part of SAML's mean similarity coefficients α per mutual unit (each
  branch's overall pull and each scenario's overall level removed: evaluate.decompose_alpha),
  for models whose registry entry has the "alpha" probe;
- `cka`: linear CKA between branches' hidden states per layer (probes.npz, runs that kept them);
- `transfer`: minus the AUC a scenario loses when the other's part scores its rows, both
  directions averaged (analyses.transfer_similarity);
- `importance`: the rank correlation of two scenarios' input-importance profiles (the mean AUC
  drop of every input; analyses.profile_similarity);
- `model`: the other models' own square relation matrices (metrics.json "relations": MMoE/PLE gate
  similarity, STAR weight similarity, BST + scenario's embedding similarity, ...);
- `data`: the overlap of clicked-category distributions in the train data, per data seed;
- `planted`: the similarity the simulator planted (simulated data only).

`agreement(exp)` compares every two signals in every run (model seed and data seed) in which both
exist: Spearman rank correlation over the scenario pairs with the one-sided Mantel permutation p of
`evaluate.matrix_agreement`; the pairs every signal puts above (or below) its median pair in every
run; the computed sentence. The helpers below are the maths the correlations page draws from.
numpy/scipy only, never writes.
"""
from __future__ import annotations

import numpy as np

from saml_core import analyses
from saml_core import artifacts as art
from saml_core import evaluate as ev
from saml_core.artifacts import ArtifactError

N_PERM = 999  # Mantel permutations per comparison (p resolution 0.001)
MIN_CKA_SAMPLES = 10  # samples through every branch below which CKA is not computed
KINDS = ("alpha", "cka", "transfer", "importance", "model", "data", "planted")


def _entry(model_id):
    from saml_core.models import registry

    return registry.find(model_id)


def symmetrise(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return (m + m.T) / 2


def pairwise_alpha(alpha_mean_layer) -> np.ndarray:
    """One mutual unit's mean α [K, K] -> its pairwise part (diagonal ignored)."""
    a = np.array(alpha_mean_layer, dtype=np.float64)
    np.fill_diagonal(a, np.nan)
    return ev.decompose_alpha(a)["pairwise"]


def alpha_over_runs(runs, layer: int) -> tuple[list[np.ndarray], np.ndarray, dict]:
    """(each run's mean α of mutual unit `layer` [K, K], their mean with an undefined diagonal,
    the decomposition of that mean: evaluate.decompose_alpha)."""
    mats = [np.asarray(r.metrics["alpha_mean"][layer], dtype=float) for r in runs]
    stack = np.stack(mats)
    finite = np.isfinite(stack)
    alpha = np.divide(np.where(finite, stack, 0).sum(0), finite.sum(0), out=np.full(stack.shape[1:], np.nan),
                      where=finite.sum(0) > 0)
    np.fill_diagonal(alpha, np.nan)
    return mats, alpha, ev.decompose_alpha(alpha)


def pairwise_stability(mats: list[np.ndarray]) -> dict:
    """evaluate.pair_stability of the runs' pairwise α parts, with `consistent`: how many pairs
    are above the median pair in every run."""
    stab = ev.pair_stability([pairwise_alpha(m) for m in mats])
    stab["consistent"] = int(np.sum(np.triu(np.nan_to_num(stab["share_above_median"]) >= 0.999, 1)))
    return stab


def model_relations(runs, k: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The runs' own relation matrices from metrics.json, apart from α (drawn on its own):
    ({"<model label>: <name>": [K, K]}, {"<model label>: <name>": [K, E] profiles})."""
    square, profiles = {}, {}
    for r in runs:
        entry = _entry(r.model)
        if not r.finished or (entry is not None and "alpha" in entry.probes):
            continue
        for name, m in (r.metrics.get("relations") or {}).items():
            arr = np.asarray(m, dtype=float)
            label = f"{r.label}: {name.replace('_', ' ')}"
            if arr.shape == (k, k):
                square[label] = arr
            elif arr.ndim == 2 and arr.shape[0] == k:
                profiles[label] = arr
    return square, profiles


# the signals -----------------------------------------------------------------------------------
def _sweep(run) -> str:
    return f" ({run.sweep['name']} {run.sweep['value']})" if run.sweep else ""


def run_signals(run, names: list[str]) -> tuple[list[dict], list[str]]:
    """Every signal one finished run gives: [{"id", "label", "kind", "model", "source", "matrix"}],
    and notes on files that could not be read."""
    k = len(names)
    entry = _entry(run.model)
    label = f"{run.label}{_sweep(run)}"
    out, notes = [], []

    def add(sid, text, kind, matrix):
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape == (k, k) and np.isfinite(ev.upper(m)).sum() >= 3:
            out.append({"id": f"{run.group}:{sid}", "label": f"{label}: {text}", "kind": kind, "model": run.model,
                        "source": run.run_id, "matrix": m})

    m = run.metrics
    probes = entry.probes if entry is not None else ()
    if "alpha" in probes:
        layers = m.get("alpha_mean") or []
        for l, layer in enumerate(layers):
            add(f"alpha{l + 1}", "α pairwise part" + (f", unit {l + 1}" if len(layers) > 1 else ""), "alpha",
                pairwise_alpha(layer))
    else:
        for name, mat in (m.get("relations") or {}).items():
            if np.shape(mat) == (k, k):
                add(name, name.replace("_", " "), "model", np.array(mat, dtype=float))
    if "hidden" in probes and run.has_probes:
        try:
            pr = run.load_probes()
        except ArtifactError as exc:
            notes.append(f"{exc}; its CKA is left out")
            pr = {}
        layers = sorted(int(key.rsplit("_", 1)[1]) for key in pr if key.startswith("hidden_all_")
                        and key.rsplit("_", 1)[1].isdigit())
        for l in layers:
            h = pr[f"hidden_all_{l}"]
            if h.ndim == 3 and h.shape[1] == k and h.shape[0] >= MIN_CKA_SAMPLES:
                add(f"cka{l + 1}", "CKA between branches" + (f", layer {l + 1}" if len(layers) > 1 else ""),
                    "cka", ev.branch_cka(h))
    for which, read in ((analyses.TRANSFER, analyses.read_transfer), (analyses.IMPORTANCE, analyses.read_importance)):
        try:
            doc = read(run, names)
        except ArtifactError as exc:
            notes.append(f"{exc}; left out")
            continue
        if doc is None:
            continue
        if which == analyses.TRANSFER:
            add("transfer", "transfer (minus the AUC lost)", "transfer", analyses.transfer_similarity(doc["loss"]))
        else:
            d = doc["drop_auc"]  # [K, I, R]
            ok = np.isfinite(d).sum(-1)
            mean = np.divide(np.where(np.isfinite(d), d, 0).sum(-1), ok, out=np.full(ok.shape, np.nan), where=ok > 0)
            add("importance", "importance profiles (rank correlation)", "importance",
                analyses.profile_similarity(mean))
    return out, notes


def experiment_signals(exp) -> tuple[dict[tuple, list[dict]], list[str]]:
    """{(data seed, model seed): [signal, ...]} over the finished runs, each replicate with the
    data-level signals of its data seed (overlap of clicked categories, the planted similarity);
    and notes."""
    names = exp.scenario_names
    k = len(names)
    reps: dict[tuple, list[dict]] = {}
    notes: list[str] = []
    for run in exp.runs:
        if not run.finished:
            continue
        got, why = run_signals(run, names)
        notes += why
        reps.setdefault((run.data_seed, run.seed), []).extend(got)
    splits = exp.raw.get("splits") or {}
    for (d, seed), sigs in reps.items():
        ds = (splits.get(str(d)) or {}).get("data_similarity")
        if ds is not None and np.shape(ds) == (k, k):
            sigs.append({"id": "data", "label": "Data: overlap of clicked categories", "kind": "data", "model": None,
                         "source": f"data seed {d}", "matrix": np.array(ds, dtype=np.float64)})
        if exp.true_similarity is not None:
            sigs.append({"id": "planted", "label": "Planted similarity (simulator truth)", "kind": "planted",
                         "model": None, "source": "planted", "matrix": np.asarray(exp.true_similarity, float)})
    return reps, notes


def _sides(m: np.ndarray) -> np.ndarray:
    """Per scenario pair (upper triangle): +1 above the signal's median pair, -1 below, 0 at it or
    undefined."""
    u = ev.upper(m)
    med = np.median(u[np.isfinite(u)]) if np.isfinite(u).any() else np.nan
    return np.where(np.isfinite(u), np.sign(u - med), 0.0)


def agreement(exp, n_perm: int = N_PERM) -> dict:
    """Every relation signal of the experiment against every other (see the module docstring).

    Returns {"scenarios", "signals": [{"id", "label", "kind", "model", "runs", "matrix" (mean over
    its runs)}], "runs": number of replicates, "pairs": [{"a", "b", "label_a", "label_b",
    "spearman": mean_std over the runs both signals have, "p_values", "significant_in", "runs",
    "holds_in_every_run"}], "alike_everywhere" / "unlike_everywhere": [[scenario, scenario], ...]
    (above / below every signal's median pair in every run), "test", "notes", "sentence"}."""
    names = exp.scenario_names
    noun, nouns = exp.scenario_noun
    k = len(names)
    reps, notes = experiment_signals(exp)
    by_id: dict[str, dict] = {}
    for sigs in reps.values():
        for s in sigs:
            info = by_id.setdefault(s["id"], {"id": s["id"], "label": s["label"], "kind": s["kind"],
                                              "model": s["model"], "instances": {}})
            info["instances"][s["source"]] = s["matrix"]
    ids = sorted(by_id, key=lambda i: (KINDS.index(by_id[i]["kind"]), i))
    rank = {i: n for n, i in enumerate(ids)}
    results: dict[tuple, dict] = {}  # (id a, id b) -> {(source a, source b): (rho, p)}
    for sigs in reps.values():
        sigs = sorted(sigs, key=lambda s: rank[s["id"]])
        rho, p = ev.agreement_matrix([s["matrix"] for s in sigs], n_perm=n_perm)
        for x, sa in enumerate(sigs):
            for y in range(x + 1, len(sigs)):
                sb = sigs[y]
                if np.isfinite(rho[x, y]):
                    results.setdefault((sa["id"], sb["id"]), {})[sa["source"], sb["source"]] = (rho[x, y], p[x, y])
    pairs = []
    for (a, b), got in sorted(results.items(), key=lambda kv: (rank[kv[0][0]], rank[kv[0][1]])):
        rhos = [r for r, _ in got.values()]
        ps = [float(q) for _, q in got.values()]
        sig = sum(q < ev.ALPHA for q in ps)
        pairs.append({"a": a, "b": b, "label_a": by_id[a]["label"], "label_b": by_id[b]["label"],
                      "spearman": ev.mean_std(rhos), "p_values": ps, "significant_in": sig, "runs": len(ps),
                      "holds_in_every_run": sig == len(ps)})
    iu = np.triu_indices(k, 1)
    sides = [_sides(s["matrix"]) for sigs in reps.values() for s in sigs]
    alike, unlike = [], []
    if sides and len(by_id) >= 2:
        stack = np.stack(sides)
        alike = [[names[iu[0][j]], names[iu[1][j]]] for j in np.flatnonzero(np.all(stack > 0, axis=0))]
        unlike = [[names[iu[0][j]], names[iu[1][j]]] for j in np.flatnonzero(np.all(stack < 0, axis=0))]
    signals = []
    for i in ids:
        inst = list(by_id[i]["instances"].values())
        stack = np.stack(inst)
        finite = np.isfinite(stack)
        mean = np.divide(np.where(finite, stack, 0).sum(0), finite.sum(0), out=np.full((k, k), np.nan),
                         where=finite.sum(0) > 0)
        signals.append({key: by_id[i][key] for key in ("id", "label", "kind", "model")} |
                       {"runs": len(inst), "matrix": mean})
    doc = {"scenarios": names, "signals": signals, "runs": len(reps), "pairs": pairs, "alike_everywhere": alike,
           "unlike_everywhere": unlike, "notes": notes,
           "test": (f"Spearman over the {k * (k - 1) // 2} {noun} pairs of the symmetrised matrices; p: one-sided "
                    f"Mantel permutation test ({n_perm} permutations of the {nouns}' labels), per run; a pair of "
                    "signals holds in every run when p < 0.05 in each run both have")}
    doc["sentence"] = _sentence(doc, by_id, noun, nouns)
    return art.clean_json(doc)


def _sentence(doc: dict, by_id: dict, noun: str, nouns: str) -> str:
    n_sig, pairs = len(doc["signals"]), doc["pairs"]
    if n_sig < 2 or not pairs:
        return (f"This experiment has {n_sig} relation signal{'s' * (n_sig != 1)} between {nouns}: nothing to "
                "compare.")
    runs = f"{doc['runs']} run{'s' * (doc['runs'] != 1)}"
    out = f"{n_sig} relation signals over {runs}."

    def rho(p):
        return f"Spearman {p['spearman']['mean']:+.2f}, Mantel p < 0.05 in {p['significant_in']} of {p['runs']}"

    planted = [p for p in pairs if "planted" in (p["a"], p["b"])]
    if planted:
        planted.sort(key=lambda p: -p["spearman"]["mean"])
        best = planted[0]
        other = best["label_b"] if best["a"] == "planted" else best["label_a"]
        held = [p["label_b"] if p["a"] == "planted" else p["label_a"] for p in planted if p["holds_in_every_run"]]
        out += (f" Closest to the planted similarity: {other} ({rho(best)}); agreeing with it significantly in every "
                f"run: {', '.join(held) if held else 'none'}.")
    else:
        best = max(pairs, key=lambda p: p["spearman"]["mean"])
        out += f" Strongest agreement: {best['label_a']} and {best['label_b']} ({rho(best)})."
    held = sum(p["holds_in_every_run"] for p in pairs)
    out += f" {held} of {len(pairs)} pairs of signals agree significantly in every run they share."
    for key, word, side in (("alike_everywhere", "alike", "above"), ("unlike_everywhere", "unlike", "below")):
        got = doc[key]
        listed = ", ".join("–".join(p) for p in got)
        out += (f" Every signal calls {listed} {word} ({side} its median pair) in every run."
                if got else f" No {noun} pair is called {word} by every signal in every run.")
    return out
