"""`python -m saml_core bench`: training and evaluation speed of BST and SAML, measured in the
same process on random data at the paper's industrial sizes (K=10, d_g=8, d_s=2, MLP 256-128,
4 heads, sequence length 30, batch 1024).

Per model: samples/s (median of interleaved rounds, with the spread), GFLOP per sample counted
with torch's FlopCounterMode (training step = forward + backward, evaluation = forward), the
achieved GFLOP/s and their share of this machine's single-core fp32 matmul peak (measured here:
a 2048 x 2048 sgemm on one thread). Optional: torch-rechub's BST at equal sizes (when
`torch_rechub` is importable) and a table of thread settings (1 or 2 threads, passive or active
OpenMP waiting, optionally with busy processes as artificial load), each in a fresh process.

Importing this module has no side effects (the tests use `random_data`)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

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


BENCH_CFG = dict(d_g=8, d_s=2, heads=4, mlp=(256, 128))
MODELS = ("bst", "saml")  # registry ids; SAML = the full model
TARGETS = {"saml_train_share_of_peak": 0.30, "bst_to_rechub_ratio": 2.5}


def _median_spread(values) -> tuple[float, float]:
    """Median and spread = (max - min) / median of the rounds."""
    v = np.asarray(values, dtype=float)
    med = float(np.median(v))
    return med, float((v.max() - v.min()) / med) if med > 0 else float("nan")


class _Clock:
    """Seconds by the wall clock, or by the process's CPU time ("cpu": with one thread, immune
    to other jobs taking the core; with two, spin-waiting counts)."""

    def __init__(self, kind: str = "wall"):
        if kind not in ("wall", "cpu"):
            raise ValueError(f"clock must be 'wall' or 'cpu', got {kind!r}")
        self.now = time.perf_counter if kind == "wall" else time.process_time


class MatmulPeak:
    """fp32 matmul peak of one core: an n x n sgemm on one thread (GFLOP/s per measurement)."""

    def __init__(self, n: int = 2048):
        self.n = n
        self.a, self.b, self.c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)

    def measure(self, clock: _Clock) -> float:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            torch.mm(self.a, self.b, out=self.c)
            t0 = clock.now()
            torch.mm(self.a, self.b, out=self.c)
            return 2 * self.n ** 3 / 1e9 / (clock.now() - t0)
        finally:
            torch.set_num_threads(threads)


def count_gflop(fn) -> float:
    """GFLOP of what `fn()` runs, counted by torch.utils.flop_counter (matmul-like ops: mm,
    addmm, bmm, baddbmm, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() / 1e9


class _Runner:
    """A model, its optimizer and pre-made batches, kept alive across the interleaved rounds."""

    def __init__(self, model, train_batches, eval_batches, opt, forward_loss):
        self.model, self.opt, self.forward_loss = model, opt, forward_loss
        self.train_batches, self.eval_batches, self.i = train_batches, eval_batches, 0
        self.batch_size = len(train_batches[0]["label"] if isinstance(train_batches[0], dict)
                              else train_batches[0].label)
        self.eval_n = sum(len(b["label"] if isinstance(b, dict) else b.label) for b in eval_batches)

    def step(self, batch):
        loss = self.forward_loss(self.model, batch)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def gflop_per_sample(self) -> tuple[float, float]:
        """Counted GFLOP per sample of a training step (forward + backward; the optimizer's
        element-wise update is no matmul) and of an evaluation forward."""
        self.model.train()
        train = count_gflop(lambda: self.forward_loss(self.model, self.train_batches[0]).backward())
        self.model.zero_grad(set_to_none=True)
        self.model.eval()
        b = self.eval_batches[0]
        with torch.no_grad():
            evaluation = count_gflop(lambda: self.forward_loss(self.model, b, loss=False))
        return train / self.batch_size, evaluation / len(b["label"] if isinstance(b, dict) else b.label)

    def train(self, steps: int, clock: _Clock) -> float:
        """`steps` training steps -> seconds."""
        self.model.train()
        t0 = clock.now()
        for _ in range(steps):
            self.step(self.train_batches[self.i % len(self.train_batches)])
            self.i += 1
        return clock.now() - t0

    def evaluate(self, clock: _Clock) -> float:
        """One pass over the evaluation batches -> seconds."""
        self.model.eval()
        with torch.inference_mode():
            t0 = clock.now()
            for b in self.eval_batches:
                self.forward_loss(self.model, b, loss=False)
        return clock.now() - t0


def _ours(model_id: str, spec, cfg, split, batch_size, eval_n, eval_batch, compile_dense=False,
          bf16_context=False) -> _Runner:
    from saml_core.models import build_model

    torch.manual_seed(0)
    model = build_model(model_id, spec, cfg)
    if bf16_context and hasattr(model, "context_dtype"):
        model.context_dtype = torch.bfloat16
    if compile_dense:
        model.compile_dense(dynamic=False)
    g = torch.Generator().manual_seed(1)
    train = [split.take(torch.randint(0, len(split), (batch_size,), generator=g)) for _ in range(4)]
    evals = [split.take(torch.arange(s, min(s + eval_batch, eval_n))) for s in range(0, eval_n, eval_batch)]

    def forward_loss(m, b, loss=True):
        out = m(b)
        return m.loss(out, b.label) if loss else out["logit"]

    return _Runner(model, train, evals, ModelAdam(model, lr=1e-4), forward_loss)


def rechub_available() -> bool:
    try:
        import torch_rechub.models.ranking  # noqa: F401
    except Exception:  # not installed, or broken against this torch
        return False
    return True


def _rechub_bst(spec: FeatureSpec, cfg: ModelConfig, split, batch_size, eval_n, eval_batch) -> _Runner:
    """torch-rechub's BST at our sizes: the same fields and embedding size d_g, the behaviour
    channels sharing their item field's table, target item = the channels' item fields, one
    transformer layer with `heads` heads and feed-forward size `ff_dim` (rechub's default is
    2048), dropout 0, MLP cfg.mlp; its own dense embeddings, Adam and BCE, as its trainer uses."""
    from torch_rechub.basic.features import DenseFeature, SequenceFeature, SparseFeature
    from torch_rechub.models.ranking import BST as RechubBST

    item_fields = [spec.cat_fields[spec.cat_index(s.item_field)] for s in spec.seq_fields]
    target = [SparseFeature(f.name, f.vocab_size, cfg.d_g) for f in item_fields]
    history = [SequenceFeature(s.name, f.vocab_size, cfg.d_g, pooling="concat", shared_with=f.name, padding_idx=0)
               for s, f in zip(spec.seq_fields, item_fields)]
    others = [SparseFeature(f.name, f.vocab_size, cfg.d_g) for f in spec.cat_fields if f not in item_fields]
    others += [DenseFeature(n) for n in spec.num_fields]
    torch.manual_seed(0)
    with warnings.catch_warnings():  # its LeakyReLU rules out torch's fused encoder path: said once here
        warnings.simplefilter("ignore", UserWarning)
        model = RechubBST(others, history, target, {"dims": list(cfg.mlp), "dropout": 0.0, "activation": "relu"},
                          nhead=cfg.heads, dropout=0.0, max_seq_len=spec.seq_len + 1)
    for layer in model.transformer_layers.layers:  # equal sizes: our feed-forward width
        d = layer.linear1.in_features
        layer.linear1, layer.linear2 = torch.nn.Linear(d, cfg.ff_dim), torch.nn.Linear(cfg.ff_dim, d)

    def as_dict(b: EncodedSplit) -> dict:
        x = {f.name: b.cat[:, i] for i, f in enumerate(spec.cat_fields)}
        x.update({s.name: b.seq[:, c] for c, s in enumerate(spec.seq_fields)})
        x.update({n: b.num[:, i] for i, n in enumerate(spec.num_fields)})
        x["label"] = b.label
        return x

    g = torch.Generator().manual_seed(1)
    train = [as_dict(split.take(torch.randint(0, len(split), (batch_size,), generator=g))) for _ in range(4)]
    evals = [as_dict(split.take(torch.arange(s, min(s + eval_batch, eval_n)))) for s in range(0, eval_n, eval_batch)]
    bce = torch.nn.BCELoss()

    def forward_loss(m, b, loss=True):
        y = m(b)
        return bce(y, b["label"]) if loss else y

    return _Runner(model, train, evals, torch.optim.Adam(model.parameters(), lr=1e-4), forward_loss)


def run_bench(steps: int = 20, warmup: int = 3, batch_size: int = 1024, eval_n: int = 32768,
              eval_batch: int = 8192, rounds: int = 5, threads: int = 1, rechub: bool = True,
              peak: bool = True, clock: str = "wall", compile_dense: bool = False,
              bf16_context: bool = False) -> dict:
    """Training and evaluation of every model in `rounds` interleaved rounds (one round: `steps`
    training steps of each model, one evaluation pass of `eval_n` samples of each, one sgemm of
    the peak measurement), so that a burst of other work hits all of them alike; medians and
    spreads of the rounds."""
    from saml_core.runtime import setup_cpu

    setup_cpu(threads)
    clk = _Clock(clock)
    load_before = os.getloadavg()
    spec = random_spec(10, 30, vocab=1000)
    split = random_split(spec, max(eval_n, batch_size * 4), seed=0)
    cfg = ModelConfig(**BENCH_CFG)
    runners = {m: _ours(m, spec, cfg, split, batch_size, eval_n, eval_batch, compile_dense, bf16_context)
               for m in MODELS}
    with_rechub = rechub and rechub_available()
    if with_rechub:
        runners["rechub_bst"] = _rechub_bst(spec, cfg, split, batch_size, eval_n, eval_batch)
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "device": "cpu",
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)")},
        "settings": {"scenarios": 10, "d_g": cfg.d_g, "d_s": cfg.d_s, "mlp": list(cfg.mlp), "heads": cfg.heads,
                     "head_dim": cfg.head_dim, "ff_dim": cfg.ff_dim, "seq_len": 30, "batch_size": batch_size,
                     "steps_per_round": steps, "rounds": rounds, "eval_samples_per_round": eval_n,
                     "eval_batch_size": eval_batch, "clock": clock, "compile_dense": compile_dense,
                     "bf16_context": bf16_context},
    }
    for name, r in runners.items():
        result[f"{name}_train_gflop_per_sample"], result[f"{name}_eval_gflop_per_sample"] = r.gflop_per_sample()
        t0 = time.perf_counter()
        r.train(warmup, clk)
        r.evaluate(clk)
        result[f"{name}_warmup_seconds"] = round(time.perf_counter() - t0, 1)  # compilation included
    rates = {f"{n}_{p}": [] for n in runners for p in ("train", "eval")}
    mm = MatmulPeak() if peak else None
    peaks = []
    for _ in range(rounds):
        for name, r in runners.items():
            rates[f"{name}_train"].append(steps * r.batch_size / r.train(steps, clk))
        for name, r in runners.items():
            rates[f"{name}_eval"].append(r.eval_n / r.evaluate(clk))
        if mm is not None:
            peaks.append(mm.measure(clk))
    if peaks:
        med, spread = _median_spread(peaks)
        result.update({"matmul_peak_gflops": round(med, 1), "matmul_peak_spread": round(spread, 3),
                       "matmul_peak_rounds": [round(p, 1) for p in peaks]})
    for key, rr in rates.items():
        med, spread = _median_spread(rr)
        result[f"{key}_samples_per_s"] = round(med)
        result[f"{key}_spread"] = round(spread, 3)
        result[f"{key}_rounds"] = [round(x) for x in rr]
        gflops = med * result[f"{key}_gflop_per_sample"]
        result[f"{key}_gflops"] = round(gflops, 2)
        if peaks:  # against one core's peak per thread in use
            result[f"{key}_share_of_peak"] = round(gflops / (result["matmul_peak_gflops"] * torch.get_num_threads()), 3)
    for key in list(result):
        if key.endswith("_gflop_per_sample"):
            result[key] = round(result[key], 6)
    result["saml_to_bst_ratio"] = round(result["saml_train_samples_per_s"] / result["bst_train_samples_per_s"], 3)
    result["saml_to_bst_eval_ratio"] = round(result["saml_eval_samples_per_s"] / result["bst_eval_samples_per_s"], 3)
    result["flop_bound_ratio"] = round(result["bst_train_gflop_per_sample"] / result["saml_train_gflop_per_sample"], 3)
    if with_rechub:
        result["bst_to_rechub_ratio"] = round(result["bst_train_samples_per_s"] / result["rechub_bst_train_samples_per_s"], 3)
        result["bst_to_rechub_eval_ratio"] = round(result["bst_eval_samples_per_s"] / result["rechub_bst_eval_samples_per_s"], 3)
    else:
        result["rechub_bst"] = "torch_rechub not importable: not measured"
    result["load_average"] = {"before": [round(x, 2) for x in load_before],
                              "after": [round(x, 2) for x in os.getloadavg()]}
    result["targets"] = dict(TARGETS)
    return result


