"""The retrain form's request, validated before anything is launched (pure, unit-tested)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from saml_core import jobs
from saml_core.config import ConfigError, ModelConfig, TrainConfig

MODEL_DEFAULTS = ModelConfig()
TRAIN_DEFAULTS = TrainConfig()

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODELS = {"bst_individual": "BST-Individual", "bst": "BST", "saml:full": "SAML"}
ABLATIONS = {"saml:no_gate": "SAML w/o gate", "saml:no_aux": "SAML w/o aux",
             "saml:no_gate_mut": "SAML w/o gate&mut"}
DATASETS = {"synthetic-countries": "Simulated countries (built in)",
            "taobao-sample": "Taobao ad clicks, real sample (built in)",
            "csv": "Your own log (CSV/Parquet + schema file)",
            "taobao-raw": "Raw Taobao tables (folder)"}
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class RetrainRequest:
    dataset: str = "synthetic-countries"
    dataset_path: str = ""  # schema file for csv, folder for taobao-raw
    name: str = ""
    runs: list[str] = field(default_factory=lambda: ["bst_individual", "bst", "saml:full"])
    quick: bool = False
    seeds: int = 1
    device: str = "auto"
    # Settings default to the engine's own defaults (and to its small ones with --quick);
    # only values the user changed are passed on the command line.
    epochs: int = TRAIN_DEFAULTS.epochs
    lr: float = TRAIN_DEFAULTS.lr
    batch_size: int = TRAIN_DEFAULTS.batch_size
    d_g: int = MODEL_DEFAULTS.d_g
    d_s: int = MODEL_DEFAULTS.d_s
    heads: int = MODEL_DEFAULTS.heads
    mlp: str = ",".join(str(m) for m in MODEL_DEFAULTS.mlp)

    def dataset_arg(self) -> str:
        # Absolute: the job runs from the project root, not from where the app was started.
        path = str(Path(self.dataset_path.strip()).expanduser().resolve()) if self.dataset_path.strip() else ""
        if self.dataset == "csv":
            return f"csv:{path}"
        if self.dataset == "taobao-raw":
            return f"taobao-raw:{path}"
        return self.dataset

    def mlp_sizes(self) -> list[int]:
        return [int(p) for p in self.mlp.replace(" ", "").split(",") if p]

    def changed(self) -> dict:
        """Settings that differ from the engine defaults (what goes on the command line)."""
        base = RetrainRequest()
        keys = ("epochs", "lr", "batch_size", "d_g", "d_s", "heads")
        out = {k: getattr(self, k) for k in keys if getattr(self, k) != getattr(base, k)}
        if self.mlp_sizes() != base.mlp_sizes():
            out["mlp"] = self.mlp_sizes()
        return out

    def argv(self, artifacts: Path) -> list[str]:
        return jobs.experiment_argv(
            self.dataset_arg(), self.name.strip(), artifacts=artifacts, runs=list(self.runs),
            quick=self.quick, seeds=self.seeds if self.seeds != 1 else None,
            device=self.device if self.device != "auto" else None, **self.changed())


def validate(req: RetrainRequest, existing_experiments: set[str], cuda_available: bool) -> list[str]:
    """Every problem with the request, in plain words; empty when it can be launched."""
    errors = []
    name = req.name.strip()
    if not NAME_RE.match(name):
        errors.append("Experiment name: use 1–64 letters, digits, '-', '_' or '.', starting with a letter or digit.")
    elif name in existing_experiments:
        errors.append(f"Experiment name: “{name}” already exists; choose another name.")
    if req.dataset not in DATASETS:
        errors.append(f"Dataset: unknown choice {req.dataset!r}.")
    elif req.dataset in ("csv", "taobao-raw"):
        path = Path(req.dataset_path.strip()).expanduser()
        if not req.dataset_path.strip():
            errors.append("Dataset: give the path of the schema file (own log) or of the raw Taobao folder.")
        elif req.dataset == "csv" and not path.is_file():
            errors.append(f"Dataset: schema file {path} does not exist.")
        elif req.dataset == "taobao-raw" and not path.is_dir():
            errors.append(f"Dataset: folder {path} does not exist.")
    if not req.runs:
        errors.append("Models: pick at least one model.")
    unknown = [r for r in req.runs if r not in MODELS and r not in ABLATIONS]
    if unknown:
        errors.append(f"Models: unknown {', '.join(unknown)}.")
    checks = [("Seeds", req.seeds, 1, 10), ("Epochs", req.epochs, 1, 200), ("Batch size", req.batch_size, 8, 65536),
              ("Global embedding size d_g", req.d_g, 1, 256), ("Scenario embedding size d_s", req.d_s, 1, 256),
              ("Attention heads", req.heads, 1, 32)]
    for label, value, lo, hi in checks:
        if not isinstance(value, int) or not lo <= value <= hi:
            errors.append(f"{label}: must be a whole number from {lo} to {hi} (got {value}).")
    if not (0 < req.lr <= 1):
        errors.append(f"Learning rate: must be above 0 and at most 1 (got {req.lr}).")
    try:
        sizes = req.mlp_sizes()
        if not sizes or len(sizes) > 6 or any(s < 1 or s > 4096 for s in sizes):
            raise ValueError
    except ValueError:
        errors.append(f"MLP layers: comma-separated sizes like 128,64 (1–6 layers of 1–4096 units); got {req.mlp!r}.")
    if not errors:  # the engine's own checks on the sizes it will build
        try:
            ModelConfig(d_g=req.d_g, d_s=req.d_s, heads=req.heads, mlp=tuple(req.mlp_sizes()))
            TrainConfig(lr=req.lr, batch_size=req.batch_size, epochs=req.epochs)
        except ConfigError as exc:
            errors.append(f"Settings: {exc}.")
    if req.device not in DEVICES:
        errors.append(f"Device: one of {', '.join(DEVICES)}.")
    elif req.device == "cuda" and not cuda_available:
        errors.append("Device: no CUDA GPU on this machine; choose auto or cpu.")
    return errors


def cuda_available() -> bool:
    """Cheap check without importing torch in the app process (the job itself uses torch's check)."""
    import shutil

    return shutil.which("nvidia-smi") is not None
