"""The simulator: determinism, planted similarity, traffic skew, oracle AUC, learnable signal,
behaviour sequences cut from one timeline per user, the personal term read from the sequence,
and the variance decomposition of the true logit."""
import json

import numpy as np
import pytest
import torch

from saml_core.data import DataError, load_dataset
from saml_core.data import synthetic
from saml_core.data.stats import oracle_auc, split_counts

NAMES = synthetic.SCENARIOS


@pytest.fixture(scope="module")
def small():
    return load_dataset("synthetic-countries", size="small", seed=0)


def _same(a, b):
    return all(
        torch.equal(getattr(a, f), getattr(b, f))
        for f in ("scenario", "label", "cat", "num", "seq", "seq_mask", "oracle_prob")
    )


def test_same_seed_identical_other_seed_different(small):
    again = load_dataset("synthetic-countries", size="small", seed=0)
    other = load_dataset("synthetic-countries", size="small", seed=1)
    for split in ("train", "valid", "test"):
        assert _same(getattr(small, split), getattr(again, split))
    assert not _same(small.train, other.train)
    assert not torch.equal(small.test.oracle_prob[:100], other.test.oracle_prob[:100])
    assert not torch.equal(small.train.seq[:100], other.train.seq[:100])


def test_contract_shapes_and_dtypes(small):
    spec = small.spec
    assert spec.scenario_names == NAMES
    assert small.category_field == "category" and spec.cat_index("category") >= 0
    for split in (small.train, small.valid, small.test):
        n = len(split)
        assert split.cat.shape == (n, len(spec.cat_fields)) and split.cat.dtype == torch.int64
        assert split.num.shape == (n, len(spec.num_fields)) and split.num.dtype == torch.float32
        assert split.seq.shape == (n, len(spec.seq_fields), spec.seq_len)
        assert split.seq_mask.shape == (n, spec.seq_len) and split.seq_mask.dtype == torch.bool
        assert split.cat.is_contiguous() and split.seq.is_contiguous()
        # every index is inside its vocabulary
        for j, f in enumerate(spec.cat_fields):
            assert int(split.cat[:, j].max()) < f.vocab_size and int(split.cat[:, j].min()) >= 1
        # PAD exactly where the mask is False; right-aligned (a real behaviour is never left of PAD)
        assert torch.equal(split.seq[:, 0, :] != 0, split.seq_mask)
        m = split.seq_mask.to(torch.int8)
        assert bool((m[:, 1:] >= m[:, :-1]).all())
        assert bool(split.seq_mask[:, -1].all())
    assert set(np.unique(small.train.label.numpy())) == {0.0, 1.0}


def test_planted_similarity_matches_docs():
    S = synthetic.true_similarity()
    i = {n: k for k, n in enumerate(NAMES)}
    assert S.shape == (10, 10)
    assert np.allclose(S, S.T) and np.allclose(np.diag(S), 1.0)
    assert S[i["ES"], i["BR"]] > S[i["ES"], i["UA"]]
    assert S[i["UA"], i["PL"]] > S[i["ES"], i["PL"]]
    assert S[i["ES"], i["CL"]] > S[i["ES"], i["US"]]
    assert S[i["RU"], i["UA"]] > S[i["RU"], i["ES"]]
    assert S[i["US"], i["FR"]] > S[i["US"], i["PL"]]
    # large countries and Others lean on the global taste: closer to Others than small ones
    assert S[i["RU"], i["Others"]] > S[i["UA"], i["Others"]]
    assert S[i["BR"], i["Others"]] > S[i["CL"], i["Others"]]


def test_similarity_is_the_cosine_of_generated_country_tastes():
    """The exported matrix is the cosine of the category-taste vectors actually used."""
    rng = np.random.default_rng(5)
    taste = synthetic._country_block(rng, synthetic.LATENT)
    t = taste / np.linalg.norm(taste, axis=1, keepdims=True)
    assert np.allclose(t @ t.T, synthetic.true_similarity(), atol=1e-9)


