"""Re-evaluate a stored run: reload its model.pt and score its test split again (metrics shaped
like metrics.json). Apart from the read API because it loads the data and torch."""
from __future__ import annotations

from saml_core.store import load_experiment


def reevaluate(root, name: str, run_id: str, device: str = "cpu") -> dict:
    """Reload a run's model.pt, re-evaluate on its test split; metrics shaped like metrics.json
    (overall + per_scenario)."""
    import torch

    from saml_core.data import load_dataset
    from saml_core.train import evaluate_model, load_run_model

    exp = load_experiment(root, name)
    run = exp.run(run_id)
    data = load_dataset(exp.dataset, seed=run.data_seed, **(exp.raw.get("dataset_options") or {}))
    _, model = load_run_model(run.path, spec=data.spec)
    return evaluate_model(model, data, torch.device(device))
