"""Threads: no library the engine calls changes torch's thread count."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A fresh process, as a training job is: torch at one thread, then the calls that run numba,
# OpenMP or BLAS code of other libraries in the training path (UMAP maps through numba, the
# logistic-regression baseline through scikit-learn / scipy), torch's count read after each.
CHILD = r"""
import json, sys
import numpy as np
import torch
from saml_core import maps
from saml_core.bench import random_data
from saml_core.config import ModelConfig, RunConfig
from saml_core.models import build_model, registry
torch.set_num_threads(1)
seen = {"start": torch.get_num_threads()}
rng = np.random.default_rng(0)
probes = {"scenario": rng.integers(0, 3, 200), "hidden_own_0": rng.normal(size=(200, 16)).astype(np.float32),
          "hidden_all_0": rng.normal(size=(40, 3, 16)).astype(np.float32), "hidden_all_index": np.arange(40)}
maps.compute_maps(probes)
seen["after UMAP and PCA maps"] = torch.get_num_threads()
data = random_data(n_train=600, n_valid=200, n_test=200, k=3, seq_len=4, vocab=20)
cfg = RunConfig(run_id="lr", model="lr_te", dataset="random", seed=0)
model = build_model("lr_te", data.spec, cfg.model_config)
registry.get("lr_te").fit(model, data, cfg.train_config, seed=0, device=torch.device("cpu"), run_dir=None)
seen["after the logistic regression"] = torch.get_num_threads()
print(json.dumps(seen))
"""


def test_no_library_changes_torchs_thread_count():
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(seen.values()) == {1}, seen
