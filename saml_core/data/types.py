"""The contract between data sources and everything downstream.

Every source (simulator, Taobao, bring-your-own) ends as a `MultiScenarioData`: a
`FeatureSpec` describing the encoded columns, and three `EncodedSplit`s of contiguous
tensors. Models read only the spec; the trainer slices splits by index, never per row.

Index conventions (shared by all categorical fields and sequences):
  0 = padding (sequences only), 1 = out-of-vocabulary, 2.. = values seen in train.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

PAD_INDEX = 0
OOV_INDEX = 1

# Sizes a user or a file sets, bounded before anything is allocated. A longer history costs
# memory (rows x channels x length ids) and attention time (length squared) beyond any use (the
# paper's longest is 50); SAML trains one branch per scenario, so thousands of "scenarios" mean
# a wrong scenario column, not a model to train.
MAX_SEQ_LEN = 1000
MAX_SCENARIOS = 200
NO_SEQUENCES = "use --no-sequences to train without behaviour sequences"


class DataError(ValueError):
    """Bad input data. The message names the file, column and offending value."""


def check_seq_len(value, where: str, zero_hint: str = NO_SEQUENCES) -> int:
    """A sequence length from 1 to MAX_SEQ_LEN; 0 (no history) gets `zero_hint`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEQ_LEN:
        shown = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"a {len(str(value))}-digit number"
        hint = f"; {zero_hint}" if value == 0 and not isinstance(value, bool) else ""
        raise DataError(f"{where} must be a whole number from 1 to {MAX_SEQ_LEN}, got {shown}{hint}")
    return int(value)


@dataclass(frozen=True)
class CatField:
    name: str
    vocab_size: int  # including PAD and OOV rows


@dataclass(frozen=True)
class SeqField:
    name: str
    item_field: str  # the categorical field whose vocabulary (and embedding table) it shares


