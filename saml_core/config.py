"""Plain dataclass configs: the sizes every model shares (ModelConfig), how they are trained
(TrainConfig), their bounds and checks. The run's own config, which names a model of the
registry, is `run_config.RunConfig`; this module imports no other module of the project, so
that everything (the model registry included) may import it.

Training presets live here too (`PRESETS`): each dataset names its default preset in the
dataset registry, the CLI and the retrain form start from it, and options override it.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields


class ConfigError(ValueError):
    """An invalid configuration value; the message names the option."""


def read_spec_file(path, from_dict, what: str):
    """A JSON specification file validated by `from_dict` (an experiment's or an analyses job's);
    one ConfigError naming the file for an unreadable file or an invalid value."""
    import json
    from pathlib import Path

    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc})") from None
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# Bounds of every size a user can ask for: beyond them a run allocates GBs or takes days.
MAX_SEEDS = 100
MAX_SEED = 2**31 - 1
MAX_EMBEDDING = 512
MAX_HEADS = 64
MAX_WIDTH = 8192
MAX_DEPTH = 8
MAX_BATCH = 1 << 20
MAX_EPOCHS = 1000
MAX_THREADS = 256
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name, what: str = "experiment name") -> str:
    """The one validator of experiment names (CLI, API and the retrain form)."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        shown = name if not isinstance(name, str) or len(name) <= 40 else name[:40] + "..."
        raise ConfigError(f"{what} {shown!r}: use 1-64 letters, digits, '-', '_' or '.', "
                          "starting with a letter or digit")
    return name


def check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return value


