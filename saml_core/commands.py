"""Engine sub-commands: train, experiment, report, bench (JSON shapes: docs/ENGINE.md)."""
from __future__ import annotations

import json
import shlex
import signal
import sys
from pathlib import Path

from saml_core.config import ConfigError, ModelConfig, TrainConfig

# The paper's public-data settings (Taobao): d_g 12, d_s 4, MLP 128-64, lr 5e-4, batch 128.
# Everything else starts from the industrial settings (ModelConfig/TrainConfig defaults).
PUBLIC_MODEL = {"d_g": 12, "d_s": 4, "mlp": (128, 64)}
PUBLIC_TRAIN = {"lr": 5e-4, "batch_size": 128}

# --quick: small enough for tests (synthetic "small" preset, 2 epochs, small MLP and probes)
QUICK_TRAIN = {"epochs": 2, "patience": 1, "batch_size": 512}
QUICK_MODEL = {"mlp": (32, 16)}
QUICK_PROBES = {"probe_size": 400, "probe_hidden_all": 60}


def add_commands(subparsers) -> None:
    t = subparsers.add_parser("train", help="train one model (a one-run experiment)")
    t.add_argument("--dataset", required=True, help="synthetic-countries | taobao-sample | taobao-raw:DIR | csv:SCHEMA")
    t.add_argument("--model", required=True, choices=["saml", "bst", "bst_individual"])
    t.add_argument("--variant", default=None, choices=["full", "no_gate", "no_aux", "no_gate_mut"])
    t.add_argument("--experiment", default=None, help="experiment to add the run to (default: train-<model>)")
    t.add_argument("--seed", type=int, default=0)
    _common(t)
    t.set_defaults(func=cmd_train)

    e = subparsers.add_parser("experiment", help="train a comparison set (skips finished runs, resumes others)")
    e.add_argument("--dataset", required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 for every run")
    e.add_argument("--runs", default=None,
                   help="comma list, default bst_individual,bst,saml:full,saml:no_gate,saml:no_aux,saml:no_gate_mut "
                        "(bst,saml:full with --sweep)")
    e.add_argument("--sweep", default=None, choices=["emb", "heads", "depth"], help="sensitivity sweep (paper Fig. 2)")
    e.add_argument("--status-file", default=None, help="also write progress JSON here (atomic)")
    _common(e)
    e.set_defaults(func=cmd_experiment)

    r = subparsers.add_parser("report", help="per-run, per-scenario results of an experiment")
    r.add_argument("name")
    r.add_argument("--format", default="markdown", choices=["json", "markdown"])
    r.add_argument("--artifacts", default=None, help="artifacts root (default $SAML_ARTIFACTS or ./artifacts)")
    r.set_defaults(func=cmd_report)

    d = subparsers.add_parser("demo", help="build the shipped demo experiments (demo, taobao-demo)")
    d.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    d.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    d.add_argument("--artifacts", default=None, help="artifacts root (default $SAML_ARTIFACTS or ./artifacts)")
    d.set_defaults(func=cmd_demo)

    b = subparsers.add_parser("bench", help="training/evaluation samples/s of BST and SAML (same process)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--steps", type=int, default=20, help="training steps per model per round (5 rounds)")
    b.set_defaults(func=cmd_bench)


def _common(p) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--d-g", type=int, default=None)
    p.add_argument("--d-s", type=int, default=None)
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--mlp", default=None, help="hidden sizes, e.g. 256,128")
    p.add_argument("--branch-init", default=None, choices=["shared", "independent"],
                   help="SAML branches start from one random draw (shared, default) or one each")
    p.add_argument("--size", default=None, help="simulator size preset: small | default | large")
    p.add_argument("--data-seed", type=int, default=0, help="simulator seed")
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    p.add_argument("--weights-dtype", default=None, choices=["float32", "float16"],
                   help="storage of model.pt (float16: half the size; metrics are of the stored weights)")
    p.add_argument("--probe-size", type=int, default=None, help="test samples in probes.npz (default 3000)")
    p.add_argument("--probe-hidden-all", type=int, default=None,
                   help="of those, samples with every branch's hidden states (default 300)")
    p.add_argument("--artifacts", default=None, help="artifacts root (default $SAML_ARTIFACTS or ./artifacts)")
    p.add_argument("--quick", action="store_true", help="tiny settings for tests and smoke runs")


def _parse_mlp(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--mlp must be comma-separated integers, got {text!r}") from None
    if not sizes:
        raise ConfigError("--mlp is empty")
    return sizes


def build_configs(args) -> tuple[dict, ModelConfig, TrainConfig, dict]:
    """(dataset_options, model config, train config, probe options) from CLI options."""
    quick = args.quick
    ds = {}
    if args.dataset == "synthetic-countries":
        size = args.size or ("small" if quick else None)
        if size:
            ds["size"] = size
        if args.data_seed:
            ds["seed"] = args.data_seed
    elif args.size:
        raise ConfigError(f"--size applies to synthetic-countries only (dataset {args.dataset!r})")
    if args.seq_len:
        ds["seq_len"] = args.seq_len
    public = args.dataset.startswith("taobao")
    m = {**(PUBLIC_MODEL if public else {}), **(QUICK_MODEL if quick else {})}
    for key in ("d_g", "d_s", "heads"):
        if getattr(args, key) is not None:
            m[key] = getattr(args, key)
    if args.mlp:
        m["mlp"] = _parse_mlp(args.mlp)
    if getattr(args, "branch_init", None):
        m["branch_init"] = args.branch_init
    tr = {**(PUBLIC_TRAIN if public else {}), **(QUICK_TRAIN if quick else {})}
    for key in ("epochs", "lr", "batch_size", "patience"):
        if getattr(args, key) is not None:
            tr[key] = getattr(args, key)
    tr["device"], tr["num_threads"] = args.device, args.threads
    if getattr(args, "weights_dtype", None):
        tr["weights_dtype"] = args.weights_dtype
    probes = dict(QUICK_PROBES) if quick else {}
    for key in ("probe_size", "probe_hidden_all"):
        value = getattr(args, key, None)
        if value is not None:
            if value < 1:
                raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
            probes[key] = value
    return ds, ModelConfig(**m), TrainConfig(**tr), probes


class _CancelFlag:
    """SIGTERM/SIGINT set a flag the trainer polls between batches (clean cancel)."""

    def __init__(self):
        self.flag = False
        signal.signal(signal.SIGTERM, self._set)

    def _set(self, *_):
        self.flag = True

    def __call__(self) -> bool:
        return self.flag


def _root(args) -> Path:
    from saml_core.registry import default_root

    return Path(args.artifacts) if args.artifacts else default_root()


def _run(cfg, args) -> int:
    from saml_core.experiments import run_experiment
    from saml_core.train import Cancelled

    cancel = _CancelFlag()
    command = "python -m saml_core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        run_experiment(cfg, _root(args), status_file=getattr(args, "status_file", None), should_stop=cancel,
                       command=command)
    except Cancelled as exc:
        print(f"cancelled: {exc}; finished epochs are kept, re-run the same command to resume", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted; finished epochs are kept, re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


def cmd_train(args) -> int:
    from saml_core.experiments import ExperimentConfig

    ds, mcfg, tcfg, probes = build_configs(args)
    run = f"saml:{args.variant or 'full'}" if args.model == "saml" else args.model
    if args.model != "saml" and args.variant:
        raise ConfigError("--variant applies to --model saml only")
    cfg = ExperimentConfig(name=args.experiment or f"train-{args.model}", dataset=args.dataset, dataset_options=ds,
                           runs=[run], first_seed=args.seed, model_config=mcfg, train_config=tcfg, **probes)
    rc = _run(cfg, args)
    if rc == 0:
        run_id = cfg.plan()[0].run_id
        print(json.dumps({"experiment": cfg.name, "run_id": run_id, "run_dir": str(_root(args) / cfg.name / run_id)}))
    return rc


def cmd_experiment(args) -> int:
    from saml_core.experiments import DEFAULT_RUNS, ExperimentConfig

    ds, mcfg, tcfg, probes = build_configs(args)
    runs = args.runs or (("bst", "saml:full") if args.sweep else DEFAULT_RUNS)
    cfg = ExperimentConfig(name=args.name, dataset=args.dataset, dataset_options=ds, runs=list(runs) if not
                           isinstance(runs, str) else runs.split(","), seeds=args.seeds, sweep=args.sweep,
                           model_config=mcfg, train_config=tcfg, **probes)
    return _run(cfg, args)


def cmd_demo(args) -> int:
    """Each demo experiment through the `experiment` command with the demo options."""
    from saml_core.cli import build_parser
    from saml_core.experiments import DEMO_EXPERIMENTS, DEMO_OPTIONS

    for name, dataset in DEMO_EXPERIMENTS:
        argv = ["experiment", "--dataset", dataset, "--name", name, *DEMO_OPTIONS,
                "--device", args.device, "--threads", str(args.threads)]
        if args.artifacts:
            argv += ["--artifacts", args.artifacts]
        sub = build_parser().parse_args(argv)
        rc = sub.func(sub)
        if rc:
            return rc
    return 0


def cmd_report(args) -> int:
    from saml_core.registry import report, report_markdown

    doc = report(_root(args), args.name)
    if args.format == "json":
        print(json.dumps(doc, indent=1, default=_json_default))
    else:
        print(report_markdown(doc), end="")
    return 0


def _json_default(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def cmd_bench(args) -> int:
    from saml_core.bench import format_bench, run_bench

    res = run_bench(steps=args.steps)
    print(json.dumps(res, indent=1) if args.json else format_bench(res))
    return 0
