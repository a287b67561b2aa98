"""`synthetic-countries`: a simulator of a cross-border e-commerce click log with known truth.

The paper's industrial data (AliExpress, per country) is not public. This simulator keeps its
shape -- 10 scenarios RU, BR, ES, US, FR, PL, NL, CL, UA, Others with skewed traffic, 8 days,
30 recent behaviours per sample -- and, unlike real data, knows (a) the true click probability
of every sample (so the Bayes-optimal "oracle" AUC is known) and (b) how similar the countries
are (the planted `true_similarity`). docs/DATA.md explains the model in prose.

Generating model
----------------
Components. M = 1 + 3 + 10 unit "taste components": one global, one per country group
(latin = ES, BR, CL; east = UA, PL, RU; west = US, FR, NL) and one own component per country.
For each country-level parameter block the M component directions are drawn at random and
orthonormalised (QR), so they are exactly orthogonal.

Country parameters. Country k mixes the components with weights W[k] = (global, group, own)
(`COUNTRY_WEIGHTS`): large countries and "Others" (a mix of many countries) lean on the global
component, small ones on their group and their own component. Each block is
    theta_k = sum_c W[k, c] * z_c / |W[k]|
for four blocks: the category taste a_k (what users of k browse and like), a category demand
a'_k (what sells in k beyond a user's own taste: logistics, season, local offers), the brand
affinity (one value per brand) and a price slope (one coordinate of such a block).

Planted similarity. true_similarity[k, l] = W[k].W[l] / (|W[k]| |W[l]|): the cosine between the
countries' weight vectors. Because the components are orthonormal, it equals exactly the cosine
between a_k and a_l (and between the demand and brand blocks). Group mates share the group term,
countries of different groups share only the global term.

Users and behaviours. A user lives in one country (drawn by traffic share) and has a taste
p_u = a_k + 0.8 * e_u (|a_k| = 1, e_u a random personal direction of norm ~1). Behaviours draw
categories from softmax(1.5 * p_u . v_c + log popularity_c) and items within the category by
popularity; a sample carries the user's last 5..30 behaviours (hist_item/hist_category/hist_brand).

Impressions. The shown item comes half from the user's taste, half from overall popularity. The
click logit is
    z = b_k + 0.4 * p_u.v_c + 0.6 * a'_k.v_c + 0.5 * brand_k[b] + slope_k * (price - 2) / 2
        + item quality + shop quality + gender x category + device + hour + 0.15 * activity
where b_k is calibrated so that country k's CTR is BASE_CTR * exp(COUNTRY_BIAS[k])
and the label is Bernoulli(sigmoid(z)); sigmoid(z) is kept as `oracle_prob`. The personal
taste is visible through the behaviour sequence; the country terms (demand, brand, price) are
not, so a model has to learn them per scenario -- from little data in small countries, where
pooling with similar countries helps.

Days. Each sample gets a day 0..7: days 0-5 train, day 6 validation, day 7 test.
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
USER_SPREAD = 0.8  # norm of a user's personal taste deviation (country taste has norm 1)
SEQ_SHARPNESS = 1.5  # how strongly behaviours follow the taste

CATEGORICAL = (
    "user_id", "item_id", "category", "brand", "shop", "price_bucket",
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


def _country_block(rng: np.random.Generator, dim: int) -> np.ndarray:
    """[K, dim] country parameters built from orthonormal components (entries ~ unit scale)."""
    W = weight_matrix()
    q, _ = np.linalg.qr(rng.standard_normal((dim, W.shape[1])))  # [dim, M], orthonormal columns
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    return (Wn @ q.T) * np.sqrt(dim)


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


def generate(n_samples: int, seed: int = 0) -> tuple[RawTable, dict]:
    """Simulate `n_samples` impressions. Returns the raw table (all days) and generator facts."""
    rng = np.random.default_rng(seed)
    K = len(SCENARIOS)
    # ~25 impressions per user and ~40 per item over the 8 days: enough that per-id embeddings
    # can be learned, as for the active users and items of a real log
    n_users = max(200, n_samples // 25)
    n_items = int(np.clip(n_samples // 40, 1_000, 200_000))
    n_brands = N_CATEGORIES * BRANDS_PER_CATEGORY

    # ---- country parameters (see module docstring) ----
    taste = _country_block(rng, LATENT) / np.sqrt(LATENT)  # [K, D] a_k, unit norm
    demand = _country_block(rng, LATENT) / np.sqrt(LATENT)  # [K, D] a'_k, unit norm
    brand_aff = _country_block(rng, n_brands)  # [K, B]
    price_slope = 0.5 * _country_block(rng, 16)[:, 0]  # [K]

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
    item_quality = 0.15 * rng.standard_normal(n_items)
    shop_quality = 0.15 * rng.standard_normal(N_SHOPS)
    order = np.argsort(item_cat, kind="stable")
    count = np.bincount(item_cat, minlength=N_CATEGORIES)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    gender_cat = 0.25 * rng.standard_normal((2, N_CATEGORIES))

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
    pref = SEQ_SHARPNESS * user_taste @ cat_vec.T + cat_logpop  # [U, C]
    user_cum = np.cumsum(np.exp(pref - pref.max(axis=1, keepdims=True)), axis=1)

    # ---- impressions ----
    N = int(n_samples)
    user = rng.integers(0, n_users, N)
    country = user_country[user]
    day = rng.integers(0, N_DAYS, N)
    hour = (rng.normal(15, 5, N).round().astype(np.int64)) % 24
    device = rng.choice(3, N, p=[0.6, 0.3, 0.1])

    hist_cat = _sample_rows(rng, user_cum, user, HIST_LEN)  # [N, 30]
    hist_item = _items_in_category(rng, hist_cat, start, count, order)
    hist_brand = item_brand[hist_item]
    hist_len = np.where(rng.random(N) < 0.7, HIST_LEN, rng.integers(5, HIST_LEN, N))

    from_taste = rng.random(N) < 0.5
    cat_pop_cum = np.cumsum(np.exp(cat_logpop))[None, :]
    tgt_cat = np.where(
        from_taste,
        _sample_rows(rng, user_cum, user, 1)[:, 0],
        _sample_rows(rng, cat_pop_cum, np.zeros(N, dtype=np.int64), 1)[:, 0],
    )
    item = _items_in_category(rng, tgt_cat, start, count, order)
    brand = item_brand[item]
    price_bucket = item_price_bucket[item]

    act_z = (user_activity[user] - user_activity.mean()) / user_activity.std()
    logit = (
        0.4 * np.einsum("nd,nd->n", user_taste[user], cat_vec[tgt_cat])
        + 0.6 * np.einsum("nd,nd->n", demand[country], cat_vec[tgt_cat])
        + 0.5 * brand_aff[country, brand]
        + price_slope[country] * (price_bucket - 2) / 2
        + item_quality[item]
        + shop_quality[item_shop[item]]
        + gender_cat[user_gender[user], tgt_cat]
        + np.array([0.0, 0.15, -0.2])[device]
        + 0.2 * np.cos((hour - 20) / 24 * 2 * np.pi)
        + 0.15 * act_z
    )
    # Per-country intercepts b_k, calibrated so that country k's mean click probability is
    # BASE_CTR * exp(COUNTRY_BIAS[k]) (two Newton-like steps on the logit scale).
    target = BASE_CTR * np.exp(np.asarray(COUNTRY_BIAS))
    b = np.log(target / (1 - target))
    for _ in range(3):
        prob = 1.0 / (1.0 + np.exp(-(logit + b[country])))
        mean = np.bincount(country, prob, K) / np.maximum(np.bincount(country, minlength=K), 1)
        mean = np.clip(mean, 1e-6, 1 - 1e-6)
        b += np.log(target / (1 - target)) - np.log(mean / (1 - mean))
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
    facts = {"n_users": n_users, "n_items": n_items, "n_categories": N_CATEGORIES,
             "n_brands": n_brands, "n_shops": N_SHOPS}
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


def load(*, name: str = "synthetic-countries", seed: int = 0, size: str | None = None,
         seq_len: int | None = None, min_count: int = 1, exclude: tuple = ()) -> MultiScenarioData:
    size = size or "default"
    if size not in SIZES:
        raise DataError(
            f"{name}: unknown size {size!r}; valid sizes: {', '.join(SIZES)} "
            f"({', '.join(f'{k}={v:,} samples' for k, v in SIZES.items())})"
        )
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
        kind="synthetic",
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
