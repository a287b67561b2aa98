"""`python -m saml_core bench`: training and evaluation samples/s of BST and SAML measured in the
same process on random data at the paper's industrial sizes (K=10, d_g=8, d_s=2, MLP 256-128,
4 heads, sequence length 30, batch 1024)."""
from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch

from saml_core.config import ModelConfig
from saml_core.optim import ModelAdam
from saml_core.data.types import CatField, EncodedSplit, FeatureSpec, MultiScenarioData, SeqField

SCENARIOS = ("RU", "BR", "ES", "US", "FR", "PL", "NL", "CL", "UA", "Others")
TRAFFIC = np.array([0.16, 0.14, 0.08, 0.07, 0.03, 0.06, 0.03, 0.03, 0.03, 0.37])


def random_spec(k: int = 10, seq_len: int = 30, vocab: int = 1000) -> FeatureSpec:
    """A synthetic-countries-like field layout; vocab=1000: 20k users, 10k items (more ids than the
    default preset, so the embedding work is not understated)."""
    names = SCENARIOS[:k] if k <= len(SCENARIOS) else tuple(f"S{i}" for i in range(k))
    cats = (
        CatField("user_id", vocab * 20), CatField("age", 10), CatField("gender", 4),
        CatField("item_id", vocab * 10), CatField("category", 40), CatField("brand", vocab // 4),
        CatField("shop", vocab // 2), CatField("price_bucket", 7),
    )
    seqs = (SeqField("hist_item", "item_id"), SeqField("hist_category", "category"), SeqField("hist_brand", "brand"))
    return FeatureSpec(tuple(names), cats, ("price",), seqs, seq_len)


def random_split(spec: FeatureSpec, n: int, seed: int = 0, traffic=None) -> EncodedSplit:
    """Random samples with a learnable signal (label depends on a few fields and the scenario)."""
    g = torch.Generator().manual_seed(seed)
    k, length = spec.num_scenarios, spec.seq_len
    p = torch.tensor(TRAFFIC[:k] / TRAFFIC[:k].sum() if traffic is None and k <= 10 else np.full(k, 1 / k),
                     dtype=torch.float32)
    scenario = torch.multinomial(p, n, replacement=True, generator=g)
    cat = torch.stack([torch.randint(2, f.vocab_size, (n,), generator=g) for f in spec.cat_fields], dim=1)
    seq = torch.stack([torch.randint(2, spec.cat_fields[spec.cat_index(s.item_field)].vocab_size, (n, length),
                                     generator=g) for s in spec.seq_fields], dim=1)
    lengths = torch.randint(1, length + 1, (n,), generator=g)
    seq_mask = torch.arange(length).unsqueeze(0) >= (length - lengths).unsqueeze(1)  # right-aligned
    seq = seq * seq_mask.unsqueeze(1)
    num = torch.randn(n, len(spec.num_fields), generator=g)
    # planted click model: scenario-dependent taste for a category parity + a shared user effect
    taste = torch.linspace(-1.5, 1.5, k)[scenario]
    ci = spec.cat_index("category") if "category" in [f.name for f in spec.cat_fields] else 0
    logit = -1.5 + taste * ((cat[:, ci] % 2) * 2 - 1) + 0.8 * ((cat[:, 0] % 3) == 0) + 0.3 * num[:, 0]
    oracle = torch.sigmoid(logit)
    label = torch.bernoulli(oracle, generator=g)
    return EncodedSplit(scenario, label.float(), cat, num.float(), seq, seq_mask, oracle.float())


def random_data(n_train=4000, n_valid=1000, n_test=2000, k=4, seq_len=8, vocab=50, seed=0) -> MultiScenarioData:
    spec = random_spec(k, seq_len, vocab)
    return MultiScenarioData(
        name="random", kind="synthetic", spec=spec,
        train=random_split(spec, n_train, seed), valid=random_split(spec, n_valid, seed + 1),
        test=random_split(spec, n_test, seed + 2), info={"title": "random test data"},
        true_similarity=np.eye(k) * 0.5 + 0.5, category_field="category",
    )


class _Trainer:
    """A model + optimizer kept alive across timing rounds."""

    def __init__(self, model, split, batch_size):
        self.model, self.opt = model, ModelAdam(model, lr=1e-4)
        n = len(split)
        self.batches = [split.take(torch.randint(0, n, (batch_size,))) for _ in range(4)]
        self.i = 0

    def steps(self, k: int) -> float:
        """Runs k training steps; returns samples/s."""
        self.model.train()
        t0 = time.perf_counter()
        for _ in range(k):
            b = self.batches[self.i % len(self.batches)]
            self.i += 1
            loss = self.model.loss(self.model(b), b.label)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        return k * len(self.batches[0].label) / (time.perf_counter() - t0)


def _time_eval(model, split, batch_size) -> float:
    model.eval()
    with torch.inference_mode():
        model(split.take(torch.arange(batch_size)))
        t0 = time.perf_counter()
        for start in range(0, len(split), batch_size):
            model(split.take(torch.arange(start, min(start + batch_size, len(split)))))
    return len(split) / (time.perf_counter() - t0)


def run_bench(steps: int = 20, warmup: int = 5, batch_size: int = 1024, eval_n: int = 40960,
              rounds: int = 5) -> dict:
    from saml_core.models import build_model
    from saml_core.runtime import setup_cpu

    setup_cpu()
    torch.manual_seed(0)
    spec = random_spec(10, 30, vocab=1000)
    split = random_split(spec, max(eval_n, batch_size * 4), seed=0)
    cfg = ModelConfig(d_g=8, d_s=2, heads=4, mlp=(256, 128))
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "device": "cpu"},
        "settings": {"scenarios": 10, "d_g": 8, "d_s": 2, "mlp": [256, 128], "heads": 4, "seq_len": 30,
                     "batch_size": batch_size, "steps_per_round": steps, "rounds": rounds},
    }
    # BST and SAML alternate in several rounds and the median counts, so a burst of other work
    # on the machine hits both alike instead of one of them
    trainers, rates = {}, {"bst": [], "saml": []}
    for name, (model, variant) in {"bst": ("bst", None), "saml": ("saml", "full")}.items():
        torch.manual_seed(0)
        trainers[name] = _Trainer(build_model(model, variant, spec, cfg), split, batch_size)
        trainers[name].steps(warmup)
    for _ in range(rounds):
        for name, tr in trainers.items():
            rates[name].append(tr.steps(steps))
    for name, tr in trainers.items():
        result[f"{name}_train_samples_per_s"] = round(float(np.median(rates[name])))
        result[f"{name}_train_rounds"] = [round(r) for r in rates[name]]
        result[f"{name}_eval_samples_per_s"] = round(_time_eval(tr.model, split.take(torch.arange(eval_n)), 8192))
    result["saml_to_bst_ratio"] = round(result["saml_train_samples_per_s"] / result["bst_train_samples_per_s"], 3)
    result["targets"] = {"bst_train_samples_per_s": 15000, "saml_to_bst_ratio": 0.5}
    return result


def format_bench(r: dict) -> str:
    m, s = r["machine"], r["settings"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), {m['device']}",
             f"settings: K={s['scenarios']} d_g={s['d_g']} d_s={s['d_s']} MLP {s['mlp']} heads {s['heads']} "
             f"L={s['seq_len']} batch {s['batch_size']}",
             f"BST  training   {r['bst_train_samples_per_s']:>10,} samples/s   (target >= 15,000)",
             f"SAML training   {r['saml_train_samples_per_s']:>10,} samples/s   "
             f"ratio SAML/BST {r['saml_to_bst_ratio']:.2f} (target >= 0.5)",
             f"BST  evaluation {r['bst_eval_samples_per_s']:>10,} samples/s",
             f"SAML evaluation {r['saml_eval_samples_per_s']:>10,} samples/s"]
    return "\n".join(lines)