def test_traffic_skew(small):
    n, _ = split_counts(small.train, 10)
    share = n / n.sum()
    s = dict(zip(NAMES, share))
    assert 0.35 < s["Others"] < 0.45
    assert 0.55 < 1 - s["Others"] < 0.65
    top = sorted(NAMES[:-1], key=lambda c: -s[c])
    assert set(top[:2]) == {"RU", "BR"}
    for small_country in ("FR", "NL", "CL", "UA"):
        assert s[small_country] < 0.05


def test_oracle_auc_and_ctr_in_range():
    data = load_dataset("synthetic-countries", size="small", seed=3)
    split = data.train  # the largest split gives stable per-country figures
    aucs = oracle_auc(split, 10)
    assert all(0.70 < a < 0.90 for a in aucs), aucs
    ctr = float(split.label.mean())
    assert 0.03 < ctr < 0.12
    # the labels really follow the oracle: mean prob ~ CTR
    assert abs(float(split.oracle_prob.mean()) - ctr) < 0.01


def test_days_split_and_sizes(small):
    total = len(small.train) + len(small.valid) + len(small.test)
    assert total == synthetic.SIZES["small"]
    assert 0.7 < len(small.train) / total < 0.8  # days 0-5 of 8
    assert 0.09 < len(small.test) / total < 0.16


def test_seq_len_option_truncates_keeping_most_recent(small):
    short = load_dataset("synthetic-countries", size="small", seed=0, seq_len=10)
    assert short.spec.seq_len == 10
    assert torch.equal(short.train.seq, small.train.seq[:, :, -10:])
    assert torch.equal(short.train.seq_mask, small.train.seq_mask[:, -10:])


def test_unknown_size_and_name():
    with pytest.raises(DataError, match="valid sizes: small, default, large"):
        load_dataset("synthetic-countries", size="huge")
    with pytest.raises(DataError, match="valid names: synthetic-countries, taobao-sample"):
        load_dataset("movielense")
    # A name that needs a folder says how to give it rather than listing names.
    with pytest.raises(DataError, match=r"movielens: give the folder .*movielens:path/to/it"):
        load_dataset("movielens")


def test_planted_similarity_is_visible_in_the_clicks():
    """Countries that are similar by construction click similar categories (default size)."""
    from scipy.stats import spearmanr

    data = load_dataset("synthetic-countries", seed=0)
    sp, ci = data.train, data.spec.cat_index("category")
    clicked = sp.label.numpy() > 0
    M = np.zeros((10, data.spec.cat_fields[ci].vocab_size))
    np.add.at(M, (sp.scenario.numpy()[clicked], sp.cat[:, ci].numpy()[clicked]), 1)
    P = M / M.sum(axis=1, keepdims=True)  # clicked-category distribution per country
    overlap = np.minimum(P[:, None, :], P[None, :, :]).sum(-1)  # histogram intersection
    iu = np.triu_indices(10, 1)
    rho = spearmanr(overlap[iu], data.true_similarity[iu]).statistic
    assert rho > 0.5, rho  # 0.67 for seed 0


@pytest.fixture(scope="module")
def simulated():
    return synthetic.simulate(synthetic.SIZES["small"], seed=0)


def test_sequences_are_one_timeline_per_user(simulated):
    """Consecutive impressions of a user see the same behaviour stream, shifted by the behaviours
    in between: no history holds a behaviour from after its impression, and a later impression
    of the user sees what the earlier one saw (the interest drifts along one timeline)."""
    table, _, _ = simulated
    frame, hist, n = table.frame, table.seqs["hist_item"], table.seq_lengths
    clock = frame["day"].to_numpy() * 24.0 + frame["hour"].to_numpy()
    order = np.lexsort((clock, frame["user_id"].to_numpy()))
    checked = 0
    for a, b in zip(order[:-1], order[1:]):
        if frame["user_id"].iat[a] != frame["user_id"].iat[b] or n[a] < 30 or n[b] < 30 or clock[a] == clock[b]:
            continue
        shift = [m for m in range(1, 30) if np.array_equal(hist[b, :-m], hist[a, m:])]
        assert shift, (a, b)  # b's history = a's history moved on by the behaviours in between
        checked += 1
    assert checked > 1000
    # the test day's histories are longer timelines than the first day's (users keep browsing)
    day = frame["day"].to_numpy()
    assert n[day == 7].mean() > n[day == 0].mean()


