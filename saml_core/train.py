"""One trainer for every model: Adam, early stopping on validation AUC, seeds, device/AMP,
progress (tqdm + callback + status file), checkpoint/resume after a kill, graceful cancel.

`fit` trains one module on one (train, valid) pair; `train_run` turns a RunConfig into a
finished run directory (BST-Individual = K `fit` calls, one per scenario's own data).
"""
from __future__ import annotations

import copy
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from saml_core import artifacts as art
from saml_core import evaluate as ev
from saml_core.config import ConfigError, RunConfig, TrainConfig
from saml_core.data.types import EncodedSplit, MultiScenarioData
from saml_core.models import build_model
from saml_core.optim import ModelAdam
from saml_core.runtime import resolve_device, setup_cpu

ProgressFn = Callable[[dict], None]


class Cancelled(Exception):
    """Training stopped on request (SIGTERM); finished epochs are checkpointed."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class FitResult:
    history: list[dict]
    best_epoch: int
    best_valid_auc: float
    epochs_run: int
    seconds: float
    resumed_from: int = 0
    extra: dict = field(default_factory=dict)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def predict(model, split: EncodedSplit, device: torch.device, batch_size: int = 8192) -> np.ndarray:
    """Click probabilities for every row of `split` (float32 numpy, split order)."""
    model.eval()
    out = []
    for start in range(0, len(split), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(split)), device=split.label.device)
        b = split.take(idx).to(device)
        with _autocast(device):
            logit = model(b)["logit"]
        out.append(torch.sigmoid(logit.float()).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def fit(model, train: EncodedSplit, valid: EncodedSplit, tcfg: TrainConfig, *, seed: int, device: torch.device,
        checkpoint: Path | None = None, progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None, desc: str = "train") -> FitResult:
    """Train `model` in place; on return it holds the best-validation-AUC weights.

    After every finished epoch the full state (weights, optimizer, epoch, RNG, history, best
    weights) goes to `checkpoint` atomically; if it exists at start, training resumes there.
    Batches of epoch e are a permutation drawn from seed and e alone, so a resumed run sees
    the same batches as an uninterrupted one."""
    seed_everything(seed)
    model.to(device)
    if hasattr(model, "context_dtype"):  # forward-only all-branch pass of SAML: bf16 on GPU
        model.context_dtype = torch.bfloat16 if device.type == "cuda" else None
    opt = ModelAdam(model, tcfg.lr, tcfg.weight_decay, fused=device.type == "cuda")
    history: list[dict] = []
    best_auc, best_epoch, bad, start_epoch = -1.0, 0, 0, 0
    best_state = None
    if checkpoint is not None and checkpoint.exists():
        ck = art.load_torch(checkpoint, map_location="cpu")
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            history, start_epoch = list(ck["history"]), int(ck["epoch"])
            best_auc, best_epoch, bad = float(ck["best_auc"]), int(ck["best_epoch"]), int(ck["bad_epochs"])
            best_state = ck["best_state"]
            torch.set_rng_state(ck["rng_torch"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise art.ArtifactError(checkpoint, f"checkpoint does not fit this run ({exc})") from None
        model.to(device)
    resumed_from = start_epoch
    train = train.to(device)
    n = len(train)
    if n == 0:  # e.g. a BST-Individual scenario without train rows: nothing to learn
        return FitResult(history=history, best_epoch=best_epoch, best_valid_auc=best_auc, epochs_run=0,
                         seconds=0.0, resumed_from=resumed_from)
    bs = tcfg.batch_size
    steps = max(1, -(-n // bs))
    if tcfg.max_train_batches:
        steps = min(steps, tcfg.max_train_batches)
    t_start = time.perf_counter()
    done_steps, total_steps = 0, steps * (tcfg.epochs - start_epoch)
    for epoch in range(start_epoch, tcfg.epochs):
        if bad >= tcfg.patience:
            break
        model.train()
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        perm = torch.randperm(n, generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        bar = tqdm(range(steps), desc=f"{desc} epoch {epoch + 1}/{tcfg.epochs}", leave=False, disable=None)
        for step in bar:
            if should_stop is not None and should_stop():
                bar.close()
                raise Cancelled(f"cancelled during epoch {epoch + 1}")
            b = train.take(perm[step * bs:(step + 1) * bs])
            with _autocast(device):
                out = model(b)
                loss = model.loss(out, b.label)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            done_steps += 1
            if progress is not None and (step % 20 == 0 or step == steps - 1):
                elapsed = time.perf_counter() - t_start
                lv = float(loss.detach())
                bar.set_postfix(loss=f"{lv:.4f}")
                progress({"epoch": epoch + 1, "epochs": tcfg.epochs, "step": step + 1, "steps": steps,
                          "loss": lv, "eta_seconds": elapsed / done_steps * (total_steps - done_steps)})
        bar.close()
        train_loss = float(loss_sum) / steps
        pred = predict(model, valid, device, tcfg.eval_batch_size)
        y = valid.label.cpu().numpy()
        vauc = ev.auc(y, pred) if len(y) else float("nan")
        row = {"epoch": epoch + 1, "train_loss": train_loss, "valid_auc": vauc,
               "valid_logloss": ev.logloss(y, pred) if len(y) else None,
               "seconds": time.perf_counter() - t0}
        history.append(row)
        if not np.isfinite(vauc) or vauc > best_auc:  # NaN AUC (one class): keep the latest
            best_auc, best_epoch, bad = (vauc if np.isfinite(vauc) else best_auc), epoch + 1, 0
            best_state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        if checkpoint is not None:
            art.save_torch(checkpoint, {
                "schema_version": art.SCHEMA_VERSION, "epoch": epoch + 1, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "history": history, "best_auc": best_auc,
                "best_epoch": best_epoch, "bad_epochs": bad, "best_state": best_state,
                "rng_torch": torch.get_rng_state(),
            })
        if progress is not None:
            progress({"epoch": epoch + 1, "epochs": tcfg.epochs, "step": steps, "steps": steps,
                      "loss": train_loss, "valid_auc": vauc, "eta_seconds": None, "epoch_finished": True})
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(history=history, best_epoch=best_epoch, best_valid_auc=best_auc,
                     epochs_run=len(history), seconds=time.perf_counter() - t_start, resumed_from=resumed_from)


def _subset(split: EncodedSplit, k: int) -> EncodedSplit:
    return split.take(torch.nonzero(split.scenario == k).squeeze(1))


def train_run(cfg: RunConfig, data: MultiScenarioData, run_dir: Path, *, progress: ProgressFn | None = None,
              should_stop: Callable[[], bool] | None = None, probe_index: np.ndarray | None = None) -> dict:
    """Train (or resume) one run and write its artifacts; returns metrics.json's content."""
    from saml_core.probes import compute_probes

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tcfg = cfg.train_config
    device = resolve_device(tcfg.device)
    if device.type == "cpu":
        setup_cpu(tcfg.num_threads)
    art.write_json(run_dir / "config.json", {**cfg.to_dict(), "feature_spec": data.spec.to_dict()})
    seed_everything(cfg.seed)
    model = build_model(cfg.model, cfg.variant, data.spec, cfg.model_config)
    t0 = time.perf_counter()
    if cfg.model == "bst_individual":
        histories, best = {}, {}
        for k, name in enumerate(data.spec.scenario_names):
            sub_train, sub_valid = _subset(data.train, k), _subset(data.valid, k)

            def sub_progress(ev_, k=k, name=name):
                if progress is not None:
                    progress({**ev_, "submodel": name, "submodel_index": k + 1,
                              "n_submodels": data.spec.num_scenarios})

            res = fit(model.models[k], sub_train, sub_valid, tcfg, seed=cfg.seed * 1000 + k, device=device,
                      checkpoint=run_dir / "submodels" / _safe(name) / "checkpoint.pt",
                      progress=sub_progress, should_stop=should_stop, desc=f"{cfg.run_id}[{name}]")
            histories[name], best[name] = res.history, res.best_epoch
        history = _merge_histories(histories)
        best_epoch, epochs_run = max(best.values()), max(len(h) for h in histories.values())
        extra = {"best_epoch_per_scenario": best}
    else:
        res = fit(model, data.train, data.valid, tcfg, seed=cfg.seed, device=device,
                  checkpoint=run_dir / "checkpoint.pt", progress=progress, should_stop=should_stop,
                  desc=cfg.run_id)
        history, best_epoch, epochs_run, extra = res.history, res.best_epoch, res.epochs_run, {}
    seconds = time.perf_counter() - t0
    art.write_json(run_dir / "history.json", {"epochs": history, **({"per_scenario": histories}
                                                                   if cfg.model == "bst_individual" else {})})
    store_dtype = getattr(torch, tcfg.weights_dtype)
    if store_dtype != torch.float32:
        round_to_dtype(model, store_dtype)
    art.save_model(run_dir / "model.pt", model, dtype=store_dtype)
    metrics = evaluate_model(model, data, device, tcfg.eval_batch_size, run_dir=run_dir)
    metrics.update({"best_epoch": best_epoch, "epochs_run": epochs_run, "train_seconds": seconds,
                    "device": device.type, **extra})
    if probe_index is not None and getattr(model, "use_branches", False):
        probes = compute_probes(model, data.test, probe_index, device, cfg.probe_hidden_all)
        art.save_npz(run_dir / "probes.npz", probes)
        metrics.update(probe_summaries(probes, data))
    art.write_json(run_dir / "metrics.json", metrics)
    # finished: model.pt + metrics.json are the run; resume state is no longer needed
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    shutil.rmtree(run_dir / "submodels", ignore_errors=True)
    return metrics


