"""Is the process that wrote a "running" status still alive? A pid alone is not enough (pids are
reused after a reboot or a kill -9), so a writer records its pid AND its start time, and a
reader checks both. Readers never write: they only report "interrupted"."""
from __future__ import annotations

import os


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            after_name = fh.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    if after_name[0] == "Z":  # a zombie has finished
        return None
    return after_name[19]


def token(pid: int | None = None) -> dict:
    """What a writer records about itself: {"pid": ..., "pid_start": ...}."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "pid_start": _start_time(pid)}


def alive(record: dict | None) -> bool | None:
    """True/False when the record names a process we can check, None when it cannot be told
    (no pid recorded, or no /proc on this system)."""
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int) or record["pid"] <= 0:
        return None
    pid = record["pid"]
    if not os.path.isdir("/proc"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return None
    start = _start_time(pid)
    if start is None:
        return False
    recorded = record.get("pid_start")
    return recorded is None or str(recorded) == start
