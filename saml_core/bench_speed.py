"""`python -m saml_core bench`: the engine's speed figures, each printed with its target, measured
in one process on random data at the paper's industrial sizes (K=10, d_g=8, d_s=2, MLP 256-128,
4 heads, sequence length 30, batch 1024), with the machine (CPU model, cores) and the fp32 matmul
peak measured in the same run.

- BST and SAML: samples/s (median of interleaved rounds, with the spread), GFLOP per sample
  counted with torch's FlopCounterMode (training step = forward + backward, evaluation =
  forward), the achieved GFLOP/s and their share of the peak (a 2048 x 2048 sgemm on one thread,
  one per round).
- Operator calls per training step: the aten operators dispatched (forward, backward, optimizer;
  a TorchDispatchMode counter) and the events torch.profiler records (nested calls included).
- BST: step time at sequence length 50 against 10, throughput at batch 256 against 1024.
- Optional, in fresh processes (bench_process): thread settings quiet and next to busy
  processes, DDP on 2 CPU ranks, where a quick experiment's wall time goes; and our models
  against their reference implementations (bench_peers, from folders given with --peers).

Importing this module has no side effects (the tests use `random_data`)."""
from __future__ import annotations

import contextlib
import os
import platform
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
        name="random", spec=spec,
        train=random_split(spec, n_train, seed), valid=random_split(spec, n_valid, seed + 1),
        test=random_split(spec, n_test, seed + 2), info={"title": "random test data"},
        true_similarity=np.eye(k) * 0.5 + 0.5, category_field="category",
    )


BENCH_CFG = dict(d_g=8, d_s=2, heads=4, mlp=(256, 128))
MODELS = ("bst", "saml")  # registry ids; SAML = the full model

# every figure's target: (result key, comparison, value, what it says)
TARGETS = [
    ("saml_train_share_of_peak", ">=", 0.35, "SAML training, share of the measured fp32 peak"),
    ("saml_ops_per_step", "<", 2000, "SAML training step, aten operators dispatched"),
    ("saml_profiler_events_per_step", "<", 2000, "SAML training step, torch.profiler events"),
    ("bst_seq50_to_seq10_step_time", "<=", 2.0, "BST step time, sequence length 50 / 10"),
    ("bst_batch256_to_1024_throughput", ">=", 0.8, "BST samples/s, batch 256 / 1024"),
    ("threads.saml_adaptive_to_one_thread_quiet", ">=", 1.6, "adaptive threads / 1 thread, free machine (SAML)"),
    ("threads.bst_adaptive_to_one_thread_quiet", ">=", 1.6, "adaptive threads / 1 thread, free machine (BST)"),
    ("threads.saml_adaptive_to_best_fixed_loaded", ">=", 0.95, "adaptive / best fixed, next to busy processes (SAML)"),
    ("threads.bst_adaptive_to_best_fixed_loaded", ">=", 0.95, "adaptive / best fixed, next to busy processes (BST)"),
    ("ddp.training_speedup", ">=", 1.7, "DDP 2 CPU ranks / 1 process, training loops"),
    ("ddp.experiment_speedup", ">=", 1.5, "DDP 2 CPU ranks / 1 process, whole experiment"),
    ("experiment.outside_training_share", "<=", 0.25, "quick experiment, share of wall time outside training"),
    ("experiment.outside_training_share_cpu", "<=", 0.25, "quick experiment, share of its CPU time outside training"),
    ("peers.bst / rechub bst", ">=", 6.0, "BST / torch-rechub BST"),
] + [(f"peers.{a} / {b}", ">=", 2.5, f"{a} / {b}") for a, b in [
    ("mmoe", "rechub mmoe"), ("mmoe", "swr mmoe"), ("ple", "rechub ple"), ("ple", "swr ple"), ("star", "swr star"),
    ("shared_bottom", "rechub shared_bottom"), ("shared_bottom", "swr shared_bottom")]]


