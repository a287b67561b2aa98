"""A strong simple baseline: logistic regression on target encodings with scenario crosses.

Every categorical value is replaced by the (smoothed) click rate it had in the TRAIN split, as a
logit: te_f(x) = logit((clicks + m p0) / (shows + m)) with p0 the train CTR and m = `smoothing`.
With `crosses`, the same per (scenario, value) pair: te_sf(s, x) — what that value is worth in
that scenario. Behaviour sequences become the mean encoding of their items, per channel. A
logistic regression on these features, the numeric fields and one bias per scenario scores a
sample. On train rows the encodings are computed out of fold (`folds` folds, seeded), otherwise a
row's own click would leak into its feature; validation and test rows use the whole train split.

Fitting (`fit_lr_te`, the registry entry's `fit`): the regularisation strength C is chosen on the
validation AUC from a small grid (its tuning budget, like an epoch count for the deep models), or
is the option `C` when given (a tuned run: `--tune` searches smoothing x C, saml_core/tuning.py);
the encoding tables, the standardisation and the regression are stored as plain tensors
(`torch.load(weights_only=True)`) and predict through the same `forward` as every model.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from saml_core.config import ModelConfig
from saml_core.data.types import FeatureSpec
from saml_core.models.base import ScenarioModel

C_GRID = (0.001, 0.01, 0.1, 1.0)
MIN_SCALE = 1e-3  # features whose train std is below this are left out of the regression


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def encode_table(ids: np.ndarray, label: np.ndarray, size: int, prior: float, smoothing: float) -> np.ndarray:
    """[size] smoothed click-rate logit of every id from (ids, label) rows."""
    shows = np.bincount(ids, minlength=size).astype(np.float64)
    clicks = np.bincount(ids, weights=label, minlength=size)
    return _logit((clicks + smoothing * prior) / (shows + smoothing)).astype(np.float32)


class TargetEncodingLR(ScenarioModel):
    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, crosses: bool = True, smoothing: float = 20.0,
                 folds: int = 5, C: float | None = None):
        super().__init__()
        if not isinstance(folds, int) or folds < 2:
            raise ValueError(f"lr_te option folds must be an integer >= 2, got {folds!r}")
        if not smoothing > 0:
            raise ValueError(f"lr_te option smoothing must be > 0, got {smoothing!r}")
        if C is not None and (isinstance(C, bool) or not isinstance(C, (int, float)) or not 0 < C < float("inf")):
            raise ValueError(f"lr_te option C must be a number > 0 (or null: chosen on validation), got {C!r}")
        self.spec, self.crosses, self.smoothing, self.folds = spec, bool(crosses), float(smoothing), folds
        self.c_grid = C_GRID if C is None else (float(C),)
        self.k = spec.num_scenarios
        self.vocab = [f.vocab_size for f in spec.cat_fields]
        self.seq_item_index = [spec.cat_index(s.item_field) for s in spec.seq_fields]
        for i, v in enumerate(self.vocab):  # filled by fit_lr_te; zeros = "no information"
            self.register_buffer(f"te_{i}", torch.zeros(v))
            if self.crosses:
                self.register_buffer(f"te_cross_{i}", torch.zeros(self.k * v))
        n_cat = len(self.vocab) * (2 if self.crosses else 1)
        self.n_features = n_cat + len(self.seq_item_index) + len(spec.num_fields) + self.k
        # the regression runs on standardised features; kept apart from the weights (folding a
        # scale near 0 into them gives weights beyond float16, and no gain)
        self.register_buffer("x_mean", torch.zeros(self.n_features))
        self.register_buffer("x_scale", torch.ones(self.n_features))
        self.linear = nn.Linear(self.n_features, 1)

    def tables(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        plain = [getattr(self, f"te_{i}") for i in range(len(self.vocab))]
        cross = [getattr(self, f"te_cross_{i}") for i in range(len(self.vocab))] if self.crosses else []
        return plain, cross

    def features(self, batch, plain=None, cross=None) -> torch.Tensor:
        """[B, n_features] from the given encoding tables (default: the stored whole-train ones)."""
        if plain is None:
            plain, cross = self.tables()
        s = batch.scenario
        cols = [plain[i][batch.cat[:, i]] for i in range(len(self.vocab))]
        cols += [cross[i][s * self.vocab[i] + batch.cat[:, i]] for i in range(len(cross))]
        for c, fi in enumerate(self.seq_item_index):  # mean encoding of the behaviour items
            mask = batch.seq_mask.to(torch.float32)
            enc = plain[fi][batch.seq[:, c, :]] * mask
            cols.append(enc.sum(1) / mask.sum(1).clamp_min(1.0))
        x = torch.stack(cols, dim=1) if cols else batch.num.new_zeros((len(s), 0))
        onehot = torch.nn.functional.one_hot(s, self.k).to(x.dtype)
        return torch.cat([x, batch.num.to(x.dtype), onehot], dim=1)

    def forward(self, batch, probes: bool = False) -> dict:
        x = (self.features(batch) - self.x_mean) / self.x_scale
        return {"logit": self.linear(x).squeeze(-1)}


def _tables_from(model: TargetEncodingLR, cat: np.ndarray, scen: np.ndarray, label: np.ndarray, prior: float):
    plain = [torch.from_numpy(encode_table(cat[:, i], label, v, prior, model.smoothing))
             for i, v in enumerate(model.vocab)]
    cross = [torch.from_numpy(encode_table(scen * v + cat[:, i], label, model.k * v, prior, model.smoothing))
             for i, v in enumerate(model.vocab)] if model.crosses else []
    return plain, cross


def fit_lr_te(model: TargetEncodingLR, data, tcfg, *, seed: int, device, run_dir, progress=None,
              should_stop=None, desc: str = "lr_te"):
    """Out-of-fold encodings on train, whole-train encodings elsewhere; C chosen on validation AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from saml_core import evaluate as ev
    from saml_core.train import Cancelled, FitResult

    t0 = time.perf_counter()
    train = data.train
    cat, scen, y = train.cat.numpy(), train.scenario.numpy(), train.label.numpy().astype(np.float64)
    prior = float(y.mean()) if len(y) else 0.5
    fold = np.random.default_rng(seed).integers(0, model.folds, len(y))
    x_train = np.zeros((len(y), model.n_features), dtype=np.float32)
    with torch.no_grad():
        for f in range(model.folds):
            rows = fold == f
            if not rows.any():
                continue
            plain, cross = _tables_from(model, cat[~rows], scen[~rows], y[~rows], prior)
            idx = torch.from_numpy(np.flatnonzero(rows))
            x_train[rows] = model.features(train.take(idx), plain, cross).numpy()
        plain, cross = _tables_from(model, cat, scen, y, prior)
        for i, t in enumerate(plain):
            getattr(model, f"te_{i}").copy_(t)
        for i, t in enumerate(cross):
            getattr(model, f"te_cross_{i}").copy_(t)
        x_valid = model.features(data.valid).numpy()
    scaler = StandardScaler().fit(x_train)
    # (almost) constant features carry nothing and would blow up when standardised: left out
    used = scaler.scale_ >= MIN_SCALE
    mean, scale = np.where(used, scaler.mean_, 0.0), np.where(used, scaler.scale_, 1.0)
    xs_train, xs_valid = ((x_train - mean) / scale)[:, used], ((x_valid - mean) / scale)[:, used]
    y_valid = data.valid.label.numpy()
    history, best = [], None
    for i, c in enumerate(model.c_grid):
        if should_stop is not None and should_stop():
            raise Cancelled(f"cancelled while fitting C={c}")
        clf = LogisticRegression(C=c, max_iter=500, random_state=seed).fit(xs_train, y)
        vauc = ev.auc(y_valid, clf.decision_function(xs_valid)) if len(y_valid) else float("nan")
        history.append({"epoch": i + 1, "C": c, "train_loss": None, "valid_auc": vauc,
                        "seconds": time.perf_counter() - t0})
        if best is None or (np.isfinite(vauc) and vauc > best[0]):
            best = (vauc if np.isfinite(vauc) else -1.0, i, clf)
        if progress is not None:
            progress({"epoch": i + 1, "epochs": len(model.c_grid), "step": 1, "steps": 1, "loss": None,
                      "valid_auc": vauc, "eta_seconds": None, "epoch_finished": True})
    vauc, i_best, clf = best
    with torch.no_grad():
        model.x_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        model.x_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        coef = np.zeros(model.n_features)
        coef[used] = clf.coef_[0]
        model.linear.weight.copy_(torch.as_tensor(coef, dtype=torch.float32)[None, :])
        model.linear.bias.fill_(float(clf.intercept_[0]))
    return FitResult(history=history, best_epoch=i_best + 1, best_valid_auc=vauc, epochs_run=len(history),
                     seconds=time.perf_counter() - t0, stopped="grid searched",
                     settings={"C_grid": list(model.c_grid), "C": model.c_grid[i_best], "folds": model.folds,
                               "smoothing": model.smoothing, "crosses": model.crosses})
