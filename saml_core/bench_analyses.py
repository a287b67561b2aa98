"""`python -m saml_core bench --analyses-cost`: what a run's analyses cost against its training.

Per model and round: one run trained on the default simulator exactly as the training job trains
it (the model's registry fit, the dataset's preset, data-derived batch size and early stopping),
then its permutation importance and, for models with the "transfer" probe, its transfer matrix,
each timed by the wall clock and by the process's CPU time (the CPU-time ratio holds when other
jobs share the cores). Target: importance <= 20 % of the run's training time. Rounds interleave
the models (round r trains every model with model seed r) so that a burst of other work hits
all of them alike; the spread is the range of the per-round shares.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

TARGET = 0.20  # importance seconds / training seconds at the default simulator size
DATASET = "synthetic-countries"


def add_arguments(p) -> None:
    g = p.add_argument_group("analyses cost (instead of the speed bench)")
    g.add_argument("--analyses-cost", action="store_true",
                   help="train one run of each --analyses-models on the default simulator per round and print the "
                        f"cost of its input importance (target <= {100 * TARGET:.0f} %% of its training time) and "
                        "transfer matrix")
    g.add_argument("--analyses-models", default="saml,bst,bst_individual,lr_te", metavar="MODEL,...")
    g.add_argument("--analyses-size", default="default", help="simulator size (default: the target's size)")
    g.add_argument("--analyses-rounds", type=int, default=1, help="rounds (model seeds 0..N-1)")


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def run_cost(models: list[str], size: str = "default", rounds: int = 1, threads: int = 1) -> dict:
    import dataclasses

    import torch

    from saml_core.config import resolve_for_data
    from saml_core.data import load_dataset
    from saml_core.presets import settings_for
    from saml_core.importance import permutation_importance
    from saml_core.models import build_model, registry
    from saml_core.run_analyses import scoring_batch
    from saml_core.runtime import setup_cpu
    from saml_core.train import FITS, predict, seed_everything
    from saml_core.transfer import transfer_matrix

    setup_cpu(threads)
    load_before = os.getloadavg()
    data = load_dataset(DATASET, seed=0, size=size)
    s = settings_for(DATASET)
    tcfg = dataclasses.replace(s["train_config"], device="cpu", num_threads=threads)
    device = torch.device("cpu")
    rows = []
    for r in range(rounds):
        for model_id in models:
            entry = registry.get(model_id)
            seed_everything(r)
            model = build_model(model_id, data.spec, s["model_config"], {})
            fit = entry.fit if callable(entry.fit) else FITS[entry.fit]
            with tempfile.TemporaryDirectory() as tmp:
                res, train_wall, train_cpu = _timed(lambda: fit(model, data, tcfg, seed=r, device=device,
                                                                run_dir=Path(tmp)))

            def score(split):
                return predict(model, split, device, scoring_batch(device, tcfg.eval_batch_size))

            imp, imp_wall, imp_cpu = _timed(lambda: permutation_importance(score, data.test, data.spec, model_id,
                                                                           res.seconds))
            row = {"model": model_id, "round": r, "epochs": res.epochs_run, "train_seconds": train_wall,
                   "train_cpu_seconds": train_cpu, "importance_seconds": imp_wall, "importance_cpu_seconds": imp_cpu,
                   "importance_share": imp_wall / train_wall, "importance_cpu_share": imp_cpu / train_cpu,
                   "inputs": len(imp["inputs"]), "n_repeats": imp["n_repeats"], "rows_cap": imp["rows_cap"],
                   "scored_rows": sum(c["n"] for c in imp["base"].values())
                   * (1 + len(imp["inputs"]) * imp["n_repeats"])}
            if "transfer" in entry.probes:
                tr, tr_wall, tr_cpu = _timed(lambda: transfer_matrix(score, data.test, list(data.spec.scenario_names),
                                                                     entry.transfer_how, model_id))
                row.update(transfer_seconds=tr_wall, transfer_cpu_seconds=tr_cpu, transfer_share=tr_wall / train_wall,
                           transfer_rows_cap=tr["rows_cap"])
            rows.append(row)
    settings = resolve_for_data(tcfg, len(data.train), int(data.valid.label.sum().item()))
    from saml_core.runtime import cpu_model

    return {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "torch": torch.__version__},
            "data": {"dataset": DATASET, "size": size, "train_rows": len(data.train), "test_rows": len(data.test),
                     "batch_size": settings.batch_size, "preset": s["preset"]},
            "rows": rows, "target": TARGET,
            "load_average": {"before": [round(x, 2) for x in load_before],
                             "after": [round(x, 2) for x in os.getloadavg()]}}


def format_cost(res: dict) -> str:
    m, d = res["machine"], res["data"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads); "
             f"load average {res['load_average']['before'][0]:.2f} -> {res['load_average']['after'][0]:.2f}",
             f"data: {d['dataset']} size {d['size']} ({d['train_rows']:,} train / {d['test_rows']:,} test rows), "
             f"preset {d['preset']}, batch {d['batch_size']}",
             f"{'model':16s}{'round':>6s}{'epochs':>7s}{'train s':>9s}{'importance s':>13s}{'share':>7s}"
             f"{'CPU-time share':>15s}{'transfer s':>11s}{'share':>7s}"]
    for r in res["rows"]:
        tr = (f"{r['transfer_seconds']:>11.1f}{r['transfer_share']:>7.0%}" if "transfer_seconds" in r else
              f"{'-':>11s}{'-':>7s}")
        lines.append(f"{r['model']:16s}{r['round']:>6d}{r['epochs']:>7d}{r['train_seconds']:>9.1f}"
                     f"{r['importance_seconds']:>13.1f}{r['importance_share']:>7.0%}{r['importance_cpu_share']:>15.0%}"
                     + tr)
    by_model: dict[str, list] = {}
    for r in res["rows"]:
        by_model.setdefault(r["model"], []).append(r)
    for model, rs in by_model.items():
        worst = max(max(r["importance_share"], r["importance_cpu_share"]) for r in rs)
        shares = [r["importance_share"] for r in rs]
        spread = f" (range {min(shares):.0%}-{max(shares):.0%} over {len(rs)} rounds)" if len(rs) > 1 else ""
        lines.append(f"{model}: importance ({rs[0]['inputs']} inputs x {rs[0]['n_repeats']} repeats, at most "
                     f"{rs[0]['rows_cap']} test rows per scenario, {rs[0]['scored_rows']:,} rows scored) "
                     f"{sum(shares) / len(shares):.0%} of training time{spread}; target <= {res['target']:.0%}: "
                     f"{'met' if worst <= res['target'] else 'NOT met'}")
    return "\n".join(lines)


def cmd(args) -> int:
    import json

    from saml_core.config import ConfigError
    from saml_core.models import registry

    models = [m.strip() for m in args.analyses_models.split(",") if m.strip()]
    for m in models:
        registry.get(m)
    if not 1 <= args.analyses_rounds <= 20:
        raise ConfigError(f"--analyses-rounds must be from 1 to 20, got {args.analyses_rounds}")
    res = run_cost(models, args.analyses_size, args.analyses_rounds, max(args.threads, 1))
    print(json.dumps(res, indent=1) if args.json else format_cost(res))
    return 0