# --- thread settings, each in a fresh process (OpenMP reads its settings at start) -----------------

# (threads, OMP_WAIT_POLICY); "default": unset when torch loads (libgomp spins a while, then sleeps)
THREAD_SETTINGS = [(1, "PASSIVE"), (1, "ACTIVE"), (2, "PASSIVE"), (2, "ACTIVE"), (2, "default")]


def _busy_loop() -> None:
    while True:
        pass


def run_thread_settings(busy: int = 0, rounds: int = 3, steps: int = 5, clock: str = "wall") -> list[dict]:
    """Training samples/s of BST and SAML for each (threads, OMP_WAIT_POLICY) setting, each in a
    fresh process, the settings in turn; with `busy` > 0 that many busy-looping processes run
    meanwhile (artificial load: another job on the machine)."""
    import multiprocessing as mp

    procs = [mp.get_context("spawn").Process(target=_busy_loop, daemon=True) for _ in range(busy)]
    for p in procs:
        p.start()
    rows = []
    try:
        for threads, policy in THREAD_SETTINGS:
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
            args = ["--json", "--threads", str(threads), "--rounds", str(rounds), "--steps", str(steps),
                    "--eval-samples", "8192", "--no-rechub", "--no-peak", "--clock", clock]
            if policy == "default":  # torch (and its OpenMP) loaded before saml_core could set a policy
                code = "import torch, sys; from saml_core.bench import main; sys.exit(main(sys.argv[1:]))"
                cmd = [sys.executable, "-c", code] + args
            else:
                env["OMP_WAIT_POLICY"] = policy
                cmd = [sys.executable, "-m", "saml_core.bench"] + args
            t0 = time.perf_counter()
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            r = json.loads(out)
            rows.append({"threads": threads, "omp_wait_policy": policy, "busy_processes": busy,
                         "seconds": round(time.perf_counter() - t0, 1),
                         **{k: r[k] for k in ("bst_train_samples_per_s", "bst_train_spread",
                                              "saml_train_samples_per_s", "saml_train_spread",
                                              "saml_eval_samples_per_s", "load_average")}})
    finally:
        for p in procs:
            p.terminate()
            p.join()
    return rows


