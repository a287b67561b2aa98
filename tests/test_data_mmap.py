"""Memory-mapped encoded data: the out-of-core loaders' .npy stores, batches that read only their
rows, and training on a mapped split."""
from pathlib import Path

import numpy as np
import pytest
import torch

from saml_core.bench_speed import random_data
from saml_core.config import ModelConfig, TrainConfig
from saml_core.data import flatlog, taobao_raw
from saml_core.data.aliccp import load_aliccp
from saml_core.data.aliexpress import load_aliexpress
from saml_core.data.encoder import Encoder
from saml_core.data.types import (SPLIT_ARRAYS, DataError, EncodedSplit, open_mapped, read_mapped_splits,
                                  write_mapped_splits)
from saml_core.models import build_model
from saml_core.train import fit

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LOADERS = {"taobao-raw": (taobao_raw.load_raw, "taobao_raw"), "aliexpress": (load_aliexpress, "aliexpress"),
           "aliccp": (load_aliccp, "ali_ccp")}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _equal(a: EncodedSplit, b: EncodedSplit) -> bool:
    return all(torch.equal(getattr(a, f), getattr(b, f)) and getattr(a, f).dtype == getattr(b, f).dtype
               for f in SPLIT_ARRAYS)


@pytest.mark.parametrize("source", list(LOADERS))
def test_mapped_load_equals_in_memory_and_the_second_load_only_maps(source, tmp_path, monkeypatch):
    load, folder = LOADERS[source]
    mapped = load(FIXTURES / folder, cache_dir=tmp_path)
    memory = load(FIXTURES / folder, cache_dir=tmp_path, mapped=False)
    assert mapped.spec == memory.spec
    for s in ("train", "valid", "test"):
        assert getattr(mapped, s).mapped and not getattr(memory, s).mapped
        assert _equal(getattr(mapped, s), getattr(memory, s)), s
    assert len(list(tmp_path.glob("*/encoded-v*/train.seq.npy"))) == 1

    def boom(*a, **k):
        raise AssertionError("encoded again")

    monkeypatch.setattr(Encoder, "fit_many", boom)
    again = load(FIXTURES / folder, cache_dir=tmp_path)
    assert again.spec == memory.spec and _equal(again.test, memory.test) and again.test.mapped


def test_aliexpress_has_one_store_per_seed(tmp_path):
    a, b = load_aliexpress(FIXTURES / "aliexpress", cache_dir=tmp_path, seed=0), \
        load_aliexpress(FIXTURES / "aliexpress", cache_dir=tmp_path, seed=1)
    assert sorted(p.name for p in tmp_path.glob("*/encoded-v*")) == ["encoded-v1-seed0", "encoded-v1-seed1"]
    assert len(a.valid) != len(b.valid) or not torch.equal(a.valid.label, b.valid.label)


