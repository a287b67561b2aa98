"""Our models against their reference implementations at equal sizes (`python -m saml_core bench
--peers DIR [--peers DIR]`): torch-rechub's BST, MMoE, PLE and SharedBottom, Scenario-Wise-Rec's
STAR, MMoE, PLE and SharedBottom. Neither is a requirement of this project: they are imported
only here, from the folders given (put on sys.path for this process), e.g.

    pip install --no-deps --target PEERS/rechub torch-rechub==0.9.0
    git clone https://github.com/Xiaopengli1/Scenario-Wise-Rec PEERS/swr   # the scenario_wise_rec package
    python -m saml_core bench --peers PEERS/rechub --peers PEERS/swr

(--no-deps: they run on this project's torch, numpy and pandas.) One process, one thread,
interleaved rounds, training samples/s (forward + BCE + backward + Adam step) by CPU time and
the per-round paired ratio ours / theirs.

Equal sizes: the bench's layout (K = 10 scenarios, 8 categorical fields of d_g = 8, 3 behaviour
channels of length 30, 1 numeric field), MLP 256-128, batch 1024. Every model gets the same
89-wide input block (8 x 8 + 3 x 8 + 1). Ours: global embeddings + one target-attention layer over
the sequence. torch-rechub's BST: its transformer layer over all 31 positions, feed-forward cut to
our 64 (bench._rechub_bst). The multi-task models (torch-rechub: one task per scenario, the
sample's own scenario's output scored; Scenario-Wise-Rec: multi-domain) take the behaviour
channels mean-pooled, their only way to read a sequence, and carry their default BatchNorm MLPs.
Experts: MMoE 4 experts [256], towers [128]; PLE 2 levels, 1 specific + 2 shared experts [256],
towers [128]; STAR FCN 256-128-1, auxiliary [128]; SharedBottom bottom [256], towers [128].
"""
from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
import torch

# (ours, theirs): the pairs compared; theirs = "<library> <model>"
PAIRS = [("bst", "rechub bst"), ("mmoe", "rechub mmoe"), ("mmoe", "swr mmoe"), ("ple", "rechub ple"),
         ("ple", "swr ple"), ("star", "swr star"), ("shared_bottom", "rechub shared_bottom"),
         ("shared_bottom", "swr shared_bottom")]
LIBRARIES = {"rechub": "torch_rechub", "swr": "scenario_wise_rec"}


class _Step:
    def __init__(self, model, opt, loss_fn, batches):
        self.model, self.opt, self.loss_fn, self.batches, self.i = model, opt, loss_fn, batches, 0
        model.train()

    def __call__(self):
        b = self.batches[self.i % len(self.batches)]
        self.i += 1
        loss = self.loss_fn(self.model, b)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


def _available(module: str) -> bool:
    try:
        __import__(module)
    except Exception:  # not on the path, or broken against this torch
        return False
    return True