@torch.no_grad()
def round_to_dtype(model, dtype: torch.dtype) -> None:
    """Round floating weights to `dtype`'s precision in place (the model keeps its own dtype), so
    evaluating the model equals evaluating the weights stored in `dtype`."""
    for name, t in model.state_dict().items():
        if t.is_floating_point():
            rounded = t.to(dtype)
            if not torch.isfinite(rounded).all():
                raise ConfigError(f"weights_dtype: weight {name} has values beyond the range of {dtype}; "
                                  "train with --weights-dtype float32")
            t.copy_(rounded)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _merge_histories(histories: dict[str, list[dict]]) -> list[dict]:
    """BST-Individual: one row per epoch, averaged over the sub-models still training."""
    rows = []
    for e in range(max((len(h) for h in histories.values()), default=0)):
        cur = [h[e] for h in histories.values() if len(h) > e]
        row = {"epoch": e + 1, "n_submodels": len(cur)}
        for key in ("train_loss", "valid_auc", "valid_logloss", "seconds"):
            vals = [r[key] for r in cur if r.get(key) is not None and np.isfinite(r[key])]
            row[key] = (sum(vals) if key == "seconds" else float(np.mean(vals))) if vals else None
        rows.append(row)
    return rows


def evaluate_model(model, data: MultiScenarioData, device, batch_size: int = 8192, run_dir: Path | None = None) -> dict:
    """Test metrics (overall + per scenario with DeLong CIs); writes predictions.npz if run_dir."""
    pred = predict(model, data.test, device, batch_size)
    label = data.test.label.cpu().numpy()
    scen = data.test.scenario.cpu().numpy()
    if run_dir is not None:
        art.save_npz(Path(run_dir) / "predictions.npz", {"pred": pred.astype(np.float32)})
    return ev.scenario_metrics(label, pred, scen, data.spec.scenario_names)


