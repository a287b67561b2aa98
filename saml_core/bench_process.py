"""Whole-process benchmarks of `python -m saml_core bench` (docs/ENGINE.md, bench): each setting
in fresh processes, because what they measure (OpenMP's settings, torchrun, imports) is fixed when
a process starts.

- `thread_table`: training samples/s of SAML and BST per thread setting (1 thread, 2 threads,
  the adaptive policy), on the machine as it is and next to `busy` busy-looping processes.
- `ddp`: the same experiment by `torchrun --nproc-per-node 2` (gloo, one thread per rank) and by
  one process with one thread (one rank's share of the machine): wall time of the training loops
  and of the whole process, and the test AUCs side by side.
- `experiment_split`: where a quick experiment's wall time goes: interpreter and imports, data
  load, training loops (fit), UMAP/PCA maps, the rest (evaluation, probes, artifacts).
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# (label, --threads, extra environment); threads 0 = the adaptive policy
THREAD_SETTINGS = [("1 thread", 1, {}), ("2 threads", 2, {}), ("adaptive", 0, {})]


def _busy_loop() -> None:
    while True:
        pass


@contextmanager
def busy_processes(n: int):
    """`n` busy-looping processes while the block runs (killed by their ids after)."""
    procs = [mp.get_context("spawn").Process(target=_busy_loop, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        if procs:
            time.sleep(2.0)  # let the scheduler and the load average see them
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()


def _bench_child(threads: int, rounds: int, steps: int, env_extra: dict, clock: str = "wall") -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(env_extra)
    cmd = [sys.executable, "-m", "saml_core.bench", "--json", "--threads", str(threads), "--rounds", str(rounds),
           "--steps", str(steps), "--eval-samples", "8192", "--no-peak", "--no-extras", "--clock", clock]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def thread_table(busy: int = 2, rounds: int = 3, steps: int = 10, repeats: int = 2) -> dict:
    """Each setting in a fresh process, settings in turn, `repeats` times; quiet (the machine as it
    is) and next to `busy` busy loops. Ratios: adaptive / 1 thread (quiet), adaptive / the best
    fixed setting (loaded), per model, median over repeats."""
    rows = []
    for load in ("quiet", "loaded"):
        with busy_processes(busy if load == "loaded" else 0):
            for rep in range(repeats):
                order = THREAD_SETTINGS if rep % 2 == 0 else THREAD_SETTINGS[::-1]
                for label, threads, env in order:
                    l0 = os.getloadavg()[0]
                    r = _bench_child(threads, rounds, steps, env)
                    rows.append({"setting": label, "load": load, "busy_processes": busy if load == "loaded" else 0,
                                 "repeat": rep, "load_average": round(l0, 2),
                                 "bst": r["bst_train_samples_per_s"], "saml": r["saml_train_samples_per_s"],
                                 "bst_spread": r["bst_train_spread"], "saml_spread": r["saml_train_spread"]})
    out = {"rows": rows, "busy_processes": busy}
    for model in ("saml", "bst"):
        def med(setting, load):
            return float(np.median([r[model] for r in rows if r["setting"] == setting and r["load"] == load]))
        out[f"{model}_adaptive_to_one_thread_quiet"] = round(med("adaptive", "quiet") / med("1 thread", "quiet"), 3)
        best = max(med(label, "loaded") for label, t, _ in THREAD_SETTINGS if t > 0)
        out[f"{model}_adaptive_to_best_fixed_loaded"] = round(med("adaptive", "loaded") / best, 3)
    return out


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def _experiment_metrics(root: Path, name: str) -> dict:
    out = {}
    for m in sorted((root / name).glob("*/metrics.json")):
        j = json.loads(m.read_text())
        out[m.parent.name] = {"auc": j["overall"]["auc"], "train_seconds": j["train_seconds"]}
    return out


def ddp(dataset: str = "synthetic-countries", runs: str = "saml,bst", epochs: int = 2, rounds: int = 2,
        extra: tuple[str, ...] = ()) -> dict:
    """`rounds` x (torchrun 2 ranks, one process with one thread), alternating; per round the
    ratios one-process / two-rank of the whole wall time and of the training loops (sum of the
    runs' train_seconds), and the largest test-AUC difference between the two."""
    args = ["experiment", "--dataset", dataset, "--runs", runs, "--epochs", str(epochs), "--min-epochs", str(epochs),
            "--name", "ddp", *extra]
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="saml-bench-ddp-"))
    try:
        for rnd in range(rounds):
            res = {}
            for kind in (("ddp", "single") if rnd % 2 == 0 else ("single", "ddp")):
                root = tmp / f"{kind}-{rnd}"
                if kind == "ddp":
                    cmd = _torchrun() + ["--standalone", "--nproc-per-node", "2", "-m", "saml_core", *args]
                    env = {**os.environ, "OMP_NUM_THREADS": "1"}
                else:
                    cmd = [sys.executable, "-m", "saml_core", *args, "--threads", "1"]
                    env = dict(os.environ)
                l0 = os.getloadavg()[0]
                t0 = time.perf_counter()
                subprocess.run(cmd + ["--artifacts", str(root)], env=env, capture_output=True, text=True, check=True)
                res[kind] = {"wall": time.perf_counter() - t0, "load_average": round(l0, 2),
                             "runs": _experiment_metrics(root, "ddp")}
            train = {k: sum(r["train_seconds"] for r in v["runs"].values()) for k, v in res.items()}
            rows.append({
                "round": rnd, "load_average": [res["single"]["load_average"], res["ddp"]["load_average"]],
                "single_wall_s": round(res["single"]["wall"], 1), "ddp_wall_s": round(res["ddp"]["wall"], 1),
                "single_train_s": round(train["single"], 1), "ddp_train_s": round(train["ddp"], 1),
                "experiment_speedup": round(res["single"]["wall"] / res["ddp"]["wall"], 3),
                "training_speedup": round(train["single"] / train["ddp"], 3),
                "max_auc_difference": max(abs(res["single"]["runs"][r]["auc"] - res["ddp"]["runs"][r]["auc"])
                                          for r in res["single"]["runs"]),
            })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"dataset": dataset, "runs": runs, "epochs": epochs, "rows": rows,
            "training_speedup": float(np.median([r["training_speedup"] for r in rows])),
            "experiment_speedup": float(np.median([r["experiment_speedup"] for r in rows])),
            "max_auc_difference": max(r["max_auc_difference"] for r in rows)}


