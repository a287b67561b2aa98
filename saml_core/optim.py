"""Adam for a model whose embedding tables produce sparse gradients.

Dense parameters: Adam by torch's fused kernel. Sparse embedding tables: lazy Adam (moments of
a row are updated only when the row is in the batch, as in TensorFlow's lazy Adam, and torch's
SparseAdam), so the cost of a step grows with the batch, not with the vocabulary times the number
of scenarios.

Both are written here instead of taken from torch.optim, with the same update and the same
state_dict layout (checkpoints load either way; tested against torch.optim.Adam and SparseAdam):
torch.optim's first step imports torch._dynamo (1.5-3 s of every training process, a third of
a quick experiment's fixed cost), and its per-parameter step counters cost a Python-level op
per parameter and step on CPU.

ID embeddings overfit: Adam moves a rare id's row by about the learning rate each time it is
seen, whatever the gradient's size, so rows of ids seen a few dozen times learn their noise.
Two knobs act on the tables only: `embedding_lr_scale` (their learning rate relative to the
dense part) and `embedding_decay` (decoupled weight decay, AdamW-style, on the rows a step
touched: row <- row * (1 - lr * decay); lazy like the moments)."""
from __future__ import annotations

import math
import re

import torch
from torch import nn

from saml_core.models.table_rows import coalesced


