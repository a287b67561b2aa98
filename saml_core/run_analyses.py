"""What the training job computes from a trained model after its test evaluation, and the
analyses job later from a stored model.pt: the transfer matrix (models with the registry's
"transfer" probe) and the per-scenario permutation importance (runs that keep weights), each
written atomically to its run folder (docs/ARTIFACTS.md) with its cost printed.

Scoring is handed in (`score`: click probabilities of a split, the trainer's `predict` bound to
the model, device and batch size), so this module needs nothing from the trainer."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from saml_core import artifacts as art
from saml_core.analyses import IMPORTANCE, IMPORTANCE_FILE, TRANSFER, TRANSFER_FILE, expected_analyses
from saml_core.data.types import MultiScenarioData
from saml_core.importance import permutation_importance
from saml_core.transfer import Score, transfer_matrix


# Rows per forward pass when the analyses score on a CPU. SAML's all-branch pass is memory-bound:
# measured on the default simulator (one thread), 1,024-row batches score ~30k rows/s against ~20k
# with the evaluation's 8,192. On a GPU the run's own evaluation batch is kept.
CPU_BATCH = 1024


def scoring_batch(device, eval_batch_size: int) -> int:
    return min(eval_batch_size, CPU_BATCH) if device.type == "cpu" else eval_batch_size


def write_run_analyses(entry, data: MultiScenarioData, run_dir: Path, score: Score, *,
                       train_seconds: float | None, keep_weights: bool, only: tuple[str, ...] | None = None,
                       log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> list[str]:
    """Compute and write the run's analyses (those `expected_analyses` names, or `only` of them);
    returns the files written. `entry`: the model's registry entry."""
    run_dir = Path(run_dir)
    todo = [a for a in expected_analyses(entry, keep_weights) if only is None or a in only]
    names = list(data.spec.scenario_names)
    noun, nouns = data.scenario_noun
    written = []
    if TRANSFER in todo:
        doc = transfer_matrix(score, data.test, names, entry.transfer_how, entry.id, noun=noun)
        art.write_json(run_dir / TRANSFER_FILE, doc, versioned=False)
        written.append(TRANSFER_FILE)
        log(f"    transfer: {len(names)} x {len(names)} {nouns} on at most {doc['rows_cap']:,} test rows per {noun}: "
            f"{doc['seconds']:.1f} s")
    if IMPORTANCE in todo:
        doc = permutation_importance(score, data.test, data.spec, entry.id, train_seconds)
        art.write_json(run_dir / IMPORTANCE_FILE, doc, versioned=False)
        written.append(IMPORTANCE_FILE)
        share = f", {doc['seconds'] / train_seconds:.0%} of its training time" \
            if train_seconds else ""
        log(f"    importance: {len(doc['inputs'])} inputs x {doc['n_repeats']} repeats on at most "
            f"{doc['rows_cap']:,} test rows per {noun}: {doc['seconds']:.1f} s{share}")
    return written
