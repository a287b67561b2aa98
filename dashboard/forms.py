"""The retrain form's request, validated before anything is launched (pure, unit-tested).

Its defaults are the settings the engine would use for the chosen dataset and preset
(`saml_core.experiments.settings_for`, the same function the CLI calls), and every value shown is
passed on explicitly: what the form shows is what trains."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dashboard import settings
from saml_core.config import ConfigError, PRESETS, check_name


def model_choices() -> dict[str, str]:
    """Every registered model: id -> label (methods and default baselines first)."""
    from saml_core.models import registry

    return {e.id: e.label for e in registry.entries()}


def default_models() -> list[str]:
    from saml_core.models import registry

    return registry.main_ids()


def default_dataset() -> str:
    from saml_core.data import registry

    return registry.default_name()


def dataset_choices() -> dict[str, str]:
    from saml_core.data import registry

    return {e.name: e.title for e in registry.entries()}


def needs_path(dataset: str) -> str:
    """What PATH the dataset needs ('' for built-in ones)."""
    from saml_core.data import registry

    for e in registry.entries():
        if e.name == dataset:
            return e.path_hint if e.takes_path else ""
    return ""


def data_path(text: str) -> Path:
    """A dataset path typed into the form, resolved (links followed); a relative one counts from
    the data folder (`settings.data_dir`)."""
    path = Path(text.strip()).expanduser()
    return (path if path.is_absolute() else settings.data_dir() / path).resolve()


def outside_data_dir(path: Path) -> bool:
    folder = settings.data_dir()
    return path != folder and folder not in path.parents


DEVICES = ("auto", "cpu", "cuda")
PRESET_NAMES = tuple(PRESETS)


@dataclass
class RetrainRequest:
    dataset: str = field(default_factory=default_dataset)
    dataset_path: str = ""  # schema file, folder, ... for datasets named NAME:PATH
    name: str = ""
    runs: list[str] = field(default_factory=default_models)
    preset: str = ""  # "" = the dataset's own
    seeds: int = 1
    data_seeds: int = 1
    device: str = "auto"
    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 0  # 0 = derived from the data
    patience: int = 0  # 0 = derived from the validation size
    d_g: int = 8
    d_s: int = 2
    heads: int = 4
    mlp: str = "256,128"

    @classmethod
    def defaults(cls, dataset: str, preset: str = "", **kw) -> "RetrainRequest":
        """The engine's settings for this dataset and preset, as the form shows them."""
        from saml_core.experiments import settings_for

        s = settings_for(dataset if not needs_path(dataset) else f"{dataset}:x", preset or None)
        m, t = s["model_config"], s["train_config"]
        shown = dict(dataset=dataset, preset=s["preset"], epochs=t.epochs, lr=t.lr, batch_size=t.batch_size,
                     patience=t.patience, d_g=m.d_g, d_s=m.d_s, heads=m.heads, mlp=",".join(str(x) for x in m.mlp))
        return cls(**{**shown, **kw})

    def dataset_arg(self) -> str:
        if not needs_path(self.dataset):
            return self.dataset
        # Absolute: the job runs from the project root, not from where the app was started.
        path = str(data_path(self.dataset_path)) if self.dataset_path.strip() else ""
        return f"{self.dataset}:{path}"

    def mlp_sizes(self) -> list[int]:
        return [int(p) for p in self.mlp.replace(" ", "").split(",") if p]

    def to_config(self):
        """The ExperimentConfig this request trains (raises ConfigError naming the bad value)."""
        from saml_core.experiments import ExperimentConfig, settings_for

        try:
            mlp = tuple(self.mlp_sizes())
        except ValueError:
            raise ConfigError(f"MLP layers: comma-separated sizes like 128,64, got {self.mlp!r}") from None
        s = settings_for(self.dataset_arg(), self.preset or None,
                         model={"d_g": self.d_g, "d_s": self.d_s, "heads": self.heads, "mlp": mlp},
                         train={"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                                "patience": self.patience, "device": self.device})
        return ExperimentConfig(name=self.name.strip(), runs=list(self.runs), seeds=self.seeds,
                                data_seeds=list(range(self.data_seeds)), dataset=self.dataset_arg(), **s)


def validate(req: RetrainRequest, existing_experiments: set[str], cuda_available: bool) -> list[str]:
    """Every problem with the request, in plain words; empty when it can be launched."""
    errors = []
    name = req.name.strip()
    try:
        check_name(name)
        if name in existing_experiments:
            errors.append(f"Experiment name: “{name}” already exists; choose another name.")
    except ConfigError:
        errors.append("Experiment name: use 1–64 letters, digits, '-', '_' or '.', starting with a letter or digit.")
    hint = needs_path(req.dataset)
    if req.dataset not in dataset_choices():
        errors.append(f"Dataset: unknown choice {req.dataset!r}.")
    elif hint:
        text = req.dataset_path.strip()
        if not text:
            errors.append(f"Dataset: give the path of the {hint}.")
        elif outside_data_dir(data_path(text)):  # said before existence: the form tells nothing of other files
            errors.append(f"Dataset: {text} is outside the data folder {settings.data_dir()}; put the data there, "
                          f"or start the dashboard with {settings.DATA_DIR_VAR} set to its folder.")
        elif not data_path(text).exists():
            errors.append(f"Dataset: {text} does not exist in the data folder {settings.data_dir()}.")
    if not req.runs:
        errors.append("Models: pick at least one model.")
    if req.device not in DEVICES:
        errors.append(f"Device: one of {', '.join(DEVICES)}.")
    elif req.device == "cuda" and not cuda_available:
        errors.append("Device: no CUDA GPU on this machine; choose auto or cpu.")
    if not errors:  # the engine's own checks of every value, in its own words
        try:
            req.to_config()
        except ConfigError as exc:
            errors.append(f"Settings: {exc}.")
    return errors


def cuda_available() -> bool:
    """Cheap check without importing torch in the app process (the job itself uses torch's check)."""
    import shutil

    return shutil.which("nvidia-smi") is not None
