"""`synthetic-countries`: a simulator of a cross-border e-commerce click log with known truth.

The paper's industrial data (AliExpress, per country) is not public. This simulator keeps its
shape -- 10 scenarios RU, BR, ES, US, FR, PL, NL, CL, UA, Others with skewed traffic, 8 days,
30 recent behaviours per sample -- and, unlike real data, knows (a) the true click probability
of every sample (so the Bayes-optimal "oracle" AUC is known), (b) how similar the countries are
(the planted `true_similarity`) and (c) how much of the click logit each source contributes
(`decompose`). docs/DATA.md gives the equations and the measured decomposition.

Generating model (names of the constants in capitals)
-----------------------------------------------------
Country components. M = 1 + 3 + 10 unit components: one global, one per country group (latin =
ES, BR, CL; east = UA, PL, RU; west = US, FR, NL) and one own per country. For each block of
country parameters the M component directions are drawn and orthonormalised (QR); country k
mixes them with the weights W[k] = (global, group, own) of `COUNTRY_WEIGHTS`:
    theta_k = sum_c W[k, c] z_c / |W[k]|.
Blocks: the category taste a_k (what users of k browse), the category demand a'_k (what sells in
k beyond a user's own interest), the brand affinity (one value per brand) and a price slope.
true_similarity[k, l] = W[k].W[l] / (|W[k]| |W[l]|) is exactly the cosine of a_k and a_l.

Users, interests, behaviours. A user of country k has a long-term interest over categories
    pi_u = softmax(SEQ_SHARPNESS * (a_k + USER_SPREAD e_u) . v_c + log popularity_c),
and a timeline: warm-up steps, then its impressions in time order. At each step the current
interest ("focus", a category) is kept with probability FOCUS_STICKINESS, else redrawn from pi_u
(drift: the focus of day 7 is not the focus of day 2), and the user browses 1 + Poisson(BURST - 1)
items, each from the focus with probability FOCUS_SHARE, else from pi_u (items within a
category by popularity). A sample's behaviour sequence is the user's last 30 behaviours before it.

Impressions. The shown item comes from the focus (P_FOCUS), pi_u (P_INTEREST), the last 10
behaviours (P_RETARGET, the item itself) or overall popularity (the rest). The click logit is
    z = b_k + personal + country + item + context
    personal = MATCH_CATEGORY s_cat + MATCH_BRAND s_brand + MATCH_ITEM min(1, r_item)
    country  = DEMAND a'_k.v_c + BRAND_AFFINITY brand_k[b] + PRICE_SLOPE slope_k (price_bucket - 2) / 2
    item     = item quality (ITEM_QUALITY) + shop quality (SHOP_QUALITY)
    context  = gender x category + device + hour + ACTIVITY * activity
where s_cat and s_brand are the recency-weighted shares (weights exp(-age / RECENCY), age 0 = the
most recent behaviour, normalised over the sample's history) of the target's category and brand
in its behaviour sequence, and r_item = sum of exp(-age / RECENCY) over the behaviours that are
the target item itself. The personal term is a function of the sequence and the target only: it
is read from the sequence or not at all (a user's long-term interest pi_u does not tell the
current focus). The country term splits exactly into its global, group and own parts (it is
linear in theta_k). b_k is calibrated so that country k's CTR is BASE_CTR * exp(COUNTRY_BIAS[k]);
the label is Bernoulli(sigmoid(z)) and sigmoid(z) is kept as `oracle_prob`.

Days. Each impression gets a day 0..7 and an hour; days 0-5 train, day 6 validation, day 7 test.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from saml_core.data.build import encode_splits
from saml_core.data.schema import RawTable, Schema, SeqColumn
from saml_core.data.types import DataError, MultiScenarioData

SCENARIOS = ("RU", "BR", "ES", "US", "FR", "PL", "NL", "CL", "UA", "Others")
TRAFFIC_SHARE = (0.14, 0.12, 0.08, 0.07, 0.04, 0.06, 0.03, 0.03, 0.03, 0.40)
GROUPS = {"latin": ("ES", "BR", "CL"), "east": ("UA", "PL", "RU"), "west": ("US", "FR", "NL")}
# (global, group, own) weight of each country; Others has no group.
COUNTRY_WEIGHTS = {
    "RU": (0.80, 0.50, 0.35),
    "BR": (0.75, 0.55, 0.35),
    "ES": (0.55, 0.70, 0.45),
    "US": (0.70, 0.45, 0.55),
    "FR": (0.45, 0.60, 0.65),
    "PL": (0.45, 0.75, 0.50),
    "NL": (0.40, 0.60, 0.70),
    "CL": (0.35, 0.85, 0.40),
    "UA": (0.35, 0.85, 0.40),
    "Others": (0.95, 0.00, 0.30),
}
# Per-country CTR: BASE_CTR * exp(bias) (Others and US click a little less).
COUNTRY_BIAS = (0.0, 0.1, 0.15, -0.15, -0.05, 0.05, -0.1, 0.2, 0.1, -0.2)

SIZES = {"small": 20_000, "default": 200_000, "large": 3_000_000}
HIST_LEN = 30
N_DAYS = 8
TRAIN_DAYS, VALID_DAY, TEST_DAY = range(0, 6), 6, 7
N_CATEGORIES, BRANDS_PER_CATEGORY, N_SHOPS, N_PRICE = 40, 6, 400, 5
LATENT = 16
BASE_CTR = 0.07
IMPRESSIONS_PER_USER = 40  # users = samples / 40
IMPRESSIONS_PER_ITEM = 100  # items = samples / 100 (at least 1,000): item quality is learnable

# interests and behaviours
USER_SPREAD = 0.8  # norm of a user's personal taste deviation (country taste has norm 1)
SEQ_SHARPNESS = 1.5  # how strongly the long-term interest follows the taste
FOCUS_STICKINESS = 0.6  # the focus is kept from one step to the next with this probability
FOCUS_SHARE = 0.75  # share of a step's behaviours in the focus category
BURST = 3.0  # mean behaviours per step
MAX_WARMUP = 12  # steps before a user's first impression: 1..12 (new users have short histories)
RETARGET_WINDOW = 10  # a retargeted item is one of the last 10 behaviours
P_FOCUS, P_INTEREST, P_RETARGET = 0.45, 0.15, 0.08  # where the shown item comes from (rest: popularity)

# click logit
RECENCY = 10.0  # behaviour weight exp(-age / RECENCY), age 0 = the most recent
MATCH_CATEGORY, MATCH_BRAND, MATCH_ITEM = 2.7, 1.2, 1.0
DEMAND, BRAND_AFFINITY, PRICE_SLOPE = 0.5, 0.4, 0.4
ITEM_QUALITY, SHOP_QUALITY = 0.3, 0.15
GENDER_CATEGORY, ACTIVITY = 0.25, 0.15
DEVICE_EFFECT = (0.0, 0.15, -0.2)

# the sources of the logit, in the order of the decomposition
SOURCES = ("global", "group", "own", "personal", "item", "context")

# The user is described by profile fields and behaviours, not by an id, as in the Taobao data
# (taobao-sample, taobao-raw) and in DIN/BST: the personal term lives in the behaviour sequence,
# and an id field only memorises each user's few train clicks (docs/DATA.md, measured). The
# frame keeps `user_id` (the log's identity, e.g. for a CSV export), but it is not a feature.
CATEGORICAL = (
    "item_id", "category", "brand", "shop", "price_bucket",
    "age_group", "gender", "hour", "device",
)
NUMERIC = ("price", "user_activity")
SEQUENCES = (
    SeqColumn("hist_item", "item_id"),
    SeqColumn("hist_category", "category"),
    SeqColumn("hist_brand", "brand"),
)


def weight_matrix() -> np.ndarray:
    """[K, M] component weights; columns: global, latin, east, west, own_0..own_9."""
    groups = list(GROUPS)
    W = np.zeros((len(SCENARIOS), 1 + len(groups) + len(SCENARIOS)))
    for k, name in enumerate(SCENARIOS):
        g, grp, own = COUNTRY_WEIGHTS[name]
        W[k, 0] = g
        for j, gname in enumerate(groups):
            if name in GROUPS[gname]:
                W[k, 1 + j] = grp
        W[k, 1 + len(groups) + k] = own
    return W


def true_similarity() -> np.ndarray:
    """[K, K] planted similarity: cosine between the countries' component-weight vectors."""
    W = weight_matrix()
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    return Wn @ Wn.T