def format_bench(r: dict) -> str:
    m, s = r["machine"], r["settings"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads, "
             f"OMP_WAIT_POLICY={m['omp_wait_policy']}), {m['device']}; load average "
             f"{r['load_average']['before'][0]:.2f} -> {r['load_average']['after'][0]:.2f}",
             f"settings: K={s['scenarios']} d_g={s['d_g']} d_s={s['d_s']} MLP {s['mlp']} heads {s['heads']} "
             f"L={s['seq_len']} batch {s['batch_size']}; {s['rounds']} interleaved rounds by the {s['clock']} clock "
             f"({s['steps_per_round']} training steps, {s['eval_samples_per_round']:,} evaluation samples each)"
             + ("; dense parts compiled" if s.get("compile_dense") else "")
             + ("; bf16 all-branch pass" if s.get("bf16_context") else "")]
    if "matmul_peak_gflops" in r:
        lines.append(f"fp32 matmul peak, one core (2048^3 sgemm): {r['matmul_peak_gflops']:.1f} GFLOP/s "
                     f"(spread {r['matmul_peak_spread']:.0%})")
    lines.append(f"{'':18s}{'samples/s':>11s} {'spread':>7s} {'GFLOP/sample':>13s} {'GFLOP/s':>8s} {'of peak':>8s}")
    names = [n for n in ("bst", "saml", "rechub_bst") if f"{n}_train_samples_per_s" in r]
    for phase in ("train", "eval"):
        for n in names:
            k = f"{n}_{phase}"
            share = f"{r[k + '_share_of_peak']:.0%}" if k + "_share_of_peak" in r else "-"
            lines.append(f"{n.upper().replace('_', ' '):11s}{phase:7s}{r[k + '_samples_per_s']:>11,} "
                         f"{r[k + '_spread']:>7.0%} {r[k + '_gflop_per_sample']:>13.5f} {r[k + '_gflops']:>8.1f} "
                         f"{share:>8s}")
    lines.append(f"SAML/BST training {r['saml_to_bst_ratio']:.3f} (FLOP-bound ratio {r['flop_bound_ratio']:.3f}); "
                 f"evaluation {r['saml_to_bst_eval_ratio']:.3f}")
    if "saml_train_share_of_peak" in r:
        lines.append(f"target SAML training >= {TARGETS['saml_train_share_of_peak']:.0%} of peak: "
                     f"{'met' if r['saml_train_share_of_peak'] >= TARGETS['saml_train_share_of_peak'] else 'NOT met'}")
    if "bst_to_rechub_ratio" in r:
        lines.append(f"BST / torch-rechub BST training {r['bst_to_rechub_ratio']:.2f}x (target >= "
                     f"{TARGETS['bst_to_rechub_ratio']}x: {'met' if r['bst_to_rechub_ratio'] >= TARGETS['bst_to_rechub_ratio'] else 'NOT met'}), "
                     f"evaluation {r['bst_to_rechub_eval_ratio']:.2f}x")
    else:
        lines.append(f"torch-rechub BST: {r.get('rechub_bst', 'not measured')}")
    for row in r.get("thread_settings", []):
        lines.append(f"threads {row['threads']} {row['omp_wait_policy']:8s} busy {row['busy_processes']}: "
                     f"BST {row['bst_train_samples_per_s']:>8,}/s  SAML {row['saml_train_samples_per_s']:>7,}/s  "
                     f"SAML eval {row['saml_eval_samples_per_s']:>7,}/s  ({row['seconds']} s, load "
                     f"{row['load_average']['before'][0]:.2f})")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable on a shared machine)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians and spreads over them)")
    p.add_argument("--steps", type=int, default=20, help="training steps per model per round")
    p.add_argument("--eval-samples", type=int, default=32768, help="evaluation samples per model per round")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time, or process CPU time (one thread: immune to other jobs on the core)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the dense parts of BST and SAML (compile_dense; opt-in, slow to start)")
    p.add_argument("--bf16-context", action="store_true",
                   help="SAML's forward-only all-branch pass in bfloat16 (the CUDA default; opt-in on CPU)")
    p.add_argument("--no-rechub", action="store_true", help="skip torch-rechub's BST even if importable")
    p.add_argument("--no-peak", action="store_true", help="skip the matmul peak measurement")
    p.add_argument("--thread-settings", action="store_true",
                   help="also: 1/2 threads x passive/active OpenMP waiting, each in a fresh process")
    p.add_argument("--busy", type=int, default=0, help="busy processes during --thread-settings (artificial load)")
    from saml_core import bench_analyses

    bench_analyses.add_arguments(p)


def cmd(args) -> int:
    if args.analyses_cost:  # the cost of a run's analyses against its training (bench_analyses)
        from saml_core import bench_analyses

        return bench_analyses.cmd(args)
    res = run_bench(steps=args.steps, rounds=args.rounds, threads=args.threads, eval_n=args.eval_samples,
                    rechub=not args.no_rechub, peak=not args.no_peak, clock=args.clock,
                    compile_dense=args.compile, bf16_context=args.bf16_context)
    if args.thread_settings:
        res["thread_settings"] = run_thread_settings(args.busy, clock=args.clock)
    print(json.dumps(res, indent=1) if args.json else format_bench(res))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m saml_core bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return cmd(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
