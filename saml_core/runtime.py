"""Process-level settings for fast CPU training: threads and the allocator."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import time

import torch

_TUNED = False


def tune_malloc() -> bool:
    """glibc hands each freed block above 128 KB back to the OS, so every fresh activation
    tensor (MBs per batch) costs page faults; keeping blocks up to 32 MB in the heap removes
    that (measured: ~1.3-1.5x faster SAML training steps on CPU). No-op off glibc."""
    global _TUNED
    if _TUNED:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1
        ok = ok and libc.mallopt(m_trim_threshold, 512 * 1024 * 1024) == 1
    except (OSError, AttributeError):
        return False
    _TUNED = ok
    return ok


class ThreadPolicy:
    """How many threads torch uses while a job trains and evaluates.

    Fixed (`threads` > 0, or OMP_NUM_THREADS set, as torchrun does): that many. Adaptive
    (`threads` 0, the default): as many as the machine has idle cores, re-decided every
    `interval` seconds from the CPU time that *other* processes used meanwhile (all CPUs' busy
    time in /proc/stat minus this process's own): on a free 2-core machine 2 threads, next to one
    or more CPU-bound processes 1. Two threads on a core that another process also wants wait on
    each other at every parallel op (measured: BENCHMARKS.md, Threads), so a thread that would
    share its core is not started. Results do not depend on the count: a training step gives the
    same numbers on 1 and 2 threads (tested), so the count may change at any step.
    Without /proc/stat (not Linux) the adaptive policy keeps torch's default."""

    def __init__(self, threads: int = 0, interval: float = 0.5, cores: int | None = None):
        self.cores = cores or usable_cores()
        env = os.environ.get("OMP_NUM_THREADS", "")
        self.fixed = threads if threads > 0 else (int(env) if env.isdigit() and int(env) > 0 else 0)
        self.adaptive = self.fixed == 0 and _machine_busy_seconds() is not None and self.cores > 1
        self.interval = interval
        self._last: tuple[float, float, float] | None = None
        self.ticks: dict[int, int] = {}  # thread count -> decisions that chose it (what the run used)

    def apply(self) -> None:
        """At the start of a job: the fixed count, or (adaptive) one thread until the first decision."""
        if self.fixed:
            torch.set_num_threads(self.fixed)
        elif self.adaptive:
            torch.set_num_threads(1)
            self._last = None
            self.tick()

    def tick(self) -> None:
        """Between steps or batches: re-decide when `interval` seconds have passed (two reads of
        /proc files otherwise nothing)."""
        if not self.adaptive:
            return
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < self.interval:
            return
        busy, own = _machine_busy_seconds(), _own_cpu_seconds()
        if self._last is not None and busy is not None:
            wall = now - self._last[0]
            others = max(0.0, (busy - self._last[1]) - (own - self._last[2])) / wall  # cores
            threads = max(1, min(self.cores, int(self.cores - others + 0.5)))
            if threads != torch.get_num_threads():
                torch.set_num_threads(threads)
            self.ticks[threads] = self.ticks.get(threads, 0) + 1
        self._last = (now, busy if busy is not None else 0.0, own)

    def describe(self) -> dict:
        if not self.adaptive:
            return {"mode": "fixed", "threads": self.fixed or torch.get_num_threads()}
        return {"mode": "adaptive", "cores": self.cores, "decisions_by_threads": dict(sorted(self.ticks.items()))}


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy_seconds() -> float | None:
    """CPU seconds all CPUs spent busy since boot (/proc/stat), None where there is none."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    v = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / _CLOCK_TICKS


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


_POLICY: ThreadPolicy | None = None


def thread_policy() -> ThreadPolicy | None:
    """The policy of this process's current job (None before `setup_cpu`)."""
    return _POLICY


def setup_cpu(num_threads: int = 0) -> ThreadPolicy:
    """The allocator, and torch's threads: `num_threads` fixed, or 0 for the adaptive policy
    (ThreadPolicy), which the training and prediction loops then `tick`."""
    global _POLICY
    tune_malloc()
    _POLICY = ThreadPolicy(num_threads)
    _POLICY.apply()
    return _POLICY


def tick_threads() -> None:
    if _POLICY is not None:
        _POLICY.tick()


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from saml_core.config import ConfigError

        raise ConfigError("--device cuda requested but no CUDA device is available (use auto or cpu)")
    return torch.device(device)


def machine(device: torch.device) -> str:
    """What trained a run, for the absolute times beside it: "AMD EPYC (2 cores)", or the GPU."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    return f"{cpu_model()} ({os.cpu_count()} cores)"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what `platform` knows: every absolute
    figure the benchmarks print names it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        name = ""
    return name or platform.processor() or platform.machine()
