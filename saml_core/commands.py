"""Engine sub-commands: train, experiment, report, demo, analyses, bench, benchmark (JSON shapes: docs/ENGINE.md).

Every choice list (models, datasets, presets) comes from the registries and `config.PRESETS`."""
from __future__ import annotations

import json
import sys

from saml_core.cli_support import CancelFlag, artifacts_root, recorded_command
from saml_core.config import PRESETS, ConfigError, ModelConfig, TrainConfig, settings_of


def add_commands(subparsers) -> None:
    from saml_core.models import registry

    t = subparsers.add_parser("train", help="train one model (a one-run experiment)")
    t.add_argument("--dataset", required=True, help=_dataset_help())
    t.add_argument("--model", required=True, choices=registry.ids())
    t.add_argument("--experiment", default=None, help="experiment to add the run to (default: train-<model>)")
    t.add_argument("--seed", type=int, default=0, help="model seed")
    _common(t)
    t.set_defaults(func=cmd_train)

    e = subparsers.add_parser("experiment", help="train a comparison set (skips finished runs, resumes others)")
    e.add_argument("--dataset", default=None, help=_dataset_help())
    e.add_argument("--name", default=None)
    e.add_argument("--seeds", type=int, default=1, help="model seeds first..first+N-1 for every run")
    e.add_argument("--first-seed", type=int, default=0)
    e.add_argument("--data-seeds", type=int, default=1,
                   help="data seeds --data-seed..+N-1: another simulated log or random split each")
    e.add_argument("--runs", default=None,
                   help=f"comma list of models ('default' = {','.join(registry.default_ids())}; "
                        f"all: {','.join(registry.ids())}); bst,saml with --sweep")
    e.add_argument("--sweep", default=None, choices=["emb", "heads", "depth"], help="sensitivity sweep (paper Fig. 2)")
    e.add_argument("--keep-weights", default="all", choices=["all", "first-run", "first-run-main"],
                   help="first-run: keep model.pt, hidden states and maps of the first model seed on the first "
                        "data seed only (metrics, predictions, alpha and gates of every run); first-run-main: "
                        "the same, but ablations keep no weights at all: demo storage")
    e.add_argument("--overwrite", action="store_true",
                   help="retrain runs of this experiment that were trained with other settings")
    e.add_argument("--spec", default=None,
                   help="a JSON experiment specification (what the dashboard's jobs run); other options ignored")
    e.add_argument("--status-file", default=None, help="also write progress JSON here (atomic)")
    _common(e)
    e.set_defaults(func=cmd_experiment)

    r = subparsers.add_parser("report", help="per-run, per-scenario results of an experiment")
    r.add_argument("name", help="experiment name (a folder of the artifacts root)")
    r.add_argument("--format", default="markdown", choices=["json", "markdown"])
    r.add_argument("--reference", default=None, metavar="MODEL",
                   help=f"the model every other is compared with (default {registry.reference_id()}: RelaImpr and the "
                        "paper's tables)")
    r.add_argument("--html", default=None, metavar="FILE",
                   help="write the main findings as one HTML file that opens offline in any browser (headline, "
                        "table with the reference rows, charts, their sentences) instead of printing the report")
    r.add_argument("--against", default=None, metavar="OTHER",
                   help="instead: each model both experiments trained, its within-scenario AUC in NAME and in OTHER "
                        "and the difference paired by seeds (e.g. OTHER run with --no-sequences)")
    r.add_argument("--artifacts", default=None, help="artifacts root (default $SAML_ARTIFACTS, else the project's artifacts/ folder)")
    r.set_defaults(func=cmd_report)

    d = subparsers.add_parser("demo", help="build the shipped demo experiments (demo, taobao-demo)")
    d.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    d.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    d.add_argument("--artifacts", default=None, help="artifacts root (default $SAML_ARTIFACTS, else the project's artifacts/ folder)")
    _dist_option(d)
    d.set_defaults(func=cmd_demo)

    a = subparsers.add_parser("analyses", help="compute the transfer matrix and input importance of finished runs "
                                               "that lack them, from their stored model.pt")
    a.add_argument("name", nargs="?", help="experiment name (a folder of the artifacts root)")
    a.add_argument("--runs", default=None, help="comma list of run ids (default: every run that lacks one)")
    a.add_argument("--spec", default=None, help="a JSON analyses specification (what the dashboard's jobs run); "
                                                "NAME and --runs ignored")
    a.add_argument("--status-file", default=None, help="also write progress JSON here (atomic)")
    a.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    a.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    a.add_argument("--artifacts", default=None, help="artifacts root (default $SAML_ARTIFACTS, else the project's artifacts/ folder)")
    a.set_defaults(func=cmd_analyses)

    from saml_core import bench_command, benchmark_command

    m = subparsers.add_parser("benchmark", help="the accuracy benchmark on MovieLens: every model tuned, 5 seeds, "
                                                "two protocols, sequence and feature ablations; tables for "
                                                "README/BENCHMARKS (resumes when re-run)")
    benchmark_command.add_arguments(m)
    m.set_defaults(func=benchmark_command.cmd)

    b = subparsers.add_parser("bench", help="samples/s, counted GFLOP and share of the measured peak of BST and "
                                            "SAML (interleaved rounds, same process)")
    bench_command.add_arguments(b)
    b.set_defaults(func=bench_command.cmd)


