"""movielens:DIR on the real ML-100k (fixture `ml100k_dir`, conftest: RecBole's atomic files) and on
small files written here in the exact GroupLens ML-100k and ML-1M formats: Scenario-Wise-Rec's
protocol (rating > 3 = click, age groups, random 8:1:1), the user-time split, behaviour sequences
that hold only strictly earlier ratings, one-line errors, and the CLI end to end."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from saml_core.cli import main
from saml_core.data import DataError, load_dataset
from saml_core.data import movielens as ml

REPO = Path(__file__).resolve().parents[1]
AGE_NAMES = ("under 25", "25-34", "35 and over")


def _atomic(folder: Path):
    """The atomic files read independently of the loader (pandas, tab-separated, typed headers)."""
    def read(name):
        frame = pd.read_csv(folder / name, sep="\t", dtype=str, keep_default_na=False, quoting=3)
        return frame.rename(columns=lambda c: c.split(":")[0])
    inter, users, items = read("ml-100k.inter"), read("ml-100k.user"), read("ml-100k.item")
    inter = inter.astype({"user_id": int, "item_id": int, "rating": float, "timestamp": int})
    users = users.astype({"user_id": int, "age": int})
    return inter, users, items.astype({"item_id": int})


@pytest.fixture(scope="module")
def real(ml100k_dir):
    return load_dataset(f"movielens:{ml100k_dir}")


def _counts(split, k):
    sc, y = split.scenario.numpy(), split.label.numpy()
    return np.bincount(sc, minlength=k), np.bincount(sc, weights=y, minlength=k).astype(int)


def test_default_protocol_on_the_real_ml100k(ml100k_dir, real):
    inter, users, _ = _atomic(ml100k_dir)
    rows = inter.merge(users, on="user_id")
    group = np.select([rows.age < 25, rows.age < 35], [0, 1], 2)  # SWR's {1,18}, {25}, {35+} of ML-1M codes
    want_n = np.bincount(group, minlength=3)
    want_clicks = np.bincount(group, weights=(rows.rating > 3).to_numpy(), minlength=3).astype(int)

    assert real.spec.scenario_names == AGE_NAMES and real.kind == "movielens"
    assert real.scenario_noun == ("age group", "age groups") and real.category_field == "genre"
    assert (len(real.train), len(real.valid), len(real.test)) == (80_000, 10_000, 10_000)
    got = [_counts(s, 3) for s in (real.train, real.valid, real.test)]
    assert (sum(g[0] for g in got) == want_n).all() and (sum(g[1] for g in got) == want_clicks).all()
    assert real.info["seed_dependent"] and real.info["format"] == "RecBole atomic files (ml-100k)"
    assert {f.name for f in real.spec.cat_fields} == set(ml.ALL_SCHEMA["categorical"])
    assert [f.name for f in real.spec.seq_fields] == ["hist_item", "hist_genre"] and real.spec.seq_len == 20
    # the caveat on the sequences: ratings within an hour / a day of the user's first rating
    since_first = inter.timestamp - inter.groupby("user_id").timestamp.transform("min")
    hour, day = (since_first <= 3600).mean(), (since_first <= 86400).mean()
    assert f"{hour:.0%} of the ratings were given within an hour of the user's first one ({day:.0%} within a day)" \
        in " ".join(real.info["caveats"])
    # the data seed draws another random split of the same ratings
    other = load_dataset(f"movielens:{ml100k_dir}", seed=1)
    assert not torch.equal(other.test.cat[:, 0], real.test.cat[:, 0])
    assert (sum(_counts(s, 3)[1] for s in (other.train, other.valid, other.test)) == want_clicks).all()


def test_history_holds_only_strictly_earlier_ratings_of_the_user(ml100k_dir):
    ratings, _, _ = ml.read_table(ml100k_dir, seq_len=20)
    t = ratings.table()
    f, hist, n = t.frame, t.seqs["hist_item"], t.seq_lengths
    inter, _, items = _atomic(ml100k_dir)
    when = pd.Series(inter.timestamp.to_numpy(), index=inter.user_id.to_numpy() * 10_000 + inter.item_id.to_numpy())
    real = np.arange(20)[None, :] >= 20 - n[:, None]
    users = np.repeat(f.user_id.to_numpy()[:, None], 20, axis=1)
    hist_time = when.reindex((users * 10_000 + hist)[real]).to_numpy()
    row_time = np.repeat(f.timestamp.to_numpy()[:, None], 20, axis=1)[real]
    assert not np.isnan(hist_time).any()  # every history item is a rating of the same user
    assert (hist_time < row_time).all()  # strictly earlier: no same-second or later rating
    assert (hist[~real] == 0).all() and n.max() == 20
    # an empty history exactly for the ratings in a user's first second (2,135 rows, not 943)
    first_second = inter.timestamp == inter.groupby("user_id").timestamp.transform("min")
    assert (n == 0).sum() == first_second.sum() > inter.user_id.nunique()
    # against a row-by-row reference on sampled rows: the 20 most recent earlier ratings, in time order
    by_user = {u: g.sort_values(["timestamp", "item_id"]) for u, g in inter.groupby("user_id")}
    for r in np.random.default_rng(0).choice(len(f), 300, replace=False):
        g = by_user[f.user_id[r]]
        want = g.item_id[g.timestamp < f.timestamp[r]].to_numpy()[-20:]
        assert n[r] == len(want) and (hist[r, 20 - len(want):] == want).all(), r
    # the genre sequence is the first genre of each history item
    genre_of = pd.Series([min(ml.GENRES.index(g) for g in c.split(" ")) for c in items["class"]],
                         index=items.item_id.to_numpy())
    assert (t.seqs["hist_genre"][real] == genre_of.reindex(hist[real]).to_numpy()).all()


def _grouplens_100k(folder: Path, data, users, items):
    """Write ML-100k in GroupLens' own format: u.data (tab), u.user and u.item ('|', latin-1)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in data))
    (folder / "u.user").write_text("".join(f"{u}|{a}|{g}|{o}|{z}\n" for u, a, g, o, z in users))
    lines = []
    for i, title, date, genres in items:
        flags = "|".join("1" if g in genres else "0" for g in ml.GENRES)
        lines.append(f"{i}|{title}|{date}||http://us.imdb.com/M/title-exact?{i}|{flags}\n")
    (folder / "u.item").write_bytes("".join(lines).encode("latin-1"))


