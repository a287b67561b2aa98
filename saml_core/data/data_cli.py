"""`python -m saml_core data ...`: describe a dataset; benchmark the out-of-core pipelines."""
from __future__ import annotations

import argparse
import json
import unicodedata


def _with_option(option: str) -> str:
    """The datasets (registry) that have load option `option`."""
    from saml_core.data import registry

    return ", ".join(e.name for e in registry.entries() if option in e.options) or "none"


def _options_help() -> str:
    from saml_core.data import registry

    return "; ".join(f"{e.name}: {', '.join(e.options) or 'none'}" for e in registry.entries())


def add_commands(subparsers) -> None:
    from saml_core.data import registry

    data = subparsers.add_parser("data", help="inspect datasets")
    sub = data.add_subparsers(dest="data_command", required=True)

    d = sub.add_parser(
        "describe",
        help="per-scenario samples, positives, CTR, traffic share (and oracle AUC when simulated)",
    )
    d.add_argument("dataset", help=registry.usage())
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    d.add_argument("--size", default=None, help=f"simulator size: small | default | large ({_with_option('size')})")
    d.add_argument("--seq-len", type=int, default=None, help=f"behaviour sequence length ({_with_option('seq_len')})")
    d.add_argument("--cache-dir", default=None, help=f"cache folder ({_with_option('cache_dir')})")
    d.add_argument("--dataset-option", action="append", default=[], metavar="OPTION=VALUE",
                   help=f"a dataset's own load option, e.g. scenario=occupation for movielens:DIR (repeatable); "
                        f"the options: {_options_help()}")
    d.set_defaults(func=_describe)

    v = sub.add_parser(
        "decompose",
        help="the simulator's true click logit: its variance by source (global, group, country, personal "
             "through the behaviour sequence, item, context) and the Bernoulli noise of the clicks",
    )
    v.add_argument("dataset", help=f"{' | '.join(e.name for e in registry.entries() if e.simulated)} (simulated: "
                                   "the true logit is known)")
    v.add_argument("--json", action="store_true", help="print JSON instead of a table")
    v.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    v.add_argument("--size", default=None, help="simulator size: small | default | large")
    v.set_defaults(func=_decompose)

    b = sub.add_parser(
        "bench-raw",
        help="time and peak memory of an out-of-core pipeline (raw Taobao, AliExpress, Ali-CCP) "
             "on a scaled-up synthetic fixture in the source's exact raw format",
    )
    b.add_argument("--source", choices=("taobao", "aliexpress", "aliccp", "movielens"), default="taobao",
                   help="which pipeline (default taobao; movielens: the in-memory load of ML-1M's files)")
    b.add_argument("--behaviours", type=int, default=None,
                   help="taobao: behaviour rows (default 3,000,000)")
    b.add_argument("--impressions", type=int, default=None, help="taobao: impression rows (default behaviours / 10)")
    b.add_argument("--bucket-rows", type=int, default=None,
                   help="taobao: behaviour rows per user bucket (bounds the join's memory; default: the "
                        "pipeline's own choice, about 2,000,000)")
    b.add_argument("--rows", type=int, default=None,
                   help="aliexpress / aliccp: rows in all files (default 1,000,000); movielens: ratings "
                        "(default 1,000,209, ML-1M's)")
    b.add_argument("--train-steps", type=int, default=0,
                   help="then train SAML this many steps on the memory-mapped data and report anonymous and "
                        "file-backed memory (default 0: no training)")
    b.add_argument("--workdir", default=None, help="folder for the fixture, kept (default: a temp folder, removed)")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.set_defaults(func=_bench_raw)


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def display_width(text: str) -> int:
    """Terminal columns of `text`: wide (CJK) characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def _pad(text: str, width: int, left: bool) -> str:
    fill = " " * max(width - display_width(text), 0)
    return text + fill if left else fill + text


def _grid(rows: list[list[str]], gap: int = 2) -> list[str]:
    """Columns as wide as their widest cell (display width); the first left-aligned, the rest right."""
    widths = [max(display_width(r[j]) for r in rows) for j in range(len(rows[0]))]
    return [(" " * gap).join(_pad(c, w, j == 0) for j, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def format_table(desc: dict) -> str:
    oracle = any(r["oracle_auc"] is not None for r in desc["scenarios"])
    noun = (desc.get("scenario_noun") or ["scenario", "scenarios"])[0]
    lines = [f"{desc['title']}  [{desc['dataset']}]"]
    lines += ["  " + line for line in _grid([
        [f"{s}:", f"{v['samples']:,}", "samples", f"{v['positives']:,}", "positives", f"CTR {v['ctr']:.2%}"]
        for s, v in desc["splits"].items()], gap=1)]
    if desc.get("oracle_auc_overall") is not None:
        lines.append(f"  oracle AUC (test, all {desc.get('scenario_noun', ['', 'scenarios'])[1]}): "
                     f"{desc['oracle_auc_overall']:.4f}")
    head = [noun, "share", "train n", "pos", "CTR", "test n", "pos", "CTR", "total n", "CTR"]
    rows = [head + (["oracle AUC"] if oracle else [])]
    for r in desc["scenarios"]:
        tr, te, to = r["train"], r["test"], r["total"]
        rows.append([r["scenario"], f"{to['share']:.1%}", f"{tr['samples']:,}", f"{tr['positives']:,}",
                     _fmt(tr["ctr"], ".1%"), f"{te['samples']:,}", f"{te['positives']:,}", _fmt(te["ctr"], ".1%"),
                     f"{to['samples']:,}", _fmt(to["ctr"], ".1%")] + ([_fmt(r["oracle_auc"], ".4f")] if oracle else []))
    table = _grid(rows)
    rule = "-" * max(display_width(t) for t in table)
    lines += ["", table[0], rule, *table[1:]]
    lines.append("share = share of all samples (train+valid+test); CTR = positives / samples")
    for d in desc.get("dropped_scenarios") or desc["info"].get("dropped_scenarios", []):
        lines.append(f"dropped {noun} {d['scenario']}: {d['reason']} "
                     f"(positives: train {d['train_positives']:,}, test {d['test_positives']:,})")
    for c in desc["info"].get("caveats", []):
        lines.append(f"caveat: {c}")
    for w in desc["info"].get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _describe(args: argparse.Namespace) -> int:
    from saml_core.data import describe_dataset

    from saml_core.commands import parse_dataset_options

    options = parse_dataset_options(args.dataset_option, {"size": args.size, "seq_len": args.seq_len,
                                                          "cache_dir": args.cache_dir})
    desc = describe_dataset(args.dataset, seed=args.seed, **options)
    print(json.dumps(desc, indent=2) if args.json else format_table(desc))
    return 0


def format_decomposition(d: dict) -> str:
    lines = [f"Variance of the true click logit by source  [{d['dataset']}, size {d['size']}, seed {d['seed']}, "
             f"{d['samples']:,} samples]"]
    rows = [["source", "variance", "share"]]
    rows += [[r["label"], f"{r['variance']:.3f}", f"{r['share']:.1%}"] for r in d["sources"]]
    rows.append(["total: variance of the logit", f"{d['logit_variance']:.3f}", "100.0%"])
    table = _grid(rows)
    rule = "-" * max(display_width(t) for t in table)
    lines += ["", table[0], rule, *table[1:-1], rule, table[-1], ""]
    c = d["clicks"]
    lines.append(f"clicks: CTR {c['ctr']:.2%}; variance of a click {c['click_variance']:.4f} = "
                 f"{c['explained']:.4f} from the true probability (what the oracle knows) + "
                 f"{c['bernoulli_noise']:.4f} Bernoulli noise ({c['noise_share']:.1%}, no model can predict it)")
    lines.append(f"personal term without the sequence: a user x target-category table of it (train days, shrunk to "
                 f"the user's mean) predicts it on the test day with R^2 {d['personal_from_user_r2']:.3f} "
                 f"(0: no better than one overall mean; 1: all of it)")
    sources = list(d["per_country"][0]["shares"])
    rows = [["country", "samples", "CTR", "logit var", *sources, "oracle AUC (test)"]]
    for r in d["per_country"]:
        rows.append([r["scenario"], f"{r['samples']:,}", f"{r['ctr']:.1%}", f"{r['logit_variance']:.2f}",
                     *(f"{r['shares'][s]:.0%}" for s in sources), _fmt(r["oracle_auc_test"], ".3f")])
    table = _grid(rows)
    lines += ["", "per country: variance of each source as a share of the country's logit variance "
                  "(shares need not add to 100 %: covariances)", table[0],
              "-" * max(display_width(t) for t in table), *table[1:]]
    return "\n".join(lines)


def _decompose(args: argparse.Namespace) -> int:
    from saml_core.data import registry
    from saml_core.data.types import DataError

    if not registry.get(args.dataset).simulated:
        simulated = " | ".join(e.name for e in registry.entries() if e.simulated)
        raise DataError(f"decompose: {args.dataset} is not simulated, so its true click logit is unknown; "
                        f"decompose takes {simulated}")
    from saml_core.data.synthetic import decompose

    d = decompose(name=args.dataset, size=args.size, seed=args.seed)
    print(json.dumps(d, indent=2) if args.json else format_decomposition(d))
    return 0


def _bench_raw(args: argparse.Namespace) -> int:
    from saml_core.data.bench_raw import bench_flat, bench_movielens, bench_raw
    from saml_core.data.types import DataError

    taobao_only = {"--behaviours": args.behaviours, "--impressions": args.impressions,
                   "--bucket-rows": args.bucket_rows}
    if args.source == "taobao":
        if args.rows is not None:
            raise DataError("bench-raw: --rows applies to --source aliexpress / aliccp; taobao uses --behaviours")
        result = bench_raw(args.behaviours or 3_000_000, impressions=args.impressions, workdir=args.workdir,
                           bucket_rows=args.bucket_rows, train_steps=args.train_steps)
    else:
        given = [k for k, v in taobao_only.items() if v is not None]
        if given:
            raise DataError(f"bench-raw: {', '.join(given)} applies to --source taobao; {args.source} uses --rows")
        result = (bench_movielens(args.rows or 1_000_209, workdir=args.workdir) if args.source == "movielens" else
                  bench_flat(args.source, args.rows or 1_000_000, workdir=args.workdir, train_steps=args.train_steps))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>28}: {v}")
    return 0
