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
import resource
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
    cmd = [sys.executable, "-m", "saml_core.bench_command", "--json", "--threads", str(threads), "--rounds", str(rounds),
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
    return {"rows": rows, "busy_processes": busy, **thread_ratios(rows)}


def thread_ratios(rows: list[dict]) -> dict:
    """Per model, medians over repeats: adaptive / 1 thread (quiet), its ceiling here 2 threads /
    1 thread (quiet: a policy only chooses between them), adaptive / the best fixed setting (loaded)."""
    out = {}
    for model in ("saml", "bst"):
        def med(setting, load):
            return float(np.median([r[model] for r in rows if r["setting"] == setting and r["load"] == load]))
        out[f"{model}_adaptive_to_one_thread_quiet"] = round(med("adaptive", "quiet") / med("1 thread", "quiet"), 3)
        out[f"{model}_two_threads_to_one_thread_quiet"] = round(med("2 threads", "quiet") / med("1 thread", "quiet"), 3)
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
# the engine's own functions (this process only; the code is not modified), by the wall clock and
# by this process's CPU time; prints them as one JSON line before the interpreter exits.
_SPLIT_CHILD = r"""
import json, resource, sys, time
t_main, c_main = time.perf_counter(), time.process_time()
from saml_core import cli
from saml_core import data, maps, train, experiments
from saml_core.models import base, saml
wall, cpu, depth = {}, {}, [0]
def timed(owner, name, label):
    fn = getattr(owner, name)
    def wrapper(*a, **k):
        depth[0] += 1
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            depth[0] -= 1
            if depth[0] == 0:  # nested phases count once, in the outer one
                wall[label] = wall.get(label, 0.0) + time.perf_counter() - t0
                cpu[label] = cpu.get(label, 0.0) + time.process_time() - c0
    setattr(owner, name, wrapper)
for owner, name, label in SPLIT_PHASES:
    timed(eval(owner), name, label)
wall["imports"], cpu["imports"] = time.perf_counter() - t_main, time.process_time() - c_main
rc = cli.exit_quietly(cli.main(sys.argv[1:]))  # as `python -m saml_core` does
t_end, c_end = time.perf_counter(), time.process_time()
wall["other (status, artifacts, run set-up)"] = t_end - t_main - sum(wall.values())
cpu["other (status, artifacts, run set-up)"] = c_end - c_main - sum(cpu.values())
print(json.dumps({"rc": rc, "wall": wall, "cpu": cpu, "t_main": t_main, "t_end": t_end, "cpu_start": c_main,
                  "cpu_end": c_end, "cpu_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
                  + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime}), flush=True)
"""
# (object in the child, function, phase); the training loops are `fit`
SPLIT_PHASES = [("experiments", "_data_for", "data load"), ("train", "fit", "training loops (fit)"),
                ("train", "evaluate_model", "test predictions and metrics"),
                ("base.ScenarioModel", "collect_probes", "probes"), ("saml.SAML", "collect_probes", "probes"),
                ("train", "probe_summaries", "probes"), ("maps", "compute_maps", "maps in this process"),
                ("maps", "end_background", "waiting for the background maps")]
TRAINING = "training loops (fit)"


def experiment_split(args: tuple[str, ...] = ("--dataset", "synthetic-countries", "--quick")) -> dict:
    """One quick experiment in a fresh process (its own artifacts folder, removed after): its phases
    by the wall clock from the command's start to the process's end, and by CPU time. Wall:
    interpreter start (to the first line of the child), imports, the wrapped phases (SPLIT_PHASES),
    the rest of the command, interpreter exit (the child's last line to its end). CPU: the same
    phases of the experiment's own process; its UMAP maps run in a background process, whose CPU
    time is given apart (on 2 free cores it runs beside the training, on a busy machine it
    competes with it). "outside training" = 1 - the training loops' share: of the wall time (the
    target), of the experiment process's CPU time, and of all CPU time including the maps'."""
    tmp = Path(tempfile.mkdtemp(prefix="saml-bench-exp-"))
    code = f"SPLIT_PHASES = {SPLIT_PHASES!r}\n" + _SPLIT_CHILD
    try:
        l0 = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code, "experiment", *args, "--name", "split", "--artifacts",
                              str(tmp)], capture_output=True, text=True, check=True)
        t1 = time.perf_counter()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    tree_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    wall = {"interpreter start": r["t_main"] - t0, **r["wall"], "interpreter exit": t1 - r["t_end"]}
    maps_cpu = r["cpu_children"]  # the background map process (the experiment waited for it)
    own_cpu = tree_cpu - maps_cpu
    cpu = {"interpreter start": r["cpu_start"], **r["cpu"],
           "interpreter exit": max(own_cpu - r["cpu_end"], 0.0)}
    total_wall = t1 - t0
    return {"command": "python -m saml_core experiment " + " ".join(args), "wall_s": round(total_wall, 2),
            "phases_s": {k: round(v, 2) for k, v in wall.items()},
            "cpu_s": round(own_cpu, 2), "cpu_phases_s": {k: round(v, 2) for k, v in cpu.items()},
            "background_maps_cpu_s": round(maps_cpu, 2),
            "outside_training_share": round(1 - wall[TRAINING] / total_wall, 3),
            "outside_training_share_cpu": round(1 - cpu[TRAINING] / own_cpu, 3),
            "outside_training_share_cpu_with_maps": round(1 - cpu[TRAINING] / tree_cpu, 3),
            "load_average": round(l0, 2)}
