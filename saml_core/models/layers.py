"""Reusable building blocks of SAML and BST.

Shapes: B batch, F categorical fields, L sequence length, T = L + 1 tokens (sequence + target
item), D token size, K scenarios, H hidden size of an MLP layer.
"""
from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from saml_core.data.types import FeatureSpec
from saml_core.models.segments import ScenarioOrder, SegmentLinear
from saml_core.models.table_rows import lookup

EMB_INIT_STD = 0.05


class ScenarioAwareEmbedding(nn.Module):
    """Embeds a batch into e_glob [B, F*d_g], e_scen [B, F*d_s] (SAML only) and the token
    sequence [B, T, D] = behaviour sequence + target item (global embeddings, plus positions).

    Every categorical field f has a global table G_f [V_f, d_g] and, for SAML, a scenario table
    S_f of K row blocks [K*V_f, d_s] looked up at s*V_f + id. A behaviour channel shares its item
    field's global table; D = (#channels) * d_g. All fields' tables are stored as one table per
    kind, `global_table` [sum V_f, d_g] (G_f at rows offset_f..) and `scenario_table`
    [K * sum V_f, d_s] (S_f at K * offset_f..), so that a batch is one lookup and one gradient
    per kind (table_rows.lookup). Files that hold one table per field (`features.<f>.global_table`,
    `features.<f>.scenario_table`: the layout before) are merged on loading."""

    def __init__(self, spec: FeatureSpec, d_g: int, d_s: int, sparse: bool = True):
        super().__init__()
        k = spec.num_scenarios
        vocab = [f.vocab_size for f in spec.cat_fields]
        self.k, self.d_g, self.d_s = k, d_g, d_s
        offsets = [sum(vocab[:f]) for f in range(len(vocab))]  # first row of field f
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.int64), persistent=False)  # [F]
        self.register_buffer("vocab", torch.tensor(vocab, dtype=torch.int64), persistent=False)
        total = sum(vocab)
        # the draws of one table per field, in their order (each nn.Embedding drew its default
        # init, then ours): same seed, same initial weights as that layout
        self.global_table = nn.Embedding(total, d_g, sparse=sparse, _weight=torch.empty(total, d_g))
        self.scenario_table = None
        if d_s > 0:
            self.scenario_table = nn.Embedding(k * total, d_s, sparse=sparse, _weight=torch.empty(k * total, d_s))
        with torch.no_grad():
            for o, v in zip(offsets, vocab):
                torch.empty(v, d_g).normal_()
                nn.init.normal_(self.global_table.weight[o:o + v], std=EMB_INIT_STD)
                if self.scenario_table is not None:
                    torch.empty(k * v, d_s).normal_()
                    nn.init.normal_(self.scenario_table.weight[k * o:k * (o + v)], std=EMB_INIT_STD)
        self.seq_item_index = [spec.cat_index(s.item_field) for s in spec.seq_fields]
        self.register_buffer("item_fields", torch.tensor(self.seq_item_index, dtype=torch.int64), persistent=False)
        self.register_buffer("item_offsets", torch.tensor([offsets[i] for i in self.seq_item_index], dtype=torch.int64),
                             persistent=False)  # [C]: first row of each channel's item field
        self.token_dim = d_g * len(spec.seq_fields)
        self.positions = nn.Parameter(torch.randn(spec.seq_len + 1, max(self.token_dim, 1)) * EMB_INIT_STD)
        self.global_dim = d_g * len(spec.cat_fields)
        self.scenario_dim = d_s * len(spec.cat_fields)

    def forward(self, cat, scenario, seq, with_scenario: bool):
        b = cat.shape[0]
        rows = cat + self.offsets  # [B, F] rows of the global table
        e_scen, tokens = None, None
        if self.seq_item_index:
            # [B, T, C]: per position the C channels' rows (history, then the target item), so
            # that the looked-up [B, T, C, d_g] is the token sequence [B, T, D] as it is
            hist = (seq + self.item_offsets.view(1, -1, 1)).transpose(1, 2)  # [B, L, C]
            token_rows = torch.cat([hist, rows.index_select(1, self.item_fields).unsqueeze(1)], dim=1)  # [B, T, C]
            e_glob, tok = lookup(self.global_table, rows, token_rows)
            tokens = tok.view(b, token_rows.shape[1], self.token_dim) + self.positions  # [B, T, D]
        else:
            (e_glob,) = lookup(self.global_table, rows)
        if with_scenario:
            # field f, scenario s, id i -> row K * offset_f + s * V_f + i
            (e_scen,) = lookup(self.scenario_table, self.offsets * self.k + scenario.unsqueeze(1) * self.vocab + cat)
            e_scen = e_scen.reshape(b, self.scenario_dim)
        return e_glob.reshape(b, self.global_dim), e_scen, tokens

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        merge_field_tables(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def merge_field_tables(state: dict, prefix: str | None = None) -> dict:
    """In place: one table per field (`<prefix>features.<f>.global_table.weight` and
    `...scenario_table.weight`, f = 0, 1, ...) -> `<prefix>global_table.weight` and
    `<prefix>scenario_table.weight`, the fields' tables one after another; every prefix found
    when `prefix` is None. A state without them is left alone. Returns `state`."""
    if prefix is None:
        found = {m.group(1) for k in state if (m := re.match(r"(.*)features\.0\.global_table\.weight$", k))}
        for p in found:
            merge_field_tables(state, p)
        return state
    for kind in ("global_table", "scenario_table"):
        parts, f = [], 0
        while f"{prefix}features.{f}.{kind}.weight" in state:
            parts.append(state.pop(f"{prefix}features.{f}.{kind}.weight"))
            f += 1
        if parts:
            state[f"{prefix}{kind}.weight"] = torch.cat(parts)
    return state


class _LayerNormFn(torch.autograd.Function):
    """F.layer_norm whose weight and bias gradients are plain sums over the rows: torch's own
    backward reduces them in per-thread partial sums, so they (and every gradient upstream)
    changed with the thread count; with this one a training step gives the same numbers on
    1 or 2 threads (tested), and the thread policy can change the count without changing results."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        y, mean, rstd = torch.native_layer_norm(x, (x.shape[-1],), weight, bias, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        dx = torch.ops.aten.native_layer_norm_backward(dy, x, (x.shape[-1],), mean, rstd, weight, None,
                                              [True, False, False])[0]
        flat = dy.reshape(-1, dy.shape[-1])
        dw = (flat * ((x - mean) * rstd).reshape(flat.shape)).sum(0) if ctx.needs_input_grad[1] else None
        db = flat.sum(0) if ctx.needs_input_grad[2] else None
        return dx, dw, db, None


class _SoftmaxFn(torch.autograd.Function):
    """torch.softmax over the last dim with the backward p * (g - sum(g * p)) written out:
    torch's own backward kernel gave other roundings on 2 threads than on 1."""

    @staticmethod
    def forward(ctx, x):
        p = torch.softmax(x, dim=-1)
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx, g):
        (p,) = ctx.saved_tensors
        return p * (g - (g * p).sum(-1, keepdim=True))


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim whose gradient does not depend on the thread count."""
    return _SoftmaxFn.apply(x)


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm (same parameters and outputs) with a thread-count-independent backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LayerNormFn.apply(x, self.weight, self.bias, self.eps)


class SequenceAttention(nn.Module):
    """One transformer layer (multi-head self-attention + feed-forward, post-norm as in BST)
    over behaviour sequence + target item, read out at the target item (and optionally the
    masked mean of all positions).

    Query/key projections are either shared (global attention) or one per scenario
    (`num_scenarios` > 0: weights [K, D, I], each sample uses its scenario's pair). The value
    projection can be borrowed from another attention (`shared_value`), as the spec prescribes
    for the scenario-specific attention."""

    def __init__(self, dim: int, heads: int, head_dim: int, ff_dim: int, readout: str,
                 num_scenarios: int = 0, shared_value: nn.Linear | None = None, dropout: float = 0.0):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim, self.readout, self.dropout = heads, head_dim, readout, dropout
        self.per_scenario = num_scenarios > 0
        if self.per_scenario:
            self.qk_weight = nn.Parameter(torch.empty(num_scenarios, dim, 2 * inner))
            self.qk_bias = nn.Parameter(torch.zeros(num_scenarios, 2 * inner))
            bound = 1 / math.sqrt(dim)
            nn.init.uniform_(self.qk_weight, -bound, bound)
        else:
            self.qk = nn.Linear(dim, 2 * inner)
        self._own_value = shared_value is None
        self.value = nn.Linear(dim, inner) if shared_value is None else None
        self._shared_value = [shared_value]  # list: not registered twice as a submodule
        self.out = nn.Linear(inner, dim)
        self.norm1 = LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, dim))
        self.norm2 = LayerNorm(dim)
        self.output_dim = dim * (2 if readout == "target_mean" else 1)
        self.use_sdpa = False  # True: always the fused all-positions kernel (reference in tests)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """self.ff (Linear, ReLU, Linear) called layer by layer: nn.Sequential's own call costs
        more per step than the three ops at small batches."""
        first, last = self.ff[0], self.ff[2]
        return F.linear(F.relu(F.linear(x, first.weight, first.bias)), last.weight, last.bias)

    def value_proj(self) -> nn.Linear:
        return self.value if self._own_value else self._shared_value[0]

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, scenario: torch.Tensor | None = None):
        """tokens [B, T, D]; mask [B, T] bool (True = real token); returns [B, output_dim]."""
        if self.readout == "target" and not self.use_sdpa:
            return self._target_query(tokens, mask, scenario)
        return self._self_attention(tokens, mask, scenario)

    def _target_query(self, tokens, mask, scenario):
        """The self-attention output at the target position only, computed without key
        projections: q . (W_k x_t + b_k) = (W_k^T q) . x_t + q . b_k, and the last term is the same
        for every position, so softmax ignores it; the value projection is applied once to the
        pooled tokens. Equal to `_self_attention` (tested, outputs and gradients)."""
        b, _, d = tokens.shape
        h, dh = self.heads, self.head_dim
        inner = h * dh
        xt = tokens[:, -1, :]  # [B, D]
        # small inner dimensions: broadcast products, which (unlike bmm with K=1) stay fast backward
        if self.per_scenario:
            # all K scenarios' projections as plain matmuls, then each sample picks its own
            # (gathering per-sample weight copies instead makes a slow scatter in backward)
            k = self.qk_weight.shape[0]
            wq, wk = self.qk_weight[..., :inner], self.qk_weight[..., inner:]  # [K, D, I]
            q_all = (xt @ wq.permute(1, 0, 2).reshape(d, k * inner)).view(b, k, inner) + self.qk_bias[:, :inner]
            q = q_all.gather(1, scenario.view(b, 1, 1).expand(b, 1, inner)).squeeze(1)  # [B, I]
            wk_h = wk.reshape(k, d, h, dh).permute(2, 3, 0, 1).reshape(h, dh, k * d)  # [h, dh, K*D]
            r_all = torch.bmm(q.view(b, h, dh).transpose(0, 1), wk_h).view(h, b, k, d)
            r = r_all.gather(2, scenario.view(1, b, 1, 1).expand(h, b, 1, d)).squeeze(2).transpose(0, 1)  # [B, h, D]
        else:
            q = F.linear(xt, self.qk.weight[:inner], self.qk.bias[:inner])  # [B, I]
            wk = self.qk.weight[inner:].view(h, dh, d)
            r = torch.bmm(q.view(b, h, dh).transpose(0, 1), wk).transpose(0, 1)  # [B, h, D], one matmul per head
        # tokens times r, not r times tokens^T: the gradient for tokens then comes out contiguous
        # [B, T, D] like the pooling's, and adding the two stays a plain vector add (a transposed
        # one cost ~7 ms per step at sequence length 50, more than all matmuls of the attention)
        scores = torch.bmm(tokens, r.transpose(1, 2)).transpose(1, 2) * (dh ** -0.5)  # [B, h, T]
        p = softmax(scores.masked_fill(~mask[:, None, :], float("-inf")))
        dropped = self.training and self.dropout > 0
        if dropped:
            p = F.dropout(p, self.dropout)
        # value projection after pooling: sum_t p_t (W_v x_t + b_v) = W_v (sum_t p_t x_t) + b_v sum_t p_t,
        # and sum_t p_t = 1 (softmax over real tokens) unless dropout thinned p; pools D-wide tokens
        # instead of projecting all T of them
        wv = self.value_proj()
        pooled = torch.bmm(p, tokens).transpose(0, 1)  # [h, B, D]: per head, the attention-weighted token
        bias = wv.bias.view(h, 1, dh)
        if dropped:
            bias = p.sum(-1).t().unsqueeze(-1) * bias  # [h, B, dh]
        attn = torch.baddbmm(bias, pooled, wv.weight.view(h, dh, d).transpose(1, 2))  # [h, B, dh]
        attn = attn.transpose(0, 1).reshape(b, inner)  # [B, I]
        x = self.norm1(xt + self.out(attn))
        return self.norm2(x + self.feed_forward(x))  # [B, D]

    def _self_attention(self, tokens, mask, scenario):
        """Plain multi-head self-attention (fused kernel); all positions for "target_mean"."""
        b, t, _ = tokens.shape
        q_tokens = tokens[:, -1:, :] if self.readout == "target" else tokens  # [B, Tq, D]
        if self.per_scenario:
            w = self.qk_weight[scenario]  # [B, D, 2I]: each sample's scenario projections
            bias = self.qk_bias[scenario].unsqueeze(1)  # [B, 1, 2I]
            inner = w.shape[2] // 2
            q = torch.baddbmm(bias[..., :inner], q_tokens, w[..., :inner])
            k = torch.baddbmm(bias[..., inner:], tokens, w[..., inner:])
        else:
            inner = self.qk.out_features // 2
            q = F.linear(q_tokens, self.qk.weight[:inner], self.qk.bias[:inner])
            k = F.linear(tokens, self.qk.weight[inner:], self.qk.bias[inner:])
        v = self.value_proj()(tokens)
        h, dh = self.heads, self.head_dim
        q = q.view(b, -1, h, dh).transpose(1, 2)  # [B, h, Tq, dh]
        k = k.view(b, t, h, dh).transpose(1, 2)
        v = v.view(b, t, h, dh).transpose(1, 2)
        attn = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask[:, None, None, :], dropout_p=self.dropout if self.training else 0.0
        )  # [B, h, Tq, dh]
        attn = attn.transpose(1, 2).reshape(b, -1, h * dh)
        x = self.norm1(q_tokens + self.out(attn))
        x = self.norm2(x + self.feed_forward(x))  # [B, Tq, D]
        target = x[:, -1, :]
        if self.readout == "target":
            return target
        m = mask.unsqueeze(-1).to(x.dtype)
        mean = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        return torch.cat([target, mean], dim=1)


class GlobalFeatures(nn.Module):
    """BST's input block, shared by every single-network baseline: global embeddings of all
    categorical fields, one transformer layer over behaviour sequence + target item, numeric
    fields. batch -> x [B, output_dim]."""

    def __init__(self, spec: FeatureSpec, d_g: int, heads: int, head_dim: int, ff_dim: int, readout: str,
                 dropout: float = 0.0, sparse: bool = True):
        super().__init__()
        self.embedding = ScenarioAwareEmbedding(spec, d_g, 0, sparse)
        d = self.embedding.token_dim
        self.has_seq = d > 0
        attn_dim = 0
        if self.has_seq:
            self.attention = SequenceAttention(d, heads, head_dim, ff_dim, readout, dropout=dropout)
            attn_dim = self.attention.output_dim
        self.output_dim = self.embedding.global_dim + attn_dim + len(spec.num_fields)

    def forward(self, batch) -> torch.Tensor:
        e_glob, _, tokens = self.embedding(batch.cat, batch.scenario, batch.seq, with_scenario=False)
        parts = [e_glob]
        if self.has_seq:
            mask = torch.cat([batch.seq_mask, torch.ones_like(batch.seq_mask[:, :1])], dim=1)
            parts.append(self.attention(tokens, mask))
        if batch.num.shape[1]:
            parts.append(batch.num)
        return torch.cat(parts, dim=1)


class ScenarioGroups:
    """Groups a batch by scenario into C chunks of equal size c = ceil(B/K) ([C, c, ...]; chunk i
    belongs to branch `branch[i]`), so the own-branch work is one batched matmul with at most
    2B rows whatever the traffic skew (plain per-scenario padding would cost K * max group)."""

    def __init__(self, scenario: torch.Tensor, num_scenarios: int):
        b = scenario.shape[0]
        self.c = max(-(-b // num_scenarios), 1)
        counts = torch.bincount(scenario, minlength=num_scenarios)
        chunks = -(-counts // self.c)  # chunks per scenario
        first_chunk = torch.cumsum(chunks, 0) - chunks
        starts = torch.cumsum(counts, 0) - counts
        order = torch.argsort(scenario, stable=True)
        s_sorted = scenario[order]
        rank = torch.arange(b, device=scenario.device) - starts[s_sorted]
        self.n_chunks = int(chunks.sum())
        self.slot = torch.empty_like(scenario)
        self.slot[order] = (first_chunk[s_sorted] + rank // self.c) * self.c + rank % self.c
        self.branch = torch.repeat_interleave(torch.arange(num_scenarios, device=scenario.device), chunks)
        self.onehot = F.one_hot(self.branch, num_scenarios).float()  # [C, K] chunk -> branch

    def group(self, x: torch.Tensor) -> torch.Tensor:
        """[B, ...] -> [C, c, ...] (padding rows are zeros)."""
        out = x.new_zeros((self.n_chunks * self.c,) + tuple(x.shape[1:]))
        return out.index_copy(0, self.slot, x).view((self.n_chunks, self.c) + tuple(x.shape[1:]))

    def ungroup(self, x: torch.Tensor) -> torch.Tensor:
        """[C, c, ...] -> [B, ...]."""
        return x.reshape((self.n_chunks * self.c,) + tuple(x.shape[2:]))[self.slot]


VARIANTS = ("full", "no_gate", "no_aux", "no_gate_mut")


class MLP(nn.Module):
    """ReLU MLP that returns every hidden layer (the auxiliary network feeds them to the branches)
    and a logit."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], dropout: float = 0.0):
        super().__init__()
        dims = (in_dim,) + tuple(hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Linear(dims[-1], 1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor):
        hidden = []
        for layer in self.layers:
            x = self.dropout(F.relu(layer(x)))
            hidden.append(x)
        return hidden, self.head(x).squeeze(-1)


class BranchLinear(nn.Module):
    """K linear layers stored as one weight stack [K, in, out] so that all branches run in one
    batched matmul. Input [K, N, in] (each branch its own rows) or [N, in] (rows shared by all
    branches), or, with `branch` [C], row groups [C, N, in] where group c uses branch[c]."""

    def __init__(self, num_branches: int, in_dim: int, out_dim: int, bias: bool = True):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(num_branches, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_branches, 1, out_dim).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor, branch: torch.Tensor | None = None) -> torch.Tensor:
        """branch: None, or a one-hot [C, K] float matrix choosing each group's branch."""
        if branch is None and x.dim() == 2:
            # rows shared by all branches: one [N, in] x [in, K*out] matmul, returned as a
            # [K, N, out] view of its [N, K, out] result (torch.matmul broadcasts to the same
            # products but copies them into [K, N, out] and back again in backward)
            k, i, o = self.weight.shape
            w = self.weight.permute(1, 0, 2).reshape(i, k * o)
            y = x @ w if self.bias is None else torch.addmm(self.bias.reshape(1, k * o), x, w)
            return y.view(x.shape[0], k, o).transpose(0, 1)
        w = self.weight if branch is None else select_branches(self.weight, branch)
        y = torch.matmul(x, w)  # [K or C, N, out]
        if self.bias is None:
            return y
        return y + (self.bias if branch is None else select_branches(self.bias, branch))


def select_branches(stack: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """stack [K, ...] -> [C, ...] rows picked by a one-hot [C, K] matrix. A matmul rather than
    indexing: its backward is another matmul instead of a serial scatter-add."""
    k = stack.shape[0]
    return (onehot.to(stack.dtype) @ stack.reshape(k, -1)).view((onehot.shape[0],) + tuple(stack.shape[1:]))


class MutualUnit(nn.Module):
    """Eq. (6)-(8): c_kj = cos(h_k, h_j); alpha_kj = softmax_{j != k}(c_kj);
    g_k = sigmoid(w_k . h_k + b_k); h~_k = h_k + g_k * sum_j alpha_kj * stopgrad(h_j).
    Other branches always enter detached (the gradient mask)."""

    def __init__(self, num_branches: int, dim: int, gated: bool = True):
        super().__init__()
        self.gated = gated
        self.gate_weight = nn.Parameter(torch.zeros(num_branches, dim))
        self.gate_bias = nn.Parameter(torch.zeros(num_branches))
        nn.init.normal_(self.gate_weight, std=1 / math.sqrt(dim))

    def forward_all(self, h: torch.Tensor):
        """Every branch on every sample. h [K, B, H] -> h~ [K, B, H], alpha [B, K, K] (row k =
        branch k against branch j), g [K, B]."""
        k = h.shape[0]
        hb = h.transpose(0, 1)  # [B, K, H]
        unit = F.normalize(hb, dim=-1, eps=1e-8)
        c = torch.bmm(unit, unit.detach().transpose(1, 2))  # cos(h_k, stopgrad h_j) [B, K, K]
        eye = torch.eye(k, dtype=torch.bool, device=h.device)
        alpha = torch.softmax(c.masked_fill(eye, float("-inf")), dim=-1)
        g = torch.sigmoid(torch.einsum("kbh,kh->kb", h, self.gate_weight) + self.gate_bias[:, None])
        mix = torch.bmm(alpha, hb.detach()).transpose(0, 1)  # [K, B, H]
        return h + g.unsqueeze(-1) * mix, alpha, g

    @torch.no_grad()
    def mix_context(self, z: torch.Tensor, norm: torch.Tensor, block: int | None = None) -> torch.Tensor:
        """Forward only, every branch, sample-major: z [B, K, H] (h of every branch), norm [B, K]
        its norms -> h~ [B, K, H]. Same maths as `forward_all`, reorganised for speed:
        - softmax as exp / sum with the diagonal zeroed: a cosine lies in [-1, 1], so exp cannot
          overflow and the max shift is not needed (torch's softmax over 10 values is ~10x slower);
        - the gate w_k . h_k as a product and a sum (einsum makes it a slow [K, B, H] x [K, H, 1] bmm);
        - blocks of `block` samples, so the two per-sample [K, K] / [K, H] products read z from
          cache (on CPU; on a GPU one block: kernel launches, not caches, are the cost there);
          h~ = z + (g * alpha) @ z in one baddbmm per block."""
        if block is None:
            block = 64 if z.device.type == "cpu" else max(z.shape[0], 1)
        k = z.shape[1]
        off = 1.0 - torch.eye(k, dtype=z.dtype, device=z.device)
        out = torch.empty_like(z)
        for s in range(0, z.shape[0], block):
            zb, nb = z[s:s + block], norm[s:s + block]
            e = torch.bmm(zb, zb.transpose(1, 2)).div_(nb[:, :, None] * nb[:, None, :]).exp_().mul_(off)
            g = torch.sigmoid_((zb * self.gate_weight).sum(-1).add_(self.gate_bias))  # [b, K]
            w = e.mul_((g / e.sum(-1)).unsqueeze(-1))  # g_k * alpha_kj
            torch.baddbmm(zb, w, zb, out=out[s:s + block])
        return out

    def forward_own(self, h: torch.Tensor, h_all: torch.Tensor, norm_all: torch.Tensor, branch: torch.Tensor):
        """Only the own branch, with gradient. h [B, H] (branch `branch[b]` on sample b);
        h_all [B, K, H] every branch's state on the same samples and norm_all [B, K] its norms
        (forward-only pass, detached). Returns h~ [B, H], alpha [B, K], g [B]."""
        k = h_all.shape[1]
        unit = F.normalize(h, dim=-1, eps=1e-8)
        # a product and a sum, not bmm: B matrix-vector products of [K, H] are ~3x slower both ways
        c = (h_all * unit.unsqueeze(1)).sum(-1) / norm_all  # cos [B, K]
        alpha = torch.softmax(c.masked_fill(F.one_hot(branch, k).bool(), float("-inf")), dim=-1)
        g_all = h @ self.gate_weight.t() + self.gate_bias  # [B, K]: every branch's gate on h
        g = torch.sigmoid(g_all.gather(1, branch.unsqueeze(1)).squeeze(1))
        mix = torch.bmm(alpha.unsqueeze(1), h_all).squeeze(1)  # [B, H]
        return h + g.unsqueeze(-1) * mix, alpha, g


# ---- multi-scenario baselines (SharedBottom, MMoE, PLE) --------------------------------------

def split_bottom_tower(mlp: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """cfg.mlp split into the shared part (a shared bottom, or each expert) and each scenario's
    tower, so that bottom + tower is exactly as deep as BST's MLP: the tower takes the last hidden
    layer, the bottom the others. With a one-layer mlp the bottom keeps that layer and a tower is
    just the linear output layer."""
    cut = max(len(mlp) - 1, 1)
    return tuple(mlp[:cut]), tuple(mlp[cut:])


class StackedMLP(nn.Module):
    """G ReLU MLPs of one shape stored as weight stacks (one BranchLinear per layer), so all G run
    as one batched matmul per layer: a bank of experts (G = E) or one tower per scenario (G = K).

    x [N, in] (the same rows for all G) or [G, N, in] -> [G, N, H_last]. With `branch` (one-hot
    [C, G]), row groups [C, N, in] -> [C, N, H_last]: group c goes through MLP branch[c] only.
    `logit=True` adds a linear output layer: the result is then [G or C, N]."""

    def __init__(self, num_mlps: int, in_dim: int, hidden: tuple[int, ...], dropout: float = 0.0,
                 logit: bool = False):
        super().__init__()
        dims = (in_dim,) + tuple(hidden)
        self.layers = nn.ModuleList(BranchLinear(num_mlps, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = BranchLinear(num_mlps, dims[-1], 1) if logit else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output_dim = 1 if logit else dims[-1]

    def forward(self, x: torch.Tensor, branch: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = self.dropout(F.relu(layer(x, branch)))
        if self.head is None:
            return x
        return self.head(x, branch).squeeze(-1)

    def own(self, x: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        """Row b of x [B, in] through MLP choice[b] only -> [B, H_last] ([B] with `logit`): the
        rows sorted by choice, each layer one matmul per MLP on exactly its rows (SegmentLinear)."""
        order = ScenarioOrder(choice, self.layers[0].weight.shape[0])
        h = x.index_select(0, order.order)
        for layer in self.layers:
            h = self.dropout(SegmentLinear.apply(h, layer.weight, layer.bias, order, True, None))
        if self.head is not None:
            h = SegmentLinear.apply(h, self.head.weight, self.head.bias, order, False, None).squeeze(-1)
        return order.unsort(h)