def check_float(name: str, value, lo: float, hi: float, lo_open: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bound = "above" if lo_open else "at least"
        raise ConfigError(f"{name} must be a finite number {bound} {lo} and at most {hi}, got {value!r}")
    return float(value)


def setting(default, *, help: str, lo=None, hi=None, lo_open: bool = True, choices: tuple = (), used_by: str = "",
            cli: bool = False, form: str = "", label: str = "", name: str = "", step=None, fmt: str = ""):
    """A config field with everything said about it in one place, read by everything that shows,
    takes or checks it:
    - `help` (the CLI flag's and the Retrain form's), `used_by` (which models use it; "" = every
      model), `label` (the form's widget label; default: the help);
    - `lo`/`hi` (`lo_open`: the lower bound excluded; floats only): checked by `check_settings`
      (the message names `name`, default the field's), the form's widget range; `choices`;
    - `cli`: a `--<field-name>` flag of `train`/`experiment` (not given = the preset's value);
      `form`: the Retrain form offers it (the widget key's stem), with `step` and `fmt`."""
    return field(default=default, metadata={
        "help": help, "used_by": used_by, "label": label or help, "lo": lo, "hi": hi, "lo_open": lo_open,
        "choices": tuple(choices), "cli": cli, "form": form, "name": name, "step": step, "fmt": fmt})


def check_settings(cfg) -> None:
    """Every bounded setting of a config dataclass within its bounds (ConfigError naming it)."""
    for f in fields(cfg):
        m = f.metadata
        if m.get("lo") is None:
            continue
        if f.type == "float":
            check_float(m["name"] or f.name, getattr(cfg, f.name), m["lo"], m["hi"], lo_open=m["lo_open"])
        else:
            check_int(m["name"] or f.name, getattr(cfg, f.name), m["lo"], m["hi"])


def choices(cls, name: str) -> tuple:
    """The choices declared for setting `name` of config dataclass `cls`."""
    return next(f.metadata["choices"] for f in fields(cls) if f.name == name)


def settings_of(cls, what: str) -> list:
    """The fields of config dataclass `cls` that the CLI ("cli") or the Retrain form ("form") offers."""
    return [f for f in fields(cls) if f.metadata.get(what)]


SAML_ONLY = "SAML and its ablations"


@dataclass
class ModelConfig:
    """Sizes shared by every model of an experiment (same features, same sequence block).
    Defaults: the paper's industrial settings."""

    d_g: int = setting(8, lo=1, hi=MAX_EMBEDDING, help="global embedding size per field", cli=True, form="dg",
                       label="Global embedding size d_g")
    d_s: int = setting(2, lo=1, hi=MAX_EMBEDDING, help="scenario-specific embedding size per field",
                       used_by=SAML_ONLY, cli=True, form="ds", label="Scenario embedding size d_s")
    heads: int = setting(4, lo=1, hi=MAX_HEADS, help="attention heads over the behaviour sequence", cli=True,
                         form="heads", label="Attention heads")
    # attention inner size = heads * head_dim (ours: decoupled from d_g)
    head_dim: int = setting(8, lo=1, hi=MAX_EMBEDDING, help="attention size per head")
    # PyTorch's default 2048 is far too slow
    ff_dim: int = setting(64, lo=1, hi=MAX_WIDTH, help="transformer feed-forward size")
    attn_readout: str = setting("target", choices=("target", "target_mean"),
                                help="target: output at the target-item position; target_mean: + masked mean")
    mlp: tuple[int, ...] = setting((256, 128), help="hidden sizes, e.g. 256,128", cli=True, form="mlp",
                                   label="MLP layers (sizes = depth)")  # auxiliary / branch / BST MLP
    dropout: float = setting(0.0, lo=0.0, hi=0.9, lo_open=False, help="dropout of the MLPs", cli=True)
    dep_includes_global: bool = False  # e_dep also gets the global embeddings (spec option)
    mutual_layers: tuple[int, ...] | None = None  # hidden layers with a mutual unit (None = all)
    aux_weight: float = setting(1.0, lo=0.0, hi=100.0, lo_open=False, help="weight of L_aux", used_by=SAML_ONLY)
    sparse_embeddings: bool = True  # sparse embedding gradients + lazy (sparse) Adam on the tables
    # (ours) "shared": the K branches and their gates start from one random draw, so the cosine
    # between branches (alpha) measures what training on each scenario made different rather
    # than initialisation noise; "independent": one draw per branch
    branch_init: str = setting("shared", choices=("shared", "independent"), used_by=SAML_ONLY, cli=True,
                               help="SAML branches start from one random draw (shared, default) or one each")

    def __post_init__(self):
        self.mlp = tuple(self.mlp) if isinstance(self.mlp, (list, tuple)) else self.mlp
        if not isinstance(self.mlp, tuple) or not 1 <= len(self.mlp) <= MAX_DEPTH:
            raise ConfigError(f"mlp must be a list of 1 to {MAX_DEPTH} layer sizes, got {self.mlp!r}")
        for i, width in enumerate(self.mlp):
            check_int(f"mlp layer {i + 1} size", width, 1, MAX_WIDTH)
        if self.mutual_layers is not None:
            self.mutual_layers = tuple(self.mutual_layers)
            bad = [i for i in self.mutual_layers if not isinstance(i, int) or not 0 <= i < len(self.mlp)]
            if bad:
                raise ConfigError(f"mutual_layers {bad} out of range 0..{len(self.mlp) - 1}")
        check_settings(self)
        if self.branch_init not in choices(ModelConfig, "branch_init"):
            raise ConfigError(f"branch_init must be 'shared' or 'independent', got {self.branch_init!r}")
        if self.attn_readout not in choices(ModelConfig, "attn_readout"):
            raise ConfigError(f"attn_readout must be 'target' or 'target_mean', got {self.attn_readout!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mlp"] = list(self.mlp)
        if self.mutual_layers is not None:
            d["mutual_layers"] = list(self.mutual_layers)
        return d


@dataclass
class TrainConfig:
    """How every model of an experiment is trained. `batch_size`, `patience` and `min_epochs` of 0
    mean "derived from the data" (`resolve_for_data`): an experiment resolves them once and
    records the numbers it used."""

    lr: float = setting(1e-3, lo=0.0, hi=10.0, help="learning rate (Adam)", cli=True, form="lr", label="Learning rate",
                        step=1e-4, fmt="%.5f")
    # 0: the preset's batch, shrunk so that an epoch has >= MIN_STEPS steps
    batch_size: int = setting(0, lo=0, hi=MAX_BATCH, help="0 = derived from the data", cli=True, form="bs",
                              label="Batch size (0 = from the data)", step=64)
    # upper bound; early stopping ends most runs long before
    epochs: int = setting(20, lo=1, hi=MAX_EPOCHS, help="epoch cap", cli=True, form="epochs", label="Epochs (at most)")
    # epochs without a better validation AUC before stopping
    patience: int = setting(0, lo=0, hi=MAX_EPOCHS, help="0 = derived from the validation size", cli=True, form="pat",
                            label="Patience (0 = from validation size)")
    min_epochs: int = setting(0, lo=0, hi=MAX_EPOCHS, help="0 = derived from the validation size", cli=True)
    # the preset's batch size, the ceiling of the derived one
    max_batch_size: int = setting(1024, lo=1, hi=MAX_BATCH, help="ceiling of the derived batch size")
    weight_decay: float = setting(0.0, lo=0.0, hi=1.0, lo_open=False, help="L2 of the dense parameters", cli=True)
    embedding_lr_scale: float = setting(1.0, lo=0.0, hi=100.0, cli=True,
                                        help="learning rate of the embedding tables relative to --lr")
    # decoupled decay of the embedding rows a step touches (optim.py)
    embedding_decay: float = setting(0.0, lo=0.0, hi=1000.0, lo_open=False, cli=True,
                                     help="decoupled weight decay of the embedding rows each step touches")
    device: str = setting("auto", choices=("auto", "cpu", "cuda"), help="auto | cpu | cuda")
    num_threads: int = setting(0, lo=0, hi=MAX_THREADS, name="threads",
                               help="torch CPU threads; 0 = leave torch's default")
    eval_batch_size: int = setting(8192, lo=1, hi=MAX_BATCH, help="rows per prediction batch")
    # per epoch, 0 = all (used by --quick tests)
    max_train_batches: int = setting(0, lo=0, hi=MAX_BATCH, help="training batches per epoch (0 = all)")
    # storage of model.pt; "float16" halves it. The trained weights are rounded to it before the
    # test evaluation, so metrics.json describes exactly the weights on disk
    weights_dtype: str = setting("float32", choices=("float32", "float16"), cli=True,
                                 help="storage of model.pt (float16: half the size; metrics are of the stored weights)")

    def __post_init__(self):
        check_settings(self)
        if self.weights_dtype not in choices(TrainConfig, "weights_dtype"):
            raise ConfigError(f"weights_dtype must be float32 or float16, got {self.weights_dtype!r}")
        if self.device not in choices(TrainConfig, "device"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")

    @property
    def resolved(self) -> bool:
        return self.batch_size > 0 and self.patience > 0 and self.min_epochs > 0


# Derived training settings (fair comparisons on any size of log) ------------------------------
MIN_STEPS = 50  # an epoch has at least this many steps, or early stopping sees too few updates


def derived_batch_size(n_train: int, ceiling: int) -> int:
    """The ceiling, halved until an epoch has >= MIN_STEPS steps (power of two, at least 16)."""
    batch = ceiling
    while batch > 16 and n_train / batch < MIN_STEPS:
        batch //= 2
    return max(batch, 1)


def derived_stopping(valid_positives: int) -> tuple[int, int]:
    """(patience, min_epochs) for a validation set with this many positives. AUC measured on few
    positives jumps by chance from epoch to epoch (its standard error is ~0.3/sqrt(positives)):
    on ~50 clicks patience 1 stopped small countries' models after their first epoch."""
    if valid_positives >= 5000:
        return 1, 1
    if valid_positives >= 1000:
        return 2, 2
    if valid_positives >= 200:
        return 3, 3
    return 4, 4


def resolve_for_data(tcfg: TrainConfig, n_train: int, valid_positives: int) -> TrainConfig:
    """A copy of `tcfg` with the data-derived settings (0 = derive) filled in."""
    from dataclasses import replace

    patience, min_epochs = derived_stopping(valid_positives)
    return replace(
        tcfg,
        batch_size=tcfg.batch_size or derived_batch_size(n_train, tcfg.max_batch_size),
        patience=tcfg.patience or patience,
        min_epochs=min(tcfg.min_epochs or min_epochs, tcfg.epochs),
    )


# Presets --------------------------------------------------------------------------------------
# "industrial": the paper's AliExpress settings (d_g 8, d_s 2, MLP 256-128, batch 1024).
# "public": the paper's Taobao settings (d_g 12, d_s 4, MLP 128-64, lr 5e-4, batch 128).
# "quick": tiny sizes for tests and smoke runs (results are not meaningful).
PRESETS = {
    "industrial": {"model": {}, "train": {"max_batch_size": 1024}, "probes": {}},
    "public": {"model": {"d_g": 12, "d_s": 4, "mlp": (128, 64)}, "train": {"lr": 5e-4, "max_batch_size": 128},
               "probes": {}},
    # the published settings of the public benchmarks we show anchors for (datasets/PUBLIC.md);
    # d_s, the SAML-only scenario embedding, keeps the paper's public ratio d_g : d_s = 3 : 1
    "aliexpress-published": {"model": {"d_g": 128, "d_s": 32, "mlp": (512, 256), "dropout": 0.2},
                             "train": {"lr": 1e-3, "weight_decay": 1e-6, "max_batch_size": 2048, "epochs": 50},
                             "probes": {}},
    "aliccp-published": {"model": {"d_g": 16, "d_s": 4, "mlp": (256, 128, 64)},
                         "train": {"lr": 1e-3, "weight_decay": 1e-5, "max_batch_size": 4096}, "probes": {}},
    # Scenario-Wise-Rec's MovieLens script: embeddings of 16, batch 4096 (derived down to >= 50 steps
    # an epoch: 1024 on ML-100k), Adam lr 1e-3 with weight decay 1e-5, towers up to 128-64-32
    "movielens-published": {"model": {"d_g": 16, "d_s": 4, "mlp": (128, 64, 32)},
                            "train": {"lr": 1e-3, "weight_decay": 1e-5, "max_batch_size": 4096, "epochs": 50},
                            "probes": {}},
    # "small_data": the dataset's `quick_options` apply too (the simulator's small size)
    "quick": {"model": {"mlp": (32, 16)}, "train": {"epochs": 2, "patience": 1, "min_epochs": 1,
                                                    "batch_size": 512, "max_batch_size": 512},
              "probes": {"probe_size": 400, "probe_hidden_all": 60}, "small_data": True},
}


# Fair training (`experiment --tune`, saml_core/tuning.py): the grid every model is trained over
# on the first data seed and model seed before its seeds are trained with the setting of the best
# validation AUC. Learning rate x the decoupled decay of the embedding rows a step touches
# (optim.py): the two settings FuxiCTR's tuner configurations vary most (learning_rate,
# embedding_regularizer) and the two that act on the id embeddings, where these models overfit
# (docs/ENGINE.md). Decay 10 (1 % of a row per touch at lr 1e-3) never helped where measured (the
# simulator; ML-100k, where it cost SAML 0.023 validation AUC), so the grid stops at 1. A model
# whose own hyper-parameters are something else declares a grid of the same size in its registry
# entry (`ModelEntry.tune_grid`).
TUNE_GRID = {"train_config": {"lr": (1e-3, 3e-4, 1e-4), "embedding_decay": (0.0, 0.1, 1.0)}}


TUNE_SECTIONS = ("train_config", "model_options")


def grid_size(spec: dict) -> int:
    n = 1
    for settings in spec.values():
        for values in settings.values():
            n *= len(values)
    return n


def check_grid(model_id: str, spec: dict, options: dict) -> None:
    """A model's own tuning grid (`ModelEntry.tune_grid`): known sections and settings, and the
    budget of TUNE_GRID. Here, beside TUNE_GRID, so that the model registry checks an entry
    without importing the tuner."""
    train_fields = {f.name for f in fields(TrainConfig)}
    for section, settings in spec.items():
        known = train_fields if section == "train_config" else set(options) if section == "model_options" else None
        if known is None:
            raise ValueError(f"model {model_id!r}: tune_grid section {section!r} is not one of {TUNE_SECTIONS}")
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"model {model_id!r}: tune_grid has unknown {section} setting(s) {', '.join(unknown)}")
        if not all(isinstance(v, tuple) and v for v in settings.values()):
            raise ValueError(f"model {model_id!r}: every tune_grid setting needs a non-empty tuple of values")
    budget = grid_size(TUNE_GRID)
    if grid_size(spec) != budget:
        raise ValueError(f"model {model_id!r}: tune_grid has {grid_size(spec)} points, the common budget is "
                         f"{budget} (config.TUNE_GRID)")


def preset(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def build_dataclass(cls, d: dict):
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__} must be a mapping of options, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    try:
        return cls(**d)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def run_id_for(model: str, seed: int, data_seed: int = 0, sweep: dict | None = None) -> str:
    """saml-d0-s0, bst-emb16-d1-s2, ..."""
    suffix = f"-{sweep['name']}{sweep['value']}" if sweep else ""
    return f"{model}{suffix}-d{data_seed}-s{seed}"
