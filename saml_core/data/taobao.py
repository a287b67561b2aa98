"""`taobao-sample`: the real joined Taobao ad display/click sample shipped in datasets/taobao_dmr/.

2,500 rows of the Alimama data after Alibaba's DMR preprocessing (see datasets/taobao_dmr/
PROVENANCE.md): each impression with its user profile, ad features and the user's last 50
behaviours (btag, category, brand), left-padded so the most recent behaviour is LAST.

Oversampled positives, handled honestly: the 500-row train file repeats positive rows (CTR 42%;
196 surplus copies), the 2,000-row test file is a natural sample (CTR 4.85%). We drop exact
duplicate rows of the train file (304 rows, CTR 4.6%), pool them with the test file (2,304
natural rows; the two files share no rows) and split BY USER with a fixed hash of uid:
55% of users train, 10% validation, 35% test. The file has no timestamps, so a time split is
impossible; a user split keeps every user's rows in one split (no user leakage), and uid is
therefore not a feature.

Scenario = new_user_class_level (city level 0..4), as in the SAML paper's public experiment.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from saml_core.data.build import encode_splits
from saml_core.data.schema import RawTable, Schema, SeqColumn
from saml_core.data.types import DataError, MultiScenarioData

SAMPLE_FILE = Path(__file__).resolve().parents[2] / "datasets" / "taobao_dmr" / "alimama_dmr_named.csv"
CITY_LEVELS = (0, 1, 2, 3, 4)
CITY_NAMES = tuple(f"city level {v}" for v in CITY_LEVELS)
SCENARIO_NOUN = ("city level", "city levels")
DEFAULT_SEQ_LEN = 15
TRAIN_FRACTION, VALID_FRACTION = 0.55, 0.10
# The shown ad gets this behaviour type, so the target can sit in the btag channel like a behaviour.
TARGET_BTAG = 0  # in the DMR file 0 marks only padding, which never reaches the encoder

PROFILE = ("cms_segid", "cms_group_id", "final_gender_code", "age_level", "pvalue_level",
           "shopping_level", "occupation")
AD = ("adgroup_id", "cate_id", "campaign_id", "customer", "brand")
SCHEMA = Schema(
    scenario="new_user_class_level",
    label="clk",
    categorical=PROFILE + AD + ("pid", "btag"),
    numeric=("price",),
    sequences=(
        SeqColumn("hist_cate", "cate_id"),
        SeqColumn("hist_brand", "brand"),
        SeqColumn("hist_btag", "btag"),
    ),
    scenario_values=CITY_LEVELS,
    scenario_names=CITY_NAMES,
)
CAVEATS = [
    "Real Taobao data but tiny: about 2,300 impressions and ~110 clicks; per-city-level test "
    "AUCs rest on a handful of positives, so confidence intervals are wide. Good for "
    "demonstrations and smoke tests, not for conclusions.",
    "The source train file oversamples positives (CTR 42%). Exact duplicate rows were dropped "
    "(CTR 4.6%), the rows were pooled with the natural test file and split by user "
    "(55% / 10% / 35% of users, fixed hash of uid): no timestamps exist, so no time split.",
    "Behaviour sequences hold category, brand and behaviour type (no item ids); the behaviour "
    "type codes 1-4 are not documented beyond 1 being the most frequent (page view).",
]


def user_split(uid: np.ndarray, seed: int = 0) -> np.ndarray:
    """'train' | 'valid' | 'test' per row, from a fixed multiplicative hash of the user id; another
    `seed` (the data seed) salts the hash and so draws another split of the same users."""
    salted = uid.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B9)
    h = (salted * np.uint64(2654435761)) % np.uint64(2**32)
    u = h.astype(np.float64) / 2**32
    return np.where(u < TRAIN_FRACTION, "train",
                    np.where(u < TRAIN_FRACTION + VALID_FRACTION, "valid", "test"))


def parse_sequence(col: pd.Series, source: str, column: str, sep: str = "|") -> np.ndarray:
    """'a|b|c' strings of equal length -> [N, W] int64, vectorised (one split over the column)."""
    parts = col.astype(str).str.split(sep, expand=True)
    try:
        return parts.to_numpy(dtype=np.int64)
    except (ValueError, TypeError):
        bad = parts.isna().any(axis=1)
        row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
        raise DataError(
            f"{source}: column '{column}' row {row}: cannot read {str(col.iloc[row])[:60]!r} as "
            f"'{sep}'-separated integers of equal length"
        ) from None


def read_sample(path: Path = SAMPLE_FILE, seed: int = 0) -> RawTable:
    """The pooled, de-duplicated natural rows with a 'split' column (train/valid/test by user)."""
    if not path.is_file():
        raise DataError(f"{path}: the Taobao sample file is missing (it ships with the project)")
    df = pd.read_csv(path)
    missing = [c for c in ("split", "uid", *PROFILE, *AD, "new_user_class_level", "price", "pid",
                           "clk", "btag_his", "cate_his", "brand_his") if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    train_file = df[df["split"] == "train"].drop_duplicates()
    df = pd.concat([train_file, df[df["split"] == "test"]], ignore_index=True)
    df["split"] = user_split(df["uid"].to_numpy(), seed)
    df["btag"] = TARGET_BTAG

    cate = parse_sequence(df["cate_his"], str(path), "cate_his")
    brand = parse_sequence(df["brand_his"], str(path), "brand_his")
    btag = parse_sequence(df["btag_his"], str(path), "btag_his")
    # Left-padded with 0: the real behaviours are the trailing non-zero positions.
    lengths = (cate != 0).sum(axis=1)
    frame = df[["split", SCHEMA.scenario, SCHEMA.label, *SCHEMA.categorical, *SCHEMA.numeric]]
    return RawTable(
        frame=frame.reset_index(drop=True),
        seqs={"hist_cate": cate, "hist_brand": brand, "hist_btag": btag},
        seq_lengths=lengths,
    )


def load_sample(*, name: str = "taobao-sample", seq_len: int | None = None, seed: int = 0, min_count: int = 1, exclude: tuple = (),
                path: Path = SAMPLE_FILE) -> MultiScenarioData:
    table = read_sample(path, seed)
    split = table.frame["split"].to_numpy()
    info = {
        "title": "Taobao ad display/click sample (real, 5 city levels)",
        "simulated": False,
        "samples": len(table),
        "split": f"by user: 55% train, 10% validation, 35% test (hash of uid, data seed {seed})",
        "seed_dependent": True,
        "caveats": CAVEATS,
        "provenance": "datasets/taobao_dmr/PROVENANCE.md",
    }
    return encode_splits(
        name=name,
        schema=SCHEMA,
        train=table.take(split == "train"),
        valid=table.take(split == "valid"),
        test=table.take(split == "test"),
        seq_len=seq_len or DEFAULT_SEQ_LEN,
        source=str(path.name),
        info=info,
        category_field="cate_id",
        scenario_noun=SCENARIO_NOUN,
        min_positives=None,  # the scenario set is the design: every one stays
        min_count=min_count,
        exclude=tuple(exclude),
    )