def _dataset_help() -> str:
    from saml_core.data import registry as datasets

    return datasets.usage()


def _common(p) -> None:
    p.add_argument("--preset", default=None, choices=list(PRESETS),
                   help="training preset (default: the dataset's own; quick = tiny sizes for smoke runs)")
    p.add_argument("--quick", action="store_true", help="= --preset quick")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    _setting_flags(p, TrainConfig)
    p.add_argument("--tune", action="store_true",
                   help="fair training: each model's learning rate and embedding decay (LR: smoothing and C) "
                        "chosen from a 3x3 grid on validation AUC (first data and model seed), then every seed "
                        "trained with that setting (docs/ENGINE.md, Tuning)")
    p.add_argument("--tuning-from", default=None, metavar="EXPERIMENT",
                   help="with --tune: reuse the settings another tuned experiment of the same artifacts root "
                        "chose, without trials (e.g. a feature ablation of the same log)")
    _setting_flags(p, ModelConfig)
    p.add_argument("--model-option", action="append", default=[], metavar="MODEL.OPTION=VALUE",
                   help="a model's own option, e.g. mmoe.n_experts=8 (repeatable)")
    p.add_argument("--size", default=None, help="simulator size preset: small | default | large")
    p.add_argument("--data-seed", type=int, default=0, help="(first) data seed: simulated log, random split")
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--exclude-fields", default=None, metavar="FIELD,...",
                   help="leave these categorical fields (and the sequences sharing them) or behaviour sequences "
                        "out: a feature ablation")
    p.add_argument("--no-sequences", action="store_true",
                   help="leave every behaviour sequence out (= --exclude-fields with all the sequence names)")
    p.add_argument("--min-count", type=int, default=None,
                   help="categorical values seen fewer times in train share the out-of-vocabulary row")
    p.add_argument("--dataset-option", action="append", default=[], metavar="OPTION=VALUE",
                   help="a dataset's own load option, e.g. scenario=occupation for movielens:DIR (repeatable; "
                        "docs/DATA.md lists each dataset's options)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    p.add_argument("--probe-size", type=int, default=None, help="test samples in probes.npz (default 3000)")
    p.add_argument("--probe-hidden-all", type=int, default=None,
                   help="of those, samples with every branch's hidden states (default 300)")
    p.add_argument("--artifacts", default=None, help="artifacts root (default $SAML_ARTIFACTS, else the project's artifacts/ folder)")
    _dist_option(p)


def _setting_flags(p, cls) -> None:
    """One `--<name>` flag per setting of a config dataclass that the CLI offers (config.setting):
    its help, choices and type from the field; not given (None) = the preset's value."""
    for f in settings_of(cls, "cli"):
        m = f.metadata
        kw = {"default": None, "help": m["help"] + (f" ({m['used_by']} only)" if m["used_by"] else "")}
        if m["choices"]:
            kw["choices"] = list(m["choices"])
        elif f.type in ("int", "float"):
            kw["type"] = int if f.type == "int" else float
        p.add_argument("--" + f.name.replace("_", "-"), **kw)


def _given_settings(args, cls) -> dict:
    """The settings of `cls` given on the command line."""
    return {f.name: getattr(args, f.name) for f in settings_of(cls, "cli") if getattr(args, f.name) is not None}


def _dist_option(p) -> None:
    p.add_argument("--dist-backend", default="auto", choices=["auto", "gloo", "nccl"],
                   help="under torchrun with several processes: collective backend (auto: nccl on GPUs, "
                        "gloo on CPU); docs/ENGINE.md, Scale")


def _parse_mlp(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--mlp must be comma-separated integers, got {text!r}") from None
    if not sizes:
        raise ConfigError("--mlp is empty")
    return sizes


def _fields(text: str | None) -> list[str] | None:
    return [f.strip() for f in text.split(",") if f.strip()] if text else None


def parse_dataset_options(items: list[str], given: dict | None = None) -> dict:
    """--dataset-option OPTION=VALUE items (values read as JSON when they parse, else text) merged with
    the options the dedicated flags gave (`given`, None = not given); an option given twice is an error."""
    out = {k: v for k, v in (given or {}).items() if v is not None}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--dataset-option must look like OPTION=VALUE, got {item!r}")
        if key in out:
            raise ConfigError(f"dataset option {key} is given twice")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _excluded(args) -> list[str] | None:
    """--exclude-fields plus, with --no-sequences, every behaviour sequence of the dataset: one
    dataset option `exclude`, so the run records exactly what was left out."""
    fields = _fields(args.exclude_fields) or []
    if getattr(args, "no_sequences", False):
        from saml_core.data.dataset_registry import sequence_names

        fields += [q for q in sequence_names(args.dataset) if q not in fields]
    return fields or None


def _parse_model_options(items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        model, dot, option = key.partition(".")
        if not sep or not dot or not model or not option:
            raise ConfigError(f"--model-option must look like MODEL.OPTION=VALUE, got {item!r}")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(model.strip(), {})[option.strip()] = parsed
    return out


def settings_from_args(args) -> dict:
    """ExperimentConfig keyword arguments from the CLI options (presets via presets.settings_for)."""
    from saml_core.presets import settings_for

    model = _given_settings(args, ModelConfig)
    if "mlp" in model:
        model["mlp"] = _parse_mlp(model["mlp"])
    train = _given_settings(args, TrainConfig)
    train.update(device=args.device, num_threads=args.threads)
    probes = {k: getattr(args, k) for k in ("probe_size", "probe_hidden_all") if getattr(args, k) is not None}
    settings = settings_for(args.dataset, "quick" if args.quick else args.preset, model=model, train=train,
                            probes=probes, dataset_options=parse_dataset_options(args.dataset_option, {
                                "size": args.size, "seq_len": args.seq_len, "min_count": args.min_count,
                                "exclude": _excluded(args)}))
    return {**settings, "dataset": args.dataset, "model_options": _parse_model_options(args.model_option),
            "tuned": args.tune or args.tuning_from is not None, "tuning_from": args.tuning_from}


LATE_INTERRUPT = "interrupt received after every run had finished and was saved: the experiment is complete"


def _complete(cfg, args) -> bool:
    """Every run of the experiment has its final files (an interrupt then changes nothing)."""
    from saml_core.experiments import run_is_finished

    return all(run_is_finished(artifacts_root(args) / cfg.name / r.run_id) for r in cfg.plan())


def _run(cfg, args) -> int:
    """Run the experiment; under torchrun with several processes rank 0 runs it (and alone
    writes) while the other ranks follow its tasks (saml_core.distributed)."""
    from saml_core import ddp_worker, distributed
    from saml_core.experiments import run_experiment
    from saml_core.train import Cancelled, TrainingFailed

    dist = distributed.from_env(getattr(args, "dist_backend", "auto"), cfg.train_config.device)
    command = recorded_command()
    cancel = CancelFlag()
    rc = 1  # an unexpected error (its traceback follows)
    try:
        try:
            if dist is not None and not dist.is_main:
                rc = ddp_worker.follow(dist, cancel)
                if rc == 0:  # rank 0 said stop: every rank is here
                    distributed.settle()
                return rc
            run_experiment(cfg, artifacts_root(args), status_file=getattr(args, "status_file", None), should_stop=cancel,
                           command=command, overwrite=getattr(args, "overwrite", False), dist=dist)
        finally:
            cancel.close()  # inside the try: a forced stop that fires while closing is still a cancel
        rc = 0
    except Cancelled as exc:
        print(f"cancelled: {exc}; finished epochs are kept, re-run the same command to resume", file=sys.stderr)
        rc = 130
    except KeyboardInterrupt:
        if _complete(cfg, args):  # Ctrl-C a moment too late: every run's files were already written
            print(LATE_INTERRUPT, file=sys.stderr)
            rc = 0
        else:
            print("interrupted; finished epochs are kept, re-run the same command to resume", file=sys.stderr)
            rc = 130
    except TrainingFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        rc = 1
    except Exception as exc:  # noqa: BLE001 (a worker died: say so in one line, not a gloo traceback)
        if dist is None or not distributed.peer_lost(exc):
            raise
        print(f"error: {distributed.peer_lost_message(exc)}", file=sys.stderr)
        rc = 1
    finally:
        if dist is not None and dist.is_main and dist.release(rc):
            distributed.settle()
    return rc


def cmd_train(args) -> int:
    from saml_core.experiments import ExperimentConfig

    s = settings_from_args(args)
    cfg = ExperimentConfig(name=args.experiment or f"train-{args.model}", runs=[args.model], first_seed=args.seed,
                           data_seeds=[args.data_seed], **s)
    rc = _run(cfg, args)
    from saml_core import distributed

    if rc == 0 and not distributed.is_worker():
        run_id = cfg.plan()[0].run_id
        print(json.dumps({"experiment": cfg.name, "run_id": run_id, "run_dir": str(artifacts_root(args) / cfg.name / run_id)}))
    return rc


def experiment_config(args):
    """The validated ExperimentConfig of an `experiment` command line (or of its --spec file)."""
    from saml_core.experiments import SWEEP_RUNS, ExperimentConfig, read_spec

    if args.spec:
        return read_spec(args.spec)
    if not args.dataset or not args.name:
        raise ConfigError("experiment needs --dataset and --name (or --spec FILE)")
    runs = args.runs or (",".join(SWEEP_RUNS) if args.sweep else "default")
    return ExperimentConfig(name=args.name, runs=runs, seeds=args.seeds, first_seed=args.first_seed,
                            data_seeds=list(range(args.data_seed, args.data_seed + max(args.data_seeds, 1))),
                            sweep=args.sweep, keep_weights=args.keep_weights, **settings_from_args(args))


def cmd_experiment(args) -> int:
    return _run(experiment_config(args), args)


def cmd_demo(args) -> int:
    """Each demo experiment and its analyses (`presets.demo_jobs`, the list the dashboard queues)."""
    from saml_core.analyses_job import AnalysesSpec, compute_missing
    from saml_core.presets import demo_jobs

    for job in demo_jobs(device=args.device, threads=args.threads):
        if isinstance(job, AnalysesSpec):
            compute_missing(artifacts_root(args), job, device=args.device, threads=args.threads)
            continue
        rc = _run(job, args)
        if rc:
            return rc
    return 0


def cmd_report(args) -> int:
    from saml_core.report import report, report_markdown

    if args.html:
        # The dashboard's own summary (dashboard/summary.py: Plotly, no Streamlit), so the file is
        # the one its Overview button gives.
        from dashboard.summary import write

        path = write(artifacts_root(args), args.name, args.html, reference=args.reference)
        print(f"Summary of {args.name} written to {path} ({path.stat().st_size / 2**20:.1f} MB, opens offline)")
        return 0
    doc = report(artifacts_root(args), args.name, reference=args.reference)
    if args.against:
        from saml_core.report import comparison_markdown

        print(comparison_markdown(doc, report(artifacts_root(args), args.against, reference=args.reference)), end="")
        return 0
    if args.format == "json":
        print(json.dumps(doc, indent=1, default=_json_default))
    else:
        print(report_markdown(doc), end="")
    return 0


def cmd_analyses(args) -> int:
    from saml_core.analyses_job import AnalysesSpec, compute_missing, read_spec

    if args.spec:
        spec = read_spec(args.spec)
    elif args.name:
        spec = AnalysesSpec(args.name, tuple(_fields(args.runs)) if args.runs else None)
    else:
        raise ConfigError("analyses needs an experiment NAME (or --spec FILE)")
    done = compute_missing(artifacts_root(args), spec, device=args.device, threads=args.threads, status_file=args.status_file)
    print(json.dumps({"experiment": spec.experiment, "written": done}))
    return 0


def _json_default(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)