def test_logit_parts_add_up_to_the_oracle_and_personal_term_reads_the_sequence(simulated):
    table, _, parts = simulated
    z = parts["intercept"] + sum(parts[s] for s in synthetic.SOURCES)
    np.testing.assert_allclose(1 / (1 + np.exp(-z)), table.oracle_prob, rtol=1e-12)
    # the personal term, recomputed from what a model sees: the target and its behaviour sequence
    f, L, n = table.frame, synthetic.HIST_LEN, table.seq_lengths
    real = np.arange(L)[None, :] >= (L - n)[:, None]
    recency = np.exp(-(L - 1 - np.arange(L)) / synthetic.RECENCY)[None, :] * real
    share = recency / recency.sum(1, keepdims=True)

    def hits(seq, col):
        return table.seqs[seq] == f[col].to_numpy()[:, None]

    personal = (synthetic.MATCH_CATEGORY * (hits("hist_category", "category") * share).sum(1)
                + synthetic.MATCH_BRAND * (hits("hist_brand", "brand") * share).sum(1)
                + synthetic.MATCH_ITEM * np.minimum((hits("hist_item", "item_id") * recency).sum(1), 1))
    np.testing.assert_allclose(parts["personal"], personal, rtol=1e-12)
    # it is what makes a click: the top fifth by personal term clicks several times more often
    y = f["click"].to_numpy()
    hi, lo = parts["personal"] >= np.quantile(parts["personal"], 0.8), parts["personal"] <= 0
    assert y[hi].mean() > 3 * y[lo].mean()


def test_country_parts_are_the_weighted_components():
    """Each block of country parameters is the sum of its global, group and own parts, and group
    mates' group parts are one direction scaled by their weights."""
    parts = synthetic._country_parts(np.random.default_rng(1), 16)  # [3, K, 16]
    np.testing.assert_allclose(parts.sum(0), synthetic._country_block(np.random.default_rng(1), 16))
    W = synthetic.weight_matrix()
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    i = {c: k for k, c in enumerate(NAMES)}
    np.testing.assert_allclose(parts[1, i["ES"]] / Wn[i["ES"], 1], parts[1, i["BR"]] / Wn[i["BR"], 1])
    assert np.allclose(parts[1, i["Others"]], 0)  # Others has no group
    # parts of different components are orthogonal: the planted similarity is exact
    assert abs(parts[1, i["ES"]] @ parts[1, i["UA"]]) < 1e-9 and abs(parts[0, i["ES"]] @ parts[2, i["ES"]]) < 1e-9


def test_decompose_command_adds_up(capsys):
    from saml_core.cli import main

    assert main(["data", "decompose", "synthetic-countries", "--size", "small", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    var = {r["source"]: r["variance"] for r in d["sources"]}
    assert list(var) == ["base", *synthetic.SOURCES, "covariance"]
    assert sum(var.values()) == pytest.approx(d["logit_variance"])
    # the personal term is the largest source, and the user alone holds little of it
    assert max(var, key=var.get) == "personal" and var["personal"] > 0.35 * d["logit_variance"]
    assert d["personal_from_user_r2"] < 0.3
    c = d["clicks"]
    assert c["explained"] + c["bernoulli_noise"] == pytest.approx(c["click_variance"])
    assert main(["data", "decompose", "synthetic-countries", "--size", "small"]) == 0
    out = capsys.readouterr().out
    assert "personal, through the behaviour sequence" in out and "Bernoulli noise" in out and "UA" in out
    assert main(["data", "decompose", "taobao-sample"]) == 2
    assert "not simulated" in capsys.readouterr().err
