"""A run's config: one model of the registry trained on one dataset with one seed. A RunConfig
written to config.json fully reproduces a run. Apart from `config.py` because it asks the model
registry (id, options, label), which itself imports `config`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from saml_core.config import ModelConfig, TrainConfig, MAX_SEED, build_dataclass, check_int
from saml_core.models import registry


@dataclass
class RunConfig:
    run_id: str
    model: str  # a model registry id (saml, bst, bst_individual, saml_no_gate, ...)
    seed: int = 0  # model seed: initial weights and batch order
    data_seed: int = 0  # dataset seed: simulated data / random split (fixed splits ignore it)
    experiment: str | None = None
    dataset: str = "synthetic-countries"
    dataset_options: dict = field(default_factory=dict)  # load_dataset options (without the seed)
    model_options: dict = field(default_factory=dict)  # the model's own options (registry entry)
    sweep: dict | None = None  # {"name": "emb", "value": 16} for a sensitivity-sweep run
    model_config: ModelConfig = field(default_factory=ModelConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    probe_size: int = 3000  # evaluation subset for probes (stratified by scenario)
    probe_hidden_all: int = 300  # subsample with every branch's hidden states
    # False (demo storage): no model.pt, and probes without hidden states (alpha, gates, predictions kept)
    keep_weights: bool = True
    # a tuned run: how its tuned settings were chosen (saml_core.tuning: grid, valid_auc, chosen,
    # trials_run_on_seed, ...); None = trained with the settings as given
    tuning: dict | None = None

    def __post_init__(self):
        registry.get(self.model)  # unknown model: a clear error
        self.model_options = registry.resolve_options(self.model, self.model_options)
        check_int("seed", self.seed, 0, MAX_SEED)
        check_int("data seed", self.data_seed, 0, MAX_SEED)
        check_int("probe_size", self.probe_size, 1, 1_000_000)
        check_int("probe_hidden_all", self.probe_hidden_all, 0, 1_000_000)

    @property
    def label(self) -> str:
        return registry.get(self.model).label

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model_config"] = self.model_config.to_dict()
        d["label"] = self.label
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["model_config"] = build_dataclass(ModelConfig, d.get("model_config", {}))
        kw["train_config"] = build_dataclass(TrainConfig, d.get("train_config", {}))
        return cls(**kw)