@dataclass(frozen=True)
class FeatureSpec:
    scenario_names: tuple[str, ...]  # K, in scenario-index order
    cat_fields: tuple[CatField, ...]  # columns of EncodedSplit.cat, in order
    num_fields: tuple[str, ...]  # columns of EncodedSplit.num, in order
    seq_fields: tuple[SeqField, ...]  # channels of EncodedSplit.seq, in order
    seq_len: int  # L

    @property
    def num_scenarios(self) -> int:
        return len(self.scenario_names)

    def cat_index(self, name: str) -> int:
        return [f.name for f in self.cat_fields].index(name)

    def to_dict(self) -> dict:
        return {
            "scenario_names": list(self.scenario_names),
            "cat_fields": [{"name": f.name, "vocab_size": f.vocab_size} for f in self.cat_fields],
            "num_fields": list(self.num_fields),
            "seq_fields": [{"name": f.name, "item_field": f.item_field} for f in self.seq_fields],
            "seq_len": self.seq_len,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        return cls(
            scenario_names=tuple(d["scenario_names"]),
            cat_fields=tuple(CatField(f["name"], int(f["vocab_size"])) for f in d["cat_fields"]),
            num_fields=tuple(d["num_fields"]),
            seq_fields=tuple(SeqField(f["name"], f["item_field"]) for f in d["seq_fields"]),
            seq_len=int(d["seq_len"]),
        )


@dataclass
class EncodedSplit:
    """One split as contiguous tensors (N samples). Batching is `split.take(index_tensor)`.

    `mapped`: the tensors are memory-mapped .npy files (`open_mapped`, the out-of-core loaders'
    encoded cache) rather than arrays in memory: `take` then reads only the rows asked for, and
    the trainer moves batches to a GPU one at a time instead of the whole split."""

    scenario: torch.Tensor  # [N] int64 in 0..K-1
    label: torch.Tensor  # [N] float32 in {0,1}
    cat: torch.Tensor  # [N, F_cat] int64
    num: torch.Tensor  # [N, F_num] float32, normalised with train statistics
    seq: torch.Tensor  # [N, F_seq, L] int64, PAD=0, most recent behaviour last (right-aligned)
    seq_mask: torch.Tensor  # [N, L] bool, True where a real behaviour sits
    oracle_prob: torch.Tensor | None = None  # [N] float32, true click probability (simulator only)
    mapped: bool = False

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def take(self, index: torch.Tensor) -> "EncodedSplit":
        return EncodedSplit(
            scenario=self.scenario[index],
            label=self.label[index],
            cat=self.cat[index],
            num=self.num[index],
            seq=self.seq[index],
            seq_mask=self.seq_mask[index],
            oracle_prob=None if self.oracle_prob is None else self.oracle_prob[index],
        )

    def subset(self, index: torch.Tensor) -> "EncodedSplit":
        """Rows `index` as a split of their own: copied (`take`) when in memory; a view that
        reads its rows batch by batch when mapped (a scenario's rows of a log larger than memory)."""
        return RowsOf(self, index) if self.mapped else self.take(index)

    def to(self, device) -> "EncodedSplit":
        moved = {f: (None if v is None else v.to(device)) for f, v in self.__dict__.items() if f != "mapped"}
        return EncodedSplit(**moved, mapped=self.mapped and torch.device(device).type == "cpu")


class RowsOf(EncodedSplit):
    """Rows `rows` of a memory-mapped split, read only when a batch asks for them. The small
    per-row columns (scenario, label) are materialised; cat/num/seq stay on disk."""

    def __init__(self, base: EncodedSplit, rows: torch.Tensor):
        self.base, self.rows = base, rows
        self.scenario, self.label = base.scenario[rows], base.label[rows]
        self.oracle_prob = None if base.oracle_prob is None else base.oracle_prob[rows]
        self.mapped = True

    def __getattr__(self, name):  # cat, num, seq, seq_mask: the whole view, read on request
        if name in ("cat", "num", "seq", "seq_mask"):
            return getattr(self.base, name)[self.rows]
        raise AttributeError(name)

    def take(self, index: torch.Tensor) -> EncodedSplit:
        return self.base.take(self.rows[index])

    def subset(self, index: torch.Tensor) -> EncodedSplit:
        return RowsOf(self.base, self.rows[index])

    def to(self, device) -> EncodedSplit:
        return self if torch.device(device).type == "cpu" else self.base.take(self.rows).to(device)


# ---- memory-mapped splits (the out-of-core loaders' encoded cache) -------------------------------
SPLIT_ARRAYS = ("scenario", "label", "cat", "num", "seq", "seq_mask")


def _shapes(n: int, spec: "FeatureSpec") -> dict:
    return {"scenario": ((n,), np.int64), "label": ((n,), np.float32),
            "cat": ((n, len(spec.cat_fields)), np.int64), "num": ((n, len(spec.num_fields)), np.float32),
            "seq": ((n, len(spec.seq_fields), spec.seq_len), np.int64), "seq_mask": ((n, spec.seq_len), np.bool_)}


def create_mapped(folder, prefix: str, n: int, spec: "FeatureSpec") -> tuple[EncodedSplit, list]:
    """A split of n rows whose tensors are new .npy files `<folder>/<prefix>.<array>.npy`, mapped
    for writing (filled by the loader); returns it and the maps to `flush` when done."""
    from pathlib import Path

    maps, tensors = [], {}
    for name, (shape, dtype) in _shapes(n, spec).items():
        if n == 0:  # a zero-length file cannot be mapped
            np.save(Path(folder) / f"{prefix}.{name}.npy", np.zeros(shape, dtype))
            tensors[name] = torch.from_numpy(np.zeros(shape, dtype))
            continue
        path = Path(folder) / f"{prefix}.{name}.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        # reserve the blocks now: a full disk is then an error here, not a SIGBUS while filling
        fd = os.open(path, os.O_RDWR)
        try:
            if hasattr(os, "posix_fallocate"):  # (not on macOS)
                os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except OSError as exc:
            raise DataError(f"{path}: cannot reserve {os.fstat(fd).st_size / 2**20:,.0f} MB for the encoded "
                            f"data ({exc.strerror}); free disk space or choose another cache folder "
                            "(--cache-dir, $SAML_CACHE_DIR)") from None
        finally:
            os.close(fd)
        maps.append(arr)
        tensors[name] = torch.from_numpy(arr)
    return EncodedSplit(**tensors, mapped=n > 0), maps


def open_mapped(folder, prefix: str) -> EncodedSplit:
    """The split written by `create_mapped`, mapped read-only copy-on-write (mode "c": writes to
    the tensors stay in this process, the files never change); only the pages of the rows used
    are read, and they live in the page cache, which every process mapping the file shares."""
    from pathlib import Path

    tensors = {}
    for name in SPLIT_ARRAYS:
        arr = np.load(Path(folder) / f"{prefix}.{name}.npy", mmap_mode="c")
        tensors[name] = torch.from_numpy(arr)
    return EncodedSplit(**tensors, mapped=len(tensors["label"]) > 0)


@dataclass
class MultiScenarioData:
    name: str  # the DATASET string it was loaded from, e.g. "synthetic-countries"
    spec: FeatureSpec
    train: EncodedSplit
    valid: EncodedSplit
    test: EncodedSplit
    # The source's kind, from its registry entry (`dataset_registry.load` sets it; a loader
    # called directly leaves it empty): recorded in experiment.json, picks the pages' badge.
    kind: str = ""
    # Human-facing description: title, size, caveats, provenance; JSON-serialisable.
    info: dict = field(default_factory=dict)
    # Simulator only: the planted K x K scenario-similarity matrix (rows/cols in scenario order).
    true_similarity: np.ndarray | None = None
    # Name of the categorical field used for the data-derived scenario similarity
    # (overlap of clicked-category distributions); None if the source has no such field.
    category_field: str | None = None
    # What one scenario is called in this data, (singular, plural): pages, captions and CSV
    # headers use it ("country"/"countries", "city level"/"city levels", a schema's own noun).
    scenario_noun: tuple[str, str] = ("scenario", "scenarios")
    # Per categorical field, the value behind each id from 2 on (the encoder's train vocabulary,
    # value of id i at [i - 2]): what the hidden-state explorer shows for a probe sample
    # (saml_core.probes.probe_fields). Empty for a loader that does not keep it.
    values: dict[str, np.ndarray] = field(default_factory=dict)


MAPPED_VERSION = 1  # bump when the encoding of any out-of-core loader changes: old stores are ignored


def read_mapped_splits(folder) -> tuple[FeatureSpec, list[EncodedSplit]] | None:
    """(spec, [train, valid, test]) of a complete encoded store, memory-mapped; None if there is
    none (or an interrupted or older one)."""
    import json
    from pathlib import Path

    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("version") != MAPPED_VERSION:
        return None
    return FeatureSpec.from_dict(manifest["spec"]), [open_mapped(folder, s) for s in ("train", "valid", "test")]


def write_mapped_splits(folder, spec: FeatureSpec, rows: list[int], fill) -> None:
    """Build the encoded store `folder`: .npy files for train/valid/test of rows[0..2] rows,
    filled by `fill([train, valid, test])` (writing into the mapped tensors), flushed, then the
    manifest; built in a temporary folder and renamed into place when complete, so an
    interrupted build is never read. Peak memory: what `fill` holds at once (the written pages
    are file-backed and written back by the kernel)."""
    import json
    import os
    import shutil
    from pathlib import Path

    folder = Path(folder)
    tmp = folder.parent / f".{folder.name}-{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise DataError(f"{folder.parent}: cannot write the encoded data ({exc.strerror})") from None
    try:
        made = [create_mapped(tmp, s, int(n), spec) for s, n in zip(("train", "valid", "test"), rows)]
        fill([m[0] for m in made])
        for _, maps in made:
            for m in maps:
                m.flush()
        del made
        (tmp / "manifest.json").write_text(json.dumps({"version": MAPPED_VERSION, "spec": spec.to_dict(),
                                                       "rows": [int(n) for n in rows]}))
        if (folder / "manifest.json").is_file():  # a concurrent build finished first: keep theirs
            shutil.rmtree(tmp)
        else:
            shutil.rmtree(folder, ignore_errors=True)  # an older version's store
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def empty_split(n: int, spec: FeatureSpec) -> EncodedSplit:
    """An uninitialised split of n rows in memory, for loaders that fill it part by part."""
    return EncodedSplit(
        scenario=torch.empty(n, dtype=torch.int64),
        label=torch.empty(n, dtype=torch.float32),
        cat=torch.empty(n, len(spec.cat_fields), dtype=torch.int64),
        num=torch.empty(n, len(spec.num_fields), dtype=torch.float32),
        seq=torch.empty(n, len(spec.seq_fields), spec.seq_len, dtype=torch.int64),
        seq_mask=torch.empty(n, spec.seq_len, dtype=torch.bool),
    )


def build_splits(spec: FeatureSpec, rows: list[int], fill, store=None) -> tuple[FeatureSpec, list[EncodedSplit]]:
    """(spec, [train, valid, test]) of rows[0..2] rows written by `fill([train, valid, test])`:
    in memory when `store` is None, else into the memory-mapped store `store`, then mapped."""
    if store is None:
        out = [empty_split(int(n), spec) for n in rows]
        fill(out)
        return spec, out
    write_mapped_splits(store, spec, [int(n) for n in rows], fill)
    return read_mapped_splits(store)
