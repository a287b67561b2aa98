"""The writer's side of an experiment folder, shared by the experiment loop, the tuner and the
analyses job: one writer at a time (ExperimentLock), its progress (ExperimentProgress) and status
file (StatusWriter), and whether a stored run's configuration is the one asked for again
(config_differences)."""
from __future__ import annotations

import fcntl
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from saml_core import artifacts as art
from saml_core import liveness
from saml_core.config import ConfigError


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StatusWriter:
    """experiment_status.json (+ an extra --status-file), written atomically, throttled. Records
    the writer's pid and start time, so a reader can tell "running" from "interrupted"."""

    def __init__(self, paths: list[Path], base: dict, min_interval: float = 0.5):
        self.paths, self.base, self.min_interval = paths, dict(base), min_interval
        self._last = 0.0
        self._me = liveness.token()

    def write(self, force: bool = False, **fields) -> None:
        self.base.update(fields)
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        doc = {**self.base, "updated": now_iso(), **self._me}
        for p in self.paths:
            art.write_json(p, doc)

    def final(self, **fields) -> None:
        """The last word on the way out of an error: best effort, so that a status that cannot be
        written (full disk) never hides the error that ended the run."""
        try:
            self.write(force=True, **fields)
        except art.ArtifactError:
            pass


class ExperimentProgress:
    """One progress fraction and ETA for the whole experiment: finished runs, plus the running
    run's share (its epochs and steps; for a per-scenario model, its sub-models). Never goes
    backwards: a run that stops early jumps forward."""

    def __init__(self, n_runs: int, done: int, on_unit_done: Callable[[], None] | None = None):
        self.n_runs, self.done = max(n_runs, 1), done
        self.fraction = done / max(n_runs, 1)
        self.t0, self.f0 = time.monotonic(), self.fraction
        self.on_unit_done = on_unit_done

    def update(self, event: dict) -> tuple[float, float | None]:
        epochs = max(float(event.get("epochs") or 1), 1.0)
        steps = max(float(event.get("steps") or 1), 1.0)
        within = min((max(float(event.get("epoch") or 1) - 1, 0) + min(float(event.get("step") or 0) / steps, 1)) /
                     epochs, 1.0)
        if event.get("n_submodels"):
            within = (float(event["submodel_index"]) - 1 + within) / float(event["n_submodels"])
        self.fraction = max(self.fraction, (self.done + within) / self.n_runs)
        return self.fraction, self.eta()

    def run_finished(self) -> None:
        self.done += 1
        self.fraction = max(self.fraction, self.done / self.n_runs)
        if self.on_unit_done is not None:
            self.on_unit_done()

    def eta(self) -> float | None:
        gained = self.fraction - self.f0
        elapsed = time.monotonic() - self.t0
        if gained <= 0.002 or elapsed < 1:
            return None
        return elapsed / gained * (1 - self.fraction)


# What may differ between a stored run and the same run requested again.
_VOLATILE = {"schema_version", "experiment", "feature_spec", "label", "train_config.device",
             "train_config.num_threads", "train_config.eval_batch_size"}


def config_differences(stored: dict, wanted: dict, prefix: str = "", ignore: set[str] | frozenset = frozenset()
                       ) -> list[str]:
    """Readable differences between two run configurations ("lr: 0.001 -> 0.0005"); paths in
    `ignore` (and the volatile ones) may differ."""
    out = []
    for key in sorted(set(stored) | set(wanted)):
        path = f"{prefix}{key}"
        if path in _VOLATILE or path in ignore:
            continue
        a, b = stored.get(key), wanted.get(key)
        if path == "tuning" and (a is None) != (b is None):  # the whole record: say what it means
            out.append(f"tuning: {'tuned (--tune)' if a else 'not tuned'} -> {'tuned (--tune)' if b else 'not tuned'}")
        elif isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{path}.", ignore)
        elif a != b:
            out.append(f"{path}: {_short(a)} -> {_short(b)}")
    return out


def first_differences(diff: list[str], n: int = 4) -> str:
    """The first `n` differences for an error message, and how many more there are."""
    return "; ".join(diff[:n]) + (f"; and {len(diff) - n} more" if len(diff) > n else "")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class ExperimentLock:
    """One writer per experiment: an exclusive flock on <experiment>/.lock (the kernel releases it
    when the holder dies, even on kill -9). The file says who holds it, for the error message."""

    def __init__(self, exp_dir: Path):
        self.path = exp_dir / ".lock"
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise ConfigError(f"experiment {self.path.parent.name!r} is being trained right now by {holder}; "
                              "wait for it to finish (or cancel it) before writing to it") from None
        try:  # who holds it is only for the message above: a full disk must not stop the run here
            os.ftruncate(self.fh.fileno(), 0)
            os.pwrite(self.fh.fileno(), f"pid {os.getpid()}, started {now_iso()}".encode(), 0)
        except OSError:
            pass
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
