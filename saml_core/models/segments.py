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

    def segments(self, x: torch.Tensor, dim: int = 0):
        """x split along `dim` into the scenarios' segments of the sorted batch (views; absent
        scenarios empty): one split, where slicing each segment cost a few ops more."""
        return x.split(self.counts, dim)


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
            xs, ys, ws = order.segments(x), order.segments(y), weight.unbind(0)
            bs = None if bias is None else bias.unbind(0)
            for k in order.present:
                if bs is None:
                    torch.mm(xs[k], ws[k], out=ys[k])
                else:
                    torch.addmm(bs[k], xs[k], ws[k], out=ys[k])
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
        dys = order.segments(dy)
        if ctx.needs_input_grad[0]:
            dx = x.new_empty(x.shape)
            dxs, wts = order.segments(dx), weight.transpose(1, 2).unbind(0)
            for k in order.present:
                torch.mm(dys[k], wts[k], out=dxs[k])
        if ctx.needs_input_grad[1]:
            dw = torch.zeros_like(weight)
            xts, dws = order.segments(x.t(), 1), dw.unbind(0)
            for k in order.present:
                torch.mm(xts[k], dys[k], out=dws[k])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy.new_zeros((weight.shape[0], dy.shape[1])).index_add_(0, order.scenario, dy).unsqueeze(1)
        return dx, dw, db, None, None, None


class OwnOutput(torch.autograd.Function):
    """The output layer of each row's own scenario: y_b = h_b . w[s_b] + c[s_b], h [B, H], weight
    [K, H, 1], bias [K, 1, 1] or None, scenario [B] -> y [B]. As a product and a sum with each
    row's weights gathered ([B, H]), and the weight gradients as scatter-adds: a matrix-vector
    product per scenario segment (`SegmentLinear`) made ~15 ops per scenario, forward and
    backward, for B * H multiply-adds in all. The same values within float rounding (tested)."""

    @staticmethod
    def forward(ctx, h, weight, bias, scenario):
        k = weight.shape[0]
        w = weight.view(k, -1).index_select(0, scenario)  # [B, H]
        y = (h * w).sum(-1)
        if bias is not None:
            y += bias.view(k).index_select(0, scenario)
        ctx.save_for_backward(h, w, scenario)
        ctx.weight_shape, ctx.has_bias = weight.shape, bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        from saml_core.models.table_rows import add_rows

        h, w, scenario = ctx.saved_tensors
        k = ctx.weight_shape[0]
        d = dy.unsqueeze(1)  # [B, 1]
        dh = d * w if ctx.needs_input_grad[0] else None
        dw = db = None
        if ctx.needs_input_grad[1]:
            dw = add_rows(h.new_zeros(k, h.shape[1]), [(scenario, d * h)]).view(ctx.weight_shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy.new_zeros(k).index_add_(0, scenario, dy).view(k, 1, 1)
        return dh, dw, db, None
