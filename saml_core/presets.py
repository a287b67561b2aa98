"""What an experiment trains with before the user changes anything: a dataset's default preset
(`config.PRESETS`) resolved with the given overrides (`settings_for`, the one function the CLI and
the Retrain form call), and the shipped demo's recipe (`demo_specs`, `demo_jobs`). Apart from the
run loop (`experiments.py`), which trains whatever it is given."""
from __future__ import annotations

from saml_core.config import ConfigError, ModelConfig, TrainConfig, build_dataclass
from saml_core.experiments import ExperimentConfig

# The shipped demo (`python -m saml_core demo`, also the dashboard's "Build the demo"): the
# default comparison set plus the simple baseline on both datasets, with 3 model seeds and 2 data
# seeds so that every headline figure is a mean with its spread; stored compactly (float16
# weights; weights, hidden states and maps of the first run of each method and baseline only; 1,000 probe
# samples, 100 of them through every branch). `demo_specs` builds both experiments from
# DEMO_RECIPE (the CLI's `demo` and the dashboard run exactly these specs); DEMO_OPTIONS is the
# same recipe as `experiment` options, for the README (a test keeps the two equal).
DEMO_EXPERIMENTS = (("demo", "synthetic-countries"), ("taobao-demo", "taobao-sample"))
DEMO_RECIPE = {"runs": "default,lr_te", "seeds": 3, "data_seeds": [0, 1], "keep_weights": "first-run-main",
               "train": {"weights_dtype": "float16"}, "probes": {"probe_size": 1000, "probe_hidden_all": 100}}
DEMO_OPTIONS = ("--seeds", "3", "--data-seeds", "2", "--weights-dtype", "float16", "--probe-size", "1000",
                "--probe-hidden-all", "100", "--keep-weights", "first-run-main", "--runs", "default,lr_te")


def settings_for(dataset: str, preset: str | None = None, *, model: dict | None = None, train: dict | None = None,
                 probes: dict | None = None, dataset_options: dict | None = None) -> dict:
    """The settings an experiment on `dataset` trains with: the dataset's default preset (or
    `preset`), then the given overrides. The CLI and the retrain form both call this, so what the
    form shows is what the engine trains. Returns preset, dataset_options, model_config,
    train_config, probe_size, probe_hidden_all."""
    from saml_core.config import preset as get_preset
    from saml_core.data import registry as datasets

    entry = datasets.get(dataset)
    name = preset or entry.preset
    p = get_preset(name)
    given = {k: v for k, v in (dataset_options or {}).items() if v is not None}  # None = not given
    unknown = sorted(k for k in given if k not in entry.options)
    if unknown:
        raise ConfigError(f"option(s) {', '.join(unknown)} do not apply to {dataset} "
                          f"(its options: {', '.join(entry.options) or 'none'})")
    ds = {**(entry.quick_options if p.get("small_data") else {}), **given}
    mcfg = build_dataclass(ModelConfig, {**p["model"], **(model or {})})
    tcfg = build_dataclass(TrainConfig, {**p["train"], **(train or {})})
    pr = {"probe_size": 3000, "probe_hidden_all": 300, **p["probes"], **(probes or {})}
    return {"preset": name, "dataset_options": ds, "model_config": mcfg, "train_config": tcfg, **pr}


def demo_specs(*, device: str = "auto", threads: int = 0) -> list[ExperimentConfig]:
    """The shipped demo's experiments (`python -m saml_core demo`, the dashboard's "Build the
    demo"): DEMO_RECIPE on each of DEMO_EXPERIMENTS, with the dataset's own preset."""
    out = []
    for name, dataset in DEMO_EXPERIMENTS:
        s = settings_for(dataset, train={**DEMO_RECIPE["train"], "device": device, "num_threads": threads},
                         probes=DEMO_RECIPE["probes"])
        out.append(ExperimentConfig(name=name, dataset=dataset, runs=DEMO_RECIPE["runs"], seeds=DEMO_RECIPE["seeds"],
                                    data_seeds=list(DEMO_RECIPE["data_seeds"]),
                                    keep_weights=DEMO_RECIPE["keep_weights"], **s))
    return out


def demo_jobs(*, device: str = "auto", threads: int = 0) -> list:
    """What building the demo runs, in order: each demo experiment, then its analyses (transfer
    matrix and input importance), so the shipped demo shows every page. The CLI's `demo` and the
    dashboard's "Build the demo" both run this list."""
    from saml_core.analyses_job import AnalysesSpec

    out = []
    for cfg in demo_specs(device=device, threads=threads):
        out += [cfg, AnalysesSpec(cfg.name, None)]
    return out
