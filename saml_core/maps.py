"""2-D maps of branch hidden states (UMAP and PCA), computed by the training job and stored next to
the probes (maps.npz), so the dashboard draws them at once instead of fitting UMAP (seconds, plus
numba's compile in every new process) while a viewer waits. Maps of other sizes are computed on
demand by the dashboard with the same functions.

Views: "own" = each probe sample through its own scenario's branch (hidden_own_<layer>, [N, H]);
"all" = the every-branch subsample through every branch (hidden_all_<layer>, [M, K, H] -> M*K points).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

VIEWS = ("own", "all")
METHODS = ("umap", "pca")
STORED_POINTS = 1000  # the map size the training job stores per view and layer
EXACT_NEIGHBOURS_MAX = 1500  # points; above this, approximate neighbours (NN-descent)


def subsample(n_total: int, size: int, seed: int = 0) -> np.ndarray:
    """Fixed, sorted sample of positions (same size -> same samples across reruns and processes)."""
    if size >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=size, replace=False))


def hidden_layers(probes: dict, view: str) -> list[int]:
    """Hidden layers with states for a view: keys hidden_<view>_<l> (one per layer, sizes differ)."""
    prefix = f"hidden_{view}_"
    return sorted(int(k[len(prefix):]) for k in probes if k.startswith(prefix) and k[len(prefix):].isdigit())


def n_points(probes: dict, view: str, layer: int) -> int:
    h = probes[f"hidden_{view}_{layer}"]
    return int(h.shape[0]) if view == "own" else int(h.shape[0] * h.shape[1])


def points(probes: dict, view: str, layer: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x [P, H] float32, probe row of each point [P], branch of each point [P]) for `size` points."""
    scen = probes["scenario"].astype(int)
    if view == "own":
        h = probes[f"hidden_own_{layer}"]  # [N, H]
        pos = subsample(h.shape[0], size)
        return np.asarray(h[pos], dtype=np.float32), pos, scen[pos]
    if view == "all":
        h = probes[f"hidden_all_{layer}"]  # [M, K, H]
        m, k, _ = h.shape
        pos = subsample(m, max(1, min(m, size // k)))
        rows = probes["hidden_all_index"].astype(int)[pos]
        x = np.asarray(h[pos], dtype=np.float32).reshape(len(pos) * k, -1)
        return x, np.repeat(rows, k), np.tile(np.arange(k), len(pos))
    raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")


def exact_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest points of every point (itself first, at distance 0) by euclidean distance:
    ([N, k] int32 indices, [N, k] float32 distances)."""
    x = np.asarray(x, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)  # [N, N]
    np.fill_diagonal(d2, -1.0)  # itself first, even beside exact duplicates
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    dist = np.sqrt(np.maximum(np.take_along_axis(d2, idx, axis=1), 0.0))
    return idx.astype(np.int32), dist.astype(np.float32)


_UMAP = None


def _umap_module():
    """umap, imported lazily (importing umap/numba costs seconds), with numba's on-disk cache of
    compiled code switched on for umap's own functions: numba otherwise compiles them again in every
    new process (~4 s of a first small map; 0.2 s from the cache). Left alone: pynndescent's, which
    numba cannot cache."""
    global _UMAP
    if _UMAP is None:
        import numba
        import umap
        from umap import layouts, umap_, utils

        for module in (umap_, layouts, utils):
            for value in vars(module).values():
                if isinstance(value, numba.core.registry.CPUDispatcher) and value.__module__ == module.__name__:
                    try:
                        value.enable_caching()
                    except RuntimeError:  # no writable cache folder anywhere: compile as before
                        pass
        _UMAP = umap
    return _UMAP


@contextmanager
def _torch_threads_kept():
    """numba's OpenMP threading layer launches UMAP's parallel code after setting the calling
    thread's OpenMP thread count to numba's (all cores), and torch reads its own count from the same
    OpenMP runtime: every later torch op in the process (a training job's next run, a DDP rank 0)
    would run with numba's count instead of the thread policy's. Put torch's count back. (torch not
    imported yet: nothing to keep; it sets its count when a job starts training.)"""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def fit_umap(x: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    import warnings

    umap = _umap_module()
    k = min(n_neighbors, max(2, len(x) - 1))
    options = {}
    if len(x) <= EXACT_NEIGHBOURS_MAX:
        # Exact neighbours by one matrix product: UMAP's own exact path (below 4,096 points) is
        # numba code compiled in every new process (~4.5 s of a ~10 s first fit); above this size
        # NN-descent (11 s for 4,000 states of 256 dims by the exact path, 1.6 s by NN-descent).
        idx, dist = exact_neighbours(x, k)
        options["precomputed_knn"] = (idx, dist, None)
    reducer = umap.UMAP(n_components=2, n_neighbors=k, min_dist=0.1, random_state=seed, low_memory=True,
                        n_jobs=1, n_epochs=200,  # UMAP's default 500 epochs below 10k points triples the cost
                        force_approximation_algorithm=len(x) > EXACT_NEIGHBOURS_MAX, **options)
    with warnings.catch_warnings(), _torch_threads_kept():
        # no search index with given neighbours: maps never transform new points
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        return reducer.fit_transform(x).astype(np.float32)


def fit_pca(x: np.ndarray) -> np.ndarray:
    """The first two principal components (deterministic: signs fixed by the largest loading)."""
    xc = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    comp = vt[:2]
    comp *= np.sign(comp[np.arange(len(comp)), np.argmax(np.abs(comp), axis=1)])[:, None]
    out = xc @ comp.T
    if out.shape[1] < 2:  # one hidden unit: a line
        out = np.concatenate([out, np.zeros((len(out), 2 - out.shape[1]))], axis=1)
    return out.astype(np.float32)


def fit(method: str, x: np.ndarray) -> np.ndarray:
    if len(x) < 3:
        return np.zeros((len(x), 2), dtype=np.float32)
    return fit_umap(x) if method == "umap" else fit_pca(x)


def stored_size(probes: dict, view: str, layer: int) -> int:
    return min(STORED_POINTS, n_points(probes, view, layer))


def compute_maps(probes: dict) -> dict[str, np.ndarray]:
    """Every view and layer at `stored_size` points, by UMAP and PCA: {f"{method}_{view}_{layer}": [P, 2]}."""
    out = {}
    for view in VIEWS:
        for layer in hidden_layers(probes, view):
            x, _, _ = points(probes, view, layer, stored_size(probes, view, layer))
            for method in METHODS:
                out[f"{method}_{view}_{layer}"] = fit(method, x)
    return out


# --- maps while the experiment goes on ------------------------------------------------------------
# A quick experiment spent as long on its maps (UMAP's import and fits, ~4-14 s) as on training.
# Within an experiment they are computed by one background process, started with the experiment
# (so UMAP's import overlaps the data load and the first runs) and fed each run's probes.npz as the
# run finishes; the experiment waits for it before it reports itself finished. A run is finished
# (metrics.json) before its maps.npz exists: the dashboard computes a missing map on demand, as for
# any size the job did not store. Outside an experiment (train_run on its own) maps are computed
# in place, as before.

_WORKER: "MapWorker | None" = None


class MapWorker:
    """`python -m saml_core.maps` as a child process: reads one JSON job a line on stdin
    ({"probes": path, "maps": path}), writes the maps atomically, answers one JSON line each."""

    def __init__(self):
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.proc = subprocess.Popen([sys.executable, "-m", "saml_core.maps"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.jobs = 0

    def submit(self, probes: Path, maps: Path) -> bool:
        try:
            self.proc.stdin.write(json.dumps({"probes": str(probes), "maps": str(maps)}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        self.jobs += 1
        return True

    def finish(self, wait: bool = True) -> list[str]:
        """Wait for every job (or, wait=False, stop at once) -> messages of the jobs that failed."""
        if not wait:
            self.proc.kill()
            self.proc.wait()
            return []
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        answers = [json.loads(line) for line in self.proc.stdout if line.strip()]
        self.proc.wait()
        failed = [f"{a['maps']}: {a['error']}" for a in answers if a.get("error")]
        if len(answers) < self.jobs:
            failed.append(f"the map process ended after {len(answers)} of {self.jobs} maps (exit code "
                          f"{self.proc.returncode}); the dashboard computes the others when they are opened")
        return failed


def background_has_a_core(ranks: int = 1) -> bool:
    """Whether a map process would find a core that training leaves free. One process (adaptive
    threads) gives a core up while the maps run; `ranks` data-parallel processes with one thread
    each do not, and each step waits for the slowest rank: on 2 cores with 2 ranks the map process
    slowed every training step (SAML trained 1.62x faster on 2 ranks than on one without it and
    1.14-1.27x with it; BENCHMARKS.md, Engine), so there the maps are computed in place."""
    from saml_core.runtime import usable_cores

    return ranks == 1 or usable_cores() > ranks


def begin_background(ranks: int = 1) -> None:
    """From here until `end_background`, `store` hands maps to a background process (when
    `background_has_a_core(ranks)`; else they are computed in place)."""
    global _WORKER
    if _WORKER is None and background_has_a_core(ranks):
        try:
            _WORKER = MapWorker()
        except OSError:  # no process to start: maps in place
            _WORKER = None


def end_background(log=None, wait: bool = True) -> None:
    global _WORKER
    worker, _WORKER = _WORKER, None
    if worker is not None:
        for message in worker.finish(wait):
            if log is not None:
                log(f"maps not stored: {message}")


def store(run_dir: Path, probes: dict) -> None:
    """maps.npz of a run whose probes.npz (hidden states included) is written: by the background
    process when one runs, else here."""
    from saml_core import artifacts as art

    run_dir = Path(run_dir)
    if _WORKER is not None and _WORKER.submit(run_dir / "probes.npz", run_dir / "maps.npz"):
        return
    art.save_npz(run_dir / "maps.npz", compute_maps(probes))


def _serve() -> int:
    from saml_core import artifacts as art

    _umap_module()  # imported while the experiment trains its first runs
    for line in sys.stdin:
        job = json.loads(line)
        try:
            art.save_npz(job["maps"], compute_maps(art.load_npz(job["probes"])))
            answer = {"maps": job["maps"]}
        except Exception as exc:  # one run's maps: said, the next ones go on
            answer = {"maps": job["maps"], "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_serve())