# Run in a fresh interpreter: times the phases of `python -m saml_core experiment ...` by wrapping
# the engine's own functions (this process only; the code is not modified).
_SPLIT_CHILD = r"""
import json, sys, time
t_start = float(sys.argv[1])
t_main = time.perf_counter()
from saml_core import cli
phase = {"imports": 0.0, "data load": 0.0, "training loops (fit)": 0.0, "maps (UMAP, PCA)": 0.0}
t_imported = time.perf_counter()
from saml_core import data, maps, train, experiments
def timed(module, name, label):
    fn = getattr(module, name)
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            phase[label] += time.perf_counter() - t0
    setattr(module, name, wrapper)
timed(experiments, "_data_for", "data load")
timed(train, "fit", "training loops (fit)")
timed(maps, "compute_maps", "maps (UMAP, PCA)")
phase["imports"] = time.perf_counter() - t_main
rc = cli.main(sys.argv[2:])
t_end = time.perf_counter()
print(json.dumps({"rc": rc, "phase": phase, "wall_in_process": t_end - t_main}))
"""


def experiment_split(args: tuple[str, ...] = ("--dataset", "synthetic-countries", "--quick")) -> dict:
    """One quick experiment in a fresh process (its own artifacts folder, removed after): wall time
    from the command's start, and its phases. "outside training" = wall - the training loops."""
    tmp = Path(tempfile.mkdtemp(prefix="saml-bench-exp-"))
    try:
        l0 = os.getloadavg()[0]
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", _SPLIT_CHILD, repr(time.perf_counter()),
                              "experiment", *args, "--name", "split", "--artifacts", str(tmp)],
                             capture_output=True, text=True, check=True)
        wall = time.time() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    phase = {k: round(v, 2) for k, v in r["phase"].items()}
    phase["interpreter start"] = round(wall - r["wall_in_process"], 2)
    phase["other (evaluation, probes, artifacts)"] = round(wall - sum(phase.values()), 2)
    training = phase["training loops (fit)"]
    return {"command": "python -m saml_core experiment " + " ".join(args), "wall_s": round(wall, 2),
            "phases_s": phase, "outside_training_share": round(1 - training / wall, 3),
            "load_average": round(l0, 2)}
