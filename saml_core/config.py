"""Plain dataclass configs. A RunConfig written to config.json fully reproduces a run."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

MODELS = ("saml", "bst", "bst_individual")
VARIANTS = ("full", "no_gate", "no_aux", "no_gate_mut")
LABELS = {
    ("bst_individual", None): "BST-Individual",
    ("bst", None): "BST",
    ("saml", "full"): "SAML",
    ("saml", "no_gate"): "SAML w/o gate",
    ("saml", "no_aux"): "SAML w/o aux",
    ("saml", "no_gate_mut"): "SAML w/o gate&mut",
}


class ConfigError(ValueError):
    """An invalid configuration value; the message names the option."""


@dataclass
class ModelConfig:
    """Every size of SAML / BST. Defaults: the paper's industrial settings."""

    d_g: int = 8  # global embedding size per field
    d_s: int = 2  # scenario-specific embedding size per field
    heads: int = 4
    head_dim: int = 8  # attention inner size = heads * head_dim (ours: decoupled from d_g)
    ff_dim: int = 64  # transformer feed-forward size (PyTorch's default 2048 is far too slow)
    attn_readout: str = "target"  # "target": output at the target-item position; "target_mean": + masked mean
    mlp: tuple[int, ...] = (256, 128)  # auxiliary / branch / BST MLP hidden sizes
    dropout: float = 0.0
    dep_includes_global: bool = False  # e_dep also gets the global embeddings (spec option)
    mutual_layers: tuple[int, ...] | None = None  # hidden layers with a mutual unit (None = all)
    aux_weight: float = 1.0  # weight of L_aux
    sparse_embeddings: bool = True  # sparse embedding gradients + lazy (sparse) Adam on the tables
    # (ours) "shared": the K branches and their gates start from one random draw, so the cosine
    # between branches (alpha) measures what training on each scenario made different rather
    # than initialisation noise; "independent": one draw per branch
    branch_init: str = "shared"

    def __post_init__(self):
        self.mlp = tuple(int(x) for x in self.mlp)
        if self.mutual_layers is not None:
            self.mutual_layers = tuple(int(x) for x in self.mutual_layers)
        for name in ("d_g", "heads", "head_dim", "ff_dim"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_s < 1:
            raise ConfigError(f"d_s must be >= 1, got {self.d_s}")
        if not self.mlp or min(self.mlp) < 1:
            raise ConfigError(f"mlp must be a non-empty list of positive sizes, got {self.mlp}")
        if self.branch_init not in ("shared", "independent"):
            raise ConfigError(f"branch_init must be 'shared' or 'independent', got {self.branch_init!r}")
        if self.attn_readout not in ("target", "target_mean"):
            raise ConfigError(f"attn_readout must be 'target' or 'target_mean', got {self.attn_readout!r}")
        if self.mutual_layers is not None:
            bad = [i for i in self.mutual_layers if not 0 <= i < len(self.mlp)]
            if bad:
                raise ConfigError(f"mutual_layers {bad} out of range 0..{len(self.mlp) - 1}")


@dataclass
class TrainConfig:
    lr: float = 1e-3
    batch_size: int = 1024
    epochs: int = 10  # upper bound; early stopping ends most runs after 2-3 epochs
    # epochs without a better validation AUC before stopping. 1: ID-embedding CTR models
    # typically peak after one or two epochs and then overfit (seen on every dataset here)
    patience: int = 1
    weight_decay: float = 0.0
    device: str = "auto"  # auto | cpu | cuda
    num_threads: int = 0  # torch CPU threads; 0 = leave torch's default
    eval_batch_size: int = 8192
    max_train_batches: int = 0  # per epoch, 0 = all (used by --quick tests)
    # storage of model.pt; "float16" halves it. The trained weights are rounded to it before the
    # test evaluation, so metrics.json describes exactly the weights on disk
    weights_dtype: str = "float32"

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.patience < 1:
            raise ConfigError(f"patience must be >= 1, got {self.patience}")
        if self.weights_dtype not in ("float32", "float16"):
            raise ConfigError(f"weights_dtype must be float32 or float16, got {self.weights_dtype!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")


@dataclass
class RunConfig:
    run_id: str
    model: str  # saml | bst | bst_individual
    variant: str | None  # SAML variant, None for BST models
    seed: int = 0
    experiment: str | None = None
    dataset: str = "synthetic-countries"
    dataset_options: dict = field(default_factory=dict)  # kwargs of load_dataset (seed, size, seq_len)
    model_config: ModelConfig = field(default_factory=ModelConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    probe_size: int = 3000  # evaluation subset for probes (stratified by scenario)
    probe_hidden_all: int = 300  # subsample with every branch's hidden states

    def __post_init__(self):
        if self.model not in MODELS:
            raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.model == "saml":
            if self.variant is None:
                self.variant = "full"
            if self.variant not in VARIANTS:
                raise ConfigError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        elif self.variant is not None:
            raise ConfigError(f"--variant applies to saml only, got {self.variant!r} for {self.model}")

    @property
    def label(self) -> str:
        return LABELS[(self.model, self.variant)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model_config"]["mlp"] = list(self.model_config.mlp)
        if self.model_config.mutual_layers is not None:
            d["model_config"]["mutual_layers"] = list(self.model_config.mutual_layers)
        d["label"] = self.label
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["model_config"] = _build(ModelConfig, d.get("model_config", {}))
        kw["train_config"] = _build(TrainConfig, d.get("train_config", {}))
        return cls(**kw)


def _build(cls, d: dict):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    return cls(**d)


def run_id_for(model: str, variant: str | None, seed: int, suffix: str = "") -> str:
    base = model if variant is None else f"{model}-{variant}"
    return f"{base}{suffix}-s{seed}"
