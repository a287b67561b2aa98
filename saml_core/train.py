"""One trainer for every model: Adam, early stopping on validation AUC, seeds, device/AMP,
progress (tqdm + callback + status file), checkpoint/resume after a kill, graceful cancel.

`fit` trains one module on one (train, valid) pair; `train_run` turns a RunConfig into a
finished run directory (BST-Individual = K `fit` calls, one per scenario's own data).
"""
from __future__ import annotations

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
from saml_core.config import ConfigError, TrainConfig, resolve_for_data
from saml_core.errors import Cancelled, TrainingFailed  # noqa: F401 (part of the trainer's API)
from saml_core.data.types import EncodedSplit, MultiScenarioData
from saml_core.models import build_model, registry
from saml_core.optim import ModelAdam
from saml_core.run_config import RunConfig
from saml_core.runtime import machine, resolve_device, setup_cpu, thread_policy, tick_threads

ProgressFn = Callable[[dict], None]


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
    stopped: str = ""  # why training ended: "early stopping" | "epoch cap" | "no training rows"
    settings: dict = field(default_factory=dict)  # batch_size, patience, min_epochs, lr, epochs used
    extra: dict = field(default_factory=dict)

    @property
    def improving_at_cap(self) -> bool:
        """Stopped by the epoch cap while its best epoch was the last one: more epochs might help."""
        return self.stopped == "epoch cap" and self.best_epoch == self.epochs_run


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def predict(model, split: EncodedSplit, device: torch.device, batch_size: int = 8192,
            rows: tuple[int, int] | None = None) -> np.ndarray:
    """Click probabilities for every row of `split` (float32 numpy, split order), or for the rows
    lo..hi-1 only (`rows`, a rank's shard)."""
    model.eval()
    lo, hi = rows if rows is not None else (0, len(split))
    out = []
    for start in range(lo, hi, batch_size):
        tick_threads()
        idx = torch.arange(start, min(start + batch_size, hi), device=split.label.device)
        b = split.take(idx).to(device)
        with _autocast(device):
            logit = model(b)["logit"]
        out.append(torch.sigmoid(logit.float()).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def predict_gathered(model, split: EncodedSplit, device: torch.device, batch_size: int, dist) -> np.ndarray | None:
    """`predict` over all rows: without `dist` in this process; with it, every rank predicts its
    shard and rank 0 gets all predictions in split order (the other ranks get None)."""
    if dist is None:
        return predict(model, split, device, batch_size)
    local = predict(model, split, device, batch_size, rows=dist.shard(len(split)))
    return dist.gather_rows(local, len(split))


def fit(model, train: EncodedSplit, valid: EncodedSplit, tcfg: TrainConfig, *, seed: int, device: torch.device,
        checkpoint: Path | None = None, progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None, desc: str = "train", dist=None) -> FitResult:
    """Train `model` in place; on return it holds the best-validation-AUC weights.

    After every finished epoch the full state (weights, optimizer, epoch, RNG, history, best
    weights) goes to `checkpoint` atomically; if it exists at start, training resumes there.
    Batches of epoch e are a permutation drawn from seed and e alone, so a resumed run sees
    the same batches as an uninterrupted one.

    With `dist` (saml_core.distributed, several processes): every rank trains on its slice of
    the same global batches, rank 0 reads and writes the checkpoint and reports progress, the
    validation predictions are gathered on rank 0 and its result decides for all ranks."""
    main = dist is None or dist.is_main
    seed_everything(seed)
    model.to(device)
    if hasattr(model, "context_dtype"):  # forward-only all-branch pass of SAML: bf16 on GPU
        model.context_dtype = torch.bfloat16 if device.type == "cuda" else None
    opt = ModelAdam(model, tcfg.lr, tcfg.weight_decay,
                    embedding_lr_scale=tcfg.embedding_lr_scale, embedding_decay=tcfg.embedding_decay)
    history: list[dict] = []
    best_auc, best_epoch, bad, start_epoch = -1.0, 0, 0, 0
    best_state = None
    if dist is None:
        ck = art.load_torch(checkpoint, map_location="cpu") if checkpoint is not None and checkpoint.exists() else None
    else:  # rank 0's checkpoint, for every rank (no shared disk needed)
        ck = dist.on_main(lambda: art.load_torch(checkpoint, map_location="cpu")
                          if checkpoint is not None and checkpoint.exists() else None)
    if ck is not None:
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"], model_keys=list(ck["model"]))
            history, start_epoch = list(ck["history"]), int(ck["epoch"])
            best_auc, best_epoch, bad = float(ck["best_auc"]), int(ck["best_epoch"]), int(ck["bad_epochs"])
            best_state = ck["best_state"]
            if main:
                torch.set_rng_state(ck["rng_torch"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise art.ArtifactError(checkpoint, f"checkpoint does not fit this run ({exc})") from None
        model.to(device)
    resumed_from = start_epoch
    if not train.mapped:  # a memory-mapped split stays on disk; its batches are moved one by one
        train = train.to(device)
    n = len(train)
    if n == 0:  # e.g. a BST-Individual scenario without train rows: nothing to learn
        return FitResult(history=history, best_epoch=best_epoch, best_valid_auc=best_auc, epochs_run=0,
                         seconds=0.0, resumed_from=resumed_from, stopped="no training rows")
    if not tcfg.resolved:  # settings left to the data: derived from this train/valid pair
        tcfg = resolve_for_data(tcfg, n, int(valid.label.sum().item()))
    bs = tcfg.batch_size
    steps = max(1, -(-n // bs))
    if tcfg.max_train_batches:
        steps = min(steps, tcfg.max_train_batches)
    if dist is not None:
        from saml_core.distributed import unused_parameters

        net = dist.wrap(model, opt.sparse, bool(unused_parameters(model, train, device, opt.sparse)))
    else:
        net = model
    t_start = time.perf_counter()
    done_steps, total_steps = 0, steps * (tcfg.epochs - start_epoch)
    settings = {"lr": tcfg.lr, "batch_size": bs, "patience": tcfg.patience, "min_epochs": tcfg.min_epochs,
                "epochs": tcfg.epochs, "embedding_lr_scale": tcfg.embedding_lr_scale,
                "embedding_decay": tcfg.embedding_decay}
    stopped = "epoch cap"
    for epoch in range(start_epoch, tcfg.epochs):
        if bad >= tcfg.patience and epoch >= tcfg.min_epochs:
            stopped = "early stopping"
            break
        net.train()
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        perm = torch.randperm(n, generator=gen).to(train.scenario.device)
        if not main:  # dropout masks of its own (rank 0 keeps the single-process stream)
            torch.manual_seed((seed * 100003 + epoch) * 1009 + dist.rank)
        loss_sum = torch.zeros((), device=device)
        bar = tqdm(range(steps), desc=f"{desc} epoch {epoch + 1}/{tcfg.epochs}", leave=False,
                   disable=None if main else True)
        for step in bar:
            tick_threads()
            if dist is None:
                if should_stop is not None and should_stop():
                    bar.close()
                    raise Cancelled(f"cancelled during epoch {epoch + 1}")
                b = train.take(perm[step * bs:(step + 1) * bs]).to(device)
                with _autocast(device):
                    out = model(b)
                    loss = model.loss(out, b.label)
                scaled, shown = loss, loss
            else:
                scaled, shown, stop = _ddp_forward(net, model, train, perm[step * bs:(step + 1) * bs], device,
                                                   dist, should_stop)
                if stop:
                    bar.close()
                    raise Cancelled(f"cancelled during epoch {epoch + 1}")
            if not torch.isfinite(shown):  # one NaN step poisons every weight: stop with the reason
                bar.close()
                what = "NaN" if torch.isnan(shown) else "infinite"
                raise TrainingFailed(f"{desc}: training diverged, the loss became {what} at epoch "
                                     f"{epoch + 1}, step {step + 1} (learning rate {tcfg.lr:g}; inputs with "
                                     "huge values or a too large learning rate cause this)")
            opt.zero_grad()
            scaled.backward()
            if dist is not None:
                dist.sync_sparse_grads(opt.sparse)
            opt.step()
            loss_sum += shown.detach()
            done_steps += 1
            if progress is not None and (step % 20 == 0 or step == steps - 1):
                elapsed = time.perf_counter() - t_start
                lv = float(shown.detach())
                bar.set_postfix(loss=f"{lv:.4f}")
                progress({"epoch": epoch + 1, "epochs": tcfg.epochs, "step": step + 1, "steps": steps,
                          "loss": lv, "eta_seconds": elapsed / done_steps * (total_steps - done_steps)})
        bar.close()
        train_loss = float(loss_sum) / steps
        row = _validate(model, valid, device, tcfg.eval_batch_size, dist,
                        {"epoch": epoch + 1, "train_loss": train_loss})
        row["seconds"] = time.perf_counter() - t0
        vauc = row["valid_auc"]
        history.append(row)
        if not np.isfinite(vauc) or vauc > best_auc:  # NaN AUC (one class): keep the latest
            best_auc, best_epoch, bad = (vauc if np.isfinite(vauc) else best_auc), epoch + 1, 0
            best_state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        if checkpoint is not None and main:
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
                     epochs_run=len(history), seconds=time.perf_counter() - t_start, resumed_from=resumed_from,
                     stopped=stopped, settings=settings)


def _ddp_forward(net, model, train: EncodedSplit, batch: torch.Tensor, device, dist, should_stop):
    """One rank's share of a global batch (row positions `batch` of `train`): forward, and the
    loss weighted by n_rank * W / n_batch, so that DDP's gradient average over ranks is the
    gradient of the whole batch's mean loss. One all-reduce carries the weighted losses (their
    mean is the batch's loss, the same on every rank) and the ranks' stop flags.
    Returns (weighted loss, batch loss, stop)."""
    from saml_core.distributed import rank_rows

    mine = rank_rows(train.scenario[batch], dist.rank, dist.world)
    weight = len(mine) * dist.world / len(batch)
    if len(mine) == 0:  # a last batch smaller than W: a weight-0 row that rank 0 also has
        mine = torch.argsort(train.scenario[batch], stable=True)[:1]  # (same sparse rows, no gradient)
    b = train.take(batch[mine]).to(device)
    with _autocast(device):
        out = net(b)
        loss = model.loss(out, b.label)
    scaled = loss * weight
    flag = 1.0 if should_stop is not None and should_stop() else 0.0
    summed = dist.all_reduce_sum(torch.stack([scaled.detach().float(), torch.tensor(flag, device=scaled.device)]))
    return scaled, summed[0] / dist.world, bool(summed[1] > 0)


def _validate(model, valid: EncodedSplit, device, batch_size: int, dist, row: dict) -> dict:
    """The epoch's history row with the validation AUC and logloss. With `dist` every rank
    predicts its shard, rank 0 computes the row and every rank gets it (one early-stopping
    decision for all)."""
    def compute(pred):
        y = valid.label.cpu().numpy()
        return {**row, "valid_auc": ev.auc(y, pred) if len(y) else float("nan"),
                "valid_logloss": ev.logloss(y, pred) if len(y) else None}

    pred = predict_gathered(model, valid, device, batch_size, dist)
    if dist is None:
        return compute(pred)
    return dist.broadcast(compute(pred) if dist.is_main else None)


def _subset(split: EncodedSplit, k: int) -> EncodedSplit:
    return split.subset(torch.nonzero(split.scenario == k).squeeze(1))


def _valid_positives(split: EncodedSplit) -> int:
    return int(split.label.sum().item())


def fit_joint(model, data: MultiScenarioData, tcfg: TrainConfig, *, seed: int, device, run_dir: Path,
              progress=None, should_stop=None, desc: str = "train", dist=None) -> FitResult:
    """One fit on all scenarios, with the training settings derived from the whole data."""
    tcfg = resolve_for_data(tcfg, len(data.train), _valid_positives(data.valid))
    return fit(model, data.train, data.valid, tcfg, seed=seed, device=device, checkpoint=run_dir / "checkpoint.pt",
               progress=progress, should_stop=should_stop, desc=desc, dist=dist)


def fit_per_scenario(model, data: MultiScenarioData, tcfg: TrainConfig, *, seed: int, device, run_dir: Path,
                     progress=None, should_stop=None, desc: str = "train", dist=None) -> FitResult:
    """Sub-model k (`model.models[k]`) on scenario k's own train/valid rows, each with its own early
    stopping. The same rule as for every model derives its batch size, patience and minimum epochs,
    here from its own data: a small country's 50 validation clicks need more patience than the
    pooled validation set."""
    names = data.spec.scenario_names
    results: dict[str, FitResult] = {}
    for k, name in enumerate(names):
        sub_train, sub_valid = _subset(data.train, k), _subset(data.valid, k)
        sub_cfg = resolve_for_data(tcfg, len(sub_train), _valid_positives(sub_valid))

        def sub_progress(event, k=k, name=name):
            if progress is not None:
                progress({**event, "submodel": name, "submodel_index": k + 1, "n_submodels": len(names)})

        results[name] = fit(model.models[k], sub_train, sub_valid, sub_cfg, seed=seed * 1000 + k, device=device,
                            checkpoint=run_dir / "submodels" / _safe(name) / "checkpoint.pt",
                            progress=sub_progress, should_stop=should_stop, desc=f"{desc}[{name}]", dist=dist)
    trained = [r for r in results.values() if r.epochs_run]
    merged = FitResult(
        history=_merge_histories({n: r.history for n, r in results.items()}),
        best_epoch=max((r.best_epoch for r in trained), default=0),
        best_valid_auc=float("nan"), epochs_run=max((r.epochs_run for r in trained), default=0),
        seconds=sum(r.seconds for r in results.values()),
        stopped="epoch cap" if any(r.stopped == "epoch cap" for r in trained) else "early stopping",
        settings={"rule": "each sub-model: derived from its own scenario's data", "lr": tcfg.lr,
                  "epochs": tcfg.epochs},
    )
    merged.extra = {"submodels": {n: {"best_epoch": r.best_epoch, "epochs_run": r.epochs_run,
                                      "best_valid_auc": r.best_valid_auc, "stopped": r.stopped,
                                      "improving_at_cap": r.improving_at_cap, **r.settings}
                                  for n, r in results.items()},
                    "per_scenario_history": {n: r.history for n, r in results.items()}}
    return merged


FITS = {"joint": fit_joint, "per_scenario": fit_per_scenario}


def train_run(cfg: RunConfig, data: MultiScenarioData, run_dir: Path, *, progress: ProgressFn | None = None,
              should_stop: Callable[[], bool] | None = None, probe_index: np.ndarray | None = None,
              dist=None) -> dict | None:
    """Train (or resume) one run and write its artifacts; returns metrics.json's content.

    With `dist` (a model with a "joint" or "per_scenario" fit, trained by several processes):
    every rank calls this with the same run; rank 0 alone reads and writes `run_dir` and gets
    the metrics, the other ranks return None after the test predictions."""
    run_dir = Path(run_dir)
    main = dist is None or dist.is_main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    tcfg = cfg.train_config
    device = resolve_device(tcfg.device)
    if device.type == "cpu":
        setup_cpu(tcfg.num_threads)
    if main:
        art.write_json(run_dir / "config.json", {**cfg.to_dict(), "feature_spec": data.spec.to_dict()})
    entry = registry.get(cfg.model)
    if dist is not None and callable(entry.fit):
        raise ConfigError(f"{cfg.model} is fitted by its own function, not data-parallel: train it in one process")
    seed_everything(cfg.seed)
    model = build_model(cfg.model, data.spec, cfg.model_config, cfg.model_options)
    initial = {}
    if probe_index is not None and "gate" in entry.probes:  # where the gates start, to read their change
        init_probes = model.to(device).collect_probes(data.test, probe_index, device, 0)
        initial = {"gate_init_mean": _gate_means(init_probes, data)}
    fit_fn = entry.fit if callable(entry.fit) else FITS[entry.fit]
    res = fit_fn(model, data, tcfg, seed=cfg.seed, device=device, run_dir=run_dir, progress=progress,
                 should_stop=should_stop, desc=cfg.run_id, **({} if dist is None else {"dist": dist}))
    per_scenario_history = res.extra.pop("per_scenario_history", None)
    if main:
        art.write_json(run_dir / "history.json", {"epochs": res.history, **(
            {"per_scenario": per_scenario_history} if per_scenario_history is not None else {})})
    store_dtype = getattr(torch, tcfg.weights_dtype)
    if store_dtype != torch.float32:
        round_to_dtype(model, store_dtype)
    if cfg.keep_weights and main:
        art.save_model(run_dir / "model.pt", model, dtype=store_dtype)
    metrics = evaluate_model(model, data, device, tcfg.eval_batch_size, run_dir=run_dir if main else None,
                             desc=cfg.run_id, dist=dist)
    if not main:
        return None
    if dist is not None:
        res.settings["distributed"] = dist.describe()
    metrics.update({"best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "train_seconds": res.seconds,
                    "device": device.type, "threads": torch.get_num_threads() if device.type == "cpu" else None,
                    "machine": machine(device),
                    "thread_policy": thread_policy().describe() if device.type == "cpu" and thread_policy() else None,
                    "stopped": res.stopped, "improving_at_cap": res.improving_at_cap,
                    "train_settings": res.settings, "weights_kept": bool(cfg.keep_weights), **res.extra, **initial})
    if cfg.keep_weights:  # what model.pt must hold: listings check it without importing torch
        metrics["weight_shapes"] = {k: list(v.shape) for k, v in model.state_dict().items()}
    if probe_index is not None:
        probes = model.collect_probes(data.test, probe_index, device, cfg.probe_hidden_all)
        if not cfg.keep_weights:  # demo storage: what the matrices and distributions need, not the states
            probes = {k: v for k, v in probes.items() if not k.startswith("hidden_")}
        metrics["hidden_states_kept"] = any(k.startswith("hidden_") for k in probes)
        if metrics["hidden_states_kept"]:  # the explorer shows each point's own fields beside its states
            from saml_core.probes import probe_fields

            probes.update(probe_fields(data, probe_index))
        if set(probes) - BASIC_PROBES:  # the model gave more than its predictions
            art.save_npz(run_dir / "probes.npz", probes)
        metrics.update(probe_summaries(model, probes, data))  # relations may come from the weights
        if "hidden" in entry.probes and cfg.keep_weights:  # the dashboard draws these at once
            from saml_core import maps

            maps.store(run_dir, probes)
    from saml_core.run_analyses import scoring_batch, write_run_analyses  # transfer matrix, input importance

    bs = scoring_batch(device, tcfg.eval_batch_size)
    write_run_analyses(entry, data, run_dir, lambda split: predict(model, split, device, bs),
                       train_seconds=res.seconds, keep_weights=cfg.keep_weights)
    art.write_json(run_dir / "metrics.json", metrics)
    # finished: model.pt + metrics.json are the run; resume state is no longer needed
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    shutil.rmtree(run_dir / "submodels", ignore_errors=True)
    return metrics


def train_trial(cfg: RunConfig, data: MultiScenarioData, trial_dir: Path, *, progress: ProgressFn | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict:
    """Train (or resume) one tuning trial exactly as `train_run` trains a run, then score the
    trained model on the VALIDATION split: the test split is never read here, so no test label
    can take part in choosing a setting. Returns the trial's result: valid_auc (None when the
    setting diverged: `failed` says how), valid_logloss, best_epoch, epochs_run, seconds,
    resumed_from, stopped, train_settings."""
    trial_dir = Path(trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    tcfg = cfg.train_config
    device = resolve_device(tcfg.device)
    if device.type == "cpu":
        setup_cpu(tcfg.num_threads)
    art.write_json(trial_dir / "config.json", {**cfg.to_dict(), "feature_spec": data.spec.to_dict()})
    entry = registry.get(cfg.model)
    seed_everything(cfg.seed)  # the same initial weights as the run of this seed and setting
    model = build_model(cfg.model, data.spec, cfg.model_config, cfg.model_options)
    fit_fn = entry.fit if callable(entry.fit) else FITS[entry.fit]
    t0 = time.perf_counter()
    try:
        res = fit_fn(model, data, tcfg, seed=cfg.seed, device=device, run_dir=trial_dir, progress=progress,
                     should_stop=should_stop, desc=cfg.run_id)
        pred = predict(model, data.valid, device, tcfg.eval_batch_size)
        if not np.isfinite(pred).all():
            raise TrainingFailed(f"{cfg.run_id}: validation predictions are NaN or infinite")
    except TrainingFailed as exc:  # a setting that diverges is a result of the search, not an error
        return {"valid_auc": None, "valid_logloss": None, "failed": str(exc), "seconds": time.perf_counter() - t0}
    label = data.valid.label.cpu().numpy()
    return {"valid_auc": ev.auc(label, pred) if len(label) else None,
            "valid_logloss": ev.logloss(label, pred) if len(label) else None, "failed": None,
            "best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "seconds": time.perf_counter() - t0,
            "resumed_from": res.resumed_from, "stopped": res.stopped, "train_settings": res.settings,
            "machine": machine(device)}


BASIC_PROBES = {"index", "scenario", "label", "pred"}


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


def evaluate_model(model, data: MultiScenarioData, device, batch_size: int = 8192, run_dir: Path | None = None,
                   desc: str = "model", dist=None) -> dict | None:
    """Test metrics (overall + per scenario with DeLong CIs); writes predictions.npz if run_dir.
    Predictions that are not finite make the run fail: a NaN AUC is not a result.
    With `dist` the ranks' shards of the predictions are gathered and rank 0 alone computes the
    metrics (the others return None)."""
    pred = predict_gathered(model, data.test, device, batch_size, dist)
    if pred is None:
        return None
    bad = ~np.isfinite(pred)
    if bad.any():
        raise TrainingFailed(f"{desc}: {int(bad.sum()):,} of {len(pred):,} test predictions are NaN or infinite "
                             "(the weights diverged; check the inputs for huge values or lower the learning rate)")
    label = data.test.label.cpu().numpy()
    scen = data.test.scenario.cpu().numpy()
    if run_dir is not None:
        art.save_npz(Path(run_dir) / "predictions.npz", {"pred": pred.astype(np.float32)})
    return ev.scenario_metrics(label, pred, scen, data.spec.scenario_names)


def _gate_means(probes: dict, data: MultiScenarioData) -> dict:
    """Mean gate g of each scenario's samples, per mutual unit: {scenario: [g per unit]}."""
    if "gate" not in probes:
        return {}
    scen = probes["scenario"]
    return {name: [float(probes["gate"][l, scen == s].mean()) if (scen == s).any() else None
                   for l in range(probes["gate"].shape[0])]
            for s, name in enumerate(data.spec.scenario_names)}


def probe_summaries(model, probes: dict, data: MultiScenarioData) -> dict:
    """What the model says about scenarios (`relations`), and for SAML alpha_mean [Ly, K, K],
    gate_mean per scenario and, on simulated data, the recovery of the planted similarity."""
    k = data.spec.num_scenarios
    out: dict = {"relations": model.relations(probes, k)}
    if "alpha" in probes:
        out["alpha_mean"] = ev.alpha_matrix(probes["alpha"].astype(np.float64), probes["scenario"], k)
        out["gate_mean"] = _gate_means(probes, data)
        if data.true_similarity is not None:
            traffic = np.bincount(data.train.scenario.numpy(), minlength=k) / max(len(data.train), 1)
            groups = data.info.get("scenario_groups")
            nulls = {"same group only": ev.group_matrix([groups.get(n) for n in data.spec.scenario_names])} \
                if groups else None
            out["similarity_recovery"] = ev.similarity_recovery(out["alpha_mean"], data.true_similarity,
                                                                traffic=traffic, nulls=nulls)
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
    model = build_model(cfg.model, spec, cfg.model_config, cfg.model_options)
    art.load_state_dict_into(model, run_dir / "model.pt")
    model.eval()
    return cfg, model