def compare(peer_paths: list[str], rounds: int = 5, steps: int = 5, batch_size: int = 1024) -> dict:
    from saml_core import bench_speed as bench
    from saml_core.config import ModelConfig
    from saml_core.models import build_model
    from saml_core.optim import ModelAdam

    for p in reversed(peer_paths):
        sys.path.insert(0, os.path.abspath(p))
    found = {lib: _available(f"{mod}.basic.features") for lib, mod in LIBRARIES.items()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    spec = bench.random_spec(10, 30, vocab=1000)
    split = bench.random_split(spec, 32768, seed=0)
    cfg = ModelConfig(**bench.BENCH_CFG)
    g = torch.Generator().manual_seed(1)
    batches = [split.take(torch.randint(0, len(split), (batch_size,), generator=g)) for _ in range(4)]
    k = spec.num_scenarios

    def as_dict(b):
        x = {f.name: b.cat[:, i] for i, f in enumerate(spec.cat_fields)}
        x.update({s.name: b.seq[:, c] for c, s in enumerate(spec.seq_fields)})
        x.update({n: b.num[:, i] for i, n in enumerate(spec.num_fields)})
        x["domain_indicator"], x["label"] = b.scenario, b.label
        return x

    dict_batches = [as_dict(b) for b in batches]
    bce = torch.nn.BCELoss()
    steps_by_name: dict = {}

    def ours(model_id):
        torch.manual_seed(0)
        m = build_model(model_id, spec, cfg)
        return _Step(m, ModelAdam(m, 1e-4), lambda m, b: m.loss(m(b), b.label), batches)

    def features(lib):
        F = __import__(f"{LIBRARIES[lib]}.basic.features", fromlist=["x"])
        items = [spec.cat_fields[spec.cat_index(s.item_field)] for s in spec.seq_fields]
        feats = [F.SparseFeature(f.name, f.vocab_size, cfg.d_g) for f in spec.cat_fields]
        feats += [F.SequenceFeature(s.name, f.vocab_size, cfg.d_g, pooling="mean", shared_with=f.name, padding_idx=0)
                  for s, f in zip(spec.seq_fields, items)]
        return feats + [F.DenseFeature(n) for n in spec.num_fields]

    def own_column(m, b):  # multi-task: the own scenario's probability
        return bce(m(b).gather(1, b["domain_indicator"].view(-1, 1)).squeeze(1), b["label"])

    def theirs(lib, kind):
        torch.manual_seed(0)
        f, tasks = features(lib), ["classification"] * k
        if lib == "rechub":
            mt = __import__("torch_rechub.models.multi_task", fromlist=["x"])
            m = {"mmoe": lambda: mt.MMOE(f, tasks, 4, {"dims": [256]}, [{"dims": [128]}] * k),
                 "ple": lambda: mt.PLE(f, tasks, 2, 1, 2, {"dims": [256]}, [{"dims": [128]}] * k),
                 "shared_bottom": lambda: mt.SharedBottom(f, tasks, {"dims": [256]}, [{"dims": [128]}] * k)}[kind]()
            loss = own_column
        else:
            md = __import__("scenario_wise_rec.models.multi_domain", fromlist=["x"])
            m = {"star": lambda: md.Star(f, k, [256, 128], [128]),
                 "mmoe": lambda: md.MMOE(f, k, 4, {"dims": [256]}, {"dims": [128]}),
                 "ple": lambda: md.PLE(f, k, 2, 1, 2, {"dims": [256]}, {"dims": [128]}),
                 "shared_bottom": lambda: md.SharedBottom(f, k, {"dims": [256]}, {"dims": [128]})}[kind]()
            loss = lambda m, b: bce(m(b), b["label"])
        return _Step(m, torch.optim.Adam(m.parameters(), lr=1e-4), loss, dict_batches)

    def rechub_bst():
        r = bench._rechub_bst(spec, cfg, split, batch_size, batch_size, batch_size)
        return _Step(r.model, r.opt, lambda m, b: r.forward_loss(m, b), r.train_batches)

    notes = {}
    for a, b in PAIRS:
        lib, kind = b.split(" ", 1)
        if not found[lib]:
            notes[b] = f"{LIBRARIES[lib]} not importable from the --peers folders: not measured"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if a not in steps_by_name:
                steps_by_name[a] = ours(a)
            if b not in steps_by_name:
                try:
                    steps_by_name[b] = rechub_bst() if b == "rechub bst" else theirs(lib, kind)
                except Exception as exc:  # a peer that does not build here: said, not fatal
                    notes[b] = f"not built: {type(exc).__name__}: {exc}"
    for step in steps_by_name.values():
        for _ in range(2):
            step()
    rates = {n: [] for n in steps_by_name}
    names = list(steps_by_name)
    load = os.getloadavg()[0]
    for rnd in range(rounds):
        for n in (names if rnd % 2 == 0 else names[::-1]):
            c0 = time.process_time()
            for _ in range(steps):
                steps_by_name[n]()
            rates[n].append(steps * batch_size / (time.process_time() - c0))
    torch.set_num_threads(threads)
    pairs = {}
    for a, b in PAIRS:
        if a in rates and b in rates:
            rr = np.array(rates[a]) / np.array(rates[b])
            pairs[f"{a} / {b}"] = {"median": round(float(np.median(rr)), 3), "min": round(float(rr.min()), 3),
                                   "max": round(float(rr.max()), 3)}
    return {"samples_per_s": {n: round(float(np.median(v))) for n, v in rates.items()}, "ratios": pairs,
            "notes": notes, "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
            "settings": {"rounds": rounds, "steps": steps, "batch_size": batch_size, "threads": 1, "clock": "cpu"}}
