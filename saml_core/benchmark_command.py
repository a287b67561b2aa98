"""The `benchmark` command's options and what it runs (`python -m saml_core benchmark movielens:DIR`):
the trainings of `benchmark.py`, then the tables of `benchmark_tables.py` (which read the
protocols of `benchmark.py`), printed and with --write regenerated in the docs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from saml_core import benchmark
from saml_core import benchmark_tables as tables
from saml_core.cli_support import CancelFlag, artifacts_root, recorded_command
from saml_core.config import MAX_SEEDS, ConfigError
from saml_core.errors import Cancelled, TrainingFailed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="movielens:DIR (ML-100k or ML-1M; docs/DATA.md says how to get them)")
    p.add_argument("--seeds", type=int, default=benchmark.MIN_SEEDS,
                   help=f"model seeds per model (at least {benchmark.MIN_SEEDS})")
    p.add_argument("--write", action="store_true",
                   help="regenerate the benchmark section of README.md and BENCHMARKS.md (between its markers)")
    p.add_argument("--protocols", default=",".join(benchmark.PROTOCOLS),
                   help=f"comma list of {', '.join(benchmark.PROTOCOLS)}")
    p.add_argument("--prefix", default=None, help="experiment names' prefix (default bench-ml100k, bench-ml1m, ... "
                                                  "from the number of ratings)")
    p.add_argument("--preset", default=None, help="training preset (default: the dataset's own)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    p.add_argument("--artifacts", default=None,
                   help="artifacts root (default $SAML_ARTIFACTS, else the project's artifacts/ folder)")
    # a shrunken benchmark for the tests: any number of seeds, some models, another docs folder
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--models", default=None, help=argparse.SUPPRESS)
    p.add_argument("--docs-dir", default=None, help=argparse.SUPPRESS)


def cmd(args) -> int:
    from saml_core.experiments import parse_runs

    low = 1 if args.smoke else benchmark.MIN_SEEDS
    if not low <= args.seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds must be a whole number from {low} to {MAX_SEEDS}, got {args.seeds}")
    if args.models and not args.smoke:
        raise ConfigError("the benchmark trains every registered model")
    models = parse_runs(args.models) if args.models else None
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    root = artifacts_root(args)
    command = recorded_command()
    cancel = CancelFlag()
    try:
        try:
            prefix, steps = benchmark.run(args.dataset, root=root, seeds=args.seeds, preset=args.preset,
                                          device=args.device, threads=args.threads, models=models,
                                          protocols=protocols, prefix=args.prefix, should_stop=cancel,
                                          command=command)
        finally:
            cancel.close()
    except (Cancelled, KeyboardInterrupt) as exc:
        print(f"interrupted ({exc or 'Ctrl-C'}); every finished training is kept: run the same command to go on",
              file=sys.stderr)
        return 130
    except TrainingFailed as exc:
        print(f"error: {exc}; the tables are not written", file=sys.stderr)
        return 1
    text = tables.render(root, prefix, steps, seeds=args.seeds, command=tables.public_command(args))
    print(text)
    if args.write:
        docs = Path(args.docs_dir) if args.docs_dir else tables.DOCS_DIR
        for path in tables.write(docs, prefix, text):
            print(f"wrote {path}", file=sys.stderr)
    return 0
