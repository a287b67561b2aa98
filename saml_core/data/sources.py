"""The built-in data sources: one registry entry each (fields: `dataset_entry.DatasetEntry`).
Loaders are imported lazily so that naming a dataset costs nothing until it is loaded."""
from __future__ import annotations

from saml_core.data.dataset_entry import DatasetEntry, register


def _synthetic(*, name, seed, size, seq_len, min_count, exclude):
    from saml_core.data import synthetic

    return synthetic.load(name=name, seed=seed, size=size, seq_len=seq_len, min_count=min_count, exclude=exclude)


def _taobao_sample(*, name, seed, seq_len, min_count, exclude):
    from saml_core.data import taobao

    return taobao.load_sample(name=name, seed=seed, seq_len=seq_len, min_count=min_count, exclude=exclude)


def _sequences(module: str):
    """The sequence names of a source module's SCHEMA, read when asked (the module's one list)."""
    def names() -> tuple[str, ...]:
        import importlib

        return tuple(q.name for q in importlib.import_module(f"saml_core.data.{module}").SCHEMA.sequences)

    return names


def _taobao_raw(path, *, name, seed, seq_len, cache_dir):
    from saml_core.data import taobao_raw

    return taobao_raw.load_raw(path, name=name, cache_dir=cache_dir, seq_len=seq_len)


def _csv(path, *, name, seed, seq_len):
    from saml_core.data import byo

    return byo.load_byo(path, name=name, seq_len=seq_len, seed=seed)


def _aliexpress(path, *, name, seed, seq_len, cache_dir):
    from saml_core.data import aliexpress

    return aliexpress.load_aliexpress(path, name=name, seq_len=seq_len, cache_dir=cache_dir, seed=seed)


def _aliccp(path, *, name, seed, seq_len, cache_dir):
    from saml_core.data import aliccp

    return aliccp.load_aliccp(path, name=name, seq_len=seq_len, cache_dir=cache_dir, seed=seed)


def _movielens_sequences() -> tuple[str, ...]:
    from saml_core.data import movielens

    return tuple(q.name for q in movielens.ALL_SCHEMA["sequences"])


def _movielens(path, *, name, seed, scenario, split, features, seq_len, min_count, exclude, min_positives):
    from saml_core.data import movielens

    return movielens.load_movielens(path, name=name, seed=seed, scenario=scenario, split=split, features=features,
                                    seq_len=seq_len, min_count=min_count, exclude=exclude,
                                    min_positives=min_positives)


# What holds for every Taobao source (the shipped sample and the full tables): the sample's size and
# what it means for the error bars are in its own caveats (dataset_info), shown under the badge.
_TAOBAO_BADGE = "**Real data: Taobao ad clicks.** Public Alimama data; scenario = city level."
_TAOBAO_ICON = ":material/shopping_cart:"

register(DatasetEntry(
    name="synthetic-countries", kind="synthetic", preset="industrial", load=_synthetic,
    title="Simulated countries (built in): a cross-border shop with 10 countries and known truth",
    options={"size": None, "seq_len": None, "min_count": 1, "exclude": ()}, quick_options={"size": "small"},
    scenario_noun=("country", "countries"), sequences=_sequences("synthetic"), default=True, simulated=True,
    badge=("**Simulated data.** A built-in simulator of a cross-border shop with 10 countries. Which countries "
           "behave alike was planted on purpose, so we can check what the model recovers."),
    badge_icon=":material/science:"))
register(DatasetEntry(
    name="taobao-sample", kind="taobao", preset="public", load=_taobao_sample,
    title="Taobao ad clicks, real sample (built in): 5 city levels, ~2,300 impressions",
    options={"seq_len": None, "min_count": 1, "exclude": ()}, scenario_noun=("city level", "city levels"),
    sequences=_sequences("taobao"), badge=_TAOBAO_BADGE, badge_icon=_TAOBAO_ICON))
register(DatasetEntry(
    name="taobao-raw", kind="taobao", preset="public", load=_taobao_raw, takes_path=True, seeded=False,
    path_hint="folder of the raw Tianchi tables", title="Raw Taobao tables (the paper's public dataset)",
    options={"seq_len": None, "cache_dir": None}, scenario_noun=("city level", "city levels"),
    badge=_TAOBAO_BADGE, badge_icon=_TAOBAO_ICON))
register(DatasetEntry(
    name="csv", kind="byo", preset="public", load=_csv, takes_path=True,
    path_hint="schema file (YAML/JSON) describing your CSV/Parquet log",
    title="Your own log (CSV/Parquet + schema file)", options={"seq_len": None},
    badge="**Your own log.** Loaded from a file you provided."))
register(DatasetEntry(
    name="aliexpress", kind="aliexpress", preset="aliexpress-published", load=_aliexpress, takes_path=True,
    path_hint="folder with one AliExpress_<country> folder per country (datasets/PUBLIC.md)",
    title="AliExpress search clicks (public, countries as scenarios)", options={"seq_len": None, "cache_dir": None},
    scenario_noun=("country", "countries"),
    badge="**Real data: AliExpress search clicks.** Public Tianchi data; scenario = country."))
register(DatasetEntry(
    name="aliccp", kind="aliccp", preset="aliccp-published", load=_aliccp, takes_path=True, seeded=False,
    path_hint="folder with ali_ccp_train/val/test.csv (datasets/PUBLIC.md)",
    title="Ali-CCP clicks (public, traffic domains of field 301 as scenarios)",
    options={"seq_len": None, "cache_dir": None}, scenario_noun=("domain", "domains"),
    badge="**Real data: Ali-CCP (Taobao) clicks.** Public Tianchi data; scenario = traffic domain."))
register(DatasetEntry(
    name="movielens", kind="movielens", preset="movielens-published", load=_movielens, takes_path=True,
    path_hint="folder with MovieLens ML-100k, ML-1M or RecBole atomic files (docs/DATA.md)",
    title="MovieLens ratings (public; rating > 3 = click, age groups as scenarios)",
    # min_positives 10 = saml_core.evaluate.MIN_CLASS: a scenario the evaluation could not score is left out
    options={"scenario": "age", "split": "random", "features": "all", "seq_len": None, "min_count": 1,
             "exclude": (), "min_positives": 10},
    scenario_noun=("age group", "age groups"), sequences=_movielens_sequences,
    badge=("**Real data: MovieLens ratings.** Public GroupLens data; a rating above 3 counts as a click, and every "
           "row is a movie the user chose to rate. Scenario = the users' age group, occupation or gender.")))
