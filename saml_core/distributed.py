"""Data-parallel training with torch DDP: `torchrun --nproc-per-node N -m saml_core experiment ...`
(docs/ENGINE.md, "Scale").

- **Rank 0 drives.** It runs the experiment exactly as one process does (lock, status, every
  artifact) and hands the other ranks ("workers") tasks: load data seed d, train run R, stop.
  Workers write nothing; they load the same data themselves (deterministic) and take part in
  training and in the prediction passes.
- **Batches.** The global batch of step t is the single-process batch (the permutation of seed
  and epoch, cut into batches of `batch_size`); rank r trains on a scenario-stratified 1/W of it
  (`rank_rows`), its loss weighted by n_r * W / n_batch, so that DDP's average of the ranks'
  gradients is the gradient of the whole batch's mean loss: the same steps as one process, up to
  float summation order.
- **Sparse embedding gradients.** The tables are left out of DDP (whose sparse allreduce exists
  for gloo only); after backward every rank all-gathers the (rows, values) of each table's
  gradient with dense collectives, which gloo and NCCL both have, and sums them
  (`sync_sparse_grads`): the union of the ranks' rows, as in one process's batch.
- **Evaluation.** Each rank predicts a contiguous shard of the split; rank 0 gathers the shards
  in order, computes AUC / DeLong, and broadcasts the validation result, so that every rank
  takes the same early-stopping decision.
- **Agreement.** Stops (SIGTERM) and divergence are decided together: the per-step all-reduce
  carries the loss and every rank's stop flag, so all ranks stop at the same step.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as tdist

from saml_core.config import ConfigError
from saml_core.errors import TrainingFailed
from saml_core.models.table_rows import coalesced

BACKENDS = ("auto", "gloo", "nccl")
# Workers wait for rank 0 while it loads data (a cold raw-Taobao cache builds for ~20 minutes),
# computes probes and maps, and writes artifacts: a generous collective timeout ($SAML_DDP_TIMEOUT).
DEFAULT_TIMEOUT_S = 4 * 3600


def _timeout() -> timedelta:
    text = os.environ.get("SAML_DDP_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(text)
        if not seconds > 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"SAML_DDP_TIMEOUT must be a positive number of seconds, got {text!r}") from None
    return timedelta(seconds=seconds)


class PeerFailed(RuntimeError):
    """Another rank failed (or went away); this rank stops too."""


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    backend: str
    device: torch.device  # where collective tensors live: cuda for NCCL, cpu for gloo
    state: str = "idle"  # workers: "idle" (waiting for a task), "busy" (training), "gone"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> dict:
        return {"world_size": self.world, "backend": self.backend, "shard": "scenario-stratified slices "
                "of the single-process batch"}

    # ---- collectives --------------------------------------------------------------------
    def broadcast(self, obj=None):
        """Rank 0's `obj` on every rank (pickled)."""
        box = [obj if self.is_main else None]
        tdist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def on_main(self, fn):
        """Run `fn` on rank 0 only; every rank returns its result, or raises where it failed
        (rank 0 its own exception, the others PeerFailed with its message)."""
        if self.is_main:
            try:
                value = fn()
            except Exception as exc:
                self.broadcast(("error", f"{type(exc).__name__}: {exc}"))
                raise
            return self.broadcast(("ok", value))[1]
        status, value = self.broadcast()
        if status == "error":
            raise PeerFailed(f"rank 0 failed: {value}")
        return value

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        out = t.to(self.device)
        tdist.all_reduce(out)
        return out.to(t.device)

    def barrier(self) -> None:
        if self.backend == "nccl":
            tdist.barrier(device_ids=[self.local_rank])
        else:
            tdist.barrier()

    def all_gather_padded(self, t: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
        """Every rank's 1-d `t` (rank r's has sizes[r] elements), padded to one size for the
        collective and trimmed again."""
        top = max(max(sizes), 1)  # (an empty collective is not defined on every backend)
        local = torch.zeros(top, dtype=t.dtype, device=self.device)
        local[:t.numel()] = t.to(self.device)
        parts = [torch.empty_like(local) for _ in range(self.world)]
        tdist.all_gather(parts, local)
        return [p[:n] for p, n in zip(parts, sizes)]

    # ---- rows ---------------------------------------------------------------------------
    def shard(self, n: int) -> tuple[int, int]:
        """Rank's contiguous share [lo, hi) of n rows (evaluation)."""
        bounds = np.linspace(0, n, self.world + 1).round().astype(np.int64)
        return int(bounds[self.rank]), int(bounds[self.rank + 1])

    def gather_rows(self, local: np.ndarray, n: int) -> np.ndarray | None:
        """The per-rank shards (`shard(n)`) of a float array concatenated in split order on rank 0
        (None elsewhere)."""
        bounds = np.linspace(0, n, self.world + 1).round().astype(np.int64)
        sizes = np.diff(bounds).tolist()
        parts = self.all_gather_padded(torch.from_numpy(np.ascontiguousarray(local, dtype=np.float32)), sizes)
        if not self.is_main:
            return None
        return torch.cat([p.cpu() for p in parts]).numpy()

    # ---- training -----------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module, sparse: list[torch.nn.Parameter], may_skip_parameters: bool):
        """DDP over the dense parameters; the sparse tables are synchronised by
        `sync_sparse_grads` and broadcast from rank 0 here (DDP broadcasts only what it owns).
        may_skip_parameters (`unused_parameters`): let DDP look for parameters without gradient
        in every step (a graph traversal per step, and torch warns when it finds none)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = {id(p) for p in sparse}
        ignore = [name for name, p in model.named_parameters() if id(p) in ids]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignore)
        with torch.no_grad():
            for p in sparse:
                buf = p.data.to(self.device)
                tdist.broadcast(buf, src=0)
                p.data.copy_(buf)
        return DistributedDataParallel(model, device_ids=None, find_unused_parameters=may_skip_parameters)

    def sync_sparse_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Replace each sparse gradient by the mean over ranks (sum / W; the loss weights make the
        sum the gradient of the whole batch). Three collectives for all tables together: the
        per-table row counts, the rows, the values."""
        if not params:
            return
        rows, values = [], []
        for p in params:
            g = p.grad
            if g is None:
                rows.append(torch.zeros(0, dtype=torch.int64, device=p.device))
                values.append(torch.zeros(0, *p.shape[1:], dtype=p.dtype, device=p.device))
            else:
                g = coalesced(g)
                rows.append(g.indices()[0])
                values.append(g.values())
        counts = torch.tensor([len(r) for r in rows], dtype=torch.int64)
        all_counts = self.all_gather_padded(counts, [len(params)] * self.world)
        all_counts = torch.stack([c.cpu() for c in all_counts])  # [W, P]
        widths = [int(np.prod(p.shape[1:])) for p in params]
        n_rows = all_counts.sum(1).tolist()
        n_vals = (all_counts * torch.tensor(widths)).sum(1).tolist()
        got_rows = self.all_gather_padded(torch.cat(rows), n_rows)
        got_vals = self.all_gather_padded(torch.cat([v.reshape(-1) for v in values]), n_vals)
        per_param_rows: list[list] = [[] for _ in params]
        per_param_vals: list[list] = [[] for _ in params]
        for w in range(self.world):
            r_off = v_off = 0
            for i, p in enumerate(params):
                c = int(all_counts[w, i])
                per_param_rows[i].append(got_rows[w][r_off:r_off + c])
                per_param_vals[i].append(got_vals[w][v_off:v_off + c * widths[i]].view(c, *p.shape[1:]))
                r_off, v_off = r_off + c, v_off + c * widths[i]
        for i, p in enumerate(params):
            idx = torch.cat(per_param_rows[i]).to(p.device)
            val = torch.cat(per_param_vals[i]).to(device=p.device, dtype=p.dtype) / self.world
            p.grad = (torch.sparse_coo_tensor(idx.unsqueeze(0), val, p.shape, check_invariants=False).coalesce()
                      if len(idx) else None)

    # ---- the driver's side of the task protocol -------------------------------------------
    def send(self, task: dict) -> None:
        """Rank 0: hand the workers a task (they are waiting in `follow`)."""
        self.broadcast(task)
        if task["op"] == "load":
            self._load_in_turn(lambda: None)

    @contextmanager
    def training(self, task: dict):
        """Rank 0: the workers train task["run"] (a RunConfig dict) together with it; afterwards
        they wait for the next task, unless the run was cancelled or failed in a way only rank 0
        saw (then they have stopped or torchrun stops them)."""
        self.send({"op": "train", **task})
        self.state = "busy"
        try:
            yield
        except TrainingFailed:  # decided together (divergence) or after the last collective
            self.state = "idle"
            raise
        except BaseException:
            self.state = "gone"
            raise
        self.state = "idle"

    def release(self, rc: int) -> bool:
        """Rank 0 at the end of an experiment: tell waiting workers to stop. True when they were
        told (then every rank calls `settle`)."""
        told = False
        if self.is_main and self.state == "idle":
            try:
                self.broadcast({"op": "stop", "rc": rc})
                told = True
            except Exception:  # noqa: BLE001 (workers already gone: nothing to tell)
                pass
        self.state = "idle" if told else "gone"
        return told

    def _load_in_turn(self, load):
        """Rank 0 has loaded already; then the first rank of every node (which builds the node's
        data cache if it lacks one), then all others (which reuse it)."""
        data = load() if self.local_rank == 0 and not self.is_main else None
        self.barrier()
        if self.local_rank != 0:
            data = load()
        self.barrier()
        return data


_CURRENT: Dist | None = None


def from_env(backend: str = "auto", device: str = "auto") -> Dist | None:
    """The process group of a torchrun launch (None when not launched with several processes)."""
    global _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if backend not in BACKENDS:
        raise ConfigError(f"--dist-backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if world <= 1:
        if backend == "nccl" and not torch.cuda.is_available():
            raise ConfigError("--dist-backend nccl needs CUDA GPUs; none is available")
        return None
    if _CURRENT is not None:
        return _CURRENT
    from saml_core.runtime import resolve_device

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    dev = resolve_device(device)
    chosen = ("nccl" if dev.type == "cuda" else "gloo") if backend == "auto" else backend
    if chosen == "nccl":
        if dev.type != "cuda":
            raise ConfigError("--dist-backend nccl needs CUDA GPUs (NCCL moves GPU tensors only); "
                              + ("none is available" if not torch.cuda.is_available() else "--device is cpu")
                              + "; use --dist-backend gloo")
        if not tdist.is_nccl_available():
            raise ConfigError("--dist-backend nccl: this torch build has no NCCL; use --dist-backend gloo")
    if dev.type == "cuda":
        gpus = torch.cuda.device_count()
        if gpus < local_world:
            raise ConfigError(f"{local_world} processes on this node but {gpus} GPU(s): one GPU per process "
                              f"(torchrun --nproc-per-node {gpus})")
        torch.cuda.set_device(local_rank)
    tdist.init_process_group(chosen, timeout=_timeout())
    comm = torch.device("cuda", local_rank) if chosen == "nccl" else torch.device("cpu")
    _CURRENT = Dist(rank=rank, world=world, local_rank=local_rank, backend=chosen, device=comm)
    import atexit

    atexit.register(_shutdown)
    return _CURRENT


def is_worker() -> bool:
    """This process is a rank other than 0 of a torchrun launch (it writes and prints nothing)."""
    return _CURRENT is not None and not _CURRENT.is_main


def settle() -> None:
    """After a task protocol ended normally on every rank (rank 0 sent stop, the workers got it):
    drop the finished runs' DDP wrappers (their reducers hold the process group) and wait for
    each other, so that no rank tears its connections down while another still uses them."""
    import gc

    gc.collect()
    if _CURRENT is not None:
        _CURRENT.barrier()


def _shutdown() -> None:
    import gc

    gc.collect()
    if tdist.is_initialized():
        tdist.destroy_process_group()


def peer_lost(exc: BaseException) -> bool:
    """A collective failed because another rank went away (crashed, killed, or stopped on an
    error only it saw): gloo raises a plain RuntimeError naming the closed connection."""
    text = str(exc)
    return isinstance(exc, tdist.DistError) or (isinstance(exc, RuntimeError) and (
        "Connection closed by peer" in text or "Connection reset by peer" in text))


def peer_lost_message(exc: BaseException) -> str:
    return (f"lost another process of the torchrun group ({str(exc).splitlines()[0][:200]}); "
            "its own output says why")


def unused_parameters(model: torch.nn.Module, split, device: torch.device, sparse: list) -> list[str]:
    """Dense parameters that get no gradient from a batch of one scenario (the same rows on every
    rank, so every rank decides alike): positional embeddings on data without sequences,
    per-scenario towers. Some rank's slice of a batch may lack a scenario, so DDP must then look
    for unused parameters. The probe leaves no trace: random state and buffers (running
    statistics) are restored, gradients cleared."""
    head = split.scenario[:4096]
    rows = torch.nonzero(head == head[0]).squeeze(1)[:32]
    b = split.take(rows).to(device)
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    devices = [torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        model.train()
        model.loss(model(b), b.label).backward()
    skipped = {id(p) for p in sparse}
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None and id(p) not in skipped]
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for k, v in model.named_buffers():
            v.copy_(buffers[k])
    return unused


def rank_rows(batch_scenario: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Positions (into the global batch) of rank's rows: the batch sorted by scenario (stable),
    then every W-th row from position `rank`. Every rank gets each scenario's rows to within
    one, so its slice keeps the batch's scenario mix (what batch statistics, e.g. STAR's
    partitioned normalisation, and every per-scenario part of a model see), and the slices are
    disjoint with the whole batch as their union."""
    order = torch.argsort(batch_scenario, stable=True)
    return order[rank::world]