def _big_store(folder: Path, n: int) -> None:
    """A store of n random rows, written in chunks (the way the loaders fill it)."""
    data = random_data(n_train=64, n_valid=8, n_test=8, k=4, seq_len=20, vocab=50)

    def fill(out):
        gen = np.random.default_rng(0)
        for start in range(0, n, 100_000):
            m = min(100_000, n - start)
            out[0].scenario[start:start + m] = torch.from_numpy(gen.integers(0, 4, m))
            out[0].label[start:start + m] = torch.from_numpy((gen.random(m) < 0.1).astype(np.float32))
            out[0].cat[start:start + m] = torch.from_numpy(gen.integers(2, 50, out[0].cat[:m].shape))
            out[0].seq[start:start + m] = torch.from_numpy(gen.integers(0, 50, out[0].seq[:m].shape))
            out[0].seq_mask[start:start + m] = True
        for sp in out[1:]:
            sp.scenario[:], sp.label[:] = 0, 0.0

    write_mapped_splits(folder, data.spec, [n, 10, 10], fill)


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _mapped_kb(path: Path) -> int:
    """Resident pages of this process's mappings of `path` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isdigit() or line[:1] in "abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
def test_take_on_a_mapped_split_reads_only_the_batch_rows(tmp_path):
    n = 400_000  # seq alone: 400k x 3 x 20 x 8 B = 192 MB on disk
    _big_store(tmp_path / "store", n)
    split = open_mapped(tmp_path / "store", "train")
    seq_file = (tmp_path / "store" / "train.seq.npy").resolve()
    file_mb = seq_file.stat().st_size / 2**20
    anon0 = _status_kb("RssAnon")
    idx = torch.tensor([5, 123_456, 399_999, 77, 250_000])
    b = split.take(idx)
    assert not b.mapped and torch.equal(b.seq[1], split.seq[123_456])
    # a few pages per row (the kernel maps up to 16 neighbouring cached pages per fault), not the file
    assert 0 < _mapped_kb(seq_file) / 1024 < 0.05 * file_mb, (_mapped_kb(seq_file), file_mb)
    assert (_status_kb("RssAnon") - anon0) / 1024 < 16  # the batch, not the split, in anonymous memory
    sub = split.subset(torch.arange(1000, 2000))  # a view: rows read by batch
    assert sub.mapped and len(sub) == 1000 and _equal(sub.take(torch.tensor([3, 7])),
                                                      split.take(torch.tensor([1003, 1007])))
    assert _mapped_kb(seq_file) / 1024 < 0.05 * file_mb


def test_training_on_a_mapped_split_equals_training_in_memory(tmp_path):
    data = random_data(n_train=700, n_valid=200, n_test=50, k=4, seq_len=6, vocab=30)
    write_mapped_splits(tmp_path / "s", data.spec, [len(data.train), len(data.valid), len(data.test)],
                        lambda out: [_copy(o, sp) for o, sp in zip(out, (data.train, data.valid, data.test))])
    spec, (train, valid, _) = read_mapped_splits(tmp_path / "s")
    assert train.mapped and spec == data.spec
    cfg = ModelConfig(d_g=4, d_s=2, heads=2, head_dim=4, ff_dim=8, mlp=(16, 8))
    tcfg = TrainConfig(epochs=2, patience=2, min_epochs=1, batch_size=64, lr=3e-3, device="cpu")
    results = []
    for tr, va in ((data.train, data.valid), (train, valid)):
        torch.manual_seed(1)
        model = build_model("saml", data.spec, cfg)
        res = fit(model, tr, va, tcfg, seed=3, device=torch.device("cpu"))
        results.append(([{k: v for k, v in r.items() if k != "seconds"} for r in res.history],
                        torch.cat([p.detach().flatten() for p in model.parameters()])))
    assert results[0][0] == results[1][0] and torch.equal(results[0][1], results[1][1])
    per_scenario = build_model("bst_individual", data.spec, cfg)  # scenario subsets of a mapped split
    from saml_core.train import _subset

    sub = _subset(train, 2)
    assert sub.mapped and _equal(sub.take(torch.arange(len(sub))), _subset(data.train, 2))
    assert fit(per_scenario.models[2], sub, _subset(valid, 2), tcfg, seed=0, device=torch.device("cpu")).epochs_run


def _copy(dst: EncodedSplit, src: EncodedSplit) -> None:
    for f in SPLIT_ARRAYS:
        getattr(dst, f)[:] = getattr(src, f)


def test_an_interrupted_build_leaves_no_store(tmp_path):
    data = random_data(n_train=50, n_valid=10, n_test=10, k=2, seq_len=4, vocab=30)

    def fail(out):
        raise DataError("bad row")

    with pytest.raises(DataError, match="bad row"):
        write_mapped_splits(tmp_path / "s", data.spec, [50, 10, 10], fail)
    assert read_mapped_splits(tmp_path / "s") is None and list(tmp_path.iterdir()) == []


def test_the_flat_loaders_store_is_keyed_by_its_options(tmp_path):
    assert flatlog.store_for(tmp_path, "seed3").name.endswith("-seed3")