def machine() -> dict:
    """CPU model, usable cores and the vector extensions that matter for the peak (Linux /proc)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model in (platform.processor(), platform.machine(), ""):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    from saml_core.runtime import usable_cores

    return {"cpu": model, "cores": usable_cores(), "vector": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile")
                                                     if f in flags],
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": "cpu",
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)")}


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
        from saml_core.runtime import tick_threads

        self.model.train()
        t0 = clock.now()
        for _ in range(steps):
            tick_threads()  # the adaptive thread policy (--threads 0), as the trainer's loop does
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


@contextlib.contextmanager
def _quiet_stderr():
    """The profiler's native library announces its start and stop on file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def count_ops(runner: _Runner) -> dict:
    """Operator calls of one training step (forward, loss, backward, optimizer step): the aten
    operators dispatched (what reaches a kernel, views included) and the events torch.profiler
    records for the same step (nested calls such as a view's as_strided counted again)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    runner.model.train()
    batch = runner.train_batches[0]
    with Count():
        runner.step(batch)
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        runner.step(batch)
    events = sum(e.count for e in prof.key_averages())
    return {"dispatched": Count.n, "profiler_events": int(events)}


def _paired(runners: dict, work, rounds: int, clock: _Clock) -> dict:
    """`work(name, runner, clock)` -> a rate, for every runner in each of `rounds` interleaved
    rounds (order reversed every other round) -> {name: [rate per round]}."""
    names, rates = list(runners), {n: [] for n in runners}
    for rnd in range(rounds):
        for n in (names if rnd % 2 == 0 else names[::-1]):
            rates[n].append(work(n, runners[n], clock))
    return rates


def _ratio(a, b) -> dict:
    rr = np.asarray(a, dtype=float) / np.asarray(b, dtype=float)
    return {"median": round(float(np.median(rr)), 3), "min": round(float(rr.min()), 3),
            "max": round(float(rr.max()), 3)}


def bst_shapes(rounds: int, clock: _Clock, samples: int = 8192) -> dict:
    """BST training at sequence length 10 and 50 (batch 1024) and at batch 256 and 1024 (length
    30), interleaved; per round the same number of samples for every setting. Paired per-round
    ratios: step time at 50 / at 10, samples/s at 256 / at 1024."""
    cfg = ModelConfig(**BENCH_CFG)
    runners = {}
    for length, batch in ((10, 1024), (50, 1024), (30, 256), (30, 1024)):
        spec = random_spec(10, length, vocab=1000)
        split = random_split(spec, 16384, seed=0)
        runners[(length, batch)] = _ours("bst", spec, cfg, split, batch, batch, batch)
    for r in runners.values():
        r.train(3, clock)

    def rate(key, r, clk):
        steps = max(2, samples // r.batch_size)
        return steps * r.batch_size / r.train(steps, clk)

    rates = _paired(runners, rate, rounds, clock)
    step_time = {k: [r.batch_size / x for x in v] for (k, v), r in zip(rates.items(), runners.values())}
    return {"bst_seq50_to_seq10": _ratio(step_time[(50, 1024)], step_time[(10, 1024)]),
            "bst_batch256_to_1024": _ratio(rates[(30, 256)], rates[(30, 1024)]),
            "bst_samples_per_s": {f"L={k[0]} batch={k[1]}": round(float(np.median(v))) for k, v in rates.items()}}


def run_bench(steps: int = 20, warmup: int = 3, batch_size: int = 1024, eval_n: int = 32768,
              eval_batch: int = 8192, rounds: int = 5, threads: int = 1, peak: bool = True, clock: str = "wall",
              compile_dense: bool = False, bf16_context: bool = False, extras: bool = True) -> dict:
    """Training and evaluation of every model in `rounds` interleaved rounds (one round: `steps`
    training steps of each model, one evaluation pass of `eval_n` samples of each, one sgemm of
    the peak measurement), so that a burst of other work hits all of them alike; medians and
    spreads of the rounds. `extras`: operator counts and the BST shape ratios too."""
    from saml_core.runtime import setup_cpu

    policy = setup_cpu(threads)
    clk = _Clock(clock)
    load_before = os.getloadavg()
    spec = random_spec(10, 30, vocab=1000)
    split = random_split(spec, max(eval_n, batch_size * 4), seed=0)
    cfg = ModelConfig(**BENCH_CFG)
    runners = {m: _ours(m, spec, cfg, split, batch_size, eval_n, eval_batch, compile_dense, bf16_context)
               for m in MODELS}
    result = {
        "machine": machine(),
        "settings": {"scenarios": 10, "d_g": cfg.d_g, "d_s": cfg.d_s, "mlp": list(cfg.mlp), "heads": cfg.heads,
                     "head_dim": cfg.head_dim, "ff_dim": cfg.ff_dim, "seq_len": 30, "batch_size": batch_size,
                     "steps_per_round": steps, "rounds": rounds, "eval_samples_per_round": eval_n,
                     "eval_batch_size": eval_batch, "clock": clock, "compile_dense": compile_dense,
                     "bf16_context": bf16_context, "threads": policy.describe()},
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
                       "matmul_peak_best_gflops": round(max(peaks), 1),
                       "matmul_peak_rounds": [round(p, 1) for p in peaks]})
    threads_used = torch.get_num_threads()
    for key, rr in rates.items():
        med, spread = _median_spread(rr)
        result[f"{key}_samples_per_s"] = round(med)
        result[f"{key}_spread"] = round(spread, 3)
        result[f"{key}_rounds"] = [round(x) for x in rr]
        gflops = med * result[f"{key}_gflop_per_sample"]
        result[f"{key}_gflops"] = round(gflops, 2)
        if peaks:  # against one core's peak per thread in use
            result[f"{key}_share_of_peak"] = round(gflops / (result["matmul_peak_gflops"] * threads_used), 3)
    for key in list(result):
        if key.endswith("_gflop_per_sample"):
            result[key] = round(result[key], 6)
    result["saml_to_bst_ratio"] = round(result["saml_train_samples_per_s"] / result["bst_train_samples_per_s"], 3)
    result["saml_to_bst_eval_ratio"] = round(result["saml_eval_samples_per_s"] / result["bst_eval_samples_per_s"], 3)
    result["flop_bound_ratio"] = round(result["bst_train_gflop_per_sample"] / result["saml_train_gflop_per_sample"], 3)
    if extras:
        for name, r in runners.items():
            ops = count_ops(r)
            result[f"{name}_ops_per_step"] = ops["dispatched"]
            result[f"{name}_profiler_events_per_step"] = ops["profiler_events"]
        shapes = bst_shapes(rounds, clk)
        result["bst_seq50_to_seq10_step_time"] = shapes["bst_seq50_to_seq10"]["median"]
        result["bst_batch256_to_1024_throughput"] = shapes["bst_batch256_to_1024"]["median"]
        result["bst_shapes"] = shapes
    result["load_average"] = {"before": [round(x, 2) for x in load_before],
                              "after": [round(x, 2) for x in os.getloadavg()]}
    return result


def _lookup(r: dict, key: str):
    """A result value by a dotted key ("threads.saml_..."; the peers' keys hold '/' and spaces)."""
    head, _, rest = key.partition(".")
    if rest and head in ("threads", "ddp", "experiment", "peers"):
        part = r.get(head)
        if head == "peers":
            part = (part or {}).get("ratios", {}).get(rest)
            return None if part is None else part["median"]
        return None if part is None else part.get(rest)
    return r.get(key)


def verdicts(r: dict) -> list[dict]:
    """Each target with what this run measured: met, NOT met, or not measured."""
    out = []
    for key, op, value, what in TARGETS:
        got = _lookup(r, key)
        ok = None if got is None else (got >= value if op == ">=" else got <= value if op == "<=" else got < value)
        out.append({"key": key, "target": f"{op} {value}", "measured": got, "what": what,
                    "status": "not measured" if ok is None else ("met" if ok else "NOT met")})
    return out


def format_threads(t: dict | None) -> list[str]:
    """The thread table's lines (bench_process.thread_table), none without one."""
    if not t:
        return []
    lines = [f"threads (fresh processes, {t['busy_processes']} busy processes when loaded; samples/s "
             "SAML / BST training, wall clock):"]
    for row in t["rows"]:
        lines.append(f"  {row['setting']:10s} {row['load']:6s} repeat {row['repeat']}: SAML {row['saml']:>7,} "
                     f"BST {row['bst']:>7,}  (load average {row['load_average']:.2f})")
    if "saml_two_threads_to_one_thread_quiet" in t:
        lines.append(f"  2 threads / 1 thread, quiet (the most any choice between them reaches on this machine): "
                     f"SAML {t['saml_two_threads_to_one_thread_quiet']:.2f}, "
                     f"BST {t['bst_two_threads_to_one_thread_quiet']:.2f}")
    return lines


def format_bench(r: dict) -> str:
    m, s = r["machine"], r["settings"]
    th = s["threads"]
    threads = f"{th['threads']} thread(s)" if th["mode"] == "fixed" else "adaptive threads"
    lines = [f"machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['vector']) or 'no AVX2'}), torch {m['torch']} "
             f"({threads}, OMP_WAIT_POLICY={m['omp_wait_policy']}), {m['device']}; load average "
             f"{r['load_average']['before'][0]:.2f} -> {r['load_average']['after'][0]:.2f}",
             f"settings: K={s['scenarios']} d_g={s['d_g']} d_s={s['d_s']} MLP {s['mlp']} heads {s['heads']} "
             f"L={s['seq_len']} batch {s['batch_size']}; {s['rounds']} interleaved rounds by the {s['clock']} clock "
             f"({s['steps_per_round']} training steps, {s['eval_samples_per_round']:,} evaluation samples each)"
             + ("; dense parts compiled" if s.get("compile_dense") else "")
             + ("; bf16 all-branch pass" if s.get("bf16_context") else "")]
    if "matmul_peak_gflops" in r:
        lines.append(f"fp32 matmul peak, one core (2048^3 sgemm, one per round): median {r['matmul_peak_gflops']:.1f} "
                     f"GFLOP/s (best {r['matmul_peak_best_gflops']:.1f}, spread {r['matmul_peak_spread']:.0%})")
    lines.append(f"{'':18s}{'samples/s':>11s} {'spread':>7s} {'GFLOP/sample':>13s} {'GFLOP/s':>8s} {'of peak':>8s}")
    for phase in ("train", "eval"):
        for n in MODELS:
            k = f"{n}_{phase}"
            share = f"{r[k + '_share_of_peak']:.0%}" if k + "_share_of_peak" in r else "-"
            lines.append(f"{n.upper():11s}{phase:7s}{r[k + '_samples_per_s']:>11,} "
                         f"{r[k + '_spread']:>7.0%} {r[k + '_gflop_per_sample']:>13.5f} {r[k + '_gflops']:>8.1f} "
                         f"{share:>8s}")
    lines.append(f"SAML/BST training {r['saml_to_bst_ratio']:.3f} (FLOP-bound ratio {r['flop_bound_ratio']:.3f}); "
                 f"evaluation {r['saml_to_bst_eval_ratio']:.3f}")
    for n in MODELS:
        if f"{n}_ops_per_step" in r:
            lines.append(f"{n.upper()} training step: {r[f'{n}_ops_per_step']:,} aten operators dispatched, "
                         f"{r[f'{n}_profiler_events_per_step']:,} torch.profiler events (these count nested "
                         "calls, autograd's nodes and the Python functions again)")
    if "bst_shapes" in r:
        sh = r["bst_shapes"]
        lines.append(f"BST step time L=50 / L=10: {sh['bst_seq50_to_seq10']['median']:.2f} "
                     f"({sh['bst_seq50_to_seq10']['min']:.2f}-{sh['bst_seq50_to_seq10']['max']:.2f} per round); "
                     f"samples/s batch 256 / 1024: {sh['bst_batch256_to_1024']['median']:.2f} "
                     f"({sh['bst_batch256_to_1024']['min']:.2f}-{sh['bst_batch256_to_1024']['max']:.2f})")
    lines += format_threads(r.get("threads"))
    d = r.get("ddp")
    if d:
        lines.append(f"DDP, 2 CPU ranks vs 1 process with 1 thread ({d['dataset']}, runs {d['runs']}, "
                     f"{d['epochs']} epochs):")
        for row in d["rows"]:
            lines.append(f"  round {row['round']}: training {row['single_train_s']} s / {row['ddp_train_s']} s = "
                         f"{row['training_speedup']:.2f}x, experiment {row['single_wall_s']} s / {row['ddp_wall_s']} s "
                         f"= {row['experiment_speedup']:.2f}x, largest test-AUC difference {row['max_auc_difference']:.1e} "
                         f"(load {row['load_average']})")
    e = r.get("experiment")
    if e:
        phases = ", ".join(f"{k} {v} s" for k, v in e["phases_s"].items())
        cpu = ", ".join(f"{k} {v} s" for k, v in e["cpu_phases_s"].items())
        lines.append(f"{e['command']} (load {e['load_average']:.2f}): {e['wall_s']} s wall: {phases}; "
                     f"{e['outside_training_share']:.0%} outside training")
        lines.append(f"  CPU time of its process {e['cpu_s']} s: {cpu}; {e['outside_training_share_cpu']:.0%} "
                     f"outside training; its background UMAP maps another {e['background_maps_cpu_s']} s of CPU "
                     f"({e['outside_training_share_cpu_with_maps']:.0%} outside training with them)")
    pe = r.get("peers")
    if pe:
        lines.append(f"ours / reference implementation, training samples/s (1 thread, CPU time, paired per round; "
                     f"load {pe['load_average'][0]:.2f} -> {pe['load_average'][1]:.2f}):")
        for pair, v in pe["ratios"].items():
            lines.append(f"  {pair:42s} {v['median']:.2f} ({v['min']:.2f}-{v['max']:.2f})")
        for name, why in pe["notes"].items():
            lines.append(f"  {name}: {why}")
    lines.append("targets:")
    for v in r["targets"]:
        got = "-" if v["measured"] is None else (f"{v['measured']:,}" if isinstance(v["measured"], int)
                                                 else f"{v['measured']:.3g}")
        lines.append(f"  {v['what']:58s} {v['target']:>8s}  measured {got:>8s}  {v['status']}")
    return "\n".join(lines)
