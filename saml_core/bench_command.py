"""The `bench` command's options and what it runs (`python -m saml_core bench`; `python -m
saml_core.bench_command` in the fresh processes of bench_process): the speed figures of
`bench_speed.py`, and on request the peers, thread settings, DDP and experiment figures of
bench_peers and bench_process, which use `bench_speed.py`'s models and data themselves."""
from __future__ import annotations

import argparse
import json
import sys

from saml_core import bench_speed as bench


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: stable on a shared machine; 0 = the adaptive policy)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians and spreads over them)")
    p.add_argument("--steps", type=int, default=20, help="training steps per model per round")
    p.add_argument("--eval-samples", type=int, default=32768, help="evaluation samples per model per round")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time, or process CPU time (one thread: immune to other jobs on the core)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the dense parts of BST and SAML (compile_dense; opt-in, slow to start)")
    p.add_argument("--bf16-context", action="store_true",
                   help="SAML's forward-only all-branch pass in bfloat16 (the CUDA default; opt-in on CPU)")
    p.add_argument("--no-peak", action="store_true", help="skip the matmul peak measurement")
    p.add_argument("--no-extras", action="store_true", help="skip the operator counts and the BST shape ratios")
    p.add_argument("--thread-table", action="store_true",
                   help="also: 1 thread, 2 threads and the adaptive policy, each in fresh processes, quiet and "
                        "next to --busy busy processes")
    p.add_argument("--busy", type=int, default=2, help="busy processes for the loaded half of --thread-table")
    p.add_argument("--ddp", action="store_true",
                   help="also: an experiment by torchrun with 2 CPU ranks against one process with one thread")
    p.add_argument("--ddp-runs", default="saml,bst", help="runs of the --ddp experiment")
    p.add_argument("--experiment", action="store_true",
                   help="also: where a quick experiment's wall time goes (fresh process)")
    p.add_argument("--peers", action="append", default=[], metavar="DIR",
                   help="a folder holding torch_rechub and/or scenario_wise_rec (repeatable): our models "
                        "against theirs at equal sizes (bench_peers)")
    p.add_argument("--all", action="store_true", help="--thread-table --ddp --experiment")
    from saml_core import bench_analyses

    bench_analyses.add_arguments(p)


def cmd(args) -> int:
    if args.analyses_cost:  # the cost of a run's analyses against its training (bench_analyses)
        from saml_core import bench_analyses

        return bench_analyses.cmd(args)
    res = bench.run_bench(steps=args.steps, rounds=args.rounds, threads=args.threads, eval_n=args.eval_samples,
                    peak=not args.no_peak, clock=args.clock, compile_dense=args.compile,
                    bf16_context=args.bf16_context, extras=not args.no_extras)
    if args.peers:
        from saml_core import bench_peers

        res["peers"] = bench_peers.compare(args.peers)
    if args.thread_table or args.all:
        from saml_core import bench_process

        res["threads"] = bench_process.thread_table(busy=args.busy)
    if args.ddp or args.all:
        from saml_core import bench_process

        res["ddp"] = bench_process.ddp(runs=args.ddp_runs)
    if args.experiment or args.all:
        from saml_core import bench_process

        res["experiment"] = bench_process.experiment_split()
    res["targets"] = bench.verdicts(res)
    print(json.dumps(res, indent=1) if args.json else bench.format_bench(res))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m saml_core bench", description=bench.__doc__.split("\n\n")[0])
    add_arguments(p)
    return cmd(p.parse_args(argv))


if __name__ == "__main__":  # the fresh processes of bench_process run this module
    sys.exit(main())