def probe_summaries(probes: dict, data: MultiScenarioData) -> dict:
    """alpha_mean [Ly, K, K], gate_mean per scenario, similarity recovery (simulator)."""
    if "alpha" not in probes:
        return {}
    k = data.spec.num_scenarios
    am = ev.alpha_matrix(probes["alpha"].astype(np.float64), probes["scenario"], k)
    out = {"alpha_mean": am, "gate_mean": {
        name: [float(probes["gate"][l, probes["scenario"] == s].mean()) if (probes["scenario"] == s).any() else None
               for l in range(probes["gate"].shape[0])]
        for s, name in enumerate(data.spec.scenario_names)}}
    if data.true_similarity is not None:
        out["similarity_recovery"] = ev.similarity_recovery(am, data.true_similarity)
    return out


def load_run_model(run_dir: Path, spec=None):
    """Rebuild a run's model from config.json and load model.pt (weights_only)."""
    from saml_core.data.types import FeatureSpec

    run_dir = Path(run_dir)
    raw = art.read_json(run_dir / "config.json")
    try:
        cfg = RunConfig.from_dict(raw)
        spec = spec or FeatureSpec.from_dict(raw["feature_spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise art.ArtifactError(run_dir / "config.json", f"incompatible config ({exc})") from None
    model = build_model(cfg.model, cfg.variant, spec, cfg.model_config)
    art.load_state_dict_into(model, run_dir / "model.pt")
    model.eval()
    return cfg, model


def copy_state(model) -> dict:
    return copy.deepcopy(model.state_dict())
