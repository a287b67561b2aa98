"""Row lookups in one embedding table whose gradient arrives already summed per row.

`nn.Embedding(sparse=True)` hands back one gradient row per looked-up id (B * (F + C * T) rows
for a batch), and the optimizer then sorts them to sum the duplicates (`coalesce`); two lookups
in one table (a target item and its behaviour channel) even add two such tensors first. Both
grow with the sequence length and dominated BST's step beyond length 30. Here all lookups of a
table are one autograd node, and its backward sums the rows once:
- a table with no more rows than `DENSE_ROWS_PER_ID` times the ids looked up: a dense
  scatter-add into a [V, d] buffer and the touched rows read off in order (no sort);
- a larger table (real vocabularies times K scenarios): one sort of the ids (`torch.unique`).
Either way the gradient is a coalesced sparse tensor (sorted unique rows, summed values), the
same as `nn.Embedding`'s after `coalesce()` up to the order of the float additions (tested);
with `sparse=False` a dense [V, d] gradient, as `nn.Embedding(sparse=False)` gives.
"""
from __future__ import annotations

import torch

# dense scatter when table rows <= this x ids looked up: zero-filling V rows costs about as
# much as sorting V / 4 ids (measured on CPU, d = 8)
DENSE_ROWS_PER_ID = 4


def summed_rows(ids: torch.Tensor, values: torch.Tensor, num_rows: int, sparse: bool) -> torch.Tensor:
    """ids [N] int64, values [N, d] -> the gradient of a [num_rows, d] table: each row the sum of
    its values (coalesced sparse, or dense)."""
    d = values.shape[1]
    if not sparse:
        return values.new_zeros(num_rows, d).index_add_(0, ids, values)
    if num_rows <= DENSE_ROWS_PER_ID * ids.numel():
        acc = values.new_zeros(num_rows, d).index_add_(0, ids, values)
        touched = torch.zeros(num_rows, dtype=torch.bool, device=ids.device)
        touched[ids] = True
        rows = touched.nonzero().squeeze(1)
        vals = acc.index_select(0, rows)
    else:
        rows, inverse = torch.unique(ids, sorted=True, return_inverse=True)
        vals = values.new_zeros(rows.numel(), d).index_add_(0, inverse, values)
    return torch.sparse_coo_tensor(rows.unsqueeze(0), vals, (num_rows, d), is_coalesced=True,
                                   check_invariants=False)


def coalesced(grad: torch.Tensor) -> torch.Tensor:
    """A sparse row gradient with sorted unique rows, without sorting it again when it has them
    already: autograd's gradient accumulation drops the coalesced flag of what `summed_rows`
    built, and `coalesce()` would then sort every step. A check of the row order is O(nnz)."""
    if grad.is_coalesced():
        return grad
    rows = grad._indices()
    if grad.sparse_dim() == 1 and bool((rows[0, 1:] > rows[0, :-1]).all()):
        return grad._coalesced_(True)
    return grad.coalesce()


class _Lookup(torch.autograd.Function):
    """weight [V, d], any number of int64 id tensors -> weight[ids] for each (shape ids + [d])."""

    @staticmethod
    def forward(ctx, weight, sparse, *ids):
        ctx.save_for_backward(*ids)
        ctx.num_rows, ctx.sparse = weight.shape[0], sparse
        return tuple(weight.index_select(0, i.reshape(-1)).view(*i.shape, weight.shape[1]) for i in ids)

    @staticmethod
    def backward(ctx, *grads):
        ids = ctx.saved_tensors
        parts = [(i.reshape(-1), g.reshape(i.numel(), -1)) for i, g in zip(ids, grads) if g is not None]
        if not parts:
            return (None, None) + (None,) * len(ids)
        flat_ids = parts[0][0] if len(parts) == 1 else torch.cat([p[0] for p in parts])
        flat_values = parts[0][1] if len(parts) == 1 else torch.cat([p[1] for p in parts])
        grad = summed_rows(flat_ids, flat_values, ctx.num_rows, ctx.sparse)
        return (grad, None) + (None,) * len(ids)


def lookup(table: torch.nn.Embedding, *ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """table.weight[ids] for every id tensor, with one summed gradient for all of them."""
    return _Lookup.apply(table.weight, table.sparse, *ids)
