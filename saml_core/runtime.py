"""Process-level settings for fast CPU training: threads and the allocator."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

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


def setup_cpu(num_threads: int = 0) -> None:
    """num_threads 0 keeps torch's default (all cores unless OMP_NUM_THREADS says otherwise)."""
    tune_malloc()
    if num_threads > 0:
        torch.set_num_threads(num_threads)


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
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} cores)"