def _country_parts(rng: np.random.Generator, dim: int) -> np.ndarray:
    """[3, K, dim]: the global, group and own parts of a block of country parameters built from
    orthonormal components (their sum: entries ~ unit scale)."""
    W = weight_matrix()
    q, _ = np.linalg.qr(rng.standard_normal((dim, W.shape[1])))  # [dim, M], orthonormal columns
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    comp = q.T * np.sqrt(dim)  # [M, dim]
    cut = (slice(0, 1), slice(1, 1 + len(GROUPS)), slice(1 + len(GROUPS), W.shape[1]))
    return np.stack([Wn[:, c] @ comp[c] for c in cut])


def _country_block(rng: np.random.Generator, dim: int) -> np.ndarray:
    """[K, dim] country parameters: the sum of their global, group and own parts."""
    return _country_parts(rng, dim).sum(0)


def _sample_rows(rng, cum: np.ndarray, rows: np.ndarray, n_draws: int) -> np.ndarray:
    """Inverse-CDF draws: for each r in rows, n_draws indices from the row cum[r] ([R, C] cumsum).

    The uniforms are drawn at once (so the result does not depend on chunking); the CDF
    comparison runs in chunks of rows to bound memory ([chunk, n_draws, C] booleans).
    """
    C = cum.shape[1]
    cdf = (cum / cum[:, -1:]).astype(np.float64)
    u = rng.random((len(rows), n_draws))
    out = np.empty((len(rows), n_draws), dtype=np.int64)
    step = max(1, 2_000_000 // (n_draws * C))
    for lo in range(0, len(rows), step):
        hi = min(lo + step, len(rows))
        out[lo:hi] = np.count_nonzero(cdf[rows[lo:hi], None, :] <= u[lo:hi, :, None], axis=2)
    return np.minimum(out, C - 1)


def _items_in_category(rng, cats: np.ndarray, start: np.ndarray, count: np.ndarray,
                       order: np.ndarray) -> np.ndarray:
    """Pick an item within each category, skewed to the popular head (rank ~ count * u^2)."""
    rank = np.floor(count[cats] * rng.random(cats.shape) ** 2).astype(np.int64)
    return order[start[cats] + np.minimum(rank, count[cats] - 1)]


def _shares(hist: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """[N] weighted count of `target` in each row of `hist` ([N, W]; weight [N, W], zero left of
    a row's history): a recency-weighted share when the rows of `weight` sum to 1."""
    return ((hist == target[:, None]) * weight).sum(1)


def simulate(n_samples: int, seed: int = 0) -> tuple[RawTable, dict, dict]:
    """Simulate `n_samples` impressions: (raw table of all days, generator facts, the logit's
    parts by source: name -> [N], see `SOURCES`, plus "intercept" b_k)."""
    rng = np.random.default_rng(seed)
    K = len(SCENARIOS)
    n_users = max(200, n_samples // IMPRESSIONS_PER_USER)
    n_items = int(np.clip(n_samples // IMPRESSIONS_PER_ITEM, 1000, 100_000))
    n_brands = N_CATEGORIES * BRANDS_PER_CATEGORY

    # ---- country parameters (module docstring) ----
    taste = _country_block(rng, LATENT) / np.sqrt(LATENT)  # [K, D] a_k, unit norm
    demand = _country_parts(rng, LATENT) / np.sqrt(LATENT)  # [3, K, D] parts of a'_k (unit norm)
    brand_aff = _country_parts(rng, n_brands)  # [3, K, B]
    price_slope = _country_parts(rng, 16)[:, :, 0]  # [3, K]

    # ---- catalogue ----
    cat_vec = rng.standard_normal((N_CATEGORIES, LATENT))  # [C, D]: a_k . v_c ~ N(0, 1)
    cat_logpop = -0.7 * np.log1p(rng.permutation(N_CATEGORIES))
    item_cat = rng.choice(N_CATEGORIES, n_items, p=np.exp(cat_logpop) / np.exp(cat_logpop).sum())
    item_brand = item_cat * BRANDS_PER_CATEGORY + np.minimum(
        (BRANDS_PER_CATEGORY * rng.random(n_items) ** 1.5).astype(np.int64), BRANDS_PER_CATEGORY - 1
    )
    item_shop = rng.integers(0, N_SHOPS, n_items)
    item_price_bucket = rng.integers(0, N_PRICE, n_items)
    item_price = np.exp(1.0 + 0.8 * item_price_bucket + 0.3 * rng.standard_normal(n_items))
    item_quality = ITEM_QUALITY * rng.standard_normal(n_items)
    shop_quality = SHOP_QUALITY * rng.standard_normal(N_SHOPS)
    order = np.argsort(item_cat, kind="stable")
    count = np.bincount(item_cat, minlength=N_CATEGORIES)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    gender_cat = GENDER_CATEGORY * rng.standard_normal((2, N_CATEGORIES))

    # ---- users ----
    # exact per-country user counts (largest remainder), so traffic shares hold at every size
    quota = np.asarray(TRAFFIC_SHARE, dtype=np.float64) / sum(TRAFFIC_SHARE) * n_users
    per_country = np.floor(quota).astype(np.int64)
    per_country[np.argsort(per_country - quota)[: n_users - per_country.sum()]] += 1
    user_country = rng.permutation(np.repeat(np.arange(K), per_country))
    user_taste = taste[user_country] + USER_SPREAD * rng.standard_normal((n_users, LATENT)) / np.sqrt(LATENT)
    user_age = rng.integers(0, 6, n_users)
    user_gender = rng.integers(0, 2, n_users)
    user_activity = np.log1p(rng.gamma(2.0, 20.0, n_users))
    pref = SEQ_SHARPNESS * user_taste @ cat_vec.T + cat_logpop  # [U, C]: log pi_u + const
    user_cum = np.cumsum(np.exp(pref - pref.max(axis=1, keepdims=True)), axis=1)

    # ---- impressions ----
    N = int(n_samples)
    user = rng.integers(0, n_users, N)
    day = rng.integers(0, N_DAYS, N)
    hour = (rng.normal(15, 5, N).round().astype(np.int64)) % 24
    device = rng.choice(3, N, p=[0.6, 0.3, 0.1])
    clock = day * 24.0 + hour + rng.random(N)  # time of day within the 8 days

    # ---- timelines: warm-up steps, then one step per impression (module docstring) ----
    warm = rng.integers(1, MAX_WARMUP + 1, n_users)
    n_warm = int(warm.sum())
    # steps: warm-up steps (clock -w..-1) then impressions; sorted by user, then time
    warm_clock = (np.arange(n_warm) - np.repeat(np.cumsum(warm), warm)).astype(np.float64)  # -w..-1 per user
    steps = np.lexsort((np.concatenate([warm_clock, clock]),
                        np.concatenate([np.repeat(np.arange(n_users), warm), user])))
    step_user = np.concatenate([np.repeat(np.arange(n_users), warm), user])[steps]
    n_steps = len(steps)
    impression_step = np.empty(N, dtype=np.int64)  # the step of each impression
    is_impression = steps >= n_warm
    impression_step[steps[is_impression] - n_warm] = np.flatnonzero(is_impression)
    first = np.ones(n_steps, dtype=bool)
    first[1:] = step_user[1:] != step_user[:-1]
    new_focus = first | (rng.random(n_steps) >= FOCUS_STICKINESS)
    focus_draw = _sample_rows(rng, user_cum, step_user[new_focus], 1)[:, 0]
    focus = focus_draw[np.cumsum(new_focus) - 1]  # [S] the current focus category of each step

    burst = 1 + rng.poisson(BURST - 1.0, n_steps)
    beh_step = np.repeat(np.arange(n_steps), burst)
    beh_user = step_user[beh_step]
    background = _sample_rows(rng, user_cum, beh_user, 1)[:, 0]
    beh_cat = np.where(rng.random(len(beh_step)) < FOCUS_SHARE, focus[beh_step], background)
    beh_item = _items_in_category(rng, beh_cat, start, count, order)
    end = np.cumsum(burst)  # [S] stream position after each step's behaviours
    user_begin = np.zeros(n_users, dtype=np.int64)
    user_begin[step_user[first]] = np.concatenate([[0], end[:-1]])[first]

    # behaviour sequence of each impression: the user's last HIST_LEN behaviours before it
    stop = end[impression_step]  # [N]
    hist_len = np.minimum(HIST_LEN, stop - user_begin[user])
    pos = stop[:, None] - HIST_LEN + np.arange(HIST_LEN)[None, :]  # [N, 30], most recent last
    valid = np.arange(HIST_LEN)[None, :] >= (HIST_LEN - hist_len)[:, None]
    pos = np.where(valid, pos, 0)
    hist_cat = np.where(valid, beh_cat[pos], 0)
    hist_item = np.where(valid, beh_item[pos], 0)
    hist_brand = item_brand[hist_item]
    del pos  # [N, 30] int64: 720 MB at the large size

    # ---- the shown item ----
    source = rng.choice(4, N, p=[P_FOCUS, P_INTEREST, P_RETARGET, 1 - P_FOCUS - P_INTEREST - P_RETARGET])
    cat_pop_cum = np.cumsum(np.exp(cat_logpop))[None, :]
    tgt_cat = np.select(
        [source == 0, source == 1],
        [focus[impression_step], _sample_rows(rng, user_cum, user, 1)[:, 0]],
        _sample_rows(rng, cat_pop_cum, np.zeros(N, dtype=np.int64), 1)[:, 0],
    )
    item = _items_in_category(rng, tgt_cat, start, count, order)
    back = np.minimum(rng.integers(0, RETARGET_WINDOW, N), hist_len - 1)  # a recent behaviour
    item = np.where(source == 2, hist_item[np.arange(N), HIST_LEN - 1 - back], item)
    tgt_cat = item_cat[item]
    brand = item_brand[item]
    price_bucket = item_price_bucket[item]
    country = user_country[user]

    # ---- the click logit, by source ----
    recency = np.exp(-(HIST_LEN - 1 - np.arange(HIST_LEN)) / RECENCY)[None, :]  # 1 for the most recent
    weight = recency * valid
    weight /= weight.sum(1, keepdims=True)
    parts = {}
    country_parts = (
        DEMAND * np.einsum("jnd,nd->jn", demand[:, country], cat_vec[tgt_cat])
        + BRAND_AFFINITY * brand_aff[:, country, brand]
        + PRICE_SLOPE * price_slope[:, country] * (price_bucket - 2) / 2
    )  # [3, N]
    parts["global"], parts["group"], parts["own"] = country_parts
    parts["personal"] = (MATCH_CATEGORY * _shares(hist_cat, tgt_cat, weight)
                         + MATCH_BRAND * _shares(hist_brand, brand, weight)
                         + MATCH_ITEM * np.minimum(_shares(hist_item, item, recency * valid), 1.0))
    parts["item"] = item_quality[item] + shop_quality[item_shop[item]]
    act_z = (user_activity[user] - user_activity.mean()) / user_activity.std()
    parts["context"] = (gender_cat[user_gender[user], tgt_cat] + np.asarray(DEVICE_EFFECT)[device]
                        + 0.2 * np.cos((hour - 20) / 24 * 2 * np.pi) + ACTIVITY * act_z)
    logit = sum(parts[s] for s in SOURCES)
    # Per-country intercepts b_k, calibrated so that country k's mean click probability is
    # BASE_CTR * exp(COUNTRY_BIAS[k]) (three Newton-like steps on the logit scale).
    target = BASE_CTR * np.exp(np.asarray(COUNTRY_BIAS))
    b = np.log(target / (1 - target))
    for _ in range(3):
        prob = 1.0 / (1.0 + np.exp(-(logit + b[country])))
        mean = np.bincount(country, prob, K) / np.maximum(np.bincount(country, minlength=K), 1)
        mean = np.clip(mean, 1e-6, 1 - 1e-6)
        b += np.log(target / (1 - target)) - np.log(mean / (1 - mean))
    parts["intercept"] = b[country]
    logit = logit + b[country]
    prob = 1.0 / (1.0 + np.exp(-logit))
    label = (rng.random(N) < prob).astype(np.int8)

    frame = pd.DataFrame({
        "country": np.asarray(SCENARIOS)[country],
        "click": label,
        "user_id": user,
        "item_id": item,
        "category": tgt_cat,
        "brand": brand,
        "shop": item_shop[item],
        "price_bucket": price_bucket,
        "age_group": user_age[user],
        "gender": user_gender[user],
        "hour": hour,
        "device": device,
        "price": item_price[item],
        "user_activity": user_activity[user],
        "day": day,
    })
    table = RawTable(
        frame=frame,
        seqs={"hist_item": hist_item, "hist_category": hist_cat, "hist_brand": hist_brand},
        seq_lengths=hist_len,
        oracle_prob=prob,
    )
    shows = np.bincount(item, minlength=n_items)
    facts = {"n_users": n_users, "n_items": n_items, "n_categories": N_CATEGORIES,
             "n_brands": n_brands, "n_shops": N_SHOPS,
             "impressions_per_item_median": float(np.median(shows[shows > 0])),
             "items_shown": int((shows > 0).sum())}
    return table, facts, parts


def generate(n_samples: int, seed: int = 0) -> tuple[RawTable, dict]:
    """Simulate `n_samples` impressions. Returns the raw table (all days) and generator facts."""
    table, facts, _ = simulate(n_samples, seed)
    return table, facts


SCHEMA = Schema(
    scenario="country",
    label="click",
    categorical=CATEGORICAL,
    numeric=NUMERIC,
    sequences=SEQUENCES,
    day="day",
    scenario_values=SCENARIOS,
    scenario_names=SCENARIOS,
)


def _size(name: str, size: str | None) -> str:
    size = size or "default"
    if size not in SIZES:
        raise DataError(
            f"{name}: unknown size {size!r}; valid sizes: {', '.join(SIZES)} "
            f"({', '.join(f'{k}={v:,} samples' for k, v in SIZES.items())})"
        )
    return size


SHRINK = 5.0  # pseudo-rows of the user-level table in `decompose`

SOURCE_LABELS = {
    "base": "country base rate (b_k: between countries)",
    "global": "global component (country terms)",
    "group": "group component (country terms)",
    "own": "own country component (country terms)",
    "personal": "personal, through the behaviour sequence",
    "item": "item (item and shop quality)",
    "context": "context (gender x category, device, hour, activity)",
    "covariance": "covariances between sources (2 x sum)",
}


def decompose(*, name: str = "synthetic-countries", size: str | None = None, seed: int = 0) -> dict:
    """The variance of the true click logit z by source (docs/DATA.md), over all samples:
    Var(z) = Var_between(country mean of z) + sum_s Var_within(part s) + 2 sum_{s<t} Cov_within,
    where "within" removes each country's mean. Then the clicks: Var(y) = Var(p) + E[p (1 - p)]
    with p = sigmoid(z): the second term is the Bernoulli noise no model can predict."""
    size = _size(name, size)
    table, facts, parts = simulate(SIZES[size], seed)
    frame = table.frame
    country = pd.Index(SCENARIOS).get_indexer(frame["country"].to_numpy())
    n_k = np.bincount(country, minlength=len(SCENARIOS))

    def centred(x):  # x minus its country's mean
        return x - (np.bincount(country, x, len(SCENARIOS)) / np.maximum(n_k, 1))[country]

    z = parts["intercept"] + sum(parts[s] for s in SOURCES)
    total, within_total = float(z.var()), float(centred(z).var())
    var = {"base": total - within_total, **{s: float(centred(parts[s]).var()) for s in SOURCES}}
    var["covariance"] = within_total - sum(var[s] for s in SOURCES)
    rows = [{"source": s, "label": SOURCE_LABELS[s], "variance": v, "share": v / total} for s, v in var.items()]

    y, p = frame["click"].to_numpy().astype(np.float64), table.oracle_prob
    noise = float(np.mean(p * (1 - p)))
    # how much of the personal term a user-level table holds without the sequence: user x
    # target-category means of the train days, shrunk to the user's mean and that to the overall
    # mean (SHRINK pseudo-rows each, so that a cell seen once is not taken at its value), scored
    # on the test day by R^2 (0: no better than the overall mean)
    personal, day = parts["personal"], frame["day"].to_numpy()
    users = frame["user_id"].to_numpy()
    key = users * N_CATEGORIES + frame["category"].to_numpy()
    train, test = np.isin(day, TRAIN_DAYS), day == TEST_DAY
    overall = personal[train].mean()
    n_users = facts["n_users"]
    u_sum, u_n = np.bincount(users[train], personal[train], n_users), np.bincount(users[train], minlength=n_users)
    user_mean = (u_sum + SHRINK * overall) / (u_n + SHRINK)
    c_sum = np.bincount(key[train], personal[train], n_users * N_CATEGORIES)
    c_n = np.bincount(key[train], minlength=n_users * N_CATEGORIES)
    guess = (c_sum[key[test]] + SHRINK * user_mean[users[test]]) / (c_n[key[test]] + SHRINK)
    r2_user = 1 - float(np.mean((personal[test] - guess) ** 2) / personal[test].var())

    from saml_core.data.stats import auc

    per_country = []
    for k, cname in enumerate(SCENARIOS):
        m = country == k
        zk = float(z[m].var())
        per_country.append({"scenario": cname, "samples": int(n_k[k]), "ctr": float(y[m].mean()),
                            "logit_variance": zk,
                            "shares": {s: float(parts[s][m].var()) / zk for s in SOURCES},
                            "oracle_auc_test": auc(y[m & test], p[m & test])})
    return {"dataset": name, "size": size, "seed": seed, "samples": len(frame), "generator": facts,
            "logit_variance": total, "sources": rows,
            "clicks": {"ctr": float(y.mean()), "click_variance": float(p.mean() * (1 - p.mean())),
                       "explained": float(p.var()), "bernoulli_noise": noise,
                       "noise_share": noise / float(p.mean() * (1 - p.mean()))},
            "personal_from_user_r2": r2_user, "per_country": per_country}


def load(*, name: str = "synthetic-countries", seed: int = 0, size: str | None = None,
         seq_len: int | None = None, min_count: int = 1, exclude: tuple = ()) -> MultiScenarioData:
    size = _size(name, size)
    table, facts = generate(SIZES[size], seed)
    day = table.frame["day"].to_numpy()
    info = {
        "title": "Simulated cross-border e-commerce log (10 countries)",
        "simulated": True,
        "size": size,
        "seed": seed,
        "samples": len(table),
        "days": "days 0-5 train, day 6 validation, day 7 test",
        "generator": facts,
        "groups": {k: list(v) for k, v in GROUPS.items()},
        "country_weights": {k: list(v) for k, v in COUNTRY_WEIGHTS.items()},
        "caveats": [
            "Simulated data: countries, users and items are generated; the true click "
            "probability (oracle) and the planted country similarity are known.",
        ],
        "provenance": "saml_core.data.synthetic (documented in docs/DATA.md)",
        # the planted country groups (Others has none): the "same group only" null of recovery
        "scenario_groups": {c: next((g for g, members in GROUPS.items() if c in members), None)
                            for c in SCENARIOS},
    }
    return encode_splits(
        name=name,
        schema=SCHEMA,
        train=table.take(np.isin(day, TRAIN_DAYS)),
        valid=table.take(day == VALID_DAY),
        test=table.take(day == TEST_DAY),
        seq_len=seq_len or HIST_LEN,
        source=name,
        info=info,
        true_similarity=true_similarity(),
        category_field="category",
        scenario_noun=("country", "countries"),
        min_positives=None,  # the scenario set is the design: every one stays
        min_count=min_count,
        exclude=tuple(exclude),
    )
