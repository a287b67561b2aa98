"""The retrain form's request, validated before anything is launched (pure, unit-tested).

Its defaults are the settings the engine would use for the chosen dataset and preset
(`saml_core.presets.settings_for`, the same function the CLI calls), and every value shown is
passed on explicitly: what the form shows is what trains."""
from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from pathlib import Path

from dashboard import settings
from saml_core.config import PRESETS, ConfigError, ModelConfig, TrainConfig, check_name, settings_of


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


# The settings the form offers, declared once in their config dataclass (config.setting(form=...)):
# (section, field), model sizes first. "mlp" is held as text ("256,128").
SETTINGS = ([("model", f) for f in settings_of(ModelConfig, "form")]
            + [("train", f) for f in settings_of(TrainConfig, "form")])


def _shown(f, value):
    """A setting's value as the form holds it."""
    return ",".join(str(x) for x in value) if f.name == "mlp" else value


@dataclass
class _Request:
    """The form's own fields; RetrainRequest adds one per setting of SETTINGS."""

    dataset: str = field(default_factory=default_dataset)
    dataset_path: str = ""  # schema file, folder, ... for datasets named NAME:PATH
    name: str = ""
    runs: list[str] = field(default_factory=default_models)
    preset: str = ""  # "" = the dataset's own
    seeds: int = 1
    data_seeds: int = 1
    device: str = "auto"

    @classmethod
    def defaults(cls, dataset: str, preset: str = "", **kw):
        """The engine's settings for this dataset and preset, as the form shows them."""
        from saml_core.presets import settings_for

        s = settings_for(dataset if not needs_path(dataset) else f"{dataset}:x", preset or None)
        cfgs = {"model": s["model_config"], "train": s["train_config"]}
        shown = {f.name: _shown(f, getattr(cfgs[section], f.name)) for section, f in SETTINGS}
        return cls(**{"dataset": dataset, "preset": s["preset"], **shown, **kw})

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
        from saml_core.experiments import ExperimentConfig
        from saml_core.presets import settings_for

        given = {"model": {}, "train": {"device": self.device}}
        for section, f in SETTINGS:
            given[section][f.name] = getattr(self, f.name)
        try:
            given["model"]["mlp"] = tuple(self.mlp_sizes())
        except ValueError:
            raise ConfigError(f"MLP layers: comma-separated sizes like 128,64, got {self.mlp!r}") from None
        s = settings_for(self.dataset_arg(), self.preset or None, model=given["model"], train=given["train"])
        return ExperimentConfig(name=self.name.strip(), runs=list(self.runs), seeds=self.seeds,
                                data_seeds=list(range(self.data_seeds)), dataset=self.dataset_arg(), **s)


RetrainRequest = make_dataclass(
    "RetrainRequest", [(f.name, "str" if f.name == "mlp" else f.type, field(default=_shown(f, f.default)))
                       for _, f in SETTINGS],
    bases=(_Request,), namespace={"__module__": __name__})


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


def setting_widget_args(f, value) -> dict:
    """The Retrain form's widget for setting `f` (a config.setting field) holding `value`: label,
    range, step, format and help, all from the field."""
    m = f.metadata
    kw = {"label": m["label"], "value": value,
          "help": m["help"] + (f" ({m['used_by']} only)" if m["used_by"] else "")}
    if f.name == "mlp":  # typed as text: "256,128"
        return kw
    kw.update(min_value=m["lo"], max_value=m["hi"])
    if m["step"] is not None:
        kw["step"] = m["step"]
    if m["fmt"]:
        kw["format"] = m["fmt"]
    return kw


def cuda_available() -> bool:
    """Cheap check without importing torch in the app process (the job itself uses torch's check)."""
    import shutil

    return shutil.which("nvidia-smi") is not None