class _Adam:
    """The common part: parameters, hyper-parameters, per-parameter state, and torch.optim's
    state_dict layout ({"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]})."""

    defaults: dict = {}

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, **extra):
        self.params = list(params)
        self.group = {**self.defaults, "lr": lr, "betas": tuple(betas), "eps": eps, **extra}
        self.state: dict[int, dict] = {}  # index into self.params -> state

    @property
    def param_groups(self) -> list[dict]:
        """torch.optim's view of the hyper-parameters (one group; changes to it take effect)."""
        return [self.group]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"state": {i: dict(st) for i, st in self.state.items()},
                "param_groups": [{**self.group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state: dict) -> None:
        groups = state["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"optimizer state for {sum(len(g['params']) for g in groups)} parameters, "
                             f"this model has {len(self.params)}")
        index = {pid: i for i, pid in enumerate(groups[0]["params"])}
        self.state = {}
        for pid, st in state["state"].items():
            p = self.params[index[pid]]
            self.state[index[pid]] = {k: (v.to(p.device, p.dtype if v.is_floating_point() and k != "step"
                                                else v.dtype) if isinstance(v, torch.Tensor) else v)
                                      for k, v in st.items()}
        self.group.update({k: v for k, v in groups[0].items() if k not in ("params",)})
        self.group["betas"] = tuple(self.group["betas"])


class FusedAdam(_Adam):
    """torch.optim.Adam(fused=True): one `_fused_adam_` call per step for every parameter with a
    gradient (grouped by their step count, which is the same for all unless some went without
    gradients), L2 weight decay as torch's (added to the gradient)."""

    defaults = {"weight_decay": 0.0, "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                "differentiable": False, "fused": True, "decoupled_weight_decay": False}

    def __init__(self, params, lr: float, **kwargs):
        super().__init__(params, lr, **kwargs)
        self._counts: dict[int, float] = {}  # the step counts as Python numbers (no per-step .item())

    @torch.no_grad()
    def step(self) -> None:
        g = self.group
        beta1, beta2 = g["betas"]
        by_step: dict[float, list[int]] = {}
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            st = self.state.get(i)
            if st is None:
                st = self.state[i] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(p),
                                      "exp_avg_sq": torch.zeros_like(p)}
                self._counts[i] = 0.0
            by_step.setdefault(self._counts[i], []).append(i)
        for count, idx in by_step.items():
            step = torch.tensor(count + 1.0)  # shared by the group's states (a new one: saved states keep theirs)
            torch._fused_adam_([self.params[i] for i in idx], [self.params[i].grad for i in idx],
                               [self.state[i]["exp_avg"] for i in idx], [self.state[i]["exp_avg_sq"] for i in idx],
                               [], [step.to(self.params[idx[0]].device)] * len(idx), lr=float(g["lr"]), beta1=beta1,
                               beta2=beta2, weight_decay=g["weight_decay"], eps=g["eps"], amsgrad=False,
                               maximize=g["maximize"])
            for i in idx:
                self.state[i]["step"] = step
                self._counts[i] = count + 1.0

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._counts = {i: float(st["step"]) for i, st in self.state.items()}


class LazyAdam(_Adam):
    """torch's SparseAdam (same state, same formulas, the same weights bit for bit: tested), run
    with row index ops on the coalesced gradient instead of sparse-tensor arithmetic: ~12 ops
    per table where SparseAdam makes ~30 with sparse masks and temporary sparse tensors."""

    defaults = {"maximize": False}

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.group["betas"]
        eps, lr = self.group["eps"], float(self.group["lr"])
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if not p.grad.is_sparse:
                raise RuntimeError("LazyAdam takes sparse gradients; use Adam for dense ones")
            state = self.state.get(i)
            if state is None:
                state = self.state[i] = {"step": 0, "exp_avg": torch.zeros_like(p),
                                         "exp_avg_sq": torch.zeros_like(p)}
            state["step"] += 1
            grad = coalesced(p.grad)
            if self.group.get("maximize", False):
                grad = -grad
            rows, values = grad._indices()[0], grad._values()
            if values.numel() == 0:
                continue
            exp_avg, exp_avg_sq, step = state["exp_avg"], state["exp_avg_sq"], state["step"]
            # old <- old + (1 - b) * (new - old), on the rows of the batch (each row once)
            old_avg = exp_avg.index_select(0, rows)
            avg_update = values.sub(old_avg).mul_(1 - beta1)
            exp_avg.index_add_(0, rows, avg_update)
            old_sq = exp_avg_sq.index_select(0, rows)
            sq_update = values.pow(2).sub_(old_sq).mul_(1 - beta2)
            exp_avg_sq.index_add_(0, rows, sq_update)
            numer = avg_update.add_(old_avg)
            denom = sq_update.add_(old_sq).sqrt_().add_(eps)
            step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
            p.index_add_(0, rows, numer.div_(denom).mul_(-step_size))


def _sparse_params(model: nn.Module) -> set[int]:
    ids = set()
    for m in model.modules():
        if isinstance(m, nn.Embedding) and m.sparse:
            ids.add(id(m.weight))
    return ids


class ModelAdam:
    def __init__(self, model: nn.Module, lr: float, weight_decay: float = 0.0,
                 embedding_lr_scale: float = 1.0, embedding_decay: float = 0.0):
        sparse_ids = _sparse_params(model)
        dense = [p for p in model.parameters() if id(p) not in sparse_ids]
        self.sparse = [p for p in model.parameters() if id(p) in sparse_ids]
        self.sparse_names = [n for n, p in model.named_parameters() if id(p) in sparse_ids]
        # the fused kernel on CPU as well: ~4x faster than foreach over SAML's ~1M dense weights
        # (docs/ENGINE.md, Speed); same update up to float rounding (tested)
        if all(p.device.type in ("cpu", "cuda") for p in dense):
            self.optimizers = [FusedAdam(dense, lr=lr, weight_decay=weight_decay)]
        else:  # no fused kernel for this device
            self.optimizers = [torch.optim.Adam(dense, lr=lr, weight_decay=weight_decay, foreach=True)]
        self.sparse_lr = lr * embedding_lr_scale
        self.embedding_decay = embedding_decay
        if self.sparse:
            self.optimizers.append(LazyAdam(self.sparse, lr=self.sparse_lr))

    def zero_grad(self):
        for o in self.optimizers:
            o.zero_grad()

    @torch.no_grad()
    def step(self):
        for o in self.optimizers:
            o.step()
        if self.embedding_decay:
            keep = 1.0 - self.sparse_lr * self.embedding_decay
            for p in self.sparse:
                if p.grad is not None:
                    rows = coalesced(p.grad).indices()[0]
                    p[rows] *= keep

    def state_dict(self) -> dict:
        return {f"opt{i}": o.state_dict() for i, o in enumerate(self.optimizers)}

    def load_state_dict(self, state: dict, model_keys: list[str] | None = None):
        """`model_keys`: the keys of the model state saved with `state` (in their order); a
        checkpoint of the layout with one embedding table per field then resumes too: its
        sparse moments are merged like the tables (layers.merge_field_tables)."""
        for i, o in enumerate(self.optimizers):
            saved = state[f"opt{i}"]
            if isinstance(o, LazyAdam) and model_keys is not None:
                saved = _merge_table_moments(saved, model_keys, self.sparse_names)
            o.load_state_dict(saved)


def _merge_table_moments(saved: dict, model_keys: list[str], tables: list[str]) -> dict:
    """A sparse optimizer state over one table per field (the parameters named
    `...features.<f>.<kind>_table.weight`, in `model_keys` order) -> the same over the merged
    tables named `tables` (this optimizer's parameters). Any other state is returned as it is."""
    from saml_core.models.layers import merge_field_tables

    ids = saved["param_groups"][0]["params"] if len(saved["param_groups"]) == 1 else []
    old = [k for k in model_keys if re.search(r"(^|\.)features\.\d+\.(global|scenario)_table\.weight$", k)]
    if len(ids) == len(tables) or len(ids) != len(old):
        return saved
    states = [saved["state"].get(i, {}) for i in ids]
    if not all(states) or len({int(st["step"]) for st in states}) != 1:
        return saved
    merged = {}
    for moment in ("exp_avg", "exp_avg_sq"):
        merged[moment] = merge_field_tables({n: st[moment] for n, st in zip(old, states)})
    if sorted(merged["exp_avg"]) != sorted(tables):
        return saved
    return {"state": {i: {"step": states[0]["step"], "exp_avg": merged["exp_avg"][k],
                          "exp_avg_sq": merged["exp_avg_sq"][k]} for i, k in enumerate(tables)},
            "param_groups": [{**saved["param_groups"][0], "params": list(range(len(tables)))}]}
