"""A batch sorted by scenario, and a layer of per-scenario weights applied to exactly each
scenario's rows of it: the own-branch / own-tower work of the multi-scenario models without
padding or gathered weight copies."""
from __future__ import annotations

import torch


class ScenarioOrder:
    """A batch sorted by scenario, so that branch k's samples form one contiguous segment: the
    own-branch work is one matmul per scenario present, on exactly its rows (no padding, no
    gathered weight copies), in its backward as well (`SegmentLinear`)."""

    def __init__(self, scenario: torch.Tensor, num_scenarios: int):
        self.order = torch.argsort(scenario, stable=True)
        self.inverse = torch.empty_like(self.order)
        self.inverse[self.order] = torch.arange(scenario.shape[0], device=scenario.device)
        # segment sizes as Python ints (torch.split needs them): one host sync per batch
        self.counts = torch.bincount(scenario, minlength=num_scenarios).tolist()
        self.present = [k for k, c in enumerate(self.counts) if c]
        self.scenario = scenario[self.order]

    def unsort(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(0, self.inverse)

    def segment_rows(self):
        """(branch k, row slice) of every scenario present, in the sorted batch."""
        start = 0
        for k, c in enumerate(self.counts):
            if c:
                yield k, slice(start, start + c)
            start += c


class SegmentLinear(torch.autograd.Function):
    """Each scenario's segment of a scenario-sorted batch through its own branch's layer:
    y = x @ weight[k] + bias[k] (then ReLU if `relu`), x [B, in], weight [K, in, out], bias
    [K, 1, out] or None. One matmul per scenario present, written into one output; backward: one
    matmul per segment for the input's and the weight's gradient each, written in place, and the
    bias gradient as one scatter-add (autograd of split / unbind / cat made ~6 ops per segment).
    `given` (the all-branch pass's states [B, K, out] of this layer, after ReLU, same rows): y is
    read from it instead of computed again, the same values up to float rounding; the gradient
    is that of the layer above."""

    @staticmethod
    def forward(ctx, x, weight, bias, order, relu, given):
        if given is not None:
            y = given.gather(1, order.scenario.view(-1, 1, 1).expand(-1, 1, given.shape[2])).squeeze(1)
        else:
            y = x.new_empty((x.shape[0], weight.shape[2]))
            for k, rows in order.segment_rows():
                if bias is None:
                    torch.mm(x[rows], weight[k], out=y[rows])
                else:
                    torch.addmm(bias[k], x[rows], weight[k], out=y[rows])
            if relu:
                y.relu_()
        ctx.save_for_backward(x, weight, y if relu else None)
        ctx.order, ctx.relu, ctx.has_bias = order, relu, bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, y = ctx.saved_tensors
        order = ctx.order
        if ctx.relu:
            dy = dy.masked_fill(y <= 0, 0.0)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = x.new_empty(x.shape)
        if ctx.needs_input_grad[1]:
            dw = torch.zeros_like(weight)
        for k, rows in order.segment_rows():
            if dx is not None:
                torch.mm(dy[rows], weight[k].t(), out=dx[rows])
            if dw is not None:
                torch.mm(x[rows].t(), dy[rows], out=dw[k])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy.new_zeros((weight.shape[0], dy.shape[1])).index_add_(0, order.scenario, dy).unsqueeze(1)
        return dx, dw, db, None, None, None