def test_same_second_and_later_ratings_never_enter_the_history(tmp_path):
    # user 1: items 10 and 11 in one second, then 14, 12, 13; written out of time order
    data = [(1, 13, 2, 300), (1, 10, 5, 100), (1, 12, 5, 200), (1, 11, 1, 100), (1, 14, 4, 150), (2, 10, 3, 100)]
    users = [(1, 24, "F", "writer", "85711"), (2, 25, "M", "none", "T8H1N")]
    items = [(10, "Café Society", "01-Jan-1995", {"Drama"}), (11, "Toy Story", "", {"Animation", "Comedy"}),
             (12, "Heat", "15-Dec-1995", {"Action", "Crime"}), (13, "Movie 13", "01-Jan-1970", {"unknown"}),
             (14, "Movie 14", "01-Jan-1980", set())]
    _grouplens_100k(tmp_path, data, users, items)
    ratings, schema, facts = ml.read_table(tmp_path, seq_len=3)
    t = ratings.table()
    f = t.frame
    assert facts["layout"] is ml.ML100K
    got = {(u, i): list(h[3 - n:]) for u, i, h, n in zip(f.user_id, f.item_id, t.seqs["hist_item"], t.seq_lengths)}
    assert got == {(1, 10): [], (1, 11): [], (1, 14): [10, 11], (1, 12): [10, 11, 14], (1, 13): [11, 14, 12],
                   (2, 10): []}
    assert f.click.tolist() == [1, 0, 1, 1, 0, 0]  # rating > 3, rows in (user, time, item) order
    assert f.scenario.tolist() == [0, 0, 0, 0, 0, 1]  # age 24 -> under 25, 25 -> 25-34
    by_item = f[f.user_id == 1].set_index("item_id")
    assert by_item.year.to_dict() == {10: 1995, 11: 0, 12: 1995, 13: 1970, 14: 1980}
    genre = {i: ml.GENRES[g] for i, g in by_item.genre.items()}
    assert genre == {10: "Drama", 11: "Animation", 12: "Action", 13: "unknown", 14: "unknown"}


