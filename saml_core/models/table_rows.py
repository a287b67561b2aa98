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


def _as_pairs(x: torch.Tensor) -> torch.Tensor:
    """[N, d] float rows, d even -> a complex [N, d / 2] view: a scatter-add then moves two
    floats per element, ~2x faster on CPU, with the same float additions (a complex sum adds the
    real and the imaginary parts separately)."""
    return torch.view_as_complex(x.view(x.shape[0], -1, 2))


def add_rows(table: torch.Tensor, parts) -> torch.Tensor:
    """In place: table [V, d] += each part's values [N_i, d] at its ids [N_i], in order (the same
    float additions as one index_add_ of the parts concatenated, without the concatenation).
    Returns `table`."""
    pairs = table.shape[1] % 2 == 0 and table.dtype in (torch.float32, torch.float64) and table.is_contiguous()
    target = _as_pairs(table) if pairs else table
    for ids, values in parts:
        target.index_add_(0, ids, _as_pairs(values.contiguous()) if pairs else values)
    return table


def copy_rows(table: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> None:
    """In place: table[rows] = values (rows [N] distinct, values [N, d]), as float pairs where
    the rows have an even width (`_as_pairs`)."""
    if table.shape[1] % 2 == 0 and table.dtype in (torch.float32, torch.float64) and table.is_contiguous():
        _as_pairs(table).index_copy_(0, rows, _as_pairs(values))
    else:
        table.index_copy_(0, rows, values)


def summed_rows(parts, num_rows: int, sparse: bool) -> torch.Tensor:
    """parts: (ids [N_i] int64, values [N_i, d]) pairs -> the gradient of a [num_rows, d] table:
    each row the sum of its values (coalesced sparse, or dense)."""
    values0 = parts[0][1]
    d = values0.shape[1]
    if not sparse:
        return add_rows(values0.new_zeros(num_rows, d), parts)
    n_ids = sum(ids.numel() for ids, _ in parts)
    if num_rows <= DENSE_ROWS_PER_ID * n_ids:
        acc = add_rows(values0.new_zeros(num_rows, d), parts)
        touched = torch.zeros(num_rows, dtype=torch.bool, device=values0.device)
        for ids, _ in parts:
            touched.index_fill_(0, ids, True)
        rows = touched.nonzero().squeeze(1)
        vals = acc.index_select(0, rows)
    else:
        ids = parts[0][0] if len(parts) == 1 else torch.cat([i for i, _ in parts])
        values = values0 if len(parts) == 1 else torch.cat([v for _, v in parts])
        rows, inverse = torch.unique(ids, sorted=True, return_inverse=True)
        vals = add_rows(values.new_zeros(rows.numel(), d), [(inverse, values)])
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
        grad = summed_rows(parts, ctx.num_rows, ctx.sparse)
        return (grad, None) + (None,) * len(ids)


def lookup(table: torch.nn.Embedding, *ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """table.weight[ids] for every id tensor, with one summed gradient for all of them."""
    return _Lookup.apply(table.weight, table.sparse, *ids)