def _ml1m(folder: Path, ratings, users, movies):
    """Write ML-1M in GroupLens' own format: '::'-separated, latin-1."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ratings))
    (folder / "users.dat").write_text("".join(f"{u}::{g}::{a}::{o}::{z}\n" for u, g, a, o, z in users))
    (folder / "movies.dat").write_bytes("".join(f"{i}::{title}::{g}\n" for i, title, g in movies).encode("latin-1"))


def _ml1m_small(folder: Path):
    codes = (1, 18, 25, 35, 45, 50, 56)  # ML-1M's age codes, one user each
    users = [(u, "MF"[u % 2], a, u + 3, f"5511{u}-1234") for u, a in enumerate(codes, start=1)]
    movies = [(1, "Star Wars: Episode IV - A New Hope (1977)", "Action|Adventure|Fantasy|Sci-Fi"),
              (2, "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Comedy|Romance"),
              (3, "Toy Story (1995)", "Animation|Children's|Comedy")]
    # 20 ratings a user alternating 5 and 1 stars, one per hour: every group has clicks and non-clicks in test
    ratings = [(u, 1 + k % 3, 5 if k % 2 else 1, 978_300_000 + 3600 * k) for u in range(1, 8) for k in range(20)]
    _ml1m(folder, ratings, users, movies)


def test_ml1m_layout_age_codes_occupations_and_titles(tmp_path):
    _ml1m_small(tmp_path)
    ratings, schema, facts = ml.read_table(tmp_path, scenario="age")
    f = ratings.table().frame
    assert facts["layout"] is ml.ML1M
    group = f.groupby("user_id").scenario.first().to_dict()
    assert group == {1: 0, 2: 0, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2}  # {1, 18}, {25}, {35, 45, 50, 56}
    first = f.drop_duplicates("item_id").set_index("item_id")
    assert first.year.to_dict() == {1: 1977, 2: 2001, 3: 1995}
    assert {i: ml.GENRES[g] for i, g in first.genre.items()} == {1: "Action", 2: "Comedy", 3: "Animation"}
    assert first.genres[2] == (1 << ml.GENRES.index("Comedy")) | (1 << ml.GENRES.index("Romance"))
    _, schema, facts = ml.read_table(tmp_path, scenario="occupation")
    assert set(schema.scenario_names) == {ml.ML1M_OCCUPATIONS[u + 3] for u in range(1, 8)}
    data = load_dataset(f"movielens:{tmp_path}", split="user-time", min_positives=1)
    assert data.spec.scenario_names == AGE_NAMES and data.info["format"] == "ML-1M (GroupLens files)"
    assert (len(data.train), len(data.valid), len(data.test)) == (7 * 16, 7 * 2, 7 * 2)
    assert data.info["seed_dependent"] is False


def test_user_time_split_puts_each_users_last_ratings_in_test(ml100k_dir):
    ratings, _, _ = ml.read_table(ml100k_dir, split="user-time")
    f = ratings.table().frame
    f["rank"] = f.groupby("user_id").cumcount()  # rows are in (user, time, item) order
    g = f.groupby("user_id")
    n = g.size()
    hold = np.floor(n * 0.1 + 0.5).astype(int)
    assert (f[f.split == 2].groupby("user_id").size() == hold).all()
    assert (f[f.split == 1].groupby("user_id").size() == hold).all()
    last_train = f[f.split == 0].groupby("user_id")["rank"].max()
    assert (last_train < f[f.split == 1].groupby("user_id")["rank"].min()).all()
    assert (f[f.split == 1].groupby("user_id")["rank"].max() < f[f.split == 2].groupby("user_id")["rank"].min()).all()
    assert (f[f.split == 0].groupby("user_id").timestamp.max() <= f[f.split == 2].groupby("user_id").timestamp.min()).all()
    a = load_dataset(f"movielens:{ml100k_dir}", split="user-time", seed=0)
    b = load_dataset(f"movielens:{ml100k_dir}", split="user-time", seed=3)
    assert torch.equal(a.test.cat, b.test.cat) and a.info["seed_dependent"] is False


def test_the_three_layouts_give_the_same_data(ml100k_dir, tmp_path):
    inter, users, items = _atomic(ml100k_dir)
    data = zip(inter.user_id, inter.item_id, inter.rating.astype(int), inter.timestamp)
    occupations = sorted(users.occupation.unique())  # ML-100k's 21 occupations <-> ML-1M's 21 codes
    year = items.release_year.where(items.release_year.str.fullmatch(r"\d{4}"), "")
    genres = items["class"].str.split(" ")
    _grouplens_100k(tmp_path / "grouplens", data,
                    zip(users.user_id, users.age, users.gender, users.occupation, users.zip_code),
                    zip(items.item_id, items.movie_title, ("01-Jan-" + year).where(year != "", ""), genres.map(set)))
    _ml1m(tmp_path / "ml1m", zip(inter.user_id, inter.item_id, inter.rating.astype(int), inter.timestamp),
          zip(users.user_id, users.gender, users.age, users.occupation.map(occupations.index), users.zip_code),
          zip(items.item_id, items.movie_title.str.replace(r"\s*\(\d{4}\)$", "", regex=True)  # 1412 has one
              + (" (" + year + ")").where(year != "", ""), genres.str.join("|")))
    atomic = load_dataset(f"movielens:{ml100k_dir}")
    for folder in ("grouplens", "ml1m"):
        other = load_dataset(f"movielens:{tmp_path / folder}")
        occupation = atomic.spec.cat_index("occupation")
        for s in ("train", "valid", "test"):
            a, b = getattr(atomic, s), getattr(other, s)
            assert torch.equal(a.label, b.label) and torch.equal(a.scenario, b.scenario), (folder, s)
            assert torch.equal(a.seq, b.seq) and torch.equal(a.seq_mask, b.seq_mask), (folder, s)
            keep = [j for j in range(a.cat.shape[1]) if folder == "grouplens" or j != occupation]
            assert torch.equal(a.cat[:, keep], b.cat[:, keep]), (folder, s)
            # ML-1M names its occupations differently: the same partition of the rows
            assert (pd.factorize(a.cat[:, occupation].numpy())[0] == pd.factorize(b.cat[:, occupation].numpy())[0]).all()


def test_scenario_and_feature_options(ml100k_dir):
    gender = load_dataset(f"movielens:{ml100k_dir}", scenario="gender")
    assert gender.spec.scenario_names == ("female", "male") and gender.scenario_noun == ("gender", "genders")
    occ = load_dataset(f"movielens:{ml100k_dir}", scenario="occupation")
    _, users, _ = _atomic(ml100k_dir)
    dropped = {d["scenario"] for d in occ.info["dropped_scenarios"]}
    assert set(occ.spec.scenario_names) | dropped == set(users.occupation) and len(occ.spec.scenario_names) >= 10
    swr = load_dataset(f"movielens:{ml100k_dir}", features="swr")
    assert [f.name for f in swr.spec.cat_fields] == list(ml.SWR_SCHEMA["categorical"])
    assert swr.spec.num_fields == ("age",) and swr.spec.seq_fields == () and swr.spec.seq_len == 1
    short = load_dataset(f"movielens:{ml100k_dir}", seq_len=5, exclude=["zip_prefix", "genre"])
    names = [f.name for f in short.spec.cat_fields]
    assert "zip_prefix" not in names and "genre" not in names
    assert [f.name for f in short.spec.seq_fields] == ["hist_item"] and short.spec.seq_len == 5
    for bad, word in ((dict(scenario="city"), "scenario='city' is not one of age, occupation, gender"),
                      (dict(split="time"), "split='time' is not one of random, user-time"),
                      (dict(seq_len=0), r"seq_len \(--seq-len\) must be a whole number from 1 to 1000")):
        with pytest.raises(DataError, match=word):
            load_dataset(f"movielens:{ml100k_dir}", **bad)


def _one_line_error(folder: Path) -> str:
    with pytest.raises(DataError) as exc:
        load_dataset(f"movielens:{folder}")
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_folder_without_movielens_files_is_one_clear_line(tmp_path, capsys):
    message = _one_line_error(tmp_path)
    assert message.startswith(f"{tmp_path}: no MovieLens files found; looked for u.data + u.user + u.item")
    assert "ratings.dat + users.dat + movies.dat" in message and "ml-100k.inter" in message
    assert main(["data", "describe", f"movielens:{tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path}: no MovieLens files") and err.count("\n") == 1
    _ml1m_small(tmp_path / "ml-1m")  # unzipped one level up: the message points to the subfolder
    assert _one_line_error(tmp_path).endswith(f"the subfolder ml-1m holds some: use movielens:{tmp_path / 'ml-1m'}")
    (tmp_path / "u.data").write_text("1\t1\t5\t100\n")
    assert _one_line_error(tmp_path) == (f"{tmp_path}: has u.data but not u.user, u.item "
                                         "(ML-100k needs all three: u.data + u.user + u.item)")


@pytest.mark.parametrize("file,line,new,expected", [
    ("ratings.dat", 3, "1::2::abc::978300000", "ratings.dat: line 3, column 'Rating': the value 'abc' is not a number"),
    ("ratings.dat", 2, "1::2::7::978300000", "ratings.dat: line 2, column 'Rating': the value '7.0' is not a MovieLens "
                                             "rating (0.5 to 5 stars)"),
    ("ratings.dat", 5, "1::2::3::4::5", "ratings.dat: line 5 has 5 field(s), expected 4: '1::2::3::4::5'"),
    ("ratings.dat", 4, "99::2::3::978300000", "ratings.dat: line 4, column 'UserID': the value '99' is not in users.dat"),
    ("ratings.dat", 6, "1::::3::978300000", "ratings.dat: line 6, column 'MovieID': the value is empty"),
    ("users.dat", 2, "2::X::18::4::55112", "users.dat: line 2, column 'Gender': the value 'X' is not F or M"),
    ("users.dat", 3, "3::M::25::77::55113", "users.dat: line 3, column 'Occupation': the value '77' is not an ML-1M "
                                            "occupation code (0-20)"),
    ("movies.dat", 2, "2::Amelie (2001)::Comedy|Romcom", "movies.dat: line 2, column 'Genres': the value "
                                                        "'Comedy|Romcom' names the genre 'Romcom', which is not"),
])
def test_a_bad_row_is_one_line_naming_file_line_column_value(tmp_path, file, line, new, expected):
    _ml1m_small(tmp_path)
    path = tmp_path / file
    lines = path.read_bytes().decode("latin-1").splitlines()
    lines[line - 1] = new
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    assert _one_line_error(tmp_path).startswith(f"{tmp_path / expected.split(':')[0]}:{expected.split(':', 1)[1]}")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "saml_core", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_describe_experiment_and_report_on_the_real_ml100k(ml100k_dir, tmp_path, capsys):
    dataset = f"movielens:{ml100k_dir}"
    assert main(["data", "describe", dataset, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [r["scenario"] for r in info["scenarios"]] == list(AGE_NAMES)
    assert sum(r["total"]["samples"] for r in info["scenarios"]) == 100_000 and info["scenario_noun"][0] == "age group"
    assert main(["data", "describe", dataset, "--json", "--dataset-option", "scenario=gender"]) == 0
    assert [r["scenario"] for r in json.loads(capsys.readouterr().out)["scenarios"]] == ["female", "male"]
    assert main(["data", "describe", dataset, "--dataset-option", "seq_len=3", "--seq-len", "4"]) == 2
    assert capsys.readouterr().err == "error: dataset option seq_len is given twice\n"
    root = tmp_path / "art"
    out = _cli("experiment", "--dataset", dataset, "--name", "ml", "--preset", "quick", "--epochs", "1",
               "--threads", "1", "--runs", "bst,saml", "--artifacts", str(root))
    assert out.returncode == 0, out.stderr
    assert main(["report", "ml", "--format", "json", "--artifacts", str(root)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dataset_kind"] == "movielens" and doc["scenario_names"] == list(AGE_NAMES)
    assert [r["state"] for r in doc["runs"]] == ["finished", "finished"]
    for r in doc["runs"]:  # one epoch on real ratings already ranks far above chance
        assert r["overall"]["auc"] > 0.65, r


def test_bench_fixture_is_in_ml1m_format(tmp_path):
    from saml_core.data.bench_raw import write_movielens_fixture

    write_movielens_fixture(tmp_path, rows=5_000)
    assert (tmp_path / "ratings.dat").read_text().splitlines()[0].count("::") == 3
    assert ml.detect(tmp_path) is ml.ML1M
    data = load_dataset(f"movielens:{tmp_path}")
    assert len(data.train) + len(data.valid) + len(data.test) == 5_000 and data.spec.scenario_names == AGE_NAMES
    ratings, _, _ = ml.read_table(tmp_path)
    f = ratings.table().frame
    assert (f.groupby(["user_id", "timestamp"]).size() > 1).sum() > 100  # ratings sharing a second, as in MovieLens
